"""No lost work from the last iteration to exit: a stop signal there is ignored (the phase
finishes), and a kill there leaves the final checkpoint, from which the rerun only writes the
outputs again. Also: the unreadable-checkpoint message and the empty-folder clean-up.
Tiny in-process runs (the kill is simulated by an exception nothing catches), plus one real
process signalled while it exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import rocksr.train.checkpoint as checkpoint_mod
import rocksr.train.loop as train_mod
import rocksr.train.step as step_mod
import test_train
from rocksr.train.checkpoint import CHECKPOINT
from rocksr.train.checkpoint import remove as remove_checkpoint
from rocksr.train.loop import TrainingInterrupted, stop_signals, train
from test_train import ROOT, metrics, one_thread, packs, run, same_weights, settings  # noqa: F401

S = settings(1, epochs=2, iters_per_epoch=5, checkpoint_every=4)  # last periodic save: 8
TOTAL = S.total_iterations


class Killed(BaseException):
    """Stands for SIGKILL: nothing in train() catches it."""


@pytest.fixture(scope="module")
def reference(tmp_path_factory, packs) -> Path:
    return run(tmp_path_factory.mktemp("reference"), S, packs)


def at_point(monkeypatch, point: str, action) -> None:
    """Call `action()` at one point between the last iteration and the end of train()."""
    def wrap(name, before: bool, final_only: bool = False):
        module = {"write": checkpoint_mod, "train_step": step_mod}.get(name, train_mod)
        real = getattr(module, name)
        calls = []

        def hooked(*args, **kw):
            calls.append(1)
            if not final_only:
                due = True
            elif name == "train_step":
                due = len(calls) == TOTAL
            else:  # write(path, checkpoint)
                due = args[1]["iteration"] == TOTAL
            if due and before:
                action()
            result = real(*args, **kw)
            if due and not before:
                action()
            return result
        monkeypatch.setattr(module, name, hooked)

    {"last iteration": lambda: wrap("train_step", True, final_only=True),
     "final checkpoint write": lambda: wrap("write", True, final_only=True),
     "final checkpoint written": lambda: wrap("write", False, final_only=True),
     "generator written": lambda: wrap("save_model", False),
     "metrics written": lambda: wrap("write_metrics", False)}[point]()


POINTS = ["last iteration", "final checkpoint write", "final checkpoint written",
          "generator written", "metrics written"]


@pytest.fixture(params=["in the call", "in the background"])
def writes(request, monkeypatch):
    """Both ways checkpoints are written (on a CPU in the call, on CUDA in the background)."""
    if request.param == "in the background":
        monkeypatch.setattr(train_mod, "BACKGROUND_WRITES", ("cpu", "cuda"))


@pytest.mark.parametrize("point,sig", list(zip(POINTS, [signal.SIGTERM, signal.SIGINT] * 3)))
def test_a_stop_signal_after_the_last_iteration_lets_the_phase_finish(
        tmp_path, packs, reference, monkeypatch, point, sig, writes):
    at_point(monkeypatch, point, lambda: os.kill(os.getpid(), sig))
    with stop_signals() as stop:
        run(tmp_path, S, packs, stop=stop)  # no TrainingInterrupted
    assert stop == [sig]
    assert same_weights(tmp_path / "generator.pt", reference / "generator.pt")
    assert metrics(tmp_path / "metrics.csv") == metrics(reference / "metrics.csv")


@pytest.mark.parametrize("point", POINTS)
def test_a_kill_after_the_last_iteration_never_trains_again_from_zero(
        tmp_path, packs, reference, monkeypatch, point, writes):
    def kill():
        raise Killed

    with monkeypatch.context() as m:
        at_point(m, point, kill)
        with pytest.raises(Killed):
            run(tmp_path, S, packs)
    # The job failed, so Snakemake deletes its outputs; then the retry.
    for name in ("generator.pt", "metrics.csv"):
        (tmp_path / name).unlink(missing_ok=True)
    steps = []
    real_step = step_mod.train_step
    monkeypatch.setattr(step_mod, "train_step",
                        lambda *a, **k: steps.append(1) or real_step(*a, **k))
    run(tmp_path, S, packs)
    # Killed before the final checkpoint is in place: it resumes from the periodic one at 8.
    before_final = point in ("last iteration", "final checkpoint write")
    assert len(steps) == (TOTAL - 8 if before_final else 0)
    assert same_weights(tmp_path / "generator.pt", reference / "generator.pt")
    assert metrics(tmp_path / "metrics.csv") == metrics(reference / "metrics.csv")
    assert not (tmp_path / "ckpt").exists()


def test_train_leaves_the_final_checkpoint_for_the_caller_to_remove(tmp_path, packs):
    checkpoints = tmp_path / "run" / "checkpoints" / "phase1"
    train(S, packs, checkpoints, tmp_path / "generator.pt", tmp_path / "metrics.csv")
    assert torch.load(checkpoints / CHECKPOINT, weights_only=True)["iteration"] == TOTAL
    remove_checkpoint(checkpoints)
    assert not (tmp_path / "run" / "checkpoints").exists()  # no empty folder left behind


def test_an_unreadable_checkpoint_says_what_to_do_first(tmp_path, packs):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / CHECKPOINT).write_bytes(b"PK\x03\x04 not a checkpoint" * 50)
    with pytest.raises(ValueError) as info:
        run(tmp_path, S, packs)
    message = str(info.value)
    assert message.startswith(f"delete {tmp_path / 'ckpt' / CHECKPOINT} to train this phase "
                              "from the start: it is an unreadable checkpoint (")
    assert len(message) < 400 and "\n" not in message


def test_signals_while_the_process_exits_do_not_fail_a_finished_phase(tmp_path, packs):
    """SIGTERM sent again and again from the moment the outputs exist until the process is
    gone: it still exits 0, with its outputs and without a checkpoint."""
    tiny = settings(1, epochs=1, iters_per_epoch=2, checkpoint_every=2)
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "--packs", str(packs),
           "--settings", json.dumps(tiny.to_dict()), "--checkpoints", str(tmp_path / "ckpt"),
           "--generator", str(tmp_path / "generator.pt"),
           "--metrics", str(tmp_path / "metrics.csv"), "--threads", "1"]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not (tmp_path / "generator.pt").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "no output within 60 s"
        time.sleep(0.001)
    sent = 0
    while proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        sent += 1
        time.sleep(0.002)
    output = proc.stdout.read().decode()
    assert proc.returncode == 0, output[-2000:]
    assert sent > 0 and (tmp_path / "metrics.csv").exists()
    assert not (tmp_path / "ckpt").exists()


# --- checkpoints written in the background ---------------------------------------------------

@pytest.fixture
def background(monkeypatch):
    """Checkpoints written in the background, as on CUDA, here on the CPU."""
    monkeypatch.setattr(train_mod, "BACKGROUND_WRITES", ("cpu", "cuda"))


@pytest.fixture
def slow_writes(monkeypatch, background):
    """Each checkpoint write takes 50 ms more and is logged: (iteration, thread, writes in
    flight, the checkpoint's tensors when written). Each training step records whether a
    write was in flight."""
    log, busy, lock = [], [], threading.Lock()
    real_write, real_step = checkpoint_mod.write, step_mod.train_step
    overlapped = []

    def write(path, checkpoint):
        with lock:
            busy.append(1)
            in_flight = len(busy)
        time.sleep(0.05)  # training goes on meanwhile: what is written must not change
        log.append((checkpoint["iteration"], threading.current_thread().name, in_flight,
                    {k: v.clone() for k, v in test_train.tensors(checkpoint).items()}))
        real_write(path, checkpoint)
        with lock:
            busy.pop()

    def step(*args, **kw):
        overlapped.append(bool(busy))
        return real_step(*args, **kw)

    monkeypatch.setattr(checkpoint_mod, "write", write)
    monkeypatch.setattr(step_mod, "train_step", step)
    return log, overlapped


def test_checkpoints_are_written_one_at_a_time_while_training_goes_on(
        tmp_path, packs, reference, slow_writes, monkeypatch):
    log, overlapped = slow_writes
    run(tmp_path / "background", S, packs)
    assert [entry[0] for entry in log] == [4, 8, TOTAL]
    assert all(name != "MainThread" and in_flight == 1 for _, name, in_flight, _ in log)
    assert any(overlapped)  # steps ran while a write was in flight
    assert same_weights(tmp_path / "background" / "generator.pt", reference / "generator.pt")
    # What was written is the state at the save, though training went on changing it.
    background = [entry[3] for entry in log]
    monkeypatch.setattr(train_mod, "BACKGROUND_WRITES", ())
    log.clear()
    run(tmp_path / "in the call", S, packs)
    assert all(name == "MainThread" for _, name, _, _ in log)
    for written, synchronous in zip(background, [entry[3] for entry in log]):
        assert written.keys() == synchronous.keys()
        assert all(torch.equal(written[k], synchronous[k]) for k in written)


def test_a_failed_background_write_stops_the_training_before_its_outputs(
        tmp_path, packs, monkeypatch, background):
    real_write = checkpoint_mod.write

    def write(path, checkpoint):
        if checkpoint["iteration"] == 4:
            raise OSError("No space left on device")
        real_write(path, checkpoint)

    monkeypatch.setattr(checkpoint_mod, "write", write)
    with pytest.raises(OSError, match="No space left"):
        run(tmp_path, S, packs)
    assert not (tmp_path / "ckpt" / CHECKPOINT).exists()
    assert not (tmp_path / "generator.pt").exists()


def test_a_stop_signal_during_a_background_write_leaves_that_checkpoint_complete(
        tmp_path, packs, slow_writes):
    log, _ = slow_writes
    with stop_signals() as stop, pytest.raises(TrainingInterrupted, match="iteration 5 of"):
        # the signal arrives during the write of iteration 4; the stop saves at 5
        at = {"calls": 0}
        real_write = checkpoint_mod.write

        def write_and_signal(path, checkpoint):
            if checkpoint["iteration"] == 4:
                os.kill(os.getpid(), signal.SIGTERM)
            real_write(path, checkpoint)
            at["calls"] += 1

        checkpoint_mod.write = write_and_signal
        try:
            run(tmp_path, S, packs, stop=stop)
        finally:
            checkpoint_mod.write = real_write
    assert torch.load(tmp_path / "ckpt" / CHECKPOINT, weights_only=True)["iteration"] == 5
    assert [entry[0] for entry in log] == [4, 5]
