"""Benchmark line: peak memory and time of tiled `predict` on one large slice.

python scripts/bench_predict.py                       # 2000x2000 at x4, the paper's model, CPU
python scripts/bench_predict.py --blocks 1 --filters 8 --device cuda
"""

from __future__ import annotations

import argparse

import torch

from rocksr import cli
from rocksr.bench_predict import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=2000, help="LR slice side in pixels")
    ap.add_argument("--scale", type=int, default=4, choices=(2, 4))
    ap.add_argument("--blocks", type=int, default=16)
    ap.add_argument("--filters", type=int, default=64)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=40)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    cli.setup_logging()
    torch.set_num_threads(args.threads)
    print(run(args.size, args.scale, args.blocks, args.filters, args.tile, args.overlap,
              torch.device(args.device)), flush=True)


if __name__ == "__main__":
    cli.run(main)
