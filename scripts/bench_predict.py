"""Benchmark line: peak memory and time of tiled `predict` on one large slice.

python scripts/bench_predict.py                       # 2000x2000 at x4, the paper's model, CPU
python scripts/bench_predict.py --blocks 1 --filters 8 --device cuda
"""

from __future__ import annotations

import torch

from rocksr.bench.predict_memory import run
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--size", type=int, default=2000, help="LR slice side in pixels")
    ap.add_argument("--scale", type=int, default=4, choices=(2, 4))
    ap.add_argument("--blocks", type=int, default=16)
    ap.add_argument("--filters", type=int, default=64)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=40)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = cli.parse(ap, argv)
    torch.set_num_threads(args.threads)
    line = run(args.size, args.scale, args.blocks, args.filters, args.tile, args.overlap,
               torch.device(args.device))
    print(line, flush=True)  # the benchmark line is the output (stdout), not a status


if __name__ == "__main__":
    cli.run(main)
