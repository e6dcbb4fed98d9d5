"""PSNR and SSIM agree with scikit-image, image by image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from rocksr.eval.metrics import psnr, ssim


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(3, 1, 32, 29, generator=g)
    sr = (hr + 0.05 * torch.arange(1, 4).view(3, 1, 1, 1) * torch.randn(hr.shape, generator=g))
    return sr.clamp(0, 1), hr


def as_np(x: torch.Tensor) -> np.ndarray:
    return x[0].numpy().astype(np.float64)


def test_psnr_matches_skimage(pair):
    sr, hr = pair
    ours = psnr(sr, hr)
    assert ours.shape == (3,)
    for value, s, h in zip(ours.tolist(), sr, hr):
        assert value == pytest.approx(peak_signal_noise_ratio(as_np(h), as_np(s), data_range=1),
                                      abs=1e-4)


def test_psnr_peak_scales_with_data_range(pair):
    sr, hr = pair
    # [-1, 1] data with peak 2 is the same PSNR as [0, 1] with peak 1 (README, Conventions).
    assert torch.allclose(psnr(2 * sr - 1, 2 * hr - 1, data_range=2.0), psnr(sr, hr), atol=1e-4)


def test_psnr_of_identical_images_is_inf(pair):
    _, hr = pair
    assert all(math.isinf(v) and v > 0 for v in psnr(hr, hr).tolist())


def test_ssim_matches_skimage(pair):
    sr, hr = pair
    ours = ssim(sr, hr)
    for value, s, h in zip(ours.tolist(), sr, hr):
        ref = structural_similarity(as_np(h), as_np(s), data_range=1, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False)
        assert value == pytest.approx(ref, abs=1e-4)
    assert torch.allclose(ssim(hr, hr), torch.ones(3))


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="N, 1, H, W"):
        psnr(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 9))
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


def test_volumes_match_skimage_in_3d():
    """A volume's PSNR is over all its voxels, its SSIM one 3D SSIM (a gaussian window along
    each axis), as scikit-image computes them for 3D arrays; not a mean over slices."""
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(2, 1, 13, 16, 12, generator=g)
    sr = (hr + 0.1 * torch.randn(hr.shape, generator=g)).clamp(0, 1)
    for value, s, h in zip(psnr(sr, hr).tolist(), sr, hr):
        assert value == pytest.approx(peak_signal_noise_ratio(as_np(h), as_np(s), data_range=1),
                                      abs=1e-4)
    ours = ssim(sr, hr)
    for value, s, h in zip(ours.tolist(), sr, hr):
        ref = structural_similarity(as_np(h), as_np(s), data_range=1, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False)
        slices = np.mean([structural_similarity(a, b, data_range=1, gaussian_weights=True,
                                                sigma=1.5, use_sample_covariance=False)
                          for a, b in zip(as_np(h), as_np(s))])
        assert value == pytest.approx(ref, abs=1e-4) and abs(value - slices) > 1e-3
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.zeros(1, 1, 8, 16, 16), torch.zeros(1, 1, 8, 16, 16))
