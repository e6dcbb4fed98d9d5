"""Shared fixtures: tiny synthetic archives and PNG/zip builders; the test interpreter on PATH."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from rocksr.data.synthetic import write_archive
from rocksr.data.volumes import mat_bytes

TINY = {"hr_size": 32, "seed": 0, "counts": {"train": 4, "valid": 2, "test": 2}}
TINY_3D = {"hr_size": 16, "seed": 0, "counts": {"train": 2, "valid": 1, "test": 1}}
MAT73_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Wed Jan  1 00:00:00 2020 " \
               b"HDF5 schema 1.00 ."
# CI puts shared/ beside the repository.
SHARED = Path(__file__).resolve().parents[2] / "shared"

# Workflow tests run `python` from rule shell commands: make it this interpreter (the venv's)
# however pytest was started, not whatever python comes first on the caller's PATH.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def png_bytes(image: np.ndarray) -> bytes:
    """PNG of a (H, W) grey array (stored as 3 identical channels) or an (H, W, 3) one."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    buf = io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def synthetic_archive(tmp_path_factory) -> Path:
    """A tiny synthetic DeepRockSR-2D.zip: HR 32x32, 4/2/2 images per rock type. Read-only."""
    return write_archive(tmp_path_factory.mktemp("synthetic") / "DeepRockSR-2D.zip", TINY)


def mat73_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A MATLAB v7.3 file as MATLAB lays it out: a 512-byte user block opening with the
    128-byte MAT header (version 0x0200, 'IM'), then HDF5 with each (i, j, k) array stored
    column-major, i.e. as its transpose, and its MATLAB_class attribute."""
    buf = io.BytesIO()
    with h5py.File(buf, "w", userblock_size=512) as f:
        for name, array in arrays.items():
            f.create_dataset(name, data=array.T).attrs["MATLAB_class"] = np.bytes_(
                array.dtype.name if array.dtype.kind in "iu" else "double")
    data = bytearray(buf.getvalue())
    data[:128] = MAT73_HEADER.ljust(116) + bytes(8) + (0x0200).to_bytes(2, "little") + b"IM"
    return bytes(data)


def _alter(source: Path, out: Path, drop=(), put=None) -> Path:
    """Copy the archive `source`, dropping members or replacing/adding them (bytes, or arrays
    written as the member's suffix says: PNG or MATLAB v5)."""
    put = {name: (mat_bytes(v) if name.endswith(".mat") else png_bytes(v))
           if isinstance(v, np.ndarray) else v for name, v in (put or {}).items()}
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename not in drop and info.filename not in put:
                dst.writestr(info, src.read(info))
        for name, data in put.items():
            dst.writestr(name, data)
    return out


@pytest.fixture
def altered_archive(synthetic_archive, tmp_path):
    """Copy the synthetic archive, dropping members or replacing/adding them (bytes or arrays)."""
    return lambda drop=(), put=None: _alter(synthetic_archive, tmp_path / "altered.zip", drop,
                                            put)


@pytest.fixture(scope="session")
def synthetic_archive_3d(tmp_path_factory) -> Path:
    """A tiny synthetic DeepRockSR-3D.zip: HR 16^3 volumes, 2/1/1 per rock type. Read-only."""
    return write_archive(tmp_path_factory.mktemp("synthetic3d") / "DeepRockSR-3D.zip", TINY_3D,
                         dim=3)


@pytest.fixture
def altered_archive_3d(synthetic_archive_3d, tmp_path):
    """altered_archive, of the 3D synthetic archive."""
    return lambda drop=(), put=None: _alter(synthetic_archive_3d, tmp_path / "altered3d.zip",
                                            drop, put)


@pytest.fixture
def lr_samples() -> list[Path]:
    """The four real DeepRock-SR LR images (carbonate, unknown X4) from shared/."""
    folder = SHARED / "data" / "deeprock-sr-lr-samples"
    samples = sorted(folder.glob("*.png"))
    if not samples:
        pytest.skip(f"real LR samples not found in {folder} "
                    "(shared/ is expected beside the repository)")
    return samples


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs mounted at tmp_path/disk (where the tests may mount one: as root with
    CAP_SYS_ADMIN; skipped elsewhere), and fill(free): a filler file that leaves about `free`
    bytes free on it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                           capture_output=True, text=True)
    if mount.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mount.stderr.strip()[:200]}")

    def fill(free: int) -> None:
        filler = disk / "filler"
        size = filler.stat().st_size if filler.exists() else 0
        filler.write_bytes(bytes(size + shutil.disk_usage(disk).free - free))

    yield disk, fill
    subprocess.run(["umount", "--lazy", str(disk)], check=True)  # a test may hold a file open


class QuietHandler(BaseHTTPRequestHandler):
    """A test server's request handler: `send_body` answers, and nothing is logged."""

    def send_body(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def loopback_server(handler, **attributes) -> Iterator[ThreadingHTTPServer]:
    """An HTTP server on 127.0.0.1 (a free port) answering with `handler`, the `attributes`
    set on it (the handler reads them as self.server.x) and its base `url`; closed after."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    for name, value in attributes.items():
        setattr(server, name, value)
    server.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                     daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A loopback port that nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
