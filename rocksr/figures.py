"""Figures 2 and 3 of the paper and the training curves, drawn with matplotlib (no display);
at the end the 3D runs' figures (orthogonal slices, rock metrics).

Figures are built as standalone `matplotlib.figure.Figure` objects (Agg canvas, no pyplot
state) and written as PNG + PDF, each atomically.
"""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import EngFormatter, NullFormatter

from rocksr.data.packs import load_pack, read_index
from rocksr.eval.compare import KEYS as COMPARE_KEYS
from rocksr.eval.compare import seed_spread
from rocksr.eval.metrics import psnr
from rocksr.fileio import atomic_path
from rocksr.imaging.pixels import uint8_to_unit
from rocksr.infer.inference import postprocess, upscalers
from rocksr.nets.models import Generator
from rocksr.settings import BoxSettings, Figure2Settings, OrthosliceSettings

log = logging.getLogger(__name__)

LABELS = {"bicubic": "Bicubic", "tricubic": "Tricubic", "srcnn": "SRCNN", "srgan": "SRGAN"}
COLORS = {"bicubic": "#7f7f7f", "tricubic": "#8c564b", "srcnn": "#1f77b4", "srgan": "#d62728"}
SPLIT_ORDER = ("train", "valid", "test")
PAPER_GAIN = "paper: SRCNN gains +3 to 5 dB over bicubic"
DIFF_LABEL = "abs. difference\n(grey levels)"


