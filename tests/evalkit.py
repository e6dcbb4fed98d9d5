"""Tiny packs, manifest and random generators for the evaluation, figure and predict tests,
and the steps' settings as the rules build them (config.yaml + tests/tiny.yaml)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from rocksr.data.packs import Pack, write_packs
from rocksr.imaging.resize import bicubic_resize
from rocksr.nets.models import Generator, save_model
from rocksr.workflow import config as cfg

SCALE, HR = 4, 32
IDS = {"valid": [3201, 3202, 3203], "test": [3601, 3602]}
ROOT = Path(__file__).resolve().parents[1]


def tiny_config(**overrides) -> dict:
    """config.yaml with tests/tiny.yaml and `overrides` layered on, validated as the
    workflow validates it; pass it to the config.*_settings function a rule uses."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for layer in (yaml.safe_load((ROOT / "tests" / "tiny.yaml").read_text()), overrides):
        config = cfg.deep_merge(config, layer)
    return cfg.validate(config, "test config")


def as_json(settings) -> str:
    """A step's --settings, as the rules pass it (rules/common.smk as_json)."""
    return json.dumps(settings.to_dict(), sort_keys=True)


def rock_images(n: int, seed: int) -> np.ndarray:
    """Two-phase 'rock': smooth random field thresholded into dark pores and bright grain."""
    g = torch.Generator().manual_seed(seed)
    field = bicubic_resize(torch.rand(n, 1, 6, 6, generator=g), (HR, HR))
    grey = torch.where(field < 0.45, 0.1, 0.9) + 0.08 * torch.randn(field.shape, generator=g)
    return (grey.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0].numpy()


def make_packs(root: Path, rocks=("carbonate", "coal")) -> tuple[Path, Path]:
    packs, rows = [], []
    for r, rock in enumerate(rocks):
        for split, ids in IDS.items():
            hr = rock_images(len(ids), seed=10 * r + len(ids))
            lr = bicubic_resize(torch.from_numpy(hr).float()[:, None] / 255, (HR // SCALE,) * 2)
            lr = (lr.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0].numpy()
            packs.append(Pack(rock, split, hr, lr, np.array(ids)))
            rows += [{"rock_type": rock, "split": split, "id": i} for i in ids]
    write_packs(root / "packs", packs, scale=SCALE, degradation="unknown")
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "packs", root / "manifest.csv"


def make_generator(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    save_model(path, Generator(scale=SCALE, blocks=1, filters=8))
    return path
