"""Texture metrics (rocksr.eval.texture) against independent computations on constructed images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from rocksr.eval import texture


def as_batch(*images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images))[:, None]


def blobs(shape, seed: int, sigma: float = 2.0) -> np.ndarray:
    """Boolean 'pore space': a smoothed random field cut at its median."""
    field = gaussian_filter(np.random.default_rng(seed).random(shape), sigma)
    return field > np.median(field)


def numpy_radial_spectrum(x: np.ndarray) -> np.ndarray:
    """Full-plane FFT, rings of rounded radius k = 1 .. n // 2 (frequency index over n)."""
    h, w = x.shape
    n = min(h, w)
    power = np.abs(np.fft.fft2(x - x.mean())) ** 2 / (h * w)
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    ring = np.rint(np.hypot(fy, fx) * n).astype(int)
    return np.array([power[ring == k].mean() for k in range(1, n // 2 + 1)])


@pytest.mark.parametrize("shape", [(64, 64), (40, 52), (33, 35)])
def test_radial_spectrum_matches_numpy(shape):
    x = np.random.default_rng(1).random(shape)
    ours = texture.radial_spectrum(as_batch(x.astype(np.float32)))[0].numpy()
    assert ours.shape == (min(shape) // 2,)
    np.testing.assert_allclose(ours, numpy_radial_spectrum(x), rtol=1e-4)


def test_periodic_pattern_peaks_at_its_frequency():
    n, period = 64, 8
    cols = np.arange(n)
    stripes = 0.5 + 0.4 * np.sin(2 * np.pi * cols / period)[None, :].repeat(n, 0)
    wave = np.sin(2 * np.pi * cols / 16)
    checker = 0.5 + 0.2 * wave[None, :] * wave[:, None]
    spectra = texture.radial_spectrum(as_batch(stripes, checker).float())
    freqs = texture.frequencies(n)
    assert freqs[spectra[0].argmax()].item() == pytest.approx(1 / period)
    # sin(a y) sin(a x) puts its energy at (+-a, +-a): radius sqrt(2) / 16 cycles per pixel.
    assert freqs[spectra[1].argmax()].item() == pytest.approx(np.sqrt(2) / 16, abs=0.5 / n)


def test_blur_loses_upper_band_energy_and_the_error_says_so():
    hr = np.random.default_rng(2).random((2, 64, 64)).astype(np.float32)
    blurred = np.stack([gaussian_filter(im, 1.5) for im in hr])
    hr_t, sr_t = torch.from_numpy(hr)[:, None], torch.from_numpy(blurred)[:, None]
    band = texture.upper_band(64, scale=4)
    assert band.sum() == 32 - 8 and not band[:8].any()  # f > 1/8 cycle per pixel
    p_hr, p_sr = texture.radial_spectrum(hr_t), texture.radial_spectrum(sr_t)
    assert (p_sr[:, band].sum(1) < 0.1 * p_hr[:, band].sum(1)).all()
    cut = torch.full((2,), 0.5)
    values, spectrum = texture.compare(sr_t, cut, texture.reference(hr_t, cut, 4))
    ratio_db = 10 * np.log10(p_sr[:, band].numpy() / p_hr[:, band].numpy())
    np.testing.assert_allclose(values["spectrum_bias_db"], ratio_db.mean(1), rtol=1e-5)
    np.testing.assert_allclose(values["spectrum_err_db"], np.abs(ratio_db).mean(1), rtol=1e-5)
    assert (values["spectrum_bias_db"] < -10).all()
    torch.testing.assert_close(spectrum, p_sr)
    # HR against itself: no error at all.
    same, _ = texture.compare(hr_t, cut, texture.reference(hr_t, cut, 4))
    for key in ("spectrum_err_db", "s2_err", "perimeter_rel_err"):
        assert same[key].abs().max() == 0


@pytest.mark.parametrize("shape", [(64, 64), (48, 40), (33, 35)])
def test_two_point_correlation_matches_porespy(shape):
    import porespy  # a test-only pin of requirements.txt
    pore = blobs(shape, seed=3)
    n = min(shape)
    # Bin edges at half-integers: porespy's bins are then our rings of rounded radius.
    ref = porespy.metrics.two_point_correlation(pore, bins=np.arange(-0.5, n // 2 + 1))
    ours = texture.two_point_correlation(as_batch(pore))[0].numpy()
    np.testing.assert_allclose(ours, ref.probability_scaled, atol=1e-6)
    assert ours[0] == pytest.approx(pore.mean(), abs=1e-6)  # S2(0) is the porosity


def test_two_point_correlation_by_direct_pair_count():
    """Ring r = 1 (radii 0.5 to 1.5) holds the 8 neighbours: axis and diagonal lags, each
    normalised by its own pair count; counted here pair by pair."""
    pore = blobs((20, 24), seed=4)
    s2 = texture.two_point_correlation(as_batch(pore))[0].numpy()
    pairs = [pore[:, 1:] & pore[:, :-1], pore[1:, :] & pore[:-1, :],
             pore[1:, 1:] & pore[:-1, :-1], pore[1:, :-1] & pore[:-1, 1:]]
    assert s2[1] == pytest.approx(np.mean([p.mean() for p in pairs]), abs=1e-6)


def test_specific_perimeter_of_a_disk_and_against_skimage():
    from skimage.measure import perimeter_crofton
    yy, xx = np.mgrid[:256, :256]
    disk = (yy - 128.3) ** 2 + (xx - 127.6) ** 2 < 50 ** 2
    length = texture.specific_perimeter(as_batch(disk)).item() * disk.size
    assert length == pytest.approx(2 * np.pi * 50, rel=0.01)
    # Pores away from the border (skimage counts the image border as interface, we don't).
    framed = blobs((128, 128), seed=5, sigma=3.0)
    framed[:4], framed[-4:], framed[:, :4], framed[:, -4:] = False, False, False, False
    ours = texture.specific_perimeter(as_batch(framed)).item() * framed.size
    assert ours == pytest.approx(perimeter_crofton(framed, directions=4), rel=0.03)
    # One straight boundary of 64 px: a change in 1 of 63 pairs along x and along each
    # diagonal (sqrt(2) px apart), none along y; Crofton's 4-direction estimate is 61.6 px.
    half = np.zeros((64, 64), bool)
    half[:, :32] = True
    per_length = (1 / 63 + 0 + 2 / 63 / np.sqrt(2)) / 4
    assert texture.specific_perimeter(as_batch(half)).item() == pytest.approx(
        np.pi / 2 * per_length, rel=1e-5)


def test_spectrum_sums_average_per_group():
    sums = texture.SpectrumSums()
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 6.0], [5.0, 10.0]])
    sums.add("coal", "test", "hr", a, 4, 4)
    sums.add("coal", "test", "hr", b, 4, 4)
    table = sums.table()
    assert list(table.power) == [3.0, 6.0] and list(table.n) == [3, 3]
    assert list(table.frequency) == [0.25, 0.5] and list(table.upper) == [True, True]


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        texture.radial_spectrum(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="at least 4 px"):
        texture.radial_spectrum(torch.zeros(1, 1, 3, 8))
