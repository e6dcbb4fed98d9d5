"""The bicubic baseline (torch's antialiased bicubic) equals PIL's Image.resize(BICUBIC)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rocksr.imaging.resize import bicubic_resize, bicubic_upscale


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
