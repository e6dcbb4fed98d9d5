"""Figure 3: PSNR per rock type and method (valid and test), with the SRCNN gain over bicubic.

python scripts/figure3.py --summary summary.csv --settings '{"dpi": 150}' --png f3.png --pdf f3.pdf
    [--html f3.html --caption report/figure3.rst]
"""

from __future__ import annotations

import pandas as pd

from rocksr.figures import figure3, save
from rocksr.report import page_arguments, write_figure_page
from rocksr.settings import FigureSettings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.figure_parser(__doc__)
    page_arguments(ap)
    ap.add_argument("--summary", required=True, help="summary.csv of the evaluate step")
    args = cli.parse(ap, argv)
    settings = cli.settings(args, FigureSettings, "figures")
    summary = pd.read_csv(args.summary)
    if summary.empty:
        raise ValueError(f"{args.summary}: no rows")
    try:
        fig = figure3(summary)
    except ValueError as exc:
        raise ValueError(f"{args.summary}: {exc}") from None
    save(fig, args.png, args.pdf, settings.dpi)
    write_figure_page(args)


if __name__ == "__main__":
    cli.run(main)
