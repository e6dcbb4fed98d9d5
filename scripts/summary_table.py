"""A run's evaluation summary as the report's table: per rock type, split and method, each
metric's mean ± std over the images, and n.

python scripts/summary_table.py --summary summary.csv --run demo --html summary.html
"""

from __future__ import annotations

from rocksr.report import read_summary, summary_page, write
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--summary", required=True, help="summary.csv of the evaluate step")
    ap.add_argument("--run", required=True, help="the run's name, for the page's title")
    ap.add_argument("--html", required=True, help="the page (HTML) to write")
    args = cli.parse(ap, argv)
    write(summary_page(read_summary(args.summary), args.run), args.html)


if __name__ == "__main__":
    cli.run(main)
