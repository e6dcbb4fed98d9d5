"""Writing files and folders so that nothing half-written ever sits under a final name.

Every output of the workflow is written to a temporary sibling and moved into place only
once complete (`atomic_path` for a file, `atomic_dir` for a folder, `write_csv` for a
table); a failure removes the
temporary and leaves any earlier output as it was. Also the one sha256 of a file, and its
sidecar record (`<name>.sha256`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

CHUNK = 1 << 20


def temp_path(path: str | Path) -> Path:
    """The temporary sibling `atomic_path` writes `path` through (`<name>.tmp`)."""
    path = Path(path)
    return path.with_name(path.name + ".tmp")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write; it replaces `path` on success and is
    removed on error. The parent folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh, empty `<path>.partial` folder to fill; on success it takes the place of
    `path` (whose old contents go only once the new ones are there), on error it is removed."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # never leave a half-written folder behind
        raise
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks (archives are gigabytes)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while data := f.read(CHUNK):
            digest.update(data)
    return digest.hexdigest()


def sha256_sidecar(path: str | Path) -> Path:
    """`<path>.sha256`, where the digest of `path` is recorded."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def write_sha256(path: str | Path, digest: str) -> None:
    """Record `path`'s digest in its sidecar, in sha256sum's format (`sha256sum -c` checks it)."""
    with atomic_path(sha256_sidecar(path)) as tmp:
        tmp.write_text(f"{digest}  {Path(path).name}\n")


def read_sha256(path: str | Path) -> str:
    """The digest recorded in `path`'s sidecar (write_sha256)."""
    sidecar = sha256_sidecar(path)
    try:
        digest = sidecar.read_text().split()[0]
    except (OSError, IndexError) as exc:
        raise ValueError(f"{sidecar}: no recorded sha256 ({exc})") from None
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"{sidecar}: not a sha256 digest: {digest[:80]!r}")
    return digest


def write_csv(table: pd.DataFrame, path: str | Path) -> None:
    """Write atomically: a reader never sees a half-written CSV under the final name."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
