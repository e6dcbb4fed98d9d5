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


def enabled_runs(config: dict) -> list[str]:
    return [name for name, run in config["runs"].items() if run.get("enabled", True)]


def data_key(config: dict, run: str) -> str:
    """Name of the shared data product for a run: depends on scale and degradation only."""
    r = config["runs"][run]
    return f"x{r['scale']}_{r['degradation']}"


def data_keys(config: dict) -> list[str]:
    return sorted({data_key(config, run) for run in enabled_runs(config)})


def parse_data_key(key: str) -> tuple[int, str]:
    scale, degradation = key.split("_", 1)
    return int(scale[1:]), degradation


def run_training(config: dict, run: str) -> dict:
    """The `training` block with the run's overrides merged in."""
    return deep_merge(config["training"], config["runs"][run].get("training", {}))


def phase_settings(config: dict, run: str, phase: int) -> dict:
    """Everything one training phase depends on, and nothing else."""
    training = run_training(config, run)
    r = config["runs"][run]
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


def evaluation_settings(config: dict) -> dict:
    """The evaluation block, plus the intensity window when external HR sets need it."""
    settings = dict(config["evaluation"])
    if settings.get("external"):
        settings["intensity"] = config["intensity"]
    return settings


def predict_settings(config: dict) -> dict:
    """What the predict step depends on besides its input and models."""
    return {"tile": config["predict"]["tile"], "overlap": config["predict"]["overlap"],
            "intensity": config["intensity"]}


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
