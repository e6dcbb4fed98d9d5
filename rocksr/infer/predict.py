"""Super-resolve a user's own images with trained generators, and bicubic beside them.

The input is one PNG/TIFF image, a multi-page TIFF stack or a folder of slices, 8- or
16-bit (rocksr.imaging.images). Pixels reach the networks through an explicit intensity window
(rocksr.imaging.intensity), and each output goes back through its inverse into the input's dtype.
Every slice is upscaled tile by tile (rocksr.infer.tiling), so memory stays bounded whatever the
slice size. One output per method (`<name>_<method>.<png|tif>`, or a folder for a folder
input) and `manifest.json` (input, mapping, tiling, outputs) are written into
`<out_dir>.partial/`, which replaces `<out_dir>` only once complete: a failed run leaves
earlier results as they were.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from rocksr.fileio import atomic_dir
from rocksr.imaging.images import ImageInput, SliceWriter, open_input
from rocksr.imaging.intensity import Window, window_for
from rocksr.infer.inference import upscalers
from rocksr.infer.tiling import receptive_radius, upscale_tiled
from rocksr.nets.models import Generator
from rocksr.progress import progress
from rocksr.settings import ConfigError, PredictSettings

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def check_overlap(generators: dict[str, Generator], overlap: int) -> None:
    for name, g in generators.items():
        radius = receptive_radius(g)
        if overlap < radius:
            raise ConfigError(f"predict.overlap: {overlap} is less than the receptive radius of "
                              f"model {name!r} ({radius} LR pixels); tiles would show seams")


@torch.inference_mode()
def predict(input_path: str | Path, generators: dict[str, Generator], out_dir: str | Path,
            settings: PredictSettings, device: torch.device) -> dict:
    """Write every method's output for the input into `out_dir`; return the manifest."""
    scales = {g.scale for g in generators.values()}
    if len(scales) != 1:
        raise ValueError(f"the models upscale by different factors: {sorted(scales)}")
    scale = scales.pop()
    check_overlap(generators, settings.overlap)
    methods = upscalers({n: g.to(device).eval() for n, g in generators.items()}, scale)
    source = open_input(input_path)
    window = window_for(source.dtype, settings.intensity, source, where=str(source.path))
    log.info("%s: %s of %d slice(s), %dx%d %s; window %s", source.path, source.kind,
             len(source), *source.shape, source.dtype.name, window.record())
    record = {"input": str(source.path.resolve()), "kind": source.kind, "slices": len(source),
              "lr_shape": list(source.shape), "scale": scale, "intensity": window.record(),
              "tile": settings.tile, "overlap": settings.overlap}
    with atomic_dir(out_dir) as tmp:
        outputs = _write(source, methods, window, record, tmp, settings, device)
        manifest = {**record, "outputs": outputs}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _write(source: ImageInput, methods: dict, window: Window, record: dict, folder: Path,
           settings: PredictSettings, device: torch.device) -> dict[str, str]:
    scale = record["scale"]
    writers = {m: SliceWriter(source, folder, m, {**record, "method": m}, scale) for m in methods}
    try:
        with progress(total=len(source), desc=source.name, unit="slice") as bar:
            for i, lr in enumerate(source):
                unit = window.to_unit(lr)
                for name, upscale in methods.items():
                    try:
                        sr = upscale_tiled(upscale, unit, scale, settings.tile,
                                           settings.overlap, device,
                                           desc=f"slice {i + 1} {name}")
                    except torch.OutOfMemoryError:
                        raise MemoryError(f"{device} ran out of memory on a tile of "
                                          f"{settings.tile} LR pixels: lower predict.tile"
                                          ) from None
                    writers[name].add(window.from_unit(sr))
                bar.update()
    finally:
        for w in writers.values():
            w.close()
    return {m: w.path.name for m, w in writers.items()}

