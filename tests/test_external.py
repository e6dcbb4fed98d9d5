"""External HR test sets: degraded, scored by the splits' own scoring, rows under their name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from evalkit import make_generator, make_packs, tiny_config
from rocksr.eval.evaluate import evaluate, summarize
from rocksr.eval.external import external_pack
from rocksr.figures import figure3
from rocksr.imaging.resize import bicubic_upscale
from rocksr.infer.inference import load_generator
from rocksr.settings import ExternalSet, IntensitySettings
from rocksr.workflow import config as cfg
from rocksr.workflow.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
FULL = IntensitySettings("full", (1, 99))


def settings(**evaluation):
    """The evaluate rule's settings with the given evaluation keys (e.g. external sets)."""
    return cfg.evaluation_settings(tiny_config(evaluation=evaluation))


def hr_stack(n=2, shape=(50, 46), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 65536, (n, *shape), dtype=np.uint16)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ext")
    packs, manifest = make_packs(root)
    tifffile.imwrite(root / "ketton.tif", hr_stack(), photometric="minisblack")
    Image.fromarray(hr_stack(1, (48, 48), 1)[0].astype(np.uint8)).save(root / "bent.png")
    gens = {"srcnn": load_generator(make_generator(root / "g1.pt", 1)),
            "srgan": load_generator(make_generator(root / "g2.pt", 2))}
    return root, packs, manifest, gens


def test_external_rows_join_the_summary_under_their_name(inputs):
    root, packs, manifest, gens = inputs
    external = [{"name": "ketton", "path": str(root / "ketton.tif")},
                {"name": "bentheimer", "path": str(root / "bent.png")}]
    per_image = evaluate(packs, gens, settings(external=external), torch.device("cpu"), manifest)
    summary = summarize(per_image).set_index(["rock_type", "split", "method"])
    for name, n in (("ketton", 2), ("bentheimer", 1)):
        for method in ("bicubic", "srcnn", "srgan"):
            row = summary.loc[(name, "test", method)]
            assert row.n == n and np.isfinite(row.psnr_mean) and 0 < row.ssim_mean <= 1
    assert {"carbonate", "coal"} <= set(summary.index.get_level_values(0))
    fig = figure3(summarize(per_image))  # Figure 3 draws them beside the rock types
    valid, test = ([t.get_text().split("\n")[0] for ax in group.axes for t in ax.get_xticklabels()]
                   for group in fig.subfigs)
    assert test == ["carbonate", "coal", "ketton", "bentheimer"]
    assert valid == ["carbonate", "coal"]  # the external sets are test images only


def test_default_degradation_is_bicubic_and_bicubic_row_matches_skimage(inputs):
    root = inputs[0]
    pack = external_pack("ketton", str(root / "ketton.tif"), 4, "default", FULL)
    hr8 = (hr_stack()[:, :48, :44] / 65535 * 255).round().astype(np.uint8)  # cropped to x4
    np.testing.assert_array_equal(pack.hr, hr8)
    expected_lr = np.asarray(Image.fromarray(hr8[0]).resize((11, 12), Image.BICUBIC))
    np.testing.assert_array_equal(pack.lr[0], expected_lr)
    assert (pack.rock, pack.split, pack.ids.tolist()) == ("ketton", "test", [1, 2])
    # The unknown recipe differs from plain bicubic, deterministically per name and slice.
    unknown = external_pack("ketton", str(root / "ketton.tif"), 4, "unknown", FULL)
    assert not np.array_equal(unknown.lr, pack.lr)
    np.testing.assert_array_equal(
        unknown.lr, external_pack("ketton", str(root / "ketton.tif"), 4, "unknown", FULL).lr)
    external = [{"name": "k", "path": str(root / "ketton.tif")}]
    rows = evaluate(inputs[1], inputs[3], settings(splits=["test"], external=external),
                    torch.device("cpu"))
    # "k" is degraded with the packs' own degradation (unknown): recompute for that.
    k = external_pack("k", str(root / "ketton.tif"), 4, "unknown", FULL)
    sr = bicubic_upscale(torch.from_numpy(k.lr[:1]).float()[None] / 255, 4)
    sr = (sr.clamp(0, 1) * 255).round()[0, 0].numpy()
    got = rows[(rows.rock_type == "k") & (rows.method == "bicubic") & (rows.id == 1)].psnr.item()
    assert got == pytest.approx(peak_signal_noise_ratio(k.hr[0], sr.astype(np.uint8)), abs=1e-4)


def test_bad_external_sets_are_clear_errors(inputs, tmp_path):
    root = inputs[0]
    # At the workflow's start (config.validate), naming the key.
    with pytest.raises(ConfigError, match="evaluation.external: the name.s. ketton appear twice"):
        settings(external=[{"name": "ketton", "path": str(root / "ketton.tif")}] * 2)
    tifffile.imwrite(tmp_path / "small.tif", np.zeros((40, 40), np.uint8))
    with pytest.raises(ValueError, match="small.tif: 40x40 pixels is too small to score at x4"):
        external_pack("s", str(tmp_path / "small.tif"), 4, "default", FULL)
    with pytest.raises(ValueError, match="empty: no PNG or TIFF images"):
        (tmp_path / "empty").mkdir()
        external_pack("e", str(tmp_path / "empty"), 4, "default", FULL)


def test_config_names_and_settings(tmp_path):
    config = cfg.load(ROOT / "config.yaml")
    assert cfg.evaluation_settings(config).intensity is None  # no sets: no intensity
    config["evaluation"]["external"] = [{"name": "coal", "path": "x.tif"}]
    with pytest.raises(ConfigError, match="evaluation.external.0.name"):
        cfg.validate(config)
    config["evaluation"]["external"] = [{"name": "ketton", "path": "x.tif"}]
    evaluation = cfg.evaluation_settings(cfg.validate(config))
    assert evaluation.external == [ExternalSet("ketton", "x.tif")]
    assert evaluation.intensity.to_dict() == config["intensity"]
