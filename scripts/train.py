"""Train one phase of EDSR / EDSRGAN from the split step's packs (rules train_phase1/2).

The phase and every hyperparameter come from --settings (JSON/YAML, or @file), built by
rocksr.workflow.config.phase_settings. Resumes from <--checkpoints>/checkpoint.pt when present.
Exit status: 0 done; 1 bad input or a NaN/inf loss; 143 (SIGTERM) or 130 (SIGINT, Ctrl-C)
stopped after saving a checkpoint (so Snakemake's --retries, or the next run, resumes).
The phase's checkpoint is removed only once the outputs are written, just before exiting.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from tqdm.contrib.logging import logging_redirect_tqdm

from rocksr.device import DeviceError
from rocksr.nets.vgg import VGGWeightsError
from rocksr.nets.vgg_files import read_record
from rocksr.settings import PhaseSettings
from rocksr.train import checkpoint
from rocksr.train.loop import (
    STOP_SIGNALS,
    NonFiniteError,
    TrainingInterrupted,
    stop_signals,
    train,
)
from rocksr.workflow import cli, job


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser(__doc__, "the phase settings (config.phase_settings)")
    job.arguments(ap)
    ap.add_argument("--packs", required=True, help="packs folder of the split step")
    ap.add_argument("--checkpoints", required=True,
                    help="folder for resumable checkpoints; removed when the phase is "
                         "done, and its parent folder too if that is left empty")
    ap.add_argument("--init", help="phase-1 generator to start phase 2 from")
    ap.add_argument("--generator", required=True, help="output: trained generator (.pt)")
    ap.add_argument("--discriminator", help="output (phase 2): trained discriminator (.pt)")
    ap.add_argument("--metrics", required=True, help="output: per-epoch metrics CSV")
    ap.add_argument("--vgg-record", help="phase 2: the run's VGG record (rule vgg_record); "
                                         "default: the settings' vgg_weights")
    args = cli.parse(ap, argv)  # the progress bar stays on stderr, not in --log
    log = logging.getLogger("rocksr.train.loop")
    try:
        settings = cli.settings(args, PhaseSettings, "settings")
        device = job.start(args, settings.device, "training.device")
        vgg = read_record(args.vgg_record) if args.vgg_record else None
        with logging_redirect_tqdm(), stop_signals() as stop:
            train(settings, args.packs, args.checkpoints, args.generator, args.metrics,
                  init=args.init, discriminator_out=args.discriminator, stop=stop,
                  device=device, vgg=vgg)
            checkpoint.remove(args.checkpoints)
    except TrainingInterrupted as exc:
        log.warning("%s", exc)
        return 128 + exc.signum
    except (*cli.USER_ERRORS, VGGWeightsError, NonFiniteError, DeviceError) as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    # A stop signal outside stop_signals() is ignored, not fatal: once the checkpoint is
    # removed, a SIGTERM must not turn the finished job into a failed one (Snakemake would
    # delete its outputs). For the same reason exit at once, without the interpreter's slow
    # teardown (about a second with torch), in which a SIGKILL would do the same.
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    status = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
