"""What each figure shows (axes, titles, labels, legends, colour limits), drawn from the
figure objects; the scripts write PNG + PDF; bad input is a clear error."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
import torch

from evalkit import as_json, make_generator, make_packs, tiny_config
from figcheck import draw, problems
from rocksr.eval.evaluate import evaluate, summarize
from rocksr.eval.texture import SpectrumSums
from rocksr.figures import curves, figure2, figure3, texture_figure
from rocksr.fileio import write_csv
from rocksr.infer.inference import load_generator
from rocksr.workflow import config as cfg

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
CAPTIONS = SCRIPTS.parent / "report"
CONFIG = tiny_config()
# The rule's settings; coal's image from the valid split (the packs hold 3201-3203 there).
FIG2 = dataclasses.replace(cfg.figure2_settings(CONFIG),
                           ids={"carbonate": 3601, "coal": 3202})
DPI = as_json(cfg.figure_settings(CONFIG))
METHODS = ["Bicubic", "SRCNN", "SRGAN"]


def run(script: str, *args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(SCRIPTS / script), *map(str, args)],
                          capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(proc.stderr[-3000:])
    return proc


def assert_files(png: Path, pdf: Path) -> None:
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert not list(png.parent.glob("*.tmp"))


def titles(axes) -> list[str]:
    return [ax.get_title() for ax in axes]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fig")
    packs, _ = make_packs(root)
    return packs, make_generator(root / "g1.pt", 1), make_generator(root / "g2.pt", 2)


@pytest.fixture(scope="module")
def evaluated(inputs):
    """The evaluation of the tiny packs: per-image rows and the spectra table."""
    packs, g1, g2 = inputs
    spectra = SpectrumSums()
    per_image = evaluate(packs, {"srcnn": load_generator(g1), "srgan": load_generator(g2)},
                         cfg.evaluation_settings(CONFIG), torch.device("cpu"), spectra=spectra)
    return per_image, spectra.table()


def figure2_args(inputs, settings, out: Path):
    packs, g1, g2 = inputs
    return ["--packs", packs, "--srcnn", g1, "--srgan", g2,
            "--settings", as_json(settings), "--png", out / "f2.png", "--pdf", out / "f2.pdf"]


def test_figure2_shows_crops_psnr_and_difference_maps(inputs, evaluated):
    packs, g1, g2 = inputs
    fig = figure2(packs, {"srcnn": load_generator(g1), "srgan": load_generator(g2)}, FIG2)
    per_image = evaluated[0]
    assert len(fig.axes) == 2 * (9 + 1)  # per rock: 9 panels and a colour bar
    assert "x4 super-resolution" in fig.get_suptitle()
    for r, rock in enumerate(["carbonate", "coal"]):
        panels, bar = fig.axes[10 * r:10 * r + 9], fig.axes[10 * r + 9]
        image_id = FIG2.ids[rock]
        names = [t.split("\n")[0] for t in titles(panels)]
        assert names == [f"HR, image {image_id}", "LR (nearest)", "HR", *METHODS,
                         *[f"|{m} - HR|" for m in METHODS]]
        assert panels[0].get_ylabel() == rock
        crop = [p for p in panels[0].patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
        assert len(crop) == 1  # the crop square, drawn in red on the full HR image
        # The PSNR in each method's title is the evaluation's for that image (full image).
        for panel, method in zip(panels[3:6], ["bicubic", "srcnn", "srgan"]):
            row = per_image[(per_image.rock_type == rock) & (per_image.id == image_id)
                            & (per_image.method == method)]
            assert panel.get_title().split("\n")[1] == f"{row.psnr.item():.2f} dB"
        for panel in panels[6:]:  # colour limits: 0 to the rock's diff_range
            assert panel.get_images()[0].get_clim() == (0, FIG2.diff_range[rock])
        assert bar.get_ylabel() == "abs. difference\n(grey levels)"


def test_figure2_script_writes_png_and_pdf_and_names_a_bad_id(inputs, tmp_path):
    run("figure2.py", *figure2_args(inputs, FIG2, tmp_path))
    assert_files(tmp_path / "f2.png", tmp_path / "f2.pdf")
    bad = dataclasses.replace(FIG2, ids={"carbonate": 3601, "coal": 42})
    proc = run("figure2.py", *figure2_args(inputs, bad, tmp_path / "bad"), check=False)
    assert proc.returncode == 1
    assert "figures.figure2.ids.coal: image 42" in proc.stderr
    assert not (tmp_path / "bad" / "f2.png").exists()


def summary_rows() -> list[dict]:
    return [{"rock_type": r, "split": s, "method": m, "psnr_mean": 25 + 3 * (m == "srcnn") + i,
             "psnr_std": 1.0, "ssim_mean": 0.8, "n": 5 if s == "test" else 4}
            for i, r in enumerate(["carbonate", "coal", "sandstone"]) for s in ["valid", "test"]
            for m in ["bicubic", "srcnn", "srgan"]]


def test_figure3_panels_per_split_with_gain_and_legend(tmp_path):
    rows = summary_rows()
    rows[0].update(psnr_std=float("nan"), n=1)  # a single image has no spread
    fig = figure3(pd.DataFrame(rows))
    assert [group.get_suptitle() for group in fig.subfigs] == [
        "valid split (n = 4 images per rock type)", "test split (n = 5 images per rock type)"]
    test = fig.subfigs[1].axes  # a panel per rock type, each on its own y-range
    assert {ax.get_ylabel() for ax in fig.axes} == {"PSNR (dB)"}
    ticks = [t.get_text() for ax in test for t in ax.get_xticklabels()]
    assert ticks == [f"{r}\nSRCNN gain +3.00 dB" for r in ("carbonate", "coal", "sandstone")]
    assert "mean ± std over images" in fig.get_suptitle()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == METHODS
    assert "SRCNN gain" in fig.get_suptitle()

    pd.DataFrame(rows).to_csv(tmp_path / "summary.csv", index=False)
    run("figure3.py", "--summary", tmp_path / "summary.csv", "--settings", DPI,
        "--png", tmp_path / "f3.png", "--pdf", tmp_path / "f3.pdf")
    assert_files(tmp_path / "f3.png", tmp_path / "f3.pdf")
    pd.DataFrame(rows).drop(columns="psnr_std").to_csv(tmp_path / "bad.csv", index=False)
    proc = run("figure3.py", "--summary", tmp_path / "bad.csv", "--settings", DPI,
               "--png", tmp_path / "b.png", "--pdf", tmp_path / "b.pdf", check=False)
    assert proc.returncode == 1 and "bad.csv: summary lacks column(s): psnr_std" in proc.stderr


def metrics(warnings: list[str] | None = None) -> dict[int, pd.DataFrame]:
    phase1 = pd.DataFrame({"epoch": [1, 1, 2], "iteration": [3, 6, 9], "lr": [1e-4] * 3,
                           "loss_l1": [0.3, 0.2, 0.1], "train_psnr": [10, 11, 12],
                           "val_psnr": [None, 11.0, 12.5]})
    phase2 = pd.DataFrame({"epoch": [1, 2], "iteration": [2, 4], "loss_g": [1.0, 0.9],
                           "loss_d": [1.4, 1.3], "d_real": [0.6, 0.7], "d_fake": [0.4, 0.3]})
    if warnings is not None:
        phase2["warnings"] = warnings
    return {1: phase1, 2: phase2}


def test_curves_plot_whatever_columns_exist_and_title_the_warnings(tmp_path):
    fig = curves(metrics())
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert titles(shown) == ["phase 1: L1 loss", "phase 1: PSNR (dB)",
                             "phase 1: learning rate", "phase 2: G and D losses",
                             "phase 2: discriminator output"]
    assert {ax.get_xlabel() for ax in shown} == {"iteration"}
    legends = {ax.get_title(): [t.get_text() for t in ax.get_legend().get_texts()]
               for ax in shown if ax.get_legend()}
    assert legends == {"phase 1: PSNR (dB)": ["train", "validation"],
                       "phase 2: G and D losses": ["G", "D"],
                       "phase 2: discriminator output": ["D(real)", "D(fake)"]}
    assert fig.get_suptitle() == "phase-2 loss-term warnings: not recorded"

    calm = curves(metrics(["", ""]))
    assert calm.get_suptitle() == "phase-2 loss-term warnings: none in 2 epochs"
    alarmed = curves(metrics(["", "VGG term is 0.1% of G's gradient"]))
    assert alarmed.get_suptitle() == ("PHASE-2 WARNINGS in 1 of 2 epochs:\n"
                                      "epoch 2: VGG term is 0.1% of G's gradient")
    assert matplotlib.colors.to_hex(alarmed._suptitle.get_color()) == "#b00000"

    for phase, table in metrics().items():
        table.to_csv(tmp_path / f"p{phase}.csv", index=False)
    run("curves.py", "--phase1", tmp_path / "p1.csv", "--phase2", tmp_path / "p2.csv",
        "--settings", DPI, "--png", tmp_path / "c.png", "--pdf", tmp_path / "c.pdf")
    assert_files(tmp_path / "c.png", tmp_path / "c.pdf")


def test_curves_show_alpha_beta_and_the_cosines_of_the_term_gradients():
    phase2 = metrics()[2].assign(alpha=[1e-5, 2e-5], beta=[1e-3, 1e-3], cos_l1_vgg=[0.1, 0.2],
                                 cos_l1_adv=[-0.2, -0.6], cos_vgg_adv=[0.0, 0.1])
    fig = curves({2: phase2})
    legends = {ax.get_title(): [t.get_text() for t in ax.get_legend().get_texts()]
               for ax in fig.axes if ax.get_visible() and ax.get_legend()}
    assert legends["phase 2: loss weights"] == ["alpha (vgg_weight)", "beta (adv_weight)"]
    assert legends["phase 2: cosine of term gradients"] == ["L1, VGG", "L1, adversarial",
                                                            "VGG, adversarial"]


def test_texture_figure(evaluated, tmp_path):
    """Drawn from the evaluation's spectra and summary: one spectrum panel per rock type with
    HR and every method, the upper band shaded, then one panel per texture metric."""
    per_image, table = evaluated
    summary = summarize(per_image)
    fig = texture_figure(table, summary)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert titles(shown) == ["carbonate: radial power spectrum (test)",
                             "coal: radial power spectrum (test)",
                             "upper-band spectrum error (dB)", "two-point correlation error",
                             "specific perimeter rel. error"]
    carbonate = shown[0]
    assert carbonate.get_yscale() == "log" and carbonate.get_ylabel() == "power, mean over images"
    assert [line.get_label() for line in carbonate.get_lines()] == ["HR", *METHODS]
    # One legend for both rows, under the figure.
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["HR", *METHODS, "upper band"]
    hr = table[(table.rock_type == "carbonate") & (table.split == "test") & (table.method == "hr")]
    assert list(carbonate.get_lines()[0].get_ydata()) == list(hr.power)
    assert len(carbonate.patches) == 1  # the shaded upper band
    assert [t.get_text() for t in shown[2].get_xticklabels()] == ["carbonate", "coal"]
    assert shown[2].get_ylabel() == "spectrum error (dB)"
    assert problems(fig) == []

    write_csv(table, tmp_path / "spectra.csv")
    write_csv(summary, tmp_path / "summary.csv")
    run("texture_figure.py", "--spectra", tmp_path / "spectra.csv", "--summary",
        tmp_path / "summary.csv", "--settings", DPI, "--png", tmp_path / "t.png",
        "--pdf", tmp_path / "t.pdf")
    assert_files(tmp_path / "t.png", tmp_path / "t.pdf")
    summary.drop(columns="s2_err_mean").to_csv(tmp_path / "bad.csv", index=False)
    proc = run("texture_figure.py", "--spectra", tmp_path / "spectra.csv", "--summary",
               tmp_path / "bad.csv", "--settings", DPI, "--png", tmp_path / "b.png",
               "--pdf", tmp_path / "b.pdf", check=False)
    assert proc.returncode == 1 and "summary lacks column(s): s2_err_mean" in proc.stderr


# ------------------------------------------------------------------- as a reader sees them

def test_figure2_reads_cleanly_with_each_colour_bar_label_in_its_row(inputs):
    packs, g1, g2 = inputs
    fig = figure2(packs, {"srcnn": load_generator(g1), "srgan": load_generator(g2)}, FIG2)
    assert problems(fig) == []
    renderer = draw(fig)
    for r in range(2):
        row, bar = fig.axes[10 * r:10 * r + 9], fig.axes[10 * r + 9]
        top = max(ax.get_tightbbox(renderer).y1 for ax in row)  # the panels' titles included
        bottom = min(ax.get_window_extent(renderer).y0 for ax in row)
        label = bar.yaxis.label.get_window_extent(renderer)
        assert bottom - 1 <= label.y0 and label.y1 <= top + 1, (r, label, bottom, top)


def demo_like_summary() -> pd.DataFrame:
    """PSNR as the demo run has it: rock types ~11 dB apart, methods within ~1.5 dB."""
    base = {"carbonate": 19.6, "coal": 31.3, "sandstone": 18.9}
    gain = {"bicubic": 0.0, "srcnn": 0.9, "srgan": 1.0}
    return pd.DataFrame([{"rock_type": r, "split": s, "method": m, "psnr_mean": b + gain[m],
                          "psnr_std": 0.3 if r != "coal" else 1.5, "ssim_mean": 0.8, "n": 6}
                         for r, b in base.items() for s in ("valid", "test") for m in gain])


def test_figure3_gives_each_rock_type_a_range_that_shows_its_differences():
    """Each rock type's panel spans at most twice its own means ± std (on the shared 19-36 dB
    axis carbonate's 1 dB was a few pixels), and the figure reads cleanly."""
    summary = demo_like_summary()
    rocks = summary.assign(low=summary.psnr_mean - summary.psnr_std,
                           high=summary.psnr_mean + summary.psnr_std).groupby("rock_type")
    own = rocks.high.max() - rocks.low.min()  # per rock type, over splits and methods
    fig = figure3(summary)
    assert problems(fig) == []
    drawn = set()
    for ax in fig.axes:
        ticks = {t.get_position()[0]: t.get_text().split("\n")[0] for t in ax.get_xticklabels()}
        for line in ax.lines:
            for x in line.get_xdata() if line.get_marker() == "o" else []:
                rock = ticks[min(ticks, key=lambda t: abs(t - x))]
                low, high = ax.get_ylim()
                assert high - low <= 2 * own[rock], (rock, ax.get_ylim(), own[rock])
                drawn.add(rock)
    assert drawn == {"carbonate", "coal", "sandstone"}


