"""Archive layout: member names, LR/HR pairing and reading PNG members as one grey channel."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from conftest import png_bytes
from rocksr.data.archive import (
    ArchiveError,
    decode_grey,
    hr_member,
    lr_member,
    open_archive,
    pair_members,
    parse_member,
    read_grey,
)


def test_member_names_round_trip():
    assert hr_member("coal", "test", 3601) == "DeepRockSR-2D/coal2D/coal2D_test_HR/3601.png"
    lr = lr_member("coal", "valid", 7, 2, "default")
    assert lr == "DeepRockSR-2D/coal2D/coal2D_valid_LR_default_X2/0007x2.png"
    m = parse_member(lr)
    assert (m.rock, m.split, m.image_id, m.scale, m.degradation, m.is_hr) == (
        "coal", "valid", 7, 2, "default", False)
    assert parse_member(hr_member("coal", "test", 3601)).is_hr
    for other in ["DeepRockSR-2D/coal2D/", "DeepRockSR-2D/README.txt",
                  "__MACOSX/DeepRockSR-2D/coal2D/coal2D_test_HR/._3601.png"]:
        assert parse_member(other) is None


def names(rock, split, ids, scale=4, degradation="unknown", hr=True):
    out = [lr_member(rock, split, i, scale, degradation) for i in ids]
    return out + ([hr_member(rock, split, i) for i in ids] if hr else [])


def test_pairing_strips_scale_suffix_and_ignores_other_variants():
    members = (names("carbonate", "train", [1, 2]) + names("carbonate", "test", [3601])
               + names("carbonate", "train", [1, 2], scale=2, hr=False)
               + names("carbonate", "test", [3601], scale=2, hr=False)
               # incomplete, unselected:
               + names("carbonate", "train", [1], degradation="default", hr=False)
               + names("coal", "train", [5])  # unselected rock type
               + names("shuffled", "train", [1, 2])  # the real archive's extra folder
               + ["DeepRockSR-2D/", "DeepRockSR-2D/carbonate2D/"])
    pairs = pair_members(members[::-1], ["carbonate"], 4, "unknown")
    assert [(p.rock, p.split, p.image_id) for p in pairs] == [
        ("carbonate", "train", 1), ("carbonate", "train", 2), ("carbonate", "test", 3601)]
    assert pairs[0].lr.endswith("carbonate2D_train_LR_unknown_X4/0001x4.png")
    assert pairs[0].hr.endswith("carbonate2D_train_HR/0001.png")
    x2 = pair_members(members, ["carbonate"], 2, "unknown")
    assert len(x2) == 3 and x2[0].lr.endswith("_X2/0001x2.png") and x2[0].hr == pairs[0].hr


def test_pairing_keeps_requested_rock_order():
    members = names("sandstone", "valid", [3201]) + names("coal", "valid", [3201])
    pairs = pair_members(members, ["sandstone", "coal"], 4, "unknown")
    assert [p.rock for p in pairs] == ["sandstone", "coal"]


def test_missing_partner_names_the_member():
    lonely_hr = names("coal", "train", [1, 2])[1:]  # LR of id 1 missing
    with pytest.raises(ArchiveError,
                       match=re.escape(hr_member("coal", "train", 1)) + ".*missing partner"):
        pair_members(lonely_hr, ["coal"], 4, "unknown")
    lonely_lr = names("coal", "train", [1]) + names("coal", "train", [2], hr=False)
    with pytest.raises(ArchiveError, match=re.escape(lr_member("coal", "train", 2, 4, "unknown"))):
        pair_members(lonely_lr, ["coal"], 4, "unknown")


def test_lr_suffix_must_match_its_folder():
    bad = (names("coal", "train", [1])[1:]
           + ["DeepRockSR-2D/coal2D/coal2D_train_LR_unknown_X4/0001x2.png"])
    with pytest.raises(ArchiveError, match="0001x2.png: LR file name says x2 but its folder is X4"):
        pair_members(bad, ["coal"], 4, "unknown")


def test_empty_selection_names_the_rock_type():
    with pytest.raises(ArchiveError,
                       match="empty selection: no sandstone image pairs at x4 unknown"):
        pair_members(names("coal", "train", [1]), ["coal", "sandstone"], 4, "unknown")


def test_three_identical_channels_become_one():
    grey = np.arange(30, dtype=np.uint8).reshape(5, 6)
    out = decode_grey(png_bytes(grey), "a.png")
    assert out.shape == (5, 6) and out.dtype == np.uint8 and np.array_equal(out, grey)


def test_single_channel_png_is_accepted(tmp_path):
    grey = np.full((4, 4), 7, np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "l.png")
    assert np.array_equal(decode_grey((tmp_path / "l.png").read_bytes(), "l.png"), grey)


def test_different_channels_are_an_error_naming_the_member():
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[..., 1] = 9
    with pytest.raises(ArchiveError, match="x/0001.png: colour image, its channels differ"):
        decode_grey(png_bytes(colour), "x/0001.png")


NOISE = np.random.default_rng(0).integers(0, 256, (16, 16), np.uint8)


@pytest.mark.parametrize("data", [b"not a png at all", png_bytes(NOISE)[:400]],
                         ids=["garbage", "truncated"])
def test_corrupt_png_names_the_member(data):
    with pytest.raises(ArchiveError, match="x/0002.png: corrupt or unreadable PNG"):
        decode_grey(data, "x/0002.png")


def test_real_lr_sample_reads_as_one_grey_channel(lr_samples):
    path = lr_samples[0]
    grey = decode_grey(path.read_bytes(), path.name)
    assert grey.shape == (125, 125) and grey.dtype == np.uint8
    rgb = np.asarray(Image.open(path))
    assert rgb.shape == (125, 125, 3) and np.array_equal(grey, rgb[..., 0])
    assert grey.std() > 10  # real texture, not a blank image


def test_read_grey_from_synthetic_archive(synthetic_archive):
    with open_archive(synthetic_archive) as zf:
        assert read_grey(zf, hr_member("sandstone", "test", 3601)).shape == (32, 32)
        assert read_grey(zf, lr_member("sandstone", "test", 3601, 4, "default")).shape == (8, 8)


def test_missing_or_truncated_archive(tmp_path, synthetic_archive):
    with pytest.raises(ArchiveError, match="nope.zip: archive not found"):
        open_archive(tmp_path / "nope.zip")
    cut = tmp_path / "cut.zip"
    cut.write_bytes(synthetic_archive.read_bytes()[: synthetic_archive.stat().st_size // 2])
    with pytest.raises(ArchiveError,
                       match="cut.zip: not a readable zip archive, truncated or corrupt"):
        open_archive(cut)
