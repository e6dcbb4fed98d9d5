"""Porosity of segmented images: the physical check digital-rock people care about.

Definition: one Otsu threshold per image, computed on the HR image's 256-level histogram
and applied unchanged to HR and to every method's output, so porosity differences come
from the images, not from thresholds fitted to each. Pore space is the dark phase: pixels
at or below the Otsu level (skimage's convention: foreground is `image > threshold`).
Porosity = pore pixels / all pixels. Batched in torch; the threshold matches
`skimage.filters.threshold_otsu` on the uint8 HR image.
"""

from __future__ import annotations

import torch

LEVELS = 256


def otsu_threshold(hr: torch.Tensor) -> torch.Tensor:
    """Per-image Otsu threshold of uint8 images (N, ..., H, W), as a [0, 1] cut-off.

    Returned as the midpoint between the Otsu level t and t + 1 (over 255), so that
    `x < cut` selects exactly the uint8 pixels <= t and stays unambiguous for float SR.
    """
    if hr.dtype != torch.uint8:
        raise TypeError(f"otsu_threshold needs uint8 HR images, got {hr.dtype}")
    n = hr.shape[0]
    flat = hr.reshape(n, -1).long() + LEVELS * torch.arange(n, device=hr.device)[:, None]
    hist = torch.bincount(flat.flatten(), minlength=n * LEVELS).view(n, LEVELS).double()
    levels = torch.arange(LEVELS, device=hr.device, dtype=torch.float64)
    # Split after level t: class 0 = levels <= t, class 1 = levels > t.
    w0 = hist.cumsum(1)
    w1 = hist.sum(1, keepdim=True) - w0
    s0 = (hist * levels).cumsum(1)
    s1 = (hist * levels).sum(1, keepdim=True) - s0
    between = w0 * w1 * (s0 / w0.clamp_min(1) - s1 / w1.clamp_min(1)) ** 2
    t = between.argmax(1)  # first maximum, as skimage; uniform images give level 0
    return ((t.float() + 0.5) / 255.0)


def porosity(x: torch.Tensor, cut: torch.Tensor) -> torch.Tensor:
    """Fraction of pore (dark) pixels of [0, 1] images (N, ..., H, W) under per-image cuts."""
    pore = x.reshape(x.shape[0], -1) < cut.to(x.device)[:, None]
    return pore.float().mean(1)
