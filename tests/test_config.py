"""Config loading and schema validation: defaults are valid, errors name the key."""

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from rocksr.settings import PhaseSettings
from rocksr.workflow import cli
from rocksr.workflow import config as cfg

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def default():
    return cfg.load(ROOT / "config.yaml")


def test_default_config_is_paper_faithful(default):
    p1, p2 = default["training"]["phase1"], default["training"]["phase2"]
    assert default["model"] == {"blocks": 16, "filters": 64, "activation": "authors",
                                "upsample": None}
    assert (p1["batch_size"], p1["lr_patch"], p1["epochs"], p1["iters_per_epoch"]) == (
        16, 48, 100, 1000)
    assert (p2["epochs"], p2["vgg_weight"], p2["adv_weight"]) == (150, 1e-5, 1e-3)
    assert default["runs"]["paper"]["scale"] == 4
    # the authors' code: VGG pool5 on Caffe-scaled input, one 250-epoch decay with 100
    assert (p2["vgg_layer"], p2["vgg_input"]) == ("pool5", "caffe")
    assert (p1["lr"], p1["decay_epochs"], p1["decay_factor"]) == (1e-4, 100, 0.1)
    assert (p2["lr"], p2["d_lr"], p2["decay_epochs"]) == (1e-5, 1e-5, 100)
    # the paper's runs: alpha and beta fixed (the authors' balancing, --hyperFlag, is off)
    assert (p2["balance"], p2["feature_ratio"], p2["adv_ratio"]) == ("fixed", 0.5, 0.1)


@pytest.mark.parametrize("phase2, expected", [
    ({"lr_patch": 5}, "runs.paper: training.phase2.lr_patch: scale x lr_patch = 20 must be a "
                      "multiple of 16"),
    ({"lr_patch": 4}, "runs.paper: training.phase2.lr_patch: scale x lr_patch = 16 px is too "
                      "small for vgg_layer pool5"),
])
def test_cross_key_rules_are_checked_when_the_workflow_starts(default, phase2, expected):
    bad = cfg.deep_merge(default, {"training": {"phase2": phase2}})
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(bad)
    assert expected in str(err.value)
    ok = cfg.deep_merge(bad, {"training": {"phase2": {"vgg_layer": "relu5_4"}}})
    if phase2["lr_patch"] == 4:  # 16 px is enough for the layers before pool5
        cfg.validate(ok)


@pytest.mark.parametrize("overlay", ["profiles/demo/workflow.yaml", "tests/tiny.yaml"])
def test_overlays_merge_to_valid_configs(default, overlay):
    merged = cfg.deep_merge(default, yaml.safe_load((ROOT / overlay).read_text()))
    cfg.validate(merged)
    assert "paper" not in cfg.enabled_runs(merged)


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (("training", "phase1", "batch_size"), 0, "training.phase1.batch_size"),
        (("runs", "paper", "scale"), 3, "runs.paper.scale"),
        (("dataset", "source"), "ftp", "dataset.source"),
        (("training", "phase2", "lr_ptach"), 4, "unknown key(s) ('lr_ptach'"),
        (("evaluation", "splits"), ["tset"], "evaluation.splits.0"),
    ],
)
def test_invalid_values_name_the_key(default, path, value, expected):
    bad = copy.deepcopy(default)
    node = bad
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(cfg.ConfigError, match=None) as err:
        cfg.validate(bad, "my.yaml")
    assert expected in str(err.value) and "my.yaml" in str(err.value)


def test_unknown_run_training_override_is_rejected(default):
    bad = copy.deepcopy(default)
    bad["runs"]["paper"]["training"] = {"learning_rate": 1}
    with pytest.raises(cfg.ConfigError, match="runs.paper.training"):
        cfg.validate(bad)


def test_phase_settings_carry_run_overrides_only_into_that_run(default):
    conf = copy.deepcopy(default)
    conf["runs"]["other"] = {"scale": 2, "degradation": "default", "seed": 3,
                             "training": {"phase2": {"adv_weight": 5e-3}}}
    cfg.validate(conf)
    assert cfg.phase_settings(conf, "other", 2).adv_weight == 5e-3
    assert cfg.phase_settings(conf, "paper", 2).adv_weight == 1e-3
    assert cfg.phase_settings(conf, "other", 1) == dataclasses.replace(
        cfg.phase_settings(conf, "paper", 1), scale=2, seed=3)
    assert cfg.data_keys(conf) == ["x2_default", "x4_unknown"]


def test_settings_from_inline_text_or_file(tmp_path):
    assert cli.parse_settings('{"a": 1}') == {"a": 1}
    # JSON as the rules write it: YAML 1.1 alone would read 1e-05 as the string "1e-05"
    assert cli.parse_settings('{"lr": 1e-05}') == {"lr": 1e-05}
    (tmp_path / "s.yaml").write_text("a: 2\n")
    assert cli.parse_settings(f"@{tmp_path / 's.yaml'}") == {"a": 2}
    with pytest.raises(cfg.ConfigError, match="cannot read settings file"):
        cli.parse_settings(f"@{tmp_path / 'missing.yaml'}")


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(cfg.ConfigError, match="config file not found"):
        cfg.load(tmp_path / "nope.yaml")


