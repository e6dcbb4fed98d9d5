"""Every command shown in README.md and docs/*.md runs, each in a cheap form.

Convention: a command a reader is meant to type goes in a fenced block tagged ```sh, one
command per line (a trailing backslash continues it; `#` starts a comment). Output goes in
untagged blocks and config fragments in ```yaml blocks (validated against the schema
below). Other shell tags (bash, console, shell, zsh) fail the test, so that no command
escapes it. The lines of one block run in order in one fresh copy of the workflow, so a
line may use a file that the line before it made.

How each command form runs (RUNNERS; a line that matches none fails and says so):
- `make <target> [VAR=value ...]`: `make -n` in the checkout (prints the recipe, runs
  nothing; an unknown target fails). For the targets in EXPANDED, the printed `snakemake`
  and `scripts/` lines run too, as below (a `--report` line needs finished outputs: the
  report is tested in tests/test_workflow.py).
- `snakemake ...` or `.venv/bin/snakemake ...`: a dry run (`-n`) in the copy. With
  `--sdm conda`, skipped where conda is not installed.
- `python scripts/<name>.py ...`: each `--option` of the line must be in the script's
  `--help`, and a value must be one of the option's choices where it has them.
- `python -c "..."`: run as is, in the copy (keep such lines cheap).
- `rocksr ...` or `python -m rocksr ...`: run for real, in the copy (the `rocksr` command
  of the checkout, on the tiny placeholder models below).
- `source .venv/bin/activate`: the Makefile must create its venv in `.venv`.

Placeholders in the docs become tiny real inputs: `my.tif` and `my.yaml` in the copy,
`/data/DeepRockSR-2D.zip` a tiny synthetic archive (`/data/DeepRockSR-3D.zip` a 3D one),
`/data/vgg19.npy` a stand-in file (a dry run only needs it to exist), `~/rocksr` the copy,
`/scratch/me` an empty folder. For a `rocksr` line and a `snakemake ... predict` line, the
runs `paper` and `demo` stand trained, as after the paper run or `make demo`: tiny random
generators in `results/{run}/phase{1,2}/generator.pt` and their exported model files in
`results/{run}/export/`. A block with a Snakemake line is marked `workflow`
(`make test-fast` skips it).
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from evalkit import make_generator
from rocksr.infer.modelfile import export
from rocksr.workflow import config as cfg
from workflow import ROOT, SNAKEMAKE, copy_workflow

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND_TAG = "sh"
REFUSED_TAGS = {"bash", "console", "shell", "zsh", "shell-session"}
EXPANDED = {"demo", "bench"}  # make targets whose recipe lines are run as well
MY_YAML = "runs:\n  extra:\n    scale: 2\n    degradation: default\n    seed: 1\n"
HOW_TO_ADD = ("add a runner to RUNNERS in tests/test_docs.py, or show the line outside a "
              "```sh block if it is not a command to run")


# --- reading the docs ----------------------------------------------------------------

def fenced_blocks(path: Path) -> list[tuple[str, int, list[str]]]:
    """(tag, first line number, lines) of every fenced block, indentation removed."""
    blocks, lines = [], path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^(\s*)```\s*(\S*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        indent, tag, start, body = len(opening[1]), opening[2], i + 1, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:])
            i += 1
        blocks.append((tag, start + 1, body))
        i += 1
    return blocks


def commands(body: list[str]) -> list[str]:
    """A block's command lines: continuations joined, comments and blank lines dropped."""
    joined, out = "\n".join(body).replace("\\\n", " "), []
    for line in joined.splitlines():
        if shlex.split(line, comments=True):
            out.append(line.strip())
    return out


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def command_blocks():
    for path in DOCS:
        for tag, line, body in fenced_blocks(path):
            if tag == COMMAND_TAG:
                lines = commands(body)
                marks = ([pytest.mark.workflow] if any(is_snakemake(shlex.split(c, comments=True))
                                                       or c.startswith("make demo")
                                                       for c in lines) else [])
                yield pytest.param(lines, id=f"{rel(path)}:{line}", marks=marks)


def is_snakemake(argv: list[str]) -> bool:
    return bool(argv) and argv[0] in ("snakemake", ".venv/bin/snakemake")


# --- the runners ---------------------------------------------------------------------

