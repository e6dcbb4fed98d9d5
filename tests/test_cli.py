"""One pattern for every step's CLI (rocksr/workflow/cli.py): the same parser, --log and entry."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import torch

from rocksr.workflow import cli, job

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "scripts").glob("*.py")
                 if p.stem != "train")  # its own exit statuses (stop signals): below


def step_source(script: Path) -> str:
    """A script's text; for a thin wrapper of a command of the package (`from rocksr.x
    import ... main`, e.g. predict: `rocksr predict`), that module's text."""
    wrapped = re.search(r"^from (rocksr[\w.]*) import .*\bmain\b", script.read_text(), re.M)
    return (ROOT / f"{wrapped[1].replace('.', '/')}.py").read_text() if wrapped else (
        script.read_text())


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_script_uses_the_one_pattern(script):
    assert "cli.run(main" in script.read_text()
    text = step_source(script)
    assert "cli.parser(__doc__" in text or "cli.figure_parser(__doc__" in text
    assert "args = cli.parse(ap, argv)" in text
    assert "def main(argv: list[str] | None = None) -> None:" in text
    assert "argparse.ArgumentParser(" not in text and "setup_logging" not in text


def test_parse_starts_logging_to_the_log_file(tmp_path):
    ap = cli.parser("doc", "what the settings are")
    args = cli.parse(ap, ["--settings", "{dpi: 40}", "--log", str(tmp_path / "x.log")])
    try:
        logging.getLogger("rocksr.test").info("hello")
        assert "hello" in (tmp_path / "x.log").read_text()
        assert args.settings == "{dpi: 40}"
    finally:
        logging.getLogger().handlers.clear()  # leave no handler on the test's file behind


def test_the_training_script_parses_and_logs_as_the_others():
    text = (Path(__file__).resolve().parents[1] / "scripts" / "train.py").read_text()
    assert "cli.parser(__doc__" in text and "cli.parse(ap, argv)" in text
    assert "cli.settings(args, PhaseSettings" in text and "setup_logging" not in text


JOB_SCRIPTS = ["train", "evaluate", "predict"]


@pytest.mark.parametrize("name", JOB_SCRIPTS)
def test_the_compute_steps_take_threads_gpus_and_device_one_way(name):
    text = step_source(ROOT / "scripts" / f"{name}.py")
    assert "job.arguments(ap" in text and "job.start(args, " in text
    for own in ('"--threads"', '"--gpus"', '"--device"', "set_num_threads", "pick_device("):
        assert own not in text, own


def test_job_start_sets_torch_threads_and_picks_the_device(tmp_path):
    ap = cli.parser("doc", "settings")
    job.arguments(ap)
    args = cli.parse(ap, ["--settings", "{}", "--threads", "1", "--gpus", "1",
                          "--log", str(tmp_path / "x.log")])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert job.start(args, "cpu", "evaluation.device") == torch.device("cpu")
        assert torch.get_num_threads() == 1
        # the job holds a GPU but cpu was asked for: nothing to say about it
        assert (tmp_path / "x.log").read_text() == ""
        # without --threads (a user's command line), torch keeps its own count
        assert job.start(cli.parse(ap, ["--settings", "{}"]), "cpu", "k") == torch.device("cpu")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
        logging.getLogger().handlers.clear()
