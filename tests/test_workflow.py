"""End-to-end: the tiny workflow runs through; partial reruns touch only what changed."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
import yaml

import browser
from rocksr import ROCK_TYPES
from rocksr.nets.models import load_model
from workflow import copy_workflow, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

FIGURES = {"figure2", "figure3", "training_curves", "texture_figure"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run in a private copy of the workflow."""
    wd = copy_workflow(tmp_path_factory.mktemp("wf"))
    snakemake(wd)
    return wd


def overlay(wd, name, data):
    path = wd / name
    path.write_text(yaml.safe_dump(data))
    return ("tests/tiny.yaml", name)


def test_tiny_run_produces_every_output(finished):
    run = finished / "results" / "tiny"
    for rel in ["phase1/generator.pt", "phase1/metrics.csv", "phase2/generator.pt",
                "phase2/discriminator.pt", "phase2/metrics.csv", "evaluation/per_image.csv",
                "figures/figure2.png", "figures/figure2.pdf", "figures/figure3.png",
                "figures/figure3.pdf", "figures/curves.png", "figures/texture.png",
                "evaluation/spectra.csv"]:
        assert (run / rel).stat().st_size > 0, rel
    assert not (run / "checkpoints").exists()  # accepted outputs: checkpoints deleted
    summary = pd.read_csv(run / "evaluation" / "summary.csv")
    assert set(summary.rock_type) == set(ROCK_TYPES)
    assert set(summary.method) == {"bicubic", "srcnn", "srgan"}
    assert len(summary) == len(ROCK_TYPES) * 2 * 3  # rock types x (valid, test) x methods
    assert summary.spectrum_err_db_mean.notna().all() and summary.s2_err_mean.notna().all()
    compare = pd.read_csv(finished / "results" / "compare" / "summary.csv")
    assert set(compare.name) == {"tiny"} and len(compare) == len(summary)
    for rule in ["split", "train_phase1", "train_phase2", "evaluate", "figure2"]:
        logs = list((finished / "results").rglob(f"{rule}*.log"))
        assert logs and all(p.stat().st_size > 0 for p in logs), rule
    # what the VGG term was, in the record, the phase-2 log and every metrics row
    record = yaml.safe_load((run / "vgg_weights.yaml").read_text())
    assert (record["source"], record["file"], record["exact"]) == ("random", None, False)
    assert "VGG19 RANDOM weights" in (run / "logs" / "train_phase2.log").read_text()
    phase2 = pd.read_csv(run / "phase2" / "metrics.csv")
    assert phase2.vgg.str.contains("RANDOM").all() and not phase2.vgg_exact.any()
    assert {"alpha", "beta", "cos_l1_adv"} <= set(phase2)


def test_report_bundles_the_figures_and_the_summary(finished):
    snakemake(finished, "--report", "results/report.html")
    html = (finished / "results" / "report.html").read_text(errors="replace")
    for name in ("figure2.html", "figure3.html", "curves.html", "texture.html", "summary.csv",
                 "summary.html", "psnr.html", "runs.yaml", "vgg_weights.yaml"):
        assert name in html, name
    assert "compare.html" not in html  # one run: a row of the table, no figure
    # The opening page: what was run, and the citations (DeepRock-SR's ODC-BY licence).
    for text in ("What was run", "tiny", "10.17612/s3m9-e024", "ODC-BY 1.0",
                 "10.1029/2019WR026052"):
        assert text in html, text


