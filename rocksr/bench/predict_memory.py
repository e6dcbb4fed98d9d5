"""Peak memory and time of `predict` on one large slice: the tiled path keeps memory bounded.

Runs rocksr.infer.predict end to end (TIFF in, bicubic and one random-weight generator, TIFF out)
on a random uint16 slice and measures the extra peak memory of the run: the process's peak
resident set (CPU) or the peak allocated device memory (CUDA). Beside it, the size of the
largest single activation a whole-image run would hold, computed (not run).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

from rocksr.infer.predict import predict
from rocksr.nets.models import Generator

GB = 1e9


def peak_rss_bytes() -> int:
    """Peak resident set of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def whole_image_activation_bytes(side: int, scale: int, filters: int) -> int:
    """The last upsampling conv's float32 output: 4 * filters channels at scale/2 x the side."""
    return 4 * filters * (side * scale // 2) ** 2 * 4


def run(side: int, scale: int, blocks: int, filters: int, tile: int, overlap: int,
        device: torch.device) -> str:
    torch.manual_seed(0)
    generator = Generator(scale=scale, blocks=blocks, filters=filters)
    image = np.random.default_rng(0).integers(0, 65536, (side, side), dtype=np.uint16)
    settings = {"tile": tile, "overlap": overlap,
                "intensity": {"window": "full", "percentiles": [0.5, 99.5]}}
    with tempfile.TemporaryDirectory() as tmp:
        tifffile.imwrite(Path(tmp) / "slice.tif", image)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
        else:
            before = peak_rss_bytes()
        start = time.perf_counter()
        predict(Path(tmp) / "slice.tif", {"g": generator}, Path(tmp) / "out", settings, device)
        seconds = time.perf_counter() - start
        peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
                else peak_rss_bytes()) - before
    what = "peak allocated device memory" if device.type == "cuda" else "peak RSS"
    return (f"predict {side}x{side} uint16 x{scale} ({blocks} blocks, {filters} filters, "
            f"tile {tile}, overlap {overlap}) on {device.type}: {seconds:.1f} s, {what} "
            f"+{peak / GB:.2f} GB; whole-image inference would hold one activation of "
            f"{whole_image_activation_bytes(side, scale, filters) / GB:.1f} GB")
