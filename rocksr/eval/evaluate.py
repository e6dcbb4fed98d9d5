"""Evaluation: bicubic, SRCNN (phase-1 generator) and SRGAN (phase-2 generator) per image.

Full images, batched on one device (rocksr.device.pick_device), no per-image Python work: each
batch of LR images goes through every method, then PSNR/SSIM (rocksr.eval.metrics, [0, 1], peak 1)
and porosity (rocksr.eval.porosity: Otsu threshold of the HR image applied to every image) are
computed for the whole batch at once, and so are the texture metrics (rocksr.eval.texture: power
spectrum, two-point correlation and specific perimeter against HR's; `texture=False` skips
them, for the benchmark's comparison).

Volumes (packs of dim 3) go the same way with tricubic as the baseline: PSNR, 3D SSIM and
porosity of each whole volume, and instead of the 2D texture metrics the 3D rock metrics
of SR against HR (rocksr.eval.rock3d: specific surface area, Euler characteristic, S2, pore
sizes, and their errors), computed on the CPU, one volume per worker process.

SR post-processing is explicit in every output row (`clamped`, `quantized` columns): `clamp`
clips to [0, 1]; `quantize` rounds to 8 bits as a saved PNG would, which implies clipping.
The bicubic baseline gets the same treatment as the networks.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from rocksr.data.packs import Pack, load_split, read_index
from rocksr.device import pick_device
from rocksr.eval import rock3d, texture
from rocksr.eval.external import external_packs
from rocksr.eval.metrics import psnr, ssim
from rocksr.eval.porosity import otsu_threshold, porosity
from rocksr.imaging.pixels import uint8_to_unit
from rocksr.infer.inference import Upscaler, postprocess, upscalers
from rocksr.nets.models import Generator
from rocksr.progress import progress
from rocksr.settings import EvaluationSettings

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = ["rock_type", "split", "method", "psnr_mean", "psnr_std", "ssim_mean", "n",
                   "porosity_mean", "porosity_hr_mean", "porosity_abs_err_mean",
                   "clamped", "quantized"]
# Per-volume columns of the 3D rock metrics (porosity is already in the table, the same
# number under the same cut).
ROCK_COLUMNS = [c for c in rock3d.COLUMNS if not c.startswith("porosity")] + [
    e for e in rock3d.ERRORS if e not in rock3d.COLUMNS]

def check_manifest(manifest: str | Path, packs: list[Pack]) -> None:
    """The packs must hold exactly the manifest's images (catches a stale packs folder)."""
    try:
        table = pd.read_csv(manifest, usecols=["rock_type", "split", "id"])
    except ValueError as exc:  # missing columns, empty file
        raise ValueError(f"{manifest}: not a manifest ({exc})") from None
    for pack in packs:
        rows = table[(table.rock_type == pack.rock) & (table.split == pack.split)]
        if set(rows.id) != set(pack.ids.tolist()):
            raise ValueError(f"{manifest}: the {pack.rock}/{pack.split} images differ from the "
                             f"packs' ({len(rows)} listed, {len(pack)} packed); "
                             "rerun the split step")


def rock_row(sr: np.ndarray, reference: tuple) -> dict[str, float]:
    """ROCK_COLUMNS of one SR volume against its HR `rock3d.reference`."""
    values = rock3d.compare(sr, reference)
    values.update(rock3d.errors(values))
    return {k: values[k] for k in ROCK_COLUMNS}


@contextmanager
def volume_workers(workers: int) -> Iterator[Callable]:
    """A `map` over worker processes (the rock metrics hold the GIL), or the builtin one for
    a single worker. Spawned, not forked: the parent runs torch's threads."""
    if workers <= 1:
        yield map
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool.map


