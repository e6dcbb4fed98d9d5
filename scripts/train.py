"""Train one phase of EDSR / EDSRGAN from the split step's packs (rules train_phase1/2).

The phase and every hyperparameter come from --settings and --runtime-settings (JSON/YAML,
or @file; merged), built by rocksr.workflow.config.phase_params. Resumes from
<--checkpoints>/checkpoint.pt when present. Exit status: 0 done; 1 bad input, a NaN/inf loss
or a full disk; 143 (SIGTERM), 130 (SIGINT, Ctrl-C) or 129 (SIGHUP, a closed terminal)
stopped after saving a checkpoint (so Snakemake's --retries, or the next run, resumes).
The final checkpoint stays after the outputs are written: the workflow deletes it once it
has accepted them (rocksr.workflow.hooks), so a job killed at any point, even after its
last line, is rerun without training again. One process at a time trains a phase: another
(a job that outlived its Snakemake) is waited for, and its checkpoint resumed.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from rocksr.device import DeviceError
from rocksr.fileio import exclusive
from rocksr.nets.vgg import VGGWeightsError
from rocksr.nets.vgg_files import read_record
from rocksr.settings import PhaseSettings
from rocksr.train.loop import (
    STOP_SIGNALS,
    NonFiniteError,
    TrainingInterrupted,
    stop_signals,
    train,
)
from rocksr.workflow import cli, job

log = logging.getLogger("rocksr.train.loop")


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser(__doc__, "what the weights depend on (config.phase_params)")
    job.arguments(ap)
    ap.add_argument("--runtime-settings", default="{}",
                    help="the other settings (checkpoint interval, validation subset, ...), "
                         "merged into --settings: JSON/YAML or @file")
    ap.add_argument("--packs", required=True, help="packs folder of the split step")
    ap.add_argument("--checkpoints", required=True,
                    help="folder for resumable checkpoints (kept when the phase is done)")
    ap.add_argument("--init", help="phase-1 generator to start phase 2 from")
    ap.add_argument("--generator", required=True, help="output: trained generator (.pt)")
    ap.add_argument("--discriminator", help="output (phase 2): trained discriminator (.pt)")
    ap.add_argument("--metrics", required=True, help="output: per-epoch metrics CSV")
    ap.add_argument("--vgg-record", help="phase 2: the run's VGG record (rule vgg_record); "
                                         "default: the settings' vgg_weights")
    args = cli.parse(ap, argv)  # the progress bar stays on stderr, not in --log
    try:
        settings = cli.settings(args, PhaseSettings, "settings", args.runtime_settings)
        vgg = read_record(args.vgg_record) if args.vgg_record else None
        # The phase's lock before the GPU: a second job waits for the first (which may hold
        # the only GPU) instead of failing for want of one.
        with logging_redirect_tqdm(), stop_signals() as stop, \
                exclusive(Path(args.checkpoints) / "lock", waiting(args.checkpoints, stop)):
            device = job.start(args, settings.device, "training.device")
            train(settings, args.packs, args.checkpoints, args.generator, args.metrics,
                  init=args.init, discriminator_out=args.discriminator, stop=stop,
                  device=device, vgg=vgg)
    except TrainingInterrupted as exc:
        log.warning("%s", exc)
        return 128 + exc.signum
    except (*cli.USER_ERRORS, VGGWeightsError, NonFiniteError, DeviceError) as exc:
        log.error("%s", exc)
        return 1
    return 0


def waiting(folder: str, stop: list[int]) -> Callable[[str], None]:
    """While another process trains this phase: say so once; stop on a stop signal."""
    said = []

    def wait(holder: str) -> None:
        if stop:
            raise TrainingInterrupted(f"{signal.Signals(stop[0]).name}: stopped while waiting "
                                      f"for process {holder}", stop[0])
        if not said:
            log.warning("process %s is training this phase into %s (a job that outlived its "
                        "Snakemake?): waiting for it to end, then resuming from its checkpoint",
                        holder, folder)
            said.append(holder)
    return wait


if __name__ == "__main__":
    # A stop signal outside stop_signals() is ignored, not fatal: a finished job must not
    # turn into a failed one (Snakemake would delete its outputs, and the rerun write them
    # again). For the same reason exit at once, without the interpreter's slow teardown
    # (about a second with torch).
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    status = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
