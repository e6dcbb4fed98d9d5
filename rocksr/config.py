"""Workflow configuration: loading, schema validation with readable errors, per-run views.

The schema (config.schema.yaml beside this file) is the single description of every key.
Rules pass each script only the slice of config it uses (see `phase_settings` etc.), so
Snakemake's params trigger reruns exactly the steps whose settings changed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def validate(config: dict, source: str = "config") -> dict:
    """Raise ConfigError listing every invalid key (dotted path) with what is wrong."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    _coerce_strings(config, validator)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key_path(e)}: {_describe(e)}" for e in errors]
        raise ConfigError(f"invalid configuration in {source}:\n" + "\n".join(lines))
    for name, run in config["runs"].items():
        for key in run.get("training", {}):
            if key not in config["training"] and key not in ("phase1", "phase2"):
                raise ConfigError(f"runs.{name}.training.{key}: unknown training key")
    expand_runs(config)  # seed lists must not name a run twice
    return config


def _coerce_strings(config: dict, validator: jsonschema.Draft202012Validator) -> None:
    """Snakemake's `--config key='{a: 4, b: true}'` hands nested scalars over as strings
    ('4', 'true'). Where the schema wants a number, boolean or null and a string reads as
    one, use the value (in place, so every rule sees it typed); anything else stays an error."""
    while True:
        fixes = []
        for error in validator.iter_errors(config):
            if (error.validator != "type" or not isinstance(error.instance, str)
                    or not error.absolute_path):
                continue
            value, wanted = _scalar(error.instance), error.validator_value
            types = [wanted] if isinstance(wanted, str) else wanted
            if any(validator.is_type(value, t) for t in types):
                fixes.append((list(error.absolute_path), value))
        if not fixes:
            return
        for path, value in fixes:
            parent = config
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = value


def _scalar(text: str) -> Any:
    try:  # JSON first: YAML 1.1 reads "1e-05" (no dot) as a string
        return json.loads(text)
    except json.JSONDecodeError:
        return yaml.safe_load(text) if text.strip() else text


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown key(s)")
    if error.validator == "oneOf" and error.instance is not None:
        return f"{json.dumps(error.instance)} is neither null nor a valid setting"
    return error.message


def load(path: str | Path) -> dict:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return validate(config, str(path))


def deep_merge(base: dict, override: dict) -> dict:
    """Return base updated by override; nested dicts merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def seed_run_name(run: str, seed: int) -> str:
    return f"{run}-s{seed}"


def expand_runs(config: dict) -> dict[str, dict]:
    """Every run under the name of its results folder, with one integer seed each.

    A run whose `seed` is a list stands for one run per seed, named `{run}-s{seed}`; a run
    with one integer seed keeps its name. Each entry's `run` is the name in the config."""
    runs: dict[str, dict] = {}
    for name, run in config["runs"].items():
        seeds = run["seed"] if isinstance(run["seed"], list) else None
        for seed in seeds if seeds is not None else [run["seed"]]:
            key = name if seeds is None else seed_run_name(name, seed)
            if key in runs or (key != name and key in config["runs"]):
                raise ConfigError(f"runs.{name}.seed: seed {seed} names a run {key!r}, "
                                  "which another run of the config already has")
            runs[key] = {**run, "seed": seed, "run": name}
    return runs


def enabled_runs(config: dict) -> list[str]:
    """Names (results folders) of the enabled runs, seed lists expanded."""
    return [name for name, run in expand_runs(config).items() if run.get("enabled", True)]


def _run(config: dict, run: str) -> dict:
    runs = expand_runs(config)
    if run not in runs:
        raise ConfigError(f"no run {run!r} in the config (runs: {', '.join(runs)})")
    return runs[run]


def data_key(config: dict, run: str) -> str:
    """Name of the shared data product for a run: depends on scale and degradation only."""
    r = _run(config, run)
    return f"x{r['scale']}_{r['degradation']}"


def data_keys(config: dict) -> list[str]:
    return sorted({data_key(config, run) for run in enabled_runs(config)})


def parse_data_key(key: str) -> tuple[int, str]:
    scale, degradation = key.split("_", 1)
    return int(scale[1:]), degradation


def run_training(config: dict, run: str) -> dict:
    """The `training` block with the run's overrides merged in."""
    return deep_merge(config["training"], _run(config, run).get("training", {}))


def phase_settings(config: dict, run: str, phase: int) -> dict:
    """Everything one training phase depends on, and nothing else."""
    training = run_training(config, run)
    r = _run(config, run)
    return {
        "phase": phase,
        "scale": r["scale"],
        "seed": r["seed"],
        "model": deep_merge(config["model"], r.get("model", {})),
        "device": training["device"],
        "precision": training["precision"],
        "channels_last": training["channels_last"],
        "compile": training["compile"],
        "checkpoint_every": training["checkpoint_every"],
        "validation": training["validation"],
        **training[f"phase{phase}"],
    }


def run_description(config: dict, run: str) -> dict:
    """What a run is, for the comparison: its config name, data, seed, and the settings in
    effect (model, both training phases, evaluation)."""
    r = _run(config, run)
    return {"name": run, "run": r["run"], "scale": r["scale"], "degradation": r["degradation"],
            "seed": r["seed"], "settings": {
                "model": deep_merge(config["model"], r.get("model", {})),
                "training": run_training(config, run), "evaluation": config["evaluation"]}}


def parse_settings(text: str) -> dict[str, Any]:
    """CLI helper: settings given inline as JSON/YAML, or as @path to such a file."""
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read settings file {path}: {exc}") from None
    try:  # JSON first: YAML 1.1 reads JSON's "1e-05" (no dot) as a string, not a float
        value = json.loads(text)
    except json.JSONDecodeError:
        value = yaml.safe_load(text)
    if not isinstance(value, dict):
        raise ConfigError(f"settings must be a mapping, got: {text[:80]!r}")
    return value
