"""Download DeepRockSR-2D.zip (or -3D) from the Digital Porous Media Portal (rule `download`).

Resumable: an interrupted run leaves `<out>.part`, which the next run continues.
Example:
    python scripts/download.py --out results/download/DeepRockSR-2D.zip \\
        --api "$API" \\
        --path "2D Dataset/DeepRock-SR-2D/DeepRockSR-2D.zip"
with API the portal's prefix, config.yaml's dataset.portal.api.
"""

from __future__ import annotations

from rocksr.data.download import DownloadError, download
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--out", required=True, help="where the archive goes (<out>.sha256 beside it)")
    ap.add_argument("--api", required=True, help="portal API prefix for one-time download links")
    ap.add_argument("--path", help="path of the archive within the project; none: not known, "
                                   "stop and say where to get the file")
    ap.add_argument("--key", default="archive",
                    help="the dataset key that names a local copy (archive, archive_3d)")
    ap.add_argument("--timeout", type=float, default=60,
                    help="seconds without data before retrying")
    ap.add_argument("--sha256", default="",
                    help="the archive's sha256 (dataset.sha256): another stops; empty: any")
    args = cli.parse(ap, argv)
    download(args.out, args.api, args.path, timeout=args.timeout, sha256=args.sha256 or None,
             key=args.key)


if __name__ == "__main__":
    cli.run(main, errors=(DownloadError,))
