"""The bicubic baseline (torch's antialiased bicubic) equals PIL's Image.resize(BICUBIC)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rocksr.imaging.resize import bicubic_resize, bicubic_upscale, tricubic_upscale


def pil_bicubic(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    image = Image.fromarray(a.astype(np.float32))  # float32 array -> mode 'F'
    assert image.mode == "F"
    return np.asarray(image.resize((size[1], size[0]), Image.Resampling.BICUBIC))


# Up and down, x2 and x4, square and not, and the identity.
SIZES = [((8, 8), (32, 32)), ((13, 7), (26, 28)), ((12, 20), (48, 80)), ((11, 17), (22, 34)),
         ((32, 30), (8, 10)), ((40, 24), (10, 6)), ((50, 34), (25, 17)), ((9, 9), (9, 9))]


@pytest.mark.parametrize("shape,size", SIZES)
def test_matches_pil(shape, size):
    # PIL resamples mode 'F' in float32 (its own rounding): 1e-4 of a [0, 1] range.
    a = np.random.default_rng(0).random(shape, dtype=np.float32)
    ours = bicubic_resize(torch.from_numpy(a)[None, None], size)[0, 0].numpy()
    np.testing.assert_allclose(ours, pil_bicubic(a, size), atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_keeps_dtype_and_leading_dims(dtype):
    x = torch.rand(2, 3, 1, 7, 5, dtype=dtype)
    up = bicubic_upscale(x, 2)
    assert up.dtype == dtype and up.shape == (2, 3, 1, 14, 10)
    assert torch.equal(up[1, 2], bicubic_upscale(x[1, 2], 2))
    assert bicubic_upscale(x[0, 0, 0], 4).shape == (28, 20)  # a bare (H, W) image


def test_batched_upscale_and_constant_images():
    x = torch.rand(3, 1, 6, 5)
    up = bicubic_upscale(x, 4)
    assert up.shape == (3, 1, 24, 20)
    assert torch.allclose(up[1], bicubic_upscale(x[1:2], 4)[0])
    # Weights renormalised at the border: a constant image stays constant everywhere.
    assert torch.allclose(bicubic_upscale(torch.full((1, 1, 5, 5), 0.3), 4), torch.tensor(0.3))


def test_not_torch_bicubic():
    # torch's a = -0.75 kernel gives different values: the choice is deliberate.
    x = torch.rand(1, 1, 8, 8)
    torch_up = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic",
                                               align_corners=False)
    assert not torch.allclose(bicubic_upscale(x, 4), torch_up, atol=1e-3)


def keys_reference(t: float, a: float) -> float:
    t = abs(t)
    if t <= 1:
        return (a + 2) * t**3 - (a + 3) * t**2 + 1
    return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a if t < 2 else 0.0


def tricubic_reference(v: np.ndarray, scale: int, a: float, clamp: bool) -> np.ndarray:
    """Output voxel by voxel: the 4 x 4 x 4 neighbourhood's product weights, taps outside
    clamped to the edge (clamp) or dropped with the weights of each axis renormalised."""
    def axis_taps(i, n):
        x = (i + 0.5) / scale - 0.5
        base = int(np.floor(x))
        taps = [(base + k, keys_reference(x - (base + k), a)) for k in range(-1, 3)]
        if clamp:
            return [(min(max(j, 0), n - 1), w) for j, w in taps]
        taps = [(j, w) for j, w in taps if 0 <= j < n]
        total = sum(w for _, w in taps)
        return [(j, w / total) for j, w in taps]

    d, h, w = v.shape
    tz, ty, tx = ([axis_taps(i, n) for i in range(scale * n)] for n in (d, h, w))
    out = np.zeros((scale * d, scale * h, scale * w))
    for z in range(scale * d):
        for y in range(scale * h):
            for x in range(scale * w):
                out[z, y, x] = sum(wz * wy * wx * v[jz, jy, jx] for jz, wz in tz[z]
                                   for jy, wy in ty[y] for jx, wx in tx[x])
    return out


@pytest.mark.parametrize("kernel, a, clamp", [("pil", -0.5, False), ("torch", -0.75, True)])
@pytest.mark.parametrize("scale", [2, 4])
def test_tricubic_matches_a_voxel_by_voxel_reference(kernel, a, clamp, scale):
    v = np.random.default_rng(scale).random((4, 3, 5))
    ours = tricubic_upscale(torch.from_numpy(v)[None, None], scale, kernel)[0, 0].numpy()
    np.testing.assert_allclose(ours, tricubic_reference(v, scale, a, clamp), atol=1e-12)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_tricubic_on_a_volume_constant_along_an_axis_is_torchs_2d_bicubic(axis):
    image = torch.rand(1, 1, 9, 6, dtype=torch.float64)
    volume = image.unsqueeze(2 + axis).expand(
        *[(1, 1, 7, 9, 6), (1, 1, 9, 7, 6), (1, 1, 9, 6, 7)][axis]).contiguous()
    pil = tricubic_upscale(volume, 4).select(2 + axis, 13)
    plain = tricubic_upscale(volume, 4, "torch").select(2 + axis, 13)
    # the 2D baseline (antialiased, a = -0.5) and torch's plain bicubic (a = -0.75)
    torch.testing.assert_close(pil, bicubic_upscale(image, 4), atol=1e-12, rtol=0)
    torch.testing.assert_close(plain, torch.nn.functional.interpolate(
        image, scale_factor=4, mode="bicubic", align_corners=False), atol=1e-12, rtol=0)
    assert (pil - plain).abs().max() > 1e-3  # the two kernels differ


def test_tricubic_keeps_dtype_and_batches():
    x = torch.rand(2, 1, 3, 4, 5)
    up = tricubic_upscale(x, 2)
    assert up.dtype == torch.float32 and up.shape == (2, 1, 6, 8, 10)
    assert torch.allclose(up[1], tricubic_upscale(x[1], 2), atol=1e-6)
    with pytest.raises(TypeError, match="float"):
        tricubic_upscale(torch.zeros(1, 2, 2, 2, dtype=torch.uint8), 2)