# Run in the report once it has loaded: what its landing page shows, then each link of its
# list of pages clicked in turn (back to the landing page in between), each page's HTML.
READ_THE_REPORT = """
const sleep = ms => new Promise(done => setTimeout(done, ms));
await sleep(500);
const table = document.querySelector(".rocksr table");
const landing = {table: table && table.innerText, text: document.body.innerText};
const opened = [];
const count = document.querySelectorAll("a[onclick]").length;
for (let i = 0; i < count; i++) {
  const link = document.querySelectorAll("a[onclick]")[i];
  const label = link.innerText;
  link.click();
  await sleep(300);
  const frame = document.querySelector("iframe");
  const path = Object.keys(results).find(p => frame && results[p].data_uri === frame.src);
  const page = path && new TextDecoder().decode(Uint8Array.from(
    atob(frame.src.split(",")[1]), c => c.charCodeAt(0)));
  opened.push({label, path, page});
  app.setView({content: "rulegraph"});
  await sleep(300);
}
for (const category of Object.keys(categories)) {
  app.showCategory(category);
  await sleep(200);
}
return {landing, opened};
"""


def test_report_reads_in_a_browser(finished):
    """Opened in headless Chromium, the report's first page shows the PSNR table; each table
    and figure opens from its link there, a figure with its caption under it; no page error."""
    if browser.chromium() is None:
        pytest.skip(browser.why_missing())
    report = finished / "results" / "report.html"
    snakemake(finished, "--report", str(report.relative_to(finished)))
    seen = browser.run_in_page(report, READ_THE_REPORT)
    assert seen["pageErrors"] == []
    table = seen["result"]["landing"]["table"]
    assert table.splitlines()[0].split("\t") == ["run", "rock type", "Bicubic", "SRCNN",
                                                  "SRGAN", "n"]
    assert {line.split("\t")[1] for line in table.splitlines()[1:]} == set(ROCK_TYPES)
    assert " ± " in table and "{{" not in seen["result"]["landing"]["text"]
    opened = {o["path"]: o for o in seen["result"]["opened"]}
    assert set(opened) == {f"results/tiny/figures/{f}.html"
                           for f in ("figure2", "figure3", "curves", "texture")} | {
        "results/tiny/evaluation/summary.html", "results/compare/summary.html"}, opened
    for path, o in opened.items():
        page = o["page"]
        if "/figures/" in path:  # the figure, then its caption
            assert page.index("<img src=\"data:image/png;base64,") < page.index(
                "<figcaption><p>") < page.index("</figcaption>"), path
        else:
            assert "<table>" in page and " ± " in page, path
    assert "epochs:" in opened["results/compare/summary.html"]["page"]  # settings, as YAML


def test_nothing_to_do_when_up_to_date(finished):
    assert planned_jobs(finished) == []


def test_figure_option_reruns_only_figure_rules(finished):
    files = overlay(finished, "fig.yaml", {"figures": {"dpi": 41}})
    assert {rule for rule, _ in planned_jobs(finished, configfiles=files)} == FIGURES | {"compare"}
    box = {"x": 0.1, "y": 0.1, "size": 0.5}
    files = overlay(finished, "box.yaml", {"figures": {"figure2": {"box": box}}})
    assert {rule for rule, _ in planned_jobs(finished, configfiles=files)} == {"figure2"}


def test_phase2_hyperparameter_reruns_phase2_and_descendants_only(finished):
    files = overlay(finished, "p2.yaml",
                    {"runs": {"tiny": {"training": {"phase2": {"adv_weight": 5e-3}}}}})
    rules = {rule for rule, _ in planned_jobs(finished, configfiles=files)}
    assert rules == {"train_phase2", "evaluate", *FIGURES, "compare", "summary_table"}


def test_settings_that_change_no_weights_retrain_nothing(finished):
    """Checkpoint interval, validation subset, and on a CPU run (tiny.yaml's device: cpu)
    precision and cuda_graphs: Snakemake's params trigger does not fire for the training
    rules. (The comparison's runs.yaml lists every setting in effect: it is rewritten.)"""
    files = overlay(finished, "runtime.yaml", {"runs": {"tiny": {"training": {
        "checkpoint_every": 7, "validation": {"images": 1}, "precision": "fp32",
        "cuda_graphs": False}}}})
    assert planned_jobs(finished, configfiles=files) == [("compare", "")]
    files = overlay(finished, "layout.yaml",
                    {"runs": {"tiny": {"training": {"channels_last": False}}}})
    rules = {rule for rule, _ in planned_jobs(finished, configfiles=files)}
    assert rules == {"train_phase1", "train_phase2", "evaluate", *FIGURES, "compare",
                     "summary_table"}


