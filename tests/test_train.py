"""Training: aligned crops, the G/D steps, resume after a kill, SIGTERM, NaN stop,
determinism, and the fast path against fp32. Tiny models and images throughout."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

import rocksr.train.loop as train_mod
import rocksr.train.step as step_mod
from rocksr.data.packs import Pack, write_packs
from rocksr.nets.models import Discriminator, Generator, load_model, save_model
from rocksr.settings import PhaseSettings
from rocksr.train.balance import rebalanced
from rocksr.train.batches import CropSampler
from rocksr.train.checkpoint import CHECKPOINT
from rocksr.train.loop import NonFiniteError, train
from rocksr.train.step import discriminator_step
from rocksr.workflow import config as cfg
from rocksr.workflow.hooks import remove_checkpoints as remove_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SCALE = 4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread (set before the module-scoped runs): the CPUs are shared, and bitwise
    comparisons need a fixed thread count (CPU conv results depend on it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def smooth_images(rng: np.random.Generator, n: int, size: int = 32) -> np.ndarray:
    """Learnable images: random 8x8 fields upsampled bilinearly, as uint8."""
    coarse = torch.from_numpy(rng.random((n, 1, 8, 8), dtype=np.float32))
    fine = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (fine[:, 0] * 255).round().byte().numpy()


def block_mean(hr: torch.Tensor) -> torch.Tensor:
    """Exact SCALE x SCALE block average of uint8 images (N, H, W), rounded to uint8."""
    return F.avg_pool2d(hr.float().unsqueeze(1), SCALE).squeeze(1).round().byte()


@pytest.fixture(scope="module")
def packs(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "packs"
    items = []
    for rock in ("carbonate", "coal"):
        for split, n in (("train", 4), ("valid", 2)):
            hr = smooth_images(rng, n)
            lr = block_mean(torch.from_numpy(hr)).numpy()
            items.append(Pack(rock, split, hr, lr, np.arange(n)))
    write_packs(path, items, SCALE, "unknown")
    return path


TINY = cfg.validate(cfg.deep_merge(cfg.load(ROOT / "config.yaml"),
                                   yaml.safe_load((ROOT / "tests" / "tiny.yaml").read_text())))


def settings(phase: int = 1, **over) -> PhaseSettings:
    """The tiny run's phase settings, built as the rules build them, with this module's
    schedule and `over` on top."""
    s = cfg.phase_settings(TINY, "tiny", phase).to_dict()
    s.update(precision="fp32", channels_last=False, checkpoint_every=4, epochs=2,
             iters_per_epoch=5, lr=1e-3, decay_epochs=2, augment={"flips": True, "rot90": True})
    if phase == 2:
        s.update(d_lr=1e-4, vgg_weight=1e-2, adv_weight=1e-2)
    return PhaseSettings.from_dict({**s, **over})


def run(tmp: Path, s: dict, packs: Path, init: Path | None = None, **kw) -> Path:
    """Train in-process into `tmp`, then delete the checkpoint as the workflow does once it
    accepts the outputs; returns that folder."""
    train(s, packs, tmp / "ckpt", tmp / "generator.pt", tmp / "metrics.csv", init=init,
          discriminator_out=tmp / "discriminator.pt" if s.phase == 2 else None, **kw)
    remove_checkpoint(tmp / "ckpt")
    return tmp


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path).state_dict()


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def metrics(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


# --- crops -------------------------------------------------------------------------------

def dihedral(t: torch.Tensor) -> list[torch.Tensor]:
    rots = [t.rot90(k, (-2, -1)) for k in range(4)]
    return rots + [r.flip(-1) for r in rots]


@pytest.mark.parametrize("flips,rot90",
                         [(False, False), (True, False), (False, True), (True, True)])
def test_crops_stay_aligned(flips, rot90):
    gen = torch.Generator().manual_seed(1)
    hr = torch.randint(0, 256, (5, 32, 40), dtype=torch.uint8, generator=gen)
    lr = block_mean(hr)
    plain = CropSampler(lr, hr, SCALE, 4, 64, seed=3)
    augmented = CropSampler(lr, hr, SCALE, 4, 64, seed=3, flips=flips, rot90=rot90)
    for _ in range(3):
        lr_b, hr_b = augmented.sample()
        assert lr_b.shape == (64, 1, 4, 4) and hr_b.shape == (64, 1, 16, 16)
        assert lr_b.min() >= -1 and lr_b.max() <= 1
        lr_u8 = ((lr_b + 1) * 127.5).round().byte()
        hr_u8 = ((hr_b + 1) * 127.5).round().byte()
        # each LR crop is its HR crop, downsampled
        assert torch.equal(block_mean(hr_u8[:, 0]), lr_u8[:, 0])
        # Same seed, same draws: each augmented crop is a dihedral transform of the plain one.
        plain_lr = ((plain.sample()[0] + 1) * 127.5).round().byte()
        matches = [[torch.equal(t, a) for t in dihedral(p)] for p, a in zip(plain_lr, lr_u8)]
        assert all(any(m) for m in matches)
        assert any(not m[0] for m in matches) == (flips or rot90)


def test_each_phase_draws_its_own_crops():
    assert train_mod.sampler_seed(0, 1) != train_mod.sampler_seed(0, 2)
    assert train_mod.sampler_seed(0, 2) == train_mod.sampler_seed(0, 2)


def test_sampler_state_restores_the_crop_sequence():
    hr = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    sampler = CropSampler(block_mean(hr), hr, SCALE, 4, 8, seed=0, flips=True)
    state = sampler.state_dict()
    first = sampler.sample()
    sampler.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(first, sampler.sample()))


# --- the G and D steps ---------------------------------------------------------------------

def test_discriminator_step_leaves_the_generator_untouched():
    g, d = Generator(scale=SCALE, blocks=1, filters=8), Discriminator(patch=16)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-2)
    sr = g(torch.rand(2, 1, 4, 4) * 2 - 1)
    before_g = [p.detach().clone() for p in g.parameters()]
    before_d = [p.detach().clone() for p in d.parameters()]
    discriminator_step(d, opt_d, sr, torch.rand(2, 1, 16, 16) * 2 - 1, contextlib.nullcontext())
    assert all(torch.equal(a, p) for a, p in zip(before_g, g.parameters()))
    assert all(p.grad is None for p in g.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before_d, d.parameters()))


def test_one_d_pass_on_sr_makes_the_update_of_two():
    """d_sr_once: G's adversarial term and D's fake term from one D pass give the update of
    a second pass on the detached batch (on this CPU bit for bit), the loss-term diagnostics
    included; D's batch norms then see two batches per iteration, not three."""
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.rand(2, 1, 8, 8, generator=gen) * 2 - 1,
                torch.rand(2, 1, 32, 32, generator=gen) * 2 - 1) for _ in range(3)]
    runs = {}
    for once in (False, True):
        s = settings(2, batch_size=2, lr_patch=8, d_sr_once=once)
        torch.manual_seed(0)
        models = step_mod.build_models(s, torch.device("cpu"))
        step = step_mod.Step(s, models, torch.device("cpu"))
        out = [step(lr, hr, diagnose=i == 2) for i, (lr, hr) in enumerate(batches)]
        runs[once] = out, models
    (twice, m2), (once, m1) = runs[False], runs[True]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(once, twice))
    diag1, diag2 = once[-1][1], twice[-1][1]
    assert diag1.keys() == diag2.keys() and all(torch.equal(diag1[k], diag2[k]) for k in diag1)
    for part in m1.parts():  # weights and Adam states
        a, b = tensors(m1.parts()[part].state_dict()), tensors(m2.parts()[part].state_dict())
        assert a.keys() == b.keys()
        for key in a:
            if key.endswith("num_batches_tracked."):
                assert (a[key].item(), b[key].item()) == (6, 9)
            elif "running_" not in key:
                assert torch.equal(a[key], b[key]), f"{part} {key}"


