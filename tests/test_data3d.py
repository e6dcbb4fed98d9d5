"""The 3D archive: member names and pairing, the synthetic DeepRockSR-3D.zip, the split into
packs of volumes; every bad member named and nothing left behind."""

from __future__ import annotations

import csv
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import TINY_3D, mat73_bytes
from rocksr import ROCK_TYPES, SPLITS
from rocksr.data.archive import (
    ArchiveError,
    hr_member,
    lr_member,
    open_archive,
    pair_members,
    parse_member,
    read_member,
)
from rocksr.data.packs import load_pack, read_index
from rocksr.data.split import split_archive
from rocksr.data.synthetic import rock_image, write_archive
from rocksr.data.volumes import to_matlab
from rocksr.imaging.degrade import downsample, shrink


def test_3d_member_names_and_pairing():
    hr = hr_member("coal", "test", 901, dim=3)
    lr = lr_member("coal", "test", 901, 4, "default", dim=3)
    assert hr == "DeepRockSR-3D/coal3D/coal3D_test_HR/0901.mat"
    assert lr == "DeepRockSR-3D/coal3D/coal3D_test_LR_default_X4/0901x4.mat"
    m = parse_member(lr)
    assert (m.rock, m.split, m.image_id, m.scale, m.dim) == ("coal", "test", 901, 4, 3)
    assert parse_member(hr_member("coal", "test", 1)).dim == 2
    assert parse_member("DeepRockSR-3D/coal3D/coal3D_test_HR/0901.png") is None
    names = [hr, lr, hr_member("coal", "test", 901), lr_member("coal", "test", 901, 4, "default")]
    pairs = pair_members(names, ["coal"], 4, "default", dim=3)
    assert [(p.hr, p.lr) for p in pairs] == [(hr, lr)]  # the 2D members are not taken
    with pytest.raises(ArchiveError, match=f"{hr}: missing partner, no volume with this id in "
                                           "coal3D_test_LR_default_X4/"):
        pair_members([hr], ["coal"], 4, "default", dim=3)
    with pytest.raises(ArchiveError, match="no sandstone volume pairs at x4 default"):
        pair_members(names, ["coal", "sandstone"], 4, "default", dim=3)


def test_synthetic_3d_layout_and_content(synthetic_archive_3d):
    with zipfile.ZipFile(synthetic_archive_3d) as zf:
        files = {n for n in zf.namelist() if not n.endswith("/")}
        hr = read_member(zf, hr_member("sandstone", "valid", 801, 3))
        default = read_member(zf, lr_member("sandstone", "valid", 801, 4, "default", 3))
        unknown = read_member(zf, lr_member("sandstone", "valid", 801, 4, "unknown", 3))
        x2 = read_member(zf, lr_member("sandstone", "valid", 801, 2, "default", 3))
    expected = {name for rock in ROCK_TYPES
                for split, first in zip(SPLITS, (1, 801, 901))
                for i in range(first, first + TINY_3D["counts"][split])
                for name in [hr_member(rock, split, i, 3)]
                + [lr_member(rock, split, i, s, d, 3) for s in (2, 4)
                   for d in ("default", "unknown")]}
    assert files == expected
    assert hr.shape == (16, 16, 16) and default.shape == unknown.shape == (4, 4, 4)
    assert x2.shape == (8, 8, 8) and hr.dtype == np.uint8
    assert np.array_equal(hr, rock_image("sandstone", 801, 16, 0, dim=3))
    assert np.array_equal(default, downsample(hr, 4, "default", np.random.default_rng(0)))
    assert not np.array_equal(default, unknown)


def test_synthetic_3d_is_deterministic(synthetic_archive_3d, tmp_path):
    again = write_archive(tmp_path / "again.zip", TINY_3D, dim=3)
    assert again.read_bytes() == synthetic_archive_3d.read_bytes()


def test_3d_textures_differ():
    stats = {}
    for rock in ROCK_TYPES:
        v = rock_image(rock, 1, 48, 0, dim=3).astype(float)
        stats[rock] = ((v < 70).mean(), np.abs(np.diff(v, axis=0)).mean())
    assert 0.15 < stats["sandstone"][0] < 0.5  # packed spheres with pores between
    assert 0.05 < stats["carbonate"][0] < 0.4   # moldic and vuggy pores
    assert stats["coal"][0] < 0.1               # tight matrix, thin fracture planes
    assert stats["coal"][1] < min(stats["sandstone"][1], stats["carbonate"][1])


def test_3d_default_shrink_is_2d_bicubic_on_each_slice_of_a_depth_constant_volume():
    """Separable: on a volume constant along depth, the 3D shrink is PIL's 2D bicubic of
    each slice (the depth pass of a constant leaves it as it is)."""
    image = np.random.default_rng(0).random((16, 12)).astype(np.float32) * 255
    volume = np.repeat(image[None], 8, axis=0)
    small = np.asarray(Image.fromarray(image, "F").resize((3, 4), Image.BICUBIC))
    np.testing.assert_allclose(shrink(volume, 4), np.repeat(small[None], 2, axis=0), atol=1e-3)
    # and along each axis alike: a volume constant along W shrinks as its (D, H) planes do
    np.testing.assert_allclose(shrink(np.moveaxis(volume, 0, 2), 4),
                               np.moveaxis(shrink(volume, 4), 0, 2), atol=1e-3)


