"""The figure scripts write PNG + PDF; a figure-2 id missing from the packs is a clear error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from evalkit import make_generator, make_packs

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
FIG2 = {"ids": {"carbonate": 3601, "coal": 3202}, "box": {"x": 0.35, "y": 0.35, "size": 0.25},
        "diff_range": {"carbonate": 100, "coal": 15}, "dpi": 40}


def run(script: str, *args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(SCRIPTS / script), *map(str, args)],
                          capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(proc.stderr[-3000:])
    return proc


def assert_figures(png: Path, pdf: Path) -> None:
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert not list(png.parent.glob("*.tmp"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fig")
    packs, _ = make_packs(root)
    return packs, make_generator(root / "g1.pt", 1), make_generator(root / "g2.pt", 2)


def figure2_args(inputs, settings, out: Path):
    packs, g1, g2 = inputs
    return ["--packs", packs, "--srcnn", g1, "--srgan", g2,
            "--settings", json.dumps(settings), "--png", out / "f2.png", "--pdf", out / "f2.pdf"]


def test_figure2(inputs, tmp_path):
    run("figure2.py", *figure2_args(inputs, FIG2, tmp_path))
    assert_figures(tmp_path / "f2.png", tmp_path / "f2.pdf")


def test_figure2_bad_id_names_it(inputs, tmp_path):
    bad = {**FIG2, "ids": {"carbonate": 3601, "coal": 42}}
    proc = run("figure2.py", *figure2_args(inputs, bad, tmp_path), check=False)
    assert proc.returncode == 1
    assert "figures.figure2.ids.coal: image 42" in proc.stderr
    assert not (tmp_path / "f2.png").exists()


def test_figure3(tmp_path):
    rows = [{"rock_type": r, "split": s, "method": m, "psnr_mean": 25 + 3 * (m == "srcnn") + i,
             "psnr_std": 1.0, "ssim_mean": 0.8, "n": 5}
            for i, r in enumerate(["carbonate", "coal", "sandstone"]) for s in ["valid", "test"]
            for m in ["bicubic", "srcnn", "srgan"]]
    rows[0].update(psnr_std=float("nan"), n=1)  # a single image has no spread
    pd.DataFrame(rows).to_csv(tmp_path / "summary.csv", index=False)
    run("figure3.py", "--summary", tmp_path / "summary.csv", "--settings", '{"dpi": 40}',
        "--png", tmp_path / "f3.png", "--pdf", tmp_path / "f3.pdf")
    assert_figures(tmp_path / "f3.png", tmp_path / "f3.pdf")

    pd.DataFrame(rows).drop(columns="psnr_std").to_csv(tmp_path / "bad.csv", index=False)
    proc = run("figure3.py", "--summary", tmp_path / "bad.csv", "--settings", "{}",
               "--png", tmp_path / "b.png", "--pdf", tmp_path / "b.pdf", check=False)
    assert proc.returncode == 1 and "bad.csv: summary lacks column(s): psnr_std" in proc.stderr


def test_curves_plot_whatever_columns_exist(tmp_path):
    pd.DataFrame({"epoch": [1, 1, 2], "iteration": [3, 6, 9], "lr": [1e-4] * 3,
                  "loss_l1": [0.3, 0.2, 0.1], "train_psnr": [10, 11, 12],
                  "val_psnr": [None, 11.0, 12.5]}).to_csv(tmp_path / "p1.csv", index=False)
    pd.DataFrame({"epoch": [1, 1], "iteration": [2, 4], "loss_g": [1.0, 0.9],
                  "loss_d": [1.4, 1.3], "d_real": [0.6, 0.7], "d_fake": [0.4, 0.3]}
                 ).to_csv(tmp_path / "p2.csv", index=False)
    run("curves.py", "--phase1", tmp_path / "p1.csv", "--phase2", tmp_path / "p2.csv",
        "--settings", '{"dpi": 40}', "--png", tmp_path / "c.png", "--pdf", tmp_path / "c.pdf")
    assert_figures(tmp_path / "c.png", tmp_path / "c.pdf")


def test_texture_figure(inputs, tmp_path):
    """Drawn from the evaluation's spectra and summary: one spectrum panel per rock type with
    HR and every method, the upper band shaded; the CLI writes PNG + PDF."""
    import torch

    from rocksr.evaluate import evaluate, load_generator, summarize, write_csv
    from rocksr.figures import texture_figure
    from rocksr.texture import SpectrumSums

    packs, g1, g2 = inputs
    spectra = SpectrumSums()
    per_image = evaluate(packs, {"srcnn": load_generator(g1), "srgan": load_generator(g2)},
                         {"splits": ["valid", "test"], "batch_size": 4, "clamp": True,
                          "quantize": True}, torch.device("cpu"), spectra=spectra)
    table, summary = spectra.table(), summarize(per_image)
    fig = texture_figure(table, summary)
    carbonate = fig.axes[0]
    assert "carbonate" in carbonate.get_title() and "test" in carbonate.get_title()
    assert [line.get_label() for line in carbonate.get_lines()] == ["HR", "Bicubic", "SRCNN",
                                                                    "SRGAN"]
    hr = table[(table.rock_type == "carbonate") & (table.split == "test") & (table.method == "hr")]
    assert list(carbonate.get_lines()[0].get_ydata()) == list(hr.power)
    assert len(carbonate.patches) == 1  # the shaded upper band

    write_csv(table, tmp_path / "spectra.csv")
    write_csv(summary, tmp_path / "summary.csv")
    run("texture_figure.py", "--spectra", tmp_path / "spectra.csv", "--summary",
        tmp_path / "summary.csv", "--settings", '{"dpi": 40}', "--png", tmp_path / "t.png",
        "--pdf", tmp_path / "t.pdf")
    assert_figures(tmp_path / "t.png", tmp_path / "t.pdf")
    summary.drop(columns="s2_err_mean").to_csv(tmp_path / "bad.csv", index=False)
    proc = run("texture_figure.py", "--spectra", tmp_path / "spectra.csv", "--summary",
               tmp_path / "bad.csv", "--settings", "{}", "--png", tmp_path / "b.png",
               "--pdf", tmp_path / "b.pdf", check=False)
    assert proc.returncode == 1 and "summary lacks column(s): s2_err_mean" in proc.stderr
