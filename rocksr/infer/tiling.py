"""Tiled inference: memory bounded by the tile size, whatever the image size.

The LR image is cut into a grid of `tile` x `tile` cores (`tile` per side along each
spatial axis, however many there are); each core goes through the upscaler with `overlap`
pixels of real context on every side (fewer at the image border, where the whole-image run
sees the same zero padding), and only the upscaled core is kept.
An output pixel depends on the LR pixels within the network's receptive radius, so when the
overlap is at least that radius every kept pixel is computed from exactly the inputs the
whole-image run uses: the stitched image equals whole-image inference up to float rounding
(tests/test_tiling.py). Peak memory is that of one (tile + 2 * overlap)^2 input plus the
output image, which `finish` can hold in a smaller type (predict keeps it in the input's
dtype, not float32).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from rocksr.progress import progress


def receptive_radius(model: nn.Module) -> int:
    """LR pixels of context an output pixel can depend on, per side: each k x k convolution
    adds k // 2, counted on the LR grid (an upper bound for those after upsampling)."""
    return sum(m.kernel_size[0] // 2 for m in model.modules()
               if isinstance(m, nn.modules.conv._ConvNd))


def spans(size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Per tile along one axis: (core start, core end, input start, input end)."""
    out = []
    for start in range(0, size, tile):
        end = min(start + tile, size)
        out.append((start, end, max(start - overlap, 0), min(end + overlap, size)))
    return out


def upscale_tiled(upscale: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor,
                  scale: int, tile: int, overlap: int, device: torch.device,
                  desc: str | None = None,
                  finish: Callable[[torch.Tensor], torch.Tensor | np.ndarray] | None = None,
                  ) -> torch.Tensor | np.ndarray:
    """Upscale a float image (on the CPU; (H, W), or any number of spatial axes) tile by tile
    on `device`. `upscale` maps (1, 1, *tile shape) to (1, 1, *scale x tile shape). Returns
    the scale-times larger float32 image on the CPU, or, with `finish`, what `finish` makes
    of each upscaled core (a tensor or an array, e.g. in the output's dtype), put together."""
    grid = list(itertools.product(*(spans(n, tile, overlap) for n in image.shape)))
    out = None
    with progress(total=len(grid), desc=desc, unit="tile", leave=False,
                  disable=desc is None or len(grid) == 1) as bar:
        for parts in grid:
            source = tuple(slice(i0, i1) for _, _, i0, i1 in parts)
            core = tuple(slice(scale * (c0 - i0), scale * (c1 - i0)) for c0, c1, i0, _ in parts)
            sr = upscale(image[source].to(device)[None, None])[0, 0][core].float().cpu()
            piece = finish(sr) if finish else sr
            if out is None:
                shape = tuple(scale * n for n in image.shape)
                out = (np.empty(shape, piece.dtype) if isinstance(piece, np.ndarray)
                       else torch.empty(shape, dtype=piece.dtype))
            out[tuple(slice(scale * c0, scale * c1) for c0, c1, _, _ in parts)] = piece
            bar.update()
    return out
