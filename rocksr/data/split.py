"""Split step: pair LR/HR members of the archive, decode them once and pack them.

The same for the 2D archive's PNG slices and (`dim` 3) the 3D archive's MATLAB volumes: the
packs then hold (N, D, H, W) volumes, the manifest their depths too.

Members are read straight from the zip (no extraction). Every image is decoded and checked
before anything is written; the packs folder (packs.py) and then the manifest CSV appear
only once complete, and a failure removes whatever this step had started to write.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from rocksr import SPLITS
from rocksr.data.archive import NOUN, ArchiveError, Pair, open_archive, pair_members, read_member
from rocksr.data.packs import Pack, write_packs
from rocksr.fileio import atomic_path, temp_path
from rocksr.progress import progress

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("rock_type", "split", "id", "hr_member", "lr_member",
                    "hr_height", "hr_width", "lr_height", "lr_width")
AXES = {2: ("height", "width"), 3: ("depth", "height", "width")}


def manifest_columns(dim: int) -> tuple[str, ...]:
    sizes = tuple(f"{side}_{axis}" for side in ("hr", "lr") for axis in AXES[dim])
    return MANIFEST_COLUMNS[:5] + sizes


def default_workers() -> int:
    # PNG inflate and zip reads release the GIL, so a few threads decode in parallel.
    try:
        cpus = len(os.sched_getaffinity(0))  # the CPUs this job may use (SLURM, taskset)
    except AttributeError:  # macOS
        cpus = os.cpu_count() or 1
    return min(4, cpus)


def split_archive(archive: str | Path, packs_dir: str | Path, manifest: str | Path,
                  rock_types, scale: int, degradation: str, resplit: dict | None = None,
                  workers: int | None = None, dim: int = 2) -> list[Pack]:
    """The whole step: archive in, packs folder and manifest CSV out; `dim` 2 pairs the
    2D archive's slices, 3 the 3D archive's volumes."""
    packs_dir, manifest = Path(packs_dir), Path(manifest)
    outputs = [packs_dir, manifest, temp_path(manifest)]
    _remove(outputs)  # a stale output must never pass for this run's
    try:
        with open_archive(archive) as zf:
            names = zf.namelist()
        pairs = pair_members(names, rock_types, scale, degradation, where=str(archive), dim=dim)
        groups = assign_splits(pairs, rock_types, resplit)
        packs = build_packs(archive, groups, scale, workers or default_workers())
        write_packs(packs_dir, packs, scale, degradation)
        _write_manifest(manifest, groups, packs, dim)
    except BaseException:
        _remove(outputs)
        raise
    for p in packs:
        log.info("%s %s: %d pairs, HR %s, LR %s", p.rock, p.split, len(p),
                 "x".join(map(str, p.hr.shape[1:])), "x".join(map(str, p.lr.shape[1:])))
    return packs


def assign_splits(pairs: list[Pair], rock_types,
                  resplit: dict | None) -> dict[tuple[str, str], list[Pair]]:
    """Pairs per (rock type, split): the dataset's own splits, or a seeded re-split by ratios.

    A re-split pools every id of a rock type and deals them out by the ratios; the same
    seed and archive always give the same splits.
    """
    groups = {(rock, split): [] for rock in rock_types for split in SPLITS}
    if resplit is None:
        for p in pairs:
            groups[(p.rock, p.split)].append(p)
    else:
        ratios, seed = _check_resplit(resplit)
        for rock in rock_types:
            pool = [p for p in pairs if p.rock == rock]
            order = np.random.default_rng(seed).permutation(len(pool))
            start = 0
            for split, n in zip(SPLITS, _allocate(len(pool), ratios)):
                chosen = [pool[i] for i in order[start:start + n]]
                groups[(rock, split)] = sorted(chosen, key=lambda p: p.image_id)
                start += n
    for (rock, split), group in groups.items():
        if not group:
            how = f"re-splitting by {resplit['ratios']}" if resplit else "the archive's own splits"
            raise ArchiveError(f"empty selection: no {rock} images in the {split} split "
                               f"(from {how})")
    return groups


def _check_resplit(resplit: dict) -> tuple[list[float], int]:
    try:
        ratios = [float(resplit["ratios"][s]) for s in SPLITS]
        seed = int(resplit["seed"])
    except (KeyError, TypeError, ValueError):
        raise ArchiveError(f"resplit must be null or {{ratios: {{train, valid, test}}, seed}}, "
                           f"got {resplit!r}") from None
    if min(ratios) < 0 or abs(sum(ratios) - 1) > 1e-6:
        raise ArchiveError(f"resplit ratios must be >= 0 and sum to 1, got {resplit['ratios']}")
    return ratios, seed


def _allocate(n: int, ratios: list[float]) -> list[int]:
    """Split n into integer counts by ratios (largest remainder, so they sum to n)."""
    exact = [n * r for r in ratios]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(ratios)), key=lambda i: counts[i] - exact[i])
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    return counts


def build_packs(archive: str | Path, groups: dict[tuple[str, str], list[Pair]], scale: int,
                workers: int) -> list[Pack]:
    """Decode every pair into preallocated uint8 arrays, checking sizes and channels (or,
    for volumes, dtypes)."""
    packs, jobs = [], []
    with open_archive(archive) as zf:
        for (rock, split), group in groups.items():
            # The first pair sizes the pack's arrays; pairs of another size are set aside,
            # and the odd one out is named once all are decoded (_check_pack_sizes).
            hr, lr = read_member(zf, group[0].hr), read_member(zf, group[0].lr)
            pack = Pack(rock, split,
                        hr=np.empty((len(group), *hr.shape), np.uint8),
                        lr=np.empty((len(group), *lr.shape), np.uint8),
                        ids=np.array([p.image_id for p in group], np.int64))
            packs.append(pack)
            jobs += [(pack, i, pair) for i, pair in enumerate(group)]
    odd = _decode(archive, jobs, scale, workers)
    for pack, group in zip(packs, groups.values()):
        _check_pack_sizes(pack, group, odd.get(id(pack), {}))
    return packs


def _decode(archive, jobs, scale: int, workers: int) -> dict[int, dict[int, tuple]]:
    """Fill the packs; returns {id(pack): {index: HR shape}} of the pairs whose HR size is
    not the pack's (left unfilled)."""
    local, opened, odd = threading.local(), [], {}

    def zipfile_of_this_thread():
        # ZipFile objects are not thread-safe: one per worker thread.
        if not hasattr(local, "zf"):
            local.zf = open_archive(archive)
            opened.append(local.zf)
        return local.zf

    def load(pack: Pack, i: int, pair: Pair) -> None:
        zf = zipfile_of_this_thread()
        hr, lr = read_member(zf, pair.hr), read_member(zf, pair.lr)
        _check_scale(pair, hr.shape, lr.shape, scale)
        if hr.shape != pack.hr.shape[1:]:
            odd.setdefault(id(pack), {})[i] = hr.shape  # dict updates are atomic in CPython
        else:
            pack.hr[i], pack.lr[i] = hr, lr

    try:
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(load, *job) for job in jobs]
            try:
                for future in progress(as_completed(futures), total=len(futures),
                                       desc="decode", unit="pair"):
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    finally:
        for zf in opened:
            zf.close()
    return odd