def tensors(state, prefix: str = "") -> dict[str, torch.Tensor]:
    """The tensors of a nested state dict by dotted key."""
    if isinstance(state, dict):
        return {k: v for key, value in state.items()
                for k, v in tensors(value, f"{prefix}{key}.").items()}
    return {prefix: state} if torch.is_tensor(state) else {}


# --- whole runs --------------------------------------------------------------------------

def test_phase1_then_phase2_write_outputs_and_clean_up(tmp_path, packs):
    p1 = run(tmp_path / "p1", settings(1), packs)
    rows = metrics(p1 / "metrics.csv")
    assert list(rows[0]) == train_mod.metrics_columns(1)
    assert [int(r["iteration"]) for r in rows] == [5, 10]
    assert float(rows[1]["lr"]) == pytest.approx(1e-3 * 0.1 ** 0.5)  # per-epoch decay
    assert not (p1 / "ckpt").exists()  # a finished run leaves no checkpoint to resume
    p2 = run(tmp_path / "p2", settings(2, epochs=1, iters_per_epoch=3), packs,
             init=p1 / "generator.pt")
    rows = metrics(p2 / "metrics.csv")
    assert list(rows[0]) == train_mod.metrics_columns(2) and len(rows) == 1
    assert 0 < float(rows[0]["d_real"]) < 1 and float(rows[0]["loss_vgg"]) > 0
    shares = [float(rows[0][f"share_{t}"]) for t in ("l1", "vgg", "adv")]
    assert sum(shares) == pytest.approx(1.0) and all(0 < x < 1 for x in shares)
    assert float(rows[0]["w_vgg"]) > 0 and "warnings" in rows[0]
    assert isinstance(load_model(p2 / "discriminator.pt"), Discriminator)
    assert not same_weights(p1 / "generator.pt", p2 / "generator.pt")


