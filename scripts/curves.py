"""Training curves of both phases from their metrics CSVs; every phase-2 warning is logged
and listed under the figure on its report page.

python scripts/curves.py --phase1 phase1/metrics.csv --phase2 phase2/metrics.csv
    --settings '{"dpi": 150}' --png curves.png --pdf curves.pdf
    [--html curves.html --caption report/curves.rst]
"""

from __future__ import annotations

import logging

import pandas as pd

from rocksr.figures import curves, save, warnings_lines
from rocksr.report import listing, page_arguments, write_figure_page
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
    page_arguments(ap)
    ap.add_argument("--phase1", required=True, help="phase-1 metrics.csv")
    ap.add_argument("--phase2", required=True, help="phase-2 metrics.csv")
    args = cli.parse(ap, argv)
    settings = cli.settings(args, FigureSettings, "figures")
    metrics = {1: read_metrics(args.phase1), 2: read_metrics(args.phase2)}
    save(curves(metrics), args.png, args.pdf, settings.dpi)
    warned = warnings_lines(metrics[2])
    for line in warned:
        logging.getLogger(__name__).warning("phase 2, %s", line)
    write_figure_page(args, listing(f"Phase-2 warnings ({len(warned)} epochs)", warned))


if __name__ == "__main__":
    cli.run(main)
