"""A training job cut by SIGTERM (what SLURM sends at a time limit or on preemption) saves a
checkpoint and fails; Snakemake's --retries reruns it, it resumes from the checkpoint and
ends where an uninterrupted run ends. Through the workflow, locally (no SLURM needed);
tests/test_slurm.py does the same on the SLURM cluster with `scancel --signal=TERM`.
Snakemake itself stopped (SIGTERM, SIGINT, SIGHUP alone; a closed terminal: SIGHUP to its
process group, its output gone) stops its training job through the checkpoint and releases
its lock; Snakemake killed (SIGKILL) leaves a job that trains on, and the rerun uses that
job's work instead of training again."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from workflow import SNAKEMAKE, copy_workflow, snakemake

pytestmark = pytest.mark.workflow

TARGET = "results/tiny/phase1/generator.pt"


def longer_phase1(wd: Path, name: str = "long.yaml") -> str:
    """A config overlay whose phase 1 runs long enough to be interrupted (seconds on CPU),
    written into `wd`; the phase's old checkpoints, from another config, are removed."""
    tiny = yaml.safe_load((wd / "tests" / "tiny.yaml").read_text())
    phase1 = tiny["runs"]["tiny"]["training"]["phase1"]
    overlay = {"runs": {"tiny": {"training": {
        "checkpoint_every": 3,
        "phase1": {**phase1, "epochs": 2, "iters_per_epoch": 15}}}}}
    (wd / name).write_text(yaml.safe_dump(overlay))
    shutil.rmtree(wd / "results" / "tiny" / "checkpoints" / "phase1", ignore_errors=True)
    return name


def assert_same_training(wd: Path, reference: Path | None, overlay: str) -> None:
    """Phase 1 in `wd` ran all its iterations and, when a reference (uninterrupted) run is
    given, ended exactly like it: same per-epoch metrics, same generator weights. (CPU
    training is deterministic for a seed and thread count, and a checkpoint restores the
    RNG state, so a resumed run matches bit for bit.)"""
    phase1 = yaml.safe_load((wd / overlay).read_text())["runs"]["tiny"]["training"]["phase1"]
    out = wd / "results" / "tiny" / "phase1"
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["iteration"].max() == phase1["epochs"] * phase1["iters_per_epoch"]
    assert list(metrics["epoch"]) == list(range(1, phase1["epochs"] + 1))
    if reference is None:
        return
    ref = reference / "results" / "tiny" / "phase1"
    pd.testing.assert_frame_equal(metrics, pd.read_csv(ref / "metrics.csv"), check_exact=True)
    assert_same_weights(out / "generator.pt", ref / "generator.pt")


def assert_same_weights(a: Path, b: Path) -> None:
    import torch

    sa, sb = (torch.load(p, map_location="cpu", weights_only=False) for p in (a, b))
    flat_a, flat_b = _tensors(sa), _tensors(sb)
    assert flat_a.keys() == flat_b.keys()
    for key in flat_a:
        assert torch.equal(flat_a[key], flat_b[key]), f"{a.name}: {key} differs"


def _tensors(obj, prefix: str = "") -> dict:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_tensors(v, f"{prefix}{k}."))
        return out
    import torch

    return {prefix: obj} if isinstance(obj, torch.Tensor) else {}


def train_processes(wd: Path) -> list[int]:
    """PIDs of the python processes running this workflow copy's scripts/train.py."""
    script = (wd / "scripts" / "train.py").resolve()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = (proc / "cwd").resolve()  # rules name the script relative to it
        except OSError:
            continue
        argv = [a.decode(errors="replace") for a in argv if a]
        if len(argv) >= 2 and "python" in Path(argv[0]).name and cwd / argv[1] == script:
            pids.append(int(proc.name))
    return pids


