"""Pair LR/HR images in DeepRockSR-2D.zip (volumes in DeepRockSR-3D.zip, settings' dim 3) and
pack them per rock type and split (rule `split`).

Reads members straight from the zip; writes the packs folder (rocksr/data/packs.py) and a
manifest CSV. Example:
    python scripts/split.py --archive DeepRockSR-2D.zip \\
        --settings '{"scale": 4, "degradation": "unknown",
                     "rock_types": ["carbonate", "coal", "sandstone"], "resplit": null}' \\
        --manifest results/data/x4_unknown/manifest.csv --packs results/data/x4_unknown/packs
"""

from __future__ import annotations

from rocksr.data.split import split_archive
from rocksr.settings import DataSettings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__, "scale, degradation, dim, rock_types and resplit "
                             "(config.data_settings)")
    ap.add_argument("--archive", required=True,
                    help="DeepRockSR-2D.zip, or -3D.zip for dim 3 (real or synthetic)")
    ap.add_argument("--manifest", required=True, help="CSV listing every pair")
    ap.add_argument("--packs", required=True, help="folder of packed uint8 arrays")
    ap.add_argument("--workers", type=int, default=None, help="decoding threads (default: up to 4)")
    args = cli.parse(ap, argv)
    s = cli.settings(args, DataSettings, "dataset")
    split_archive(args.archive, args.packs, args.manifest, s.rock_types, s.scale, s.degradation,
                  resplit=s.resplit and s.resplit.to_dict(), workers=args.workers, dim=s.dim)


if __name__ == "__main__":
    cli.run(main)
