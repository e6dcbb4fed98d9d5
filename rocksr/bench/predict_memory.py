"""Streaming predict: peak memory and throughput on a uint16 TIFF stack, against loading the
whole stack, in one run of the benchmark; with a 2D generator (slice by slice, in-plane) or
a 3D one (`dim` 3: isotropic, z-slab by z-slab of cubes).

Each case runs in a fresh process, so that each peak resident set is its own. `stream` is
rocksr.infer.predict itself (one random-weight generator, no bicubic): the stack is read,
upscaled and written one slice at a time (3D: one z-slab's LR slices read at a time, its
output written slice by slice). `whole` is the same work without streaming: the stack
loaded whole (tifffile.imread), every slice (3D: the volume, cube by cube) upscaled into one
output array (the same tiles, the same uint16 output), the array written at the end.
`uncropped` is `stream` with each tile upsampled whole and its core cut out afterwards, as
before the generator took `keep` (Generator.forward): the baseline of that saving.
Reported per case: seconds, slices per second and the peak resident set above the process's
before the run (the model built and moved to the device first), and on CUDA the peak
allocated device memory; then the ratios of the peaks: whole / stream per depth, and the
deepest stack's over the shallowest's per mode (streaming's should stay near 1).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import tifffile
import torch

from rocksr.imaging.intensity import window_for
from rocksr.infer.inference import generator_upscaler, kept
from rocksr.infer.predict import predict
from rocksr.infer.tiling import upscale_tiled
from rocksr.nets.models import Generator
from rocksr.settings import PredictSettings

GB = 1e9
MODES = ("stream", "whole", "uncropped")


def peak_rss_bytes() -> int:
    """Peak resident set of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def write_stack(path: Path, slices: int, side: int) -> None:
    """A random uint16 stack, written one slice at a time."""
    rng = np.random.default_rng(0)
    with tifffile.TiffWriter(path) as tif:
        for _ in range(slices):
            tif.write(rng.integers(0, 65536, (side, side), dtype=np.uint16),
                      photometric="minisblack", contiguous=True)


def case(mode: str, stack: str, out: str, arch: dict, tile: int, overlap: int,
         device: str, threads: int) -> dict:
    """One measurement, in its own process: {seconds, rss, cuda} (bytes above the start)."""
    torch.set_num_threads(threads)
    device = torch.device(device)
    torch.manual_seed(0)
    generator = Generator(**arch).to(device).eval()
    with torch.inference_mode():  # CUDA and its kernels set up before the baseline
        generator(torch.zeros(1, 1, *(8,) * generator.dim, device=device))
    settings = PredictSettings.from_dict({"tile": tile, "tile_3d": tile, "overlap": overlap,
                                          "bicubic": False}, "bench")
    if mode == "uncropped":  # the whole tile upsampled, the core cut out after
        whole_tile = generator.forward
        generator.forward = lambda x, keep=None: kept(whole_tile(x), keep, generator.scale)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = peak_rss_bytes()
    start = time.perf_counter()
    if mode != "whole":
        card = {"name": "g", "arch": arch}
        manifest = predict([stack], {"g": (generator, card)}, out, settings, device)
        assert manifest["failed"] == 0, manifest["inputs"]
    else:
        _whole_stack(stack, Path(out) / "whole.tif", generator, settings, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return {"seconds": time.perf_counter() - start, "rss": peak_rss_bytes() - before,
            "cuda": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None}


@torch.inference_mode()
def _whole_stack(stack: str, out: Path, generator: Generator, settings: PredictSettings,
                 device: torch.device) -> None:
    volume = tifffile.imread(stack)
    window = window_for(volume.dtype, settings.intensity)
    scale = generator.scale
    upscale = generator_upscaler(generator)
    if generator.dim == 3:
        result = upscale_tiled(upscale, window.to_unit(volume), scale, settings.tile,
                               settings.overlap, device, finish=window.from_unit)
    else:
        result = np.empty((len(volume), *(scale * n for n in volume.shape[1:])), volume.dtype)
        for i, image in enumerate(volume):
            result[i] = upscale_tiled(upscale, window.to_unit(image), scale, settings.tile,
                                      settings.overlap, device, finish=window.from_unit)
    out.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(out, result, imagej=True)


def run(side: int, counts: list[int], scale: int, blocks: int, filters: int, tile: int,
        overlap: int, device: str, threads: int, dim: int = 2) -> list[str]:
    """The benchmark's lines: one per (slices, mode), then the peak ratios."""
    arch = {"scale": scale, "blocks": blocks, "filters": filters, "dim": dim}
    spawn = multiprocessing.get_context("spawn")
    lines, peaks, seconds = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            stack = Path(tmp) / f"stack{n}.tif"
            write_stack(stack, n, side)
            for mode in MODES:
                out = Path(tmp) / f"out_{mode}_{n}"
                with ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1) as pool:
                    got = pool.submit(case, mode, str(stack), str(out), arch, tile, overlap,
                                      device, threads).result()
                _remove(out)
                peaks[n, mode], seconds[n, mode] = got["rss"], got["seconds"]
                cuda = f", peak CUDA memory {got['cuda'] / GB:.2f} GB" if got["cuda"] else ""
                lines.append(f"{mode:<9} {n:3d} slices {side}x{side} uint16 x{scale} ({dim}D, "
                             f"{blocks} blocks, {filters} filters, tile {tile}, overlap "
                             f"{overlap}) on {device}: {got['seconds']:.1f} s, "
                             f"{n / got['seconds']:.2f} slices/s, "
                             f"peak RSS +{got['rss'] / GB:.2f} GB{cuda}")
            stack.unlink()
    ratios = ", ".join(f"{n} slices {peaks[n, 'whole'] / max(peaks[n, 'stream'], 1):.1f}x"
                       for n in counts)
    lines.append(f"peak RSS, whole-stack loading / streaming: {ratios}")
    deep, shallow = max(counts), min(counts)
    growth = ", ".join(f"{mode} {peaks[deep, mode] / max(peaks[shallow, mode], 1):.1f}x"
                       for mode in MODES)
    lines.append(f"peak RSS, {deep} slices / {shallow} slices: {growth}")
    cropped = ", ".join(f"{n} slices {peaks[n, 'uncropped'] / max(peaks[n, 'stream'], 1):.1f}x "
                        f"the memory, {seconds[n, 'uncropped'] / seconds[n, 'stream']:.2f}x the "
                        "time" for n in counts)
    lines.append(f"whole tiles upsampled (uncropped) / only each core and its margin (stream): "
                 f"{cropped}")
    return lines


def _remove(folder: Path) -> None:
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            os.rmdir(os.path.join(root, name))
    os.rmdir(folder)
