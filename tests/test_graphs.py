"""Whole-iteration CUDA graphs: the warm-up leaves no trace, learning rates reach a captured
step without recapture, and a graphed run follows the eager trajectory (CUDA tests, skipped
on a machine without CUDA) and resumes like one."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

from rocksr.settings import PhaseSettings
from rocksr.train.cuda_graphs import GraphedStep, preserved
from rocksr.train.loop import TrainingInterrupted, make_step
from rocksr.train.step import Step, build_models
from test_train import metrics, one_thread, packs, run, same_weights, settings  # noqa: F401

CPU = torch.device("cpu")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def batch(s: PhaseSettings, device: torch.device, seed: int):
    gen = torch.Generator().manual_seed(seed)
    lr = torch.rand(s.batch_size, 1, s.lr_patch, s.lr_patch, generator=gen) * 2 - 1
    hr = torch.rand(s.batch_size, 1, s.hr_patch, s.hr_patch, generator=gen) * 2 - 1
    return lr.to(device), hr.to(device)


def snapshot(models) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Copies of every parameter and buffer, and of every optimizer-state tensor."""
    modules = [m for m in (models.generator, models.discriminator) if m is not None]
    optimizers = [o for o in (models.opt_g, models.opt_d) if o is not None]
    return ([t.detach().clone() for m in modules for t in (*m.parameters(), *m.buffers())],
            [v.clone() for o in optimizers for st in o.state.values() for v in st.values()])


def equal(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def phase2(device: torch.device = CPU, **over) -> PhaseSettings:
    return settings(2, batch_size=2, lr_patch=8, device=device.type, **over)


@pytest.mark.parametrize("steps_before", [0, 2])  # fresh optimizer state, or one in use
def test_preserved_puts_every_weight_buffer_and_optimizer_state_back(steps_before):
    torch.manual_seed(0)
    models = build_models(phase2(), CPU)
    step = Step(phase2(), models, CPU)
    for i in range(steps_before):
        step(*batch(phase2(), CPU, i))
    weights, state = snapshot(models)
    with preserved(models):
        for i in range(3):
            step(*batch(phase2(), CPU, 10 + i))
    weights_after, state_after = snapshot(models)
    assert equal(weights, weights_after)
    if steps_before:
        assert equal(state, state_after)
    else:  # state created inside is zeroed: what a fresh Adam state is
        assert not state and state_after and not any(t.any() for t in state_after)
    # ...and training on from there is training as if nothing had happened.
    torch.manual_seed(0)
    fresh = build_models(phase2(), CPU)
    fresh_step = Step(phase2(), fresh, CPU)
    for i in range(steps_before):
        fresh_step(*batch(phase2(), CPU, i))
    for i in range(2):
        a, _ = step(*batch(phase2(), CPU, 20 + i))
        b, _ = fresh_step(*batch(phase2(), CPU, 20 + i))
        assert torch.equal(a, b)
    assert all(equal(x, y) for x, y in zip(snapshot(models), snapshot(fresh)))


def test_learning_rates_held_in_tensors_are_set_in_place():
    models = build_models(phase2(), CPU)
    for optimizer in (models.opt_g, models.opt_d):
        optimizer.param_groups[0]["lr"] = torch.tensor(1.0)
    held = models.opt_g.param_groups[0]["lr"]
    models.set_lr(0.25, 0.5)
    assert models.opt_g.param_groups[0]["lr"] is held and held.item() == 0.25
    assert models.opt_d.param_groups[0]["lr"].item() == 0.5


def test_without_cuda_the_graphs_setting_falls_back_to_eager_steps(caplog):
    s = settings(1, cuda_graphs=True)
    with caplog.at_level(logging.INFO):
        step = make_step(s, build_models(s, CPU), CPU)
    assert type(step) is Step and "cuda_graphs: ignored on cpu" in caplog.text
    with pytest.raises(ValueError, match="need a CUDA device"):
        GraphedStep(s, build_models(s, CPU), CPU)


# --- on a GPU --------------------------------------------------------------------------------

@cuda
@pytest.mark.parametrize("phase,precision", [(1, "fp32"), (2, "fp32"), (1, "bf16"), (2, "bf16")])
def test_a_graphed_step_computes_what_the_eager_step_computes(phase, precision):
    device = torch.device("cuda")
    s = dataclasses.replace(settings(phase, device="cuda", precision=precision,
                                     channels_last=True), batch_size=2,
                            lr_patch=8 if phase == 2 else 4)
    torch.manual_seed(0)
    eager_models = build_models(s, device)
    torch.manual_seed(0)
    graphed_models = build_models(s, device)
    eager = Step(s, eager_models, device)
    graphed = GraphedStep(s, graphed_models, device)
    # Not bitwise: cuDNN's convolutions (TF32 in fp32, atomics in weight gradients) differ
    # in their last bits between two runs, eager or not; measured on an H200.
    tol = {"fp32": 1e-3, "bf16": 2e-2}[precision]
    for i in range(6):
        if i == 3:  # a new learning rate reaches the captured step without recapture
            for models in (eager_models, graphed_models):
                models.set_lr(5e-4, 5e-5 if phase == 2 else None)
        lr, hr = batch(s, device, i)
        a, _ = eager(lr, hr)
        b, _ = graphed(lr, hr)
        torch.testing.assert_close(b, a, rtol=tol, atol=tol)
    for x, y in zip(graphed_models.generator.parameters(), eager_models.generator.parameters()):
        torch.testing.assert_close(x, y, rtol=tol, atol=tol)
    # zero learning rate: the replayed step leaves the weights as they are
    graphed_models.set_lr(0.0, 0.0 if phase == 2 else None)
    weights = [p.detach().clone() for p in graphed_models.generator.parameters()]
    graphed(*batch(s, device, 99))
    assert all(torch.equal(w, p) for w, p in zip(weights, graphed_models.generator.parameters()))


@pytest.fixture
def deterministic_cudnn(monkeypatch):
    """cuDNN's deterministic kernels: two eager runs then agree, and so must a graphed one.
    (With the default ones, two EAGER phase-2 runs gave share_l1 0.0487 and 0.0451 after 3
    iterations on an H200: gradient-norm ratios amplify the weight-gradient atomics.)"""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)