def test_strings_from_snakemake_config_option_become_typed(default):
    # `--config evaluation='{batch_size: 4, clamp: false}'` arrives with string scalars
    conf = cfg.deep_merge(default, {"evaluation": {"batch_size": "4", "clamp": "false"},
                                           "training": {"phase1": {"lr": "1e-05"}}})
    cfg.validate(conf)
    assert conf["evaluation"]["batch_size"] == 4 and conf["evaluation"]["clamp"] is False
    assert conf["training"]["phase1"]["lr"] == 1e-05
    conf["evaluation"]["batch_size"] = "four"
    with pytest.raises(cfg.ConfigError, match="evaluation.batch_size: 'four' is not of type"):
        cfg.validate(conf)


def test_phase_settings_name_a_missing_unknown_or_mistyped_key(default):
    good = cfg.phase_settings(default, "paper", 2).to_dict()
    assert PhaseSettings.from_dict(good) == cfg.phase_settings(default, "paper", 2)
    cases = [({k: v for k, v in good.items() if k != "lr"}, "settings.lr: missing"),
             ({**good, "lr_ptach": 4}, "settings: unknown key(s) lr_ptach"),
             ({**good, "betas": [0.9]}, "settings.betas: expected 2 values, got 1"),
             ({**good, "model": {"blocks": "16", "filters": 64}},
              "settings.model.blocks: expected int, got str '16'"),
             ({**good, "vgg_layer": "pool4"}, "settings.vgg_layer: 'pool4' is not one of"),
             ({**good, "vgg_weights": None}, "settings.vgg_weights: missing (phase 2 needs it)"),
             ({**good, "epochs": 0}, "settings.epochs: must be positive")]
    for bad, message in cases:
        with pytest.raises(cfg.ConfigError) as err:
            PhaseSettings.from_dict(bad)
        assert str(err.value).startswith(message)


@pytest.mark.parametrize("path, value, expected", [
    (("training", "phase1", "batch_size"), 1_000_000_000,
     "training.phase1.batch_size: 1000000000 is greater than the maximum of"),
    (("training", "phase2", "iters_per_epoch"), 10**12, "training.phase2.iters_per_epoch"),
    (("runs", "paper", "seed"), -1, "runs.paper.seed: -1 is less than the minimum of 0"),
    (("runs", "paper", "seed"), [0, -1], "runs.paper.seed.1: -1 is less than the minimum of 0"),
    (("synthetic", "seed"), -1, "synthetic.seed: -1 is less than the minimum of 0"),
    (("synthetic", "hr_size"), 10**6, "synthetic.hr_size"),
    (("evaluation", "batch_size"), 10**9, "evaluation.batch_size"),
    (("predict", "tile"), 10**9, "predict.tile"),
])
def test_numbers_out_of_sensible_limits_are_stopped_at_the_start(default, path, value,
                                                                 expected):
    bad = copy.deepcopy(default)
    node = bad
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(bad)
    assert expected in str(err.value)


def test_every_integer_key_has_a_lower_and_an_upper_bound():
    def walk(schema, where):
        if "integer" in (schema.get("type") if isinstance(schema.get("type"), list)
                         else [schema.get("type")]) and "enum" not in schema:
            assert {"minimum", "exclusiveMinimum"} & set(schema), f"{where}: no lower bound"
            assert {"maximum", "exclusiveMaximum"} & set(schema), f"{where}: no upper bound"
        for name, sub in schema.get("properties", {}).items():
            walk(sub, f"{where}.{name}")
        for keyword in ("items", "additionalProperties"):
            if isinstance(schema.get(keyword), dict):
                walk(schema[keyword], f"{where}.{keyword}")
    walk(cfg.SCHEMA, "config")


@pytest.mark.parametrize("name", ["data", "logs", "synthetic", "benchmarks", "compare",
                                  "download", "weights"])
def test_a_shared_results_folder_cannot_be_a_run_name(default, name):
    bad = copy.deepcopy(default)
    bad["runs"][name] = {"scale": 4, "degradation": "unknown", "seed": 0}
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(bad, "my.yaml")
    assert f"runs: {name!r} is reserved" in str(err.value)


def test_the_reserved_names_cover_every_shared_folder_the_workflow_writes():
    """Every results/<name> the rules, Makefile and docs name, other than a run's folder."""
    import re

    from rocksr.settings import SHARED_RESULTS

    texts = [p.read_text() for p in [ROOT / "Snakefile", ROOT / "Makefile", ROOT / "README.md",
                                     *ROOT.glob("rules/*.smk"), *ROOT.glob("docs/*.md")]]
    named = {m for t in texts for m in re.findall(r"results/([A-Za-z_][\w.-]*\w)", t)}
    runs = {"paper", "demo"}  # config.yaml's and the demo's
    assert "data" in named and named - runs <= set(SHARED_RESULTS), named - runs


def test_the_training_rules_track_only_what_the_weights_depend_on(default):
    _, untracked = cfg.phase_params(default, "paper", 2)  # device auto: on CUDA
    assert set(untracked) == {"checkpoint_every", "validation"}
    cpu = cfg.validate(cfg.deep_merge(default, {"training": {"device": "cpu"}}))
    tracked, untracked = cfg.phase_params(cpu, "paper", 2)
    assert set(untracked) == {"checkpoint_every", "validation", "precision", "cuda_graphs"}
    assert PhaseSettings.from_dict({**tracked, **untracked}) == cfg.phase_settings(cpu, "paper", 2)