def test_sigterm_mid_training_resumes_on_retry_and_ends_like_an_uninterrupted_run(tmp_path):
    # Data once, then two copies train phase 1 side by side: one left alone (the
    # reference), one whose training process gets SIGTERM after its first checkpoint.
    base = copy_workflow(tmp_path / "base")
    snakemake(base, "--", "results/data/x4_unknown/manifest.csv")
    reference, wd = tmp_path / "uninterrupted", tmp_path / "cut"
    for dest in (reference, wd):
        shutil.copytree(base, dest, symlinks=True)
        overlay = longer_phase1(dest)
    ref_proc = subprocess.Popen(
        [*SNAKEMAKE, TARGET, "--cores", "1", "--resources", "gpu=1", "--retries", "0",
         "--configfile", "tests/tiny.yaml", overlay],
        cwd=reference, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True)
    checkpoint = wd / "results" / "tiny" / "checkpoints" / "phase1" / "checkpoint.pt"
    out = open(wd / "snakemake.out", "w")
    proc = subprocess.Popen(
        [*SNAKEMAKE, TARGET, "--cores", "1", "--resources", "gpu=1", "--retries", "1",
         "--configfile", "tests/tiny.yaml", overlay],
        cwd=wd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    killed = None
    try:
        deadline = time.monotonic() + 180
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            pids = train_processes(wd)
            if pids and checkpoint.exists():
                os.kill(pids[0], signal.SIGTERM)
                killed = pids[0]
            time.sleep(0.05)
        proc.wait(180)
        ref_log = ref_proc.communicate(timeout=180)[0]
    finally:
        for p in (proc, ref_proc):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    assert ref_proc.returncode == 0, f"the uninterrupted run failed:\n{ref_log[-6000:]}"
    log = (wd / "snakemake.out").read_text()
    assert killed, f"phase 1 ended before a checkpoint could be interrupted:\n{log[-3000:]}"
    assert proc.returncode == 0, f"snakemake failed after the retry:\n{log[-6000:]}"
    assert "Error in rule train_phase1" in log, "the SIGTERM did not fail attempt 1:\n" + log
    assert "Trying to restart job" in log, log
    assert len(re.findall(r"^(?:local)?rule train_phase1:", log, re.M)) == 2, log  # 1 + retry
    assert re.search(r"SIGTERM: checkpoint saved at iteration [1-9]", log), log
    assert re.search(r"resumed from .*checkpoint.* at iteration [1-9]", log), log
    assert_same_training(wd, reference, overlay)


@pytest.fixture(scope="module")
def with_data(tmp_path_factory) -> Path:
    """A workflow copy with the tiny run's data product made: copied by the tests below."""
    base = copy_workflow(tmp_path_factory.mktemp("with_data"))
    snakemake(base, "--", "results/data/x4_unknown/manifest.csv")
    return base


def long_phase1(tmp_path: Path, with_data: Path, iterations: int) -> tuple[Path, str]:
    """A copy of `with_data` whose phase 1 runs 2 x `iterations` (at ~300 it/s), with a
    checkpoint every 50: (its folder, the config overlay's name)."""
    wd = tmp_path / "wd"
    shutil.copytree(with_data, wd, symlinks=True)
    overlay = longer_phase1(wd)
    long = yaml.safe_load((wd / overlay).read_text())
    long["runs"]["tiny"]["training"]["checkpoint_every"] = 50
    long["runs"]["tiny"]["training"]["phase1"].update(epochs=2, iters_per_epoch=iterations)
    (wd / overlay).write_text(yaml.safe_dump(long))
    return wd, overlay


def start_snakemake(wd: Path, overlay: str, *args: str, **popen) -> subprocess.Popen:
    """Snakemake making TARGET in `wd`, in a session (and process group) of its own."""
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True, **popen}
    return subprocess.Popen(
        [*SNAKEMAKE, TARGET, "--cores", "1", "--resources", "gpu=1", *args,
         "--configfile", "tests/tiny.yaml", overlay],
        cwd=wd, stdin=subprocess.DEVNULL, start_new_session=True, **popen)


