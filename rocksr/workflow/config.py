"""Workflow configuration: loading, schema validation with readable errors, per-run views.

Every key is defined once, in the dataclasses of rocksr.settings; the JSON schema that
validates the config is generated from them (SCHEMA). Rules pass each script only the slice
of config it uses (see `phase_settings` etc.), so Snakemake's params trigger reruns exactly
the steps whose settings changed.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rocksr.settings import (
    VGG_IMAGENET_FILE,
    CompareSettings,
    ConfigError,
    DataSettings,
    EvaluationSettings,
    Figure2Settings,
    FigureSettings,
    OrthosliceSettings,
    Phase2Keys,
    PhaseSettings,
    PredictKeys,
    PredictSettings,
    Synthetic3DSettings,
    SyntheticSettings,
    VggSettings,
    config_schema,
)

if TYPE_CHECKING:
    import jsonschema

SCHEMA = config_schema()


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def _is_integer(checker, instance) -> bool:
    # JSON Schema counts 8.0 as an integer; torch does not (sizes, counts, seeds).
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.cache
def _validator_class() -> type:
    # Imported here: the benchmarks read the config (`read`) on machines without jsonschema.
    import jsonschema

    return jsonschema.validators.extend(
        jsonschema.Draft202012Validator,
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer",
                                                                          _is_integer))


def validate(config: dict, source: str = "config") -> dict:
    """Raise ConfigError listing every invalid key (dotted path) with what is wrong."""
    validator = _validator_class()(SCHEMA)
    _read_back(config, validator)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key_path(e)}: {_describe(e)}" for e in errors]
        raise ConfigError(f"invalid configuration in {source}:\n" + "\n".join(lines))
    _fill_defaults(config, SCHEMA)
    expand_runs(config)  # seed lists must not name a run twice
    for name in enabled_runs(config):  # cross-key rules at the start, not after phase 1
        for phase in (1, 2):
            phase_settings(config, name, phase)
    check_steps(config)
    return config


def _read_back(config: dict, validator: jsonschema.protocols.Validator) -> None:
    """Give values the type the schema wants, in place, so every rule sees them typed.

    Snakemake's `--config key='{a: 4, b: null}'` hands nested scalars over as strings ('4',
    'null'). A string that reads as a number, boolean or null takes that value wherever it
    adds no schema error: an enum of numbers, a number, a boolean, a string-or-null key (so
    'null' is null there); and wherever it is of the type the key wants, even out of the
    key's bounds, so that validation then reports '0 is less than ...' as it does for a
    YAML file, not "'0' is not of type 'integer'". A whole-number float (8.0, 5e1) becomes an
    int where the schema wants an integer. Anything else is left for validation to report.
    """
    def error_counts() -> Counter:
        return Counter((tuple(e.absolute_path), e.validator) for e in validator.iter_errors(config))

    before = error_counts()
    for path, parent, key, value in list(_leaves(config)):
        candidate = _typed(value)
        if candidate is _UNCHANGED:
            continue
        parent[key] = candidate
        after = error_counts()
        added, removed = after - before, before - after
        typed = (path, "type") in removed  # the key's own type error is gone
        # A string is read back unless that adds an error (other than the bounds of a key
        # it now has the type of); a float only to remove one.
        if (added and not typed) or (not isinstance(value, str) and not removed):
            parent[key] = value
        else:
            before = after


_UNCHANGED = object()


def _leaves(node, path: tuple = ()):
    """(path, container, key, value) of every scalar in nested dicts and lists."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        if isinstance(value, (dict, list)):
            yield from _leaves(value, (*path, key))
        else:
            yield (*path, key), node, key, value


