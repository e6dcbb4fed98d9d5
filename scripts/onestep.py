"""One-step equivalence of the training step's variants: graphed and compiled against eager.

Each variant takes one step at a time from the eager reference's exact state, then all run
freely for a few iterations next to a copy nudged by 2^-9 (rocksr/bench/onestep.py says what
is compared and the verdicts' tolerances). Prints a verdict table per case (phase,
precision, mode) and exits 3 when a verdict is FAIL. Model and batch sizes are the
benchmark's presets (random VGG weights: none are downloaded). Examples:
    python scripts/onestep.py --device cpu --preset tiny --precision fp32
    python scripts/onestep.py --preset paper --precision fp32 bf16 --json onestep.json
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from pathlib import Path

import torch

from rocksr.bench import onestep
from rocksr.bench.throughput import PRESETS, setup_from_config
from rocksr.device import DeviceError, pick_device
from rocksr.workflow import cli

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("onestep")


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--preset", choices=PRESETS, default="tiny",
                    help="model and batch sizes: rocksr/bench/throughput.py's presets")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--config", default=str(ROOT / "config.yaml"))
    ap.add_argument("--precision", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"],
                    help="fp32 runs without TF32; bf16 is CUDA only (skipped on a CPU)")
    ap.add_argument("--phases", nargs="+", type=int, choices=[1, 2], default=[2, 1])
    ap.add_argument("--modes", nargs="+", choices=["default", "deterministic"],
                    default=["default"], help="deterministic: cuDNN, cuBLAS and Inductor")
    ap.add_argument("--variants", nargs="+", choices=list(onestep.VARIANTS),
                    help="default: every one the device can run (eager always first)")
    ap.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                    help="the compiled variants (auto: on CUDA only)")
    ap.add_argument("--steps", type=int, default=4, help="one-step comparisons")
    ap.add_argument("--free-steps", type=int, default=6, help="free-run iterations")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    ap.add_argument("--json", help="write every case's figures here as JSON")
    args = cli.parse(ap, argv)
    if "deterministic" in args.modes:  # read when cuBLAS starts: before any CUDA work
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device, key="--device")
    compile_models = args.compile == "on" or (args.compile == "auto" and device.type == "cuda")
    setup = setup_from_config(args.config, args.preset)
    results, failed = [], []
    for mode in args.modes:
        for precision in args.precision:
            if precision == "bf16" and device.type != "cuda":
                log.info("bf16: CUDA only, skipped on %s", device)
                continue
            for phase in args.phases:
                start = time.perf_counter()
                s = dataclasses.replace(setup.phases[phase], precision=precision)
                names = args.variants or onestep.available(device, precision, compile_models)
                names = ["eager", *(n for n in names if n != "eager")]
                with onestep.numerics(device, precision, mode == "deterministic"):
                    variants = [onestep.build_variant(n, s, device, args.seed) for n in names]
                    case = onestep.run_case(s, device, variants, args.steps, args.free_steps,
                                            args.seed)
                del variants
                case.update(mode=mode, preset=args.preset,
                            seconds=round(time.perf_counter() - start, 1))
                results.append(case)
                print(onestep.table(case) + f"\n({case['seconds']} s)\n", flush=True)
                failed += [f"phase {phase} {case['precision']} {mode}: {name}"
                           for name, v in case["variants"].items() if v["verdict"] == "FAIL"]
                if args.json:
                    onestep.save(results, args.json)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    print("verdict: " + ("FAIL: " + ", ".join(failed) if failed else
                         "every judged variant PASS" if results else "no case ran"), flush=True)
    if failed:
        sys.exit(3)


if __name__ == "__main__":
    cli.run(main, errors=(DeviceError,))
