"""predict on the four real DeepRock-SR LR images: 4x outputs per model plus bicubic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalkit import make_generator
from rocksr.predict import read_grey

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "predict.py"


def predict(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True)


def test_predict_real_samples(lr_samples, tmp_path):
    g1, g2 = make_generator(tmp_path / "g1.pt", 1), make_generator(tmp_path / "g2.pt", 2)
    out = tmp_path / "sr"
    proc = predict("--input-dir", lr_samples[0].parent, "--model", f"srcnn={g1}",
                   "--model", f"srgan={g2}", "--out-dir", out, "--log", tmp_path / "p.log")
    assert proc.returncode == 0, proc.stderr
    assert not out.with_name("sr.partial").exists()
    for sample in lr_samples:
        assert read_grey(sample).shape == (125, 125)
        for method in ("srcnn", "srgan", "bicubic"):
            with Image.open(out / f"{sample.stem}_{method}.png") as im:
                assert im.mode == "L" and im.size == (500, 500)
    assert len(list(out.iterdir())) == 3 * len(lr_samples)
    # The bicubic output keeps the LR image's mean grey level.
    bicubic = np.asarray(Image.open(out / f"{lr_samples[0].stem}_bicubic.png"), dtype=float)
    assert abs(bicubic.mean() - read_grey(lr_samples[0]).mean()) < 2


def test_predict_rejects_colour_and_unreadable_files(tmp_path):
    g1 = make_generator(tmp_path / "g1.pt", 1)
    src = tmp_path / "in"
    src.mkdir()
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 0] = 255
    Image.fromarray(colour).save(src / "red.png")
    proc = predict("--input-dir", src, "--model", f"srcnn={g1}", "--out-dir", tmp_path / "o")
    assert proc.returncode == 1 and "red.png: colour image" in proc.stderr
    (src / "red.png").write_bytes(b"not a png")
    proc = predict("--input-dir", src, "--model", f"srcnn={g1}", "--out-dir", tmp_path / "o")
    assert proc.returncode == 1 and "red.png: unreadable image" in proc.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()


@pytest.mark.parametrize("model,message", [("srcnn", "expected name=path"),
                                           ("bicubic={g}", "'bicubic' names the baseline")])
def test_predict_bad_model_argument(tmp_path, model, message):
    g1 = make_generator(tmp_path / "g1.pt", 1)
    proc = predict("--input-dir", tmp_path, "--model", model.format(g=g1),
                   "--out-dir", tmp_path / "o")
    assert proc.returncode != 0 and message in proc.stderr
