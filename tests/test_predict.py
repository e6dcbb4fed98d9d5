"""predict: the user's own images in every format, outputs in the input's dtype and shape of
things, atomic replacement, and clear errors (the real DeepRock-SR LR samples included)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from evalkit import as_json, make_generator, tiny_config
from rocksr.imaging.resize import bicubic_upscale
from rocksr.infer.predict import predict
from rocksr.nets.models import load_model
from rocksr.settings import IntensitySettings
from rocksr.workflow import config as cfg

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "predict.py"
CPU = torch.device("cpu")
# The rule's settings (intensity window full), with tiles small enough for the test images.
SETTINGS = dataclasses.replace(cfg.predict_settings(tiny_config()), tile=16, overlap=8)


def run_script(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True)


@pytest.fixture
def models(tmp_path):
    return {"srcnn": make_generator(tmp_path / "g1.pt", 1),
            "srgan": make_generator(tmp_path / "g2.pt", 2)}


def generators(models):
    return {name: load_model(path) for name, path in models.items()}


def test_real_samples_folder_gives_png_folders(lr_samples, models, tmp_path):
    folder = lr_samples[0].parent
    out = tmp_path / "sr"
    model_args = [a for n, p in models.items() for a in ("--model", f"{n}={p}")]
    proc = run_script("--input", folder, *model_args, "--out-dir", out,
                      "--settings", as_json(SETTINGS), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert not out.with_name("sr.partial").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "folder" and manifest["slices"] == len(lr_samples)
    assert manifest["intensity"]["low"] == 0 and manifest["intensity"]["high"] == 255
    for method in ("srcnn", "srgan", "bicubic"):
        sub = out / f"{folder.name}_{method}"
        assert sorted(p.name for p in sub.iterdir()) == [s.name for s in lr_samples]
        with Image.open(sub / lr_samples[0].name) as im:
            assert im.mode == "L" and im.size == (500, 500)
            assert json.loads(im.text["rocksr"])["method"] == method
    # Bicubic through tiles is the whole-image bicubic, rounded to 8 bits.
    lr = np.asarray(Image.open(lr_samples[0]).convert("L"), dtype=np.float32) / 255
    expected = (bicubic_upscale(torch.from_numpy(lr), 4).clamp(0, 1) * 255).round().numpy()
    got = np.asarray(Image.open(out / f"{folder.name}_bicubic" / lr_samples[0].name))
    assert np.abs(got - expected).max() <= 1


def test_16bit_stack_stays_a_16bit_stack(models, tmp_path):
    rng = np.random.default_rng(0)
    stack = rng.integers(10000, 20000, (3, 20, 24), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "vol.tif", stack, photometric="minisblack")
    settings = dataclasses.replace(SETTINGS, intensity=IntensitySettings("percentile", (1, 99)))
    manifest = predict(tmp_path / "vol.tif", generators(models), tmp_path / "out", settings, CPU)
    assert manifest["outputs"] == {m: f"vol_{m}.tif" for m in ("bicubic", "srcnn", "srgan")}
    window = manifest["intensity"]
    assert 10000 <= window["low"] < window["high"] < 20000
    for name in manifest["outputs"].values():
        with tifffile.TiffFile(tmp_path / "out" / name) as tif:
            assert len(tif.pages) == 3
            sr = tif.asarray()
            assert json.loads(tif.pages[0].description)["intensity"] == window
        assert sr.shape == (3, 80, 96) and sr.dtype == np.uint16
        assert window["low"] <= sr.min() and sr.max() <= window["high"]  # the inverse, clipped
    bicubic = tifffile.imread(tmp_path / "out" / "vol_bicubic.tif").astype(float)
    assert abs(bicubic.mean() - stack.mean()) < 100


@pytest.mark.parametrize("fmt,dtype,suffix", [("png", np.uint8, ".png"), ("png", np.uint16, ".tif"),
                                              ("tif", np.uint8, ".tif")])
def test_single_image_output_format(models, tmp_path, fmt, dtype, suffix):
    image = np.random.default_rng(0).integers(0, np.iinfo(dtype).max, (10, 14), dtype=dtype)
    if fmt == "png":
        Image.fromarray(image).save(tmp_path / "a.png")
    else:
        tifffile.imwrite(tmp_path / "a.tif", image)
    manifest = predict(tmp_path / f"a.{fmt}", generators(models), tmp_path / "o", SETTINGS, CPU)
    path = tmp_path / "o" / manifest["outputs"]["srcnn"]
    assert path.suffix == suffix
    out = np.asarray(Image.open(path)) if suffix == ".png" else tifffile.imread(path)
    assert out.shape == (40, 56) and out.dtype == dtype


def test_failed_prediction_keeps_earlier_results(models, tmp_path):
    good = tmp_path / "a.tif"
    tifffile.imwrite(good, np.full((12, 12), 300, np.uint16))
    out = tmp_path / "o"
    predict(good, generators(models), out, SETTINGS, CPU)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    data = good.read_bytes()
    good.write_bytes(data[:len(data) - 50])  # truncated pixel data: fails mid-way
    with pytest.raises(ValueError, match="a.tif"):
        predict(good, generators(models), out, SETTINGS, CPU)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (tmp_path / "o.partial").exists()


def test_overlap_below_receptive_field_is_refused(models, tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="predict.overlap: 2 is less than the receptive radius"):
        predict(tmp_path / "a.tif", generators(models), tmp_path / "o",
                dataclasses.replace(SETTINGS, overlap=2), CPU)
    assert not (tmp_path / "o").exists()


def test_script_reports_bad_input_in_one_line_without_outputs(models, tmp_path):
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 0] = 255
    Image.fromarray(colour).save(tmp_path / "red.png")
    proc = run_script("--input", tmp_path / "red.png", "--model", f"srcnn={models['srcnn']}",
                      "--out-dir", tmp_path / "o", "--settings", as_json(SETTINGS))
    assert proc.returncode == 1 and "red.png: colour image" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()


@pytest.mark.parametrize("model,message", [("srcnn", "expected name=path"),
                                           ("bicubic={g}", "'bicubic' names the baseline")])
def test_bad_model_argument(models, tmp_path, model, message):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 8), np.uint8))
    proc = run_script("--input", tmp_path / "a.tif", "--model", model.format(g=models["srcnn"]),
                      "--out-dir", tmp_path / "o", "--settings", as_json(SETTINGS))
    assert proc.returncode != 0 and message in proc.stderr
