"""Runs side by side: one table of every run's evaluation summary, the settings each run was
trained and scored with, and the report's pages of them (the figure: compare_figure.py).

python scripts/compare.py --summaries results/a/evaluation/summary.csv results/b/...
    --settings '{"dpi": 150, "runs": [{"name": "a", "run": "a", "seed": 0, "scale": 4,
    "degradation": "unknown", "settings": {...}}, ...]}'
    --table compare/summary.csv --runs compare/runs.yaml --html compare/summary.html
    --psnr compare/psnr.html
"""

from __future__ import annotations

import yaml

from rocksr.eval.compare import comparison_table
from rocksr.fileio import write_csv
from rocksr.report import comparison_page, psnr_fragment, read_summary, write
from rocksr.settings import CompareSettings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__, '{"dpi": N, "runs": [run descriptions, in the order of '
                             '--summaries]} (config.compare_settings)')
    ap.add_argument("--summaries", nargs="+", required=True,
                    help="each run's evaluation summary.csv, in the order of the settings' runs")
    ap.add_argument("--table", required=True, help="the comparison table (CSV) to write")
    ap.add_argument("--runs", required=True, help="the runs' settings in effect (YAML) to write")
    ap.add_argument("--html", required=True,
                    help="the report's page of the table and the settings (HTML) to write")
    ap.add_argument("--psnr", required=True,
                    help="PSNR per run, rock type and method (HTML, for the report's first page)")
    args = cli.parse(ap, argv)
    settings = cli.settings(args, CompareSettings, "compare")
    table = comparison_table(settings.runs, [read_summary(path) for path in args.summaries])
    runs = yaml.safe_dump({r["name"]: r for r in settings.runs}, sort_keys=False)
    write_csv(table, args.table)
    write(runs, args.runs)
    write(comparison_page(table, runs), args.html)
    write(psnr_fragment(table), args.psnr)


if __name__ == "__main__":
    cli.run(main)
