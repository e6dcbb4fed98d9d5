"""End-to-end, volumes: a tiny `dim: 3` run on a synthetic DeepRockSR-3D.zip in the published
layout, two of its members MATLAB v7.3 files; and a bad volume stops the split step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml

from conftest import _alter, mat73_bytes
from rocksr import ROCK_TYPES
from rocksr.data.archive import hr_member, lr_member, open_archive, read_member
from rocksr.data.packs import load_pack
from rocksr.data.synthetic import write_archive
from rocksr.data.volumes import to_matlab
from rocksr.eval.evaluate import ROCK_COLUMNS
from rocksr.nets.models import load_model
from workflow import ROOT, copy_workflow, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

CONFIG = ("tests/tiny3d.yaml", "archive3d.yaml")
V73 = [hr_member("carbonate", "train", 1, 3), lr_member("coal", "valid", 801, 4, "unknown", 3)]
DATA = "results/data/x4_unknown_3d"


def archive_3d(wd, put=None):
    """The tiny run's synthetic DeepRockSR-3D.zip (tests/tiny3d.yaml's synthetic_3d), with
    the V73 members rewritten as MATLAB v7.3 files, named as dataset.archive_3d."""
    settings = {**yaml.safe_load((ROOT / "config.yaml").read_text())["synthetic_3d"],
                **yaml.safe_load((ROOT / "tests" / "tiny3d.yaml").read_text())["synthetic_3d"]}
    plain = write_archive(wd / "plain3d.zip", settings, dim=3)
    with open_archive(plain) as zf:
        v73 = {m: mat73_bytes({"temp": to_matlab(read_member(zf, m))}) for m in V73}
    archive = _alter(plain, wd / "DeepRockSR-3D.zip", put={**v73, **(put or {})})
    (wd / "archive3d.yaml").write_text(yaml.safe_dump({"dataset": {"archive_3d": str(archive)}}))
    return plain


@pytest.fixture(scope="module")
def finished3d(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("wf3d"))
    plain = archive_3d(wd)
    start = time.perf_counter()
    snakemake(wd, configfiles=CONFIG)
    print(f"\n3D tiny workflow: {time.perf_counter() - start:.0f} s")
    return wd, plain


def test_3d_run_outputs_rock_metrics_and_figures(finished3d):
    wd, plain = finished3d
    run = wd / "results" / "tiny3d"
    for name in ("orthoslices", "rock_metrics", "figure3", "curves"):
        assert (run / "figures" / f"{name}.png").stat().st_size > 0, name
        assert (run / "figures" / f"{name}.pdf").stat().st_size > 0, name
    assert not (run / "figures" / "figure2.png").exists()  # 2D runs' figures only
    assert load_model(run / "phase2" / "generator.pt").dim == 3
    summary = pd.read_csv(run / "evaluation" / "summary.csv")
    assert set(summary.rock_type) == set(ROCK_TYPES) and set(summary.split) == {"valid", "test"}
    assert set(summary.method) == {"tricubic", "srcnn", "srgan"} and len(summary) == 3 * 2 * 3
    for column in ROCK_COLUMNS:
        assert summary[f"{column}_mean"].notna().any(), column
    per_image = pd.read_csv(run / "evaluation" / "per_image.csv")
    assert set(ROCK_COLUMNS) <= set(per_image) and "spectrum_err_db" not in per_image
    # the v7.3 members were read as the v5 ones they replace
    with open_archive(plain) as zf:
        assert np.array_equal(load_pack(wd / DATA / "packs", "carbonate", "train").hr[0],
                              read_member(zf, V73[0]))
        assert np.array_equal(load_pack(wd / DATA / "packs", "coal", "valid").lr[0],
                              read_member(zf, V73[1]))
    assert planned_jobs(wd, configfiles=CONFIG) == []


def test_srcnn_beats_tricubic_on_every_rock_types_validation_volumes(finished3d):
    wd, _ = finished3d
    summary = pd.read_csv(wd / "results" / "tiny3d" / "evaluation" / "summary.csv")
    valid = summary[summary.split == "valid"].pivot(index="rock_type", columns="method",
                                                    values="psnr_mean")
    print("\n3D validation PSNR (dB):\n" + valid.round(2).to_string())
    assert (valid.srcnn > valid.tricubic).all(), valid


def test_report_holds_the_3d_figures(finished3d):
    wd, _ = finished3d
    snakemake(wd, "--report", "results/report.html", configfiles=CONFIG)
    html = (wd / "results" / "report.html").read_text(errors="replace")
    for name in ("orthoslices.png", "rock_metrics.png", "figure3.png", "summary.csv"):
        assert name in html, name


def test_a_mat_file_without_the_volume_stops_the_split_and_writes_nothing(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    bad = lr_member("sandstone", "test", 901, 4, "unknown", 3)
    archive_3d(wd, put={bad: mat73_bytes({})})
    proc = snakemake(wd, "--", f"{DATA}/manifest.csv", configfiles=CONFIG, check=False)
    assert proc.returncode != 0
    log = (wd / "results" / "logs" / "split_x4_unknown_3d.log").read_text()
    assert f"{bad}: no array in this MATLAB file" in log and "Traceback" not in log
    assert not (wd / DATA / "manifest.csv").exists() and not (wd / DATA / "packs").exists()


def test_snakemake_predict_with_the_3d_run_upsamples_a_volume_isotropically(finished3d):
    """The README's predict command with a dim-3 run: a 40^3 uint16 stack comes back as
    160^3 uint16 per method (tricubic, SRCNN, SRGAN), its voxel size divided by 4 on every
    axis, and retraining is never planned."""
    wd, _ = finished3d
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 65535, (40, 40, 40), dtype=np.uint16)
    tifffile.imwrite(wd / "vol.tif", volume, imagej=True, resolution=(1 / 2.0, 1 / 2.0),
                     metadata={"spacing": 2.0, "unit": "um"})
    args = ("--cores", "2", "predict", "--config",
            "predict={input: vol.tif, tile_3d: 16, overlap: 9, device: cpu}")
    assert {rule for rule, _ in planned_jobs(wd, *args, configfiles=CONFIG)} == {
        "super_resolve", "predict"}
    snakemake(wd, *args, configfiles=CONFIG)
    out = wd / "results" / "tiny3d" / "predict"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["failed"] == 0 and manifest["dim"] == 3
    for method in ("tricubic", "srcnn", "srgan"):
        with tifffile.TiffFile(out / method / "vol.tif") as tif:
            sr = tif.asarray()
            assert sr.shape == (160, 160, 160) and sr.dtype == np.uint16, method
            assert tif.imagej_metadata["spacing"] == pytest.approx(0.5)
            x_res = tif.pages[0].tags["XResolution"].value
            assert x_res[0] / x_res[1] == pytest.approx(2.0)  # pixels per um: 0.5 um


def test_export_of_the_3d_run_then_rocksr_predict_with_its_model_file(finished3d):
    """`snakemake export` run for real, then the exported 3D model through `rocksr predict`
    (the README's two commands): a 12^3 stack comes back as 48^3 beside tricubic."""
    wd, _ = finished3d
    snakemake(wd, "--cores", "2", "export", configfiles=CONFIG)
    model = wd / "results" / "tiny3d" / "export" / "tiny3d_srgan.safetensors"
    assert model.with_name(model.name + ".sha256").read_text().split()[1] == model.name
    tifffile.imwrite(wd / "small.tif", np.arange(12**3, dtype=np.uint16).reshape(12, 12, 12))
    proc = subprocess.run([sys.executable, "-m", "rocksr", "predict", "small.tif", "-o", "sr",
                           "--model", str(model), "--tile-3d", "8", "--overlap", "9",
                           "--device", "cpu"], cwd=wd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    for method in ("tricubic", "tiny3d_srgan"):
        assert tifffile.imread(wd / "sr" / method / "small.tif").shape == (48, 48, 48), method
