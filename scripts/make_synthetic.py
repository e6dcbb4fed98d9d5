"""Write a synthetic DeepRockSR-2D.zip, or with --dim 3 DeepRockSR-3D.zip (same layout,
smaller), for offline runs and tests.

Example:
    python scripts/make_synthetic.py --out results/synthetic/DeepRockSR-2D.zip \\
        --settings '{"hr_size": 96, "seed": 0, "counts": {"train": 24, "valid": 6, "test": 6}}'
"""

from __future__ import annotations

from rocksr.data.synthetic import write_archive
from rocksr.settings import Synthetic3DSettings, SyntheticSettings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__, "{hr_size, seed, counts: {train, valid, test}} (config.synthetic, "
                             "or synthetic_3d)")
    ap.add_argument("--out", required=True, help="zip to write")
    ap.add_argument("--dim", type=int, choices=(2, 3), default=2,
                    help="2: PNG slices (DeepRockSR-2D); 3: .mat volumes (DeepRockSR-3D)")
    args = cli.parse(ap, argv)
    cls, where = ((SyntheticSettings, "synthetic") if args.dim == 2
                  else (Synthetic3DSettings, "synthetic_3d"))
    write_archive(args.out, cli.settings(args, cls, where), dim=args.dim)


if __name__ == "__main__":
    cli.run(main)
