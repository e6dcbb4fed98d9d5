"""Helpers for end-to-end tests: a private copy of the workflow, run with Snakemake."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "config.yaml", "rules", "scripts", "rocksr", "profiles",
                  "envs", "report", "tests/tiny.yaml", "tests/tiny3d.yaml"]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (not results, venv or git) so a test can edit and rerun it freely."""
    for name in WORKFLOW_FILES:
        src, dst = ROOT / name, dest / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True,
              configfiles: tuple[str, ...] = ("tests/tiny.yaml",)) -> subprocess.CompletedProcess:
    cmd = [*SNAKEMAKE, "--cores", "2", "--resources", "gpu=1", "--configfile", *configfiles, *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def planned_jobs(workdir: Path, *args: str, **kw) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run would execute, `all` excluded."""
    proc = snakemake(workdir, "--dry-run", *args, **kw)
    text = proc.stdout + proc.stderr
    jobs = []
    for block in re.split(r"\n(?=\[.*\]\n)|\n\n", text):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if rule and rule.group(1) != "all":
            wildcards = re.search(r"^\s+wildcards: (.*)$", block, re.M)
            jobs.append((rule.group(1), wildcards.group(1) if wildcards else ""))
    return jobs
