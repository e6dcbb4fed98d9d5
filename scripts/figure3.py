"""Figure 3: PSNR per rock type and method (valid and test), with the SRCNN gain over bicubic.

python scripts/figure3.py --summary summary.csv --settings '{"dpi": 150}' --png f3.png --pdf f3.pdf
    [--html f3.html --caption report/figure3.rst]
"""

from __future__ import annotations

from rocksr.figures import figure3
from rocksr.report import figure_from_tables, page_arguments
from rocksr.settings import FigureSettings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.figure_parser(__doc__)
    page_arguments(ap)
    ap.add_argument("--summary", required=True, help="summary.csv of the evaluate step")
    args = cli.parse(ap, argv)
    settings = cli.settings(args, FigureSettings, "figures")
    figure_from_tables(args, figure3, [args.summary], settings.dpi)


if __name__ == "__main__":
    cli.run(main)
