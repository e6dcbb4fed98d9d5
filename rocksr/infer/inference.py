"""Inference: loading a trained generator and turning LR batches into SR images.

An upscaler maps a batch of LR images to [0, 1] SR images: bicubic (rocksr.imaging.resize) or a
generator. Evaluation, prediction and the figures all upscale through these, so every step
scores and shows the same pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from rocksr.imaging.pixels import lr_to_signed, lr_to_unit, quantize_unit, signed_to_unit
from rocksr.imaging.resize import bicubic_upscale
from rocksr.infer.modelfile import open_model
from rocksr.nets.models import Generator

# An upscaler maps a batch of LR images (B, 1, h, w), uint8 or float in [0, 1], to [0, 1] SR
# images (B, 1, H, W).
Upscaler = Callable[[torch.Tensor], torch.Tensor]


def load_generator(path: str | Path) -> Generator:
    """A workflow generator.pt or an exported .safetensors file (rocksr.infer.modelfile)."""
    return open_model(path)[0]


def bicubic_upscaler(scale: int) -> Upscaler:
    return lambda lr: bicubic_upscale(lr_to_unit(lr), scale)


def generator_upscaler(generator: Generator) -> Upscaler:
    """channels_last input and weights (faster convolutions on GPU and CPU alike). On the CPU
    one image per call: a batch of full images outgrows the caches (measured ~15% slower).
    A 3D generator takes (B, 1, d, h, w) volumes, channels_last_3d."""
    fmt = torch.channels_last_3d if generator.dim == 3 else torch.channels_last
    generator.to(memory_format=fmt)

    def upscale(lr: torch.Tensor) -> torch.Tensor:
        x = lr_to_signed(lr).contiguous(memory_format=fmt)
        chunks = x.split(1) if x.device.type == "cpu" else (x,)
        return signed_to_unit(torch.cat([generator(c) for c in chunks]))

    return upscale


def upscalers(generators: dict[str, Generator], scale: int) -> dict[str, Upscaler]:
    """Bicubic first, then each generator under its name; all must share `scale`."""
    if "bicubic" in generators:
        raise ValueError("'bicubic' names the baseline; give the model another name")
    for name, g in generators.items():
        if g.scale != scale:
            raise ValueError(f"model {name!r} upscales x{g.scale}, the data is x{scale}")
    return {"bicubic": bicubic_upscaler(scale),
            **{name: generator_upscaler(g) for name, g in generators.items()}}


def postprocess(x: torch.Tensor, clamp: bool, quantize: bool) -> torch.Tensor:
    if quantize:
        return quantize_unit(x)  # clips too: an 8-bit image cannot hold values outside [0, 1]
    return x.clamp(0.0, 1.0) if clamp else x
