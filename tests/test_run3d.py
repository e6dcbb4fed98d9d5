"""A run with `dim: 3`: its settings (training_3d), data product, models, VGG choice,
evaluation (tricubic, 3D rock metrics), figures, the download and synthetic steps, the
benchmark preset, and bad volumes at the split step's command line."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import mat73_bytes
from evalkit import tiny_config
from rocksr.bench import throughput as bench
from rocksr.data.archive import hr_member, lr_member
from rocksr.data.download import DownloadError, download
from rocksr.data.packs import Pack, write_packs
from rocksr.data.synthetic import rock_image
from rocksr.eval import rock3d
from rocksr.eval.evaluate import ROCK_COLUMNS, evaluate, summarize
from rocksr.figures import figure3, orthoslices, rock_metrics_figure
from rocksr.imaging.degrade import downsample
from rocksr.imaging.resize import tricubic_upscale
from rocksr.infer.inference import upscalers
from rocksr.nets.losses import SliceVGGLoss, VGGLoss, slices
from rocksr.nets.models import Generator
from rocksr.nets.vgg_files import read_record, settings_record, verify
from rocksr.settings import ConfigError
from rocksr.train.step import STATS, build_models, train_step
from rocksr.workflow import config as cfg
from rocksr.workflow import hooks

ROOT = Path(__file__).resolve().parents[1]
RUN3D = {"enabled": True, "dim": 3, "scale": 4, "degradation": "unknown", "seed": 0}


def config_with(run: dict | None = None, **layers) -> dict:
    return tiny_config(runs={"v": {**RUN3D, **(run or {})}}, **layers)


# --- settings -----------------------------------------------------------------------------

def test_a_3d_run_gets_the_authors_3d_defaults_and_its_own_data():
    conf = config_with()
    assert cfg.data_key(conf, "v") == "x4_unknown_3d" and cfg.data_key(conf, "tiny") == "x4_unknown"
    assert cfg.data_products(conf)["x4_unknown_3d"].dim == 3
    plain = cfg.load(ROOT / "config.yaml")
    plain["runs"]["v"] = RUN3D
    p1, p2 = (cfg.phase_settings(plain, "v", p) for p in (1, 2))
    assert (p1.dim, p1.lr_patch, p1.hr_patch, p1.batch_size) == (3, 16, 64, 16)
    assert (p2.lr_patch, p2.batch_size, p2.vgg_weight, p2.vgg_3d) == (16, 16, 0.0, "none")
    assert (p1.epochs, p2.epochs, p2.lr, p2.adv_weight) == (100, 150, 1e-5, 1e-3)  # 2D's
    assert cfg.phase_settings(plain, "paper", 1).lr_patch == 48  # 2D runs: untouched
    # the run's own overrides come last
    own = config_with({"training": {"phase1": {"lr_patch": 4}}})
    assert cfg.phase_settings(own, "v", 1).lr_patch == 4


def test_vgg_in_3d_only_on_slices_and_small_cubes_without_vgg():
    with pytest.raises(ConfigError, match="training.phase2.vgg_weight: 1e-05 needs vgg_3d: "
                                          "slices in a 3D run"):
        config_with({"training": {"phase2": {"vgg_weight": 1e-5}}})
    config_with({"training": {"phase2": {"vgg_weight": 1e-5, "vgg_3d": "slices"}}})
    # HR cubes of 16 are too small for pool5, but a 3D run without VGG does not use it
    config_with({"training": {"phase2": {"lr_patch": 4}}})
    with pytest.raises(ConfigError, match="too small for vgg_layer pool5"):
        config_with({"training": {"phase2": {"lr_patch": 4, "vgg_3d": "slices",
                                             "vgg_weight": 1e-5}}})


def test_a_3d_run_without_a_vgg_term_needs_no_weights_and_records_none(tmp_path):
    """vgg_3d none: no weights file is provided (not even the default imagenet), the record
    says there is no VGG term, and phase 2 accepts it; with slices the weights are needed."""
    plain = cfg.load(ROOT / "config.yaml")
    plain["runs"] = {"v": RUN3D}
    assert cfg.vgg_weights_file(plain, "v") is None and cfg.vgg_weights_sources(plain) == {}
    s = cfg.phase_settings(plain, "v", 2)
    assert s.vgg_weights == "imagenet" and not s.vgg_term
    record = settings_record(s)
    assert (record.source, record.origin, record.file, record.exact) == ("none", "none", None,
                                                                          False)
    assert record.describe().startswith("no VGG term")
    verify(record, s)
    out = tmp_path / "vgg_weights.yaml"
    proc = run_script("vgg_record.py", "--settings",
                      json.dumps(cfg.vgg_settings(plain, "v").to_dict()), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert read_record(out) == record
    sliced = {**RUN3D, "training": {"phase2": {"vgg_3d": "slices", "vgg_weight": 1e-5}}}
    plain["runs"] = {"v": sliced}
    assert cfg.vgg_weights_file(plain, "v") == "results/weights/vgg19-dcbb9e9d.pth"


def test_orthoslice_ids_are_checked_at_start():
    conf = config_with()
    del conf["figures"]["orthoslices"]["ids"]["coal"]
    with pytest.raises(ConfigError, match="figures.orthoslices.ids: no entry for rock type coal"):
        cfg.check_steps(conf)


# --- models and one training step -------------------------------------------------------

def test_3d_models_volumes_and_no_vgg_by_default():
    s = cfg.phase_settings(config_with({"model": {"blocks": 1, "filters": 4},
                                        "training": {"phase2": {"lr_patch": 4}}}), "v", 2)
    torch.manual_seed(0)
    m = build_models(s, torch.device("cpu"))
    assert m.generator.dim == 3 and m.generator.arch["upsample"] == "nearest"
    assert m.discriminator.arch == {"patch": 16, "channels": 1, "dim": 3}
    assert m.vgg is None
    assert m.generator.head.weight.is_contiguous(memory_format=torch.channels_last_3d)
    lr, hr = torch.rand(2, 1, 4, 4, 4) * 2 - 1, torch.rand(2, 1, 16, 16, 16) * 2 - 1
    row, diagnostics = train_step(m, lr, hr, contextlib.nullcontext(), 0.0, 1e-3,
                                  diagnose=True)
    stats = dict(zip(STATS[2], row.tolist()))
    assert stats["loss_vgg"] == 0 and stats["loss_l1"] > 0
    assert np.isfinite(list(stats.values())).all()
    assert set(diagnostics) == {"w_l1", "w_adv", "share_l1", "share_adv", "cos_l1_adv"}


def test_slice_vgg_is_the_mean_of_vgg_over_the_three_axes():
    g = torch.Generator().manual_seed(0)
    volume = torch.rand(2, 1, 3, 4, 5, generator=g)
    assert slices(volume, 2).shape == (6, 1, 4, 5) and slices(volume, 4).shape == (10, 1, 3, 4)
    assert torch.equal(slices(volume, 3)[5], volume[1, :, :, 1, :])  # volume 1 (of H = 4), row 1
    torch.manual_seed(0)
    sliced = SliceVGGLoss("random", "relu5_4", "caffe")
    plain = VGGLoss("random", "relu5_4", "caffe")
    plain.load_state_dict(sliced.state_dict())
    sr, hr = (torch.rand(1, 1, 16, 16, 16, generator=g) * 2 - 1 for _ in range(2))
    expected = sum(plain(slices(sr, a), slices(hr, a)) for a in (2, 3, 4)) / 3
    assert torch.allclose(sliced(sr, hr), expected)


def test_upscalers_of_volumes_start_with_tricubic():
    g = Generator(4, 1, 4, dim=3)
    methods = upscalers({"srcnn": g}, 4, dim=3)
    assert list(methods) == ["tricubic", "srcnn"]
    lr = torch.randint(0, 256, (1, 1, 3, 4, 5), dtype=torch.uint8)
    assert torch.equal(methods["tricubic"](lr), tricubic_upscale(lr.float() / 255, 4))
    assert list(upscalers({"srcnn": g}, 4)) == ["tricubic", "srcnn"]  # the generators' dim
    with pytest.raises(ValueError, match="is a 3D generator, the data is 2D"):
        upscalers({"srcnn": g}, 4, dim=2)


# --- evaluation and figures ---------------------------------------------------------------

IDS3 = {"valid": [801], "test": [901, 902]}


@pytest.fixture(scope="module")
def packs3d(tmp_path_factory):
    """Volume packs of two rock types (HR 16^3 at x4) and two tiny 3D generators."""
    root = tmp_path_factory.mktemp("packs3d")
    packs = []
    for rock in ("carbonate", "sandstone"):
        for split, ids in IDS3.items():
            hr = np.stack([rock_image(rock, i, 16, 0, dim=3) for i in ids])
            lr = np.stack([downsample(v, 4, "default", np.random.default_rng(0)) for v in hr])
            packs.append(Pack(rock, split, hr, lr, np.array(ids)))
    write_packs(root / "packs", packs, scale=4, degradation="default")
    torch.manual_seed(0)
    generators = {n: Generator(4, 1, 4, dim=3).eval() for n in ("srcnn", "srgan")}
    return root / "packs", generators


def test_evaluation_of_volumes_rock_metrics_in_worker_processes(packs3d):
    packs, generators = packs3d
    settings = cfg.evaluation_settings(config_with())
    inline = evaluate(packs, generators, settings, torch.device("cpu"), workers=1)
    pooled = evaluate(packs, generators, settings, torch.device("cpu"), workers=2)
    pd.testing.assert_frame_equal(inline, pooled)
    assert list(inline.method.unique()) == ["tricubic", "srcnn", "srgan"]
    assert len(inline) == 2 * 3 * 3 and set(ROCK_COLUMNS) <= set(inline)
    assert "spectrum_err_db" not in inline  # the 2D texture metrics are not computed
    # one row by hand: the rock metrics of the tricubic volume, quantised as scored
    pack = np.load(packs / "sandstone_test_hr.npy")[1]
    lr = torch.from_numpy(np.load(packs / "sandstone_test_lr.npy")[1])[None, None]
    sr = (tricubic_upscale(lr.float() / 255, 4).clamp(0, 1) * 255).round()[0, 0] / 255
    expected = rock3d.compare(sr.numpy(), rock3d.reference(pack))
    row = inline[(inline.rock_type == "sandstone") & (inline.id == 902)
                 & (inline.method == "tricubic")].iloc[0]
    for key in ("ssa", "ssa_hr", "euler", "s2_err", "psd_q50"):
        assert row[key] == pytest.approx(expected[key])
    assert row.ssa_rel_err == pytest.approx((row.ssa - row.ssa_hr) / row.ssa_hr)
    assert row.porosity == pytest.approx(expected["porosity"])
    summary = summarize(inline)
    assert {"ssa_rel_err_mean", "euler_density_err_std", "psd_mean_rel_err_mean"} <= set(summary)


def test_3d_figures(packs3d, tmp_path):
    packs, generators = packs3d
    settings = cfg.orthoslice_settings(config_with())
    fig = orthoslices(packs, generators, settings)
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 2 * 3 * 8  # rocks x planes x (LR, 3 methods, HR, 3 differences)
    assert len(fig.axes) == len(panels) + 2  # a colour bar per rock type
    titles = [ax.get_title() for ax in panels]
    assert "LR (nearest)" in titles and any(t.startswith("Tricubic\n") for t in titles)
    assert any("xz, y = 8" in ax.get_ylabel() for ax in panels)
    with pytest.raises(ValueError, match="figures.orthoslices.ids.carbonate: image 999"):
        orthoslices(packs, generators, dataclasses.replace(settings, ids={
            "carbonate": 999, "coal": 901, "sandstone": 901}))
    summary = summarize(evaluate(packs, generators, cfg.evaluation_settings(config_with()),
                                 torch.device("cpu")))
    fig = rock_metrics_figure(summary)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 5
    assert "test split" in fig._suptitle.get_text()
    fig = figure3(summary)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks[0].startswith("carbonate\nSRCNN gain")
    title = fig._suptitle.get_text()
    assert "over volumes" in title and "SRCNN - tricubic" in title
    with pytest.raises(ValueError, match="summary lacks column"):
        rock_metrics_figure(summary.drop(columns=["ssa_rel_err_mean"]))


# --- data steps -----------------------------------------------------------------------------

def test_download_of_the_3d_archive_says_where_to_get_it(tmp_path):
    out = tmp_path / "DeepRockSR-3D.zip"
    with pytest.raises(DownloadError) as err:
        download(out, "http://127.0.0.1:9/api/", None, key="archive_3d")
    text = str(err.value)
    assert "project 215" in text and "10.17612/s3m9-e024" in text
    assert "dataset.archive_3d: /path/to/DeepRockSR-3D.zip" in text
    assert not any(tmp_path.iterdir())


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *args],
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})


def test_synthetic_3d_archive_and_its_bounds(tmp_path):
    settings = '{"hr_size": 16, "seed": 0, "counts": {"train": 1, "valid": 1, "test": 1}}'
    proc = run_script("make_synthetic.py", "--dim", "3", "--out", str(tmp_path / "a.zip"),
                      "--settings", settings)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert hr_member("coal", "test", 901, 3) in zf.namelist()
    with pytest.raises(ConfigError, match="synthetic_3d.counts.valid: 101 is greater than the "
                                          "maximum of 100"):
        config_with(synthetic_3d={"counts": {"train": 1, "valid": 101, "test": 1}})


LR = lr_member("coal", "valid", 801, 4, "unknown", 3)
HR = hr_member("coal", "valid", 801, 3)


@pytest.mark.parametrize("change, message", [
    ({"put": {LR: np.zeros((4, 4, 5), np.uint8)}}, f"{LR}: wrong size"),
    ({"drop": {LR}}, f"{HR}: missing partner"),
    ({"put": {LR: b"MATLAB 5.0 MAT-file" + bytes(200)}}, f"{LR}: corrupt or unreadable .mat"),
    ({"put": {LR: mat73_bytes({})}}, f"{LR}: no array in this MATLAB file"),
], ids=["wrong-shape", "missing-partner", "corrupt-mat", "mat-without-array"])
def test_split_step_names_a_bad_volume_and_writes_nothing(tmp_path, altered_archive_3d, change,
                                                          message):
    archive = altered_archive_3d(**change)
    settings = ('{"scale": 4, "degradation": "unknown", "dim": 3, '
                '"rock_types": ["carbonate", "coal", "sandstone"], "resplit": null}')
    out = tmp_path / "out"
    proc = run_script("split.py", "--archive", str(archive), "--settings", settings,
                      "--manifest", str(out / "manifest.csv"), "--packs", str(out / "packs"))
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line or "Traceback" in line]
    assert len(errors) == 1 and message in errors[0]
    assert not out.exists() or not any(out.iterdir())


# --- benchmark ------------------------------------------------------------------------------

def test_bench_3d_preset_is_the_authors_3d_training():
    paper3d = bench.setup_from_config(ROOT / "config.yaml", "paper3d").summary()
    assert (paper3d["dim"], paper3d["blocks"], paper3d["filters"], paper3d["hr_size"]) == (
        3, 16, 64, 100)
    assert paper3d["batch"] == {1: 16, 2: 16} and paper3d["lr_patch"] == {1: 16, 2: 16}
    assert paper3d["schedule"] == {1: 100_000, 2: 150_000}


def test_bench_times_3d_training_without_a_baseline(tmp_path):
    tiny = bench.setup_from_config(ROOT / "config.yaml", "tiny3d")
    micro = bench.resized(tiny, 1, 4, batch={1: 2, 2: 2}, lr_patch={1: 4, 2: 4},
                          iters={1: 1, 2: 1}, hr_size=16, images=1, eval_images=1)
    results = bench.run(micro, tmp_path, torch.device("cpu"), workers=1, repeats=1)
    assert set(results["stages"]) == {"phase 1", "phase 2"}
    for stage in results["stages"].values():
        assert stage["fast"] > 0 and "baseline" not in stage and stage["tflop_per_it"] > 0
    text = bench.report(results)
    assert "/ baseline" not in text and "16^3 volumes" in text and "--preset paper3d" in text


def test_the_end_of_run_psnr_table_shows_a_3d_runs_tricubic(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "results" / "v" / "evaluation"
    folder.mkdir(parents=True)
    pd.DataFrame({"rock_type": "coal", "split": "test", "method": ["tricubic", "srcnn", "srgan"],
                  "psnr_mean": [26.4, 26.8, 26.9]}).to_csv(folder / "summary.csv", index=False)
    hooks.print_summary(["v"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].split() == ["rock", "type", "tricubic", "srcnn", "srgan"]
    assert lines[-1].split() == ["coal", "26.40", "26.80", "26.90"]
