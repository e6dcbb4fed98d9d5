"""Runs side by side: every enabled run's evaluation summary in one table, and the spread of
runs that differ only by seed (a run whose config lists several seeds)."""

from __future__ import annotations

import pandas as pd

RUN_COLUMNS = ["run", "seed", "name", "scale", "degradation"]
KEYS = ["rock_type", "split", "method"]


def comparison_table(runs: list[dict], summaries: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per run (results folder `name`), rock type, split and method: the run's
    config name, seed, scale and degradation, then its summary's columns."""
    if len(runs) != len(summaries):
        raise ValueError(f"{len(runs)} runs but {len(summaries)} summaries")
    frames = []
    for run, summary in zip(runs, summaries):
        missing = [c for c in RUN_COLUMNS if c not in run]
        if missing:
            raise ValueError(f"run {run.get('name', '?')} lacks {', '.join(missing)}")
        frames.append(summary.assign(**{c: run[c] for c in RUN_COLUMNS}))
    table = pd.concat(frames, ignore_index=True)
    return table[RUN_COLUMNS + [c for c in table if c not in RUN_COLUMNS]]


def seed_spread(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per config run, rock type, split and method: mean and sample std over the seeds of
    `column` (a per-run mean), and how many seeds there are (std is NaN for one)."""
    grouped = table.groupby(["run", *KEYS], sort=False)[column]
    return grouped.agg(mean="mean", std="std", seeds="size").reset_index()
