"""What the workflow sets up in Snakemake itself when a run starts and ends (its `onstart:`,
`onsuccess:` and `onerror:` handlers), and what it prints when a run ends well.

Imported only by the Snakefile: psutil comes with Snakemake. No torch here: Snakemake's own
environment need not have it.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
from pathlib import Path

import psutil

# Failures a retry can fix: a training job stopped by a time limit or preemption resumes
# from its checkpoint; a download cut by the network continues. Every other rule fails the
# same way again (a corrupt archive, bad settings), so the profiles' `retries` skip them.
RETRIED_RULES = frozenset({"download", "train_phase1", "train_phase2"})
# The rules whose `checkpoints` param names a folder of resumable training state.
TRAINING_RULES = frozenset({"train_phase1", "train_phase2"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh"})


def retry_only_what_can_succeed(rules) -> None:
    """Set the retry count of every rule outside RETRIED_RULES to 0 (a rule's own count
    overrides --retries)."""
    for rule in rules:
        if rule.name not in RETRIED_RULES:
            rule.restart_times = 0


def forward_stop_signals_to_jobs() -> None:
    """On SIGTERM (`kill <snakemake pid>`) Snakemake only stops starting jobs and waits for
    the running ones, and on a SIGINT sent to it alone it waits for them too. Pass either
    signal on to the running jobs' commands, so training saves a checkpoint and stops at
    once (a rerun resumes). The shells that run the commands are left alone: they exit with
    their command's status. (Ctrl-C in a terminal already reaches the jobs; a second SIGINT
    to them changes nothing.) SIGHUP (the terminal closed), which would kill Snakemake at
    once and leave its lock behind, is passed on the same way and then handled as SIGTERM:
    Snakemake waits for its jobs to stop and exits, releasing the lock."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = previous[signal.SIGTERM]
    for sig, handler in previous.items():
        signal.signal(sig, _forwarding(handler))


def _forwarding(previous):
    def handler(signum, frame):
        for proc in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):  # gone meanwhile
                if proc.name() not in SHELLS:
                    proc.send_signal(signum)
        if callable(previous):
            previous(signum, frame)
    return handler


def remove_accepted_checkpoints(workflow) -> None:
    """Delete the checkpoints of each training job of this run whose outputs Snakemake has
    accepted: all present and none marked incomplete. A job never deletes its own: one killed
    after writing its outputs, or one that finished after its Snakemake was killed, leaves
    them marked incomplete, and the rerun writes them again from the final checkpoint
    instead of training again. Called when Snakemake starts (a finished phase that reruns,
    e.g. for edited code, then trains afresh) and when it ends."""
    for job in workflow.dag.jobs:
        if (job.rule.name in TRAINING_RULES and all(os.path.exists(f) for f in job.output)
                and not workflow.async_run(workflow.persistence.incomplete(job))):
            remove_checkpoints(job.params.checkpoints)


def remove_checkpoints(folder: str | Path) -> None:
    """Delete a phase's checkpoint folder, and its parent (results/{run}/checkpoints) if that
    is left empty."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):  # not empty (the other phase's), or never made
        folder.parent.rmdir()


REPORT = "results/report.html"
METHODS = ("srcnn", "srgan")  # after the run's baseline: bicubic, or tricubic for volumes


def print_summary(runs: list[str]) -> None:
    """Where the HTML report comes from, and each run's test-split PSNR (dB, mean over the
    images) per rock type and method, from its evaluation summary where there is one."""
    print(f"\nThe HTML report (figures, tables, every run): add `--report {REPORT}` to this "
          f"command; it writes {REPORT}" + (" (one is there now)." if Path(REPORT).exists()
                                            else "."))
    for run in runs:
        path = Path("results", run, "evaluation", "summary.csv")
        if not path.exists():
            continue
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
        psnr = {(r["rock_type"], r["method"]): float(r["psnr_mean"]) for r in rows}
        rocks = list(dict.fromkeys(r["rock_type"] for r in rows))
        baseline = "tricubic" if any(m == "tricubic" for _, m in psnr) else "bicubic"
        methods = (baseline, *METHODS)
        print(f"\n{run}: test-split PSNR (dB), {path}")
        print(f"  {'rock type':<12}" + "".join(f"{m:>9}" for m in methods))
        for rock in rocks:
            print(f"  {rock:<12}" + "".join(
                f"{psnr[rock, m]:9.2f}" if (rock, m) in psnr else f"{'-':>9}" for m in methods))
