"""Phase-2 losses: VGG19 conv5_4 features, weight loading, and that gradients flow.

The earlier public reproduction computed the VGG loss under no_grad and the adversarial loss
on detached outputs, so its "SRGAN" was plain L1 training (DESIGN.md section 4). These tests
prove each term on its own reaches every generator parameter.
"""

from __future__ import annotations

import logging
import urllib.error

import pytest
import torch
from torch import nn

from rocksr.losses import (VGGLoss, VGGWeightsError, discriminator_loss,
                           generator_adversarial_loss, load_vgg19_features, vgg_cache_path)
from rocksr.models import Discriminator, Generator
from rocksr.train import generator_terms


@pytest.fixture(scope="module")
def vgg():
    return VGGLoss("random")


def grads_of(model: nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in model.parameters()]


def test_vgg_stops_at_conv5_4_and_is_frozen(vgg):
    assert len(vgg.features) == 35 and isinstance(vgg.features[-1], nn.Conv2d)
    assert vgg.features[-1].out_channels == 512
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training and not vgg.features.training


def test_vgg_input_is_normalised_not_resized(vgg):
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    grey = (x + 1) / 2
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = vgg.features((grey.expand(-1, 3, -1, -1) - mean) / std)
    assert expected.shape == (2, 512, 2, 2)  # 32 px / 2^4 pools: no resize to 224
    assert torch.allclose(vgg._features(x), expected)
    assert vgg(x, x).item() == 0.0


def test_vgg_term_alone_reaches_every_generator_parameter(vgg):
    g = Generator(scale=4, blocks=1, filters=8)
    lr, hr = torch.rand(2, 1, 4, 4) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    generator_terms(g(lr), hr, vgg=vgg)["loss_vgg"].backward()
    assert all(grad is not None and grad.abs().sum() > 0 for grad in grads_of(g))


def test_adversarial_term_alone_reaches_every_generator_parameter():
    g, d = Generator(scale=4, blocks=1, filters=8), Discriminator(patch=16)
    lr, hr = torch.rand(2, 1, 4, 4) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    generator_terms(g(lr), hr, discriminator=d)["loss_adv"].backward()
    assert all(grad is not None and grad.abs().sum() > 0 for grad in grads_of(g))


def test_adversarial_losses_are_bce_on_logits():
    log2 = torch.log(torch.tensor(2.0))
    assert torch.isclose(generator_adversarial_loss(torch.zeros(4)), log2)
    assert torch.isclose(discriminator_loss(torch.zeros(4), torch.zeros(4)), 2 * log2)
    # confident and right: ~0, and stable (no inf) for huge logits
    assert discriminator_loss(torch.full((4,), 1e4), torch.full((4,), -1e4)).item() < 1e-6
    assert torch.isfinite(generator_adversarial_loss(torch.full((4,), -1e4)))


def test_random_weights_are_logged_loudly(caplog):
    with caplog.at_level(logging.WARNING, logger="rocksr.losses"):
        load_vgg19_features("random")
    assert "RANDOM" in caplog.text and "NOT the paper" in caplog.text


def test_imagenet_offline_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)  # never download 550 MB
    with pytest.raises(VGGWeightsError) as info:
        load_vgg19_features("imagenet")
    expected = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert vgg_cache_path() == expected
    assert str(expected) in str(info.value) and "vgg_weights" in str(info.value)


def test_local_weights_file_loads(tmp_path):
    torch.manual_seed(1)
    source = load_vgg19_features("random")
    path = tmp_path / "vgg19.pth"
    # torchvision's file layout: "features.N.weight" (classifier entries, absent here, are unused)
    torch.save({f"features.{k}": v for k, v in source.state_dict().items()}, path)
    loaded = load_vgg19_features(str(path))
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(),
                                                 source.state_dict().values()))


def test_bad_local_weights_name_the_file(tmp_path):
    with pytest.raises(VGGWeightsError, match="not found: .*nope.pth"):
        load_vgg19_features(str(tmp_path / "nope.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(VGGWeightsError, match="junk.pth: not a torchvision VGG19"):
        load_vgg19_features(str(tmp_path / "junk.pth"))
