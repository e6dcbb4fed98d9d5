"""`make ... TORCH_CUDA=<variant>` reaches pip's command line (this machine can reach only
the default index, so the download itself is not tested): a fake venv records every call."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def pins() -> dict[str, str]:
    text = (ROOT / "requirements.txt").read_text()
    return dict(re.findall(r"^(torch|torchvision)==(\S+)", text, re.M))


@pytest.fixture
def venv(tmp_path) -> Path:
    """A venv whose python only appends its arguments to calls.txt."""
    bin_ = tmp_path / "venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "python").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls.txt\n')
    (bin_ / "python").chmod(0o755)
    return tmp_path / "venv"


def install(venv: Path, *args: str) -> list[str]:
    """Run the venv recipe; return the python calls it made."""
    calls = venv.parent / "calls.txt"
    calls.unlink(missing_ok=True)
    proc = subprocess.run(["make", "--no-print-directory", f"VENV={venv}", *args,
                           f"{venv}/.installed"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return calls.read_text().splitlines() if calls.exists() else []


def pip_install_line(calls: list[str]) -> str:
    lines = [c for c in calls if c.startswith("-m pip install --quiet -r requirements.txt")]
    assert len(lines) == 1, calls
    return lines[0]


def test_default_build_is_pypis_wheel(venv):
    line = pip_install_line(install(venv))
    assert "index-url" not in line and "+" not in line
    assert (venv / ".torch-default").exists()


def test_variant_reaches_pip_and_switching_replaces_torch(venv):
    torch, vision = pins()["torch"], pins()["torchvision"]
    calls = install(venv)  # the default build first
    assert not [c for c in calls if "uninstall" in c]
    calls = install(venv, "TORCH_CUDA=cu126")
    line = pip_install_line(calls).split()
    at = line.index("--extra-index-url")
    assert line[at + 1] == "https://download.pytorch.org/whl/cu126"
    assert f"torch=={torch}+cu126" in line and f"torchvision=={vision}+cu126" in line
    # torch of the old build is removed first: its version satisfies the plain pin
    assert calls.index("-m pip uninstall --quiet -y torch torchvision") < calls.index(
        " ".join(line))
    assert sorted(p.name for p in venv.glob(".torch-*")) == [".torch-cu126"]
    assert install(venv, "TORCH_CUDA=cu126") == []  # up to date: nothing to do
    # back to the default: torch removed again, installed without the extra index
    calls = install(venv)
    assert "-m pip uninstall --quiet -y torch torchvision" in calls
    assert "index-url" not in pip_install_line(calls)
    # another index (a mirror) is passed on as given
    line = pip_install_line(install(venv, "TORCH_CUDA=cpu", "TORCH_INDEX=http://mirror/whl"))
    assert "--extra-index-url http://mirror/whl/cpu" in line
