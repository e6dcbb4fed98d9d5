"""Write a synthetic DeepRockSR-2D.zip (same layout, smaller) for offline runs and tests.

Example:
    python scripts/make_synthetic.py --out results/synthetic/DeepRockSR-2D.zip \\
        --settings '{"hr_size": 96, "seed": 0, "counts": {"train": 24, "valid": 6, "test": 6}}'
"""

from __future__ import annotations

import argparse

from rocksr import cli
from rocksr.config import parse_settings
from rocksr.data.synthetic import write_archive


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="zip to write")
    parser.add_argument("--settings", required=True,
                        help="JSON/YAML {hr_size, seed, counts: {train, valid, test}}, or @file")
    args = parser.parse_args(argv)
    cli.setup_logging()
    write_archive(args.out, parse_settings(args.settings))


if __name__ == "__main__":
    cli.run(main)
