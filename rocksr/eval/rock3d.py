"""Rock metrics of 3D volumes: what digital-rock work reads from a segmented micro-CT volume.

One volume at a time, on the CPU (numpy, scipy, scikit-image). SR and HR are segmented alike,
as in 2D (rocksr.eval.porosity): the Otsu threshold of the HR volume's histogram, applied
unchanged to both; pore space is the dark phase, voxels below the cut. Definitions (also for
the README's "Conventions"):

- Porosity: pore voxels / all voxels.
- Specific surface area: the area of the pore/solid interface per volume (1/voxel), the
  interface being the marching-cubes mesh (skimage) of the binary pore mask at level 0.5,
  inside the volume (no faces along its border). On a binary mask the mesh is faceted: a
  flat face parallel to the axes is exact, a curved one comes out some 8% larger (a ball).
- Two-point correlation S2(r): the probability that two voxels r apart are both pore, r =
  0 .. min(D, H, W) // 2, non-periodic (the zero-padded autocorrelation over the voxel pairs
  at each lag, averaged over the lags whose length rounds to r; as porespy's
  `two_point_correlation` with bin edges at half voxels). S2(0) is the porosity. S2 error:
  mean over r >= 1 of |S2_SR(r) - S2_HR(r)|.
- Euler characteristic of the pore phase, 26-connected (its background 6-connected):
  skimage.measure.euler_number(connectivity=3); per volume, and per 10^6 voxels as the
  density `euler_density` (volumes of different sizes compare).
- Pore sizes by local thickness: each pore voxel's value is the radius of the largest ball
  that covers it and fits the pore space, in whole voxels (rounded down): a ball of radius r
  (the voxels within r of its centre voxel) fits when r is at most the centre's Euclidean
  distance to the nearest solid voxel. So the ball of voxels within R of a voxel has R
  throughout, a slab T voxels thick (T + 1) // 2. One distance transform per radius, as
  porespy's `local_thickness` (mode 'dt'), which takes the balls open (within < r) instead.
  Summarised as the mean and the 10th, 50th and 90th percentiles over the pore voxels.

Errors of SR against HR per volume (`errors`, ERRORS): the relative error (SR - HR) / HR of
the specific surface area and of the mean pore size (negative: less than HR), the difference
of the Euler densities (per 10^6 voxels; the Euler characteristic can be 0 or negative, so no
ratio), and the S2 error above; with porosity's absolute error (rocksr.eval.evaluate) these
are the rock-metrics figure's panels.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import fft, ndimage
from skimage.measure import euler_number, marching_cubes, mesh_surface_area

from rocksr.eval.porosity import otsu_threshold

QUANTILES = (10, 50, 90)
# Per-volume columns of `compare`: SR's value, HR's (`_hr`), and the S2 error.
COLUMNS = ("porosity", "porosity_hr", "ssa", "ssa_hr", "euler", "euler_hr", "euler_density",
           "euler_density_hr", "s2_err", "psd_mean", "psd_mean_hr",
           *(f"psd_q{q}{side}" for q in QUANTILES for side in ("", "_hr")))


ERRORS = ("ssa_rel_err", "euler_density_err", "s2_err", "psd_mean_rel_err")


def pore_cut(hr: np.ndarray) -> float:
    """The [0, 1] pore cut of a uint8 HR volume: Otsu's, as rocksr.eval.porosity takes it."""
    if hr.ndim != 3 or hr.dtype != np.uint8:
        raise ValueError(f"need a uint8 HR volume, got a {hr.dtype} array of shape {hr.shape}")
    return float(otsu_threshold(torch.from_numpy(np.ascontiguousarray(hr))[None])[0])


def pore_mask(volume: np.ndarray, cut: float) -> np.ndarray:
    """Pore voxels of a uint8 volume or a float one in [0, 1]."""
    return (volume / 255.0 if volume.dtype == np.uint8 else volume) < cut


def porosity(pore: np.ndarray) -> float:
    return float(pore.mean())


def specific_surface_area(pore: np.ndarray) -> float:
    """Interface area per volume (1/voxel); 0 when the volume holds one phase only."""
    if pore.all() or not pore.any():
        return 0.0
    verts, faces, _, _ = marching_cubes(pore.astype(np.float32), 0.5)
    return float(mesh_surface_area(verts, faces)) / pore.size


