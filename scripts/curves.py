"""Training curves of both phases from their metrics CSVs.

python scripts/curves.py --phase1 phase1/metrics.csv --phase2 phase2/metrics.csv
    --settings '{"dpi": 150}' --png curves.png --pdf curves.pdf
"""

from __future__ import annotations

import pandas as pd

from rocksr.figures import curves, save
from rocksr.settings import FigureSettings
from rocksr.workflow import cli


def read_metrics(path: str) -> pd.DataFrame:
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: empty metrics file") from None
    if "iteration" not in table:
        raise ValueError(f"{path}: no 'iteration' column")
    return table


def main(argv: list[str] | None = None) -> None:
    ap = cli.figure_parser(__doc__)
    ap.add_argument("--phase1", required=True, help="phase-1 metrics.csv")
    ap.add_argument("--phase2", required=True, help="phase-2 metrics.csv")
    args = cli.parse(ap, argv)
    settings = cli.settings(args, FigureSettings, "figures")
    metrics = {1: read_metrics(args.phase1), 2: read_metrics(args.phase2)}
    save(curves(metrics), args.png, args.pdf, settings.dpi)


if __name__ == "__main__":
    cli.run(main)
