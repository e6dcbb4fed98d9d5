"""Atomic file and folder writes: complete or absent under the final name; one sha256."""

from __future__ import annotations

import hashlib

import pytest

from rocksr.fileio import atomic_dir, atomic_path, sha256_file, temp_path


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
