"""The pages of the Snakemake report (`--report`): the results as HTML tables, and each figure
with its caption under it. Every page is self-contained (styles inline, the PNG as a data
URI), so the single-file report shows it without downloading anything."""

from __future__ import annotations

import argparse
import base64
import html
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from rocksr.figures import LABELS, SPLIT_ORDER, method_order, save
from rocksr.fileio import atomic_path
from rocksr.infer.inference import load_generator

# Scoped to .rocksr, as a table is also included in the report's landing page.
STYLE = """<style>
.rocksr { font: 14px/1.45 system-ui, sans-serif; color: #1e293b; }
.rocksr table { border-collapse: collapse; margin: 0.5em 0 1em; }
.rocksr th, .rocksr td { padding: 0.2em 0.6em; border-bottom: 1px solid #e2e8f0;
  text-align: right; white-space: nowrap; }
.rocksr th { background: #f1f5f9; white-space: normal; vertical-align: bottom; }
.rocksr td.key, .rocksr th.key { text-align: left; white-space: nowrap; }
.rocksr tbody tr:nth-child(even) { background: #f8fafc; }
.rocksr img { max-width: 100%; height: auto; }
.rocksr figcaption, .rocksr p { max-width: 60em; }
.rocksr pre { background: #f1f5f9; padding: 0.6em; }
</style>"""

# Two tables of (summary column without _mean/_std, heading, decimals), so that each fits a
# page's width: how close to HR the image is, and how close its texture.
ACCURACY = [("psnr", "PSNR (dB)", 2), ("ssim", "SSIM", 3), ("porosity", "porosity", 3),
            ("porosity_hr", "HR porosity", 3), ("porosity_abs_err", "porosity abs. error", 3)]
TEXTURE = [("spectrum_err_db", "upper-band spectrum error (dB)", 2),
           ("spectrum_bias_db", "upper-band spectrum bias (dB)", 2),
           ("s2_err", "two-point correlation error", 4),
           ("perimeter_rel_err", "specific perimeter rel. error", 3)]
# Key columns as the tables head them: a run is its results folder (name: the config's run,
# with -s{seed} for a seed of a list), its data the scale and degradation.
KEY_HEADINGS = {"name": "run", "seed": "seed", "data": "data", "rock_type": "rock type",
                "split": "split", "method": "method"}


def read_summary(path: str | Path) -> pd.DataFrame:
    """An evaluation summary (summary.csv) with what the tables need; else a clear error."""
    summary = pd.read_csv(path)
    missing = {"rock_type", "split", "method", "n", "psnr_mean", "psnr_std"} - set(summary)
    if missing:
        raise ValueError(f"{path}: lacks column(s): {', '.join(sorted(missing))}")
    if summary.empty:
        raise ValueError(f"{path}: no rows")
    return summary


def mean_std(mean: float, std: float | None, decimals: int) -> str:
    """'20.46 ± 0.25'; the mean alone without a spread (one image, or no std column)."""
    if mean is None or math.isnan(mean):
        return "–"
    if std is None or math.isnan(std):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def metrics_table(table: pd.DataFrame, metrics: list[tuple[str, str, int]]) -> pd.DataFrame:
    """An evaluation summary (or the runs' comparison table) as the report shows it: its key
    columns, n, then each of `metrics` it has as 'mean ± std', methods by their names."""
    if {"scale", "degradation"} <= set(table):
        table = table.assign(data=[f"x{s} {d}" for s, d in zip(table.scale, table.degradation)])
    out = table[[c for c in KEY_HEADINGS if c in table]].astype(str).rename(columns=KEY_HEADINGS)
    out["method"] = [LABELS.get(m, m) for m in table.method]
    out["n"] = table.n.astype(int).astype(str)
    for column, heading, decimals in metrics:
        if f"{column}_mean" in table:
            std = table[f"{column}_std"] if f"{column}_std" in table else [None] * len(table)
            out[heading] = [mean_std(m, s, decimals) for m, s in zip(table[f"{column}_mean"], std)]
    return out


def metrics_tables(table: pd.DataFrame) -> str:
    """Both tables of metrics_table, each under its heading."""
    return (f"<h3>PSNR, SSIM, porosity</h3>{html_table(metrics_table(table, ACCURACY))}"
            f"<h3>Texture</h3>{html_table(metrics_table(table, TEXTURE))}")


def psnr_table(table: pd.DataFrame) -> pd.DataFrame:
    """PSNR at a glance: per run (results folder) and rock type, each method's mean ± std over
    the images of the test split (or the last evaluated one), and n."""
    split = [s for s in SPLIT_ORDER if s in set(table.split)][-1]
    part = table[table.split == split]
    methods = method_order(part.method)
    rows = []
    for (name, rock), group in part.groupby(["name", "rock_type"], sort=False):
        by_method = group.set_index("method")
        rows.append({"run": name, "rock type": rock, **{
            LABELS.get(m, m): mean_std(by_method.psnr_mean[m], by_method.psnr_std[m], 2)
            if m in by_method.index else "–" for m in methods}, "n": str(int(group.n.max()))})
    return pd.DataFrame(rows).assign(split=split)


