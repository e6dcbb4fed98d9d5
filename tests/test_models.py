"""Generator and discriminator: the paper's size, the authors' activations, shapes,
save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rocksr.nets.models import (
    Discriminator,
    Generator,
    load_model,
    pixel_shuffle,
    save_model,
)


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


def test_3d_generator_parameter_count():
    # The authors' generatorTF at 16 blocks / 64 filters: 3x3x3 convs throughout, each x2
    # stage a 64 -> 64 conv + PReLU + nearest upsampling, a 3x3x3 output conv.
    assert n_params(Generator(scale=4, blocks=16, filters=64, dim=3)) == 3_877_633
    # with sub-pixel stages instead (conv to 8 x 64 features, 3D shuffle) and the same tail
    assert n_params(Generator(scale=4, blocks=16, filters=64, dim=3,
                              upsample="subpixel")) == 5_426_817


@pytest.mark.parametrize("upsample", ["nearest", "subpixel"])
@pytest.mark.parametrize("scale", [2, 4])
def test_3d_generator_shape_and_layers(scale, upsample):
    g = Generator(scale=scale, blocks=1, filters=4, dim=3, upsample=upsample)
    y = g(torch.randn(2, 1, 3, 4, 5))
    assert y.shape == (2, 1, 3 * scale, 4 * scale, 5 * scale) and y.abs().max() <= 1.0
    convs = [m for m in g.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)]
    assert all(isinstance(m, torch.nn.Conv3d) and m.kernel_size == (3, 3, 3) for m in convs)
    assert g.arch["dim"] == 3 and g.arch["upsample"] == upsample


def test_2d_defaults_unchanged_by_dim():
    g = Generator(scale=4, blocks=1, filters=8)
    assert g.arch == {"scale": 4, "blocks": 1, "filters": 8, "channels": 1, "dim": 2,
                      "upsample": "subpixel", "act": "authors"}
    assert g.tail.kernel_size == (1, 1)
    x = torch.randn(1, 4 * 8, 3, 5)
    assert torch.equal(g.upsample[0][1](x), torch.nn.PixelShuffle(2)(x))


def test_3d_discriminator_flavour():
    d = Discriminator(patch=16, dim=3)
    assert d(torch.randn(2, 1, 16, 16, 16)).shape == (2,)
    norms = [m for m in d.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert len(norms) == 7 and all(m.eps == 1e-3 and not m.weight.requires_grad
                                   and torch.equal(m.weight, torch.ones_like(m.weight))
                                   for m in norms)
    slopes = {m.negative_slope for m in d.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.3}
    assert {m.negative_slope for m in Discriminator(patch=16).modules()
            if isinstance(m, torch.nn.LeakyReLU)} == {0.2}
    with pytest.raises(ValueError, match="dim must be 2 or 3"):
        Discriminator(patch=16, dim=1)


def test_3d_init_is_glorot_uniform():
    torch.manual_seed(0)
    conv = Generator(scale=2, blocks=1, filters=16, dim=3).body[0].body[0]
    bound = (6 / (27 * 16 + 27 * 16)) ** 0.5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    assert conv.weight.std() > 0.04 and not conv.bias.any()  # not N(0, 0.02)


def reference_shuffle(x: np.ndarray, factors) -> np.ndarray:
    """Output voxel by voxel from the channel formula, written apart from pixel_shuffle."""
    rd, rh, rw = factors
    n, c, d, h, w = x.shape
    co = c // (rd * rh * rw)
    z, y, xx = np.indices((d * rd, h * rh, w * rw))
    out = np.empty((n, co, d * rd, h * rh, w * rw), x.dtype)
    for k in range(co):
        channel = k * rd * rh * rw + (z % rd) * rh * rw + (y % rh) * rw + xx % rw
        out[:, k] = x[:, channel, z // rd, y // rh, xx // rw]
    return out


@pytest.mark.parametrize("factors", [(2, 2, 2), (3, 2, 1), (1, 2, 2), (1, 3, 3)])
def test_pixel_shuffle_3d_matches_reference(factors):
    x = torch.randn(2, 3 * int(np.prod(factors)), 2, 3, 4)
    ours = pixel_shuffle(x, factors)
    assert np.array_equal(ours.numpy(), reference_shuffle(x.numpy(), factors))
    if factors[0] == 1 and factors[1] == factors[2]:  # depth factor 1: torch's 2D, slice by slice
        torch2d = torch.stack([torch.nn.PixelShuffle(factors[1])(x[:, :, i])
                               for i in range(x.shape[2])], dim=2)
        assert torch.equal(ours, torch2d)


def test_pixel_shuffle_2d_is_torchs():
    x = torch.randn(2, 18, 4, 5)
    assert torch.equal(pixel_shuffle(x, (3, 3)), torch.nn.PixelShuffle(3)(x))
    with pytest.raises(ValueError, match="do not divide"):
        pixel_shuffle(torch.randn(1, 6, 2, 2, 2), (2, 2, 2))


@pytest.mark.parametrize("dim", [2, 3])
def test_save_load_roundtrip_keeps_dim(tmp_path, dim):
    g = Generator(scale=2, blocks=1, filters=4, dim=dim)
    d = Discriminator(patch=16, dim=dim)
    save_model(tmp_path / "g.pt", g)
    save_model(tmp_path / "d.pt", d)
    back, back_d = load_model(tmp_path / "g.pt"), load_model(tmp_path / "d.pt")
    assert back.arch["dim"] == back_d.arch["dim"] == dim
    x = torch.randn(1, 1, *(6,) * dim)
    assert torch.equal(back(x), g(x))
    assert not any(m.weight.requires_grad for m in back_d.modules()
                   if isinstance(m, torch.nn.BatchNorm3d))


def test_load_model_without_dim_is_2d(tmp_path):
    """A file saved before `dim` was part of the arch (no dim, no upsample, no act: PReLUs
    from 0.25) loads as 2D."""
    g = Generator(scale=4, blocks=1, filters=8, act="prelu")
    old = {k: g.arch[k] for k in ("scale", "blocks", "filters", "channels")}
    torch.save({"kind": "Generator", "arch": old, "state_dict": g.state_dict(), "meta": {}},
               tmp_path / "old.pt")
    d = Discriminator(patch=16)
    torch.save({"kind": "Discriminator", "arch": {"patch": 16, "channels": 1},
                "state_dict": d.state_dict(), "meta": {}}, tmp_path / "old_d.pt")
    back = load_model(tmp_path / "old.pt")
    assert back.arch == g.arch and load_model(tmp_path / "old_d.pt").arch["dim"] == 2
    x = torch.randn(1, 1, 5, 7)
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


def test_the_authors_activations_by_dim():
    """2D: ReLU in the blocks (two zero-slope PReLUs in series); 3D (generatorTF): one PReLU
    per block from slope 0; both: each upsampler's PReLU from 0. `prelu`: 0.25 throughout."""
    for dim, block in ((2, torch.nn.ReLU), (3, torch.nn.PReLU)):
        g = Generator(scale=4, blocks=2, filters=4, dim=dim)
        assert all(isinstance(b.body[1], block) for b in g.body)
        prelus = [m for m in g.modules() if isinstance(m, torch.nn.PReLU)]
        assert len(prelus) == 2 + 2 * (dim == 3) and all(not m.weight.any() for m in prelus)
        slopes = {m.weight.unique().item() for m in Generator(scale=4, blocks=2, filters=4, dim=dim,
                                                               act="prelu").modules()
                  if isinstance(m, torch.nn.PReLU)}
        assert slopes == {0.25}