@torch.inference_mode()
def score_pack(pack: Pack, methods: dict[str, Upscaler], settings: EvaluationSettings,
               device: torch.device, bar: tqdm | None = None,
               spectra: texture.SpectrumSums | None = None,
               with_texture: bool = True, rock_map: Callable | None = None) -> pd.DataFrame:
    """Per-image rows for one rock type and split, every method; mean spectra into `spectra`.
    `rock_map`: a `map` (volume_workers) that computes the 3D rock metrics of volumes."""
    columns: dict[str, list] = {k: [] for k in ("method", "id", "psnr", "ssim", "porosity",
                                                "porosity_hr")}
    columns.update({k: [] for k in texture.COLUMNS} if with_texture else {})
    columns.update({k: [] for k in ROCK_COLUMNS} if rock_map else {})
    bs = settings.batch_size
    for start in range(0, len(pack), bs):
        lr = torch.from_numpy(np.array(pack.lr[start:start + bs])).to(device)
        hr8 = torch.from_numpy(np.array(pack.hr[start:start + bs])).to(device)
        lr, hr8 = lr.unsqueeze(1), hr8.unsqueeze(1)
        hr = uint8_to_unit(hr8)
        cut = otsu_threshold(hr8)
        hr_porosity = porosity(hr, cut).cpu().numpy()
        ids = pack.ids[start:start + bs].tolist()
        if with_texture:
            scale = hr.shape[-1] // lr.shape[-1]
            reference = texture.reference(hr, cut, scale)
            if spectra is not None:
                spectra.add(pack.rock, pack.split, "hr", reference.spectrum, hr.shape[-1], scale)
        if rock_map:
            references = list(rock_map(rock3d.reference, hr8[:, 0].cpu().numpy()))
        for name, upscale in methods.items():
            sr = postprocess(upscale(lr).float(), settings.clamp, settings.quantize)
            if sr.shape != hr.shape:
                raise ValueError(f"{pack.rock}/{pack.split}: {name} output {tuple(sr.shape[-2:])} "
                                 f"does not match HR {tuple(hr.shape[-2:])}")
            columns["method"] += [name] * len(ids)
            columns["id"] += ids
            columns["psnr"] += psnr(sr, hr).tolist()
            columns["ssim"] += ssim(sr, hr).tolist()
            columns["porosity"] += porosity(sr, cut).tolist()
            columns["porosity_hr"] += hr_porosity.tolist()
            if with_texture:
                values, spectrum = texture.compare(sr, cut, reference)
                for key, value in values.items():
                    columns[key] += value.tolist()
                if spectra is not None:
                    spectra.add(pack.rock, pack.split, name, spectrum, hr.shape[-1], scale)
            if rock_map:
                for row in rock_map(rock_row, sr[:, 0].cpu().numpy(), references):
                    for key, value in row.items():
                        columns[key].append(value)
        if bar is not None:
            bar.update(len(ids))
    rows = pd.DataFrame(columns)
    rows = pd.concat([rows[rows.method == m] for m in methods], ignore_index=True)
    rows.insert(0, "split", pack.split)
    rows.insert(0, "rock_type", pack.rock)
    rows["clamped"] = settings.clamp or settings.quantize
    rows["quantized"] = settings.quantize
    return rows


def evaluate(packs_dir: str | Path, generators: dict[str, Generator],
             settings: EvaluationSettings,
             device: torch.device | None = None,
             manifest: str | Path | None = None,
             spectra: texture.SpectrumSums | None = None,
             with_texture: bool = True, workers: int = 1) -> pd.DataFrame:
    """Per-image table over the configured splits: one row per image (or volume) and method
    (and, with texture metrics on, the mean spectra per rock type, split and method into
    `spectra`; volumes get the rock metrics instead, in `workers` processes)."""
    device = device or pick_device(settings.device, key="evaluation.device")
    index = read_index(packs_dir)
    scale, dim = index["scale"], index.get("dim", 2)
    packs = []
    for split in settings.splits:
        found = load_split(packs_dir, split)
        if not found:
            raise ValueError(f"{packs_dir}: no {split} images to evaluate")
        packs += found
    if manifest is not None:
        check_manifest(manifest, packs)
    if dim == 2:
        packs += external_packs(settings.external, scale, index["degradation"],
                                settings.intensity)
    elif settings.external:
        log.info("evaluation.external: sets of slices, scored by the 2D runs only")
    generators = {name: g.to(device).eval() for name, g in generators.items()}
    methods = upscalers(generators, scale, dim)
    log.info("evaluating %s on %d images (%s) on %s; clamp=%s quantize=%s", ", ".join(methods),
             sum(map(len, packs)), ", ".join(settings.splits), device,
             settings.clamp, settings.quantize)
    with progress(total=sum(map(len, packs)), desc="evaluate", unit="img") as bar, \
            volume_workers(workers if dim == 3 else 1) as rock_map:
        tables = [score_pack(p, methods, settings, device, bar, spectra,
                             with_texture and dim == 2, rock_map if dim == 3 else None)
                  for p in packs]
    return pd.concat(tables, ignore_index=True)


def summarize(per_image: pd.DataFrame) -> pd.DataFrame:
    """Mean/std per rock type, split and method; psnr_std is the sample std (NaN for n = 1).
    Texture and rock-metric columns, where present, follow as <name>_mean and <name>_std."""
    df = per_image.assign(porosity_abs_err=(per_image.porosity - per_image.porosity_hr).abs())
    keys = ["rock_type", "split", "method"]
    grouped = df.groupby(keys, sort=False)
    summary = grouped.agg(
        psnr_mean=("psnr", "mean"), psnr_std=("psnr", "std"), ssim_mean=("ssim", "mean"),
        n=("psnr", "size"), porosity_mean=("porosity", "mean"),
        porosity_hr_mean=("porosity_hr", "mean"),
        porosity_abs_err_mean=("porosity_abs_err", "mean"),
        clamped=("clamped", "all"), quantized=("quantized", "all"),
    ).reset_index()[SUMMARY_COLUMNS]
    extra = [c for c in dict.fromkeys((*texture.COLUMNS, *ROCK_COLUMNS)) if c in df]
    if not extra:
        return summary
    spread = grouped[extra].agg(["mean", "std"])
    spread.columns = [f"{name}_{stat}" for name, stat in spread.columns]
    return summary.merge(spread.reset_index(), on=keys, how="left")

