"""Pixel-range conversions. Stored data: uint8. Metrics: [0, 1]. Networks: [-1, 1]."""

from __future__ import annotations

import torch


def uint8_to_unit(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0)


def unit_to_signed(x: torch.Tensor) -> torch.Tensor:
    return x * 2.0 - 1.0


def signed_to_unit(x: torch.Tensor) -> torch.Tensor:
    return (x + 1.0) * 0.5


def uint8_to_signed(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(127.5).sub_(1.0)


def quantize_unit(x: torch.Tensor) -> torch.Tensor:
    """Round [0, 1] data to the 256 levels an 8-bit PNG would store (clamps first)."""
    return x.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


def lr_to_unit(x: torch.Tensor) -> torch.Tensor:
    """LR input of an upscaler: uint8 (stored data) or float already in [0, 1] (a user's
    image through its intensity window, rocksr.imaging.intensity)."""
    return uint8_to_unit(x) if x.dtype == torch.uint8 else x.float()


def lr_to_signed(x: torch.Tensor) -> torch.Tensor:
    return uint8_to_signed(x) if x.dtype == torch.uint8 else unit_to_signed(x.float())
