"""The package modules a step's script runs, read from its import statements.

The rules declare these files as inputs (rules/common.smk), so editing a module reruns the
steps that import it, and only those. Pure stdlib and parse-only (nothing is imported): the
Snakefile computes this for every rule at every DAG build.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator
from pathlib import Path


class CodeDepsError(Exception):
    """A file whose imports cannot be read."""


def module_file(root: Path, name: str) -> Path | None:
    """The file that `import name` runs from `root`: a package's __init__.py (which Python
    prefers over a module of the same name) or name.py; None if neither exists."""
    base = root.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


@functools.cache
def _imports(path: Path, name: str | None) -> tuple[str, ...]:
    """Absolute names `path` (module `name`, None for a script) may import, at any depth of
    its code (function bodies included): each `import a.b`, and for `from a import b` both
    `a` and `a.b` (b may be a submodule or just an attribute: the caller checks for a file).
    Cached for the process: one DAG build reads each module once for all rules."""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise CodeDepsError(f"{path}: cannot read its imports: {exc}") from exc
    package = (name if path.name == "__init__.py" else name.rpartition(".")[0]) if name else ""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            if base:
                found.append(base)
                found.extend(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return tuple(found)


def _absolute(node: ast.ImportFrom, package: str) -> str | None:
    """The module a `from ... import` names; None for a relative import outside a package
    (a script's: Python would refuse it too)."""
    if not node.level:
        return node.module
    parts = package.split(".") if package else []
    if node.level > len(parts):
        return None
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def code_files(script: str | Path, root: str | Path,
               packages: Iterable[str] = ("rocksr",)) -> list[Path]:
    """The files of `packages` (found under `root`) that running `script` imports, directly
    or through one another; a package's __init__.py counts, since importing a.b runs a's.
    Not the script itself, nor what only a string passed to importlib would import."""
    root, packages = Path(root), set(packages)
    found: dict[str, Path] = {}
    todo: list[tuple[Path, str | None]] = [(Path(script), None)]
    while todo:
        path, name = todo.pop()
        for imported in _imports(path, name):
            for module in _prefixes(imported):
                if module.partition(".")[0] not in packages:
                    break
                if module not in found:
                    file = module_file(root, module)
                    if file is None:  # an attribute, not a module
                        break
                    found[module] = file
                    todo.append((file, module))
    return sorted(found.values())


def _prefixes(name: str) -> Iterator[str]:
    """a, a.b, a.b.c for a.b.c: what `import a.b.c` runs, in order."""
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])
