"""The runs side by side as a figure: per rock type, PSNR and the upper-band spectrum error
of every run and method, as differences to the first run (drawn for two runs or more).

python scripts/compare_figure.py --table compare/summary.csv
    --settings '{"dpi": 150, "runs": [...]}' (the compare step's settings: its dpi)
    --png compare.png --pdf compare.pdf [--html compare.html --caption report/compare.rst]
"""

from __future__ import annotations

from rocksr.figures import compare_figure
from rocksr.report import figure_from_tables, page_arguments
from rocksr.settings import CompareSettings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.figure_parser(__doc__, "the compare step's (config.compare_settings): its dpi")
    page_arguments(ap)
    ap.add_argument("--table", required=True, help="the comparison table of compare.py")
    args = cli.parse(ap, argv)
    settings = cli.settings(args, CompareSettings, "compare")
    figure_from_tables(args, compare_figure, [args.table], settings.dpi)


if __name__ == "__main__":
    cli.run(main)
