"""Writing files and folders so that nothing half-written ever sits under a final name.

Every output of the workflow is written to a temporary sibling and moved into place only
once complete (`atomic_path` for a file, `atomic_dir` for a folder, `write_csv` for a
table); a failure removes the
temporary and leaves any earlier output as it was. A failure because the disk is full
becomes a DiskFullError, one line that names the file and the space it needs. Also the one
sha256 of a file, and its sidecar record (`<name>.sha256`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

CHUNK = 1 << 20
# Free bytes under which a failed write means a full disk: writers that report no errno
# (torch.save to a path: "basic_ios::clear: iostream error"; numpy's "requested and
# written") fill the disk to the last block before failing.
FULL = 1 << 20


class DiskFullError(OSError):
    """No space left on the device for a file; the message names it and the space needed."""

    def __init__(self, message: str):
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror


def disk_full(path: str | Path, needed: str) -> DiskFullError:
    """The error for `path`, which needs `needed` (e.g. "about 3.1 MB") more on its disk."""
    path = Path(path)
    folder = next((p for p in (path.parent, *path.parents) if p.exists()), Path("."))
    return DiskFullError(f"no space left on the device for {path}: it needs {needed}, "
                         f"{size_text(shutil.disk_usage(folder).free)} are free there; "
                         "free some space and rerun")


def size_text(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _out_of_space(exc: BaseException, where: Path) -> bool:
    """Whether `exc`, raised while writing into folder `where`, means the disk is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return isinstance(exc, Exception) and shutil.disk_usage(where).free < FULL
    except OSError:
        return False


def _needed(old: int | None, written: int) -> str:
    """What a write needs: about the size of the version it replaces, else more than what
    it wrote before the disk filled."""
    return f"about {size_text(old)}" if old else f"more than {size_text(written)}"


def _size(path: Path) -> int:
    """Bytes of a file, or of the files in a folder; 0 if absent."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def temp_path(path: str | Path) -> Path:
    """The temporary sibling `atomic_path` writes `path` through (`<name>.tmp`)."""
    path = Path(path)
    return path.with_name(path.name + ".tmp")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write; it replaces `path` on success and is
    removed on error (a full disk: DiskFullError). The parent folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        full = _out_of_space(exc, path.parent)
        written = _size(tmp)
        tmp.unlink(missing_ok=True)
        if full:
            raise disk_full(path, _needed(_size(path), written)) from None
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh, empty `<path>.partial` folder to fill; on success it takes the place of
    `path` (whose old contents go only once the new ones are there), on error it is removed
    (a full disk: DiskFullError)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException as exc:
        full, written = _out_of_space(exc, tmp), _size(tmp)
        shutil.rmtree(tmp, ignore_errors=True)  # never leave a half-written folder behind
        if full:
            raise disk_full(path, _needed(_size(path), written)) from None
        raise
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def exclusive(path: str | Path, waiting: Callable[[str], None],
              poll: float = 1.0) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created) while inside. While another process
    holds it, call `waiting(holder)` every `poll` seconds, `holder` being the pid that process
    wrote there; `waiting` may raise to give up. The kernel drops the lock when its process
    ends, however it ends (SIGKILL too). Where the file system has no locks, none is held."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                f.seek(0)
                waiting(f.read().strip() or "?")
                time.sleep(poll)
            except OSError as exc:
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP):
                    raise
                break
        with contextlib.suppress(OSError):  # who holds it, for the waiters' message only
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
        yield


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