def planned_after_editing(wd, rel):
    """The rules a dry run plans once the file `rel` of the workflow copy `wd` is edited."""
    # A real edit: Snakemake 9 ignores a newer mtime when the input's checksum is unchanged.
    path = wd / rel
    original, before = path.read_text(), path.stat()
    path.write_text(original + "\n# edited\n")
    try:
        return {rule for rule, _ in planned_jobs(wd)}
    finally:
        path.write_text(original)
        os.utime(path, (before.st_atime, before.st_mtime))


def test_edited_evaluation_script_reruns_evaluation_and_its_figures(finished):
    # Figure 2 and the curves do not read the evaluation.
    assert planned_after_editing(finished, "scripts/evaluate.py") == {
        "evaluate", "figure3", "texture_figure", "compare", "summary_table"}


def test_edited_module_reruns_the_steps_that_import_it(finished):
    # Only the evaluate script imports rocksr.eval.evaluate; the figures that read its tables
    # follow. Every figure script imports rocksr.infer.inference (through rocksr.figures), and
    # so do the tables' (through rocksr.report).
    assert planned_after_editing(finished, "rocksr/eval/evaluate.py") == {
        "evaluate", "figure3", "texture_figure", "compare", "summary_table"}
    assert planned_after_editing(finished, "rocksr/infer/inference.py") == {
        "evaluate", *FIGURES, "compare", "summary_table"}
    assert planned_after_editing(finished, "rocksr/nets/models.py") == {
        "train_phase1", "train_phase2", "evaluate", *FIGURES, "compare", "summary_table"}
    assert planned_after_editing(finished, "rocksr/data/split.py") == {
        "split", "train_phase1", "train_phase2", "evaluate", *FIGURES, "compare",
        "summary_table"}
    # Imported by the Snakefile only (a slice that changes reruns its step through params);
    # config.py validates the config before any job.
    assert planned_after_editing(finished, "rocksr/workflow/hooks.py") == set()
    assert planned_after_editing(finished, "rocksr/workflow/config.py") == set()


def test_second_run_trains_only_that_run(finished):
    tiny = yaml.safe_load((finished / "tests" / "tiny.yaml").read_text())["runs"]["tiny"]
    files = overlay(finished, "two.yaml", {"runs": {"tiny2": {**tiny, "seed": 1}}})
    jobs = planned_jobs(finished, configfiles=files)
    # The comparison now holds both runs, and draws them side by side.
    assert {job for job in jobs if not job[1]} == {("compare", ""), ("compare_figure", "")}
    jobs = [job for job in jobs if job[1]]
    assert jobs and all(w == "run=tiny2" for _, w in jobs)
    assert {rule for rule, _ in jobs} == {"vgg_record", "train_phase1", "train_phase2",
                                          "evaluate", *FIGURES, "summary_table"}


def write_stack(path, shape=(3, 30, 40), seed=0):
    rng = np.random.default_rng(seed)
    tifffile.imwrite(path, rng.integers(5000, 30000, shape, dtype=np.uint16),
                     photometric="minisblack")


