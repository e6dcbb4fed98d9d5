"""Tiled inference: memory bounded by the tile size, whatever the image size.

The LR image is cut into a grid of `tile` x `tile` cores; each core goes through the
upscaler with `overlap` pixels of real context on every side (fewer at the image border,
where the whole-image run sees the same zero padding), and only the upscaled core is kept.
An output pixel depends on the LR pixels within the network's receptive radius, so when the
overlap is at least that radius every kept pixel is computed from exactly the inputs the
whole-image run uses: the stitched image equals whole-image inference up to float rounding
(tests/test_tiling.py). Peak memory is that of one (tile + 2 * overlap)^2 input plus the
output image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rocksr.progress import progress


def receptive_radius(model: nn.Module) -> int:
    """LR pixels of context an output pixel can depend on, per side: each k x k convolution
    adds k // 2, counted on the LR grid (an upper bound for those after upsampling)."""
    return sum(m.kernel_size[0] // 2 for m in model.modules() if isinstance(m, nn.Conv2d))


def spans(size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Per tile along one axis: (core start, core end, input start, input end)."""
    out = []
    for start in range(0, size, tile):
        end = min(start + tile, size)
        out.append((start, end, max(start - overlap, 0), min(end + overlap, size)))
    return out


def upscale_tiled(upscale: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor,
                  scale: int, tile: int, overlap: int, device: torch.device,
                  desc: str | None = None) -> torch.Tensor:
    """Upscale an (H, W) float image (on the CPU) tile by tile on `device`; returns the
    (scale*H, scale*W) float32 result on the CPU. `upscale` maps (1, 1, h, w) to
    (1, 1, scale*h, scale*w)."""
    h, w = image.shape
    out = torch.empty(scale * h, scale * w, dtype=torch.float32)
    grid = [(r, c) for r in spans(h, tile, overlap) for c in spans(w, tile, overlap)]
    with progress(total=len(grid), desc=desc, unit="tile", leave=False,
                  disable=desc is None or len(grid) == 1) as bar:
        for (r0, r1, i0, i1), (c0, c1, j0, j1) in grid:
            sr = upscale(image[i0:i1, j0:j1].to(device)[None, None])[0, 0]
            core = sr[scale * (r0 - i0):scale * (r1 - i0), scale * (c0 - j0):scale * (c1 - j0)]
            out[scale * r0:scale * r1, scale * c0:scale * c1] = core.float().cpu()
            bar.update()
    return out
