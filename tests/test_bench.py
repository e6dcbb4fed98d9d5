"""The benchmark compares like with like, and its printed figures are computed right."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evalkit import tiny_config
from rocksr.bench import throughput as bench
from rocksr.eval.evaluate import evaluate
from rocksr.nets.models import Generator
from rocksr.workflow import config as cfg

ROOT_CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"


@pytest.fixture(scope="module")
def micro():
    tiny = bench.setup_from_config(ROOT_CONFIG, "tiny")
    return bench.resized(tiny, 1, 8, batch={1: 2, 2: 2}, lr_patch={1: 8, 2: 8},
                         iters={1: 2, 2: 1}, hr_size=48, images=2, eval_images=2, eval_batch=2)


@pytest.fixture(scope="module")
def data(micro, tmp_path_factory):
    return bench.prepare_data(tmp_path_factory.mktemp("bench"), micro)


def test_paper_preset_is_the_configured_paper_run():
    paper = bench.setup_from_config(ROOT_CONFIG, "paper")
    summary = paper.summary()
    assert (summary["scale"], summary["blocks"], summary["filters"]) == (4, 16, 64)
    assert summary["batch"] == {1: 16, 2: 16} and summary["lr_patch"] == {1: 48, 2: 48}
    assert summary["schedule"] == {1: 100_000, 2: 150_000}
    assert paper.phases[2].vgg_weight == 1e-5 and paper.phases[2].vgg_weights == "random"
    with pytest.raises(ValueError, match="unknown preset"):
        bench.setup_from_config(ROOT_CONFIG, "huge")


def test_baseline_crops_are_aligned(tmp_path):
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, (12, 12), dtype=np.uint8)
    hr = np.kron(lr, np.ones((4, 4), dtype=np.uint8))  # every aligned crop is a kron of its LR
    Image.fromarray(lr).save(tmp_path / "lr.png")
    Image.fromarray(hr).save(tmp_path / "hr.png")
    crops = bench.PngCrops([(tmp_path / "lr.png", tmp_path / "hr.png")], 4, 5, length=20)
    for i in range(20):
        lr_crop, hr_crop = crops[i]
        assert lr_crop.shape == (1, 5, 5) and hr_crop.shape == (1, 20, 20)
        assert torch.equal(hr_crop[0], torch.kron(lr_crop[0], torch.ones(4, 4)))


def test_baseline_evaluation_scores_what_the_workflow_scores(micro, data):
    torch.manual_seed(0)
    generators = {"srcnn": Generator(micro.scale, 1, 8).eval()}
    plain = bench.baseline_evaluate(data.valid_pngs, generators, micro.scale, torch.device("cpu"))
    settings = dataclasses.replace(cfg.evaluation_settings(tiny_config()), splits=["valid"])
    ours = evaluate(data.packs, generators, settings)  # as the evaluate rule's settings say
    for method, tol in (("srcnn", 1e-3), ("bicubic", 0.1)):  # PIL's 'L' bicubic is fixed-point
        a = plain[plain.method == method]
        b = ours[ours.method == method]
        assert len(a) == len(b) == len(data.valid_pngs)
        np.testing.assert_allclose(sorted(a.psnr), sorted(b.psnr), atol=tol)
        np.testing.assert_allclose(sorted(a.porosity), sorted(b.porosity), atol=0.02)


def test_every_stage_is_timed_for_both_variants(micro, data, tmp_path):
    results = bench.run(micro, tmp_path, torch.device("cpu"), workers=1, repeats=1)
    assert set(results["stages"]) == {"phase 1", "phase 2", "evaluate"}
    for stage in results["stages"].values():
        assert stage["baseline"] > 0 and stage["fast"] > 0
    stages = results["stages"]
    assert stages["phase 2"]["tflop_per_it"] > stages["phase 1"]["tflop_per_it"] > 0
    assert results["stages"]["evaluate"]["fast_no_texture"] > 0
    text = bench.report(results)
    assert "fast / baseline" in text and "not the paper's settings" in text
    assert "img/s without: they add" in text


def test_report_ratios_flops_and_projection():
    results = {
        "device": "cuda (test)", "workers": 4, "repeats": 3,
        "setup": {"name": "paper", "scale": 4, "blocks": 16, "filters": 64,
                  "batch": {1: 16, 2: 16}, "lr_patch": {1: 48, 2: 48}, "iters": {1: 50, 2: 20},
                  "schedule": {1: 100_000, 2: 150_000}, "hr_size": 500,
                  "diagnosed_per_epoch": 10},
        "stages": {"phase 1": {"unit": "it/s", "tflop_per_it": 0.5, "baseline": 10.0, "fast": 50.0,
                               "fast+graphs": 100.0,
                               "gpu_busy": {"fast": 0.4, "fast+graphs": 0.9}},
                   "phase 2": {"unit": "it/s", "tflop_per_it": 3.0, "baseline": 5.0, "fast": 25.0,
                               "plain step": 1.0, "diagnosed step": 0.5},
                   "evaluate": {"unit": "img/s", "baseline": 4.0, "fast": 40.0,
                                "fast_with_texture": 40.0, "fast_no_texture": 44.0}},
    }
    text = bench.report(results)
    assert "they add 10.0% to the evaluation time" in text  # 40 img/s with, 44 without
    assert text.count("5.00x") == 2 and "10.00x" in text
    assert "achieved TFLOP/s: baseline 5, fast 25" in text      # 0.5 TFLOP x 10 it/s
    # fast: (100000 / 50 + 150000 / 25) s = 8000 s
    assert "fast: 2.22 h" in text and "baseline: 11.11 h" in text
    assert "fast+graphs / baseline" in text and "20.00x" not in text
    assert "phase 1: share of wall time the GPU runs kernels: fast 40%, fast+graphs 90%" in text
    assert "fast+graphs: " not in text  # no projection: phase 2 was not timed graphed
    # 10 diagnosed steps of 2 s instead of 1 s in an epoch of 1000 s
    assert "(10 steps per epoch of 1000 iterations)" in text and "= 1% of an epoch" in text