def test_predict_target_super_resolves_a_16bit_stack_and_null_touches_nothing(finished):
    write_stack(finished / "sample.tif")
    # ("--cores 2" again ends the helper's --configfile list, so "predict" reads as the target.)
    proc = snakemake(finished, "--cores", "2", "predict", "--config",
                     "predict={input: sample.tif, tile: 16}", "intensity={window: percentile}")
    out = finished / "results" / "tiny" / "predict"
    manifest = json.loads((out / "manifest.json").read_text())
    [entry] = manifest["inputs"]
    assert entry["intensity"]["window"].startswith("percentile")
    assert 0 < entry["intensity"]["clipped_fraction"] < 0.02
    for method in ("bicubic", "srcnn", "srgan"):
        stack = tifffile.imread(out / method / "sample.tif")
        assert stack.shape == (3, 120, 160) and stack.dtype.name == "uint16"
    # At the end of a run: where the report comes from, and the test-split PSNR per run.
    assert "--report results/report.html" in proc.stdout
    assert re.search(r"tiny: test-split PSNR \(dB\).*\n.*bicubic +srcnn +srgan\n +carbonate +\d",
                     proc.stdout)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    # predict.input is null by default
    proc = snakemake(finished, "--cores", "2", "predict", check=False)
    assert proc.returncode != 0 and "predict.input is null" in proc.stderr + proc.stdout
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_external_set_reruns_evaluation_and_joins_the_summary(finished):
    write_stack(finished / "ketton.tif", shape=(2, 48, 48), seed=1)
    external = [{"name": "ketton", "path": "ketton.tif"}]
    files = overlay(finished, "ext.yaml", {"evaluation": {"external": external}})
    assert {rule for rule, _ in planned_jobs(finished, configfiles=files)} == {
        "evaluate", "figure3", "texture_figure", "compare", "summary_table"}
    snakemake(finished, configfiles=files)
    summary = pd.read_csv(finished / "results" / "tiny" / "evaluation" / "summary.csv")
    ketton = summary[summary.rock_type == "ketton"]
    assert set(ketton.method) == {"bicubic", "srcnn", "srgan"} and set(ketton.split) == {"test"}
    assert (ketton.n == 2).all()
    snakemake(finished)  # back to the plain tiny run for the tests after this one
    assert planned_jobs(finished) == []


def test_compare_two_seeds_of_a_run(finished, tmp_path):
    """A seed list makes one run per seed; the comparison holds both and their spread."""
    wd = shutil.copytree(finished, tmp_path / "wf", symlinks=True)
    files = overlay(wd, "seeds.yaml", {"runs": {"tiny": {"seed": [0, 1]}}})
    # Two runs: the default target draws them side by side (one run has no such figure).
    assert "compare_figure" in {rule for rule, _ in planned_jobs(wd, configfiles=files)}
    snakemake(wd, "--", "results/compare/summary.csv", "results/compare/compare.png",
              configfiles=files)  # "--": not a configfile
    table = pd.read_csv(wd / "results" / "compare" / "summary.csv")
    assert set(table.name) == {"tiny-s0", "tiny-s1"} and set(table.run) == {"tiny"}
    assert set(table.seed) == {0, 1} and set(table.scale) == {4}
    assert len(table) == 2 * len(ROCK_TYPES) * 2 * 3
    # Different seeds train different generators (the tiny run's outputs can round to the
    # same 8-bit images, so compare the weights).
    g0, g1 = (load_model(wd / "results" / f"tiny-s{seed}" / "phase1" / "generator.pt")
              for seed in (0, 1))
    assert any(not torch.equal(a, b) for a, b in zip(g0.state_dict().values(),
                                                      g1.state_dict().values()))
    runs = yaml.safe_load((wd / "results" / "compare" / "runs.yaml").read_text())
    assert runs["tiny-s1"]["seed"] == 1 and runs["tiny-s1"]["settings"]["model"]["blocks"] == 1
    assert (wd / "results" / "compare" / "compare.png").stat().st_size > 0
    assert "<figcaption>" in (wd / "results" / "compare" / "compare.html").read_text()


def move_module(wd, old, new):
    """Move the module `old` (dotted name) of the workflow copy `wd` to `new` and fix its
    importers, as a reorganisation of the package does: written anew, as `git pull` does."""
    src, dst = (wd / f"{name.replace('.', '/')}.py" for name in (old, new))
    dst.write_text(src.read_text())
    src.unlink()
    for path in [*wd.glob("scripts/*.py"), *wd.glob("rocksr/**/*.py")]:
        text = path.read_text()
        moved = re.sub(rf"\b{re.escape(old)}\b", new, text)
        if moved != text:
            path.write_text(moved)


