"""Atomic file and folder writes: complete or absent under the final name; one sha256."""

from __future__ import annotations

import errno
import hashlib
import shutil

import pytest

from rocksr import fileio
from rocksr.fileio import DiskFullError, atomic_dir, atomic_path, sha256_file, temp_path


def test_atomic_path_replaces_on_success_and_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "sub" / "table.csv"
    with atomic_path(path) as tmp:
        assert tmp == temp_path(path) and tmp.parent.is_dir()
        tmp.write_text("new")
        assert not path.exists()  # nothing under the final name while writing
    assert path.read_text() == "new"
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed while writing")
    assert path.read_text() == "new" and not tmp.exists()


def test_atomic_dir_swaps_in_the_new_folder_and_removes_a_failed_one(tmp_path):
    out = tmp_path / "packs"
    out.mkdir()
    (out / "old.npy").write_text("old")
    with atomic_dir(out) as tmp:
        assert tmp.name == "packs.partial" and not any(tmp.iterdir())
        (tmp / "new.npy").write_text("new")
        assert (out / "old.npy").exists()  # the old contents stay until the new are complete
    assert [p.name for p in out.iterdir()] == ["new.npy"]
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "half.npy").write_text("half")
        raise RuntimeError("failed")
    assert [p.name for p in out.iterdir()] == ["new.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["packs"]


def test_sha256_file_reads_in_chunks(tmp_path):
    data = bytes(range(256)) * 10000  # several chunks
    (tmp_path / "a.bin").write_bytes(data)
    assert sha256_file(tmp_path / "a.bin") == hashlib.sha256(data).hexdigest()


# --- a full disk ---------------------------------------------------------------------------

def full_disk(*args, **kw):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_one_line_naming_the_file_and_the_space_it_needs(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(bytes(3 * 2**20))  # the version a new one replaces: 3 MiB
    with pytest.raises(DiskFullError) as err, atomic_path(path) as tmp:
        tmp.write_bytes(bytes(1000))
        full_disk()
    message = str(err.value)
    assert err.value.errno == errno.ENOSPC and isinstance(err.value, OSError)
    assert message.startswith(f"no space left on the device for {path}: it needs about 3.1 MB")
    assert "free" in message and "\n" not in message
    assert path.stat().st_size == 3 * 2**20 and not temp_path(path).exists()  # old one kept


def test_a_new_file_on_a_full_disk_says_what_it_needs_at_least(tmp_path):
    with pytest.raises(DiskFullError, match=r"for .*new.csv: it needs more than 2.0 kB"), \
            atomic_path(tmp_path / "new.csv") as tmp:
        tmp.write_bytes(bytes(2000))
        full_disk()


def test_another_write_error_on_a_full_disk_is_reported_the_same(tmp_path, monkeypatch):
    """torch.save to a path says `basic_ios::clear: iostream error` (or another C++ message),
    no errno: the disk is full if nothing is left on it after the failed write."""
    def torch_save_error():
        raise RuntimeError("basic_ios::clear: iostream error")

    with pytest.raises(RuntimeError, match="iostream"), atomic_path(tmp_path / "a.pt"):
        torch_save_error()  # a disk with space: not a full disk
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda p: usage._replace(free=4096))
    with pytest.raises(DiskFullError, match="a.pt"), atomic_path(tmp_path / "a.pt"):
        torch_save_error()


def test_a_folder_on_a_full_disk_is_one_line_naming_it(tmp_path):
    with pytest.raises(DiskFullError, match=r"for .*packs: it needs more than 5.0 kB"), \
            atomic_dir(tmp_path / "packs") as tmp:
        (tmp / "a.npy").write_bytes(bytes(5000))
        full_disk()
    assert list(tmp_path.iterdir()) == []


def test_a_really_full_disk(small_disk):
    import torch

    disk, fill = small_disk
    path = disk / "checkpoint.pt"
    with atomic_path(path) as tmp:
        torch.save({"x": torch.zeros(10_000)}, tmp)  # 40 kB
    fill(20_000)
    with pytest.raises(DiskFullError) as err, atomic_path(path) as tmp:
        torch.save({"x": torch.ones(10_000)}, tmp)
    assert str(err.value).startswith(f"no space left on the device for {path}: it needs about")
    assert torch.load(path, weights_only=True)["x"].sum() == 0  # the old one, whole
    assert not temp_path(path).exists()