def wait_until(condition, proc: subprocess.Popen | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc is None or proc.poll() is None, "snakemake ended first"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def checkpoint_of(wd: Path) -> Path:
    return wd / "results" / "tiny" / "checkpoints" / "phase1" / "checkpoint.pt"


def train_log(wd: Path) -> str:
    path = wd / "results" / "tiny" / "logs" / "train_phase1.log"
    return path.read_text() if path.exists() else ""


def locks(wd: Path) -> list[str]:
    return [p.name for p in (wd / ".snakemake" / "locks").glob("*")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
                         ids=lambda sig: sig.name)
def test_stopping_snakemake_stops_its_training_job_through_the_checkpoint(tmp_path, with_data,
                                                                           sig):
    """`kill <snakemake pid>` alone: Snakemake passes the signal on, so the training job
    saves a checkpoint and stops now (not after the phase); nothing is retried meanwhile,
    and Snakemake releases its lock (SIGHUP would kill it at once, leaving it)."""
    wd, overlay = long_phase1(tmp_path, with_data, 1000)
    checkpoint = checkpoint_of(wd)
    proc = start_snakemake(wd, overlay, "--retries", "3")
    try:
        wait_until(lambda: train_processes(wd) and checkpoint.exists(), proc)
        proc.send_signal(sig)  # Snakemake only
        log = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0, log
    assert len(re.findall(r"^(?:local)?rule train_phase1:", log, re.M)) == 1, log  # no retry
    stopped = re.search(rf"{sig.name}: checkpoint saved at iteration (\d+) of 2000",
                        train_log(wd))
    assert stopped, train_log(wd)[-3000:]
    assert not (wd / TARGET).exists() and checkpoint.exists()
    assert not train_processes(wd)
    assert locks(wd) == [], log


def test_a_closed_terminal_stops_the_training_through_the_checkpoint(tmp_path, with_data):
    """The terminal Snakemake runs in is closed: its output goes nowhere (EIO) and the shell
    sends SIGHUP to its process group, the training job's processes included. The job
    checkpoints, Snakemake exits and releases its lock, and a plain rerun resumes."""
    wd, overlay = long_phase1(tmp_path, with_data, 1000)
    terminal, tty = pty.openpty()
    proc = start_snakemake(wd, overlay, stdout=tty, stderr=tty, text=False)
    os.close(tty)
    shown, closing = [], threading.Event()

    def show():  # the terminal: read what Snakemake writes until it is closed
        while not closing.is_set():
            if select.select([terminal], [], [], 0.05)[0]:
                with contextlib.suppress(OSError):
                    shown.append(os.read(terminal, 65536))

    reader = threading.Thread(target=show)
    reader.start()
    try:
        wait_until(lambda: train_processes(wd) and checkpoint_of(wd).exists(), proc)
        closing.set()
        reader.join()
        os.close(terminal)
        os.killpg(proc.pid, signal.SIGHUP)
        proc.wait(60)
        wait_until(lambda: not train_processes(wd), timeout=60)
    finally:
        closing.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = b"".join(shown).decode(errors="replace")
    assert proc.returncode != 0, output[-3000:]
    stopped = re.search(r"SIGHUP: checkpoint saved at iteration (\d+) of 2000", train_log(wd))
    assert stopped, train_log(wd)[-3000:] + output[-3000:]
    assert locks(wd) == []
    rerun = snakemake(wd, "--cores", "1", TARGET, configfiles=("tests/tiny.yaml", overlay))
    assert f"at iteration {stopped[1]} of 2000" in train_log(wd), rerun.stderr[-3000:]
    assert not checkpoint_of(wd).exists()  # accepted: deleted by the workflow
    assert_same_training(wd, None, overlay)


@pytest.mark.parametrize("rerun_while", ["job ended", "job running"])
def test_a_killed_snakemake_loses_no_training(tmp_path, with_data, rerun_while):
    """SIGKILL to Snakemake alone: its training job trains on, finishes and keeps its final
    checkpoint (its outputs stay marked incomplete). After `--unlock` the rerun takes that
    checkpoint and only writes the outputs again; started while the job still runs, the
    rerun's job waits for it first."""
    wd, overlay = long_phase1(tmp_path, with_data, 400)
    out = open(tmp_path / "killed.out", "w")
    proc = start_snakemake(wd, overlay, stdout=out, stderr=subprocess.STDOUT)
    orphans = []
    try:
        wait_until(lambda: train_processes(wd) and checkpoint_of(wd).exists(), proc)
        proc.kill()  # Snakemake only
        proc.wait()
        orphans = train_processes(wd)
        assert orphans, "the job ended before Snakemake was killed"
        if rerun_while == "job running":
            os.kill(orphans[0], signal.SIGSTOP)  # it stays running while the rerun starts
        else:
            wait_until(lambda: not train_processes(wd), timeout=120)
            assert checkpoint_of(wd).exists() and (wd / TARGET).exists()
        snakemake(wd, "--unlock", configfiles=("tests/tiny.yaml", overlay))
        rerun = start_snakemake(wd, overlay)
        if rerun_while == "job running":
            wait_until(lambda: "waiting for it to end" in train_log(wd), rerun)
            os.kill(orphans[0], signal.SIGCONT)
        log = rerun.communicate(timeout=180)[0]
    finally:
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert rerun.returncode == 0, log[-6000:]
    assert "training from the start" not in train_log(wd)
    assert re.search(r"resumed from .*checkpoint.pt at iteration 800 of 800", train_log(wd)), (
        train_log(wd)[-3000:])
    assert not checkpoint_of(wd).exists()  # accepted: deleted by the workflow
    assert_same_training(wd, None, overlay)


def test_a_failure_that_a_retry_cannot_fix_is_not_retried(tmp_path):
    wd = copy_workflow(tmp_path / "wd")
    (wd / "bad.zip").write_bytes(b"not a zip archive")
    proc = snakemake(wd, "--retries", "2", "--config", "dataset={archive: bad.zip}", "--",
                     "results/data/x4_unknown/manifest.csv", check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log
    assert len(re.findall(r"^(?:local)?rule split:", log, re.M)) == 1, log
    assert "Trying to restart job" not in log, log
