"""Each non-training step's settings: built from the config by the function its rule uses,
parsed back by `from_dict`, which names the key of anything missing, unknown, mistyped or
inconsistent; the rules between keys stop the workflow at its start (config.validate)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from rocksr import ROCK_TYPES
from rocksr.settings import (
    CompareSettings,
    ConfigError,
    DataSettings,
    EvaluationSettings,
    Figure2Settings,
    FigureSettings,
    IntensitySettings,
    PredictSettings,
    SyntheticSettings,
    VggSettings,
)
from rocksr.workflow import config as cfg

ROOT = Path(__file__).resolve().parents[1]
SLICES = [(cfg.evaluation_settings, EvaluationSettings, "evaluation"),
          (cfg.predict_settings, PredictSettings, "predict"),
          (cfg.synthetic_settings, SyntheticSettings, "synthetic"),
          (cfg.figure_settings, FigureSettings, "figures"),
          (cfg.figure2_settings, Figure2Settings, "figures.figure2"),
          (cfg.compare_settings, CompareSettings, "compare")]


@pytest.fixture
def default():
    return cfg.load(ROOT / "config.yaml")


@pytest.mark.parametrize("build,cls,where", SLICES)
def test_every_slice_survives_the_rules_json(default, build, cls, where):
    settings = build(default)
    assert isinstance(settings, cls)
    assert cls.from_dict(json.loads(json.dumps(settings.to_dict())), where) == settings


def test_one_data_product_per_scale_and_degradation(default):
    conf = copy.deepcopy(default)
    conf["dataset"]["resplit"] = {"ratios": {"train": 0.8, "valid": 0.1, "test": 0.1}, "seed": 2}
    conf["runs"]["twin"] = {"scale": 4, "degradation": "unknown", "seed": 5}
    conf["runs"]["half"] = {"scale": 2, "degradation": "default", "seed": 0}
    products = cfg.data_products(cfg.validate(conf))
    assert sorted(products) == ["x2_default", "x4_unknown"]  # paper and twin share one
    x2 = products["x2_default"]
    assert (x2.scale, x2.degradation, x2.rock_types) == (2, "default", list(ROCK_TYPES))
    assert x2.resplit.seed == 2 and x2.resplit.ratios["train"] == 0.8
    assert DataSettings.from_dict(json.loads(json.dumps(x2.to_dict())), "dataset") == x2


EVALUATION = {"splits": ["valid", "test"], "batch_size": 8, "clamp": True, "quantize": True}


@pytest.mark.parametrize("cls,data,where,message", [
    # missing, also nested
    (EvaluationSettings, {k: v for k, v in EVALUATION.items() if k != "batch_size"},
     "evaluation", "evaluation.batch_size: missing"),
    (Figure2Settings, {"ids": {}, "diff_range": {}, "box": {"x": 0.1, "y": 0.1}},
     "figures.figure2", "figures.figure2.box.size: missing"),
    (PredictSettings, {"tile": 4}, "predict", "predict.tile: must be at least 8, got 4"),
    # unknown
    (EvaluationSettings, {**EVALUATION, "bogus": 1}, "evaluation",
     "evaluation: unknown key(s) bogus"),
    (SyntheticSettings, {"hr_size": 32, "seed": 0, "counts": {}, "size": 3}, "synthetic",
     "synthetic: unknown key(s) size"),
    # mistyped
    (EvaluationSettings, {**EVALUATION, "batch_size": "8"}, "evaluation",
     "evaluation.batch_size: expected int, got str '8'"),
    (EvaluationSettings, {**EVALUATION, "clamp": 1}, "evaluation",
     "evaluation.clamp: expected bool, got int 1"),
    (EvaluationSettings, {**EVALUATION, "splits": ["tests"]}, "evaluation",
     "evaluation.splits[0]: 'tests' is not one of 'train', 'valid', 'test'"),
    (DataSettings, {"scale": 3, "degradation": "unknown", "rock_types": ["coal"]}, "dataset",
     "dataset.scale: 3 is not one of 2, 4"),
    (PredictSettings, {"tile": 8, "overlap": 2,
                       "intensity": {"window": "full", "percentiles": [1]}}, "predict",
     "predict.intensity.percentiles: expected 2 values, got 1"),
    (FigureSettings, {"dpi": 1.5}, "figures", "figures.dpi: expected int, got float 1.5"),
    (CompareSettings, {"runs": {"a": 1}}, "compare", "compare.runs: expected a list"),
    # the rules between keys
    (IntensitySettings, {"window": "percentile", "percentiles": [60, 40]}, "intensity",
     "intensity.percentiles: [60.0, 40.0] must rise within 0-100"),
    (EvaluationSettings, {**EVALUATION, "external": [{"name": "k", "path": "k.tif"}]},
     "evaluation", "evaluation.intensity: missing (external sets need it)"),
    (EvaluationSettings, {**EVALUATION, "batch_size": 0}, "evaluation",
     "evaluation.batch_size: must be positive"),
    (SyntheticSettings, {"hr_size": 30, "seed": 0, "counts": {"train": 1, "valid": 1,
                                                               "test": 1}},
     "synthetic", "synthetic.hr_size: must be a positive multiple of 4"),
    (SyntheticSettings, {"hr_size": 32, "seed": 0, "counts": {"train": 1}}, "synthetic",
     "synthetic.counts: needs exactly the keys train, valid, test"),
    (DataSettings, {"scale": 4, "degradation": "unknown", "rock_types": ["granite"]},
     "dataset", "dataset.rock_types: ['granite'] must name some of"),
    (DataSettings, {"scale": 4, "degradation": "unknown", "rock_types": ["coal"],
                    "resplit": {"ratios": {"train": 1.0}, "seed": 0}},
     "dataset", "dataset.resplit.ratios: needs exactly the keys train, valid, test"),
])
def test_from_dict_names_the_key(cls, data, where, message):
    with pytest.raises(ConfigError) as caught:
        cls.from_dict(data, where)
    assert str(caught.value).startswith(message), str(caught.value)


def test_figure2_must_cover_every_rock_type_at_the_workflow_start(default):
    conf = copy.deepcopy(default)
    del conf["figures"]["figure2"]["ids"]["sandstone"]
    with pytest.raises(ConfigError, match="figures.figure2.ids: no entry for rock type sandstone"):
        cfg.validate(conf)
    conf["dataset"]["rock_types"] = ["carbonate", "coal"]  # then sandstone is not drawn
    cfg.validate(conf)
    del conf["figures"]["figure2"]["diff_range"]["coal"]
    with pytest.raises(ConfigError,
                       match="figures.figure2.diff_range: no entry for rock type coal"):
        cfg.validate(conf)


def test_external_sets_are_checked_at_the_workflow_start(default):
    conf = copy.deepcopy(default)
    conf["evaluation"]["external"] = [{"name": "k", "path": "k.tif"}] * 2
    with pytest.raises(ConfigError, match="evaluation.external: the name.s. k appear twice"):
        cfg.validate(conf)


def test_vgg_weights_are_files_in_results_weights_named_at_the_workflow_start(default,
                                                                             tmp_path):
    assert cfg.vgg_weights_sources(default) == {"vgg19-dcbb9e9d.pth": "imagenet"}
    assert cfg.vgg_weights_file(default, "paper") == "results/weights/vgg19-dcbb9e9d.pth"
    vgg = cfg.vgg_settings(default, "paper")
    assert (vgg.vgg_weights, vgg.vgg_weights_origin, vgg.vgg_input, vgg.vgg_layer) == (
        "imagenet", "auto", "caffe", "pool5")
    assert VggSettings.from_dict(json.loads(json.dumps(vgg.to_dict()))) == vgg
    npy = tmp_path / "vgg19.npy"
    npy.write_bytes(b"weights")
    local = cfg.deep_merge(default, {"training": {"phase2": {"vgg_weights": str(npy)}}})
    assert cfg.vgg_weights_sources(local) == {"vgg19.npy": str(npy)}
    assert cfg.vgg_weights_file(local, "paper") == "results/weights/vgg19.npy"
    random = cfg.deep_merge(default, {"training": {"phase2": {"vgg_weights": "random"}}})
    assert cfg.vgg_weights_sources(random) == {} and cfg.vgg_weights_file(random, "paper") is None
    missing = cfg.deep_merge(default, {"training": {"phase2": {"vgg_weights": "/no/vgg19.npy"}}})
    with pytest.raises(ConfigError, match="runs.paper: training.phase2.vgg_weights: "
                                          "/no/vgg19.npy: no such file"):
        cfg.vgg_weights_sources(missing)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "vgg19.npy").write_bytes(b"other weights")
    clash = cfg.deep_merge(local, {"runs": {"twin": {
        "scale": 4, "degradation": "unknown", "seed": 1,
        "training": {"phase2": {"vgg_weights": str(tmp_path / "other" / "vgg19.npy")}}}}})
    with pytest.raises(ConfigError, match="would both be results/weights/vgg19.npy"):
        cfg.vgg_weights_sources(clash)
