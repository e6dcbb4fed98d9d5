"""Write a synthetic DeepRockSR-2D.zip (same layout, smaller) for offline runs and tests.

Example:
    python scripts/make_synthetic.py --out results/synthetic/DeepRockSR-2D.zip \\
        --settings '{"hr_size": 96, "seed": 0, "counts": {"train": 24, "valid": 6, "test": 6}}'
"""

from __future__ import annotations

from rocksr.data.synthetic import write_archive
from rocksr.settings import SyntheticSettings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__, "{hr_size, seed, counts: {train, valid, test}} (config.synthetic)")
    ap.add_argument("--out", required=True, help="zip to write")
    args = cli.parse(ap, argv)
    write_archive(args.out, cli.settings(args, SyntheticSettings, "synthetic"))


if __name__ == "__main__":
    cli.run(main)
