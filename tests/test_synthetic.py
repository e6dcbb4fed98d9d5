"""The synthetic archive: exact DeepRock-SR layout, real id ranges, deterministic content."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import TINY
from rocksr import ROCK_TYPES
from rocksr.data.archive import hr_member, lr_member
from rocksr.data.synthetic import write_archive


def expected_files(counts):
    first = {"train": 1, "valid": 3201, "test": 3601}
    files = set()
    for rock in ROCK_TYPES:
        for split, n in counts.items():
            for i in range(first[split], first[split] + n):
                files.add(hr_member(rock, split, i))
                files |= {lr_member(rock, split, i, s, d)
                          for s in (2, 4) for d in ("default", "unknown")}
    return files


def pixels(zf, name):
    return np.asarray(Image.open(io.BytesIO(zf.read(name))))


def test_exact_layout(synthetic_archive):
    with zipfile.ZipFile(synthetic_archive) as zf:
        names = zf.namelist()
    files = {n for n in names if not n.endswith("/")}
    assert files == expected_files(TINY["counts"])
    assert len(names) == len(set(names))
    assert "DeepRockSR-2D/sandstone2D/sandstone2D_test_LR_unknown_X4/3601x4.png" in files
    assert "DeepRockSR-2D/coal2D/coal2D_valid_LR_default_X2/3201x2.png" in files
    # folder entries, as zip tools write
    assert all(n.rsplit("/", 2)[0] + "/" in names for n in files)


def test_pngs_are_three_identical_channels_at_each_scale(synthetic_archive):
    with zipfile.ZipFile(synthetic_archive) as zf:
        for name, side in [(hr_member("coal", "train", 1), 32),
                           (lr_member("coal", "train", 1, 2, "unknown"), 16),
                           (lr_member("coal", "train", 1, 4, "default"), 8)]:
            rgb = pixels(zf, name)
            assert rgb.shape == (side, side, 3) and rgb.dtype == np.uint8
            assert (np.array_equal(rgb[..., 0], rgb[..., 1])
                    and np.array_equal(rgb[..., 0], rgb[..., 2]))


def test_default_lr_is_plain_bicubic_and_unknown_differs(synthetic_archive):
    with zipfile.ZipFile(synthetic_archive) as zf:
        hr = pixels(zf, hr_member("carbonate", "valid", 3201))[..., 0]
        default = pixels(zf, lr_member("carbonate", "valid", 3201, 4, "default"))[..., 0]
        unknown = pixels(zf, lr_member("carbonate", "valid", 3201, 4, "unknown"))[..., 0]
    assert np.array_equal(default, np.asarray(Image.fromarray(hr).resize((8, 8), Image.BICUBIC)))
    assert not np.array_equal(default, unknown)
    # the same image, degraded differently
    assert abs(float(default.mean()) - float(unknown.mean())) < 20


def test_rock_textures_differ(tmp_path):
    # Pore fraction (dark pixels) and how much the image changes pixel to pixel.
    archive = write_archive(tmp_path / "a.zip", {"hr_size": 96, "seed": 0,
                                                  "counts": {"train": 1, "valid": 1, "test": 1}})
    stats = {}
    with zipfile.ZipFile(archive) as zf:
        for rock in ROCK_TYPES:
            hr = pixels(zf, hr_member(rock, "test", 3601))[..., 0].astype(float)
            stats[rock] = ((hr < 70).mean(), np.abs(np.diff(hr, axis=1)).mean())
    assert 0.1 < stats["sandstone"][0] < 0.5  # packed grains with pores between
    assert 0.05 < stats["carbonate"][0] < 0.5
    assert stats["coal"][0] < 0.1  # a tight matrix: only thin fractures are dark
    assert stats["coal"][1] < stats["sandstone"][1] and stats["coal"][1] < stats["carbonate"][1]


def test_deterministic_and_independent_of_counts(synthetic_archive, tmp_path):
    again = write_archive(tmp_path / "again.zip", TINY)
    assert again.read_bytes() == synthetic_archive.read_bytes()
    fewer = write_archive(tmp_path / "fewer.zip",
                          {**TINY, "counts": {"train": 1, "valid": 1, "test": 1}})
    other_seed = write_archive(tmp_path / "seed1.zip", {**TINY, "seed": 1})
    name = hr_member("sandstone", "test", 3601)
    digest = {}
    for path in (synthetic_archive, fewer, other_seed):
        with zipfile.ZipFile(path) as zf:
            digest[path.name] = hashlib.sha256(zf.read(name)).hexdigest()
    assert digest["fewer.zip"] == digest[synthetic_archive.name] != digest["seed1.zip"]
    # no temporary files left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.zip", "fewer.zip", "seed1.zip"]


def test_bad_settings_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="multiple of 4"):
        write_archive(tmp_path / "a.zip", {**TINY, "hr_size": 30})
    with pytest.raises(ValueError, match="counts"):
        write_archive(tmp_path / "a.zip", {"hr_size": 32, "seed": 0})
    assert not list(tmp_path.iterdir())
