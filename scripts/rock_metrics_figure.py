"""Rock-metrics figure (3D runs): the errors of SR against HR in porosity, specific surface
area, Euler characteristic, two-point correlation and mean pore size, per rock type and
method, on the test split (or the last evaluated one).

python scripts/rock_metrics_figure.py --summary summary.csv --settings '{"dpi": 150}'
    --png rock_metrics.png --pdf rock_metrics.pdf
    [--html rock_metrics.html --caption report/rock_metrics.rst]
"""

from __future__ import annotations

from rocksr.figures import rock_metrics_figure
from rocksr.report import figure_from_tables, page_arguments
from rocksr.settings import FigureSettings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.figure_parser(__doc__)
    ap.add_argument("--summary", required=True, help="summary.csv of a 3D run's evaluate step")
    page_arguments(ap)
    args = cli.parse(ap, argv)
    settings = cli.settings(args, FigureSettings, "figures")
    figure_from_tables(args, rock_metrics_figure, [args.summary], settings.dpi)


if __name__ == "__main__":
    cli.run(main)