def test_same_seed_same_weights(tmp_path, packs):
    a, b = run(tmp_path / "a", settings(1), packs), run(tmp_path / "b", settings(1), packs)
    assert same_weights(a / "generator.pt", b / "generator.pt")
    c = run(tmp_path / "c", settings(1, seed=1), packs)
    assert not same_weights(a / "generator.pt", c / "generator.pt")


def test_phase2_is_deterministic(tmp_path, packs):
    init = tmp_path / "init.pt"
    torch.manual_seed(5)
    save_model(init, Generator(SCALE, 1, 8))
    s = settings(2, epochs=1, iters_per_epoch=3)
    a, b = run(tmp_path / "a", s, packs, init), run(tmp_path / "b", s, packs, init)
    assert same_weights(a / "generator.pt", b / "generator.pt")
    assert same_weights(a / "discriminator.pt", b / "discriminator.pt")


# Long enough (2 x 300 iterations, ~1 s) that a subprocess can be stopped midway.
LONG = settings(1, epochs=2, iters_per_epoch=300, checkpoint_every=20)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, packs) -> Path:
    return run(tmp_path_factory.mktemp("reference"), LONG, packs)


def start_cli(tmp: Path, packs: Path) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "--packs", str(packs),
           "--settings", json.dumps(LONG.to_dict()), "--checkpoints", str(tmp / "ckpt"),
           "--generator", str(tmp / "generator.pt"), "--metrics", str(tmp / "metrics.csv"),
           "--threads", "1", "--log", str(tmp / "train.log")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for_checkpoint(proc: subprocess.Popen, path: Path) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"training ended before a checkpoint: {proc.stdout.read()[-2000:]}")
        assert time.monotonic() < deadline, "no checkpoint within 60 s"
        time.sleep(0.005)


def checkpoint_iteration(path: Path) -> int:
    return torch.load(path, weights_only=True)["iteration"]


