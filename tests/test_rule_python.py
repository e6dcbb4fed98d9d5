"""Rules run the Python that runs Snakemake (`.venv/bin/snakemake` works without activating
the venv), not whatever `python` comes first on PATH."""

from __future__ import annotations

import os
import subprocess
import sys

from workflow import SNAKEMAKE, copy_workflow

TARGET = "results/synthetic/DeepRockSR-2D.zip"


def test_rules_use_snakemakes_interpreter_not_the_one_on_path(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    # A PATH without the venv, whose first `python` is not the venv's (like a system one
    # without torch): a rule that ran it would fail.
    decoy = tmp_path / "bin"
    decoy.mkdir()
    (decoy / "python").write_text("#!/bin/sh\necho 'decoy python ran' >&2\nexit 7\n")
    (decoy / "python").chmod(0o755)
    venv_bin = os.path.dirname(sys.executable)
    path = os.pathsep.join([str(decoy)] + [p for p in os.environ["PATH"].split(os.pathsep)
                                           if p and p != venv_bin])
    proc = subprocess.run([*SNAKEMAKE, TARGET, "--cores", "1", "--configfile", "tests/tiny.yaml",
                           "--printshellcmds"], cwd=wd, capture_output=True, text=True,
                          env={**os.environ, "PATH": path})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (wd / TARGET).is_file()
    assert "decoy python ran" not in proc.stderr
    assert '"$PYTHON" scripts/make_synthetic.py' in proc.stdout + proc.stderr