def full_metrics(epochs: int = 12, warned: int = 0) -> dict[int, pd.DataFrame]:
    """Both phases with every column the training writes; losses that span several decades
    and some that span less than one; `warned` phase-2 epochs with a warning."""
    it = np.arange(1, epochs + 1)
    phase1 = pd.DataFrame({"epoch": it, "iteration": 50 * it, "lr": 1e-3 * 0.7 ** it,
                           "loss_l1": 0.24 - 0.01 * it, "train_psnr": 18 + it / 2,
                           "val_psnr": 20 + it / 3})
    phase2 = pd.DataFrame({"epoch": it, "iteration": 20 * it, "loss_g": 0.1 + 0.001 * it,
                           "loss_d": 1.4 - 0.05 * it, "loss_l1": 0.1 + 0 * it,
                           "loss_vgg": 2.0 + 0 * it, "loss_adv": 0.8 + 0.1 * it,
                           "w_l1": 0.09 + 0 * it, "w_vgg": 2e-5 + 0 * it, "w_adv": 1e-3 + 0 * it,
                           "share_l1": 0.9 + 0 * it, "share_vgg": 0.001 + 0 * it,
                           "share_adv": 0.1 + 0 * it, "d_real": 0.5 + it / 40,
                           "d_fake": 0.5 - it / 40, "train_psnr": 24 + 0 * it,
                           "val_psnr": 24.4 + 0 * it,
                           "warnings": [f"vgg term inactive: 0.{e}% of the generator's gradient"
                                        if e <= warned else "" for e in it]})
    return {1: phase1, 2: phase2}


