"""The bicubic baseline equals PIL's Image.resize(BICUBIC) on float images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rocksr.resize import bicubic_resize, bicubic_upscale


def pil_bicubic(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    image = Image.fromarray(a.astype(np.float32))  # float32 array -> mode 'F'
    assert image.mode == "F"
    return np.asarray(image.resize((size[1], size[0]), Image.Resampling.BICUBIC))


@pytest.mark.parametrize("shape,size", [((8, 8), (32, 32)), ((13, 7), (26, 28)),
                                        ((32, 30), (8, 10)), ((9, 9), (9, 9))])
def test_matches_pil(shape, size):
    a = np.random.default_rng(0).random(shape, dtype=np.float32)
    ours = bicubic_resize(torch.from_numpy(a)[None, None], size)[0, 0].numpy()
    np.testing.assert_allclose(ours, pil_bicubic(a, size), atol=1e-4)


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
