"""The DeepRock-SR zip layouts: member names, LR/HR pairing and reading members.

Layout of the 2D archive (docs/data.md), and of the 3D one with `3D` and `.mat`:
    DeepRockSR-2D/<rock>2D/<rock>2D_<split>_HR/0001.png
    DeepRockSR-2D/<rock>2D/<rock>2D_<split>_LR_<degradation>_X<scale>/0001x<scale>.png
    DeepRockSR-3D/<rock>3D/<rock>3D_<split>_HR/0001.mat
The real archive also holds a `shuffled2D` folder; no rock type selects it, so it is ignored.
A 2D member is a grey PNG slice, a 3D one a MATLAB volume (rocksr.data.volumes).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from rocksr import SPLITS
from rocksr.data.volumes import VolumeError, as_grey_levels, read_volume
from rocksr.imaging.grey import grey_channel

ROOTS = {2: "DeepRockSR-2D", 3: "DeepRockSR-3D"}
ROOT = ROOTS[2]
SUFFIX = {2: "png", 3: "mat"}  # the members' file type in each archive
NOUN = {2: "image", 3: "volume"}
DEGRADATIONS = ("default", "unknown")
SCALES = (2, 4)

# Anchored at the rock folder, not the archive root, so a re-zipped copy with another
# top folder still pairs. HR names are bare ids; LR names carry the scale as `x<scale>`.
_MEMBER = re.compile(
    r"(?:^|/)(?P<rock>[a-z]+)(?P<dim>[23])D/(?P=rock)(?P=dim)D_(?P<split>train|valid|test)_"
    r"(?:HR/(?P<hr_id>\d+)|LR_(?P<degradation>[a-z]+)_X(?P<scale>\d+)/(?P<lr_id>\d+)x(?P<suffix>\d+))"
    r"\.(?P<ext>png|mat)$"
)


class ArchiveError(ValueError):
    """Bad input in the archive; the message names the archive or member and what is wrong."""


def hr_member(rock: str, split: str, image_id: int, dim: int = 2) -> str:
    return f"{ROOTS[dim]}/{rock}{dim}D/{rock}{dim}D_{split}_HR/{image_id:04d}.{SUFFIX[dim]}"


def lr_member(rock: str, split: str, image_id: int, scale: int, degradation: str,
              dim: int = 2) -> str:
    return (f"{ROOTS[dim]}/{rock}{dim}D/{rock}{dim}D_{split}_LR_{degradation}_X{scale}/"
            f"{image_id:04d}x{scale}.{SUFFIX[dim]}")


@dataclass(frozen=True)
class Member:
    rock: str
    split: str
    image_id: int
    scale: int | None  # None for HR
    degradation: str | None  # None for HR
    suffix: int | None  # the `x<scale>` of an LR file name
    dim: int = 2  # 2: a PNG slice of the 2D archive, 3: a MATLAB volume of the 3D one

    @property
    def is_hr(self) -> bool:
        return self.scale is None


def parse_member(name: str) -> Member | None:
    """What a member name says, or None for anything that is not an HR/LR image."""
    m = _MEMBER.search(name)
    if m is None or m["ext"] != SUFFIX[int(m["dim"])]:
        return None
    if m["hr_id"] is not None:
        return Member(m["rock"], m["split"], int(m["hr_id"]), None, None, None, int(m["dim"]))
    return Member(m["rock"], m["split"], int(m["lr_id"]), int(m["scale"]), m["degradation"],
                  int(m["suffix"]), int(m["dim"]))


@dataclass(frozen=True)
class Pair:
    rock: str
    split: str  # the dataset's own split
    image_id: int
    hr: str  # member names
    lr: str


def pair_members(names, rock_types, scale: int, degradation: str,
                 where: str = "the archive", dim: int = 2) -> list[Pair]:
    """LR/HR pairs of the selected rock types at one scale and degradation, of the 2D
    archive's images or (`dim` 3) the 3D archive's volumes.

    Sorted by rock type (in the given order), split and id. Every selected HR image needs
    its LR partner and vice versa; a rock type without any pair is an error.
    """
    hr, lr = {}, {}
    for name in names:
        m = parse_member(name)
        if m is None or m.rock not in rock_types or m.dim != dim:
            continue
        key = (m.rock, m.split, m.image_id)
        if m.is_hr:
            hr[key] = name
        elif m.scale == scale and m.degradation == degradation:
            if m.suffix != scale:
                raise ArchiveError(
                    f"{name}: LR file name says x{m.suffix} but its folder is X{scale}")
            lr[key] = name
    for have, lack, folder in ((hr, lr, f"LR_{degradation}_X{scale}"), (lr, hr, "HR")):
        lonely = sorted(have.keys() - lack.keys())
        if lonely:
            rock, split, _ = lonely[0]
            raise ArchiveError(f"{have[lonely[0]]}: missing partner, no {NOUN[dim]} with this "
                               f"id in {rock}{dim}D_{split}_{folder}/ of {where} "
                               f"({len(lonely)} {NOUN[dim]}(s) without a partner)")
    found = {key[0] for key in hr}
    for rock in rock_types:
        if rock not in found:
            example = lr_member(rock, "train", 1, scale, degradation, dim)
            raise ArchiveError(f"empty selection: no {rock} {NOUN[dim]} pairs at x{scale} "
                               f"{degradation} in {where} (expected members like {example})")
    order = {rock: i for i, rock in enumerate(rock_types)}
    keys = sorted(hr, key=lambda k: (order[k[0]], SPLITS.index(k[1]), k[2]))
    return [Pair(*key, hr=hr[key], lr=lr[key]) for key in keys]


def open_archive(path: str | Path) -> zipfile.ZipFile:
    """Open the zip, turning a missing or unreadable file into an ArchiveError."""
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ArchiveError(f"{path}: archive not found") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{path}: not a readable zip archive, truncated or corrupt ({exc}); "
                           "download or generate it again") from None


def decode_grey(data: bytes, name: str) -> np.ndarray:
    """One (H, W) uint8 channel from PNG bytes; 3 identical channels count as grey."""
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            im.load()
            mode, pixels = im.mode, np.asarray(im)
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error,
            Image.DecompressionBombError) as exc:
        raise ArchiveError(f"{name}: corrupt or unreadable PNG ({exc})") from None
    if mode in ("L", "RGB"):
        return grey_channel(pixels, "YXS" if mode == "RGB" else "YX", name, ArchiveError)
    raise ArchiveError(f"{name}: unsupported PNG mode {mode!r} (expected 8-bit grey or RGB)")


def _read_bytes(zf: zipfile.ZipFile, member: str) -> bytes:
    try:
        return zf.read(member)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ArchiveError(f"{member}: cannot read from {zf.filename} ({exc})") from None


def read_grey(zf: zipfile.ZipFile, member: str) -> np.ndarray:
    return decode_grey(_read_bytes(zf, member), member)


def read_grey_volume(zf: zipfile.ZipFile, member: str) -> np.ndarray:
    """A (D, H, W) uint8 volume from a MATLAB (.mat) member."""
    try:
        return as_grey_levels(read_volume(_read_bytes(zf, member), member), member)
    except VolumeError as exc:
        raise ArchiveError(str(exc)) from None


def read_member(zf: zipfile.ZipFile, member: str) -> np.ndarray:
    """A member as uint8 grey levels: (H, W) from a PNG, (D, H, W) from a volume."""
    return (read_grey if member.endswith(".png") else read_grey_volume)(zf, member)