def euler_characteristic(pore: np.ndarray) -> int:
    return int(euler_number(pore, connectivity=3))


def two_point_correlation(pore: np.ndarray) -> np.ndarray:
    """S2(r), r = 0 .. min(shape) // 2 voxels (module docstring)."""
    r = min(pore.shape) // 2
    size = [fft.next_fast_len(n + r, real=True) for n in pore.shape]  # no wrap-around to r
    axes = tuple(range(pore.ndim))
    spectrum = np.fft.rfftn(pore.astype(np.float64), s=size, axes=axes)
    auto = np.fft.irfftn(spectrum.real ** 2 + spectrum.imag ** 2, s=size, axes=axes)
    lags = [np.r_[0:r + 1, -r:0] for _ in size]  # lags 0 .. r, then -r .. -1
    auto = auto[np.ix_(*[lag % n for lag, n in zip(lags, size)])]
    grids = np.meshgrid(*lags, indexing="ij")
    pairs = np.prod([n - np.abs(g) for n, g in zip(pore.shape, grids)], axis=0)
    ring = np.rint(np.sqrt(sum(g.astype(np.float64) ** 2 for g in grids))).astype(int)
    keep = ring <= r
    sums = np.bincount(ring[keep], weights=(auto / pairs)[keep], minlength=r + 1)
    return sums / np.bincount(ring[keep], minlength=r + 1)


def local_thickness(pore: np.ndarray) -> np.ndarray:
    """Per voxel, the radius of the largest ball in the pore space covering it (0 in the
    solid); the module docstring gives the convention."""
    distance = ndimage.distance_transform_edt(pore)
    out = np.zeros(pore.shape, np.float32)
    for radius in range(int(distance.max()), 0, -1):
        centres = distance >= radius
        covered = ndimage.distance_transform_edt(~centres) <= radius
        out[covered & pore & (out == 0)] = radius
    return out


def pore_sizes(pore: np.ndarray) -> dict[str, float]:
    """Mean and QUANTILES of the local thickness over the pore voxels (NaN without pores)."""
    values = local_thickness(pore)[pore]
    if not values.size:
        return {"psd_mean": np.nan, **{f"psd_q{q}": np.nan for q in QUANTILES}}
    quantiles = np.percentile(values, QUANTILES)
    return {"psd_mean": float(values.mean()),
            **{f"psd_q{q}": float(v) for q, v in zip(QUANTILES, quantiles)}}


def measure(pore: np.ndarray) -> dict[str, float]:
    """Every metric of one pore mask, and its S2 (under the key 's2')."""
    euler = euler_characteristic(pore)
    return {"porosity": porosity(pore), "ssa": specific_surface_area(pore), "euler": euler,
            "euler_density": euler * 1e6 / pore.size, "s2": two_point_correlation(pore),
            **pore_sizes(pore)}


def reference(hr: np.ndarray) -> tuple[float, dict]:
    """HR's side of the comparison, once per HR volume: its cut and its `measure`."""
    cut = pore_cut(hr)
    return cut, measure(pore_mask(hr, cut))


def compare(sr: np.ndarray, ref: tuple[float, dict]) -> dict[str, float]:
    """COLUMNS of an SR volume (float in [0, 1], or uint8) against its HR `reference`."""
    cut, hr = ref
    ours = measure(pore_mask(sr, cut))
    if ours["s2"].shape != hr["s2"].shape:
        raise ValueError(f"SR and HR volumes differ in size: S2 to r = {len(ours['s2']) - 1} "
                         f"and {len(hr['s2']) - 1}")
    values = {"s2_err": float(np.abs(ours["s2"] - hr["s2"])[1:].mean())}
    for key in ours.keys() - {"s2"}:
        values[key], values[f"{key}_hr"] = ours[key], hr[key]
    return {key: values[key] for key in COLUMNS}


def errors(values: dict[str, float]) -> dict[str, float]:
    """ERRORS of one `compare` row (NaN where HR's value is 0 or missing)."""
    def relative(key: str) -> float:
        hr = values[f"{key}_hr"]
        return (values[key] - hr) / hr if hr else np.nan

    return {"ssa_rel_err": relative("ssa"),
            "euler_density_err": values["euler_density"] - values["euler_density_hr"],
            "s2_err": values["s2_err"], "psd_mean_rel_err": relative("psd_mean")}