def test_rerun_after_sigkill_resumes_to_the_same_weights(tmp_path, packs, uninterrupted):
    proc = start_cli(tmp_path, packs)
    wait_for_checkpoint(proc, tmp_path / "ckpt" / CHECKPOINT)
    proc.kill()
    proc.wait()
    killed_at = checkpoint_iteration(tmp_path / "ckpt" / CHECKPOINT)
    assert 0 < killed_at < 600 and not (tmp_path / "generator.pt").exists()
    run(tmp_path, LONG, packs)
    assert same_weights(tmp_path / "generator.pt", uninterrupted / "generator.pt")
    assert metrics(tmp_path / "metrics.csv") == metrics(uninterrupted / "metrics.csv")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])  # SIGINT: Ctrl-C
def test_stop_signal_saves_a_checkpoint_and_exits_nonzero(tmp_path, packs, uninterrupted, sig):
    proc = start_cli(tmp_path, packs)
    wait_for_checkpoint(proc, tmp_path / "ckpt" / CHECKPOINT)
    proc.send_signal(sig)
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 128 + sig, output[-2000:]
    assert "Traceback" not in output
    stopped_at = checkpoint_iteration(tmp_path / "ckpt" / CHECKPOINT)
    assert 0 < stopped_at < 600
    log = (tmp_path / "train.log").read_text()
    assert f"{sig.name}: checkpoint saved at iteration {stopped_at}" in log
    assert not (tmp_path / "generator.pt").exists() and not (tmp_path / "metrics.csv").exists()
    run(tmp_path, LONG, packs)  # the retry
    assert same_weights(tmp_path / "generator.pt", uninterrupted / "generator.pt")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, packs, monkeypatch):
    sample = CropSampler.sample
    calls = []

    def poisoned(self):
        calls.append(1)
        lr, hr = sample(self)
        return (lr * float("nan"), hr) if len(calls) == 7 else (lr, hr)

    monkeypatch.setattr(CropSampler, "sample", poisoned)
    with pytest.raises(NonFiniteError, match=r"non-finite loss at iteration 7 \(loss_l1=nan"):
        run(tmp_path, settings(1, checkpoint_every=2), packs)
    ckpt = torch.load(tmp_path / "ckpt" / CHECKPOINT, weights_only=True)
    assert ckpt["iteration"] == 6  # not 8: nothing was saved after the NaN
    assert all(torch.isfinite(v).all() for v in ckpt["generator"].values())
    assert not (tmp_path / "generator.pt").exists()


def test_checkpoint_of_other_settings_is_ignored(tmp_path, packs, caplog):
    (tmp_path / "ckpt").mkdir()
    torch.save({"fingerprint": "something else"}, tmp_path / "ckpt" / CHECKPOINT)
    run(tmp_path, settings(1), packs)
    assert "written for other settings" in caplog.text
    reference = run(tmp_path / "ref", settings(1), packs)
    assert same_weights(tmp_path / "generator.pt", reference / "generator.pt")


def test_fast_path_reaches_the_loss_of_fp32(tmp_path, packs, monkeypatch):
    s = settings(1, epochs=2, iters_per_epoch=40, batch_size=4, lr_patch=8, lr=3e-3,
                 augment={"flips": False, "rot90": False})
    fp32 = run(tmp_path / "fp32", s, packs)
    # On CUDA the fast path is bf16 autocast + channels_last; here bf16 autocast is forced on
    # the CPU for the test only (it is slow there, so training never uses it on CPU).
    monkeypatch.setattr(step_mod, "autocast",
                        lambda device, precision: torch.autocast("cpu", dtype=torch.bfloat16))
    fast = run(tmp_path / "fast", dataclasses.replace(s, precision="bf16", channels_last=True),
               packs)
    first, last = (float(metrics(fp32 / "metrics.csv")[i]["loss_l1"]) for i in (0, -1))
    fast_last = float(metrics(fast / "metrics.csv")[-1]["loss_l1"])
    assert last < 0.8 * first  # it learns...
    assert fast_last == pytest.approx(last, rel=0.15)  # ...and bf16 learns the same


@pytest.fixture
def cli():
    """scripts/train.py loaded in-process; the root logging handlers it installs are undone."""
    spec = importlib.util.spec_from_file_location("train_cli", ROOT / "scripts" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield module
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:], root.level = handlers, level


