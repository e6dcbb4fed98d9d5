"""Texture and structure metrics: what the GAN phase is said to recover and PSNR cannot show.

Batched in torch on the images' device, (N, 1, H, W) float images in [0, 1]; one value per
image. Definitions (also in the README, "Conventions"):

- Radially averaged power spectrum: |FFT|^2 / (H W) of the image minus its mean, averaged
  over rings of frequency radius f = k / n cycles per pixel (n = min(H, W), ring k holds the
  frequencies that round to k; k = 1 .. n // 2, the DC term and the corners past Nyquist
  left out). The upper band is f > 0.5 / scale: above the LR image's Nyquist frequency, the
  detail that the network must recreate. Spectrum error: mean over the upper band's rings
  of |10 log10(P_SR / P_HR)| (dB); spectrum bias: the same mean with its sign (negative:
  SR is smoother than HR, positive: it adds high-frequency energy).
- Two-point correlation S2(r) of the pore phase (pixels below the HR image's Otsu cut, as
  for porosity): the probability that two pixels r apart are both pore, over the pixel
  pairs inside the image (no wrap-around, as porespy's `two_point_correlation`), averaged
  over rings of integer radius r = 0 .. n // 2 (S2(0) is the porosity). S2 error: mean
  over r = 1 .. n // 2 of |S2_SR(r) - S2_HR(r)|.
- Specific perimeter: pore/solid interface length per image area (1/pixel), by Crofton's
  formula over 4 directions (0, 45, 90, 135 degrees): pi / 2 times the mean number of phase
  changes per unit length of line. Relative error: (SR - HR) / HR.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import pandas as pd
import torch

# Per-image columns; `perimeter_hr` is HR's value, the rest compare SR with HR.
COLUMNS = ("spectrum_err_db", "spectrum_bias_db", "s2_err", "perimeter", "perimeter_hr",
           "perimeter_rel_err")
EPS = 1e-20  # floor of the power in a ring: a constant image has none


@functools.lru_cache(maxsize=8)
def _rings(h: int, w: int, rings: int, lags: bool, device: torch.device
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """(ring of every cell, weight of every cell) of the (h, w // 2 + 1) half of an h x w
    Fourier or lag grid, rings 0 .. rings - 1; cells beyond get weight 0.

    The half plane holds every cell once, and the cells whose mirror image (-y, -x) was
    dropped count twice, so ring means equal those over the full plane (for a real image's
    rfft2 and for an autocorrelation alike). Ring k holds the radii that round to k:
    frequency index over min(h, w) for spectra, distance in pixels for lags."""
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    scale = (h, w) if lags else (min(h, w),) * 2
    ring = torch.sqrt((fy * scale[0]) ** 2 + (fx * scale[1]) ** 2).round().long()
    weight = torch.full(ring.shape, 2.0)
    weight[:, 0] = 1.0
    if w % 2 == 0:
        weight[:, -1] = 1.0
    weight[ring >= rings] = 0.0
    return ring.clamp(max=rings - 1).flatten().to(device), weight.flatten().to(device)


def _ring_mean(half: torch.Tensor, w: int, rings: int, lags: bool) -> torch.Tensor:
    """(N, rings) ring means of (N, h, w // 2 + 1) half-plane values (see _rings)."""
    n_img, h, _ = half.shape
    ring, weight = _rings(h, w, rings, lags, half.device)
    offsets = rings * torch.arange(n_img, device=half.device)[:, None]
    sums = torch.zeros(n_img * rings, dtype=half.dtype, device=half.device)
    sums.index_add_(0, (ring + offsets).flatten(), (half.reshape(n_img, -1) * weight).flatten())
    counts = torch.zeros(rings, dtype=half.dtype, device=half.device)
    counts.index_add_(0, ring, weight)
    return sums.view(n_img, rings) / counts


def _check(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"expected (N, 1, H, W) images, got {tuple(x.shape)}")
    if min(x.shape[-2:]) < 4:
        raise ValueError(f"texture metrics need images of at least 4 px a side, "
                         f"got {tuple(x.shape[-2:])}")
    return x[:, 0].float()


def frequencies(size: int) -> torch.Tensor:
    """Ring frequencies (cycles per pixel) of `radial_spectrum` for images of side `size`."""
    return torch.arange(1, size // 2 + 1, dtype=torch.float64) / size


def upper_band(size: int, scale: int) -> torch.Tensor:
    """Which rings of `radial_spectrum` lie above the LR Nyquist frequency 0.5 / scale."""
    return frequencies(size) > 0.5 / scale


def radial_spectrum(x: torch.Tensor) -> torch.Tensor:
    """(N, n // 2) radially averaged power spectra at `frequencies(n)`."""
    x = _check(x)
    h, w = x.shape[-2:]
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.rfft2(x).abs().square() / (h * w)
    return _ring_mean(power, w, min(h, w) // 2 + 1, lags=False)[:, 1:]


def two_point_correlation(pore: torch.Tensor) -> torch.Tensor:
    """(N, n // 2 + 1) S2(r), r = 0 .. n // 2 pixels, of (N, 1, H, W) boolean pore masks.

    Non-periodic, as porespy computes it: the autocorrelation of the zero-padded mask
    divided by the number of pixel pairs at each lag, (H - |dy|) (W - |dx|)."""
    x = _check(pore)
    h, w = x.shape[-2:]
    r = min(h, w) // 2
    # Zero padding by r keeps lags up to r free of wrap-around; sizes with small factors
    # only keep the FFT fast.
    size = (_fft_size(h + r), _fft_size(w + r))
    auto = torch.fft.irfft2(torch.fft.rfft2(x, s=size).abs().square(), s=size)
    # Only lags up to r are averaged: keep dy = 0 .. r, -r .. -1 and dx = 0 .. r, a
    # (2r + 1) x (r + 1) half grid laid out as the rfft2 of a (2r + 1)-sided square.
    rows = torch.cat([torch.arange(r + 1), torch.arange(size[0] - r, size[0])]).to(x.device)
    lags = auto[:, rows, : r + 1]
    return _ring_mean(lags / _pairs(h, w, r, x.device), 2 * r + 1, r + 1, lags=True)


def _fft_size(n: int) -> int:
    """The smallest m >= n whose prime factors are 2, 3 and 5."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


@functools.lru_cache(maxsize=8)
def _pairs(h: int, w: int, r: int, device: torch.device) -> torch.Tensor:
    """Pixel pairs of an h x w image at the lags of two_point_correlation's half grid."""
    dy = (torch.fft.fftfreq(2 * r + 1, dtype=torch.float64) * (2 * r + 1)).abs()[:, None]
    dx = torch.arange(r + 1, dtype=torch.float64)[None, :]
    return ((h - dy) * (w - dx)).float().to(device)


def specific_perimeter(pore: torch.Tensor) -> torch.Tensor:
    """(N,) interface length per area (1/pixel) of boolean pore masks, Crofton, 4 directions."""
    x = _check(pore)
    straight = [(x[:, :, 1:] != x[:, :, :-1]), (x[:, 1:, :] != x[:, :-1, :])]
    diagonal = [(x[:, 1:, 1:] != x[:, :-1, :-1]), (x[:, 1:, :-1] != x[:, :-1, 1:])]
    # Phase changes per unit line length: diagonal neighbours are sqrt(2) apart.
    per_length = [c.float().mean(dim=(1, 2)) for c in straight] + \
                 [c.float().mean(dim=(1, 2)) / math.sqrt(2) for c in diagonal]
    return math.pi / 2 * torch.stack(per_length).mean(0)


@dataclass
class Reference:
    """The HR side of the comparison, computed once per batch of images."""

    spectrum: torch.Tensor  # (N, rings)
    s2: torch.Tensor        # (N, n // 2 + 1)
    perimeter: torch.Tensor  # (N,)
    band: torch.Tensor      # (rings,) bool: the upper band


def reference(hr: torch.Tensor, cut: torch.Tensor, scale: int) -> Reference:
    """HR's texture under the per-image pore cut (rocksr.eval.porosity.otsu_threshold)."""
    pore = hr < cut.to(hr.device).view(-1, 1, 1, 1)
    band = upper_band(min(hr.shape[-2:]), scale).to(hr.device)
    return Reference(radial_spectrum(hr), two_point_correlation(pore), specific_perimeter(pore),
                     band)


def compare(sr: torch.Tensor, cut: torch.Tensor, ref: Reference
            ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-image COLUMNS of SR against HR's reference, and SR's spectra (for the figure)."""
    pore = sr < cut.to(sr.device).view(-1, 1, 1, 1)
    spectrum = radial_spectrum(sr)
    ratio_db = 10 * torch.log10(spectrum.clamp_min(EPS) / ref.spectrum.clamp_min(EPS))
    upper = ratio_db[:, ref.band]
    s2 = two_point_correlation(pore)
    perimeter = specific_perimeter(pore)
    values = {
        "spectrum_err_db": upper.abs().mean(1),
        "spectrum_bias_db": upper.mean(1),
        "s2_err": (s2 - ref.s2)[:, 1:].abs().mean(1),
        "perimeter": perimeter,
        "perimeter_hr": ref.perimeter,
        # An image without interface has no relative error to speak of: NaN, not inf.
        "perimeter_rel_err": torch.where(ref.perimeter > 0,
                                         (perimeter - ref.perimeter) / ref.perimeter,
                                         torch.nan),
    }
    return {k: v.float() for k, v in values.items()}, spectrum


class SpectrumSums:
    """Mean radial spectrum per rock type, split and method (HR under the name 'hr'),
    accumulated batch by batch during evaluation."""

    def __init__(self) -> None:
        self._sums: dict[tuple[str, str, str], tuple[torch.Tensor, int]] = {}
        self._meta: dict[tuple[str, str], tuple[int, int]] = {}

    def add(self, rock: str, split: str, method: str, spectra: torch.Tensor, size: int,
            scale: int) -> None:
        key = (rock, split, method)
        total, n = self._sums.get(key, (0, 0))
        self._sums[key] = (spectra.sum(0).cpu() + total, n + len(spectra))
        self._meta[(rock, split)] = (size, scale)

    def table(self) -> pd.DataFrame:
        """Long table: rock_type, split, method, frequency (cycles/px), power, upper, n."""
        frames = []
        for (rock, split, method), (total, n) in self._sums.items():
            size, scale = self._meta[(rock, split)]
            frames.append(pd.DataFrame({
                "rock_type": rock, "split": split, "method": method,
                "frequency": frequencies(size).numpy(), "power": (total / n).numpy(),
                "upper": upper_band(size, scale).numpy(), "n": n}))
        if not frames:  # nothing added: volumes have no spectra
            return pd.DataFrame(columns=["rock_type", "split", "method", "frequency", "power",
                                         "upper", "n"])
        return pd.concat(frames, ignore_index=True)
