"""Evaluation: per-image and summary tables, clamp/quantise flags, porosity, the CLI."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from evalkit import IDS, as_json, make_generator, make_packs, tiny_config
from rocksr.data.packs import load_split
from rocksr.eval import texture
from rocksr.eval.evaluate import SUMMARY_COLUMNS, evaluate, summarize
from rocksr.eval.porosity import otsu_threshold, porosity
from rocksr.eval.texture import SpectrumSums
from rocksr.imaging.pixels import quantize_unit
from rocksr.imaging.resize import bicubic_upscale
from rocksr.infer.inference import load_generator
from rocksr.workflow import config as cfg

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "evaluate.py"
SETTINGS = cfg.evaluation_settings(tiny_config())  # valid and test, batch 2, clamp, quantize


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    packs, manifest = make_packs(root)
    return packs, manifest, make_generator(root / "g1.pt", 1), make_generator(root / "g2.pt", 2)


def run_eval(inputs, **settings):
    packs, manifest, g1, g2 = inputs
    generators = {"srcnn": load_generator(g1), "srgan": load_generator(g2)}
    return evaluate(packs, generators, dataclasses.replace(SETTINGS, **settings),
                    torch.device("cpu"), manifest)


def test_summary_shape_columns_and_counts(inputs):
    per_image = run_eval(inputs)
    assert len(per_image) == 2 * sum(map(len, IDS.values())) * 3
    summary = summarize(per_image)
    texture_columns = [f"{c}_{s}" for c in texture.COLUMNS for s in ("mean", "std")]
    assert list(summary.columns) == SUMMARY_COLUMNS + texture_columns
    assert len(summary) == 2 * 2 * 3  # rock types x splits x methods
    for _, row in summary.iterrows():
        assert row.n == len(IDS[row.split])
    assert list(summary.method[:3]) == ["bicubic", "srcnn", "srgan"]
    assert summary.clamped.all() and summary.quantized.all()
    assert np.isfinite(summary.psnr_mean).all() and (summary.ssim_mean <= 1).all()
    # A random generator is far worse than bicubic on these images.
    means = summary.groupby("method").psnr_mean.mean()
    assert means.bicubic > means.srcnn


def test_texture_metrics_in_the_evaluation_pass(inputs):
    """The pass's texture columns equal rocksr.eval.texture on the same images; spectra are the
    per-group means; with_texture=False leaves them out and changes nothing else."""
    packs, manifest, g1, g2 = inputs
    generators = {"srcnn": load_generator(g1), "srgan": load_generator(g2)}
    spectra = SpectrumSums()
    per_image = evaluate(packs, generators, SETTINGS, torch.device("cpu"), manifest, spectra)
    plain = evaluate(packs, generators, SETTINGS, torch.device("cpu"), manifest,
                     with_texture=False)
    assert not set(texture.COLUMNS) & set(plain.columns)
    pd.testing.assert_frame_equal(per_image[plain.columns], plain)
    assert per_image[list(texture.COLUMNS)].notna().all().all()

    pack = load_split(packs, "test")[0]
    hr8 = torch.from_numpy(np.array(pack.hr))[:, None]
    hr = hr8.float() / 255
    cut = otsu_threshold(hr8)
    bicubic = bicubic_upscale(torch.from_numpy(np.array(pack.lr))[:, None].float() / 255, 4)
    values, spectrum = texture.compare(quantize_unit(bicubic), cut,
                                       texture.reference(hr, cut, 4))
    rows = per_image[(per_image.rock_type == pack.rock) & (per_image.split == "test")
                     & (per_image.method == "bicubic")]
    for key in texture.COLUMNS:
        np.testing.assert_allclose(rows[key], values[key].numpy(), rtol=1e-5)
    table = spectra.table()
    mean = table[(table.rock_type == pack.rock) & (table.split == "test")
                 & (table.method == "bicubic")]
    np.testing.assert_allclose(mean.power, spectrum.mean(0).numpy(), rtol=1e-6)
    assert set(table.method) == {"hr", "bicubic", "srcnn", "srgan"}
    summary = summarize(per_image)
    assert np.allclose(summary.s2_err_mean,
                       per_image.groupby(["rock_type", "split", "method"], sort=False)
                       .s2_err.mean().to_numpy())


def test_clamp_and_quantize_flags(inputs):
    raw = run_eval(inputs, clamp=False, quantize=False)
    clamped = run_eval(inputs, clamp=True, quantize=False)
    quantized = run_eval(inputs, clamp=True, quantize=True)
    assert not raw.clamped.any() and clamped.clamped.all() and not clamped.quantized.any()
    assert quantized.quantized.all()
    bicubic = raw.method == "bicubic"
    # Clipping to HR's own range can only bring bicubic's overshoot closer to HR.
    assert (clamped.psnr[bicubic] >= raw.psnr[bicubic] - 1e-9).all()
    assert (clamped.psnr[bicubic] > raw.psnr[bicubic]).any()
    # The generators end in tanh: clamping leaves them alone, rounding to 8 bits does not.
    nets = ~bicubic
    assert np.allclose(clamped.psnr[nets], raw.psnr[nets])
    assert not np.allclose(quantized.psnr[nets], clamped.psnr[nets], rtol=0, atol=1e-6)
    assert np.allclose(quantized.psnr, clamped.psnr, atol=0.05)


def test_porosity_of_known_image():
    hr = torch.full((1, 1, 10, 10), 200, dtype=torch.uint8)
    hr[..., :3, :] = 40  # 30 % dark pore pixels
    cut = otsu_threshold(hr)
    assert porosity(hr.float() / 255, cut).item() == pytest.approx(0.3)
    sr = hr.float() / 255
    sr[..., 3, :] = 0.1  # one more row segmented as pore under HR's threshold
    assert porosity(sr, cut).item() == pytest.approx(0.4)


def test_otsu_matches_skimage():
    from skimage.filters import threshold_otsu
    rng = np.random.default_rng(0)
    images = np.clip(np.concatenate([rng.normal(70, 15, (4, 300)), rng.normal(180, 20, (4, 500))],
                                    axis=1), 0, 255).astype(np.uint8).reshape(4, 1, 20, 40)
    cut = otsu_threshold(torch.from_numpy(images)).numpy()
    for image, c in zip(images, cut):
        assert round(c * 255 - 0.5) == threshold_otsu(image[0])


def test_cli_writes_tables_and_rejects_a_stale_manifest(inputs, tmp_path):
    packs, manifest, g1, g2 = inputs
    out = tmp_path / "out"
    cmd = [sys.executable, str(SCRIPT), "--packs", str(packs), "--srcnn", str(g1),
           "--srgan", str(g2), "--settings",
           as_json(dataclasses.replace(SETTINGS, splits=["test"], batch_size=4, quantize=False)),
           "--per-image", str(out / "per_image.csv"),
           "--summary", str(out / "summary.csv"), "--spectra", str(out / "spectra.csv"),
           "--log", str(tmp_path / "eval.log")]
    subprocess.run([*cmd, "--manifest", str(manifest)], check=True, capture_output=True)
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.split) == {"test"} and summary.clamped.all() and not summary.quantized.any()
    assert "summary" in (tmp_path / "eval.log").read_text()
    assert set(pd.read_csv(out / "spectra.csv").split) == {"test"}

    stale = tmp_path / "stale.csv"
    pd.read_csv(manifest).iloc[:-1].to_csv(stale, index=False)
    proc = subprocess.run([*cmd, "--manifest", str(stale)], capture_output=True, text=True)
    assert proc.returncode == 1 and "rerun the split step" in proc.stderr
