"""The bicubic baseline: PIL's bicubic resize, as batched matrix products on any device.

Choice: the Keys cubic kernel with a = -0.5, the kernel of PIL's `Image.resize(BICUBIC)` and
of MATLAB's `imresize` (the usual "bicubic" of super-resolution papers), with PIL's border
handling: taps falling outside the image are dropped and the remaining weights renormalised
(MATLAB instead mirrors the image at the border; the two differ only in the outermost pixels).
Downscaling stretches the kernel by the scale factor (antialiasing), as both libraries do.

Not torch's `F.interpolate(mode="bicubic")`: it uses a = -0.75 (OpenCV's kernel), which
rings more and scores differently, and it does not antialias when downscaling.

A separable resize is linear per axis, so resize(x) = A_h @ x @ A_w^T with interpolation
matrices A (out x in) built once per size: one batched matmul pair, no per-image Python.
tests/test_resize.py checks equality with PIL on mode 'F' float images.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

SUPPORT = 2.0  # the cubic kernel is nonzero on (-2, 2)
A = -0.5


def _cubic(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    near = ((A + 2) * x - (A + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * A
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


@functools.lru_cache(maxsize=32)
def _matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float64 weights, following PIL's precompute_coeffs (Resample.c)."""
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = SUPPORT * filterscale
    out = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo = max(math.trunc(center - support + 0.5), 0)
        hi = min(math.trunc(center + support + 0.5), n_in)
        taps = np.arange(lo, hi)
        w = _cubic((taps - center + 0.5) / filterscale)
        out[i, lo:hi] = w / w.sum() if w.sum() != 0 else w
    return out


def bicubic_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (..., H, W) float images to `size` = (H_out, W_out)."""
    if not x.is_floating_point():
        raise TypeError(f"bicubic_resize needs a float tensor, got {x.dtype}")
    a_h = torch.from_numpy(_matrix(x.shape[-2], size[0])).to(x.device, x.dtype)
    a_w = torch.from_numpy(_matrix(x.shape[-1], size[1])).to(x.device, x.dtype)
    return a_h @ x @ a_w.T


def bicubic_upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Upscale (..., h, w) float images by an integer factor."""
    return bicubic_resize(x, (x.shape[-2] * scale, x.shape[-1] * scale))
