"""predict: the user's own images in every format; outputs mirror the inputs, keep their
dtype, format and voxel size; nothing earlier is overwritten or lost; each input's failure
is named and the others complete (the real DeepRock-SR LR samples included)."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from evalkit import as_json, make_generator, tiny_config
from rocksr import __main__ as command
from rocksr.imaging.resize import bicubic_upscale
from rocksr.infer.modelfile import open_model
from rocksr.infer.predict import predict
from rocksr.settings import IntensitySettings
from rocksr.workflow import config as cfg

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
# The rule's settings (intensity window full), with tiles small enough for the test images.
SETTINGS = dataclasses.replace(cfg.predict_settings(tiny_config()), tile=16, overlap=8)
METHODS = ("bicubic", "srcnn", "srgan")


def run_command(*args, cwd=None) -> subprocess.CompletedProcess:
    """`python -m rocksr ...` from the checkout (the installed command is tested in
    test_command.py)."""
    return subprocess.run([sys.executable, "-m", "rocksr", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


@pytest.fixture
def inline(capsys):
    """`rocksr ...` run in this process (no torch start-up): (exit status, stderr)."""
    def run(*args) -> tuple[int, str]:
        try:
            command.main([str(a) for a in args])
            status = 0
        except SystemExit as exc:
            status = exc.code
        finally:
            logging.getLogger().handlers.clear()
        return status, capsys.readouterr().err
    return run


@pytest.fixture
def models(tmp_path):
    return {"srcnn": make_generator(tmp_path / "g1.pt", 1),
            "srgan": make_generator(tmp_path / "g2.pt", 2)}


def loaded(models):
    return {name: open_model(path) for name, path in models.items()}


def model_args(models):
    return [a for n, p in models.items() for a in ("--model", f"{n}={p}")]


def write_stack(path, shape=(3, 20, 24), low=10000, high=20000, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(0).integers(low, high, shape, dtype=np.uint16)
    tifffile.imwrite(path, data, photometric="minisblack", **kw)
    return path


def test_real_samples_folder_gives_png_folders(lr_samples, models, tmp_path):
    folder = lr_samples[0].parent
    out = tmp_path / "sr"
    proc = run_command("predict", folder, "-o", out, *model_args(models),
                       "--settings", as_json(SETTINGS), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    [entry] = manifest["inputs"]
    assert entry["kind"] == "folder" and entry["slices"] == len(lr_samples)
    assert entry["intensity"]["low"] == 0 and entry["intensity"]["high"] == 255
    for method in METHODS:
        sub = out / method / folder.name
        assert entry["outputs"][method] == f"{method}/{folder.name}"
        assert sorted(p.name for p in sub.iterdir()) == [s.name for s in lr_samples]
        with Image.open(sub / lr_samples[0].name) as im:
            assert im.mode == "L" and im.size == (500, 500)
            assert json.loads(im.text["rocksr"])["method"] == method
    # Bicubic through tiles is the whole-image bicubic, rounded to 8 bits.
    lr = np.asarray(Image.open(lr_samples[0]).convert("L"), dtype=np.float32) / 255
    expected = (bicubic_upscale(torch.from_numpy(lr), 4).clamp(0, 1) * 255).round().numpy()
    got = np.asarray(Image.open(out / "bicubic" / folder.name / lr_samples[0].name))
    assert np.abs(got - expected).max() <= 1


def test_16bit_imagej_stack_keeps_its_voxel_size_dtype_and_clipped_fraction(models, tmp_path):
    """The issue's case: a uint16 ImageJ stack of 3.2 um voxels comes back as uint16 with
    0.8 um x/y and 3.2 um z as ImageJ reads the file; the clipped fraction is recorded."""
    stack = write_stack(tmp_path / "vol.tif", imagej=True, resolution=(1 / 3.2, 1 / 3.2),
                        metadata={"spacing": 3.2, "unit": "um"})
    settings = dataclasses.replace(SETTINGS, intensity=IntensitySettings("percentile", (1, 99)))
    manifest = predict([stack], loaded(models), tmp_path / "out", settings, CPU)
    [entry] = manifest["inputs"]
    assert entry["status"] == "ok" and manifest["failed"] == 0
    assert entry["outputs"] == {m: f"{m}/vol.tif" for m in METHODS}
    window = entry["intensity"]
    assert 10000 <= window["low"] < window["high"] < 20000
    assert window["clipped_fraction"] == pytest.approx(0.02, abs=0.005)  # the 1% tails
    assert entry["voxel"]["x"] == 3.2 and entry["output_voxel"]["x"] == 0.8
    assert "in-plane only" in manifest["note"]
    for method in METHODS:
        with tifffile.TiffFile(tmp_path / "out" / method / "vol.tif") as tif:
            meta = tif.imagej_metadata
            assert (meta["images"], meta["spacing"], meta["unit"]) == (3, 3.2, "um")
            assert tif.pages[0].resolution == pytest.approx((1 / 0.8, 1 / 0.8))
            sr = tif.asarray()
            assert json.loads(meta["Info"])["intensity"] == window
        assert sr.shape == (3, 80, 96) and sr.dtype == np.uint16
        assert window["low"] <= sr.min() and sr.max() <= window["high"]  # the inverse, clipped
    bicubic = tifffile.imread(tmp_path / "out" / "bicubic" / "vol.tif").astype(float)
    assert abs(bicubic.mean() - tifffile.imread(stack).mean()) < 100


def test_same_names_in_different_folders_all_come_out(models, tmp_path):
    """Issue 22, finding 2: a/sample.tif, b/sample.tif, sample.png and a folder sample/ each
    get their own outputs (they used to overwrite one predict/sample/ folder)."""
    inputs = [write_stack(tmp_path / "in" / d / "sample.tif", seed_shape)
              for d, seed_shape in (("a", (2, 12, 12)), ("b", (3, 12, 12)))]
    Image.fromarray(np.full((12, 12), 7, np.uint8)).save(tmp_path / "in" / "sample.png")
    (tmp_path / "in" / "sample").mkdir()
    Image.fromarray(np.full((12, 12), 9, np.uint8)).save(tmp_path / "in" / "sample" / "s1.png")
    inputs += [tmp_path / "in" / "sample.png", tmp_path / "in" / "sample"]
    manifest = predict(inputs, loaded(models), tmp_path / "out", SETTINGS, CPU)
    assert manifest["failed"] == 0
    srgan = tmp_path / "out" / "srgan"
    assert len(tifffile.TiffFile(srgan / "a" / "sample.tif").pages) == 2
    assert len(tifffile.TiffFile(srgan / "b" / "sample.tif").pages) == 3
    assert (srgan / "sample.png").is_file() and (srgan / "sample" / "s1.png").is_file()


def test_a_different_input_never_overwrites_an_earlier_prediction(models, tmp_path):
    """Issue 22, finding 2: the second prediction of a different input under the same name
    stops with a clear error (the policy: never replace another input's outputs); the same
    input predicted again replaces its own."""
    first = write_stack(tmp_path / "a" / "sample.tif")
    out = tmp_path / "out"
    predict([first], loaded(models), out, SETTINGS, CPU)
    before = (out / "srgan" / "sample.tif").read_bytes()
    other = write_stack(tmp_path / "b" / "sample.tif", low=30000, high=40000)
    manifest = predict([other], loaded(models), out, SETTINGS, CPU)
    [entry] = manifest["inputs"]
    assert manifest["failed"] == 1 and entry["status"] == "failed"
    assert f"holds the prediction of {first}; it is not overwritten" in entry["error"]
    assert (out / "srgan" / "sample.tif").read_bytes() == before
    (out / "bicubic" / "stray.tif").write_bytes(b"not ours")  # a file rocksr did not write
    stray = write_stack(tmp_path / "c" / "stray.tif")
    [entry] = predict([stray], loaded(models), out, SETTINGS, CPU)["inputs"]
    assert "holds a file that rocksr did not write" in entry["error"]
    assert predict([first], loaded(models), out, SETTINGS, CPU)["failed"] == 0  # its own


@pytest.mark.parametrize("name", ["..png", "...png", ".png.png"])
def test_dot_names_cannot_alias_or_delete_the_output_folder(models, tmp_path, name):
    """Issue 22, finding 1: `..png` (stem `.`) used to make the output folder `predict/.`,
    whose swap deleted every earlier prediction; `...png` (stem `..`) failed with EBUSY and
    left a `.partial`. Outputs now mirror the file's name inside each method's folder."""
    earlier = write_stack(tmp_path / "earlier.tif")
    out = tmp_path / "out"
    predict([earlier], loaded(models), out, SETTINGS, CPU)
    Image.fromarray(np.full((12, 12), 50, np.uint8)).save(tmp_path / name, format="PNG")
    manifest = predict([tmp_path / name], loaded(models), out, SETTINGS, CPU)
    assert manifest["failed"] == 0
    for method in METHODS:
        assert (out / method / "earlier.tif").is_file()
        assert Image.open(out / method / name).size == (48, 48)
    assert not list(tmp_path.rglob("*.partial")) and not list(tmp_path.rglob("*.tmp"))


def test_one_failing_input_is_named_and_the_others_complete(models, tmp_path):
    good = write_stack(tmp_path / "good.tif")
    bad = tmp_path / "bad.tif"
    bad.write_bytes(good.read_bytes()[:300])  # cut inside its pixel data
    out = tmp_path / "out"
    proc = run_command("predict", bad, good, tmp_path / "absent.tif", "-o", out,
                       *model_args(models), "--tile", 16, "--overlap", 8, "--device", "cpu")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert any(f"{bad}: failed: " in line for line in errors), proc.stderr
    assert any("absent.tif: no such file or folder" in line for line in errors)
    assert errors[-1].endswith(f"ERROR 2 input(s) failed: {tmp_path / 'absent.tif'}, {bad}")
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["status"] for e in manifest["inputs"]] == ["failed", "failed", "ok"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.tif")) == [
        f"{m}/good.tif" for m in METHODS]


def test_two_inputs_of_one_run_with_overlapping_outputs_fail_the_second(models, tmp_path):
    folder = tmp_path / "vol"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((12, 12), i, np.uint8)).save(folder / f"{i}.png")
    manifest = predict([folder, folder / "0.png"], loaded(models), tmp_path / "out", SETTINGS,
                       CPU)
    assert [e["status"] for e in manifest["inputs"]] == ["ok", "failed"]
    assert "would overlap those of" in manifest["inputs"][1]["error"]


def test_a_folder_tree_mirrors_its_folders_and_skips_the_output_folder(models, tmp_path):
    tree = tmp_path / "scans"
    write_stack(tree / "rock1" / "top.tif", shape=(2, 8, 8))
    write_stack(tree / "rock1" / "bottom.tif", shape=(2, 8, 8))
    for i in range(2):
        write_stack(tree / "rock2" / "slices" / f"s{i}.tif", shape=(8, 8))
    (tree / ".hidden").mkdir()
    (tree / ".hidden" / "x.png").write_bytes(b"not an image")
    srgan = {"srgan": loaded(models)["srgan"]}
    settings = dataclasses.replace(SETTINGS, bicubic=False)
    manifest = predict([tree], srgan, tree / "sr", settings, CPU)
    assert manifest["failed"] == 0
    assert {e["outputs"]["srgan"] for e in manifest["inputs"]} == {
        "srgan/scans/rock1/bottom.tif", "srgan/scans/rock1/top.tif",
        "srgan/scans/rock2/slices"}
    # Run again into the same folder: its outputs are not read as inputs.
    assert len(predict([tree], srgan, tree / "sr", settings, CPU)["inputs"]) == 3


@pytest.mark.parametrize("fmt,dtype", [("png", np.uint8), ("png", np.uint16),
                                       ("tif", np.uint8)])
def test_single_image_keeps_its_format_and_dtype(models, tmp_path, fmt, dtype):
    image = np.random.default_rng(0).integers(0, np.iinfo(dtype).max, (10, 14), dtype=dtype)
    if fmt == "png":
        Image.fromarray(image).save(tmp_path / "a.png")
    else:
        tifffile.imwrite(tmp_path / "a.tif", image)
    predict([tmp_path / f"a.{fmt}"], loaded(models), tmp_path / "o", SETTINGS, CPU)
    path = tmp_path / "o" / "srcnn" / f"a.{fmt}"
    out = np.asarray(Image.open(path)) if fmt == "png" else tifffile.imread(path)
    assert out.shape == (40, 56) and out.dtype == dtype


def test_overlap_below_receptive_field_is_refused(models, tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="predict.overlap: 2 is less than the receptive radius"):
        predict([tmp_path / "a.tif"], loaded(models), tmp_path / "o",
                dataclasses.replace(SETTINGS, overlap=2), CPU)
    assert not (tmp_path / "o").exists()


def test_command_defaults_and_a_minmax_window_from_its_options(models, tmp_path, inline):
    """`--settings '{}'` or none: every key has its default (predict.tile was missing);
    an option on the command line overrides --settings."""
    stack = write_stack(tmp_path / "v.tif", shape=(2, 12, 12))
    status, stderr = inline("predict", stack, "-o", tmp_path / "o", *model_args(models),
                            "--settings", "{tile: 9, intensity: {window: percentile}}",
                            "--tile", 12, "--window", "minmax", "--no-bicubic", "--device", "cpu")
    assert status == 0, stderr
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["settings"]["tile"] == 12 and manifest["settings"]["overlap"] == 40
    assert manifest["methods"] == ["srcnn", "srgan"]
    window = manifest["inputs"][0]["intensity"]
    assert window["window"].startswith("minmax") and window["clipped_fraction"] == 0
    assert " WARNING " not in stderr  # on the CPU as asked: no note
    status, stderr = inline("predict", stack, "-o", tmp_path / "o2", *model_args(models),
                            "--settings", "{}", "--device", "cpu", "--bicubic")
    assert status == 0, stderr
    assert json.loads((tmp_path / "o2" / "manifest.json").read_text())["settings"] == {
        **cfg.predict_settings(tiny_config()).to_dict(), "device": "cpu"}


def test_bad_input_is_one_line_without_outputs(models, tmp_path, inline):
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 0] = 255
    Image.fromarray(colour).save(tmp_path / "red.png")
    status, stderr = inline("predict", tmp_path / "red.png", "-o", tmp_path / "o",
                            "--model", models["srcnn"], "--device", "cpu")
    assert status == 1 and "red.png: failed: " in stderr and "colour image" in stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["manifest.json"]


@pytest.mark.parametrize("args,message", [
    (["--model", "bicubic={g}"], "'bicubic' names the baseline"),
    (["--model", "{g}", "--model", "{g}"], "two models are named 'g1'"),
    (["--model", "x/y={g}"], "no usable name"),
    (["--model", "{g}", "--window", "bogus"], "invalid choice: 'bogus'"),
    (["--model", "{g}", "--tile", "4"], "predict.tile: must be at least 8, got 4"),
])
def test_bad_arguments_are_one_line(models, tmp_path, inline, args, message):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 8), np.uint8))
    args = [a.format(g=models["srcnn"]) for a in args]
    status, stderr = inline("predict", tmp_path / "a.tif", "-o", tmp_path / "o", *args)
    assert status != 0 and message in stderr and not (tmp_path / "o").exists()
