"""The VGG19 weights of phase 2: provided before training (a loopback HTTP server stands for
torchvision's; never the network), verified by sha256, and each run's record."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
import yaml

from conftest import QuietHandler, closed_port, loopback_server
from rocksr.fileio import read_sha256
from rocksr.nets.vgg import VGG_FILE, VGGWeightsError
from rocksr.nets.vgg_files import (
    make_record,
    provide,
    read_record,
    verify,
    write_record,
)
from rocksr.settings import PhaseSettings
from rocksr.workflow import config as cfg

ROOT = Path(__file__).resolve().parents[1]
CONTENT = b"stand-in for a VGG19 state dict" * 1000
PREFIX = hashlib.sha256(CONTENT).hexdigest()[:8]


class Files(QuietHandler):
    """Serves the server's `files` by path; `stall` seconds of silence before answering."""

    def do_GET(self):
        time.sleep(self.server.stall)
        body = self.server.files.get(self.path)
        if body is None:
            return self.send_error(404)
        self.send_body(200, body)


@pytest.fixture
def server():
    with loopback_server(Files, files={}, stall=0.0) as httpd:
        yield httpd


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty $TORCH_HOME; its checkpoints folder is where the cache copy would be."""
    home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home / "hub" / "checkpoints"


def test_imagenet_is_downloaded_checked_and_recorded(tmp_path, server, torch_home):
    name = f"/vgg19-{PREFIX}.pth"  # torchvision's names carry their sha256 prefix
    server.files[name] = CONTENT
    out = tmp_path / "weights" / VGG_FILE
    digest = provide("imagenet", out, url=server.url + name, timeout=5)
    assert out.read_bytes() == CONTENT and digest == hashlib.sha256(CONTENT).hexdigest()
    assert read_sha256(out) == digest
    assert not out.with_name(out.name + ".part").exists()


def test_a_download_that_is_not_torchvisions_file_is_removed(tmp_path, server, torch_home):
    server.files["/vgg19-00000000.pth"] = CONTENT
    out = tmp_path / VGG_FILE
    with pytest.raises(VGGWeightsError, match="does not start with 00000000.*not that file"):
        provide("imagenet", out, url=server.url + "/vgg19-00000000.pth", timeout=5)
    assert not out.exists() and not out.with_name(out.name + ".part").exists()


def test_offline_names_the_file_and_where_to_place_it(tmp_path, torch_home):
    out = tmp_path / VGG_FILE
    url = f"http://127.0.0.1:{closed_port()}/{VGG_FILE}"
    with pytest.raises(VGGWeightsError) as info:
        provide("imagenet", out, url=url, timeout=5)
    message = str(info.value)
    assert VGG_FILE in message and str(torch_home / VGG_FILE) in message
    assert "training.phase2.vgg_weights" in message and not out.exists()


def test_a_silent_server_times_out_instead_of_hanging(tmp_path, server, torch_home):
    server.stall, server.files[f"/{VGG_FILE}"] = 30.0, CONTENT
    start = time.monotonic()
    with pytest.raises(VGGWeightsError, match="timed out"):
        provide("imagenet", tmp_path / VGG_FILE, url=f"{server.url}/{VGG_FILE}", timeout=0.5)
    assert time.monotonic() - start < 10


def test_imagenet_in_the_torch_cache_is_copied_without_network(tmp_path, torch_home):
    name = f"vgg19-{PREFIX}.pth"
    torch_home.mkdir(parents=True)
    (torch_home / name).write_bytes(CONTENT)
    out = tmp_path / "weights" / VGG_FILE
    provide("imagenet", out, url=f"http://127.0.0.1:{closed_port()}/{name}")
    assert out.read_bytes() == CONTENT and read_sha256(out) == hashlib.sha256(CONTENT).hexdigest()


def test_a_local_file_is_copied_and_a_missing_one_named(tmp_path):
    source = tmp_path / "vgg19.npy"
    source.write_bytes(CONTENT)
    out = tmp_path / "weights" / "vgg19.npy"
    assert provide(str(source), out) == read_sha256(out)
    assert out.read_bytes() == CONTENT
    with pytest.raises(VGGWeightsError, match="not found: .*nope.pth"):
        provide(str(tmp_path / "nope.pth"), tmp_path / "weights" / "nope.pth")


def test_the_record_says_what_the_vgg_term_is():
    record = make_record("imagenet", "auto", "caffe", "pool5", "w/vgg19.pth", "ab" * 32)
    assert (record.origin, record.exact) == ("torchvision", False)
    assert "NOT the authors' exact VGG term" in record.describe()
    assert "torchvision-trained" in record.describe() and "ab" * 32 in record.describe()
    npy = make_record("/data/vgg19.npy", "auto", "caffe", "pool5", "w/vgg19.npy", "cd" * 32)
    assert (npy.origin, npy.exact) == ("caffe", True)
    assert npy.describe().endswith("layer pool5: the authors' exact VGG term")
    converted = make_record("/data/vgg19-d01eb7cb.pth", "caffe", "caffe", "pool5", "w/x.pth", "0")
    assert converted.exact  # a state dict converted from Caffe, said so in the config
    for inexact in (make_record("/d/vgg19.npy", "auto", "torchvision", "pool5"),
                    make_record("/d/vgg19.npy", "auto", "caffe", "relu5_4")):
        assert not inexact.exact
    random = make_record("random", "auto", "caffe", "pool5")
    assert (random.file, random.origin, random.exact, random.weights) == (
        None, "random", False, "random")
    assert "RANDOM" in random.describe()


def phase2(**over) -> PhaseSettings:
    """The tiny run's phase-2 settings with `over` on top."""
    tiny = cfg.deep_merge(cfg.load(ROOT / "config.yaml"),
                          yaml.safe_load((ROOT / "tests" / "tiny.yaml").read_text()))
    return PhaseSettings.from_dict({**cfg.phase_settings(tiny, "tiny", 2).to_dict(), **over})


def test_phase2_loads_only_the_file_it_was_given(tmp_path):
    weights = tmp_path / "vgg19.npy"
    weights.write_bytes(CONTENT)
    digest = hashlib.sha256(CONTENT).hexdigest()
    record = make_record(str(weights), "auto", "caffe", "pool5", weights, digest)
    write_record(tmp_path / "vgg_weights.yaml", record)
    assert read_record(tmp_path / "vgg_weights.yaml") == record
    s = phase2(vgg_weights=str(weights), lr_patch=8)
    verify(record, s)
    weights.write_bytes(CONTENT + b"!")
    with pytest.raises(VGGWeightsError, match="is not the .* recorded when it was provided"):
        verify(record, s)
    with pytest.raises(VGGWeightsError, match="says vgg_layer pool5, the settings relu5_4"):
        verify(record, phase2(vgg_weights=str(weights), vgg_layer="relu5_4"))
    (tmp_path / "bad.yaml").write_text("source: imagenet\n")
    with pytest.raises(VGGWeightsError, match="bad.yaml.file: missing"):
        read_record(tmp_path / "bad.yaml")
