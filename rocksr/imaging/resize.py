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

Volumes: `tricubic_upscale`, the same cubic convolution along each of the three axes.
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


# The 3D baseline: separable cubic convolution along D, H and W ("tricubic"), by one of two
# kernels, each equal slice by slice to a torch 2D bicubic on a volume constant along an axis:
# - `pil`: Keys a = -0.5, taps outside the volume dropped and the rest renormalised: the
#   upscaling half of `bicubic_resize` (PIL's, antialias=True), the 2D baseline's kernel;
# - `torch`: Keys a = -0.75, taps outside clamped to the edge voxel: torch's plain
#   `mode="bicubic"` (antialias=False), OpenCV's kernel.
# Both sample at align_corners=False: output voxel i sits at (i + 0.5) / scale - 0.5.
CUBIC_KERNELS = {"pil": -0.5, "torch": -0.75}


def keys(t: torch.Tensor, a: float) -> torch.Tensor:
    """Keys' cubic convolution kernel at distances t."""
    t = t.abs()
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((t - 5) * t + 8) * t * a - 4 * a
    return torch.where(t <= 1, near, torch.where(t < 2, far, torch.zeros_like(t)))


def cubic_matrix(size: int, scale: int, kernel: str = "pil") -> torch.Tensor:
    """(scale * size, size) float64 weights of the cubic upscaling of one axis."""
    a = CUBIC_KERNELS[kernel]
    centre = (torch.arange(scale * size, dtype=torch.float64) + 0.5) / scale - 0.5
    first = centre.floor()
    taps = first[:, None] + torch.arange(-1, 3, dtype=torch.float64)  # 4 taps per output
    weights = keys(taps - centre[:, None], a)
    inside = (taps >= 0) & (taps < size)
    if kernel == "pil":
        weights = torch.where(inside, weights, 0.0)
        weights = weights / weights.sum(1, keepdim=True)
    matrix = torch.zeros(scale * size, size, dtype=torch.float64)
    return matrix.scatter_add_(1, taps.clamp(0, size - 1).long(), weights)


def tricubic_upscale(x: torch.Tensor, scale: int, kernel: str = "pil") -> torch.Tensor:
    """Upscale (..., D, H, W) float volumes by an integer factor, axis by axis."""
    if not x.is_floating_point():
        raise TypeError(f"tricubic_upscale needs a float tensor, got {x.dtype}")
    for axis in (-1, -2, -3):
        m = cubic_matrix(x.shape[axis], scale, kernel).to(x.device, x.dtype)
        x = (x.movedim(axis, -1) @ m.T).movedim(-1, axis)
    return x