@pytest.mark.parametrize("which", ["full", "some columns"])
def test_curves_fill_their_grid_and_read_cleanly(which):
    """No empty slot whatever panels there are, legends beside the data, decade ticks on log
    axes, every y-axis labelled."""
    fig = curves(full_metrics() if which == "full" else metrics())
    assert problems(fig) == []


def test_curves_list_every_warning_in_the_title_or_say_how_many_more(tmp_path):
    few = curves(full_metrics(warned=4)).get_suptitle()
    assert few.startswith("PHASE-2 WARNINGS in 4 of 12 epochs:")
    assert all(f"epoch {e}: vgg term inactive: 0.{e}%" in few for e in range(1, 5))
    many = curves(full_metrics(warned=11)).get_suptitle()
    assert "epoch 1: vgg term inactive" in many
    assert "and 6 more epochs (every warning is in the log and the report)" in many
    # The script logs every one and lists every one under the figure in its report page.
    for phase, table in full_metrics(warned=11).items():
        table.to_csv(tmp_path / f"p{phase}.csv", index=False)
    proc = run("curves.py", "--phase1", tmp_path / "p1.csv", "--phase2", tmp_path / "p2.csv",
               "--settings", DPI, "--png", tmp_path / "c.png", "--pdf", tmp_path / "c.pdf",
               "--html", tmp_path / "c.html", "--caption", CAPTIONS / "curves.rst")
    page = (tmp_path / "c.html").read_text()
    for e in range(1, 12):
        assert f"epoch {e}: vgg term inactive: 0.{e}%" in proc.stderr
        assert f"epoch {e}: vgg term inactive: 0.{e}%" in page
