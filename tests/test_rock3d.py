"""3D rock metrics on constructed volumes whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from rocksr.eval import rock3d

SIDE = 32
Z, Y, X = np.indices((SIDE,) * 3)


def ball(radius: float, centre=(16, 16, 16)) -> np.ndarray:
    return sum((g - c) ** 2 for g, c in zip((Z, Y, X), centre)) <= radius ** 2


def slab(thickness: int, start: int = 5) -> np.ndarray:
    pore = np.zeros((SIDE,) * 3, bool)
    pore[:, start:start + thickness] = True
    return pore


def blobs(shape, seed: int) -> np.ndarray:
    field = np.random.default_rng(seed).random(shape)
    return ndimage.gaussian_filter(field, 2) > 0.5


def test_pore_mask_is_the_hr_otsu_cut_applied_to_both():
    hr = np.where(ball(8), 40, 200).astype(np.uint8)
    cut = rock3d.pore_cut(hr)
    assert 40 / 255 < cut < 200 / 255
    assert np.array_equal(rock3d.pore_mask(hr, cut), ball(8))
    sr = np.where(ball(6), 0.1, 0.9)  # a float SR volume, under HR's cut
    assert rock3d.porosity(rock3d.pore_mask(sr, cut)) == pytest.approx(ball(6).mean())
    with pytest.raises(ValueError, match="need a uint8 HR volume"):
        rock3d.pore_cut(hr.astype(float))


def test_specific_surface_area():
    # a slab's two faces, inside the volume: exact
    faces = 2 * (SIDE - 1) * (SIDE - 1)
    assert rock3d.specific_surface_area(slab(7)) == pytest.approx(faces / SIDE**3)
    # a ball: its sphere, some 8% larger on a binary mask (faceted mesh)
    pore = ball(10)
    sphere = 4 * np.pi * (3 * pore.sum() / (4 * np.pi)) ** (2 / 3)
    assert 1.0 < rock3d.specific_surface_area(pore) * SIDE**3 / sphere < 1.12
    assert rock3d.specific_surface_area(np.ones((4, 4, 4), bool)) == 0.0
    assert rock3d.specific_surface_area(np.zeros((4, 4, 4), bool)) == 0.0


def test_euler_characteristic():
    assert rock3d.euler_characteristic(ball(6)) == 1
    assert rock3d.euler_characteristic(ball(4, (8, 8, 8)) | ball(4, (22, 22, 22))) == 2
    cube = np.zeros((SIDE,) * 3, bool)
    cube[4:28, 4:28, 4:28] = True
    assert rock3d.euler_characteristic(cube) == 1
    tunnel = cube.copy()
    tunnel[:, 12:20, 12:20] = False  # a hole through: a solid torus
    assert rock3d.euler_characteristic(tunnel) == 0
    cavity = cube & ~ball(6)  # a hollow cube: a sphere-like shell
    assert rock3d.euler_characteristic(cavity) == 2
    assert rock3d.measure(tunnel)["euler_density"] == 0
    assert rock3d.measure(cavity)["euler_density"] == pytest.approx(2e6 / SIDE**3)


@pytest.mark.parametrize("shape", [(24, 24, 24), (20, 26, 23)])
def test_two_point_correlation_matches_porespy(shape):
    import porespy  # a test-only pin of requirements.txt
    pore = blobs(shape, seed=1)
    r = min(shape) // 2
    ref = porespy.metrics.two_point_correlation(pore, bins=np.arange(-0.5, r + 1))
    ours = rock3d.two_point_correlation(pore)
    assert ours.shape == (r + 1,)
    np.testing.assert_allclose(ours, ref.probability_scaled, atol=1e-9)
    assert ours[0] == pytest.approx(pore.mean())


def test_two_point_correlation_by_direct_pair_count():
    """Ring r = 1 holds the 6 axis lags (length 1) and the 12 face diagonals (1.41), each
    normalised by its own pair count; counted here pair by pair."""
    pore = blobs((14, 12, 10), seed=2)
    s2 = rock3d.two_point_correlation(pore)
    means = []
    for lag in np.ndindex(3, 3, 3):
        lag = np.array(lag) - 1
        if np.sum(lag != 0) not in (1, 2):
            continue
        a = pore[tuple(slice(max(d, 0), pore.shape[i] + min(d, 0)) for i, d in enumerate(lag))]
        b = pore[tuple(slice(max(-d, 0), pore.shape[i] + min(-d, 0)) for i, d in enumerate(lag))]
        means.append((a & b).mean())
    assert len(means) == 18
    assert s2[1] == pytest.approx(np.mean(means))


def test_local_thickness():
    for radius in (3, 7):
        values = rock3d.local_thickness(ball(radius))
        assert np.unique(values[ball(radius)]).tolist() == [radius]
        assert not values[~ball(radius)].any()
    for thickness in (4, 5, 6, 9):
        pore = slab(thickness)
        assert np.unique(rock3d.local_thickness(pore)[pore]).tolist() == [(thickness + 1) // 2]
    two = ball(2, (6, 6, 6)) | ball(6, (18, 18, 18))
    values = rock3d.local_thickness(two)
    assert (values[ball(2, (6, 6, 6))] == 2).all() and (values[ball(6, (18, 18, 18))] == 6).all()


def test_pore_size_summary():
    small, big = ball(2, (6, 6, 6)), ball(6, (18, 18, 18))
    sizes = rock3d.pore_sizes(small | big)
    n_small, n_big = small.sum(), big.sum()
    assert sizes["psd_mean"] == pytest.approx((2 * n_small + 6 * n_big) / (n_small + n_big))
    assert sizes["psd_q10"] == 6 and sizes["psd_q90"] == 6  # most pore voxels are the big ball's
    assert sizes["psd_q50"] == 6 and n_small / (n_small + n_big) < 0.1
    assert np.isnan(rock3d.pore_sizes(np.zeros((4, 4, 4), bool))["psd_mean"])


def test_compare_sr_with_hr():
    hr = np.where(blobs((24, 24, 24), seed=3), 50, 190).astype(np.uint8)
    ref = rock3d.reference(hr)
    same = rock3d.compare(hr / 255.0, ref)
    assert tuple(same) == rock3d.COLUMNS and same["s2_err"] == 0
    for key in ("porosity", "ssa", "euler", "psd_mean", "psd_q50"):
        assert same[key] == same[f"{key}_hr"]
    # a smoothed SR: fewer small pores, a smoother interface
    sr = ndimage.gaussian_filter(hr / 255.0, 1.5)
    values = rock3d.compare(sr, ref)
    assert values["s2_err"] > 0 and values["ssa"] < values["ssa_hr"]
    assert values["porosity_hr"] == same["porosity_hr"]
    with pytest.raises(ValueError, match="differ in size"):
        rock3d.compare(sr[:20], ref)
