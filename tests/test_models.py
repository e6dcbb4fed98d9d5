"""Generator and discriminator: the paper's size, the authors' activations, shapes,
save/load."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rocksr.nets.models import Discriminator, Generator, load_model, save_model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_generator_parameter_count_is_the_papers():
    # 16 blocks, 64 filters, x4, 1 channel: about 1.5 M, as the authors' network (docs/design.md)
    assert n_params(Generator(scale=4, blocks=16, filters=64, channels=1)) == 1_514_881
    # one PReLU of 64 slopes per residual block on top
    assert n_params(Generator(scale=4, blocks=16, filters=64, act="prelu")) == 1_515_905


def test_two_zero_slope_prelus_in_series_never_move_and_compute_relu():
    """The authors' residual block: conv, PReLU (Keras, slope 0), their untrained BatchNorm
    (a fixed positive scale per channel), PReLU (slope 0), conv. Trained, both slopes stay 0
    while the convolutions learn, and the block computes what conv-ReLU-conv computes."""
    torch.manual_seed(0)
    batchnorm = nn.BatchNorm2d(8, eps=0.0).eval().requires_grad_(False)  # mean 0, var 1
    nn.init.normal_(batchnorm.weight, 1.0, 0.02)
    scale = batchnorm.weight.view(1, 8, 1, 1)
    first, second = nn.PReLU(8, init=0.0), nn.PReLU(8, init=0.0)
    conv_in, conv_out = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
    theirs = nn.Sequential(conv_in, first, batchnorm, second, conv_out)
    start = conv_in.weight.detach().clone()
    optimizer = torch.optim.Adam([p for p in theirs.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(20):
        x, target = torch.randn(4, 8, 6, 6), torch.randn(4, 8, 6, 6)
        loss = (theirs(x) - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.equal(first.weight, torch.zeros(8)) and torch.equal(second.weight, torch.zeros(8))
    assert not torch.equal(conv_in.weight, start)
    x = torch.randn(2, 8, 6, 6)
    relu = conv_out(torch.relu(conv_in(x)) * scale)
    assert torch.allclose(theirs(x), relu, atol=1e-6)


def test_generator_activations_are_the_authors_or_prelu():
    authors, prelu = Generator(blocks=2, filters=8), Generator(blocks=2, filters=8, act="prelu")
    assert all(isinstance(b.body[1], nn.ReLU) for b in authors.body)
    assert all(torch.equal(u[2].weight, torch.zeros(8)) for u in authors.upsample)  # from 0
    assert all(torch.equal(b.body[1].weight, torch.full((8,), 0.25)) for b in prelu.body)
    assert all(torch.equal(u[2].weight, torch.full((8,), 0.25)) for u in prelu.upsample)
    with pytest.raises(ValueError, match="act must be one of authors, prelu"):
        Generator(act="relu")


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


@pytest.mark.parametrize("act", ["authors", "prelu"])
def test_save_load_roundtrip(tmp_path, act):
    g = Generator(scale=2, blocks=1, filters=8, act=act)
    save_model(tmp_path / "g.pt", g, phase=1)
    back = load_model(tmp_path / "g.pt")
    assert back.arch == g.arch
    x = torch.randn(1, 1, 6, 6)
    assert torch.equal(back(x), g(x))


def test_a_generator_saved_before_act_existed_loads_as_prelu(tmp_path):
    g = Generator(scale=2, blocks=1, filters=8, act="prelu")
    save_model(tmp_path / "g.pt", g)
    payload = torch.load(tmp_path / "g.pt", weights_only=True)
    del payload["arch"]["act"]
    torch.save(payload, tmp_path / "old.pt")
    back = load_model(tmp_path / "old.pt")
    assert back.arch["act"] == "prelu"
    x = torch.randn(1, 1, 6, 6)
    assert torch.equal(back(x), g(x))
