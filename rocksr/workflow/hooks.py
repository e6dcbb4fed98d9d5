"""What the workflow sets up in Snakemake itself when a run starts (its `onstart:` handler).

Imported only by the Snakefile: psutil comes with Snakemake.
"""

from __future__ import annotations

import contextlib
import signal

import psutil

# Failures a retry can fix: a training job stopped by a time limit or preemption resumes
# from its checkpoint; a download cut by the network continues. Every other rule fails the
# same way again (a corrupt archive, bad settings), so the profiles' `retries` skip them.
RETRIED_RULES = frozenset({"download", "train_phase1", "train_phase2"})
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
    to them changes nothing.)"""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _forwarding(signal.getsignal(sig)))


def _forwarding(previous):
    def handler(signum, frame):
        for proc in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):  # gone meanwhile
                if proc.name() not in SHELLS:
                    proc.send_signal(signum)
        if callable(previous):
            previous(signum, frame)
    return handler
