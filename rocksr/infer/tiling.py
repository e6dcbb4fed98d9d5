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
go to disk slab by slab and only one slab's output is held; given a lazy reader, only the
slab's LR planes (and `overlap` more each side) are read for it (rocksr.infer.predict).
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


def _cores(upscale: Callable[..., torch.Tensor], image: torch.Tensor, scale: int,
           grid: list[tuple[Span, ...]], device: torch.device,
           bar) -> Iterator[tuple[tuple[Span, ...], torch.Tensor]]:
    """Each tile of `grid` (per-axis spans) upscaled on `device`: (its spans, the float32
    upscaled core on the CPU). The upscaler is asked for the core only (`keep`), so a
    generator upsamples no more of the tile's context than its last layers need."""
    for tile in grid:
        inputs = tuple(slice(i0, i1) for _, _, i0, i1 in tile)
        core = tuple(slice(c0 - i0, c1 - i0) for c0, c1, i0, _ in tile)
        sr = upscale(image[inputs].to(device)[None, None], keep=core)[0, 0]
        yield tile, sr.float().cpu()
        bar.update()


def upscale_slabs(upscale: Callable[..., torch.Tensor], volume, scale: int,
                  tile: int, overlap: int, device: torch.device, desc: str | None = None,
                  finish: Callable[[torch.Tensor], torch.Tensor | np.ndarray] | None = None,
                  ) -> Iterator[tuple[int, torch.Tensor | np.ndarray]]:
    """Upscale a (D, H, W) float volume (on the CPU) tile by tile on `device`, one z-slab of
    tiles at a time: yields (z0, slab), the slab being the output of LR planes
    z0 .. z0 + tile, (scale * depth, scale * H, scale * W), on the CPU: float32, or what
    `finish` makes of each cube (as in `upscale_tiled`). `upscale` is an upscaler
    (rocksr.infer.inference): (1, 1, d, h, w) to (1, 1, scale*d, scale*h, scale*w), and with
    `keep` to the part of that output upscaled from the LR region `keep`. `volume` may also
    be a lazy reader: anything with a `shape` whose `volume[z0:z1]` gives those planes as a
    float tensor; each slab asks it for its planes only (its core and `overlap` planes each
    side), in order, so memory does not grow with the depth."""
    d, h, w = volume.shape
    plane = list(itertools.product(spans(h, tile, overlap), spans(w, tile, overlap)))
    slabs = spans(d, tile, overlap)
    with progress(total=len(slabs) * len(plane), desc=desc, unit="tile", leave=False,
                  disable=desc is None or len(slabs) * len(plane) == 1) as bar:
        for c0, c1, i0, i1 in slabs:
            z = (c0 - i0, c1 - i0, 0, i1 - i0)  # on the slab's planes
            grid = [(z, *yx) for yx in plane]
            yield c0, _stitch(upscale, volume[i0:i1], scale, grid, device, bar, finish)


def upscale_tiled(upscale: Callable[..., torch.Tensor], image: torch.Tensor,
                  scale: int, tile: int, overlap: int, device: torch.device,
                  desc: str | None = None,
                  finish: Callable[[torch.Tensor], torch.Tensor | np.ndarray] | None = None,
                  ) -> torch.Tensor | np.ndarray:
    """Upscale a float image (on the CPU; (H, W), or any number of spatial axes) tile by tile
    on `device`. `upscale` is an upscaler (rocksr.infer.inference): (1, 1, *tile shape) to
    (1, 1, *scale x tile shape), with `keep` to the part upscaled from that LR region. Returns
    the scale-times larger float32 image on the CPU, or, with `finish`, what `finish` makes
    of each upscaled core (a tensor or an array, e.g. in the output's dtype), put together."""
    grid = list(itertools.product(*(spans(n, tile, overlap) for n in image.shape)))
    with progress(total=len(grid), desc=desc, unit="tile", leave=False,
                  disable=desc is None or len(grid) == 1) as bar:
        return _stitch(upscale, image, scale, grid, device, bar, finish)


def _stitch(upscale: Callable[..., torch.Tensor], image: torch.Tensor, scale: int,
            grid: list[tuple[Span, ...]], device: torch.device, bar,
            finish: Callable[[torch.Tensor], torch.Tensor | np.ndarray] | None
            ) -> torch.Tensor | np.ndarray:
    """The upscaled cores of `grid` put together: the output of the box from the grid's
    first core start to its last core end on each axis."""
    first, last = grid[0], grid[-1]
    out = None
    for parts, sr in _cores(upscale, image, scale, grid, device, bar):
        piece = finish(sr) if finish else sr
        if out is None:
            shape = tuple(scale * (b[1] - a[0]) for a, b in zip(first, last))
            out = (np.empty(shape, piece.dtype) if isinstance(piece, np.ndarray)
                   else torch.empty(shape, dtype=piece.dtype))
        out[tuple(slice(scale * (c0 - a[0]), scale * (c1 - a[0]))
                  for (c0, c1, _, _), a in zip(parts, first))] = piece
    return out
