"""Whole-iteration CUDA graphs: the warm-up leaves no trace, learning rates reach a captured
step without recapture, and a graphed or compiled step computes what the eager step computes,
judged one step at a time from one state (rocksr.bench.onestep: on the CPU eager against
eager reloaded and planted bugs; the graphed and compiled steps in CUDA tests, skipped on a
machine without CUDA); a stopped graphed run resumes like one."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

from rocksr.bench import onestep
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


# --- one step at a time: a bug shows, chaos does not (rocksr.bench.onestep) ---------------------

def micro(phase: int, device: torch.device = CPU, precision: str = "fp32") -> PhaseSettings:
    s = settings(phase, device=device.type, precision=precision, channels_last=True)
    return dataclasses.replace(s, batch_size=2, lr_patch=8 if phase == 2 else 4)


def judged(s: PhaseSettings, device: torch.device, names: list[str], extra=(), **kw) -> dict:
    """The one-step experiment's summary for the VARIANTS `names` (eager first) and `extra`
    variants, each a (name, change) pair: a copy of eager that `change` alters, judged as a
    step that must equal eager's."""
    with onestep.numerics(device, s.precision, deterministic=False):
        variants = [onestep.build_variant(n, s, device) for n in names]
        for name, change in extra:
            variant = dataclasses.replace(onestep.build_variant("eager again", s, device),
                                          name=name, kind="exact")
            change(variant.models)
            variants.append(variant)
        return onestep.run_case(s, device, variants, **kw)


@pytest.mark.parametrize("phase", [1, 2])
def test_one_step_check_finds_eager_reloaded_equal_and_catches_planted_bugs(phase):
    def stale_lr(models):  # as if the graph kept reading the first learning rate
        models.set_lr = lambda *rates: None

    def bn_momentum(models):
        for m in models.discriminator.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 0.2

    planted = [("stale lr", stale_lr)] + ([("bn momentum", bn_momentum)] if phase == 2 else [])
    case = judged(micro(phase), CPU, ["eager", "eager, nudged"],
                  [("reloaded", lambda models: None), *planted], steps=2, free_steps=2)
    v = case["variants"]
    assert v["reloaded"]["verdict"] == "PASS" and v["reloaded"]["bitwise"]
    assert v["eager, nudged"]["verdict"] == "info"
    assert v["eager, nudged"]["rows"] > 0 and not v["eager, nudged"]["bitwise"]
    # The stale rate: equal until the rates halve (step 1 of 2), then twice the update.
    assert v["stale lr"]["verdict"] == "FAIL"
    assert case["per_step"][0]["stale lr"]["bitwise"]
    assert case["per_step"][1]["stale lr"]["ratio"] == pytest.approx(1.0, rel=1e-6)
    if phase == 2:  # the momentum shows in the buffers only: train-mode D ignores them
        bn = v["bn momentum"]
        assert bn["verdict"] == "FAIL" and bn["reasons"][0].startswith("bn ")
        assert len(bn["reasons"]) == 1 and bn["rows"] == bn["grads"] == bn["drift"] == 0


def test_the_compiled_variants_are_built_and_judged(monkeypatch):
    # torch.compile as the identity: the variants' plumbing and verdict on the CPU in seconds
    monkeypatch.setattr(torch, "compile", lambda model: model)
    case = judged(micro(1), CPU, ["eager", "eager, nudged", "compiled"], steps=2, free_steps=2)
    assert case["variants"]["compiled"]["verdict"] == "PASS"
    assert case["variants"]["compiled"]["bitwise"]
    assert "eager, nudged" in onestep.table({**case, "mode": "default"})


def test_conv_biases_cancelled_by_batch_norm_are_found():
    names = onestep.cancelled_biases(build_models(phase2(), CPU))
    assert names == {f"D.features.{i}.bias" for i in (2, 5, 8, 11, 14, 17, 20)}


# --- on a GPU --------------------------------------------------------------------------------

@cuda
@pytest.mark.parametrize("phase,precision", [(1, "fp32"), (2, "fp32"), (1, "bf16"), (2, "bf16")])
def test_a_graphed_step_computes_what_the_eager_step_computes(phase, precision):
    case = judged(micro(phase, torch.device("cuda"), precision), torch.device("cuda"),
                  ["eager", "eager again", "eager, nudged", "graphed"])
    assert case["variants"]["graphed"]["verdict"] == "PASS", case["variants"]["graphed"]


@cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_compiled_graphed_step_computes_what_the_eager_step_computes(precision):
    case = judged(micro(2, torch.device("cuda"), precision), torch.device("cuda"),
                  ["eager", "eager again", "eager, nudged", "compiled", "compiled graphed"])
    for name in ("compiled", "compiled graphed"):
        assert case["variants"][name]["verdict"] == "PASS", case["variants"][name]


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