def _typed(value: Any) -> Any:
    """What a string reads as (a number, boolean or null), or a whole float as an int;
    _UNCHANGED when there is nothing else to try."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str):
        return _UNCHANGED
    try:  # JSON first: YAML 1.1 reads "1e-05" (no dot) as a string
        typed = json.loads(value)
    except json.JSONDecodeError:
        try:
            typed = yaml.safe_load(value)
        except yaml.YAMLError:
            return _UNCHANGED
    if isinstance(typed, float) and typed.is_integer():
        typed = int(typed)  # '8.0' where an integer is wanted (a number accepts it too)
    if typed is None or isinstance(typed, (bool, int, float)):
        return typed
    return _UNCHANGED


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown key(s)")
    if error.validator == "not" and "enum" in error.validator_value:  # a run name, a set name
        return (f"{error.instance!r} is reserved (not one of "
                f"{', '.join(map(str, error.validator_value['enum']))})")
    return error.message


def _fill_defaults(node: Any, schema: dict) -> None:
    """Add, in place, the keys a config leaves out that have a default (the dataclasses'), so
    that every rule reads them. A run's overrides have none: nothing is filled in there."""
    if isinstance(node, dict):
        properties = schema.get("properties", {})
        for key, prop in properties.items():
            if key not in node and "default" in prop:
                node[key] = copy.deepcopy(prop["default"])
        values = schema.get("additionalProperties")
        for key, value in node.items():
            _fill_defaults(value, properties.get(key, values if isinstance(values, dict) else {}))
    elif isinstance(node, list):
        for value in node:
            _fill_defaults(value, schema.get("items", {}))


def read(path: str | Path) -> dict:
    """The config file as YAML, unvalidated (`load` validates it)."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return config


def load(path: str | Path) -> dict:
    return validate(read(path), str(path))


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


def run_dim(config: dict, run: str) -> int:
    """2: the run trains on the 2D archive's slices; 3: on the 3D archive's volumes."""
    return _run(config, run).get("dim", 2)


def data_key(config: dict, run: str) -> str:
    """Name of the shared data product for a run: depends on scale, degradation and dim only
    (x4_unknown; x4_unknown_3d for volumes)."""
    r = _run(config, run)
    return f"x{r['scale']}_{r['degradation']}" + ("_3d" if run_dim(config, run) == 3 else "")


def data_keys(config: dict) -> list[str]:
    return sorted(data_products(config))


def data_settings(config: dict, run: str) -> DataSettings:
    """What the run's data product (rule split) depends on."""
    r = _run(config, run)
    return DataSettings.from_dict({"scale": r["scale"], "degradation": r["degradation"],
                                   "dim": run_dim(config, run),
                                   "rock_types": config["dataset"]["rock_types"],
                                   "resplit": config["dataset"]["resplit"]}, "dataset")


def data_products(config: dict) -> dict[str, DataSettings]:
    """The data products of the enabled runs, by folder name (data_key): built here once, so
    no step parses a name back into settings."""
    return {data_key(config, run): data_settings(config, run) for run in enabled_runs(config)}


def run_training(config: dict, run: str) -> dict:
    """The `training` block with, for a dim-3 run, `training_3d` merged in, then the run's
    own overrides."""
    training = config["training"]
    if run_dim(config, run) == 3:
        training = deep_merge(training, config["training_3d"])
    return deep_merge(training, _run(config, run).get("training", {}))


def phase_settings(config: dict, run: str, phase: int) -> PhaseSettings:
    """Everything one training phase depends on, and nothing else (rule train_phase1/2): the
    run's training block (shared keys, then the phase's own), its run, and in phase 1 the
    GAN keys as phase 1 holds them."""
    training = run_training(config, run)
    blocks = {p: training.pop(f"phase{p}") for p in (1, 2)}
    r = _run(config, run)
    return PhaseSettings.from_dict({
        **training,
        **blocks[phase],
        **(Phase2Keys.phase1_values() if phase == 1 else {}),
        "phase": phase,
        "scale": r["scale"],
        "seed": r["seed"],
        "dim": run_dim(config, run),
        "model": deep_merge(config["model"], r.get("model", {})),
    }, f"runs.{run}: training.phase{phase}")


def phase_params(config: dict, run: str, phase: int) -> tuple[dict, dict]:
    """Rule train_phase{1,2}'s two settings params: what the trained weights depend on (a
    change reruns the phase) and the rest, which Snakemake's params trigger leaves out
    (PhaseSettings.split; a `device: cpu` run ignores precision and cuda_graphs)."""
    settings = phase_settings(config, run, phase)
    return settings.split("cpu" if settings.device == "cpu" else "cuda")
def vgg_weights_file(config: dict, run: str) -> str | None:
    """Where the run's VGG19 weights are provided (rule vgg_weights): results/weights/ and
    the file's name (torchvision's for imagenet); None for random weights."""
    s = phase_settings(config, run, 2)
    source = s.vgg_weights
    if source == "random" or not s.vgg_term:
        return None
    return f"results/weights/{VGG_IMAGENET_FILE if source == 'imagenet' else Path(source).name}"


def vgg_weights_sources(config: dict) -> dict[str, str]:
    """The weights files the enabled runs' phase 2 needs, as their name in results/weights/
    -> the setting they come from (imagenet or a local path). A local path that is not a
    file stops the workflow at its start, dry runs included."""
    sources: dict[str, str] = {}
    for run in enabled_runs(config):
        file = vgg_weights_file(config, run)
        if file is None:
            continue
        source = phase_settings(config, run, 2).vgg_weights
        if source != "imagenet" and not Path(source).is_file():
            raise ConfigError(f"runs.{run}: training.phase2.vgg_weights: {source}: no such "
                              "file (a VGG19 state dict or the authors' vgg19.npy; or imagenet, "
                              "random)")
        name = Path(file).name
        if sources.setdefault(name, source) != source:
            raise ConfigError(f"training.phase2.vgg_weights: {sources[name]} and {source} "
                              f"would both be {file}: rename one")
    return sources


# One function per step (rule) builds the settings it depends on, and nothing else: the
# rule passes them as JSON (rules/common.smk, as_json) and the step's script parses them back.

def vgg_settings(config: dict, run: str) -> VggSettings:
    """What the run's VGG record depends on (rule vgg_record): its phase 2's VGG keys."""
    s = phase_settings(config, run, 2)
    return VggSettings.from_dict({f.name: getattr(s, f.name)
                                  for f in dataclasses.fields(VggSettings)},
                                 f"runs.{run}: training.phase2")


def evaluation_settings(config: dict) -> EvaluationSettings:
    """The evaluation block, plus the intensity window when external HR sets need it."""
    settings = dict(config["evaluation"])
    if settings.get("external"):
        settings["intensity"] = config["intensity"]
    return EvaluationSettings.from_dict(settings, "evaluation")


def predict_settings(config: dict) -> PredictSettings:
    """What the predict step depends on besides its inputs and models: the predict keys
    (PredictKeys) and the intensity block."""
    keys = {f.name for f in dataclasses.fields(PredictKeys)}
    return PredictSettings.from_dict(
        {**{k: v for k, v in config["predict"].items() if k in keys},
         "intensity": config["intensity"]}, "predict")


# The name of each training phase's generator, in outputs and model files.
METHODS = {1: "srcnn", 2: "srgan"}


def model_card(config: dict, run: str, phase: int) -> dict:
    """What an exported generator says of itself (rule export_model): its name, the run that
    trained it (run_description: scale, degradation, seed, settings) and its training data."""
    dataset = config["dataset"]
    return {"name": f"{run}_{METHODS[phase]}", "phase": phase,
            "run": run_description(config, run), "data": data_key(config, run),
            "dataset": {"source": dataset["source"], "rock_types": dataset["rock_types"],
                        "resplit": dataset["resplit"]}}


def synthetic_settings(config: dict, dim: int = 2) -> SyntheticSettings:
    """The `synthetic` block, or for the 3D archive `synthetic_3d`."""
    if dim == 3:
        return Synthetic3DSettings.from_dict(config["synthetic_3d"], "synthetic_3d")
    return SyntheticSettings.from_dict(config["synthetic"], "synthetic")


def figure_settings(config: dict) -> FigureSettings:
    """Figures drawn from tables alone (figure 3, curves, texture): their resolution."""
    return FigureSettings.from_dict({"dpi": config["figures"]["dpi"]}, "figures")


def figure2_settings(config: dict) -> Figure2Settings:
    return Figure2Settings.from_dict({**config["figures"]["figure2"],
                                      "dpi": config["figures"]["dpi"]}, "figures.figure2")


def orthoslice_settings(config: dict) -> OrthosliceSettings:
    return OrthosliceSettings.from_dict({**config["figures"]["orthoslices"],
                                         "dpi": config["figures"]["dpi"]},
                                        "figures.orthoslices")


def compare_settings(config: dict) -> CompareSettings:
    """Every enabled run's description, in the order of enabled_runs (the summaries')."""
    return CompareSettings.from_dict(
        {"dpi": config["figures"]["dpi"],
         "runs": [run_description(config, run) for run in enabled_runs(config)]}, "compare")


def check_steps(config: dict) -> None:
    """Build every non-training step's settings, so that a bad or inconsistent value stops
    the workflow at its start (naming the key), not after hours of training."""
    evaluation_settings(config)
    predict_settings(config)
    synthetic_settings(config)
    synthetic_settings(config, dim=3)
    figure_settings(config)
    compare_settings(config)
    figures = {2: (figure2_settings(config), "figures.figure2"),
               3: (orthoslice_settings(config), "figures.orthoslices")}
    for data in data_products(config).values():
        settings, where = figures[data.dim]
        settings.check_rocks(data.rock_types, where)


def run_description(config: dict, run: str) -> dict:
    """What a run is, for the comparison: its config name, data, seed, and the settings in
    effect (model, both training phases, evaluation)."""
    r = _run(config, run)
    return {"name": run, "run": r["run"], "scale": r["scale"], "degradation": r["degradation"],
            "dim": run_dim(config, run), "seed": r["seed"], "settings": {
                "model": deep_merge(config["model"], r.get("model", {})),
                "training": run_training(config, run), "evaluation": config["evaluation"]}}
