"""Rock-metrics figure (3D runs): the errors of SR against HR in porosity, specific surface
area, Euler characteristic, two-point correlation and mean pore size, per rock type and
method, on the test split (or the last evaluated one).

python scripts/rock_metrics_figure.py --summary summary.csv --settings '{"dpi": 150}'
    --png rock_metrics.png --pdf rock_metrics.pdf
    [--html rock_metrics.html --caption report/rock_metrics.rst]
"""

from __future__ import annotations

import pandas as pd

from rocksr.figures import rock_metrics_figure, save
from rocksr.report import page_arguments, write_figure_page
from rocksr.settings import FigureSettings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.figure_parser(__doc__)
    ap.add_argument("--summary", required=True, help="summary.csv of a 3D run's evaluate step")
    page_arguments(ap)
    args = cli.parse(ap, argv)
    settings = cli.settings(args, FigureSettings, "figures")
    try:
        fig = rock_metrics_figure(pd.read_csv(args.summary))
    except ValueError as exc:
        raise ValueError(f"{args.summary}: {exc}") from None
    save(fig, args.png, args.pdf, settings.dpi)
    write_figure_page(args)


if __name__ == "__main__":
    cli.run(main)
