"""The package's floors: imports between rocksr's subpackages only go down, never up or
sideways, so each stage can be read (and the 3D work added) without the ones above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rocksr"

# Floor of each part of rocksr; a module may import only parts on a lower floor (and its
# own part). The ground floor (rocksr/*.py but figures) imports no subpackage.
FLOORS = {
    "ground": 0,
    "imaging": 1,
    "workflow": 1,
    "data": 2,
    "nets": 3,
    "infer": 4,
    "eval": 5,
    "train": 6,
    "figures": 7,
    "report": 8,
    "bench": 8,
    "__main__": 9,  # the `rocksr` command (python -m rocksr): its subcommands live below
}


def part(module: str) -> str | None:
    """The part of rocksr a dotted module name belongs to; None outside rocksr."""
    names = module.split(".")
    if names[0] != "rocksr":
        return None
    if len(names) == 1:
        return "ground"
    if names[1] in FLOORS:
        return names[1]
    return "ground"  # rocksr.settings, rocksr.device, rocksr.fileio, rocksr.progress


def module_name(path: Path, package: Path) -> str:
    rel = path.relative_to(package.parent).with_suffix("")
    names = list(rel.parts)
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def imports(path: Path) -> set[str]:
    """Every rocksr module or package `path` names in an import, at any depth."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from rocksr import x` names the part x; `from rocksr.a.b import x`, part a
            out.update([f"rocksr.{a.name}" for a in node.names] if node.module == "rocksr"
                       else [node.module])
    return {name for name in out if name.split(".")[0] == "rocksr"}


def violations(package: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        here = part(module_name(path, package))
        for name in sorted(imports(path)):
            there = part(name)
            if there is None or there == here:
                continue
            if FLOORS[there] >= FLOORS[here]:
                found.append(f"{path.relative_to(package.parent)} ({here}) imports {name} "
                             f"({there})")
    return found


def test_every_subpackage_has_a_floor_and_a_purpose():
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert parts <= set(FLOORS), f"subpackages without a floor: {parts - set(FLOORS)}"
    for name in parts:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
        assert doc and "import" in doc, f"rocksr/{name}/__init__.py: say what lives there and "\
                                        "what it may import"


def test_imports_only_go_down():
    assert violations() == []


@pytest.mark.parametrize("source, expected", [
    ("from rocksr.train.loop import train\n", "imports rocksr.train.loop (train)"),
    ("from rocksr.eval import metrics\n", "imports rocksr.eval (eval)"),
])
def test_an_upward_import_is_caught(tmp_path, source, expected):
    fake = tmp_path / "rocksr"
    (fake / "nets").mkdir(parents=True)
    (fake / "nets" / "__init__.py").write_text('"""x"""\n')
    (fake / "nets" / "bad.py").write_text(source)
    found = violations(fake)
    assert len(found) == 1 and expected in found[0] and "(nets)" in found[0]
