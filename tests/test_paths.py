"""The workflow from a checkout path with a space, run from another directory, and extra
config files layered over the demo profile's."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from workflow import ROOT, SNAKEMAKE, copy_workflow, planned_jobs

pytestmark = pytest.mark.workflow


def test_every_path_in_a_shell_command_is_quoted():
    """{input...}, {output...}, {log}, {params...} all carry Snakemake's :q (shell quoting)."""
    unquoted = []
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for field in re.findall(r"\{((?:input|output|log|params)[\w.]*)(:\w+)?\}", smk.read_text()):
            if field[1] != ":q":
                unquoted.append(f"{smk.name}: {{{field[0]}{field[1]}}}")
    assert not unquoted, unquoted


def test_checkout_path_with_a_space_run_from_another_directory(tmp_path):
    checkout = copy_workflow(tmp_path / "my checkout")
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    cmd = [*SNAKEMAKE, "-s", str(checkout / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", "--configfile", str(checkout / "tests" / "tiny.yaml"),
           "--", "results/data/x4_unknown/manifest.csv"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert (workdir / "results" / "data" / "x4_unknown" / "manifest.csv").exists()
    assert not (tmp_path / "results").exists() and not (checkout / "results").exists()


def test_demo_profile_from_another_directory_with_an_added_run(tmp_path):
    """The README's way to add a run under the demo profile: its file, then yours. The demo
    run stays, the added one joins it, and the paper run (download) stays off."""
    checkout = copy_workflow(tmp_path / "my checkout")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "more.yaml").write_text(yaml.safe_dump(
        {"runs": {"more": {"scale": 4, "degradation": "unknown", "seed": 1}}}))
    profile = ["-s", str(checkout / "Snakefile"), "--profile", str(checkout / "profiles" / "demo")]
    alone = subprocess.run([*SNAKEMAKE, *profile, "--dry-run"], cwd=elsewhere,
                           capture_output=True, text=True)
    assert alone.returncode == 0, alone.stdout[-3000:] + alone.stderr[-3000:]
    assert "run=demo" in alone.stdout and "rule download" not in alone.stdout
    jobs = planned_jobs(elsewhere, *profile,
                        configfiles=(str(checkout / "profiles" / "demo" / "workflow.yaml"),
                                     "more.yaml"))
    runs = {w for rule, w in jobs if rule == "train_phase1"}
    assert runs == {"run=demo", "run=demo3d", "run=more"}, jobs
    assert "download" not in {rule for rule, _ in jobs}


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_make_demo_layers_config_over_the_demo_profile():
    proc = subprocess.run(["make", "-n", "demo", "CONFIG=more.yaml"], cwd=ROOT,
                          capture_output=True, text=True)
    assert ("snakemake --profile profiles/demo --configfile profiles/demo/workflow.yaml "
            "more.yaml") in proc.stdout, proc.stdout + proc.stderr
