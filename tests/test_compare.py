"""Runs side by side: seed lists in the config, the comparison table, its figure and CLI."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from evalkit import as_json
from figcheck import problems
from rocksr.eval.compare import comparison_table, seed_spread
from rocksr.figures import COLORS, compare_figure
from rocksr.report import psnr_table
from rocksr.workflow import config as cfg

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def default():
    return cfg.load(ROOT / "config.yaml")


def test_a_seed_list_is_one_run_per_seed_and_one_seed_keeps_the_name(default):
    conf = copy.deepcopy(default)
    conf["runs"]["sweep"] = {"scale": 2, "degradation": "default", "seed": [3, 7],
                             "training": {"phase2": {"adv_weight": 5e-3}}}
    cfg.validate(conf)
    assert cfg.enabled_runs(conf) == ["paper", "sweep-s3", "sweep-s7"]
    assert cfg.phase_settings(conf, "sweep-s7", 2).seed == 7
    assert cfg.phase_settings(conf, "sweep-s3", 2).adv_weight == 5e-3
    assert cfg.phase_settings(conf, "paper", 1).seed == 0
    assert cfg.data_key(conf, "sweep-s3") == "x2_default"
    described = cfg.run_description(conf, "sweep-s7")
    assert {k: described[k] for k in ("name", "run", "seed", "scale", "degradation")} == {
        "name": "sweep-s7", "run": "sweep", "seed": 7, "scale": 2, "degradation": "default"}
    assert described["settings"]["training"]["phase2"]["adv_weight"] == 5e-3
    with pytest.raises(cfg.ConfigError, match="no run 'sweep'"):
        cfg.data_key(conf, "sweep")


def test_seed_lists_are_validated(default):
    conf = copy.deepcopy(default)
    conf["runs"]["paper"]["seed"] = []
    with pytest.raises(cfg.ConfigError, match="runs.paper.seed"):
        cfg.validate(conf)
    conf["runs"]["paper"]["seed"] = [1, 1]
    with pytest.raises(cfg.ConfigError, match="runs.paper.seed"):
        cfg.validate(conf)
    # A seed list must not make a name another run already has.
    conf["runs"]["paper"]["seed"] = [0, 1]
    conf["runs"]["paper-s1"] = {"scale": 4, "degradation": "unknown", "seed": 5}
    with pytest.raises(cfg.ConfigError, match="runs.paper.seed: seed 1 names a run 'paper-s1'"):
        cfg.validate(conf)
    # --config hands list items over as strings; they are read back as integers.
    conf = copy.deepcopy(default)
    conf["runs"]["paper"]["seed"] = ["0", "2"]
    assert cfg.validate(conf)["runs"]["paper"]["seed"] == [0, 2]


def summary(psnr: float, err: float) -> pd.DataFrame:
    return pd.DataFrame([{"rock_type": r, "split": s, "method": m,
                          "psnr_mean": psnr + (m == "srcnn"), "psnr_std": 0.5,
                          "spectrum_err_db_mean": err,
                          "n": 2}
                         for r in ("carbonate", "coal") for s in ("valid", "test")
                         for m in ("bicubic", "srcnn", "srgan")])


RUNS = [{"name": "a-s0", "run": "a", "seed": 0, "scale": 4, "degradation": "unknown"},
        {"name": "a-s1", "run": "a", "seed": 1, "scale": 4, "degradation": "unknown"},
        {"name": "b", "run": "b", "seed": 0, "scale": 2, "degradation": "default"}]


def test_comparison_table_and_seed_spread():
    table = comparison_table(RUNS, [summary(20, 3), summary(22, 5), summary(30, 1)])
    assert list(table.columns[:8]) == ["run", "seed", "name", "scale", "degradation",
                                       "rock_type", "split", "method"]
    assert len(table) == 3 * 12
    assert set(table[table.name == "b"].scale) == {2}
    spread = seed_spread(table, "psnr_mean")
    a = spread[(spread.run == "a") & (spread.method == "srcnn")]
    assert list(a["mean"].unique()) == [22.0] and list(a.seeds.unique()) == [2]
    assert a["std"].iloc[0] == pytest.approx(2 ** 0.5)  # sample std of 21 and 23
    assert spread[spread.run == "b"]["std"].isna().all()
    with pytest.raises(ValueError, match="3 runs but 2 summaries"):
        comparison_table(RUNS, [summary(1, 1)] * 2)


def test_compare_figure_draws_each_run_and_the_seed_spread():
    table = comparison_table(RUNS, [summary(20, 3), summary(22, 5), summary(30, 1)])
    fig = compare_figure(table)
    psnr_carbonate = fig.axes[0]
    assert psnr_carbonate.get_title() == "carbonate"
    assert psnr_carbonate.get_ylabel() == "PSNR (dB)\nminus run a's"
    assert [t.get_text() for t in fig.axes[2].get_xticklabels()] == [
        "a\nx4 unknown", "b\nx2 default"]  # bottom row
    assert "test split" in fig.get_suptitle()
    # Differences to run a's mean over seeds: a's seeds at -1 and +1 dB, its mean at 0,
    # b at +9 dB (SRCNN of b: 31; of a: 21 and 23).
    seeds = [line for line in psnr_carbonate.lines if line.get_marker() == "."][1]  # SRCNN
    means = psnr_carbonate.containers[1].lines[0]
    assert list(seeds.get_ydata()) == [-1.0, 1.0, 9.0]
    assert list(means.get_ydata()) == [0.0, 9.0]
    with pytest.raises(ValueError, match="psnr_mean"):
        compare_figure(table.drop(columns="psnr_mean"))
    # runs of volumes have no spectra: PSNR alone
    assert len(compare_figure(table.drop(columns="spectrum_err_db_mean")).axes) == 2


def test_cli_writes_table_settings_pages_and_figure(default, tmp_path):
    conf = copy.deepcopy(default)  # the runs of RUNS, described by the compare rule's function
    conf["runs"] = {"paper": {**conf["runs"]["paper"], "enabled": False},
                    "a": {"scale": 4, "degradation": "unknown", "seed": [0, 1]},
                    "b": {"scale": 2, "degradation": "default", "seed": 0,
                          "model": {"blocks": 1}}}
    settings = dataclasses.replace(cfg.compare_settings(cfg.validate(conf)), dpi=40)
    assert [r["name"] for r in settings.runs] == [r["name"] for r in RUNS]
    paths = []
    for run, frame in zip(RUNS, [summary(20, 3), summary(22, 5), summary(30, 1)]):
        paths.append(tmp_path / f"{run['name']}.csv")
        frame.to_csv(paths[-1], index=False)
    out = tmp_path / "compare"
    cmd = [sys.executable, str(ROOT / "scripts" / "compare.py"), "--summaries", *map(str, paths),
           "--settings", as_json(settings),
           "--table", str(out / "summary.csv"), "--runs", str(out / "runs.yaml"),
           "--html", str(out / "summary.html"), "--psnr", str(out / "psnr.html")]
    out.mkdir()
    subprocess.run(cmd, check=True, capture_output=True)
    table = pd.read_csv(out / "summary.csv")
    assert list(table.name.unique()) == ["a-s0", "a-s1", "b"]
    described = yaml.safe_load((out / "runs.yaml").read_text())
    assert described["b"]["settings"]["model"] == {"blocks": 1, "filters": 64,
                                                   "activation": "authors", "upsample": None}
    assert described["a-s1"]["seed"] == 1 and described["a-s1"]["run"] == "a"
    page = (out / "summary.html").read_text()
    # PSNR at a glance: b's test split, bicubic and SRCNN; then every run's metrics (no std
    # of the spectrum error in these summaries: the mean alone).
    assert ('<td class="key">b</td><td class="key">carbonate</td><td>30.00 ± 0.50</td>'
            "<td>31.00 ± 0.50</td>") in page
    assert "<td>1.00</td>" in page
    assert "blocks: 1" in page  # the settings in effect, as YAML
    assert "<table>" in (out / "psnr.html").read_text()
    figure = [sys.executable, str(ROOT / "scripts" / "compare_figure.py"),
              "--table", str(out / "summary.csv"), "--settings", as_json(settings),
              "--png", str(out / "c.png"), "--pdf", str(out / "c.pdf"),
              "--html", str(out / "c.html"), "--caption", str(ROOT / "report" / "compare.rst")]
    subprocess.run(figure, check=True, capture_output=True)
    assert (out / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert "data:image/png;base64," in (out / "c.html").read_text()
    proc = subprocess.run(cmd[:4] + cmd[5:], capture_output=True, text=True)  # one summary short
    assert proc.returncode == 1 and "3 runs but 2 summaries" in proc.stderr


def test_runs_of_volumes_are_drawn_against_the_first_run_of_volumes():
    """Images and volumes are not scored alike: a 3D run (tricubic baseline) is a difference
    to the first 3D run, whatever the 2D runs score."""
    volumes = summary(26, float("nan")).replace({"method": {"bicubic": "tricubic"}})
    runs = [RUNS[2], {"name": "v", "run": "v", "seed": 0, "scale": 4, "degradation": "unknown"},
            {"name": "w", "run": "w", "seed": 0, "scale": 4, "degradation": "unknown"}]
    table = comparison_table(runs, [summary(30, 1), volumes, volumes.assign(
        psnr_mean=volumes.psnr_mean + 1.5)])
    fig = compare_figure(table)
    srcnn = [c for c in fig.axes[0].containers
             if c.lines[0].get_color() == COLORS["srcnn"]]
    assert [list(c.lines[0].get_ydata()) for c in srcnn] == [[0.0], [0.0, 1.5]]
    assert fig.axes[0].get_ylabel().endswith("minus run b (images), v (volumes)'s")


def test_compare_figure_reads_cleanly_on_one_scale_per_metric():
    """Differences to the first run, on one y-range per metric across rock types (each panel
    on its own range made 0.3 dB look as large as 3 dB), every marker inside its panel."""
    table = comparison_table(RUNS, [summary(20, 3), summary(22, 5), summary(30, 1)])
    fig = compare_figure(table)
    assert problems(fig) == []
    rows = {}
    for ax in fig.axes:
        rows.setdefault(ax.get_subplotspec().rowspan.start, []).append(ax.get_ylim())
    assert len(rows) == 2 and all(len(set(limits)) == 1 for limits in rows.values()), rows


def test_one_run_is_a_table_row_not_a_plot():
    table = comparison_table(RUNS[2:], [summary(30, 1)])
    with pytest.raises(ValueError, match="one run"):
        compare_figure(table)
    glance = psnr_table(table)
    assert glance.to_dict("records") == [
        {"run": "b", "rock type": rock, "Bicubic": "30.00 ± 0.50", "SRCNN": "31.00 ± 0.50",
         "SRGAN": "30.00 ± 0.50", "n": "2", "split": "test"} for rock in ("carbonate", "coal")]
