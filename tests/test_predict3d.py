"""predict with 3D models: volumes upsampled along x, y and z, tile by cube and z-slab by
z-slab (only a slab's LR slices read at a time), with tricubic beside them and the voxel
size divided on every axis."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import test_predict
from evalkit import make_generator
from rocksr.imaging import images
from rocksr.imaging.images import open_input
from rocksr.imaging.intensity import window_for
from rocksr.imaging.voxel import Voxel
from rocksr.infer import predict as predict_module
from rocksr.infer.inference import upscalers
from rocksr.infer.modelfile import export, open_model
from rocksr.infer.predict import Planes, predict
from rocksr.infer.tiling import receptive_radius, upscale_slabs
from rocksr.nets.models import Generator, save_model
from rocksr.settings import ConfigError
from test_predict import CPU, SETTINGS, write_stack

inline = test_predict.inline  # the fixture: `rocksr ...` run in this process
CARD = {"name": "iso", "phase": 1, "data": "x4_unknown", "run": {"degradation": "unknown"},
        "dataset": {}}


def generator_3d(scale: int = 4, seed: int = 0) -> Generator:
    """A tiny 3D generator with torch's larger default init: the authors' Glorot-uniform one
    gives a near-constant output that would hide seams between cubes."""
    torch.manual_seed(seed)
    g = Generator(scale=scale, blocks=1, filters=4, dim=3)
    for m in g.modules():
        if isinstance(m, torch.nn.Conv3d):
            m.reset_parameters()
    return g.eval()


@pytest.fixture
def model_files(tmp_path):
    """A 3D generator.pt and its exported .safetensors."""
    pt = tmp_path / "models" / "generator.pt"
    pt.parent.mkdir()
    save_model(pt, generator_3d())
    export(pt, pt.with_name("iso.safetensors"), CARD)
    return pt, pt.with_name("iso.safetensors")


def test_a_stack_through_the_command_comes_back_isotropic(model_files, tmp_path, inline):
    """The issue's case: a 40^3 uint16 ImageJ stack of 3.2 um voxels, x4 by 3D model files
    (a generator.pt and an exported .safetensors) -> 160^3 uint16 of 0.8 um voxels on x, y
    and z, with the tricubic baseline beside them."""
    pt, exported = model_files
    stack = write_stack(tmp_path / "in" / "vol.tif", shape=(40, 40, 40), imagej=True,
                        resolution=(1 / 3.2, 1 / 3.2), metadata={"spacing": 3.2, "unit": "um"})
    out = tmp_path / "out"
    status, stderr = inline("predict", stack, "-o", out, "--model", f"pt={pt}", "--model",
                            exported, "--tile-3d", 24, "--overlap", 8, "--device", "cpu")
    assert status == 0, stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["methods"] == ["tricubic", "pt", "iso"] and manifest["dim"] == 3
    assert "isotropically" in manifest["note"] and "isotropically" in stderr
    [entry] = manifest["inputs"]
    assert entry["dim"] == 3 and entry["status"] == "ok"
    assert entry["output_voxel"]["z"] == 0.8 and entry["output_voxel"]["x"] == 0.8
    assert "x, y and z divided by 4" in entry["output_voxel"]["source"]
    lr = tifffile.imread(stack).astype(float)
    for method in ("tricubic", "pt", "iso"):
        with tifffile.TiffFile(out / method / "vol.tif") as tif:
            meta = tif.imagej_metadata
            assert (meta["images"], meta["spacing"], meta["unit"]) == (160, 0.8, "um")
            assert tif.pages[0].resolution == pytest.approx((1 / 0.8, 1 / 0.8))
            sr = tif.asarray()
        assert sr.shape == (160, 160, 160) and sr.dtype == np.uint16
    assert abs(sr.astype(float).mean() - lr.mean()) > 100  # a random network, not tricubic
    tricubic = tifffile.imread(out / "tricubic" / "vol.tif").astype(float)
    assert abs(tricubic.mean() - lr.mean()) < 100
    assert np.abs(tricubic[1::4, 1::4, 1::4] - lr).mean() < np.abs(lr - lr.mean()).mean() / 2


@torch.inference_mode()
def test_tiled_slab_by_slab_equals_the_whole_volume(tmp_path):
    """Cubes of 12 in z-slabs from a lazy reader of the file == the whole volume at once."""
    g = generator_3d(scale=2)
    up = upscalers({"g": g}, 2)["g"]
    stack = write_stack(tmp_path / "v.tif", shape=(30, 26, 28), low=0, high=65535)
    source = open_input(stack)
    window = window_for(source.dtype, SETTINGS.intensity)
    whole = up(window.to_unit(tifffile.imread(stack))[None, None])[0, 0]
    overlap = receptive_radius(g)

    def tiled(overlap):
        slabs = list(upscale_slabs(up, Planes(source, window), 2, 12, overlap, CPU))
        assert [z0 for z0, _ in slabs] == [0, 12, 24]  # 3 slabs of 3 x 3 cubes
        return torch.cat([s for _, s in slabs])

    torch.testing.assert_close(tiled(overlap), whole, atol=1e-5, rtol=0)
    assert (tiled(2) - whole).abs().max() > 1e-3  # too little context: seams (it can fail)


@torch.inference_mode()
def test_slabs_read_only_their_slices(tmp_path, monkeypatch):
    """Each slice is read once, a slab's (tile + 2 overlap) at most are held, and the first
    output slice comes out before the stack is read past the first slab."""
    read, held = [], []
    page = images._read_tiff_page
    monkeypatch.setattr(images, "_read_tiff_page", lambda tif, s: read.append(s.page) or
                        page(tif, s))
    getitem = Planes.__getitem__
    monkeypatch.setattr(Planes, "__getitem__", lambda self, z: held.append(
        len(got := getitem(self, z))) or got)
    g = generator_3d(scale=2)
    tile, overlap = 8, receptive_radius(g)
    settings = dataclasses.replace(SETTINGS, tile_3d=tile, overlap=overlap)
    source = open_input(write_stack(tmp_path / "v.tif", shape=(40, 10, 10)))
    window = window_for(source.dtype, settings.intensity)
    slices = predict_module._upscaled_volume(source, window, upscalers({"g": g}, 2)["g"], 2,
                                             settings, CPU, "test")
    assert next(slices).shape == (20, 20)
    assert len(read) == tile + overlap  # the first slab's slices and its context below
    rest = list(slices)
    assert len(rest) == 2 * 40 - 1
    assert read == list(range(40))  # each once, in order
    assert held == [tile + overlap, *[tile + 2 * overlap] * 3, tile + overlap]  # 5 slabs


def test_a_folder_of_slices_gives_a_folder_of_scale_times_the_slices(tmp_path):
    folder = tmp_path / "scan"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in (1, 2, 10):  # natural order: s10 last
        Image.fromarray(rng.integers(0, 256, (12, 14), dtype=np.uint8)).save(folder / f"s{i}.png")
    manifest = predict([folder], {"iso": (generator_3d(), {"name": "iso"})}, tmp_path / "out",
                       dataclasses.replace(SETTINGS, tile_3d=8, overlap=8), CPU)
    [entry] = manifest["inputs"]
    assert entry["status"] == "ok" and entry["output_voxel"] is None  # PNG: unknown
    for method in ("tricubic", "iso"):
        names = sorted(p.name for p in (tmp_path / "out" / method / "scan").iterdir())
        assert names == sorted(f"s{i}_{k}.png" for i in (1, 2, 10) for k in range(4))
        sr = open_input(tmp_path / "out" / method / "scan")
        assert (sr.kind, len(sr), sr.shape, sr.dtype) == ("folder", 12, (48, 56), np.uint8)
        assert [s.file.name for s in sr.slices][:5] == ["s1_0.png", "s1_1.png", "s1_2.png",
                                                        "s1_3.png", "s2_0.png"]


def test_a_2d_image_given_to_a_3d_model_fails_named_and_the_others_go_on(tmp_path):
    image = tmp_path / "in" / "slice.tif"
    image.parent.mkdir()
    tifffile.imwrite(image, np.zeros((12, 12), np.uint16))
    stack = write_stack(tmp_path / "in" / "vol.tif", shape=(4, 12, 12))
    manifest = predict([image, stack], {"iso": (generator_3d(), {"name": "iso"})},
                       tmp_path / "out", dataclasses.replace(SETTINGS, tile_3d=8, overlap=8), CPU)
    assert manifest["failed"] == 1
    failed, ok = manifest["inputs"]
    assert failed["status"] == "failed" and failed["input"] == str(image)
    assert "single 2D image" in failed["error"] and "need a volume" in failed["error"]
    assert ok["status"] == "ok"
    for method in ("tricubic", "iso"):
        assert sorted(p.name for p in (tmp_path / "out" / method).iterdir()) == ["vol.tif"]


def test_2d_and_3d_models_in_one_call_are_refused_before_any_input_is_read(
        model_files, tmp_path, monkeypatch, inline):
    monkeypatch.setattr(predict_module, "units", lambda *a, **k: pytest.fail("inputs read"))
    flat = make_generator(tmp_path / "flat.pt", 1)
    models = {"flat": open_model(flat), "iso": (generator_3d(), {"name": "iso"})}
    with pytest.raises(ConfigError, match=r"different kinds \(flat: 2D, iso: 3D\)"):
        predict([tmp_path / "nothing.tif"], models, tmp_path / "out", SETTINGS, CPU)
    status, stderr = inline("predict", tmp_path / "nothing.tif", "-o", tmp_path / "out",
                            "--model", flat, "--model", model_files[1], "--device", "cpu")
    assert status == 1 and "different kinds (flat: 2D, iso: 3D)" in stderr
    assert "Traceback" not in stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("z,out_z,text", [
    (3.2, 0.8, "x, y and z divided by 4"),
    (None, None, "x and y divided by 4, z unknown"),
])
def test_voxel_upsampled_along_z(z, out_z, text):
    voxel = Voxel(3.2, 2.0, z, "um", "test").upsampled(4, z=True)
    assert (voxel.x, voxel.y, voxel.z) == (0.8, 0.5, out_z) and voxel.source == f"test; {text}"
    assert Voxel(3.2, 2.0, z, "um", "test").upsampled(4).z == z  # 2D: z unchanged