class Session:
    """One block's copy of the workflow and its placeholders."""

    def __init__(self, tmp_path: Path, archive: Path, archive_3d: Path | None = None):
        self.workdir = copy_workflow(tmp_path / "wf")
        (tmp_path / "scratch").mkdir()
        self.placeholders = {"~/rocksr": str(self.workdir),
                             "/scratch/me": str(tmp_path / "scratch"),
                             "/data/DeepRockSR-2D.zip": str(archive),
                             "/data/DeepRockSR-3D.zip": str(archive_3d),
                             "/data/vgg19.npy": str(tmp_path / "vgg19.npy")}
        (tmp_path / "vgg19.npy").write_bytes(b"stand-in")
        tifffile.imwrite(self.workdir / "my.tif", np.zeros((20, 24), np.uint8))
        (self.workdir / "my.yaml").write_text(MY_YAML)
        self.skipped: list[str] = []
        self.trained = False

    def trained_models(self) -> None:
        """The runs paper and demo trained, as tiny random generators, and exported."""
        if self.trained:
            return
        for run in ("paper", "demo"):
            for phase, method in cfg.METHODS.items():
                generator = self.workdir / "results" / run / f"phase{phase}" / "generator.pt"
                generator.parent.mkdir(parents=True)
                make_generator(generator, phase)
                export(generator, self.workdir / "results" / run / "export" /
                       f"{run}_{method}.safetensors",
                       {"name": f"{run}_{method}", "phase": phase, "data": "x4_unknown",
                        "run": {"degradation": "unknown"}, "dataset": {}})
        self.trained = True

    def argv(self, line: str) -> list[str]:
        words = shlex.split(line, comments=True)
        for text, value in self.placeholders.items():
            words = [w.replace(text, value) for w in words]
        return words

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        env["PYTHONPATH"] = str(self.workdir)
        return env


def run_snakemake(s: Session, argv: list[str], line: str) -> None:
    if "--sdm" in argv and "conda" in argv and not shutil.which("conda"):
        s.skipped.append(line)
        return
    if "predict" in argv:
        s.trained_models()
    proc = subprocess.run([*SNAKEMAKE, *argv[1:], "-n"], cwd=s.workdir, env=s.env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0, (f"`{line}` fails as a dry run ({proc.returncode}):\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")


@functools.cache
def script_help(script: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / script), "--help"], cwd=ROOT,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, f"{script} --help fails:\n{proc.stderr[-3000:]}"
    return proc.stdout


def run_script(s: Session, argv: list[str], line: str) -> None:
    script = argv[1]
    assert (ROOT / script).is_file(), f"`{line}`: no such script {script}"
    usage = script_help(script)
    choices = {m[1]: m[2].split(",") for m in re.finditer(r"(--[\w-]+) \{([^}]*)\}", usage)}
    option = None
    for word in argv[2:]:
        if word.startswith("--"):
            option, _, value = word.partition("=")
            assert re.search(rf"{re.escape(option)}(?![\w-])", usage), (
                f"`{line}`: {script} has no option {option}")
            if value and option in choices:
                assert value in choices[option], (
                    f"`{line}`: {option} {value!r} is not one of {choices[option]}")
        elif option in choices:
            assert word in choices[option], (
                f"`{line}`: {option} {word!r} is not one of {choices[option]}")


