"""`pip install .` gives a working `rocksr` command: the wheel is built from the package
alone, installed without dependencies into a fresh venv that sees this venv's packages
(what `pip install .` would bring: pyproject.toml declares them, tests/test_envs.py checks
the list), and `rocksr predict` runs on the CPU from another folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import tifffile

from evalkit import make_generator
from rocksr.infer.modelfile import export

pytestmark = pytest.mark.workflow  # builds a wheel and a venv: tens of seconds

ROOT = Path(__file__).resolve().parents[1]


def run(*args, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{args}: {proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_pip_install_gives_the_rocksr_command(tmp_path):
    src = tmp_path / "src"  # the package alone: nothing of the checkout can leak in
    shutil.copytree(ROOT / "rocksr", src / "rocksr",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", src)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "-w", tmp_path / "wheel", src)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    # This venv's packages, as a plain path: its .pth files (the checkout's editable
    # install among them) are not run.
    Path(site.stdout.strip(), "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    [wheel] = (tmp_path / "wheel").glob("rocksr-*.whl")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        wheel)

    work = tmp_path / "work"
    work.mkdir()
    make_generator(work / "g.pt", 0)
    export(work / "g.pt", work / "exported.safetensors",
           {"name": "mine", "phase": 1, "run": {"degradation": "unknown"}, "data": "x4_unknown",
            "dataset": {}})
    tifffile.imwrite(work / "stack16.tif",
                     np.random.default_rng(0).integers(0, 65535, (2, 16, 20), dtype=np.uint16),
                     imagej=True, resolution=(1 / 3.2, 1 / 3.2),
                     metadata={"spacing": 3.2, "unit": "um"})
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    where = run(python, "-c", "import rocksr; print(rocksr.__file__)", cwd=work, env=env)
    assert where.stdout.startswith(str(venv))
    run(venv / "bin" / "rocksr", "predict", "stack16.tif", "-o", "out", "--model",
        "exported.safetensors", "--device", "cpu", cwd=work, env=env)
    manifest = json.loads((work / "out" / "manifest.json").read_text())
    assert manifest["failed"] == 0 and manifest["methods"] == ["bicubic", "mine"]
    with tifffile.TiffFile(work / "out" / "mine" / "stack16.tif") as tif:
        assert tif.series[0].shape == (2, 64, 80) and tif.imagej_metadata["spacing"] == 3.2