def run(tmp_path, archive, scale=4, degradation="unknown", rock_types=ROCK_TYPES):
    out = tmp_path / "out"
    split_archive(archive, out / "packs", out / "manifest.csv", list(rock_types), scale,
                  degradation, workers=2, dim=3)
    with (out / "manifest.csv").open() as f:
        return out, list(csv.DictReader(f))


def test_split_3d_packs_volumes(tmp_path, synthetic_archive_3d):
    out, rows = run(tmp_path, synthetic_archive_3d)
    index = read_index(out / "packs")
    assert index["dim"] == 3 and index["scale"] == 4
    assert [(e["rock"], e["split"], e["n"], e["hr_size"], e["lr_size"])
            for e in index["packs"]][:3] == [
        ("carbonate", s, n, [16, 16, 16], [4, 4, 4]) for s, n in zip(SPLITS, (2, 1, 1))]
    pack = load_pack(out / "packs", "coal", "train")
    assert pack.hr.shape == (2, 16, 16, 16) and pack.lr.shape == (2, 4, 4, 4)
    assert pack.hr.dtype == pack.lr.dtype == np.uint8 and pack.ids.tolist() == [1, 2]
    with open_archive(synthetic_archive_3d) as zf:
        assert np.array_equal(pack.hr[1], read_member(zf, hr_member("coal", "train", 2, 3)))
        lr = read_member(zf, lr_member("coal", "train", 2, 4, "unknown", 3))
        assert np.array_equal(pack.lr[1], lr)
    assert len(rows) == 12 and rows[0] == {
        "rock_type": "carbonate", "split": "train", "id": "1",
        "hr_member": hr_member("carbonate", "train", 1, 3),
        "lr_member": lr_member("carbonate", "train", 1, 4, "unknown", 3),
        "hr_depth": "16", "hr_height": "16", "hr_width": "16",
        "lr_depth": "4", "lr_height": "4", "lr_width": "4"}
    assert sorted(p.name for p in out.iterdir()) == ["manifest.csv", "packs"]


def test_split_3d_reads_v73_members(tmp_path, altered_archive_3d):
    volume = np.arange(16**3, dtype=np.uint32).reshape(16, 16, 16).astype(np.uint8)
    hr = hr_member("coal", "test", 901, 3)
    out, _ = run(tmp_path, altered_archive_3d(put={hr: mat73_bytes({"temp": to_matlab(volume)})}))
    assert np.array_equal(load_pack(out / "packs", "coal", "test").hr[0], volume)


LR = lr_member("coal", "valid", 801, 4, "unknown", 3)
HR = hr_member("coal", "valid", 801, 3)
HR2 = hr_member("coal", "train", 2, 3)


@pytest.mark.parametrize("change, message", [
    ({"put": {LR: b"MATLAB 5.0 MAT-file" + bytes(200)}}, f"{LR}: corrupt or unreadable .mat"),
    ({"drop": {LR}}, f"{HR}: missing partner, no volume"),
    ({"put": {LR: np.zeros((4, 4, 5), np.uint8)}},
     f"{LR}: wrong size, LR is 5x4x4 but its HR partner {HR} is 16x16x16; HR must be 4x the "
     "LR size on every axis"),
    ({"put": {LR: np.zeros((1, 4, 4), np.uint8)}},
     f"{LR}: wrong size, LR is 4x4x1"),
    ({"put": {HR2: np.zeros((20, 16, 16), np.uint8),
              lr_member("coal", "train", 2, 4, "unknown", 3): np.zeros((5, 4, 4), np.uint8)}},
     f"{HR2}: wrong size, 16x16x20 while the other coal train HR volumes are 16x16x16"),
    ({"put": {LR: mat73_bytes({"a": np.zeros((4, 4, 4)), "b": np.zeros((4, 4, 4))})}},
     f"{LR}: 2 arrays (a, b) and none named 'temp'"),
    ({"put": {LR: mat73_bytes({"temp": np.full((4, 4, 4), 0.5)})}},
     f"{LR}: float64 values from 0.5 to 0.5, expected 8-bit grey levels"),
    ({"put": {LR: mat73_bytes({"temp": np.zeros((4, 4), np.uint8)})}},
     f"{LR}: a 2-D array of shape (4, 4), expected a 3-D volume"),
], ids=["corrupt", "no-lr", "lr-axis", "lr-flat", "hr-size", "two-arrays", "dtype", "2d"])
def test_bad_3d_member_is_named_and_nothing_is_left(tmp_path, altered_archive_3d, change,
                                                    message):
    with pytest.raises(ArchiveError, match="^" + message.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")):
        run(tmp_path, altered_archive_3d(**change))
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir())