def html_table(frame: pd.DataFrame) -> str:
    """A table of strings; its key columns (run, rock type, ...) left-aligned."""
    keys = set(KEY_HEADINGS.values())
    cls = [' class="key"' if c in keys else "" for c in frame.columns]
    head = "".join(f"<th{k}>{html.escape(c)}</th>" for k, c in zip(cls, frame.columns))
    body = "".join("<tr>" + "".join(f"<td{k}>{html.escape(str(v))}</td>"
                                    for k, v in zip(cls, row)) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def fragment(body: str) -> str:
    """HTML to include in another page (the report's landing page), styles with it."""
    return f'{STYLE}<div class="rocksr">{body}</div>\n'


def page(title: str, body: str) -> str:
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>{STYLE}</head>\n"
            f'<body class="rocksr">{body}</body></html>\n')


def paragraphs(text: str) -> str:
    """A caption's text (report/*.rst: plain paragraphs) as HTML paragraphs."""
    return "".join(f"<p>{html.escape(' '.join(p.split()))}</p>"
                   for p in text.split("\n\n") if p.strip())


def summary_page(summary: pd.DataFrame, run: str) -> str:
    return page(f"Evaluation summary: {run}", (
        f"<h2>Evaluation summary of run {html.escape(run)}</h2>"
        "<p>Per rock type, split and method: mean ± std over the images (n) of each metric "
        "(SSIM: the mean). Definitions: the README, \"Conventions\".</p>"
        + metrics_tables(summary)))


def comparison_page(table: pd.DataFrame, settings_yaml: str) -> str:
    glance = psnr_table(table)
    return page("Runs side by side", (
        f"<h2>PSNR (dB) on the {glance.split.iloc[0]} split</h2>"
        + html_table(glance.drop(columns="split"))
        + "<h2>Every run's summary</h2><p>Per run (results folder), rock type, split and "
        "method: mean ± std over the images, or volumes (n) of each metric (SSIM: the "
        "mean).</p>"
        + metrics_tables(table)
        + "<h2>Settings in effect per run</h2><pre>" + html.escape(settings_yaml) + "</pre>"))


def psnr_fragment(table: pd.DataFrame) -> str:
    glance = psnr_table(table)
    return fragment(f"<p>PSNR (dB) on the {glance.split.iloc[0]} split, mean ± std over the "
                    "n images (volumes, for a 3D run) per rock type:</p>"
                    + html_table(glance.drop(columns="split")))


def figure_page(png: str | Path, caption: str | Path | None, notes: str = "") -> str:
    """The PNG, its caption under it (the report's caption file), then any `notes` (HTML)."""
    data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
    text = paragraphs(Path(caption).read_text()) if caption else ""
    return page(Path(png).stem, f'<figure><img src="data:image/png;base64,{data}" '
                                f'alt="{html.escape(Path(png).name)}">'
                                f"<figcaption>{text}</figcaption></figure>{notes}")


def write(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def page_arguments(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A figure script's optional report page: --html, the PNG with its --caption under it.
    (Here, not in rocksr.workflow.cli: every step imports cli, and editing it would rerun
    training.)"""
    ap.add_argument("--html", help="also write the figure's report page (HTML) here")
    ap.add_argument("--caption", help="the caption shown under the figure on its page "
                                      "(a report/*.rst file: plain paragraphs)")
    return ap


def write_figure_page(args: argparse.Namespace, notes: str = "") -> None:
    """A figure script's report page (--html), when asked for: its --png and --caption."""
    if args.html:
        write(figure_page(args.png, args.caption, notes), args.html)


def model_arguments(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A figure script's arguments for a figure drawn from a data product's packs and the
    run's two generators, and its optional report page."""
    page_arguments(ap)
    ap.add_argument("--packs", required=True, help="packs folder of the run's data product")
    ap.add_argument("--srcnn", required=True, help="the phase-1 generator")
    ap.add_argument("--srgan", required=True, help="the phase-2 generator")
    return ap


def figure_from_models(args: argparse.Namespace, draw: Callable[..., Figure],
                       settings) -> None:
    """A figure script's body (arguments of `model_arguments`): `draw(packs, generators,
    settings)` with the run's SRCNN and SRGAN, saved as --png and --pdf, and its page."""
    generators = {"srcnn": load_generator(args.srcnn), "srgan": load_generator(args.srgan)}
    save(draw(args.packs, generators, settings), args.png, args.pdf, settings.dpi)
    write_figure_page(args)


def figure_from_tables(args: argparse.Namespace, draw: Callable[..., Figure],
                       tables: list[str], dpi: int) -> None:
    """A figure script's body: `draw` from the CSV files `tables` (an empty one, or a
    ValueError of `draw`, is an error that names them), saved as --png and --pdf at `dpi`,
    and its report page (--html)."""
    frames = [pd.read_csv(path) for path in tables]
    for path, frame in zip(tables, frames):
        if frame.empty:
            raise ValueError(f"{path}: no rows")
    try:
        fig = draw(*frames)
    except ValueError as exc:
        raise ValueError(f"{', '.join(tables)}: {exc}") from None
    save(fig, args.png, args.pdf, dpi)
    write_figure_page(args)


def listing(title: str, lines: list[str]) -> str:
    """A heading and one list item per line (e.g. every phase-2 warning), as HTML."""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f"<h3>{html.escape(title)}</h3><ul>{items}</ul>" if lines else ""
