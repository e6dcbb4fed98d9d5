"""Packed split arrays: the split step's output and every later step's input.

A packs folder holds, per rock type and split, `{rock}_{split}_hr.npy` (N, H, W uint8),
`{rock}_{split}_lr.npy` (N, h, w uint8) and `{rock}_{split}_ids.npy` (N, int64 image ids),
plus `index.json` (scale, degradation, dim, and the list of packs with their sizes). Packs of
3D volumes (dim 3) hold (N, D, H, W) and (N, d, h, w) uint8 arrays, laid out alike. PNGs and
volumes are decoded once, here; training and evaluation memory-map or load these arrays whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rocksr.fileio import atomic_dir

INDEX = "index.json"


@dataclass
class Pack:
    rock: str
    split: str
    hr: np.ndarray
    lr: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def write_packs(packs_dir: str | Path, packs: list[Pack], scale: int, degradation: str) -> None:
    """Write all packs into a fresh folder that appears only once complete."""
    with atomic_dir(packs_dir) as tmp:
        entries = []
        for p in packs:
            if not (len(p.hr) == len(p.lr) == len(p.ids)):
                raise ValueError(f"pack {p.rock}/{p.split}: hr, lr and ids differ in length")
            stem = f"{p.rock}_{p.split}"
            np.save(tmp / f"{stem}_hr.npy", np.ascontiguousarray(p.hr, dtype=np.uint8))
            np.save(tmp / f"{stem}_lr.npy", np.ascontiguousarray(p.lr, dtype=np.uint8))
            np.save(tmp / f"{stem}_ids.npy", np.asarray(p.ids, dtype=np.int64))
            entries.append({"rock": p.rock, "split": p.split, "n": len(p),
                            "hr_size": list(p.hr.shape[1:]), "lr_size": list(p.lr.shape[1:])})
        dims = {p.hr.ndim - 1 for p in packs}
        if len(dims) > 1:
            raise ValueError("packs mix 2D images and 3D volumes")
        index = {"scale": scale, "degradation": degradation, "dim": dims.pop() if dims else 2,
                 "packs": entries}
        (tmp / INDEX).write_text(json.dumps(index, indent=2))


def read_index(packs_dir: str | Path) -> dict:
    path = Path(packs_dir) / INDEX
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} missing: {packs_dir} is not a complete packs folder "
                                "(rerun the split step)") from None


def load_pack(packs_dir: str | Path, rock: str, split: str, mmap: bool = True) -> Pack:
    packs_dir = Path(packs_dir)
    stem = packs_dir / f"{rock}_{split}"
    mode = "r" if mmap else None
    try:
        return Pack(rock, split,
                    hr=np.load(f"{stem}_hr.npy", mmap_mode=mode),
                    lr=np.load(f"{stem}_lr.npy", mmap_mode=mode),
                    ids=np.load(f"{stem}_ids.npy"))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"no {rock}/{split} pack in {packs_dir}: {exc.filename}") from None


def load_split(packs_dir: str | Path, split: str, mmap: bool = True) -> list[Pack]:
    """Every rock type's pack of one split, in index order (empty packs skipped)."""
    index = read_index(packs_dir)
    return [load_pack(packs_dir, e["rock"], split, mmap)
            for e in index["packs"] if e["split"] == split and e["n"] > 0]
