"""Under `--profile profiles/<name>` Snakemake also loads the workflow profile
profiles/default, whose keys replace the named profile's. The effective settings, as
Snakemake's own command-line parser computes them, must be what each profile's file says."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workflow import ROOT, copy_workflow

# Snakemake's parser on a command line, run where the workflow is (profiles are found
# relative to it); prints the parsed options.
EFFECTIVE = """
import json, sys
from snakemake.cli import parse_args
_, args = parse_args(sys.argv[1:])
print(json.dumps(vars(args), default=str))
"""


def effective(wd: Path, *argv: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", EFFECTIVE, *argv], cwd=wd,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def mismatches(wd: Path, name: str) -> dict:
    """{setting: (file's value, effective value)} of the profile's plain settings that
    differ (options that take lists, such as resources and config files, left out)."""
    args = effective(wd, "--profile", f"profiles/{name}")
    data = yaml.safe_load((wd / "profiles" / name / "config.yaml").read_text())
    wanted = {key.replace("-", "_"): value for key, value in data.items()
              if isinstance(value, (bool, int, float, str))}
    return {k: (v, args.get(k)) for k, v in wanted.items()
            if not isinstance(args.get(k), list) and args.get(k) != v}


@pytest.mark.parametrize("name", ["slurm", "demo"])
def test_profile_settings_survive_the_workflow_profile(name):
    assert mismatches(ROOT, name) == {}


def test_slurm_profile_retries_three_times():
    assert effective(ROOT, "--profile", "profiles/slurm")["retries"] == 3
    assert effective(ROOT, "--profile", "profiles/slurm", "--retries", "0")["retries"] == 0


def test_check_catches_a_workflow_profile_that_overrides(tmp_path):
    """The check above can fail: a default profile with `retries: 1` (as this workflow once
    had) silently turns the SLURM profile's 3 retries into 1."""
    wd = copy_workflow(tmp_path)
    default = wd / "profiles" / "default" / "config.yaml"
    default.write_text(default.read_text() + "retries: 1\n")
    assert mismatches(wd, "slurm") == {"retries": (3, 1)}
    shutil.rmtree(wd / "profiles" / "default")
    assert mismatches(wd, "slurm") == {}
