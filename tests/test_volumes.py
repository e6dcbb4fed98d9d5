"""Volume files: MATLAB v5 and v7.3, .npy and .tif; the axis order; every bad file named."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.io
import tifffile

from conftest import mat73_bytes
from rocksr.data.volumes import VolumeError, as_grey_levels, mat_bytes, read_volume

# A MATLAB array A(i, j, k) of size 2 x 3 x 4, each value telling its own indices.
ROW, COLUMN, PAGE = np.indices((2, 3, 4))
MATLAB = (100 * ROW + 10 * COLUMN + PAGE).astype(np.uint8)


def v5_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, arrays)
    return buf.getvalue()


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_mat_axis_order_is_slice_first(version):
    """(D, H, W) = MATLAB's (k, i, j): volume[z] is the MATLAB slice A(:, :, z + 1)."""
    data = (v5_bytes if version == "v5" else mat73_bytes)({"temp": MATLAB})
    volume = read_volume(data, "0001.mat")
    assert volume.shape == (4, 2, 3) and volume.dtype == np.uint8
    for k in range(4):
        assert np.array_equal(volume[k], MATLAB[:, :, k])
    assert volume[3, 1, 2] == 100 * 1 + 10 * 2 + 3


def test_v73_is_refused_by_scipy_and_read_here(tmp_path):
    data = mat73_bytes({"temp": MATLAB})
    assert data[512:520] == b"\x89HDF\r\n\x1a\n"  # the HDF5 file behind MATLAB's user block
    with pytest.raises(NotImplementedError, match="HDF reader"):
        scipy.io.loadmat(io.BytesIO(data))
    path = tmp_path / "0001.mat"
    path.write_bytes(data)
    assert np.array_equal(read_volume(path), read_volume(v5_bytes({"temp": MATLAB}), "a.mat"))


def test_mat_bytes_round_trip_and_are_deterministic():
    volume = np.random.default_rng(0).integers(0, 256, (3, 5, 7), dtype=np.uint8)
    data = mat_bytes(volume)
    assert np.array_equal(read_volume(data, "x.mat"), volume)
    assert scipy.io.loadmat(io.BytesIO(data))["temp"].shape == (5, 7, 3)  # MATLAB's view
    assert data == mat_bytes(volume.copy())  # no date in the header


@pytest.mark.parametrize("writer", [v5_bytes, mat73_bytes], ids=["v5", "v7.3"])
def test_which_array_is_the_volume(writer):
    other = np.zeros((2, 2, 2), np.uint8)
    assert np.array_equal(read_volume(writer({"vol": MATLAB}), "one.mat")[0], MATLAB[:, :, 0])
    assert read_volume(writer({"a": other, "temp": MATLAB}), "two.mat").shape == (4, 2, 3)
    with pytest.raises(VolumeError,
                       match=r"^two\.mat: 2 arrays \(a, b\) and none named 'temp'"):
        read_volume(writer({"a": other, "b": MATLAB}), "two.mat")


def test_mat_without_array():
    with pytest.raises(VolumeError, match=r"^empty\.mat: no array in this MATLAB file$"):
        read_volume(v5_bytes({}), "empty.mat")


@pytest.mark.parametrize("data, name", [
    (b"MATLAB 5.0 MAT-file" + bytes(200), "zeros.mat"),
    (b"not a mat file at all", "short.mat"),
    (mat73_bytes({"temp": MATLAB})[:700], "cut73.mat"),
    (v5_bytes({"temp": MATLAB})[:-40], "cut5.mat"),
    (b"\x93NUMPY junk", "junk.npy"),
    (b"II*\x00 junk", "junk.tif"),
])
def test_corrupt_files_are_named(data, name):
    with pytest.raises(VolumeError, match=rf"^{name}: corrupt or unreadable \.\w+ file"):
        read_volume(data, name)


def test_npy_and_tif_volumes(tmp_path):
    volume = np.random.default_rng(1).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    np.save(tmp_path / "v.npy", volume)
    tifffile.imwrite(tmp_path / "v.tif", volume, photometric="minisblack")
    assert np.array_equal(read_volume(tmp_path / "v.npy"), volume)
    assert np.array_equal(read_volume(tmp_path / "v.tif"), volume)  # pages first


def test_wrong_shape_suffix_and_missing_file(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((4, 5), np.uint8))
    with pytest.raises(VolumeError, match=r"flat\.npy: a 2-D array of shape \(4, 5\), expected"):
        read_volume(tmp_path / "flat.npy")
    with pytest.raises(VolumeError, match=r"v\.png: not a volume file by its suffix"):
        read_volume(tmp_path / "v.png")
    with pytest.raises(VolumeError, match=r"nope\.mat: no such file"):
        read_volume(tmp_path / "nope.mat")


def test_grey_levels():
    levels = np.array([[[0, 17, 255]]], np.float64)
    assert as_grey_levels(levels, "d.mat").dtype == np.uint8  # a MATLAB double of levels
    assert np.array_equal(as_grey_levels(levels, "d.mat"), levels)
    with pytest.raises(VolumeError, match=r"^f\.mat: float64 values from 0 to 0\.5, expected"):
        as_grey_levels(np.array([[[0, 0.5]]]), "f.mat")
    with pytest.raises(VolumeError, match=r"^w\.mat: uint16 values from 0 to 300"):
        as_grey_levels(np.array([[[0, 300]]], np.uint16), "w.mat")
    with pytest.raises(VolumeError, match=r"^b\.mat: bool array, expected 8-bit grey levels"):
        as_grey_levels(np.zeros((1, 1, 2), bool), "b.mat")
