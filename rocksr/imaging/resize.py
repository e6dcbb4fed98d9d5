"""The bicubic baseline: torch's antialiased bicubic resize, which is PIL's bicubic.

`F.interpolate(mode="bicubic", antialias=True, align_corners=False)` runs the separable
resampling of PIL's `Image.resize(BICUBIC)` (Resample.c): the Keys cubic kernel with
a = -0.5 (also MATLAB `imresize`'s kernel, the usual "bicubic" of super-resolution papers),
stretched by the scale factor when downscaling (antialiasing), and at the border the taps
falling outside the image dropped and the remaining weights renormalised (MATLAB instead
mirrors the image: the two differ only in the outermost pixels). tests/test_resize.py checks
equality with PIL on mode 'F' float images, up and down, x2 and x4, square or not.

Not torch's plain `mode="bicubic"` (antialias=False): that uses a = -0.75 (OpenCV's
kernel), which rings more and scores differently, and does not antialias when downscaling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bicubic_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (..., H, W) float images to `size` = (H_out, W_out)."""
    if not x.is_floating_point():
        raise TypeError(f"bicubic_resize needs a float tensor, got {x.dtype}")
    flat = x.reshape(-1, 1, *x.shape[-2:])  # interpolate wants (N, C, H, W)
    out = F.interpolate(flat, size=tuple(size), mode="bicubic", antialias=True,
                        align_corners=False)
    return out.reshape(*x.shape[:-2], *out.shape[-2:])


def bicubic_upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Upscale (..., h, w) float images by an integer factor."""
    return bicubic_resize(x, (x.shape[-2] * scale, x.shape[-1] * scale))
