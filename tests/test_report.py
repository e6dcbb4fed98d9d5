"""The report's pages: the results tables (mean ± std, n, methods by name), each figure with
its caption under it, and the scripts that write them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from rocksr.report import ACCURACY, figure_page, metrics_table, psnr_fragment, summary_page

ROOT = Path(__file__).resolve().parents[1]


def summary() -> pd.DataFrame:
    rows = [{"rock_type": r, "split": s, "method": m, "n": 6, "psnr_mean": 20.0 + i,
             "psnr_std": 0.25, "ssim_mean": 0.5, "spectrum_err_db_mean": 12.0,
             "spectrum_err_db_std": float("nan")}
            for r in ("carbonate", "coal") for s in ("valid", "test")
            for i, m in enumerate(("bicubic", "srcnn", "srgan"))]
    rows[0].update(n=1, psnr_std=float("nan"))  # one image: no spread
    return pd.DataFrame(rows)


def test_metrics_table_reads_mean_std_and_n():
    table = metrics_table(summary(), ACCURACY)
    assert list(table.columns) == ["rock type", "split", "method", "n", "PSNR (dB)", "SSIM"]
    assert table.iloc[0].tolist() == ["carbonate", "valid", "Bicubic", "1", "20.00", "0.500"]
    assert table.iloc[1].tolist() == ["carbonate", "valid", "SRCNN", "6", "21.00 ± 0.25",
                                      "0.500"]


def test_summary_page_has_both_tables_and_the_psnr_fragment_the_test_split():
    page = summary_page(summary(), "demo")
    assert page.startswith("<!DOCTYPE html>") and page.count("<table>") == 2
    assert "<th>upper-band spectrum error (dB)</th>" in page and "<td>12.00</td>" in page
    fragment = psnr_fragment(summary().assign(name="demo"))
    assert "on the test split" in fragment and "<html" not in fragment
    assert ('<td class="key">demo</td><td class="key">coal</td><td>20.00 ± 0.25</td>'
            "<td>21.00 ± 0.25</td><td>22.00 ± 0.25</td><td>6</td>") in fragment


def test_figure_page_shows_the_figure_then_its_caption(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "f.png")
    (tmp_path / "f.rst").write_text("First <paragraph>\nwrapped.\n\nSecond one.\n")
    page = figure_page(tmp_path / "f.png", tmp_path / "f.rst", "<p>notes</p>")
    img, caption = page.index('<img src="data:image/png;base64,iVBOR'), page.index("<figcaption>")
    assert img < caption
    assert ("<figcaption><p>First &lt;paragraph&gt; wrapped.</p><p>Second one.</p>"
            "</figcaption></figure><p>notes</p>") in page


def test_summary_table_script_writes_the_page_and_names_a_bad_summary(tmp_path):
    summary().to_csv(tmp_path / "summary.csv", index=False)
    script = [sys.executable, str(ROOT / "scripts" / "summary_table.py"), "--run", "demo"]
    subprocess.run([*script, "--summary", str(tmp_path / "summary.csv"),
                    "--html", str(tmp_path / "s.html")], check=True, capture_output=True)
    assert "Evaluation summary of run demo" in (tmp_path / "s.html").read_text()
    summary().drop(columns="n").to_csv(tmp_path / "bad.csv", index=False)
    proc = subprocess.run([*script, "--summary", str(tmp_path / "bad.csv"),
                           "--html", str(tmp_path / "b.html")], capture_output=True, text=True)
    assert proc.returncode == 1 and "bad.csv: lacks column(s): n" in proc.stderr
    assert not (tmp_path / "b.html").exists()
