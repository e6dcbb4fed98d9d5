"""Inference: loading a trained generator and turning LR batches into SR images.

An upscaler maps a batch of LR images to [0, 1] SR images: bicubic (rocksr.imaging.resize) or a
generator; of volumes, tricubic or a 3D generator. Evaluation, prediction and the figures all
upscale through these, so every step scores and shows the same pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from rocksr.imaging.pixels import lr_to_signed, lr_to_unit, quantize_unit, signed_to_unit
from rocksr.imaging.resize import bicubic_upscale, tricubic_upscale
from rocksr.infer.modelfile import open_model
from rocksr.nets.models import Generator

# An upscaler maps a batch of LR images (B, 1, h, w), uint8 or float in [0, 1], to [0, 1] SR
# images (B, 1, H, W); volumes (B, 1, d, h, w) to (B, 1, D, H, W). With `keep` (a slice per
# spatial axis) it returns only the SR of that LR region (tiled inference's core).
Upscaler = Callable[..., torch.Tensor]


def kept(sr: torch.Tensor, keep: tuple[slice, ...] | None, scale: int) -> torch.Tensor:
    """The SR of the LR region `keep` out of a whole SR output."""
    if keep is None:
        return sr
    return sr[(..., *(slice(scale * k.start, scale * k.stop) for k in keep))]


def load_generator(path: str | Path) -> Generator:
    """A workflow generator.pt or an exported .safetensors file (rocksr.infer.modelfile)."""
    return open_model(path)[0]


def bicubic_upscaler(scale: int) -> Upscaler:
    return lambda lr, keep=None: kept(bicubic_upscale(lr_to_unit(lr), scale), keep, scale)


def tricubic_upscaler(scale: int) -> Upscaler:
    """The 3D baseline: the 2D baseline's cubic kernel along each axis (kernel `pil`)."""
    return lambda lr, keep=None: kept(tricubic_upscale(lr_to_unit(lr), scale), keep, scale)


BASELINES = {2: ("bicubic", bicubic_upscaler), 3: ("tricubic", tricubic_upscaler)}


def generator_upscaler(generator: Generator) -> Upscaler:
    """channels_last input and weights (faster convolutions on GPU and CPU alike). On the CPU
    one image per call: a batch of full images outgrows the caches (measured ~15% slower).
    A 3D generator takes (B, 1, d, h, w) volumes, channels_last_3d. `keep`: Generator.forward
    upsamples only that region's features."""
    fmt = torch.channels_last_3d if generator.dim == 3 else torch.channels_last
    generator.to(memory_format=fmt)

    def upscale(lr: torch.Tensor, keep: tuple[slice, ...] | None = None) -> torch.Tensor:
        x = lr_to_signed(lr).contiguous(memory_format=fmt)
        chunks = x.split(1) if x.device.type == "cpu" else (x,)
        return signed_to_unit(torch.cat([generator(c, keep) for c in chunks]))

    return upscale


def upscalers(generators: dict[str, Generator], scale: int,
              dim: int | None = None) -> dict[str, Upscaler]:
    """The baseline first (bicubic; tricubic for volumes, `dim` 3), then each generator under
    its name; all must share `scale` and `dim` (None: the generators', else 2)."""
    dim = dim or next((g.dim for g in generators.values()), 2)
    baseline, make = BASELINES[dim]
    if baseline in generators:
        raise ValueError(f"'{baseline}' names the baseline; give the model another name")
    for name, g in generators.items():
        if g.scale != scale:
            raise ValueError(f"model {name!r} upscales x{g.scale}, the data is x{scale}")
        if g.dim != dim:
            raise ValueError(f"model {name!r} is a {g.dim}D generator, the data is {dim}D")
    return {baseline: make(scale),
            **{name: generator_upscaler(g) for name, g in generators.items()}}


def postprocess(x: torch.Tensor, clamp: bool, quantize: bool) -> torch.Tensor:
    if quantize:
        return quantize_unit(x)  # clips too: an 8-bit image cannot hold values outside [0, 1]
    return x.clamp(0.0, 1.0) if clamp else x
