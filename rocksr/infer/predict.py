"""Super-resolve a researcher's own images with trained generators, and bicubic beside them
(tricubic beside 3D generators): the one code path of `rocksr predict` and of the workflow's
predict step.

Inputs (rocksr.infer.batch): images, TIFF stacks, folders of slices, globs and folder trees.
Outputs mirror them: `<out>/<method>/<the input's path relative to the inputs' common
folder>`, a file under its own name and format, a folder of slices as a folder, so two
inputs never share an output; `<out>/manifest.json` describes the batch.

Per input: its headers are checked before any pixel is read (rocksr.imaging.images); its
intensity window is chosen (rocksr.imaging.intensity), and the fraction of its voxels that
the window clips is logged (a warning above 0.1%) and recorded; each method's output is
written slice by slice, each slice tile by tile (rocksr.infer.tiling), so memory holds one
slice whatever the number of slices (with 3D models: one z-slab, `tile` LR slices deep, whose
LR slices and `overlap` more each side are all that is read of the volume at a time, and
which is upscaled cube by cube), into a temporary sibling that takes the output's name
only once every method's output of that input is complete. An output that exists is
replaced only when it holds a prediction of the same input (its record says so); one of
another input, or a file this tool did not write, is never overwritten: that input fails,
named, and the others go on. Any failed input makes the run end with a non-zero status;
the manifest gives each input's outcome.

Physics: the output's voxel size is the input's (rocksr.imaging.voxel) with x and y divided
by the scale and z unchanged: a 2D model upsamples each slice in-plane; no slice is added.
3D models upsample volumes (a stack or a folder of slices; a single image fails) along x, y
and z: scale times as many slices, and x, y and z divided by the scale (a z spacing the
input does not state stays unknown). Values come back in the input's units through the
inverse of the intensity window.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from rocksr import __version__
from rocksr.fileio import atomic_dir, atomic_path
from rocksr.imaging.images import ImageInput, open_input, read_record, write_output
from rocksr.imaging.intensity import Window, window_for
from rocksr.infer.batch import Unit, units
from rocksr.infer.inference import BASELINES, Upscaler, upscalers
from rocksr.infer.tiling import receptive_radius, upscale_slabs, upscale_tiled
from rocksr.nets.models import Generator
from rocksr.progress import progress
from rocksr.settings import ConfigError, PredictSettings

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CLIP_WARN = 0.001  # fraction of clipped voxels above which the log warns
IN_PLANE = ("2D models upsample in-plane only: the output's x and y voxel sizes are the "
            "input's divided by the scale, z (the slice spacing) is unchanged; no slice is "
            "added")
ISOTROPIC = ("3D models upsample isotropically: the output has scale times the input's slices, "
             "rows and columns, and its x, y and z voxel sizes are the input's divided by the "
             "scale (a z spacing the input does not state stays unknown)")
NOTES = {2: IN_PLANE, 3: ISOTROPIC}


def check_overlap(generators: dict[str, Generator], overlap: int) -> None:
    for name, g in generators.items():
        radius = receptive_radius(g)
        if overlap < radius:
            raise ConfigError(f"predict.overlap: {overlap} is less than the receptive radius of "
                              f"model {name!r} ({radius} LR pixels); tiles would show seams")


@torch.inference_mode()
def predict(inputs: list[str | Path], models: dict[str, tuple[Generator, dict]],
            out_dir: str | Path, settings: PredictSettings, device: torch.device) -> dict:
    """Predict every input into `out_dir` with each model (name: (generator, its card from
    rocksr.infer.modelfile.open_model)); return the manifest, whose `failed` counts the
    inputs that failed."""
    generators = {name: g for name, (g, _) in models.items()}
    scales = {g.scale for g in generators.values()}
    if len(scales) != 1:
        raise ValueError(f"the models upscale by different factors: {sorted(scales)}")
    scale = scales.pop()
    dims = {name: g.dim for name, g in generators.items()}
    if len(set(dims.values())) != 1:
        raise ConfigError("the models are of different kinds ("
                          + ", ".join(f"{n}: {d}D" for n, d in dims.items())
                          + "): predict with the 2D and the 3D models in separate runs")
    dim = dims.popitem()[1]
    check_overlap(generators, settings.overlap)
    methods = upscalers({n: g.to(device).eval() for n, g in generators.items()}, scale, dim)
    if not settings.bicubic:
        del methods[BASELINES[dim][0]]
    out_dir = Path(os.path.abspath(out_dir))
    found, failed = units(inputs, exclude=out_dir)
    log.info("%d input(s), %d %dD model(s) x%d on %s; %s", len(found), len(models), dim,
             scale, device, NOTES[dim])
    entries = [{"input": arg, "status": "failed", "error": why} for arg, why in failed]
    for arg, why in failed:
        log.error("%s: %s", arg, why)
    claims = Claims()
    for unit in found:
        try:
            entry = _predict_one(unit, methods, scale, dim, out_dir, settings, device,
                                 claims)
        except (ValueError, OSError, MemoryError) as exc:
            log.error("%s: failed: %s", unit.path, exc)
            entry = {"input": str(unit.path), "status": "failed", "error": str(exc)}
        entries.append(entry)
    manifest = {"rocksr_version": __version__, "scale": scale, "note": NOTES[dim], "dim": dim,
                "device": str(device), "settings": settings.to_dict(),
                "models": {name: info for name, (_, info) in models.items()},
                "methods": list(methods), "inputs": entries,
                "failed": sum(e["status"] == "failed" for e in entries)}
    with atomic_path(out_dir / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


class Claims:
    """The output paths (relative to a method's folder) of this batch's inputs so far: a
    second input whose output would be the same path, inside it or around it fails."""

    def __init__(self):
        self.owners: dict[str, Path] = {}
        self.folders: set[str] = set()  # folders above a claimed path

    def claim(self, unit: Unit) -> None:
        key = unit.rel.as_posix().casefold()  # case-insensitive file systems alias A and a
        parents = [p.as_posix().casefold() for p in unit.rel.parents][:-1]
        other = self.owners.get(key) or next(
            (self.owners[p] for p in parents if p in self.owners), None)
        if other is None and key in self.folders:
            other = next(o for k, o in self.owners.items() if k.startswith(key + "/"))
        if other is not None:
            raise ValueError(f"its outputs ({unit.rel}) would overlap those of {other}, "
                             "another input of this run: give each input once")
        self.owners[key] = unit.path
        self.folders.update(parents)


def _predict_one(unit: Unit, methods: dict[str, Upscaler], scale: int, dim: int,
                 out_dir: Path, settings: PredictSettings, device: torch.device,
                 claims: Claims) -> dict:
    source = open_input(unit.path, settings.max_slice_pixels)
    if dim == 3 and len(source) == 1:
        raise ValueError(f"a single 2D image of {source.shape[0]}x{source.shape[1]} pixels: "
                         "3D models need a volume (a multi-page TIFF stack or a folder of "
                         "slices); give 2D images to 2D models")
    claims.claim(unit)
    outputs = {m: out_dir / m / unit.rel for m in methods}
    for path in outputs.values():
        _check_free(path, unit.path)
    window = window_for(source.dtype, settings.intensity, source, where=str(unit.path))
    voxel = source.voxel.upsampled(scale, z=dim == 3) if source.voxel else None
    record = {"input": str(unit.path), "kind": source.kind, "dim": dim, "slices": len(source),
              "lr_shape": list(source.shape), "dtype": source.dtype.name, "scale": scale,
              "intensity": window.record(),
              "voxel": source.voxel.record() if source.voxel else None,
              "output_voxel": voxel.record() if voxel else None,
              "tile": settings.tile_3d if dim == 3 else settings.tile,
              "overlap": settings.overlap}
    log.info("%s: %s of %d slice(s), %dx%d %s, voxel %s; window %d-%d (%s)", unit.path,
             source.kind, len(source), *source.shape, source.dtype.name,
             _voxel_text(source.voxel), window.low, window.high, window.how)
    if window.clipped > CLIP_WARN:
        log.warning("%s: %.2f%% of the voxels lie outside the intensity window %d-%d and are "
                    "clipped for good (intensity.window: minmax clips none)", unit.path,
                    100 * window.clipped, window.low, window.high)
    with contextlib.ExitStack() as stack:  # every method's output, or none
        stack.enter_context(_new_folders([p.parent for p in outputs.values()], out_dir))
        for name, upscale in methods.items():
            target = atomic_dir if source.kind == "folder" else atomic_path
            tmp = stack.enter_context(target(outputs[name]))
            slices = (_upscaled_volume if dim == 3 else _upscaled)(
                source, window, upscale, scale, settings, device, f"{unit.rel} {name}")
            write_output(tmp, source, slices, {**record, "method": name}, voxel,
                         per_slice=scale if dim == 3 else 1)
    log.info("%s: wrote %s", unit.path, ", ".join(str(p) for p in outputs.values()))
    return {**record, "status": "ok",
            "outputs": {m: str(p.relative_to(out_dir)) for m, p in outputs.items()}}


@contextlib.contextmanager
def _new_folders(folders: list[Path], top: Path) -> Iterator[None]:
    """Create `folders`; on error remove again those of them (and of their parents below
    `top`) that were new and are still empty."""
    new = sorted({p for f in folders for p in (f, *f.parents)
                  if p.is_relative_to(top) and p != top and not p.exists()},
                 key=lambda p: len(p.parts), reverse=True)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for folder in new:
            with contextlib.suppress(OSError):  # not empty: another input's outputs
                folder.rmdir()
        raise


def _check_free(path: Path, input_path: Path) -> None:
    """Pass when `path` is free or holds a prediction of the same input; else raise."""
    if not os.path.lexists(path):
        return
    owner = (read_record(path) or {}).get("input")
    if owner != str(input_path):
        what = f"the prediction of {owner}" if owner else "a file that rocksr did not write"
        raise ValueError(f"{path} holds {what}; it is not overwritten (write to another "
                         "folder, or move it away)")


def _upscaled(source: ImageInput, window: Window, upscale: Upscaler, scale: int,
              settings: PredictSettings, device: torch.device, desc: str
              ) -> Iterator[np.ndarray]:
    """The input's slices upscaled, one at a time, in the input's dtype."""
    tiles = sys.stderr.isatty()  # a bar per slice's tiles on a terminal, not in a log file
    with progress(total=len(source), desc=desc, unit="slice") as bar:
        for i, lr in enumerate(source):
            try:
                yield upscale_tiled(upscale, window.to_unit(lr), scale, settings.tile,
                                    settings.overlap, device,
                                    desc=f"slice {i + 1}" if tiles else None,
                                    finish=window.from_unit)
            except torch.OutOfMemoryError:
                raise MemoryError(f"{device} ran out of memory on a tile of {settings.tile} "
                                  "LR pixels: lower predict.tile") from None
            bar.update()


def _upscaled_volume(source: ImageInput, window: Window, upscale: Upscaler, scale: int,
                     settings: PredictSettings, device: torch.device, desc: str
                     ) -> Iterator[np.ndarray]:
    """The volume upscaled along z, y and x (a 3D upscaler), z-slab by z-slab, each cube by
    cube: its scale * D output slices, one at a time, in the input's dtype."""
    tiles = sys.stderr.isatty()
    with progress(total=len(source), desc=desc, unit="slice") as bar:
        slabs = upscale_slabs(upscale, Planes(source, window), scale, settings.tile_3d,
                              settings.overlap, device, desc="cubes" if tiles else None,
                              finish=window.from_unit)
        try:
            for _, slab in slabs:
                yield from slab
                bar.update(len(slab) // scale)
                del slab  # before the next slab is made: one slab's output held, not two
        except torch.OutOfMemoryError:
            raise MemoryError(f"{device} ran out of memory on a cube of {settings.tile_3d} LR "
                              "voxels a side: lower predict.tile_3d") from None


class Planes:
    """An input's slices in [0, 1] as a lazy (D, H, W) volume for tiling.upscale_slabs:
    `planes[z0:z1]` reads slices z0 .. z1 - 1 only, keeping those the previous request
    shares with it (successive z-slabs overlap), so each slice is read once and only one
    slab's slices are held."""

    def __init__(self, source: ImageInput, window: Window):
        self.source, self.window = source, window
        self.shape = (len(source), *source.shape)
        self.start, self.held = 0, torch.empty(0, *source.shape)

    def __getitem__(self, z: slice) -> torch.Tensor:
        start, stop, _ = z.indices(self.shape[0])
        end = self.start + len(self.held)
        keep = self.held[start - self.start:stop - self.start] \
            if self.start <= start < end else self.held[:0]
        first = start + len(keep)
        new = [self.window.to_unit(s) for s in self.source.read(first, stop)]
        self.start, self.held = start, torch.cat([keep, *(t[None] for t in new)])
        return self.held


def _voxel_text(voxel) -> str:
    if voxel is None:
        return "unknown"
    z = f" x {voxel.z:g}" if voxel.z else ""
    return f"{voxel.x:g} x {voxel.y:g}{z} {voxel.unit}"
