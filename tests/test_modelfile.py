"""Exported model files: self-describing, safe to read (no pickle), and refused with a clear
error when anything in them does not match."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from evalkit import make_generator, tiny_config
from rocksr.infer import modelfile
from rocksr.infer.modelfile import export, open_model
from rocksr.workflow import config as cfg


@pytest.fixture
def exported(tmp_path):
    pt = make_generator(tmp_path / "generator.pt", 3)
    card = cfg.model_card(tiny_config(), "tiny", 2)
    return pt, export(pt, tmp_path / "tiny_srgan.safetensors", card)


def rewrite(path, card=None, tensors=None):
    """Write the file again with its card or weights changed (the sidecar left as it was)."""
    old_card, old_tensors = modelfile._read(path)
    save_file(tensors or old_tensors, path,
              metadata={modelfile.KEY: json.dumps(card or old_card)})


def test_export_describes_the_model_and_loads_back_the_same_generator(tmp_path, exported):
    pt, card = exported
    path = tmp_path / "tiny_srgan.safetensors"
    assert (card["name"], card["scale"], card["degradation"]) == ("tiny_srgan", 4, "unknown")
    assert card["training"]["data"] == "x4_unknown" and card["training"]["run"]["seed"] == 0
    assert card["arch"] == {"scale": 4, "blocks": 1, "filters": 8, "channels": 1, "dim": 2,
                            "upsample": "subpixel", "act": "authors"}
    assert card["pixels"] == modelfile.PIXELS and card["rocksr_version"]
    assert (tmp_path / "tiny_srgan.safetensors.sha256").read_text() == (
        f"{card['sha256']}  tiny_srgan.safetensors\n")
    generator, info = open_model(path)
    original, _ = open_model(pt)
    x = torch.rand(1, 1, 6, 6)
    assert torch.equal(generator(x), original(x))
    assert info["sha256"] == card["sha256"] and info["name"] == "tiny_srgan"
    assert not path.read_bytes().startswith(b"\x80")  # not a pickle


@pytest.mark.parametrize("change,message", [
    (lambda c, t: ({**c, "version": 99}, t), "format version 99"),
    (lambda c, t: ({**c, "pixels": "[0, 255]"}, t), r"expects pixels as '\[0, 255\]'"),
    (lambda c, t: ({**c, "scale": 2}, t), "its card contradicts itself"),
    (lambda c, t: ({**c, "format": "other"}, t), "not a rocksr generator"),
    (lambda c, t: (c, {**t, "head.bias": t["head.bias"] + 1}), "its weights differ from"),
    (lambda c, t: ({**c, "arch": {**c["arch"], "blocks": 2}}, t),
     "do not fit the architecture its card states"),
])
def test_a_mismatch_is_refused_naming_the_file(tmp_path, exported, change, message):
    path = tmp_path / "tiny_srgan.safetensors"
    modelfile.sidecar(path).unlink()
    card, tensors = change(*modelfile._read(path))
    rewrite(path, card, tensors)
    with pytest.raises(ValueError, match=message) as info:
        open_model(path)
    assert str(path) in str(info.value)


def test_a_file_that_differs_from_its_sha256_is_refused(tmp_path, exported):
    path = tmp_path / "tiny_srgan.safetensors"
    rewrite(path, card={**modelfile._read(path)[0], "name": "renamed"})
    with pytest.raises(ValueError, match="but tiny_srgan.safetensors.sha256 says"):
        open_model(path)


def test_foreign_files_are_refused(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, plain)
    with pytest.raises(ValueError, match="without a rocksr card"):
        open_model(plain)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        open_model(junk)
    with pytest.raises(FileNotFoundError, match="model file not found"):
        open_model(tmp_path / "absent.safetensors")
