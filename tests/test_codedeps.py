"""The package modules a script imports, found from its code (rocksr/workflow/codedeps.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rocksr.workflow.codedeps import CodeDepsError, code_files

ROOT = Path(__file__).resolve().parents[1]


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def deps(root: Path, script: str = "scripts/step.py", **kw) -> set[str]:
    return {p.relative_to(root).as_posix() for p in code_files(root / script, root, **kw)}


def test_chains_of_imports_are_followed_and_unused_modules_left_out(tmp_path):
    root = tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import thing\n",
        "pkg/b.py": "import pkg.c\nthing = 1\n",
        "pkg/c.py": "import os\nimport numpy\n",
        "pkg/unused.py": "",
        "scripts/step.py": "import sys\nfrom pkg.a import thing\n",
    })
    assert deps(root, packages=["pkg"]) == {"pkg/__init__.py", "pkg/a.py", "pkg/b.py",
                                            "pkg/c.py"}


def test_from_package_import_module_or_attribute(tmp_path):
    root = tree(tmp_path, {
        "pkg/__init__.py": "CONSTANT = 1\n",
        "pkg/cli.py": "",
        "pkg/other.py": "",
        "scripts/step.py": "from pkg import CONSTANT, cli\n",
    })
    assert deps(root, packages=["pkg"]) == {"pkg/__init__.py", "pkg/cli.py"}


def test_subpackages_run_their_init_files(tmp_path):
    root = tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/data/__init__.py": "",
        "pkg/data/split.py": "from . import packs\nfrom ..util import helper\n",
        "pkg/data/packs.py": "from .progress import bar\n",
        "pkg/data/progress.py": "",
        "pkg/util.py": "",
        "scripts/step.py": "import pkg.data.split as split\n",
    })
    assert deps(root, packages=["pkg"]) == {
        "pkg/__init__.py", "pkg/data/__init__.py", "pkg/data/split.py", "pkg/data/packs.py",
        "pkg/data/progress.py", "pkg/util.py"}


def test_imports_inside_functions_count(tmp_path):
    root = tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/lazy.py": "",
        "pkg/main.py": "def run():\n    from pkg import lazy\n    return lazy\n",
        "scripts/step.py": "def main():\n    import pkg.main\n",
    })
    assert deps(root, packages=["pkg"]) == {"pkg/__init__.py", "pkg/main.py", "pkg/lazy.py"}


def test_a_cycle_ends(tmp_path):
    root = tree(tmp_path, {
        "pkg/__init__.py": "from pkg import a\n",
        "pkg/a.py": "from pkg.b import f\n",
        "pkg/b.py": "import pkg.a\n",
        "scripts/step.py": "import pkg\n",
    })
    assert deps(root, packages=["pkg"]) == {"pkg/__init__.py", "pkg/a.py", "pkg/b.py"}


def test_other_packages_and_missing_modules_are_ignored(tmp_path):
    root = tree(tmp_path, {
        "pkg/__init__.py": "",
        "other/__init__.py": "",
        "scripts/step.py": "import other\nimport pkg.gone\nfrom . import x\n",
    })
    assert deps(root, packages=["pkg"]) == {"pkg/__init__.py"}


def test_a_file_that_does_not_parse_is_named(tmp_path):
    root = tree(tmp_path, {"pkg/__init__.py": "def broken(:\n",
                           "scripts/step.py": "import pkg\n"})
    with pytest.raises(CodeDepsError, match=r"pkg/__init__\.py: cannot read its imports"):
        code_files(root / "scripts" / "step.py", root, packages=["pkg"])


def test_the_real_steps():
    """Spot checks on this repository: training needs the models, figures the inference
    helpers (not the evaluation), the data steps need no torch code, and nobody needs the
    hooks or the config module that only the Snakefile imports."""
    train, figure3, split = (deps(ROOT, f"scripts/{name}.py")
                             for name in ("train", "figure3", "split"))
    assert {"rocksr/__init__.py", "rocksr/nets/models.py", "rocksr/train/loop.py"} <= train
    assert "rocksr/infer/inference.py" in figure3 and "rocksr/nets/models.py" in figure3
    assert "rocksr/eval/evaluate.py" not in figure3
    assert {"rocksr/data/split.py", "rocksr/data/archive.py", "rocksr/data/__init__.py"} <= split
    assert "rocksr/nets/models.py" not in split
    assert not any(f"rocksr/{m}.py" in files for files in (train, figure3, split)
                   for m in ("hooks", "config"))
