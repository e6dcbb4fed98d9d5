"""Tiled inference: memory bounded by the tile size, whatever the image or volume size.

The LR image is cut into a grid of `tile` x `tile` cores (a volume into `tile`^3 cubes);
each core goes through the upscaler with `overlap` pixels of real context on every side
(fewer at the image border, where the whole-image run sees the same zero padding), and only
the upscaled core is kept. An output pixel depends on the LR pixels within the network's
receptive radius, so when the overlap is at least that radius every kept pixel is computed
from exactly the inputs the whole-image run uses: the stitched result equals whole-image
inference up to float rounding (tests/test_tiling.py). Peak memory is that of one
(tile + 2 * overlap)^2 input (^3 for a volume) plus the output. A volume is also done in
z-slabs, one layer of `tile`-deep cubes at a time (`upscale_slabs`), so that its output can
go to disk slab by slab and only one slab's output is held.
`finish` can hold the output in a smaller type (predict keeps it in the input's dtype).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from rocksr.progress import progress

Span = tuple[int, int, int, int]


def receptive_radius(model: nn.Module) -> int:
    """LR pixels of context an output pixel can depend on, per side: each k x k convolution
    adds k // 2, counted on the LR grid (an upper bound for those after upsampling)."""
    return sum(m.kernel_size[0] // 2 for m in model.modules()
               if isinstance(m, nn.modules.conv._ConvNd))


def spans(size: int, tile: int, overlap: int) -> list[Span]:
    """Per tile along one axis: (core start, core end, input start, input end)."""
    out = []
    for start in range(0, size, tile):
        end = min(start + tile, size)
        out.append((start, end, max(start - overlap, 0), min(end + overlap, size)))
    return out


def _cores(upscale: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, scale: int,
           grid: list[tuple[Span, ...]], device: torch.device,
           bar) -> Iterator[tuple[tuple[Span, ...], torch.Tensor]]:
    """Each tile of `grid` (per-axis spans) upscaled on `device`: (its spans, the float32
    upscaled core on the CPU)."""
    for tile in grid:
        inputs = tuple(slice(i0, i1) for _, _, i0, i1 in tile)
        sr = upscale(image[inputs].to(device)[None, None])[0, 0]
        core = tuple(slice(scale * (c0 - i0), scale * (c1 - i0)) for c0, c1, i0, _ in tile)
        yield tile, sr[core].float().cpu()
        bar.update()


def upscale_slabs(upscale: Callable[[torch.Tensor], torch.Tensor], volume: torch.Tensor,
                  scale: int, tile: int, overlap: int, device: torch.device,
                  desc: str | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Upscale a (D, H, W) float volume (on the CPU) tile by tile on `device`, one z-slab of
    tiles at a time: yields (z0, slab), the slab being the float32 output of LR planes
    z0 .. z0 + tile, (scale * depth, scale * H, scale * W), on the CPU. `upscale` maps
    (1, 1, d, h, w) to (1, 1, scale*d, scale*h, scale*w)."""
    d, h, w = volume.shape
    plane = list(itertools.product(spans(h, tile, overlap), spans(w, tile, overlap)))
    slabs = spans(d, tile, overlap)
    with progress(total=len(slabs) * len(plane), desc=desc, unit="tile", leave=False,
                  disable=desc is None or len(slabs) * len(plane) == 1) as bar:
        for z in slabs:
            out = torch.empty(scale * (z[1] - z[0]), scale * h, scale * w, dtype=torch.float32)
            for (zs, ys, xs), core in _cores(upscale, volume, scale, [(z, *yx) for yx in plane],
                                             device, bar):
                out[scale * (zs[0] - z[0]):scale * (zs[1] - z[0]),
                    scale * ys[0]:scale * ys[1], scale * xs[0]:scale * xs[1]] = core
            yield z[0], out


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
        for parts, sr in _cores(upscale, image, scale, grid, device, bar):
            piece = finish(sr) if finish else sr
            if out is None:
                shape = tuple(scale * n for n in image.shape)
                out = (np.empty(shape, piece.dtype) if isinstance(piece, np.ndarray)
                       else torch.empty(shape, dtype=piece.dtype))
            out[tuple(slice(scale * c0, scale * c1) for c0, c1, _, _ in parts)] = piece
    return out
