"""Offline stand-ins for DeepRockSR-2D.zip and DeepRockSR-3D.zip: same layouts, fewer and
smaller images or volumes.

Three textures that differ the way the real rock types do: sandstone (packed grains,
pores between), carbonate (ooids with concentric rims, multi-scale pores) and coal (smooth
banded matrix cut by thin fractures). The same code draws them in 3D (`dim` 3): spherical
grains, ooids and vugs, fracture planes, written as MATLAB v5 `.mat` volumes (array `temp`).
Each image depends only on (seed, rock type, id), so image 3601 is the same whatever the
counts; the zip's bytes depend only on the settings.
"""

from __future__ import annotations

import functools
import io
import logging
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from rocksr import ROCK_TYPES, SPLITS
from rocksr.data.archive import DEGRADATIONS, NOUN, SCALES, hr_member, lr_member
from rocksr.data.volumes import mat_bytes
from rocksr.fileio import atomic_path
from rocksr.imaging.degrade import downsample, to_uint8
from rocksr.progress import progress
from rocksr.settings import SyntheticSettings

log = logging.getLogger(__name__)

# The real dataset's id ranges per rock type: 4000 2D images, 1000 3D volumes (presumed
# split 800 / 100 / 100 like the 2D one's 3200 / 400 / 400).
FIRST_ID = {"train": 1, "valid": 3201, "test": 3601}
FIRST_ID_3D = {"train": 1, "valid": 801, "test": 901}
ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # fixed member dates keep the archive byte-identical


def write_archive(out: str | Path, settings: SyntheticSettings | dict, dim: int = 2) -> Path:
    """Write the archive (atomically): DeepRockSR-2D's layout of PNG slices, or (`dim` 3)
    DeepRockSR-3D's of `.mat` volumes, `hr_size` on every side; `settings` as
    config.synthetic (a dict from the bench)."""
    out = Path(out)
    settings = SyntheticSettings.from_dict(settings, "synthetic")
    size, seed, counts = settings.hr_size, settings.seed, settings.counts
    first = FIRST_ID if dim == 2 else FIRST_ID_3D
    total = len(ROCK_TYPES) * sum(counts.values())
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf, \
            progress(total=total, desc="synthetic", unit=NOUN[dim]) as bar:
        for rock in ROCK_TYPES:
            for split in SPLITS:
                ids = range(first[split], first[split] + counts[split])
                _write_split(zf, rock, split, ids, size, seed, bar, dim)
    log.info("wrote %s: %d HR %ss of %s, each with 4 LR versions", out, total, NOUN[dim],
             "x".join([str(size)] * dim))
    return out


def _write_split(zf, rock, split, ids, size, seed, bar, dim) -> None:
    hr_images = {}
    for image_id in ids:
        hr_images[image_id] = rock_image(rock, image_id, size, seed, dim)
        _add(zf, hr_member(rock, split, image_id, dim), hr_images[image_id])
        bar.update()
    for degradation in DEGRADATIONS:
        for scale in SCALES:
            for image_id, hr in hr_images.items():
                rng = _rng(seed, rock, image_id, scale, DEGRADATIONS.index(degradation))
                lr = downsample(hr, scale, degradation, rng)
                _add(zf, lr_member(rock, split, image_id, scale, degradation, dim), lr)


def _add(zf: zipfile.ZipFile, name: str, image: np.ndarray) -> None:
    _add_folders(zf, name)
    if image.ndim == 3:
        data = mat_bytes(image)
    else:
        buf = io.BytesIO()
        # Like the real PNGs: grey stored as 3 identical channels.
        Image.fromarray(np.repeat(image[..., None], 3, axis=2), "RGB").save(buf, "PNG")
        data = buf.getvalue()
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def _add_folders(zf: zipfile.ZipFile, name: str) -> None:
    parts = name.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        folder = "/".join(parts[:i]) + "/"
        try:
            zf.getinfo(folder)
        except KeyError:  # first file in this folder: add the folder entry, as zip tools do
            info = zipfile.ZipInfo(folder, ZIP_TIME)
            info.external_attr = (0o40755 << 16) | 0x10  # unix dir mode + MS-DOS dir flag
            zf.writestr(info, b"")


def _rng(seed: int, rock: str, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, ROCK_TYPES.index(rock), *keys])


def rock_image(rock: str, image_id: int, size: int, seed: int, dim: int = 2) -> np.ndarray:
    """One HR slice (size x size uint8), or volume (size^3, `dim` 3), imaged like
    micro-CT: slight blur plus noise."""
    rng = _rng(seed, rock, image_id)
    image = TEXTURES[rock](rng, size, dim)
    image = ndimage.gaussian_filter(image, 0.6) + rng.normal(0, 3, image.shape)
    return to_uint8(image)


def _noise(rng: np.random.Generator, size: int, sigma: float, dim: int = 2) -> np.ndarray:
    """Smooth random field with unit standard deviation, features about sigma pixels."""
    field = ndimage.gaussian_filter(rng.standard_normal((size,) * dim), sigma, mode="wrap")
    return field / field.std()


def _orientation(rng: np.random.Generator, dim: int) -> np.ndarray:
    """A random rotation: its rows are the new axes. In 2D by one angle in [0, pi)."""
    if dim == 2:
        angle = rng.uniform(0, np.pi)
        return np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))  # uniform over rotations and reflections


def _project(axes: np.ndarray, offsets: list[np.ndarray]) -> list[np.ndarray]:
    """The coordinates `offsets` (one array per axis) along each row of `axes`."""
    return [sum(row[i] * offsets[i] for i in range(len(offsets))) for row in axes]


