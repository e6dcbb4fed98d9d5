"""The HR -> LR degradation of DeepRock-SR, as the synthetic archive and external HR sets use it.

`default` is PIL's antialiased bicubic (the dataset's plain downsampling); `unknown` adds a
random Gaussian blur and noise first, the dataset's "randomised settings" in spirit.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage


def downsample(hr: np.ndarray, scale: int, degradation: str,
               rng: np.random.Generator) -> np.ndarray:
    """`default`: antialiased bicubic (PIL). `unknown`: random blur and noise first."""
    small = (hr.shape[1] // scale, hr.shape[0] // scale)
    if degradation == "default":
        return np.asarray(Image.fromarray(hr).resize(small, Image.BICUBIC))
    image = ndimage.gaussian_filter(hr.astype(np.float64), rng.uniform(0.2, 0.5) * scale)
    image += rng.normal(0, rng.uniform(0, 8), image.shape)
    image = Image.fromarray(image.astype(np.float32), "F").resize(small, Image.BICUBIC)
    return to_uint8(np.asarray(image))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip to 0-255 grey levels."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
