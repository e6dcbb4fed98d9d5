"""Benchmark lines: streaming predict on a uint16 TIFF stack against whole-stack loading,
peak memory and throughput at several stack depths (rocksr/bench/predict_memory.py).

python scripts/bench_predict.py                      # 1000x1000 slices, 16 and 64 of them, CPU
python scripts/bench_predict.py --device cuda --size 1000 --slices 16 64
python scripts/bench_predict.py --dim 3 --scale 2 --size 64 --slices 32 128 --tile 32 --overlap 8
"""

from __future__ import annotations

import torch

from rocksr.bench.predict_memory import run
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--size", type=int, default=1000, help="LR slice side in pixels")
    ap.add_argument("--slices", type=int, nargs="+", default=[16, 64],
                    help="stack depths to measure")
    ap.add_argument("--scale", type=int, default=4, choices=(2, 4))
    ap.add_argument("--blocks", type=int, default=1, help="generator blocks (a small model)")
    ap.add_argument("--filters", type=int, default=8)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=40)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--dim", type=int, default=2, choices=(2, 3),
                    help="a 2D generator (in-plane) or a 3D one (isotropic; use a small --tile)")
    args = cli.parse(ap, argv)
    for line in run(args.size, args.slices, args.scale, args.blocks, args.filters, args.tile,
                    args.overlap, args.device, args.threads, args.dim):
        print(line, flush=True)  # the benchmark lines are the output (stdout), not a status


if __name__ == "__main__":
    cli.run(main)
