"""One source of settings: the dataclasses of rocksr.settings define every config key; the
schema that validates config.yaml is generated from them, and config.yaml states their
defaults."""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from pathlib import Path

import jsonschema
import pytest
import yaml

from rocksr import settings as rs
from rocksr.settings import Config, Phase2Keys, PhaseSettings, key
from rocksr.workflow import config as cfg

ROOT = Path(__file__).resolve().parents[1]


def raw_config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def same(a, b) -> bool:
    """Equal, and a boolean only where the other is one (YAML's true is not 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def block(hint) -> type[rs.Settings] | None:
    """The Settings class a field's value is (also `X | None`), else None."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    kinds = typing.get_args(hint) if union else [hint]
    return next((k for k in kinds if isinstance(k, type) and issubclass(k, rs.Settings)), None)


def compare(node: dict, cls: type[rs.Settings], schema: dict, path: str, partial=False):
    """Every key of `node` (config.yaml) is a field of `cls`; a field with a default has the
    same value in config.yaml, the dataclass and the schema; config.yaml states every key
    (a run's overrides: any of them)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls, include_extras=True)
    assert set(node) <= set(fields), f"{path}: {sorted(set(node) - set(fields))} not in {cls}"
    if not partial:
        assert set(fields) <= set(node), f"{path}: config.yaml lacks {set(fields) - set(node)}"
    for name, value in node.items():
        field, prop, hint, where = fields[name], schema["properties"][name], hints[name], (
            f"{path}.{name}")
        override = typing.get_origin(hint) is typing.Annotated
        has_default = not (field.default is dataclasses.MISSING
                           and field.default_factory is dataclasses.MISSING)
        default = (field.default_factory() if field.default is dataclasses.MISSING else
                   field.default) if has_default else None
        # An override block's default (training_3d) counts; an empty one fills nothing in.
        if has_default and not partial and (default or not override):
            assert same(value, rs._plain(default)), f"{where}: {value!r} != default {default!r}"
            assert same(prop["default"], value), f"{where}: schema default {prop['default']!r}"
        else:
            assert "default" not in prop, where
        if override:
            compare(value, hint.__metadata__[0].block, prop, where, partial=True)
        elif isinstance(value, dict) and block(hint):
            compare(value, block(hint), prop, where, partial)
        elif typing.get_origin(hint) is dict and block(typing.get_args(hint)[1]):  # runs
            for entry, sub in value.items():
                compare(sub, typing.get_args(hint)[1], prop["additionalProperties"],
                        f"{where}.{entry}", partial)


def test_config_yaml_the_dataclasses_and_the_schema_agree():
    raw = raw_config()
    errors = list(cfg._validator_class()(cfg.SCHEMA).iter_errors(raw))
    assert not errors, [e.message for e in errors]
    compare(raw, Config, cfg.SCHEMA, "config")


def test_the_comparison_catches_a_disagreement():
    raw = raw_config()
    raw["training"]["cuda_graphs"] = False  # the dataclass default is True
    with pytest.raises(AssertionError, match="training.cuda_graphs"):
        compare(raw, Config, cfg.SCHEMA, "config")
    raw = raw_config()
    del raw["slurm"]["signal_before_limit_s"]
    with pytest.raises(AssertionError, match="config.yaml lacks"):
        compare(raw, Config, cfg.SCHEMA, "config")


def test_the_generated_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(cfg.SCHEMA)


def all_settings() -> list[type[rs.Settings]]:
    found, todo = [], [rs.Settings]
    while todo:
        cls = todo.pop()
        found += [c for c in cls.__subclasses__() if c.__module__ == rs.__name__]
        todo += cls.__subclasses__()
    return found


def test_every_field_has_a_one_line_doc():
    assert Config in all_settings() and PhaseSettings in all_settings()
    for cls in all_settings():
        for field in dataclasses.fields(cls):
            doc = field.metadata.get("doc")
            assert doc and "\n" not in doc, f"{cls.__name__}.{field.name}: no one-line doc"


def test_a_new_field_appears_in_the_schema_with_no_other_edit():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Phase2Plus(Phase2Keys):
        warmup: int = key("iterations of linear learning-rate warm-up", 0, minimum=0)
        ramp: float = key("a key without a default", exclusiveMaximum=1)

    full, partial = rs.json_schema(Phase2Plus), rs.json_schema(Phase2Plus, partial=True)
    assert full["properties"]["warmup"] == {
        "type": "integer", "minimum": 0, "default": 0,
        "description": "iterations of linear learning-rate warm-up"}
    assert "ramp" in full["required"] and "warmup" not in full["required"]
    # as a run's override: optional, nothing filled in
    assert partial["properties"]["warmup"] == {
        "type": "integer", "minimum": 0, "description": "iterations of linear learning-rate "
                                                       "warm-up"}
    assert "required" not in partial
    phase2 = {**raw_config()["training"]["phase2"], "warmup": -1, "ramp": 0.5}
    errors = list(cfg._validator_class()(full).iter_errors(phase2))
    assert [(list(e.absolute_path), e.validator) for e in errors] == [(["warmup"], "minimum")]
    # the step's settings take it too, bounds checked, and phase 1 holds None for it
    with pytest.raises(rs.ConfigError, match="settings.warmup: must be at least 0, got -1"):
        Phase2Plus.from_dict(phase2)
    assert Phase2Plus.phase1_values()["warmup"] is None


@pytest.fixture
def default():
    return cfg.load(ROOT / "config.yaml")


def test_a_key_with_a_default_may_be_left_out_and_is_filled_in(default):
    conf = copy.deepcopy(default)
    del conf["training"]["cuda_graphs"], conf["slurm"]["signal_before_limit_s"]
    del conf["training"]["phase2"]["vgg_layer"], conf["runs"]["paper"]["enabled"]
    conf["runs"]["paper"]["training"] = {"phase2": {"adv_weight": 1e-2}}
    cfg.validate(conf)
    assert conf["training"]["cuda_graphs"] is True  # config.yaml's, the README's reason
    assert conf["slurm"]["signal_before_limit_s"] == 300
    assert conf["training"]["phase2"]["vgg_layer"] == "pool5"
    assert conf["runs"]["paper"]["enabled"] is True
    assert conf["runs"]["paper"]["training"] == {"phase2": {"adv_weight": 1e-2}}  # overrides
    assert conf == cfg.deep_merge(default, {"runs": {"paper": conf["runs"]["paper"]}})


def test_a_key_without_a_default_is_required(default):
    del default["training"]["phase1"]["epochs"]
    with pytest.raises(cfg.ConfigError, match="training.phase1: 'epochs' is a required"):
        cfg.validate(default)


def test_phase_1_holds_no_gan_keys_whatever_phase_2_says(default):
    p1 = cfg.phase_settings(default, "paper", 1)
    assert (p1.d_lr, p1.vgg_weight, p1.adv_weight, p1.vgg_weights) == (None, 0.0, 0.0, None)
    other = cfg.deep_merge(default, {"training": {"phase2": {"adv_weight": 5e-3,
                                                             "vgg_layer": "relu5_4"}}})
    assert cfg.phase_settings(cfg.validate(other), "paper", 1) == p1
    assert cfg.phase_settings(other, "paper", 2).adv_weight == 5e-3


def test_from_dict_checks_the_fields_bounds(default):
    good = cfg.phase_settings(default, "paper", 1).to_dict()
    for bad, message in [({"lr_patch": 2}, "settings.lr_patch: must be at least 4, got 2"),
                         ({"decay_factor": 1.5}, "settings.decay_factor: must be at most 1"),
                         ({"lr": 0.0}, "settings.lr: must be positive, got 0.0"),
                         ({"seed": -1}, "settings.seed: must be at least 0, got -1"),
                         ({"betas": [0.9, 1.0]}, r"settings.betas\[1\]: must be less than 1")]:
        with pytest.raises(rs.ConfigError, match=message):
            PhaseSettings.from_dict({**good, **bad})


def test_train_takes_parsed_settings_only(tmp_path, default):
    from rocksr.train.loop import train

    with pytest.raises(TypeError, match="train.. takes PhaseSettings, got dict"):
        train(cfg.phase_settings(default, "paper", 1).to_dict(), tmp_path, tmp_path / "c",
              tmp_path / "g.pt", tmp_path / "m.csv")
