"""Texture figure: radial power spectra of HR and each method per rock type, and the texture
metrics (upper-band spectrum error, two-point correlation error, specific perimeter error),
on the test split (or the last evaluated one).

python scripts/texture_figure.py --spectra spectra.csv --summary summary.csv
    --settings '{"dpi": 150}' --png texture.png --pdf texture.pdf
    [--html texture.html --caption report/texture.rst]
"""

from __future__ import annotations

from rocksr.figures import texture_figure
from rocksr.report import figure_from_tables, page_arguments
from rocksr.settings import FigureSettings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.figure_parser(__doc__)
    page_arguments(ap)
    ap.add_argument("--spectra", required=True, help="spectra.csv of the evaluate step")
    ap.add_argument("--summary", required=True, help="summary.csv of the evaluate step")
    args = cli.parse(ap, argv)
    settings = cli.settings(args, FigureSettings, "figures")
    figure_from_tables(args, texture_figure, [args.spectra, args.summary], settings.dpi)


if __name__ == "__main__":
    cli.run(main)
