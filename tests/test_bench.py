"""The benchmark compares like with like, and its printed figures are computed right."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evalkit import tiny_config
from rocksr.bench import predict_memory
from rocksr.bench import throughput as bench
from rocksr.eval.evaluate import evaluate
from rocksr.nets.models import Generator
from rocksr.workflow import config as cfg
from test_train import one_thread  # noqa: F401  (autouse: one thread, the CPUs are shared)

ROOT_CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"


@pytest.fixture(scope="module")
def micro():
    return bench.setup_from_config(ROOT_CONFIG, "micro")


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


def test_every_stage_is_timed_for_every_variant(micro, data, tmp_path):
    results = bench.run(micro, tmp_path, torch.device("cpu"), workers=1, repeats=1,
                        extras=("d-twice", "vgg16"))
    assert set(results["stages"]) == {"phase 1", "phase 2", "evaluate"}
    for stage in results["stages"].values():
        assert stage["baseline"] > 0 and stage["fast"] > 0
    stages = results["stages"]
    assert set(stages["phase 1"]["setup_s"]) == {"baseline", "fast"}
    assert set(stages["phase 2"]["setup_s"]) == {"baseline", "fast", "fast+d-twice"}  # no vgg16:
    # fp16 VGG is CUDA only
    assert stages["phase 2"]["tflop_per_it"] > stages["phase 1"]["tflop_per_it"] > 0
    assert results["stages"]["evaluate"]["fast_no_texture"] > 0
    assert results["checkpoint"]["bytes"] > 0 and results["checkpoint"]["sync_s"] > 0
    assert set(results["vgg"]["inputs"]) == {"bicubic", "noise 0.1", "noise 0.03", "noise 0.01"}
    assert all(row["finite_fp16"] for row in results["vgg"]["inputs"].values())
    text = bench.report(results)
    assert "fast / baseline" in text and "not the paper's settings" in text
    assert "img/s without: they add" in text and "fast+d-twice / baseline" in text
    assert "phase-2 checkpoint (" in text and "VGG in fp16 vs fp32 (random weights" in text
    assert set(stages["phase 2"]["paired"]) == {"fast+d-twice"}  # timed again, alternately
    assert "phase 2, timed in alternation: fast+d-twice " in text


def test_extra_variants_and_their_phase_1_counterparts():
    cuda = torch.device("cuda")  # the variants' names and options only: nothing runs
    phase2 = bench.variants(cuda, 2, ("compile+vgg16", "d-twice"))
    assert list(phase2) == ["baseline", "fast", "fast+graphs", "fast+graphs+compile+vgg16",
                            "fast+graphs+d-twice"]
    assert phase2["fast+graphs+compile+vgg16"] == {"fast": True, "graphs": True,
                                                   "compile": True, "vgg_precision": "fp16"}
    assert phase2["fast+graphs+d-twice"]["d_sr_once"] is False
    assert list(bench.variants(cuda, 1, ("compile+vgg16", "d-twice", "compile"))) == [
        "baseline", "fast", "fast+graphs", "fast+graphs+compile"]
    assert bench.phase1_counterpart("fast+graphs+compile+vgg16") == "fast+graphs+compile"
    with pytest.raises(ValueError, match="unknown extra variant 'compiled'"):
        bench.variants(cuda, 2, ("compiled",))


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


def test_projection_with_set_up_extras_and_checkpoints():
    results = {
        "device": "cuda (test)", "workers": 4, "repeats": 3,
        "variants": ["baseline", "fast", "fast+d-twice"],
        "setup": {"name": "paper", "scale": 4, "blocks": 16, "filters": 64,
                  "batch": {1: 16, 2: 16}, "lr_patch": {1: 48, 2: 48}, "iters": {1: 50, 2: 20},
                  "schedule": {1: 100_000, 2: 150_000}, "hr_size": 500,
                  "checkpoint_every": 1000},
        "stages": {"phase 1": {"unit": "it/s", "baseline": 10.0, "fast": 50.0,
                               "setup_s": {"fast": 100.0}},
                   "phase 2": {"unit": "it/s", "baseline": 5.0, "fast": 25.0,
                               "fast+d-twice": 20.0, "setup_s": {"fast": 200.0}}},
        "checkpoint": {"bytes": 1e9, "variant": "fast", "sync_s": 6.0, "copy_s": 0.5,
                       "write_its": 20.0, "plain_its": 25.0, "extra_s": 1.0},
    }
    text = bench.report(results)
    # fast: 100000 / 50 + 100 + 150000 / 25 + 200 s = 8300 s; d-twice: 2100 + 7500 s
    assert "fast: 2.31 h" in text and "fast+d-twice: 2.67 h" in text
    assert "phase 2: set-up (models, capture, compilation, autotuning): fast 200 s" in text
    assert "plus phase 2's 150 checkpoints: 15 min written in the call, 2.5 min" in text


GPU_CHECK = ["bash", str(ROOT_CONFIG.parent / "scripts" / "gpu_check.sh"), "--cpu"]


def gpu_check(out: Path, *parts: str, python: str = sys.executable
              ) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUT": str(out), "PYTHON": python}
    return subprocess.run([*GPU_CHECK, *parts], env=env, capture_output=True, text=True,
                          timeout=3600)


def test_a_failing_gpu_check_part_fails_the_script_and_not_the_others(tmp_path):
    proc = gpu_check(tmp_path, "env", "onestep-tiny", python="false")  # each fails at once
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "=== onestep-tiny: exit 1" in (tmp_path / "onestep-tiny.log").read_text()
    assert "FAILED: env (exit 1) onestep-tiny (exit 1)" in (tmp_path / "summary.log").read_text()
    proc = gpu_check(tmp_path / "typo", "env", "onestep")
    assert proc.returncode == 2 and "unknown part: onestep (env" in proc.stdout
    assert not (tmp_path / "typo" / "env.log").exists()  # nothing ran


@pytest.mark.workflow
def test_the_gpu_check_runs_on_a_cpu(tmp_path):
    """The README's dry run: every part's command line, at the smallest sizes."""
    proc = gpu_check(tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    for part in ("onestep-paper-fp32", "bench", "onestep-tiny", "bench3d"):
        assert json.loads((tmp_path / f"{part}.json").read_text())
    summary = (tmp_path / "summary.log").read_text()
    assert summary.count("verdict: every judged variant PASS") == 2, summary
    assert "verdict: no case ran" in summary  # bf16 is CUDA only
    assert "phase-2 checkpoint (" in summary and "every part ran" in summary


@pytest.mark.workflow
def test_the_predict_memory_bench_runs_its_three_modes_on_a_volume():
    """scripts/bench_predict.py's run at the smallest sizes, each mode in its own process:
    a line per mode and depth, then the ratios (the uncropped baseline included)."""
    lines = predict_memory.run(16, [4], 2, 1, 4, 8, 6, "cpu", 1, dim=3)
    assert [line.split()[0] for line in lines[:3]] == list(predict_memory.MODES)
    assert all("4 slices 16x16 uint16 x2 (3D" in line for line in lines[:3])
    assert lines[-1].startswith("whole tiles upsampled (uncropped) / only each core")