def _wh(shape) -> str:
    """Width x height (x depth): an (H, W) or (D, H, W) shape as sizes are usually said."""
    return "x".join(map(str, shape[::-1]))


def _check_scale(pair: Pair, hr_shape, lr_shape, scale: int) -> None:
    if hr_shape != tuple(scale * n for n in lr_shape):
        axes = "" if len(lr_shape) == 2 else " on every axis"
        raise ArchiveError(f"{pair.lr}: wrong size, LR is {_wh(lr_shape)} but its HR partner "
                           f"{pair.hr} is {_wh(hr_shape)}; HR must be {scale}x the LR size"
                           f"{axes}")


def _check_pack_sizes(pack: Pack, group: list[Pair], odd: dict[int, tuple]) -> None:
    """Name the odd one out: the first pair (in id order) whose HR size is not the most
    common one of its pack, whichever pair the arrays were sized by."""
    if not odd:
        return
    shapes = [odd.get(i, pack.hr.shape[1:]) for i in range(len(group))]
    counts = Counter(shapes)
    usual = max(counts, key=lambda shape: (counts[shape], shape == pack.hr.shape[1:]))
    i = next(i for i, shape in enumerate(shapes) if shape != usual)
    noun = NOUN[len(usual)]
    raise ArchiveError(f"{group[i].hr}: wrong size, {_wh(shapes[i])} while the other "
                       f"{pack.rock} {pack.split} HR {noun}s are {_wh(usual)}")


def _write_manifest(path: Path, groups, packs: list[Pack], dim: int) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(manifest_columns(dim))
        for pack in packs:
            sizes = [*pack.hr.shape[1:], *pack.lr.shape[1:]]
            for pair in groups[(pack.rock, pack.split)]:
                writer.writerow([pack.rock, pack.split, pair.image_id, pair.hr, pair.lr,
                                 *sizes])


def _remove(paths) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
