"""Runs side by side: one table of every run's evaluation summary, the settings each run was
trained and scored with, and a figure of PSNR and the texture error per run and rock type.

python scripts/compare.py --summaries results/a/evaluation/summary.csv results/b/...
    --settings '{"dpi": 150, "runs": [{"name": "a", "run": "a", "seed": 0, "scale": 4,
    "degradation": "unknown", "settings": {...}}, ...]}'
    --table compare/summary.csv --runs compare/runs.yaml --png compare.png --pdf compare.pdf
"""

from __future__ import annotations

import pandas as pd
import yaml

from rocksr.eval.compare import comparison_table
from rocksr.figures import compare_figure, save
from rocksr.fileio import atomic_path, write_csv
from rocksr.settings import CompareSettings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.figure_parser(__doc__, '{"dpi": N, "runs": [run descriptions, in the order of '
                                    '--summaries]} (config.compare_settings)')
    ap.add_argument("--summaries", nargs="+", required=True,
                    help="each run's evaluation summary.csv, in the order of the settings' runs")
    ap.add_argument("--table", required=True, help="the comparison table (CSV) to write")
    ap.add_argument("--runs", required=True, help="the runs' settings in effect (YAML) to write")
    args = cli.parse(ap, argv)
    settings = cli.settings(args, CompareSettings, "compare")
    summaries = []
    for path in args.summaries:
        summaries.append(pd.read_csv(path))
        if summaries[-1].empty:
            raise ValueError(f"{path}: no rows")
    table = comparison_table(settings.runs, summaries)
    try:
        fig = compare_figure(table)
    except ValueError as exc:
        raise ValueError(f"{', '.join(args.summaries)}: {exc}") from None
    write_csv(table, args.table)
    with atomic_path(args.runs) as tmp:
        tmp.write_text(yaml.safe_dump({r["name"]: r for r in settings.runs}, sort_keys=False))
    save(fig, args.png, args.pdf, settings.dpi)


if __name__ == "__main__":
    cli.run(main)