def save(fig: Figure, png: str | Path, pdf: str | Path, dpi: int) -> None:
    for path, fmt in ((png, "png"), (pdf, "pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
        log.info("wrote %s", path)


def panel_rows(fig: Figure, counts: list[int]) -> list[list]:
    """Rows of counts[i] panels each, every row filling the figure's width: a grid without
    empty slots, whatever number of panels a row has."""
    width = math.lcm(*counts)
    grid = fig.add_gridspec(len(counts), width)
    return [[fig.add_subplot(grid[r, c * width // n:(c + 1) * width // n]) for c in range(n)]
            for r, n in enumerate(counts)]


def figure_legend(fig: Figure, axes) -> None:
    """One legend for the whole figure, under it, clear of every panel: each label drawn in
    any of `axes`, once."""
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    fig.legend(entries.values(), entries.keys(), loc="outside lower center", ncols=len(entries),
               fontsize=9, frameon=False)


def method_order(methods) -> list[str]:
    """Bicubic, SRCNN, SRGAN first, then any other (an external set) in the order given."""
    methods = list(dict.fromkeys(methods))
    return [m for m in LABELS if m in methods] + [m for m in methods if m not in LABELS]


# ----------------------------------------------------------------------------- figure 2

def find_image(packs_dir: str | Path, rock: str, image_id: int,
               key: str = "figures.figure2.ids") -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) uint8 arrays of one image (or volume), looked up in the valid and test packs;
    `key` names the setting in the error."""
    packed = {(e["rock"], e["split"]) for e in read_index(packs_dir)["packs"]}
    for split in ("valid", "test"):
        if (rock, split) in packed:
            pack = load_pack(packs_dir, rock, split)
            hits = np.flatnonzero(pack.ids == image_id)
            if hits.size:
                return np.array(pack.lr[hits[0]]), np.array(pack.hr[hits[0]])
    raise ValueError(f"{key}.{rock}: image {image_id} is in neither the valid "
                     f"nor the test pack of {rock} in {packs_dir}")


def crop_box(box: BoxSettings, lr_shape: tuple[int, int]) -> tuple[int, int, int]:
    """(row, col, side) of the crop in LR pixels, kept inside the image.

    Cut on the LR grid and scaled up, so the LR and HR crops show exactly the same area.
    """
    h, w = lr_shape
    side = max(1, round(box.size * min(h, w)))
    row = min(round(box.y * h), h - side)
    col = min(round(box.x * w), w - side)
    return row, col, side


@torch.inference_mode()
def figure2(packs_dir: str | Path, generators: dict[str, Generator],
            settings: Figure2Settings) -> Figure:
    """Per rock type: HR with the crop marked; crops of LR, HR and each method; |method - HR|.

    SR images are clamped and quantised to 8 bits, as displayed; PSNR is on the full image.
    """
    index = read_index(packs_dir)
    rocks = list(dict.fromkeys(e["rock"] for e in index["packs"]
                               if e["split"] in ("valid", "test") and e["n"] > 0))
    if not rocks:
        raise ValueError(f"{packs_dir}: no valid or test images to draw")
    settings.check_rocks(rocks, "figures.figure2")
    methods = upscalers({n: g.eval() for n, g in generators.items()}, index["scale"])
    ncols = 3 + 2 * len(methods)
    fig = Figure(figsize=(1.6 * ncols + 0.6, 1.9 * len(rocks) + 0.4), layout="constrained")
    grid = fig.add_gridspec(len(rocks), ncols + 1, width_ratios=[1] * ncols + [0.07])
    for r, rock in enumerate(rocks):
        lr8, hr8 = find_image(packs_dir, rock, settings.ids[rock])
        lr = torch.from_numpy(lr8)[None, None]
        srs = {name: postprocess(up(lr).float(), True, True) for name, up in methods.items()}
        panels = _figure2_panels(lr8, hr8, srs, settings, rock, index["scale"])
        for c, (title, image, style) in enumerate(panels):
            ax = fig.add_subplot(grid[r, c])
            im = ax.imshow(image, **{"cmap": "gray", "vmin": 0, "vmax": 1,
                                     "interpolation": "nearest", **style})
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(rock, fontsize=11)
                ax.add_patch(Rectangle(*_square(lr8.shape, settings.box, index["scale"]),
                                       edgecolor="red", facecolor="none", linewidth=1.2))
        # Two short lines: one long line ran past the bar into the next row.
        bar = fig.colorbar(im, cax=fig.add_subplot(grid[r, ncols]), extend="max")
        bar.set_label(DIFF_LABEL, fontsize=9)
    fig.suptitle(f"x{index['scale']} super-resolution: crops and absolute differences to HR "
                 "(PSNR on the full 8-bit image)", fontsize=11)
    return fig


def _square(lr_shape, box: BoxSettings, scale: int) -> tuple[tuple[float, float], int, int]:
    """The crop as a Rectangle's (corner, width, height) in HR pixel coordinates."""
    row, col, side = crop_box(box, lr_shape)
    return (col * scale - 0.5, row * scale - 0.5), side * scale, side * scale


def _figure2_panels(lr8, hr8, srs: dict[str, torch.Tensor], settings: Figure2Settings, rock: str,
                    scale: int) -> list[tuple[str, np.ndarray, dict]]:
    """(title, image, imshow style) of one row, left to right."""
    row, col, side = crop_box(settings.box, lr8.shape)
    crop = slice(row * scale, (row + side) * scale), slice(col * scale, (col + side) * scale)
    hr = uint8_to_unit(torch.from_numpy(hr8))
    lr_crop = lr8[row:row + side, col:col + side].astype(np.float32) / 255
    panels = [(f"HR, image {settings.ids[rock]}", hr.numpy(), {"interpolation": "antialiased"}),
              ("LR (nearest)", np.kron(lr_crop, np.ones((scale, scale))), {}),
              ("HR", hr[crop].numpy(), {})]
    diffs = []
    for name, sr in srs.items():
        label = LABELS.get(name, name)
        value = psnr(sr, hr[None, None]).item()
        panels.append((f"{label}\n{value:.2f} dB", sr[0, 0][crop].numpy(), {}))
        diffs.append((f"|{label} - HR|", 255 * (sr[0, 0] - hr).abs()[crop].numpy(),
                      {"cmap": "inferno", "vmax": settings.diff_range[rock]}))
    return panels + diffs


# ----------------------------------------------------------------------------- figure 3

def figure3(summary: pd.DataFrame) -> Figure:
    """PSNR per rock type and method (mean and std over images), one group of panels per split
    as in the paper; each rock type has its own y-range (the same on every split), so that
    the methods' differences within a rock type show (rock types lie ~10 dB apart)."""
    missing = {"rock_type", "split", "method", "psnr_mean", "psnr_std", "n"} - set(summary)
    if missing:
        raise ValueError(f"summary lacks column(s): {', '.join(sorted(missing))}")
    splits = [s for s in SPLIT_ORDER if s in set(summary.split)]
    rocks = list(dict.fromkeys(summary.rock_type))
    methods = method_order(summary.method)
    # A panel per rock type the split has (an external set is in the test split only).
    split_rocks = {split: [r for r in rocks if r in set(summary[summary.split == split].rock_type)]
                   for split in splits}
    panels = sum(len(r) for r in split_rocks.values())
    fig = Figure(figsize=(1.9 * panels + 1.2, 4.6), layout="constrained")
    groups = fig.subfigures(1, len(splits), squeeze=False,
                            width_ratios=[len(split_rocks[s]) for s in splits])[0]
    width = 0.8 / len(methods)
    for group, split in zip(groups, splits):
        part = summary[summary.split == split].set_index(["rock_type", "method"])
        axes = group.subplots(1, len(split_rocks[split]), squeeze=False)[0]
        for ax, rock in zip(axes, split_rocks[split]):
            for k, method in enumerate(methods):
                if (rock, method) not in part.index:
                    continue
                row = part.loc[(rock, method)]
                x = (k - (len(methods) - 1) / 2) * width
                std = 0.0 if math.isnan(row.psnr_std) else row.psnr_std
                ax.errorbar(x, row.psnr_mean, yerr=std, fmt="o", color=COLORS.get(method),
                            capsize=3, markersize=5, label=LABELS.get(method, method))
                ax.annotate(f"{row.psnr_mean:.2f}", (x, row.psnr_mean + std), xytext=(0, 3),
                            textcoords="offset points", ha="center", va="bottom", fontsize=7.5)
            ax.set_xticks([0], [_tick_label(part, rock)], fontsize=8.5)
            ax.set_xlim(-0.5, 0.5)
            ax.set_ylim(*_psnr_range(summary[summary.rock_type == rock]))
            ax.set_ylabel("PSNR (dB)", fontsize=9)
            ax.tick_params(axis="y", labelsize=8)
            ax.grid(axis="y", alpha=0.3)
        n = part.n.groupby(level=0).max()
        group.suptitle(f"{split} split (n = {', '.join(str(int(v)) for v in n.unique())} "
                       f"{_items(summary)} per rock type)", fontsize=10)
    figure_legend(fig, groups[0].axes)
    fig.suptitle(f"PSNR per rock type and method (mean ± std over {_items(summary)}; each rock "
                 f"type on its own scale); SRCNN gain = SRCNN - {_baseline(summary)} "
                 f"({PAPER_GAIN})", fontsize=10)
    return fig


def _psnr_range(rows: pd.DataFrame) -> tuple[float, float]:
    """One rock type's y-range on every split: its means ± std, with room above for the
    values written over the error bars."""
    std = rows.psnr_std.fillna(0)
    low, high = (rows.psnr_mean - std).min(), (rows.psnr_mean + std).max()
    span = max(high - low, 0.5)
    return low - 0.1 * span, high + 0.25 * span


def _baseline(summary: pd.DataFrame) -> str:
    """The interpolation baseline of a summary: bicubic, or tricubic for volumes."""
    return "tricubic" if "tricubic" in set(summary.method) else "bicubic"


def _items(summary: pd.DataFrame) -> str:
    return "volumes" if _baseline(summary) == "tricubic" else "images"


def _tick_label(part: pd.DataFrame, rock: str) -> str:
    base = "tricubic" if (rock, "tricubic") in part.index else "bicubic"
    if (rock, "srcnn") in part.index and (rock, base) in part.index:
        gain = part.loc[(rock, "srcnn")].psnr_mean - part.loc[(rock, base)].psnr_mean
        return f"{rock}\nSRCNN gain {gain:+.2f} dB"
    return rock


# ----------------------------------------------------------------------------- curves

# (title, columns, y label, log scale when the values span decades) of each phase's panels.
PANELS = {
    1: [("L1 loss", ["loss_l1"], "L1 loss", True),
        ("PSNR (dB)", ["train_psnr", "val_psnr"], "PSNR (dB)", False),
        ("learning rate", ["lr"], "learning rate", True)],
    2: [("G and D losses", ["loss_g", "loss_d"], "loss", False),
        ("generator loss terms", ["loss_l1", "loss_vgg", "loss_adv"], "loss (unweighted)", True),
        ("weighted terms, diagnosed steps", ["w_l1", "w_vgg", "w_adv"], "weight x loss", True),
        ("share of G's gradient", ["share_l1", "share_vgg", "share_adv"], "share", False),
        ("cosine of term gradients", ["cos_l1_vgg", "cos_l1_adv", "cos_vgg_adv"], "cosine",
         False),
        ("loss weights", ["alpha", "beta"], "weight", True),
        ("discriminator output", ["d_real", "d_fake"], "mean D output", False),
        ("PSNR (dB)", ["train_psnr", "val_psnr"], "PSNR (dB)", False)],
}
PANELS_PER_ROW = 3
SHOWN_WARNINGS = 5  # epochs listed in the title; the rest are counted there, listed elsewhere
SMOOTH_ABOVE = 50  # points; beyond this a running mean is drawn over the raw values
SERIES = {"loss_l1": "L1", "train_psnr": "train", "val_psnr": "validation", "lr": "learning rate",
          "loss_g": "G", "loss_d": "D", "loss_vgg": "VGG", "loss_adv": "adversarial",
          "d_real": "D(real)", "d_fake": "D(fake)", "w_l1": "L1", "w_vgg": "alpha x VGG",
          "w_adv": "beta x adv", "share_l1": "L1", "share_vgg": "VGG", "share_adv": "adversarial",
          "cos_l1_vgg": "L1, VGG", "cos_l1_adv": "L1, adversarial",
          "cos_vgg_adv": "VGG, adversarial",
          "alpha": "alpha (vgg_weight)", "beta": "beta (adv_weight)"}


def curves(metrics: dict[int, pd.DataFrame]) -> Figure:
    """Training curves per phase from metrics tables with an `iteration` column, in rows of
    up to three panels that fill the width; absent or empty columns are skipped."""
    panels = [(phase, title, cols, ylabel, logy)
              for phase, df in metrics.items() for title, all_cols, ylabel, logy in PANELS[phase]
              if (cols := [c for c in all_cols if c in df and df[c].notna().any()])]
    counts = []  # panels per row: each phase in as few rows as it needs, evenly filled
    for phase in metrics:
        n = sum(p[0] == phase for p in panels)
        rows = -(-n // PANELS_PER_ROW)
        counts += [n // rows + (i < n % rows) for i in range(rows)]
    if not counts:
        raise ValueError("no metrics to draw")
    fig = Figure(figsize=(4.3 * PANELS_PER_ROW, 2.7 * len(counts)), layout="constrained")
    axes = [ax for row in panel_rows(fig, counts) for ax in row]
    for ax, (phase, title, cols, ylabel, logy) in zip(axes, panels):
        df = metrics[phase]
        for c in cols:
            _plot_series(ax, df[["iteration", c]].dropna(), c)
        if logy and _spans_decades(df[cols]):
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())  # powers of ten only: readable
        ax.set_title(f"phase {phase}: {title}", fontsize=10)
        ax.set_xlabel("iteration", fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 150k, not 150000
        ax.grid(alpha=0.3)
        if len(cols) > 1:  # beside the panel, never over a curve
            ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if 2 in metrics:
        title, alarming = _warnings_title(metrics[2])
        fig.suptitle(title, fontsize=10, horizontalalignment="left", x=0.01,
                     color="#b00000" if alarming else "black")
    return fig


def _spans_decades(values: pd.DataFrame) -> bool:
    """A log scale pays (and labels at least two powers of ten) only for positive values
    that reach across two of them."""
    low, high = values.min().min(), values.max().max()
    return low > 0 and math.floor(math.log10(high)) - math.ceil(math.log10(low)) >= 1


def warnings_lines(df: pd.DataFrame) -> list[str]:
    """One line per phase-2 epoch that warned (rocksr.train.diagnostics): 'epoch N: ...'."""
    if "warnings" not in df:
        return []
    flagged = df[df["warnings"].fillna("").astype(str).str.len() > 0]
    return [f"epoch {int(e)}: {w}" for e, w in zip(flagged.epoch, flagged.warnings)]


def _warnings_title(df: pd.DataFrame) -> tuple[str, bool]:
    """The phase-2 diagnostics' verdict, and whether any epoch warned. Past SHOWN_WARNINGS + 1
    epochs the title counts the rest (the curves step logs all, its report page lists all)."""
    if "warnings" not in df:
        return "phase-2 loss-term warnings: not recorded", False
    lines = warnings_lines(df)
    if not lines:
        return f"phase-2 loss-term warnings: none in {len(df)} epochs", False
    shown = lines if len(lines) <= SHOWN_WARNINGS + 1 else lines[:SHOWN_WARNINGS] + [
        f"... and {len(lines) - SHOWN_WARNINGS} more epochs (every warning is in the log "
        "and the report)"]
    return (f"PHASE-2 WARNINGS in {len(lines)} of {len(df)} epochs:\n"
            + "\n".join(shown)), True


def _plot_series(ax, s: pd.DataFrame, column: str) -> None:
    """Few points: markers. Many noisy per-step values: faint raw trace under a running mean."""
    if len(s) <= SMOOTH_ABOVE:
        ax.plot(s.iteration, s[column], marker="o", markersize=3, label=SERIES[column])
        return
    raw, = ax.plot(s.iteration, s[column], alpha=0.25, linewidth=0.8)
    window = max(len(s) // SMOOTH_ABOVE, 2)
    ax.plot(s.iteration, s[column].rolling(window, center=True, min_periods=1).mean(),
            color=raw.get_color(), label=SERIES[column])


# ----------------------------------------------------------------------------- texture

# (summary column, title, y label) of the texture metrics' panels; rocksr.eval.texture
# defines them.
TEXTURE_PANELS = [("spectrum_err_db", "upper-band spectrum error (dB)", "spectrum error (dB)"),
                  ("s2_err", "two-point correlation error", "S2 error"),
                  ("perimeter_rel_err", "specific perimeter rel. error", "relative error")]
HR_STYLE = {"color": "black", "linewidth": 1.6, "label": "HR"}


def texture_figure(spectra: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    """Top row, per rock type: the mean radially averaged power spectra of HR and each method
    (log scale), the upper band (above the LR Nyquist frequency) shaded. Bottom row: the
    texture metrics per rock type and method, mean ± std over images. On the test split, or
    the last evaluated one."""
    for table, what, columns in ((spectra, "spectra", {"frequency", "power", "upper"}),
                                 (summary, "summary", {f"{c}_mean" for c, *_ in TEXTURE_PANELS})):
        missing = ({"rock_type", "split", "method"} | columns) - set(table)
        if missing:
            raise ValueError(f"{what} lacks column(s): {', '.join(sorted(missing))}")
    split = [s for s in SPLIT_ORDER if s in set(spectra.split)][-1:]
    if not split:
        raise ValueError(f"no {', '.join(SPLIT_ORDER)} rows to draw")
    split = split[0]
    spectra, summary = spectra[spectra.split == split], summary[summary.split == split]
    rocks = list(dict.fromkeys(spectra.rock_type))
    methods = method_order(summary.method)
    fig = Figure(figsize=(3.6 * max(len(rocks), len(TEXTURE_PANELS)), 6.9), layout="constrained")
    top, bottom = panel_rows(fig, [len(rocks), len(TEXTURE_PANELS)])
    for ax, rock in zip(top, rocks):
        part = spectra[spectra.rock_type == rock]
        for method in ["hr", *methods]:
            rows = part[part.method == method]
            style = HR_STYLE if method == "hr" else {
                "color": COLORS.get(method), "label": LABELS.get(method, method)}
            ax.plot(rows.frequency, rows.power, **style)
        if part.upper.any():  # from the last ring at or below the LR Nyquist frequency
            below = part[~part.upper].frequency
            ax.axvspan(below.max() if len(below) else 0, part.frequency.max(), color="#ffd92f",
                       alpha=0.25, label="upper band", linewidth=0)
        ax.set_yscale("log")
        ax.set_title(f"{rock}: radial power spectrum ({split})", fontsize=10)
        ax.set_xlabel("spatial frequency (cycles per HR pixel)", fontsize=9)
        ax.set_ylabel("power, mean over images", fontsize=9)
        ax.grid(alpha=0.3, which="both")
    for ax, (column, title, ylabel) in zip(bottom, TEXTURE_PANELS):
        _method_points(ax, summary, rocks, methods, column)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.grid(axis="y", alpha=0.3)
    figure_legend(fig, top)  # both rows' colours
    fig.suptitle("Texture: HR spectrum vs each method's (top; shaded: detail above the LR "
                 "Nyquist frequency); errors against HR, mean ± std over images (bottom)",
                 fontsize=10)
    return fig


def _method_points(ax, summary: pd.DataFrame, rocks: list[str], methods: list[str],
                   column: str) -> None:
    """Mean ± std of `column` per rock type (x) and method (offset points, Figure 3's style)."""
    part = summary.set_index(["rock_type", "method"])
    width = 0.8 / len(methods)
    for j, rock in enumerate(rocks):
        for k, method in enumerate(methods):
            if (rock, method) not in part.index:
                continue
            row = part.loc[(rock, method)]
            std = row.get(f"{column}_std", float("nan"))
            ax.errorbar(j + (k - (len(methods) - 1) / 2) * width, row[f"{column}_mean"],
                        yerr=0.0 if math.isnan(std) else std, fmt="o", capsize=3,
                        markersize=5, color=COLORS.get(method), label=LABELS.get(method, method))
    ax.set_xticks(range(len(rocks)), rocks, fontsize=9)
    ax.set_xlim(-0.6, len(rocks) - 0.4)


# ----------------------------------------------------------------------------- comparison

COMPARE_PANELS = [("psnr_mean", "PSNR (dB)"),
                  ("spectrum_err_db_mean", "upper-band spectrum error (dB)")]


def compare_figure(table: pd.DataFrame) -> Figure:
    """Runs side by side (rocksr.eval.compare.comparison_table): per rock type (columns), PSNR
    and the upper-band spectrum error (rows) of every run (x) and method, as differences to
    the first run's (its mean over seeds), on one y-range per metric; runs of volumes (with a
    tricubic baseline) against the first run of volumes, as images and volumes are not
    scored alike. Small dots are single seeds, large markers their mean with the std over
    seeds. On the test split, or the last evaluated one. One run has nothing to compare: its
    row is in the comparison table."""
    needed = {"run", "seed", "name", "scale", "degradation", *COMPARE_KEYS, COMPARE_PANELS[0][0]}
    missing = needed - set(table)
    if missing:
        raise ValueError(f"comparison table lacks column(s): {', '.join(sorted(missing))}")
    if table.name.nunique() < 2:
        raise ValueError(f"one run ({', '.join(table.name.unique())}): nothing to draw side by "
                         "side; its results are in the comparison table")
    split = [s for s in SPLIT_ORDER if s in set(table.split)][-1:]
    if not split:
        raise ValueError("comparison table has no train, valid or test rows")
    table = table[table.split == split[0]]
    rocks = list(dict.fromkeys(table.rock_type))
    runs = list(dict.fromkeys(table.run))
    kind = table.groupby("run").method.agg(lambda m: "3D" if "tricubic" in set(m) else "2D")
    references = {k: next(r for r in runs if kind[r] == k) for k in dict.fromkeys(kind[runs])}
    first = table.drop_duplicates("run").set_index("run")
    ticks = [f"{r}\nx{first.scale[r]} {first.degradation[r]}" for r in runs]
    methods = method_order(table.method)
    width = 0.8 / len(methods)
    # 3D runs have no spectra: their spectrum panel is left out when only they are compared
    panels = [(c, label) for c, label in COMPARE_PANELS if c in table and table[c].notna().any()]
    against = ", ".join(f"{r} ({'volumes' if k == '3D' else 'images'})"
                        for k, r in references.items()) if len(references) > 1 else runs[0]
    fig = Figure(figsize=(max(3.2, 0.9 * len(runs) + 1.5) * len(rocks), 3.2 * len(panels)),
                 layout="constrained")
    axes = fig.subplots(len(panels), len(rocks), squeeze=False, sharex=True, sharey="row")
    for row, (column, label) in zip(axes, panels):
        spread = seed_spread(table, column)
        base = spread.set_index(["run", "rock_type", "method"])["mean"]
        for ax, rock in zip(row, rocks):
            for (k, method), (group, reference) in itertools.product(enumerate(methods),
                                                                     references.items()):
                if (reference, rock, method) not in base.index:
                    continue
                zero = base[(reference, rock, method)]
                offset = (k - (len(methods) - 1) / 2) * width
                points = table[(table.run.map(kind) == group) & (table.rock_type == rock)
                               & (table.method == method)]
                ax.plot([runs.index(r) + offset for r in points.run], points[column] - zero,
                        ".", color=COLORS.get(method), alpha=0.45, markersize=4)
                means = spread[(spread.run.map(kind) == group) & (spread.rock_type == rock)
                               & (spread.method == method)]
                ax.errorbar([runs.index(r) + offset for r in means.run], means["mean"] - zero,
                            yerr=means["std"].fillna(0), fmt="o", capsize=3, markersize=5,
                            color=COLORS.get(method), label=LABELS.get(method, method))
            ax.axhline(0, color="black", linewidth=0.6)
            ax.set_xticks(range(len(runs)), ticks, fontsize=8)
            ax.set_xlim(-0.5, len(runs) - 0.5)  # the outer methods' markers stay inside
            ax.grid(axis="y", alpha=0.3)
        row[0].set_ylabel(f"{label}\nminus run {against}'s", fontsize=9)
        row[0].margins(y=0.12)
    for ax, rock in zip(axes[0], rocks):
        ax.set_title(rock, fontsize=10)
    figure_legend(fig, axes[0])
    fig.suptitle(f"Runs side by side ({split[0]} split), as differences to run {against}: "
                 "mean over images per seed (dots), mean ± std over seeds (markers)",
                 fontsize=10)
    return fig


# ----------------------------------------------------------------------------- 3D runs

PLANES = (("xy", "z"), ("xz", "y"), ("yz", "x"))  # each cuts (D, H, W) = (z, y, x) at an axis


def _drawn_rocks(index: dict, packs_dir: str | Path) -> list[str]:
    rocks = list(dict.fromkeys(e["rock"] for e in index["packs"]
                               if e["split"] in ("valid", "test") and e["n"] > 0))
    if not rocks:
        raise ValueError(f"{packs_dir}: no valid or test images to draw")
    return rocks


@torch.inference_mode()
def orthoslices(packs_dir: str | Path, generators: dict[str, Generator],
                settings: OrthosliceSettings) -> Figure:
    """Per rock type, one volume cut through its centre in the xy, xz and yz planes (a row
    each): LR (nearest), tricubic, SRCNN, SRGAN and HR, then |method - HR| on the rock type's
    colour range (grey levels). SR volumes are clamped and quantised to 8 bits; the PSNR in
    each method's title is of the whole volume."""
    index = read_index(packs_dir)
    if index.get("dim", 2) != 3:
        raise ValueError(f"{packs_dir}: packs of 2D images; the orthogonal slices are drawn "
                         "for the volumes of a 3D run (dim: 3)")
    rocks, scale = _drawn_rocks(index, packs_dir), index["scale"]
    settings.check_rocks(rocks, "figures.orthoslices")
    methods = upscalers({n: g.eval() for n, g in generators.items()}, scale, dim=3)
    ncols = 2 + 2 * len(methods)
    fig = Figure(figsize=(1.45 * ncols + 0.8, 1.5 * len(PLANES) * len(rocks) + 0.5),
                 layout="constrained")
    grid = fig.add_gridspec(len(PLANES) * len(rocks), ncols + 1,
                            width_ratios=[1] * ncols + [0.07])
    for r, rock in enumerate(rocks):
        lr8, hr8 = find_image(packs_dir, rock, settings.ids[rock], "figures.orthoslices.ids")
        hr = uint8_to_unit(torch.from_numpy(hr8))
        srs = {name: postprocess(up(torch.from_numpy(lr8)[None, None]).float(), True, True)[0, 0]
               for name, up in methods.items()}
        nearest = uint8_to_unit(torch.from_numpy(lr8))
        for axis in range(3):
            nearest = nearest.repeat_interleave(scale, axis)
        volumes = [("LR (nearest)", nearest)]
        volumes += [(f"{LABELS.get(n, n)}\n{psnr(v[None, None], hr[None, None]).item():.2f} dB",
                     v) for n, v in srs.items()]
        volumes += [("HR", hr)] + [(f"|{LABELS.get(n, n)} - HR|", 255 * (v - hr).abs())
                                   for n, v in srs.items()]
        for p, (plane, normal) in enumerate(PLANES):
            centre = hr.shape[p] // 2
            for c, (title, volume) in enumerate(volumes):
                ax = fig.add_subplot(grid[len(PLANES) * r + p, c])
                diff = c > len(methods) + 1
                im = ax.imshow(volume.select(p, centre).numpy(), interpolation="nearest",
                               **({"cmap": "inferno", "vmin": 0,
                                   "vmax": settings.diff_range[rock]} if diff else
                                  {"cmap": "gray", "vmin": 0, "vmax": 1}))
                ax.set_xticks([])
                ax.set_yticks([])
                if p == 0:
                    ax.set_title(title, fontsize=8)
                if c == 0:
                    ax.set_ylabel(f"{rock} {settings.ids[rock]}\n{plane}, {normal} = {centre}",
                                  fontsize=9)
        fig.colorbar(im, cax=fig.add_subplot(grid[len(PLANES) * r:len(PLANES) * (r + 1), ncols]),
                     label="abs. difference (grey levels)", extend="max")
    fig.suptitle(f"x{scale} super-resolution of volumes: slices through the centre, and absolute "
                 "differences to HR (PSNR of the whole 8-bit volume)", fontsize=11)
    return fig


# (summary column, panel title) of the rock metrics' errors against HR (rocksr.eval.rock3d)
ROCK_PANELS = [("porosity_abs_err", "porosity, absolute error"),
               ("ssa_rel_err", "specific surface area, rel. error"),
               ("euler_density_err", "Euler characteristic per 10^6 voxels, error"),
               ("s2_err", "two-point correlation error"),
               ("psd_mean_rel_err", "mean pore size (local thickness), rel. error")]


def rock_metrics_figure(summary: pd.DataFrame) -> Figure:
    """One panel per error of SR against HR (rocksr.eval.rock3d; 0 = HR's value): per rock type
    (x) and method, mean ± std over the volumes of the test split, or the last evaluated one."""
    missing = ({"rock_type", "split", "method"} | {f"{c}_mean" for c, _ in ROCK_PANELS}) - set(
        summary)
    if missing:
        raise ValueError(f"summary lacks column(s): {', '.join(sorted(missing))} (the rock "
                         "metrics of a 3D run's evaluation)")
    split = [s for s in SPLIT_ORDER if s in set(summary.split)][-1:]
    if not split:
        raise ValueError(f"no {', '.join(SPLIT_ORDER)} rows to draw")
    summary = summary[summary.split == split[0]]
    rocks = list(dict.fromkeys(summary.rock_type))
    methods = [m for m in LABELS if m in set(summary.method)] + \
              [m for m in dict.fromkeys(summary.method) if m not in LABELS]
    fig = Figure(figsize=(3.4 * len(ROCK_PANELS), 3.4), layout="constrained")
    axes = fig.subplots(1, len(ROCK_PANELS), squeeze=False)[0]
    for ax, (column, title) in zip(axes, ROCK_PANELS):
        _method_points(ax, summary, rocks, methods, column)
        ax.set_title(title, fontsize=9)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.grid(axis="y", alpha=0.3)
    figure_legend(fig, axes)
    fig.suptitle(f"Rock metrics of SR against HR ({split[0]} split; segmented at HR's Otsu cut): "
                 "errors, mean ± std over volumes; 0 is HR", fontsize=10)
    return fig
