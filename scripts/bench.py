"""Benchmark (`make bench`): training and evaluation throughput, fast path vs plain recipe.

Times phase-1 and phase-2 iterations per second and evaluation images per second for the
workflow's fast path (on CUDA also as CUDA graphs; --extras: compiled, phase 2's second D
pass, fp16 VGG) and for a baseline of the plain recipe (per-sample PNG decoding in a
DataLoader, fp32, NCHW), in one process on the same synthetic images, and prints the ratios,
the achieved TFLOP/s, each variant's set-up time, on CUDA the share of time the GPU is busy
and, with the paper's settings, the projected time of the full schedule; what a phase-2
checkpoint costs, in the call or in the background; the VGG term's fp16 accuracy.
See rocksr/bench/throughput.py for what each variant does. Examples:
    python scripts/bench.py                   # paper settings and every extra on CUDA,
                                              # tiny settings and no extra on a CPU
    python scripts/bench.py --preset paper --extras compile --json bench.json
    python scripts/bench.py --stages vgg      # the VGG term in fp16: bias, activations
    python scripts/bench.py --preset paper3d --stages phase1 phase2
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import torch

from rocksr.bench.throughput import PRESETS, STAGES, report, run, save, setup_from_config
from rocksr.device import DeviceError, pick_device
from rocksr.nets.vgg import VGGWeightsError
from rocksr.workflow import cli

ROOT = Path(__file__).resolve().parents[1]
CUDA_EXTRAS = ("compile", "d-twice", "vgg16", "compile+vgg16")


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--preset", choices=["auto", *PRESETS], default="auto",
                    help="paper: config.yaml's paper run; tiny: CPU-sized; micro: the "
                         "smallest (dry runs); auto: paper on CUDA, else tiny; paper3d, "
                         "tiny3d: the same as volumes (dim 3, training_3d)")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--config", default=str(ROOT / "config.yaml"))
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per stage (median)")
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    ap.add_argument("--iters", type=int, help="timed iterations per phase and repeat")
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                    help="baseline DataLoader workers")
    ap.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    ap.add_argument("--compile", action="store_true",
                    help="also time the fast path compiled (= --extras compile)")
    ap.add_argument("--extras", nargs="*",
                    help="extra variants of the fast path: compile, d-twice (phase 2's second "
                         "D pass), vgg16 (VGG term in fp16), or several joined by + (default: "
                         f"on CUDA {' '.join(CUDA_EXTRAS)}, else none)")
    ap.add_argument("--vgg-weights", default="random",
                    help="phase 2's VGG19 weights (training.phase2.vgg_weights; default random: "
                         "speed does not depend on them, the vgg stage's activations do)")
    ap.add_argument("--json", help="write the figures as JSON here too")
    args = cli.parse(ap, argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device, key="--device")
    preset = (args.preset if args.preset != "auto"
              else "paper" if device.type == "cuda" else "tiny")
    extras = args.extras if args.extras is not None else (
        list(CUDA_EXTRAS) if device.type == "cuda" else [])
    setup = setup_from_config(args.config, preset)
    if args.iters:
        setup.iters = {1: args.iters, 2: args.iters}
    setup.phases[2] = dataclasses.replace(setup.phases[2], vgg_weights=args.vgg_weights)
    with tempfile.TemporaryDirectory(prefix="rocksr-bench-") as workdir:
        results = run(setup, Path(workdir), device, args.workers, repeats=args.repeats,
                      extras=tuple(["compile"] * args.compile + extras),
                      stages=tuple(args.stages),
                      progress=lambda results: args.json and save(results, args.json))
    print(report(results))
    if args.json:
        save(results, args.json)


if __name__ == "__main__":
    cli.run(main, errors=(DeviceError, VGGWeightsError))