def test_cli_bad_input_is_one_clear_error(tmp_path, cli):
    log = tmp_path / "train.log"
    common = ["--checkpoints", str(tmp_path / "c"), "--generator", str(tmp_path / "g.pt"),
              "--metrics", str(tmp_path / "m.csv"), "--log", str(log)]
    assert cli.main(["--packs", str(tmp_path / "missing"), "--settings",
                     json.dumps(settings(1).to_dict()), *common]) == 1
    assert "ERROR" in log.read_text() and "missing/index.json missing" in log.read_text()
    assert cli.main(["--packs", str(tmp_path), "--settings", '{"phase": 1}', *common]) == 1
    assert "settings.scale: missing" in log.read_text()
    assert not (tmp_path / "g.pt").exists()


def test_a_full_disk_is_one_line_in_the_log(tmp_path, packs, cli, monkeypatch):
    """torch.save to a full disk raises a C++ iostream error without errno: it becomes one
    line naming the checkpoint and the space it needs. (Injected here; tests/test_fileio.py
    and the test below fill a real, small disk.)"""
    import rocksr.fileio as fileio

    def iostream_error(*args, **kw):
        raise RuntimeError("basic_ios::clear: iostream error")

    usage = fileio.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(torch, "save", iostream_error)
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda p: usage._replace(free=0))
    log = tmp_path / "train.log"
    assert cli.main(["--packs", str(packs), "--settings", json.dumps(settings(1).to_dict()),
                     "--checkpoints", str(tmp_path / "c"), "--generator", str(tmp_path / "g.pt"),
                     "--metrics", str(tmp_path / "m.csv"), "--log", str(log)]) == 1
    errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Traceback" not in log.read_text()
    assert f"no space left on the device for {tmp_path / 'c' / CHECKPOINT}: it needs more " \
           "than 0.0 kB" in errors[0]


def test_a_really_full_disk_is_one_line_in_the_log(tmp_path, packs, small_disk):
    disk, fill = small_disk
    fill(40_000)  # a tiny phase-1 checkpoint is about 110 kB
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "--packs", str(packs),
         "--settings", json.dumps(settings(1).to_dict()), "--checkpoints", str(disk / "ckpt"),
         "--generator", str(disk / "generator.pt"), "--metrics", str(disk / "metrics.csv"),
         "--threads", "1", "--log", str(disk / "train.log")],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last = (disk / "train.log").read_text().splitlines()[-1]
    assert f"ERROR no space left on the device for {disk / 'ckpt' / CHECKPOINT}: it needs" in last
    assert sorted(p.name for p in disk.iterdir()) == ["ckpt", "filler", "train.log"]
    assert [p.name for p in (disk / "ckpt").iterdir()] == ["lock"]  # no half-written checkpoint
# --- phase 2: the loss weights and the diagnostics ----------------------------------------

class StopAfter(list):
    """train()'s `stop`: a SIGTERM that arrives after `n` iterations."""

    def __init__(self, n: int):
        super().__init__([signal.SIGTERM])
        self.n = n

    def __bool__(self) -> bool:
        self.n -= 1
        return self.n < 0