@pytest.fixture
def phase2_init(tmp_path, packs):
    return run(tmp_path / "p1", settings(1, device="cuda", epochs=1, iters_per_epoch=4),
               packs) / "generator.pt"


PHASE2 = dict(device="cuda", precision="fp32", epochs=2, iters_per_epoch=3, checkpoint_every=2)


@cuda
def test_graphed_training_follows_the_eager_trajectory(tmp_path, packs, phase2_init,
                                                       deterministic_cudnn):
    s = settings(2, **PHASE2)
    eager = run(tmp_path / "eager", s, packs, phase2_init)
    graphed = run(tmp_path / "graphed", dataclasses.replace(s, cuda_graphs=True), packs,
                  phase2_init)
    for a, b in zip(metrics(eager / "metrics.csv"), metrics(graphed / "metrics.csv")):
        for key in ("loss_l1", "loss_g", "loss_d", "val_psnr", "share_l1", "share_vgg",
                    "share_adv"):
            assert float(b[key]) == pytest.approx(float(a[key]), rel=1e-3, abs=1e-5), key


@cuda
def test_a_stopped_graphed_run_resumes_to_the_uninterrupted_one(tmp_path, packs, phase2_init,
                                                                deterministic_cudnn):
    s = settings(2, cuda_graphs=True, **PHASE2)
    whole = run(tmp_path / "whole", s, packs, phase2_init)
    with pytest.raises(TrainingInterrupted):  # a stop signal in the first iteration
        run(tmp_path / "resumed", s, packs, phase2_init, stop=[15])
    resumed = run(tmp_path / "resumed", s, packs, phase2_init)
    for a, b in zip(metrics(whole / "metrics.csv"), metrics(resumed / "metrics.csv")):
        for key in ("loss_g", "loss_d", "val_psnr"):
            assert float(b[key]) == pytest.approx(float(a[key]), rel=1e-3, abs=1e-5), key


@cuda
def test_rebalanced_alpha_and_beta_reach_the_captured_step(tmp_path, packs, phase2_init,
                                                           deterministic_cudnn):
    """Under `balance: ratio` alpha and beta change after each epoch, in place: the graphed
    run follows the eager one into the second epoch (a weight baked into the graph at capture
    would not), and its diagnostics (shares, cosines over several steps) match too."""
    s = settings(2, balance="ratio", diagnose_every=2, **PHASE2)
    eager = run(tmp_path / "eager", s, packs, phase2_init)
    graphed = run(tmp_path / "graphed", dataclasses.replace(s, cuda_graphs=True), packs,
                  phase2_init)
    rows = list(zip(metrics(eager / "metrics.csv"), metrics(graphed / "metrics.csv")))
    assert rows[1][0]["alpha"] != rows[0][0]["alpha"]  # rebalanced after the first epoch
    for a, b in rows:
        for key in ("alpha", "beta", "loss_g", "loss_vgg", "loss_d", "share_vgg",
                    "cos_l1_adv", "cos_l1_vgg"):
            assert float(b[key]) == pytest.approx(float(a[key]), rel=1e-3, abs=1e-5), key