def test_finished_run_stays_current_after_a_reorganisation_and_one_touch(finished, tmp_path):
    """A move of package modules (here rocksr/fileio.py, which every step imports, into a
    subpackage, as the move into stage subpackages did) changes every step's declared inputs
    (rules/common.smk, step_code): Snakemake plans the whole run again, training included.
    The README's `snakemake --touch` (with the run's own options) marks the finished
    results current instead."""
    wd = shutil.copytree(finished, tmp_path / "wf", symlinks=True)
    assert planned_jobs(wd) == []  # moving the folder keeps it current: relative inputs
    move_module(wd, "rocksr.fileio", "rocksr.data.fileio")
    assert {"train_phase1", "train_phase2"} <= {rule for rule, _ in planned_jobs(wd)}
    # Rerun triggers do not help: Snakemake 9 always checks the inputs' mtimes.
    assert "train_phase1" in {rule for rule, _ in planned_jobs(
        wd, "--rerun-triggers", "params", "code", "software-env")}
    snakemake(wd, "--touch")
    assert planned_jobs(wd) == []


# --- the VGG19 weights: resolved before any training ---------------------------------------

def imagenet(wd):
    return overlay(wd, "imagenet.yaml",
                   {"runs": {"tiny": {"training": {"phase2": {"vgg_weights": "imagenet"}}}}})


def test_offline_imagenet_stops_naming_the_weights_before_phase1_trains(tmp_path, monkeypatch):
    wd = copy_workflow(tmp_path / "wf")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    # Offline: every HTTP(S) request goes to a proxy on a closed port (no request leaves).
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "")
    proc = snakemake(wd, check=False, configfiles=imagenet(wd))
    assert proc.returncode != 0
    log = (wd / "results" / "logs" / "vgg_weights_vgg19-dcbb9e9d.pth.log").read_text()
    assert "could not download the ImageNet VGG19 weights vgg19-dcbb9e9d.pth" in log
    assert str(tmp_path / "empty" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth") in log
    assert "vgg19-dcbb9e9d.pth" in proc.stdout + proc.stderr
    assert not (wd / "results" / "tiny" / "phase1" / "generator.pt").exists()
    assert not (wd / "results" / "weights" / "vgg19-dcbb9e9d.pth").exists()


def job_inputs(wd, *args, **kw) -> dict[str, list[str]]:
    """The input files of each rule's job in a dry run (one job per rule)."""
    text = snakemake(wd, "--dry-run", *args, **kw).stdout
    return {m[1]: m[2].split(", ") for m in re.finditer(
        r"^(?:local)?rule (\w+):\n(?:\s+.*\n)*?\s+input: (.*)$", text, re.M)}


def test_a_named_local_file_is_verified_before_training_and_an_input_of_phase2(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    (wd / "mine").mkdir()
    (wd / "mine" / "vgg19.npy").write_bytes(b"weights")
    files = overlay(wd, "local.yaml", {"runs": {"tiny": {"training": {"phase2": {
        "vgg_weights": "mine/vgg19.npy"}}}}})
    inputs = job_inputs(wd, configfiles=files)
    assert "mine/vgg19.npy" in inputs["vgg_weights"]
    assert "results/weights/vgg19.npy" in inputs["vgg_record"]
    assert {"results/weights/vgg19.npy", "results/tiny/vgg_weights.yaml"} <= set(
        inputs["train_phase2"])
    assert "results/tiny/vgg_weights.yaml" in inputs["train_phase1"]
    # a path that is no file stops the workflow at its start, dry runs included
    files = overlay(wd, "missing.yaml", {"runs": {"tiny": {"training": {"phase2": {
        "vgg_weights": "mine/nope.npy"}}}}})
    proc = snakemake(wd, "--dry-run", check=False, configfiles=files)
    assert proc.returncode != 0
    assert "training.phase2.vgg_weights: mine/nope.npy: no such file" in proc.stdout + proc.stderr