@pytest.fixture(scope="module")
def init(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("init") / "generator.pt"
    torch.manual_seed(5)
    save_model(path, Generator(SCALE, 1, 8))
    return path


def test_rebalanced_is_the_authors_update():
    means = {"loss_l1": 0.1, "loss_vgg": 2000.0, "loss_adv": 0.7, "loss_d": 1.25}
    alpha, beta = rebalanced(1e-5, 1e-3, means, feature_ratio=0.5, adv_ratio=0.1)
    assert alpha == pytest.approx(2.5e-5) and alpha * 2000.0 == pytest.approx(0.5 * 0.1)
    assert beta == pytest.approx(1e-3 * 0.1 / (1e-3 * 0.7) * 0.1)
    # adv_ratio <= 0: beta tuned against a D loss of 1
    assert rebalanced(1e-5, 1e-3, means, 0.5, -1.0)[1] == pytest.approx(1e-3 / 1.25)
    assert rebalanced(0.0, 0.0, means, 0.5, 0.1) == (0.0, 0.0)  # switched off: stays off
    assert rebalanced(1e-5, 1e-3, {**means, "loss_vgg": 0.0}, 0.5, 0.1)[0] == 1e-5


BALANCED = settings(2, epochs=3, iters_per_epoch=5, checkpoint_every=100, balance="ratio",
                    feature_ratio=0.5, adv_ratio=0.1, diagnose_every=2)


def test_balance_ratio_is_the_authors_update_in_the_metrics(tmp_path, packs, init):
    rows = metrics(run(tmp_path, BALANCED, packs, init) / "metrics.csv")
    assert list(rows[0]) == train_mod.metrics_columns(2)
    assert (float(rows[0]["alpha"]), float(rows[0]["beta"])) == pytest.approx((1e-2, 1e-2))
    for before, after in zip(rows, rows[1:]):
        means = {k: float(before[k]) for k in ("loss_l1", "loss_vgg", "loss_adv", "loss_d")}
        # the authors' alpha * mean(L1) / mean(alpha * VGG) * ratio, beta likewise
        alpha = float(before["alpha"]) * means["loss_l1"] / (
            float(before["alpha"]) * means["loss_vgg"]) * 0.5
        beta = float(before["beta"]) * means["loss_l1"] / (
            float(before["beta"]) * means["loss_adv"]) * 0.1
        assert (float(after["alpha"]), float(after["beta"])) == pytest.approx((alpha, beta),
                                                                              rel=1e-5)
    fixed = metrics(run(tmp_path / "fixed", dataclasses.replace(BALANCED, balance="fixed"),
                        packs, init) / "metrics.csv")
    assert {(r["alpha"], r["beta"]) for r in fixed} == {(rows[0]["alpha"], rows[0]["beta"])}


def test_balance_and_diagnostics_survive_a_resume(tmp_path, packs, init):
    """Stopped mid-epoch after a rebalance and between diagnosed steps, then resumed: the
    same weights and metrics (alpha, beta and the epoch's mean diagnostics) as one run."""
    reference = run(tmp_path / "ref", BALANCED, packs, init)
    with pytest.raises(train_mod.TrainingInterrupted):
        run(tmp_path / "resumed", BALANCED, packs, init, stop=StopAfter(7))
    saved = torch.load(tmp_path / "resumed" / "ckpt" / CHECKPOINT, weights_only=True)
    assert saved["iteration"] == 8 and saved["diagnostics"]["count"] == 1
    assert saved["loss_weights"]["alpha"] != pytest.approx(1e-2)  # rebalanced after epoch 1
    run(tmp_path / "resumed", BALANCED, packs, init)
    assert same_weights(tmp_path / "resumed" / "generator.pt", reference / "generator.pt")
    assert metrics(tmp_path / "resumed" / "metrics.csv") == metrics(reference / "metrics.csv")


def test_the_epochs_diagnostics_are_the_mean_of_its_diagnosed_steps(tmp_path, packs, init,
                                                                    monkeypatch):
    steps = []

    def recorded(weighted, params):
        steps.append({k: v.item() for k, v in diagnose(weighted, params).items()})
        return {k: torch.tensor(v) for k, v in steps[-1].items()}

    diagnose = step_mod.term_diagnostics
    monkeypatch.setattr(step_mod, "term_diagnostics", recorded)
    s = dataclasses.replace(BALANCED, epochs=1, balance="fixed")
    row = metrics(run(tmp_path, s, packs, init) / "metrics.csv")[0]
    assert len(steps) == 3  # iterations 2, 4 and the epoch's last, 5
    for name in ("share_vgg", "cos_l1_vgg", "cos_l1_adv", "w_adv"):
        assert float(row[name]) == pytest.approx(np.mean([st[name] for st in steps]), rel=1e-5)
    assert all(-1 <= st["cos_vgg_adv"] <= 1 for st in steps)
    assert row["vgg_exact"] == "False" and "RANDOM" in row["vgg"]
