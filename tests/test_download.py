"""Download against a loopback server imitating the portal: one-time links, Range, a cut
transfer, https only, the sha256 pin. (The server speaks plain http: download()'s test-only
`allow_http_loopback` lets it through, for 127.0.0.1 only.)"""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import QuietHandler, closed_port, loopback_server
from rocksr.data.download import DOI, PROJECT_PAGE, DownloadError, download

PATH = "2D Dataset/DeepRock-SR-2D/DeepRockSR-2D.zip"
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "download.py"


def make_payload() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("DeepRockSR-2D/data.bin", np.random.default_rng(0).bytes(200_000))
    return buf.getvalue()


PAYLOAD = make_payload()


class Portal(QuietHandler):
    """`/api/<quoted path>/` answers JSON with a fresh one-time link; `/file/<n>` serves the
    payload."""

    def do_GET(self):
        server = self.server
        server.log.append((self.path, self.headers.get("Range")))
        if self.path.startswith("/api/"):
            if self.path != "/api/2D%20Dataset/DeepRock-SR-2D/DeepRockSR-2D.zip/":
                return self.send_error(404)
            server.links += 1
            link = server.link or f"http://127.0.0.1:{server.server_port}/file/{server.links}"
            return self.send_body(200, json.dumps({"status": "success", "data": link}).encode())
        if server.redirect:
            self.send_response(302)
            self.send_header("Location", server.redirect)
            self.send_header("Content-Length", "0")
            return self.end_headers()
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if m and not server.ignore_range:
            start = int(m[1])
        size = len(server.payload)
        if start >= size > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        body = server.payload[start:]
        headers = {"Content-Range": f"bytes {start}-{size - 1}/{size}"} if start else {}
        self.send_response(206 if headers else 200)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(k, v)
        self.end_headers()
        if server.cuts:  # drop the connection halfway through, as a flaky network would
            server.cuts -= 1
            body = body[: len(body) // 2]
        self.wfile.write(body)



@pytest.fixture
def portal():
    with loopback_server(Portal, payload=PAYLOAD, cuts=0, ignore_range=False, links=0, log=[],
                         link=None, redirect=None) as server:
        server.api = f"{server.url}/api/"
        yield server


def fetch(tmp_path, portal, **kw):
    out = tmp_path / "DeepRockSR-2D.zip"
    digest = download(out, portal.api, PATH, timeout=5, backoff=0, chunk=16_384,
                      allow_http_loopback=True, **kw)
    return out, digest


def test_cut_transfer_resumes_with_range(tmp_path, portal):
    portal.cuts = 1
    out, digest = fetch(tmp_path, portal)
    assert out.read_bytes() == PAYLOAD
    assert digest == hashlib.sha256(PAYLOAD).hexdigest()
    assert (tmp_path / "DeepRockSR-2D.zip.sha256").read_text() == f"{digest}  DeepRockSR-2D.zip\n"
    files = [(path, rng) for path, rng in portal.log if path.startswith("/file/")]
    # A fresh one-time link for the retry, continuing from what arrived before the cut.
    assert files == [("/file/1", None), ("/file/2", f"bytes={len(PAYLOAD) // 2}-")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DeepRockSR-2D.zip",
                                                          "DeepRockSR-2D.zip.sha256"]


def test_server_ignoring_range_restarts_the_file(tmp_path, portal):
    portal.cuts, portal.ignore_range = 1, True
    out, digest = fetch(tmp_path, portal)
    assert out.read_bytes() == PAYLOAD and digest == hashlib.sha256(PAYLOAD).hexdigest()


def test_partial_file_from_an_earlier_run_is_continued(tmp_path, portal):
    (tmp_path / "DeepRockSR-2D.zip.part").write_bytes(PAYLOAD[:1000])
    out, _ = fetch(tmp_path, portal)
    assert out.read_bytes() == PAYLOAD
    assert [rng for path, rng in portal.log if path.startswith("/file/")] == ["bytes=1000-"]


@pytest.mark.parametrize("extra", [0, 10], ids=["complete", "too-long"])
def test_partial_file_at_or_past_the_end(tmp_path, portal, extra):
    (tmp_path / "DeepRockSR-2D.zip.part").write_bytes(PAYLOAD + b"x" * extra)
    out, _ = fetch(tmp_path, portal)
    assert out.read_bytes() == PAYLOAD


def test_not_a_zip_is_rejected_and_removed(tmp_path, portal):
    portal.payload = b"<html>maintenance</html>" * 100
    with pytest.raises(DownloadError, match="not a readable zip"):
        fetch(tmp_path, portal)
    assert not list(tmp_path.iterdir())


def test_repeated_cuts_give_up_keeping_the_partial_file(tmp_path, portal):
    portal.cuts = 10
    with pytest.raises(DownloadError,
                       match="transfer ended before the end.*is kept and resumes on the next run"):
        fetch(tmp_path, portal, attempts=2)
    assert (tmp_path / "DeepRockSR-2D.zip.part").stat().st_size > 0
    assert not (tmp_path / "DeepRockSR-2D.zip").exists()


def test_wrong_path_is_not_retried(tmp_path, portal):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(tmp_path / "a.zip", portal.api, "elsewhere.zip", timeout=5, backoff=0,
                 allow_http_loopback=True)
    assert len(portal.log) == 1


@pytest.fixture
def dead_api():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{s.getsockname()[1]}/api/"


def test_no_network_says_where_to_get_the_file_and_where_to_put_it(tmp_path, dead_api):
    with pytest.raises(DownloadError) as err:
        download(tmp_path / "a.zip", dead_api, PATH, timeout=2)
    message = str(err.value)
    assert PROJECT_PAGE in message and DOI in message
    assert "dataset.archive: /path/to/DeepRockSR-2D.zip" in message
    assert "\n" not in message
    assert not list(tmp_path.iterdir())


def test_cli_exits_with_one_line_message(tmp_path, dead_api):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "a.zip"),
                           "--api", dead_api, "--path", PATH, "--timeout", "2"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "ERROR could not download" in proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr


