"""The DeepRockSR-2D.zip layout: member names, LR/HR pairing and reading members as grey.

Layout (docs/data.md):
    DeepRockSR-2D/<rock>2D/<rock>2D_<split>_HR/0001.png
    DeepRockSR-2D/<rock>2D/<rock>2D_<split>_LR_<degradation>_X<scale>/0001x<scale>.png
The real archive also holds a `shuffled2D` folder; no rock type selects it, so it is ignored.
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
from rocksr.imaging.grey import grey_channel

ROOT = "DeepRockSR-2D"
DEGRADATIONS = ("default", "unknown")
SCALES = (2, 4)

# Anchored at the rock folder, not the archive root, so a re-zipped copy with another
# top folder still pairs. HR names are bare ids; LR names carry the scale as `x<scale>`.
_MEMBER = re.compile(
    r"(?:^|/)(?P<rock>[a-z]+)2D/(?P=rock)2D_(?P<split>train|valid|test)_"
    r"(?:HR/(?P<hr_id>\d+)|LR_(?P<degradation>[a-z]+)_X(?P<scale>\d+)/(?P<lr_id>\d+)x(?P<suffix>\d+))"
    r"\.png$"
)


class ArchiveError(ValueError):
    """Bad input in the archive; the message names the archive or member and what is wrong."""


def hr_member(rock: str, split: str, image_id: int) -> str:
    return f"{ROOT}/{rock}2D/{rock}2D_{split}_HR/{image_id:04d}.png"


def lr_member(rock: str, split: str, image_id: int, scale: int, degradation: str) -> str:
    return f"{ROOT}/{rock}2D/{rock}2D_{split}_LR_{degradation}_X{scale}/{image_id:04d}x{scale}.png"


@dataclass(frozen=True)
class Member:
    rock: str
    split: str
    image_id: int
    scale: int | None  # None for HR
    degradation: str | None  # None for HR
    suffix: int | None  # the `x<scale>` of an LR file name

    @property
    def is_hr(self) -> bool:
        return self.scale is None


def parse_member(name: str) -> Member | None:
    """What a member name says, or None for anything that is not an HR/LR image."""
    m = _MEMBER.search(name)
    if m is None:
        return None
    if m["hr_id"] is not None:
        return Member(m["rock"], m["split"], int(m["hr_id"]), None, None, None)
    return Member(m["rock"], m["split"], int(m["lr_id"]), int(m["scale"]), m["degradation"],
                  int(m["suffix"]))


@dataclass(frozen=True)
class Pair:
    rock: str
    split: str  # the dataset's own split
    image_id: int
    hr: str  # member names
    lr: str


def pair_members(names, rock_types, scale: int, degradation: str,
                 where: str = "the archive") -> list[Pair]:
    """LR/HR pairs of the selected rock types at one scale and degradation.

    Sorted by rock type (in the given order), split and id. Every selected HR image needs
    its LR partner and vice versa; a rock type without any pair is an error.
    """
    hr, lr = {}, {}
    for name in names:
        m = parse_member(name)
        if m is None or m.rock not in rock_types:
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
            raise ArchiveError(f"{have[lonely[0]]}: missing partner, no image with this id in "
                               f"{rock}2D_{split}_{folder}/ of {where} "
                               f"({len(lonely)} image(s) without a partner)")
    found = {key[0] for key in hr}
    for rock in rock_types:
        if rock not in found:
            example = lr_member(rock, "train", 1, scale, degradation)
            raise ArchiveError(f"empty selection: no {rock} image pairs at x{scale} {degradation}"
                               f" in {where} (expected members like {example})")
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


def read_grey(zf: zipfile.ZipFile, member: str) -> np.ndarray:
    try:
        data = zf.read(member)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ArchiveError(f"{member}: cannot read from {zf.filename} ({exc})") from None
    return decode_grey(data, member)
