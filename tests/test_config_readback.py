"""Values that arrive as strings (Snakemake's inline --config) or as whole-number floats are
read back by the schema's own type; what cannot be is an error that names the key."""

from pathlib import Path

import pytest
import yaml
from snakemake.cli import parse_config

from rocksr.workflow import config as cfg

ROOT = Path(__file__).resolve().parents[1]


def inline(*entries: str) -> dict:
    """config.yaml with `--config` entries merged over it, exactly as Snakemake parses them."""
    merged = cfg.deep_merge(yaml.safe_load((ROOT / "config.yaml").read_text()),
                            parse_config(list(entries)))
    return cfg.validate(merged)


def test_a_new_run_added_inline_gets_numbers_in_enums():
    conf = inline("runs={x2: {scale: 2, degradation: default, seed: 3, enabled: true,"
                  " model: {blocks: 4}}}")
    run = conf["runs"]["x2"]
    assert run == {"scale": 2, "degradation": "default", "seed": 3, "enabled": True,
                   "dim": 2, "model": {"blocks": 4}}
    assert cfg.data_keys(conf) == ["x2_default", "x4_unknown"]


@pytest.mark.parametrize("entry, path", [
    ("dataset={archive: null}", ("dataset", "archive")),  # string or null: null wins
    ("predict={input: null}", ("predict", "input")),
    ("dataset={resplit: null}", ("dataset", "resplit")),  # oneOf null / object
])
def test_null_is_read_back(entry, path):
    conf = inline(entry)
    assert conf[path[0]][path[1]] is None


def test_booleans_and_numbers_inside_objects_are_read_back():
    conf = inline("runs={paper: {enabled: false}}", "evaluation={clamp: false, batch_size: 4}",
                  "dataset={resplit: {seed: 1, ratios: {train: 0.8, valid: 0.1, test: 0.1}}}")
    assert conf["runs"]["paper"]["enabled"] is False
    assert conf["evaluation"]["clamp"] is False and conf["evaluation"]["batch_size"] == 4
    assert conf["dataset"]["resplit"] == {"seed": 1,
                                          "ratios": {"train": 0.8, "valid": 0.1, "test": 0.1}}


def test_strings_that_look_like_other_types_stay_strings_where_the_schema_wants_one():
    conf = inline("dataset={archive: 123}",
                  "training={phase2: {vgg_weights: true}}")
    assert conf["dataset"]["archive"] == "123"
    assert conf["training"]["phase2"]["vgg_weights"] == "true"


def test_whole_number_floats_become_integers_where_integers_are_wanted():
    # As a --configfile gives them: PyYAML reads 8.0 as a float and 5e1 as a string.
    overlay = yaml.safe_load("training: {phase1: {batch_size: 8.0, iters_per_epoch: 5e1}}")
    conf = cfg.validate(cfg.deep_merge(cfg.load(ROOT / "config.yaml"), overlay))
    p1 = conf["training"]["phase1"]
    assert (p1["batch_size"], p1["iters_per_epoch"]) == (8, 50)
    assert type(p1["batch_size"]) is int and type(p1["iters_per_epoch"]) is int
    assert type(p1["lr"]) is float  # a number key keeps its float
    assert type(inline("training={phase1: {lr: 1.0}}")["training"]["phase1"]["lr"]) in (int, float)


@pytest.mark.parametrize("entry, message", [
    ("training={phase1: {batch_size: 8.5}}",
     "training.phase1.batch_size: 8.5 is not of type 'integer'"),
    ("runs={x: {scale: 3, degradation: default, seed: 0}}", "runs.x.scale: 3 is not one of [2, 4]"),
    ("runs={x: {scale: two, degradation: default, seed: 0}}", "runs.x.scale: 'two' is not one of"),
    ("evaluation={clamp: maybe}", "evaluation.clamp: 'maybe' is not of type 'boolean'"),
])
def test_what_cannot_be_read_back_is_an_error_naming_the_key(entry, message):
    with pytest.raises(cfg.ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        inline(entry)


@pytest.mark.parametrize("block, text", [
    ("training", "{phase1: {epochs: 0}}"),
    ("training", "{phase1: {lr: -1}}"),
    ("training", "{phase1: {batch_size: 1000000000}}"),
    ("runs", "{paper: {seed: -1}}"),
    ("evaluation", "{batch_size: 0}"),
])
def test_a_number_out_of_bounds_is_reported_as_in_a_yaml_file(block, text):
    """Inline, the string is read back first and then validated: the message is the YAML
    file's ('0 is less than or equal to the minimum of 0'), not "'0' is not of type"."""
    with pytest.raises(cfg.ConfigError) as from_file:
        cfg.validate(cfg.deep_merge(yaml.safe_load((ROOT / "config.yaml").read_text()),
                                    {block: yaml.safe_load(text)}))
    with pytest.raises(cfg.ConfigError) as from_inline:
        inline(f"{block}={text}")
    assert str(from_inline.value) == str(from_file.value)
    assert "is not of type" not in str(from_file.value)