def run_python_c(s: Session, argv: list[str], line: str) -> None:
    proc = subprocess.run([sys.executable, *argv[1:]], cwd=s.workdir, env=s.env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"`{line}` fails:\n{proc.stderr[-3000:]}"


def run_rocksr(s: Session, argv: list[str], line: str) -> None:
    s.trained_models()
    args = argv[3:] if argv[0] == "python" else argv[1:]
    proc = subprocess.run([sys.executable, "-m", "rocksr", *args], cwd=s.workdir, env=s.env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"`{line}` fails ({proc.returncode}):\n{proc.stderr[-3000:]}"


def run_activate(s: Session, argv: list[str], line: str) -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^VENV \?= \.venv$", makefile, re.M), "the Makefile's venv is not .venv"
    assert "python3 -m venv $(VENV)" in makefile, "the Makefile no longer makes a venv"


def run_make(s: Session, argv: list[str], line: str) -> None:
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    target, assignments = argv[1], argv[2:]
    assert all(re.fullmatch(r"[A-Z_]+=.*", a, re.S) for a in assignments), (
        f"`{line}`: only `make <target> VAR=value ...` is known; {HOW_TO_ADD}")
    proc = subprocess.run(["make", "-n", target, *assignments], cwd=ROOT, env=s.env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"`{line}`: make -n fails:\n{proc.stderr[-3000:]}"
    if target in EXPANDED:
        recipe = [r for r in proc.stdout.splitlines()
                  if re.match(r"(snakemake |\S*python scripts/)", r) and "--report" not in r]
        assert recipe, f"`{line}`: no snakemake or scripts/ line in its recipe:\n{proc.stdout}"
        for step in recipe:
            dispatch(s, step.replace(".venv/bin/python", "python"))


RUNNERS = [  # (the form of a command's words, its runner)
    (lambda a: a[0] == "make" and len(a) > 1, run_make),
    (is_snakemake, run_snakemake),
    (lambda a: a[0] == "python" and len(a) > 1 and a[1].startswith("scripts/"), run_script),
    (lambda a: a[:2] == ["python", "-c"] and len(a) == 3, run_python_c),
    (lambda a: a[0] == "rocksr" or a[:3] == ["python", "-m", "rocksr"], run_rocksr),
    (lambda a: a == ["source", ".venv/bin/activate"], run_activate),
]


def dispatch(s: Session, line: str) -> None:
    argv = s.argv(line)
    for matches, runner in RUNNERS:
        if matches(argv):
            runner(s, argv, line)
            return
    pytest.fail(f"no runner for `{line}`: {HOW_TO_ADD}")


@pytest.mark.parametrize("lines", list(command_blocks()))
def test_documented_commands_run(lines, tmp_path, synthetic_archive, synthetic_archive_3d):
    session = Session(tmp_path, synthetic_archive, synthetic_archive_3d)
    for line in lines:
        dispatch(session, line)
    if session.skipped:
        pytest.skip("conda is not installed, not run: " + "; ".join(session.skipped))


# --- the docs themselves -------------------------------------------------------------

def test_commands_are_found_and_no_other_shell_tag_is_used():
    tags = {(rel(p), line, tag) for p in DOCS for tag, line, _ in fenced_blocks(p)}
    assert not [t for t in tags if t[2] in REFUSED_TAGS], f"use ```{COMMAND_TAG}: {tags}"
    readme = [shlex.split(c, comments=True) for tag, _, body in fenced_blocks(ROOT / "README.md")
              if tag == COMMAND_TAG for c in commands(body)]
    for wanted in ("make demo", "make test", "snakemake --cores 8 --resources gpu=1"):
        assert wanted.split() in readme, f"README.md shows no `{wanted}`"
    assert sum(len(lines.values[0]) for lines in command_blocks()) > 30


def test_a_line_without_a_runner_fails(tmp_path, synthetic_archive):
    with pytest.raises(pytest.fail.Exception, match="no runner for `rm -rf results`"):
        dispatch(Session(tmp_path, synthetic_archive), "rm -rf results")


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_yaml_examples_are_valid_config(path):
    default = cfg.load(ROOT / "config.yaml")
    for tag, line, body in fenced_blocks(path):
        if tag == "yaml":
            cfg.validate(cfg.deep_merge(default, yaml.safe_load("\n".join(body))),
                         f"{rel(path)}:{line}")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_relative_links_resolve(path):
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{rel(path)}: link to missing {target}"
        if anchor:
            headings = re.findall(r"^#+ (.*)$", dest.read_text(), re.M)
            assert anchor in {slug(h) for h in headings}, f"{rel(path)}: no anchor {target}"


def test_login_node_rules_are_the_snakefiles():
    """docs/cluster.md and profiles/slurm's comment name exactly the Snakefile's localrules."""
    snakefile = (ROOT / "Snakefile").read_text()
    local = set(re.search(r"^localrules:\n((?:\s+\w+,?\n)+)", snakefile, re.M)[1]
                .replace(",", " ").split())
    rules = set(re.findall(r"^rule (\w+):", snakefile + "".join(
        p.read_text() for p in (ROOT / "rules").glob("*.smk")), re.M))
    assert local and local <= rules
    paragraph = re.search(r"^Each rule instance becomes one .*?\n\n",
                          (ROOT / "docs" / "cluster.md").read_text(), re.M | re.S)[0]
    assert set(re.findall(r"`(\w+)`", paragraph)) & rules == local
    profile = (ROOT / "profiles" / "slurm" / "config.yaml").read_text()
    listed = re.search(r"`localrules:`.*?\((.*?)\)", profile, re.S)[1]
    assert set(re.findall(r"\w+", listed)) == local
