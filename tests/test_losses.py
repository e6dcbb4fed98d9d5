"""Phase-2 losses: that gradients flow, and the per-epoch diagnostics that show each term acts.

The earlier public reproduction computed the VGG loss under no_grad and the adversarial loss
on detached outputs, so its "SRGAN" was plain L1 training (docs/design.md, "Known
mistakes"). These tests prove each term on its own reaches every generator parameter.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rocksr.nets.losses import (
    VGGLoss,
    discriminator_loss,
    generator_adversarial_loss,
    generator_terms,
    weighted_terms,
)
from rocksr.nets.models import Discriminator, Generator
from rocksr.train.diagnostics import (
    EpochMean,
    diagnosed,
    epoch_warnings,
    gradient_shares,
    term_diagnostics,
)


@pytest.fixture(scope="module")
def vgg():
    return VGGLoss("random", layer="conv5_4")  # 16 px HR crops: pool5 would need 32


def grads_of(model: nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in model.parameters()]


def test_vgg_term_alone_reaches_every_generator_parameter(vgg):
    g = Generator(scale=4, blocks=1, filters=8)
    lr, hr = torch.rand(2, 1, 4, 4) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    generator_terms(g(lr), hr, vgg=vgg)["loss_vgg"].backward()
    assert all(grad is not None and grad.abs().sum() > 0 for grad in grads_of(g))


def test_adversarial_term_alone_reaches_every_generator_parameter():
    g, d = Generator(scale=4, blocks=1, filters=8), Discriminator(patch=16)
    lr, hr = torch.rand(2, 1, 4, 4) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    sr = g(lr)
    generator_terms(sr, hr, fake_logits=d(sr))["loss_adv"].backward()
    assert all(grad is not None and grad.abs().sum() > 0 for grad in grads_of(g))


def test_adversarial_losses_are_bce_on_logits():
    log2 = torch.log(torch.tensor(2.0))
    assert torch.isclose(generator_adversarial_loss(torch.zeros(4)), log2)
    assert torch.isclose(discriminator_loss(torch.zeros(4), torch.zeros(4)), 2 * log2)
    # confident and right: ~0, and stable (no inf) for huge logits
    assert discriminator_loss(torch.full((4,), 1e4), torch.full((4,), -1e4)).item() < 1e-6
    assert torch.isfinite(generator_adversarial_loss(torch.full((4,), -1e4)))


def test_vgg_loss_is_zero_for_identical_images(vgg):
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    assert vgg(x, x).item() == 0.0 and vgg(x, -x).item() > 0


# --- diagnostics: does each term act? ------------------------------------------------------

def phase2_terms(vgg, detach_vgg: bool = False):
    torch.manual_seed(0)
    g, d = Generator(scale=4, blocks=1, filters=8), Discriminator(patch=16)
    lr, hr = torch.rand(2, 1, 4, 4) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    sr = g(lr)
    terms = generator_terms(sr, hr, d(sr), vgg)
    if detach_vgg:  # the earlier reproduction's bug: VGG under no_grad
        with torch.no_grad():
            terms["loss_vgg"] = vgg(sr, hr)
    return g, weighted_terms(terms, vgg_weight=1e-2, adv_weight=1e-3)


def test_weighted_terms_sum_to_the_generator_loss(vgg):
    _, weighted = phase2_terms(vgg)
    assert set(weighted) == {"l1", "vgg", "adv"}
    terms = {"loss_l1": torch.tensor(0.5), "loss_vgg": torch.tensor(3.0),
             "loss_adv": torch.tensor(0.7)}
    w = weighted_terms(terms, vgg_weight=1e-2, adv_weight=1e-3)
    assert sum(w.values()).item() == pytest.approx(0.5 + 3e-2 + 7e-4)


def test_gradient_shares_sum_to_one_and_come_from_real_gradients(vgg):
    g, weighted = phase2_terms(vgg)
    shares = gradient_shares(weighted, list(g.parameters()))
    assert sum(v.item() for v in shares.values()) == pytest.approx(1.0)
    norms = {}
    for name, term in weighted.items():  # the same by plain backward passes, one per term
        g.zero_grad()
        term.backward(retain_graph=True)
        norms[name] = torch.sqrt(sum((p.grad ** 2).sum() for p in g.parameters())).item()
    total = sum(norms.values())
    for name in weighted:
        assert shares[name].item() == pytest.approx(norms[name] / total, rel=1e-4)
        assert 0 < shares[name].item() < 1


def test_a_term_without_gradient_gets_share_zero_and_a_warning(vgg):
    g, weighted = phase2_terms(vgg, detach_vgg=True)
    row = {k: v.item() for k, v in term_diagnostics(weighted, list(g.parameters())).items()}
    assert row["share_vgg"] == 0 and row["w_vgg"] > 0
    assert row["share_l1"] + row["share_adv"] == pytest.approx(1.0)
    row.update(d_real=0.6, d_fake=0.4)
    found = epoch_warnings(row, {"l1": 1.0, "vgg": 1e-2, "adv": 1e-3})
    assert any(f.startswith("vgg term inactive") for f in found)
    # a term switched off on purpose (weight 0) is not an alarm
    found = epoch_warnings(row, {"l1": 1.0, "vgg": 0.0, "adv": 1e-3})
    assert not any(f.startswith("vgg") for f in found)


def test_warnings_fire_on_a_collapsed_discriminator_and_stay_quiet_otherwise():
    weights = {"l1": 1.0, "vgg": 1e-5, "adv": 1e-3}
    healthy = {"share_l1": 0.6, "share_vgg": 0.3, "share_adv": 0.1, "d_real": 0.7, "d_fake": 0.3}
    assert epoch_warnings(healthy, weights) == []
    assert epoch_warnings({**healthy, "d_real": 0.99, "d_fake": 0.2}, weights) == []
    collapsed = epoch_warnings({**healthy, "d_real": 0.99, "d_fake": 0.01}, weights)
    assert len(collapsed) == 1 and collapsed[0].startswith("discriminator collapsed")
    tiny = epoch_warnings({**healthy, "share_adv": 0.009, "share_l1": 0.691}, weights)
    assert len(tiny) == 1 and tiny[0].startswith("adv term inactive")


def test_an_fp16_vgg_term_keeps_the_gradient_that_unscaled_fp16_loses(monkeypatch):
    """vgg_precision fp16 (here on the CPU): alpha x 2 / feature count underflows fp16, so the
    gradient through the network is scaled by a power of two, and back after it."""
    torch.manual_seed(0)
    fp32 = VGGLoss("random", "conv5_4", precision="fp32", weight=1e-5)
    fp16 = VGGLoss("random", "conv5_4", precision="fp16", weight=1e-5)
    fp16.load_state_dict(fp32.state_dict())
    hr = torch.rand(2, 1, 16, 16) * 2 - 1
    sr = hr + 0.1 * torch.randn(hr.shape)

    def term(vgg):
        x = sr.clone().requires_grad_(True)
        loss = vgg(x, hr)
        (1e-5 * loss).backward()
        return loss.item(), x.grad

    (loss32, grad32), (loss16, grad16) = term(fp32), term(fp16)
    assert loss16 == pytest.approx(loss32, rel=0.02)
    assert ((grad16 - grad32).norm() / grad32.norm()).item() < 0.1
    monkeypatch.setattr(fp16, "grad_scale", lambda features: 1.0)
    assert not term(fp16)[1].any()  # unscaled: nothing is left of it
def test_cosines_see_two_terms_cancel_where_the_shares_cannot():
    """L1 and adversarial gradients of equal size and opposite direction, a small VGG one:
    shares 0.45 / 0.09 / 0.45, while the whole update comes from the VGG term."""
    p = torch.zeros(3, requires_grad=True)
    u, v = torch.tensor([5.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    weighted = {"l1": (u * p).sum(), "vgg": (v * p).sum(), "adv": (-u * p).sum()}
    row = {k: x.item() for k, x in term_diagnostics(weighted, [p]).items()}
    assert (row["share_l1"], row["share_vgg"], row["share_adv"]) == pytest.approx(
        (5 / 11, 1 / 11, 5 / 11))
    assert torch.autograd.grad(sum(weighted.values()), p)[0].tolist() == v.tolist()
    assert (row["cos_l1_adv"], row["cos_l1_vgg"], row["cos_vgg_adv"]) == pytest.approx(
        (-1.0, 0.0, 0.0))
    found = epoch_warnings({**row, "d_real": 0.6, "d_fake": 0.4},
                           {"l1": 1.0, "vgg": 1e-5, "adv": 1e-3})
    assert len(found) == 1 and found[0].startswith("L1 and adversarial gradients against")
    calm = epoch_warnings({**row, "cos_l1_adv": -0.4}, {"l1": 1.0, "vgg": 1e-5, "adv": 1e-3})
    assert calm == []


def test_a_term_without_gradient_has_no_cosine():
    p = torch.zeros(2, requires_grad=True)
    weighted = {"l1": (p * torch.tensor([1.0, 2.0])).sum(), "adv": torch.tensor(0.3)}
    row = term_diagnostics(weighted, [p])
    assert row["share_adv"].item() == 0 and torch.isnan(row["cos_l1_adv"])
    assert epoch_warnings({k: v.item() for k, v in row.items()}, {"l1": 1.0, "adv": 0.0}) == []


def test_epoch_mean_averages_the_diagnosed_steps_and_resumes():
    assert [i for i in range(5) if diagnosed(i, 5, every=2)] == [1, 3, 4]
    assert [i for i in range(5) if diagnosed(i, 5, every=100)] == [4]  # the epoch's last
    mean = EpochMean(torch.device("cpu"))
    mean.add({"share_l1": torch.tensor(0.2)})
    resumed = EpochMean(torch.device("cpu"))
    resumed.load_state_dict(mean.state_dict())
    for m in (mean, resumed):
        m.add({"share_l1": torch.tensor(0.6)})
        assert m.pop()["share_l1"].item() == pytest.approx(0.4)
        assert m.pop() is None  # a new epoch starts empty