def _grains(rng: np.random.Generator, size: int, radius: float, spacing: float,
            max_aspect: float, dim: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Randomly packed ellipses (ellipsoids in 3D, stretched along one axis): (distance,
    label) where distance < 1 inside a grain.

    Centres are dart-thrown at least `spacing` x their mean radius apart, so grains touch or overlap
    slightly and leave pores between them. Labels number the grains from 1 (0: pore).
    """
    margin = radius * 1.5  # grains also poke in from beyond the image edge
    ball = np.pi * radius ** 2 if dim == 2 else 4 / 3 * np.pi * radius ** 3
    tries = int(20 * (size + 2 * margin) ** dim / ball)
    candidates = rng.uniform(-margin, size + margin, (tries, dim))
    candidate_radii = radius * rng.uniform(0.7, 1.3, tries)
    centres, radii, n = np.empty((tries, dim)), np.empty(tries), 0
    for c, r in zip(candidates, candidate_radii):
        gap = functools.reduce(np.hypot, (centres[:n] - c).T) - spacing * (radii[:n] + r) / 2
        if n == 0 or gap.min() > 0:
            centres[n], radii[n], n = c, r, n + 1
    distance = np.full((size,) * dim, np.inf)
    label = np.zeros((size,) * dim, np.int32)
    for k, (centre, r) in enumerate(zip(centres[:n], radii[:n]), start=1):
        aspect = rng.uniform(1, max_aspect)
        axes = _orientation(rng, dim)
        a, b = r * np.sqrt(aspect), r / np.sqrt(aspect)
        box = tuple(slice(max(int(c - a) - 1, 0), min(int(c + a) + 2, size)) for c in centre)
        if any(s.start >= s.stop for s in box):
            continue
        offsets = [g - c for g, c in zip(np.mgrid[box], centre)]
        u, *v = _project(axes, offsets)
        d = functools.reduce(np.hypot, [u / a] + [w / b for w in v])
        closer = d < distance[box]
        distance[box][closer] = d[closer]
        label[box][closer] = k
    label[distance >= 1] = 0
    return distance, label


def sandstone(rng: np.random.Generator, size: int, dim: int = 2) -> np.ndarray:
    """Bright quartz/feldspar grains with rough edges, packed, dark pores between."""
    radius = max(4.0, 0.07 * size)
    distance, label = _grains(rng, size, radius, spacing=1.6, max_aspect=1.6, dim=dim)
    rough = distance + 0.12 * _noise(rng, size, radius / 4, dim)
    grain_grey = rng.uniform(150, 205, label.max() + 1)
    image = np.where(rough < 1, grain_grey[label], 45.0)
    image += 6 * _noise(rng, size, 2, dim) * (rough < 1)  # mineral texture inside grains
    return image


def carbonate(rng: np.random.Generator, size: int, dim: int = 2) -> np.ndarray:
    """Ooids with concentric rims (some with dissolved cores) in a cement with pores of many
    sizes (vugs in 3D)."""
    radius = max(5.0, 0.11 * size)
    distance, label = _grains(rng, size, radius, spacing=1.9, max_aspect=1.8, dim=dim)
    n = label.max() + 1
    rings, phase = rng.uniform(2, 5, n), rng.uniform(0, 2 * np.pi, n)
    base, hollow = rng.uniform(120, 175, n), rng.random(n) < 0.3
    inside = np.minimum(distance, 1)
    rims = base[label] + 25 * np.sin(2 * np.pi * rings[label] * inside + phase[label])
    rims[distance > 0.85] = 205  # bright micrite envelope
    rims[hollow[label] & (distance < 0.6)] = 35  # moldic pore: the core dissolved
    # Cement: micro-porous grey with pores from pixel to grain scale.
    multiscale = (0.3 * _noise(rng, size, 1, dim) + 0.3 * _noise(rng, size, 3, dim)
                  + 0.5 * _noise(rng, size, radius / 2, dim))
    cement = np.where(multiscale > 0.45, 30.0, 95 + 15 * multiscale)
    return np.where(label > 0, rims, cement)


def coal(rng: np.random.Generator, size: int, dim: int = 2) -> np.ndarray:
    """Smooth banded organic matrix, thin cleat fractures (planes in 3D) in two sets, rare
    bright minerals."""
    grid = list(np.mgrid[(slice(0, size),) * dim] - size / 2)
    # axes in (x, y[, z]) order: 2D images stay as they were drawn before 3D came
    along, across, *_ = _project(_orientation(rng, dim), grid[::-1])
    image = (105 + 8 * np.sin(2 * np.pi * across / (rng.uniform(0.2, 0.5) * size))
             + 6 * _noise(rng, size, size / 8, dim))
    wobble = _noise(rng, size, size / 10, dim)
    for normal, tangent in ((across, along), (along, across)):  # face and butt cleats
        for _ in range(rng.integers(2, 5)):
            d = normal - rng.uniform(-size / 2, size / 2) + rng.uniform(0.5, 2) * wobble
            lo, hi = np.sort(rng.uniform(-size, size, 2))  # most fractures end in the image
            width = rng.uniform(0.4, 1.0)
            image -= 70 * np.exp(-(d / width) ** 2) * ((tangent > lo) & (tangent < hi))
    image[_noise(rng, size, 1.5, dim) > 3.3] = 225  # pyrite specks
    return image


TEXTURES = {"sandstone": sandstone, "carbonate": carbonate, "coal": coal}
