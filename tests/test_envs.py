"""envs/*.yaml (for `--sdm conda`) agree with requirements.txt and cover what the steps import."""

from __future__ import annotations

import ast
import functools
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS = sorted((ROOT / "envs").glob("*.yaml"))
LOCAL_PACKAGE = "rocksr"


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"requirements.txt: {line!r} is not pinned with =="
            pins[norm(name)] = version.strip()
    return pins


def env_pins(path: Path) -> dict[str, str]:
    """{package: version} of an env file: conda `name=version` and pip `name==version`."""
    pins = {}
    for dep in yaml.safe_load(path.read_text())["dependencies"]:
        if isinstance(dep, dict):
            for spec in dep.get("pip", []):
                name, sep, version = spec.partition("==")
                assert sep, f"{path.name}: pip entry {spec!r} is not pinned with =="
                pins[norm(name)] = version.strip()
        else:
            name, _, version = str(dep).partition("=")
            pins[norm(name)] = version.lstrip("=").strip()
    return pins


def rule_envs() -> dict[str, str]:
    """{script name: env file name} from rules/*.smk (each rule's step_code and conda)."""
    found = {}
    for smk in (ROOT / "rules").glob("*.smk"):
        for block in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            script = re.search(r'step_code\("(\w+)"\)', block)
            env = re.search(r'conda:\s*"[^"]*envs/([\w.-]+\.yaml)"', block)
            if script:
                assert env, f"{smk.name}: rule {block.split(':')[0]} has no conda: env"
                found.setdefault(script.group(1), set()).add(env.group(1))
    return found


def _runtime_nodes(tree: ast.AST):
    """ast.walk, leaving out `if TYPE_CHECKING:` blocks (imports for type hints only)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _imports(path: Path) -> set[str]:
    names = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _local_file(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] != LOCAL_PACKAGE:
        return None
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def third_party_imports(script: Path) -> set[str]:
    """Top-level third-party modules a script imports, following the local package."""
    seen, todo, found = set(), [script], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.is_relative_to(ROOT / LOCAL_PACKAGE):
            # importing rocksr.x.y runs rocksr/__init__.py and rocksr/x/__init__.py too
            for parent in path.relative_to(ROOT).parents:
                init = ROOT / parent / "__init__.py"
                if str(parent) != "." and init.is_file():
                    todo.append(init)
        for module in _imports(path):
            top = module.split(".")[0]
            if top == LOCAL_PACKAGE:
                local = _local_file(module)
                if local:
                    todo.append(local)
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.add(top)
    return found


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return packages_distributions()


def distribution(module: str) -> str:
    dists = _distributions().get(module)
    assert dists, f"module {module!r} is imported but not installed in this venv"
    return norm(dists[0])


def test_env_pins_match_requirements():
    req = requirements()
    assert ENVS, "no envs/*.yaml"
    for path in ENVS:
        for name, version in env_pins(path).items():
            if name in ("python", "pip"):
                continue
            assert name in req, f"{path.name}: {name} is not in requirements.txt"
            assert version == req[name], (
                f"{path.name}: {name}=={version} but requirements.txt pins {req[name]}")


def test_env_python_satisfies_pyproject():
    requires = re.search(r'requires-python\s*=\s*">=\s*([\d.]+)"',
                         (ROOT / "pyproject.toml").read_text()).group(1)
    for path in ENVS:
        python = env_pins(path)["python"]
        assert tuple(map(int, python.split("."))) >= tuple(map(int, requires.split("."))), (
            f"{path.name}: python={python}, pyproject requires >={requires}")


@pytest.mark.parametrize("script", sorted(p.stem for p in (ROOT / "scripts").glob("*.py")))
def test_env_has_what_the_step_imports(script):
    """Every runtime package a script imports (itself or through rocksr) is in the env its
    rule names, and in the torch env, which holds the whole runtime."""
    envs = rule_envs().get(script, set()) | {"torch.yaml"}
    imports = third_party_imports(ROOT / "scripts" / f"{script}.py")
    needed = {distribution(m) for m in imports}
    for env in sorted(envs):
        have = set(env_pins(ROOT / "envs" / env))
        missing = needed - have
        assert not missing, (f"scripts/{script}.py imports {sorted(missing)} "
                             f"(modules {sorted(imports)}), missing from envs/{env}")


def test_pip_install_declares_what_the_rocksr_command_imports():
    """`pip install .` brings every package the `rocksr` command imports (rocksr/__main__.py
    and what it imports), no more than requirements.txt has, at its pins as lower bounds."""
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.M | re.S)[1]
    declared = dict(re.findall(r'"([\w.-]+)>=([\w.]+)"', block))
    declared = {norm(name): version for name, version in declared.items()}
    needed = {distribution(m) for m in third_party_imports(ROOT / LOCAL_PACKAGE / "__main__.py")}
    assert needed <= set(declared), f"pyproject.toml lacks {sorted(needed - set(declared))}"
    req = requirements()
    for name, version in declared.items():
        assert req.get(name) == version, f"pyproject.toml: {name}>={version}, requirements.txt " \
                                         f"pins {req.get(name)}"
    assert re.search(r'^rocksr = "rocksr.__main__:main"$', text, re.M)
