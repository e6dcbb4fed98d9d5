"""The intensity window: the explicit map between stored pixel values and the networks' [0, 1].

8-bit images map as in training (x / 255; the inverse rounds to the 256 levels). 16-bit
images map through a window [low, high] chosen by `intensity.window`: `full` is the dtype's
range (0-65535); `percentile` takes the given percentiles of the whole input's histogram,
computed once, so every slice of a volume gets the same mapping; `minmax` the smallest and
largest values of the input, so nothing clips. Values outside the window clip to 0 or 1
(lost for good: the window's `clipped` fraction of the input's voxels says how many); the
inverse maps [0, 1] back onto [low, high], rounded and clipped to the dtype. The window is
recorded with every output (`Window.record`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from rocksr.settings import ConfigError, IntensitySettings

MAX = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


@dataclass(frozen=True)
class Window:
    dtype: np.dtype
    low: int
    high: int
    how: str  # how low/high were chosen, for the record
    clipped: float = 0.0  # fraction of the input's voxels outside [low, high]

    def to_unit(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.from_numpy(x.astype(np.float32)) if isinstance(x, np.ndarray) else x.float()
        return ((x - self.low) / (self.high - self.low)).clamp_(0.0, 1.0)

    def from_unit(self, u: torch.Tensor) -> np.ndarray:
        x = (u.float().clamp(0.0, 1.0) * (self.high - self.low) + self.low).round_()
        return x.clamp_(0, MAX[self.dtype]).numpy().astype(self.dtype)

    def record(self) -> dict:
        return {"dtype": self.dtype.name, "low": self.low, "high": self.high, "window": self.how,
                "clipped_fraction": self.clipped, "to_unit": "clip((x - low) / (high - low), 0, 1)",
                "from_unit": "clip(round(low + u * (high - low)), dtype range)"}


def check_dtype(dtype, where: str) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in MAX:
        raise ValueError(f"{where}: unsupported pixel type {dtype.name} "
                         "(expected 8- or 16-bit unsigned grey: uint8 or uint16)")
    return dtype


def histogram(slices: Iterable[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """Counts of every level over all slices (65536 bins for uint16), one slice at a time."""
    counts = np.zeros(MAX[dtype] + 1, np.int64)
    for image in slices:
        counts += np.bincount(image.ravel(), minlength=len(counts))
    return counts


def percentile_levels(counts: np.ndarray, percentiles: list[float]) -> list[int]:
    """The lowest level whose cumulative share reaches each percentile (an exact, streaming
    equivalent of numpy's 'inverted_cdf' percentile)."""
    cdf = np.cumsum(counts)
    # At least one pixel: the 0th percentile is the smallest value present, not level 0.
    return [int(np.searchsorted(cdf, max(p / 100 * cdf[-1], 1), side="left"))
            for p in percentiles]


def window_for(dtype: np.dtype, settings: IntensitySettings | None,
               slices: Iterable[np.ndarray] | None = None, where: str = "input") -> Window:
    """The window of an input of `dtype`; `slices` (all of them) is read only when the
    16-bit window is `percentile` or `minmax`. 8-bit input needs no settings."""
    dtype = check_dtype(dtype, where)
    if dtype == np.uint8:
        return Window(dtype, 0, 255, "uint8 as in training: x / 255")
    if settings is None:
        raise ConfigError(f"{where}: 16-bit input without intensity settings")
    if settings.window == "full":
        return Window(dtype, 0, MAX[dtype], "full: the dtype's range")
    counts = histogram(slices, dtype)
    if settings.window == "minmax":
        present = np.flatnonzero(counts)
        low, high = int(present[0]), int(present[-1])
        how = "minmax: the input's smallest and largest values"
        if high <= low:
            raise ValueError(f"{where}: every voxel is {low}; use intensity.window: full")
    else:
        lo_p, hi_p = settings.percentiles
        low, high = percentile_levels(counts, [lo_p, hi_p])
        how = f"percentile: {lo_p:g} and {hi_p:g} percentiles of the input"
        if high <= low:
            raise ValueError(f"{where}: the {lo_p:g} and {hi_p:g} percentiles are both {low} (a "
                             "nearly constant image?); use intensity.window: full or wider "
                             "percentiles")
    clipped = (counts[:low].sum() + counts[high + 1:].sum()) / counts.sum()
    return Window(dtype, low, high, how, float(clipped))
