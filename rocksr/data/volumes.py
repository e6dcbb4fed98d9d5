"""3D volumes: reading DeepRock-SR's MATLAB files (and .npy, .tif), writing MATLAB v5.

Formats, told apart by the name's suffix:
- `.mat`, MATLAB v5 (scipy.io.loadmat) or v7.3 (an HDF5 file behind a 512-byte header,
  read with h5py); the array named `temp` (the published files' name) or else the file's only
  array;
- `.npy` (numpy, no pickles), read as stored;
- `.tif` / `.tiff`, a stack of grey pages (tifffile), pages first.

Axis order: (D, H, W) with `volume[z]` the MATLAB slice `A(:, :, z + 1)`: MATLAB's third
index first, then its rows and columns. MATLAB stores arrays column-major: scipy hands back
`A` in MATLAB's index order (i, j, k), HDF5 (v7.3) its transpose (k, j, i); both become
(k, i, j) here. `.npy` and `.tif` volumes are taken as already (D, H, W).

A bad file raises VolumeError naming it and what is wrong. `as_grey_levels` admits other
dtypes when they hold whole numbers in 0-255 (a MATLAB double of grey levels) without loss.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from typing import BinaryIO

import h5py
import numpy as np
import scipy.io
import tifffile

MAT_VARIABLE = "temp"
SUFFIXES = (".mat", ".npy", ".tif", ".tiff")
# MATLAB's own header text is free-form; a fixed one keeps written files byte-identical.
MAT_HEADER = b"MATLAB 5.0 MAT-file, written by rocksr"


class VolumeError(ValueError):
    """A volume file that cannot be read as a 3D array; the message names the file."""


def read_volume(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """The (D, H, W) array of a volume file, or of its bytes (a zip member) called `name`."""
    name = name or str(source)
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise VolumeError(f"{name}: not a volume file by its suffix (expected one of "
                          f"{', '.join(SUFFIXES)})")
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        if suffix == ".mat":
            volume = _read_mat(source, name)
        elif suffix == ".npy":
            volume = np.load(source, allow_pickle=False)
        else:
            volume = tifffile.imread(source)
            if not volume.size:  # tifffile warns about a broken page table, reads nothing
                raise ValueError("no image data")
    except FileNotFoundError:
        raise VolumeError(f"{name}: no such file") from None
    except VolumeError:
        raise
    except (OSError, ValueError, EOFError, KeyError, IndexError, TypeError, zlib.error,
            NotImplementedError, scipy.io.matlab.MatReadError) as exc:
        raise VolumeError(f"{name}: corrupt or unreadable {suffix} file ({exc})") from None
    if volume.ndim != 3:
        raise VolumeError(f"{name}: a {volume.ndim}-D array of shape {volume.shape}, expected "
                          "a 3-D volume")
    return volume


def _read_mat(source: str | Path | BinaryIO, name: str) -> np.ndarray:
    if _mat_version(source) == 2:  # v7.3: HDF5
        return _read_mat73(source, name)
    arrays = {k: v for k, v in scipy.io.loadmat(source).items()
              if not k.startswith("__") and isinstance(v, np.ndarray)}
    return from_matlab(_choose(arrays, name))


def _mat_version(source: str | Path | BinaryIO) -> int:
    if isinstance(source, (str, Path)):
        with open(source, "rb") as f:
            return scipy.io.matlab.matfile_version(f)[0]
    major = scipy.io.matlab.matfile_version(source)[0]
    source.seek(0)
    return major


def _read_mat73(source: str | Path | BinaryIO, name: str) -> np.ndarray:
    with h5py.File(source, "r") as f:
        # MATLAB keeps cell and object data under '#refs#' / '#subsystem#'
        arrays = {k: v for k, v in f.items()
                  if isinstance(v, h5py.Dataset) and not k.startswith("#")}
        dataset = _choose(arrays, name)
        array = dataset[()]
    if not isinstance(array, np.ndarray):
        raise VolumeError(f"{name}: its array is a scalar, expected a 3-D volume")
    return from_matlab(array.T)  # HDF5 holds MATLAB's column-major data reversed


def _choose(arrays: dict, name: str):
    if MAT_VARIABLE in arrays:
        return arrays[MAT_VARIABLE]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    if not arrays:
        raise VolumeError(f"{name}: no array in this MATLAB file")
    raise VolumeError(f"{name}: {len(arrays)} arrays ({', '.join(sorted(arrays))}) and none "
                      f"named '{MAT_VARIABLE}': which one is the volume?")


def from_matlab(array: np.ndarray) -> np.ndarray:
    """MATLAB index order A(i, j, k) to (D, H, W) = (k, i, j); other ranks unchanged."""
    return np.ascontiguousarray(np.moveaxis(array, 2, 0)) if array.ndim == 3 else array


def to_matlab(volume: np.ndarray) -> np.ndarray:
    """(D, H, W) back to MATLAB's A(i, j, k)."""
    return np.moveaxis(volume, 0, 2)


def mat_bytes(volume: np.ndarray) -> bytes:
    """A MATLAB v5 file holding `volume` as `temp`, the same bytes for the same volume."""
    buf = io.BytesIO()
    scipy.io.savemat(buf, {MAT_VARIABLE: to_matlab(volume)})
    data = bytearray(buf.getvalue())
    data[:116] = MAT_HEADER.ljust(116)  # scipy's header text carries the time of writing
    return bytes(data)


def as_grey_levels(volume: np.ndarray, name: str) -> np.ndarray:
    """uint8 as it is; another numeric dtype only if every value is a whole number in
    0-255 (converted without loss); else a VolumeError naming the file and dtype."""
    if volume.dtype == np.uint8:
        return volume
    if volume.dtype.kind in "iuf" and volume.size:
        low, high = volume.min(), volume.max()
        if low >= 0 and high <= 255 and np.array_equal(volume, np.round(volume)):
            return volume.astype(np.uint8)
        raise VolumeError(f"{name}: {volume.dtype.name} values from {low:g} to {high:g}, "
                          "expected 8-bit grey levels (whole numbers 0-255)")
    raise VolumeError(f"{name}: {volume.dtype.name} array, expected 8-bit grey levels (uint8)")