# --- https only -----------------------------------------------------------------------------

@pytest.mark.parametrize("api", ["http://digitalporousmedia.org/api/", "ftp://127.0.0.1/api/"])
def test_a_plain_http_api_is_refused_before_any_request(tmp_path, api):
    with pytest.raises(DownloadError, match=r"not an https:// URL.*https only"):
        download(tmp_path / "a.zip", api, PATH, timeout=2)
    assert not list(tmp_path.iterdir())


def test_the_loopback_switch_is_off_by_default(tmp_path, portal):
    with pytest.raises(DownloadError, match="not an https:// URL"):
        download(tmp_path / "a.zip", portal.api, PATH, timeout=2)
    assert portal.log == []


def test_a_plain_http_link_from_the_portal_is_refused(tmp_path, portal):
    portal.link = "http://example.invalid/DeepRockSR-2D.zip"  # never contacted
    with pytest.raises(DownloadError, match="http://example.invalid/DeepRockSR-2D.zip: not an "
                                            "https:// URL"):
        fetch(tmp_path, portal)
    assert [p for p, _ in portal.log] == ["/api/2D%20Dataset/DeepRock-SR-2D/DeepRockSR-2D.zip/"]


def test_a_redirect_to_plain_http_is_refused(tmp_path, portal):
    portal.redirect = "http://example.invalid/elsewhere.zip"
    with pytest.raises(DownloadError, match="http://example.invalid/elsewhere.zip: not an "
                                            "https:// URL"):
        fetch(tmp_path, portal)
    assert not (tmp_path / "DeepRockSR-2D.zip").exists()


def test_the_config_takes_only_an_https_api():
    from rocksr.settings import ConfigError, PortalBlock

    with pytest.raises(ConfigError, match="dataset.portal.api"):
        PortalBlock.from_dict({"api": "http://digitalporousmedia.org/api/"}, "dataset.portal")


# --- the sha256 pin -----------------------------------------------------------------------

SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


def test_the_pinned_digest_is_accepted(tmp_path, portal):
    out, digest = fetch(tmp_path, portal, sha256=SHA256.upper())
    assert digest == SHA256 and out.read_bytes() == PAYLOAD


def test_another_archive_than_the_pinned_one_stops_with_both_digests(tmp_path, portal):
    pin = "0" * 64
    with pytest.raises(DownloadError) as err:
        fetch(tmp_path, portal, sha256=pin)
    message = str(err.value)
    assert SHA256 in message and pin in message and "dataset.sha256" in message
    assert "\n" not in message
    assert not (tmp_path / "DeepRockSR-2D.zip").exists()
    assert not (tmp_path / "DeepRockSR-2D.zip.sha256").exists()
    # Kept whole: with the pin corrected it is not fetched again.
    assert (tmp_path / "DeepRockSR-2D.zip.part").read_bytes() == PAYLOAD
    files = len([p for p, _ in portal.log if p.startswith("/file/")])
    out, _ = fetch(tmp_path, portal, sha256=SHA256)
    assert out.read_bytes() == PAYLOAD
    assert [rng for p, rng in portal.log if p.startswith("/file/")][files:] == [
        f"bytes={len(PAYLOAD)}-"]  # answered 416: nothing sent again


