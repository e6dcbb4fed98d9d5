"""The compute steps' shared command line (scripts/train.py, evaluate.py, and predict's
rocksr/infer/command.py).

Each reads the same way:

    ap = cli.parser(__doc__, "what --settings holds")    # --settings, --log
    job.arguments(ap)                                     # --threads, --gpus
    ap.add_argument(...)
    args = cli.parse(ap, argv)
    settings = cli.settings(args, StepSettings, "config.key")
    device = job.start(args, settings.device, "config.key.device")

Not in cli.py, which every step imports: the data steps' environment has no torch, and
rocksr/device.py would become an input of every rule (rocksr/workflow/codedeps.py).
"""

from __future__ import annotations

import argparse

import torch

from rocksr.device import pick_device


def arguments(ap: argparse.ArgumentParser) -> None:
    """Add --threads and --gpus (the rule's threads and gpu resource) to cli.parser()'s
    parser."""
    ap.add_argument("--threads", type=int,
                    help="CPU threads for torch (default: torch's, one per core)")
    ap.add_argument("--gpus", type=int, default=0,
                    help="GPUs the job holds (the rule's gpu resource): then CUDA must work")


def start(args: argparse.Namespace, device: str, key: str) -> torch.device:
    """Before any work: torch's CPU threads set to --threads (when given), and the device
    picked for a job holding --gpus GPUs (rocksr.device.pick_device); `device` is the
    setting `key`."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return pick_device(device, args.gpus, key=key)
