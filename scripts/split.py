"""Pair LR/HR images in DeepRockSR-2D.zip and pack them per rock type and split (rule `split`).

Reads members straight from the zip; writes the packs folder (rocksr/data/packs.py) and a
manifest CSV. Example:
    python scripts/split.py --archive DeepRockSR-2D.zip --data x4_unknown \\
        --rock-types carbonate coal sandstone --resplit null \\
        --manifest results/data/x4_unknown/manifest.csv --packs results/data/x4_unknown/packs
"""

from __future__ import annotations

import argparse
import re

from rocksr import ROCK_TYPES, cli
from rocksr.config import parse_data_key, parse_settings
from rocksr.data.split import split_archive


def data_key(text: str) -> tuple[int, str]:
    if not re.fullmatch(r"x[24]_(default|unknown)", text):
        raise argparse.ArgumentTypeError(f"expected x2|x4 _ default|unknown, e.g. x4_unknown, got {text!r}")
    return parse_data_key(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", required=True, help="DeepRockSR-2D.zip (real or synthetic)")
    parser.add_argument("--data", required=True, type=data_key, help="scale and degradation, e.g. x4_unknown")
    parser.add_argument("--rock-types", nargs="+", required=True, choices=ROCK_TYPES)
    parser.add_argument("--resplit", default="null",
                        help="null (the dataset's own splits) or JSON {ratios: {train, valid, test}, seed}")
    parser.add_argument("--manifest", required=True, help="CSV listing every pair")
    parser.add_argument("--packs", required=True, help="folder of packed uint8 arrays")
    parser.add_argument("--workers", type=int, default=None, help="decoding threads (default: up to 4)")
    args = parser.parse_args(argv)
    cli.setup_logging()
    scale, degradation = args.data
    resplit = None if args.resplit.strip() == "null" else parse_settings(args.resplit)
    split_archive(args.archive, args.packs, args.manifest, args.rock_types, scale, degradation,
                  resplit=resplit, workers=args.workers)


if __name__ == "__main__":
    cli.run(main)
