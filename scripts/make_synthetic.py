"""Write a synthetic DeepRockSR-2D.zip (same layout, smaller) for offline runs and tests.

Example:
    python scripts/make_synthetic.py --out results/synthetic/DeepRockSR-2D.zip \\
        --settings '{"hr_size": 96, "seed": 0, "counts": {"train": 24, "valid": 6, "test": 6}}'
"""

from __future__ import annotations

import argparse
import logging

from rocksr.config import ConfigError, parse_settings
from rocksr.data.synthetic import write_archive


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="zip to write")
    parser.add_argument("--settings", required=True,
                        help="JSON/YAML {hr_size, seed, counts: {train, valid, test}}, or @file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        settings = parse_settings(args.settings)
        write_archive(args.out, settings)
    except (ConfigError, ValueError) as exc:
        raise SystemExit(f"make_synthetic: {exc}") from None


if __name__ == "__main__":
    main()
