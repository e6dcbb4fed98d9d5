"""Generator and discriminator: the paper's size, shapes, save/load."""

from __future__ import annotations

import pytest
import torch

from rocksr.nets.models import Discriminator, Generator, load_model, save_model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_generator_parameter_count_is_the_papers():
    # 16 blocks, 64 filters, x4, 1 channel: about 1.5 M, as the authors' network (docs/design.md)
    assert n_params(Generator(scale=4, blocks=16, filters=64, channels=1)) == 1_515_905


@pytest.mark.parametrize("scale", [2, 4])
def test_generator_output_shape_and_range(scale):
    g = Generator(scale=scale, blocks=1, filters=8)
    y = g(torch.randn(2, 1, 8, 12))
    assert y.shape == (2, 1, 8 * scale, 12 * scale)
    assert y.abs().max() <= 1.0  # tanh: the [-1, 1] data range


def test_generator_rejects_other_scales():
    with pytest.raises(ValueError, match="scale must be 2 or 4"):
        Generator(scale=3)


def test_discriminator_gives_one_logit_per_image():
    d = Discriminator(patch=32)
    assert d(torch.randn(3, 1, 32, 32)).shape == (3,)
    with pytest.raises(ValueError, match="multiple of 16"):
        Discriminator(patch=24)


def test_save_load_roundtrip(tmp_path):
    g = Generator(scale=2, blocks=1, filters=8)
    save_model(tmp_path / "g.pt", g, phase=1)
    back = load_model(tmp_path / "g.pt")
    assert back.arch == g.arch
    x = torch.randn(1, 1, 6, 6)
    assert torch.equal(back(x), g(x))
