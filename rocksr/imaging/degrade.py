"""The HR -> LR degradation of DeepRock-SR, as the synthetic archives and external HR sets use it.

`default` is PIL's antialiased bicubic (the dataset's plain downsampling); `unknown` adds a
random Gaussian blur and noise first, the dataset's "randomised settings" in spirit. A 3D
volume goes the same way, with the bicubic shrink applied along each of its three axes in
turn (separable: the tricubic analogue), in float and rounded once at the end.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage


def downsample(hr: np.ndarray, scale: int, degradation: str,
               rng: np.random.Generator) -> np.ndarray:
    """`default`: antialiased bicubic (PIL). `unknown`: random blur and noise first.
    `hr`: an (H, W) uint8 image or a (D, H, W) uint8 volume."""
    if degradation == "default" and hr.ndim == 2:
        small = (hr.shape[1] // scale, hr.shape[0] // scale)
        return np.asarray(Image.fromarray(hr).resize(small, Image.BICUBIC))
    image = hr.astype(np.float64)
    if degradation == "unknown":
        image = ndimage.gaussian_filter(image, rng.uniform(0.2, 0.5) * scale)
        image += rng.normal(0, rng.uniform(0, 8), image.shape)
    return to_uint8(shrink(image.astype(np.float32), scale))


def shrink(image: np.ndarray, scale: int) -> np.ndarray:
    """PIL's antialiased bicubic down by `scale` of a float32 (H, W) image, or of a
    (D, H, W) volume: each slice in (H, W), then each (D, w) plane in D (PIL resamples an axis
    only when its size changes)."""
    if image.ndim == 2:
        return _resize(image, (image.shape[0] // scale, image.shape[1] // scale))
    d, h, w = (n // scale for n in image.shape)
    slices = np.stack([_resize(s, (h, w)) for s in image])
    return np.stack([_resize(slices[:, y], (d, w)) for y in range(h)], axis=1)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float32 (H, W) image to `size` (rows, columns) by PIL's bicubic."""
    return np.asarray(Image.fromarray(image, "F").resize(size[::-1], Image.BICUBIC))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip to 0-255 grey levels."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