def test_a_download_made_before_the_pin_is_checked_against_it(tmp_path):
    from rocksr.data.download import check_recorded

    out = tmp_path / "DeepRockSR-2D.zip"
    check_recorded(out, None)
    check_recorded(out, SHA256)  # nothing downloaded yet
    (tmp_path / "DeepRockSR-2D.zip.sha256").write_text(f"{SHA256}  DeepRockSR-2D.zip\n")
    check_recorded(out, SHA256.upper())
    with pytest.raises(DownloadError) as err:
        check_recorded(out, "1" * 64)
    assert SHA256 in str(err.value) and "1" * 64 in str(err.value)


def test_the_pin_is_a_sha256():
    from rocksr.settings import ConfigError, DatasetBlock

    assert DatasetBlock.from_dict({"sha256": SHA256}).sha256 == SHA256
    with pytest.raises(ConfigError, match="dataset.sha256"):
        DatasetBlock.from_dict({"sha256": "abc"}, "dataset")


@pytest.mark.workflow
def test_the_workflow_stops_at_the_start_when_the_download_is_not_the_pinned_one(tmp_path):
    from workflow import copy_workflow, snakemake

    wd = copy_workflow(tmp_path / "wd")
    (wd / "results" / "download").mkdir(parents=True)
    (wd / "results" / "download" / "DeepRockSR-2D.zip.sha256").write_text(
        f"{SHA256}  DeepRockSR-2D.zip\n")
    portal = ("config.yaml",)  # the portal source, not tiny.yaml's synthetic
    pinned = snakemake(wd, "-n", "--config", f"dataset={{sha256: {SHA256}}}", configfiles=portal)
    assert "not the pinned archive" not in pinned.stdout + pinned.stderr
    other = snakemake(wd, "-n", "--config", f"dataset={{sha256: {'a' * 64}}}",
                      configfiles=portal, check=False)
    log = other.stdout + other.stderr
    assert other.returncode != 0 and SHA256 in log and "a" * 64 in log, log[-3000:]


def test_a_full_disk_stops_at_once_naming_the_file_and_the_space_it_needs(tmp_path, portal):
    """Not taken for a network failure (retried, then advice about the network)."""
    (tmp_path / "DeepRockSR-2D.zip.part").symlink_to("/dev/full")  # every write: ENOSPC
    with pytest.raises(OSError) as err:
        fetch(tmp_path, portal)
    message = str(err.value)
    assert message.startswith(f"no space left on the device for "
                              f"{tmp_path / 'DeepRockSR-2D.zip.part'}: it needs about "
                              f"{len(PAYLOAD) / 1e6:.1f} MB"), message
    assert len([p for p, _ in portal.log if p.startswith("/file/")]) == 1  # not retried


@pytest.mark.workflow
def test_the_download_rule_runs_its_script_and_fails_offline_with_the_advice(tmp_path):
    """The rule's command line as Snakemake renders it (no pin: no --sha256; the 3D archive:
    no --path), run for real against a closed loopback port: each job ends with the
    script's advice in its log, not an argument error."""
    from workflow import copy_workflow, snakemake

    wd = copy_workflow(tmp_path / "wd")
    api = f"https://127.0.0.1:{closed_port()}/api/"
    for dim, advice in ((2, "could not download the DeepRock-SR archive"),
                        (3, "DeepRockSR-3D.zip in the portal's project is not known")):
        proc = snakemake(wd, "--config", f"dataset={{portal: {{api: '{api}'}}}}",
                         "--", f"results/download/DeepRockSR-{dim}D.zip",
                         configfiles=("config.yaml",), check=False)
        log = (wd / "results" / "logs" / f"download_{dim}D.log").read_text()
        assert proc.returncode != 0 and advice in log, log
        assert "usage:" not in log and "Traceback" not in log
        assert not (wd / "results" / "download" / f"DeepRockSR-{dim}D.zip").exists()
