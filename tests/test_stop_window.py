"""No lost work from the last iteration on: a stop signal there is ignored (the phase
finishes), and a kill there, even after the job's last line, leaves the final checkpoint,
from which the rerun only writes the outputs again (the workflow deletes the checkpoint once
it has accepted the outputs, never the job). Settings that change no weights never discard
a checkpoint. One process trains a phase at a time. Checkpoints written in the background
are whole and in order. Also: the unreadable-checkpoint message and the empty-folder
clean-up. Tiny in-process runs (the kill is simulated by an exception
nothing catches), plus real processes signalled while they end. (Stopping and killing
Snakemake itself: tests/test_preemption.py.)"""

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
from rocksr.settings import PhaseSettings
from rocksr.train.checkpoint import CHECKPOINT
from rocksr.train.loop import TrainingInterrupted, stop_signals, train
from rocksr.workflow.hooks import remove_checkpoints as remove_checkpoint
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


@pytest.mark.parametrize("point,sig", list(zip(POINTS, [signal.SIGTERM, signal.SIGINT,
                                                       signal.SIGHUP] * 2)))
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


def test_train_leaves_the_final_checkpoint_for_the_workflow_to_remove(tmp_path, packs):
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


TINY = settings(1, epochs=1, iters_per_epoch=2, checkpoint_every=2)


def start_script(tmp_path: Path, packs: Path, s=TINY) -> subprocess.Popen:
    """scripts/train.py on `s`, as the rule runs it (settings in two parts), into tmp_path."""
    weights, rest = s.split("cpu")
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "--packs", str(packs),
           "--settings", json.dumps(weights), "--runtime-settings", json.dumps(rest),
           "--checkpoints", str(tmp_path / "ckpt"), "--generator", str(tmp_path / "generator.pt"),
           "--metrics", str(tmp_path / "metrics.csv"), "--threads", "1",
           "--log", str(tmp_path / "train.log")]
    return subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_signals_while_the_process_exits_do_not_fail_a_finished_phase(tmp_path, packs):
    """SIGTERM sent again and again from the moment the outputs exist until the process is
    gone: it still exits 0, with its outputs and its final checkpoint."""
    proc = start_script(tmp_path, packs)
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
    assert torch.load(tmp_path / "ckpt" / CHECKPOINT, weights_only=True)["iteration"] == 2


@pytest.mark.parametrize("end", ["exits", "SIGKILL at 'phase 1 done'"])
def test_a_job_killed_after_its_last_line_is_not_trained_again(tmp_path, packs, end):
    """The job never deletes its final checkpoint, so a SIGKILL after 'phase 1 done' (Snakemake
    counts the job failed and deletes its outputs) or a job whose Snakemake was killed (its
    outputs marked incomplete) is rerun without training: the rerun only writes the outputs."""
    proc = start_script(tmp_path, packs)
    log = tmp_path / "train.log"
    while proc.poll() is None and "phase 1 done" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.001)
    if end != "exits":
        proc.kill()
    proc.wait()
    assert torch.load(tmp_path / "ckpt" / CHECKPOINT, weights_only=True)["iteration"] == 2
    first = tmp_path / "first"
    first.mkdir()
    for name in ("generator.pt", "metrics.csv"):  # moved away: Snakemake deletes them
        (tmp_path / name).rename(first / name)
    before = len(log.read_text())
    rerun = start_script(tmp_path, packs)
    assert rerun.wait(120) == 0, rerun.stdout.read().decode()[-2000:]
    assert f"resumed from {tmp_path / 'ckpt' / CHECKPOINT} at iteration 2 of 2" in (
        log.read_text()[before:])
    assert metrics(tmp_path / "metrics.csv") == metrics(first / "metrics.csv")
    assert same_weights(tmp_path / "generator.pt", first / "generator.pt")


def test_a_second_process_on_a_phase_waits_for_the_first(tmp_path, packs):
    """As a job that outlived its killed Snakemake and the rerun's job: the second waits (it
    would resume from the first one's checkpoint), saying so, and goes on once it is free."""
    import fcntl

    (tmp_path / "ckpt").mkdir()
    with open(tmp_path / "ckpt" / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write("4242\n")
        lock.flush()
        proc = start_script(tmp_path, packs)
        log = tmp_path / "train.log"
        deadline = time.monotonic() + 60
        while "waiting for it to end" not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.05)
        assert "process 4242 is training this phase" in log.read_text()
        assert not (tmp_path / "generator.pt").exists()
    assert proc.wait(120) == 0, proc.stdout.read().decode()[-2000:]
    assert (tmp_path / "generator.pt").exists()


def test_a_stop_signal_while_waiting_stops_the_job(tmp_path, packs):
    import fcntl

    (tmp_path / "ckpt").mkdir()
    with open(tmp_path / "ckpt" / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = start_script(tmp_path, packs)
        log = tmp_path / "train.log"
        while "waiting for it to end" not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
    assert "SIGTERM: stopped while waiting for process" in log.read_text()


# --- settings that change no weights ------------------------------------------------------

def killed_mid_phase(tmp_path, packs, monkeypatch) -> None:
    """Phase S killed at its 6th iteration (after the periodic checkpoint at 4)."""
    real_step, steps = step_mod.train_step, []

    def step(*args, **kw):
        steps.append(1)
        if len(steps) == 6:
            raise Killed
        return real_step(*args, **kw)

    with monkeypatch.context() as m:
        m.setattr(step_mod, "train_step", step)
        with pytest.raises(Killed):
            run(tmp_path, S, packs)


def counted_steps(monkeypatch) -> list:
    steps, real_step = [], step_mod.train_step
    monkeypatch.setattr(step_mod, "train_step",
                        lambda *a, **k: steps.append(1) or real_step(*a, **k))
    return steps


@pytest.mark.parametrize("change", [
    {"checkpoint_every": 3},
    {"validation": {"images": 1}},  # changes the later epochs' val_psnr only
    {"precision": "bf16", "cuda_graphs": False},  # ignored on the CPU
])
def test_settings_that_change_no_weights_never_discard_a_checkpoint(
        tmp_path, packs, reference, monkeypatch, change, caplog):
    killed_mid_phase(tmp_path, packs, monkeypatch)
    steps = counted_steps(monkeypatch)
    run(tmp_path, PhaseSettings.from_dict({**S.to_dict(), **change}), packs)
    assert "training from the start" not in caplog.text
    assert len(steps) == TOTAL - 4  # resumed from the checkpoint at 4
    assert same_weights(tmp_path / "generator.pt", reference / "generator.pt")
    if "validation" not in change:
        assert metrics(tmp_path / "metrics.csv") == metrics(reference / "metrics.csv")


def test_a_setting_that_changes_the_weights_trains_from_the_start(tmp_path, packs, monkeypatch,
                                                                   caplog):
    killed_mid_phase(tmp_path, packs, monkeypatch)
    steps = counted_steps(monkeypatch)
    run(tmp_path, PhaseSettings.from_dict({**S.to_dict(), "lr": 2e-3}), packs)
    assert "training from the start" in caplog.text and len(steps) == TOTAL


def test_precision_and_cuda_graphs_are_part_of_what_a_cuda_run_resumes():
    weights, other = S.split("cuda")
    assert {"precision", "cuda_graphs", "lr", "device"} <= set(weights)
    assert set(other) == {"checkpoint_every", "validation"}
    weights, other = S.split("cpu")
    assert set(other) == {"checkpoint_every", "validation", "precision", "cuda_graphs"}
    assert {**weights, **other} == S.to_dict()


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
