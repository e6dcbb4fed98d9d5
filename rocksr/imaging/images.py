"""The user's own micro-CT images: reading and writing PNG and TIFF, 8- and 16-bit grey.

An input is one image file, a multi-page TIFF stack, or a folder of slice files (PNG/TIFF,
sorted by name, numbers compared as numbers). TIFFs are read with tifffile one page at a
time, PNGs with Pillow; RGB(A) is accepted when its colour channels are equal. Every file's
header is checked before any pixel is read (`open_input`), so a bad pixel type, mixed slice
sizes or an unsupported layout stop the run before anything is written; pixel data that
cannot be read (a truncated TIFF) stops it with the file and page named.

Outputs (`SliceWriter`) keep the input's dtype and shape of things: a stack stays a
multi-page TIFF, a folder stays a folder of files named like the input's slices; 8-bit PNG
input gives PNG, everything else TIFF. Each output carries the intensity mapping in its
metadata (TIFF ImageDescription, PNG text chunk `rocksr`).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from rocksr.imaging.grey import grey_channel
from rocksr.imaging.intensity import check_dtype

SUFFIXES = {".png": "png", ".tif": "tiff", ".tiff": "tiff"}
PNG_MODES = {"L": np.uint8, "RGB": np.uint8, "RGBA": np.uint8,
             "I;16": np.uint16, "I;16B": np.uint16, "I;16L": np.uint16}
TIFF_LAYOUTS = ("YX", "YXS", "SYX")  # grey, interleaved and planar samples
READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, UnidentifiedImageError, KeyError,
               IndexError)
BIGTIFF_ABOVE = 2**31  # bytes; classic TIFF offsets are 32-bit


@dataclass(frozen=True)
class Slice:
    file: Path
    page: int  # TIFF page (0 for PNG)
    fmt: str   # png | tiff

    @property
    def where(self) -> str:
        return f"{self.file}" + (f" (page {self.page + 1})" if self.page else "")


@dataclass
class ImageInput:
    """A checked input: its slices in order, one (H, W) shape and one dtype for all."""

    path: Path
    kind: str  # image | stack | folder
    slices: list[Slice]
    shape: tuple[int, int]
    dtype: np.dtype

    @property
    def name(self) -> str:
        return input_name(self.path)

    def __len__(self) -> int:
        return len(self.slices)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Each slice as an (H, W) array of `dtype`; a file is opened once for all its pages."""
        for file, group in itertools.groupby(self.slices, key=lambda s: s.file):
            group = list(group)
            if group[0].fmt == "png":
                yield _read_png(group[0])
                continue
            try:
                tif = tifffile.TiffFile(file)
            except READ_ERRORS as exc:
                raise ValueError(f"{file}: unreadable TIFF ({exc})") from None
            with tif:
                for s in group:
                    yield _read_tiff_page(tif, s)


def input_name(path: str | Path) -> str:
    """What an input's outputs are named after: a file's stem, a folder's name."""
    path = Path(path)
    return path.stem if path.suffix.lower() in SUFFIXES and not path.is_dir() else path.name


def open_input(path: str | Path) -> ImageInput:
    """Check every header of an image file, TIFF stack or folder of slices."""
    path = Path(path)
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in SUFFIXES),
                       key=lambda p: _natural(p.name))
        if not files:
            raise ValueError(f"{path}: no PNG or TIFF images in this folder")
        stems = [p.stem for p in files]
        clash = sorted({s for s in stems if stems.count(s) > 1})
        if clash:
            raise ValueError(f"{path}: several slices share the name(s) {', '.join(clash)}")
        kind = "folder"
    elif path.is_file():
        if path.suffix.lower() not in SUFFIXES:
            raise ValueError(f"{path}: not a PNG or TIFF file (by its suffix)")
        files = [path]
        kind = None
    else:
        raise FileNotFoundError(f"{path}: no such file or folder")
    slices, shape, dtype = [], None, None
    for file in files:
        for s, (s_shape, s_dtype) in _probe(file):
            if shape is None:
                shape, dtype = s_shape, s_dtype
            elif s_shape != shape:
                raise ValueError(f"{s.where}: {s_shape[0]}x{s_shape[1]} pixels, but "
                                 f"{slices[0].where} has {shape[0]}x{shape[1]} (all slices must "
                                 "share one size)")
            elif s_dtype != dtype:
                raise ValueError(f"{s.where}: {s_dtype.name} pixels, but {slices[0].where} has "
                                 f"{dtype.name} (all slices must share one type)")
            slices.append(s)
    if kind == "folder" and len(slices) != len(files):
        stack = next(s for s in slices if s.page > 0)
        raise ValueError(f"{stack.file}: a multi-page stack inside a folder of slices "
                         "(give the stack itself as the input)")
    kind = kind or ("stack" if len(slices) > 1 else "image")
    return ImageInput(path, kind, slices, shape, dtype)


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _probe(file: Path) -> list[tuple[Slice, tuple[tuple[int, int], np.dtype]]]:
    """(slice, (shape, dtype)) of each page, from the headers only."""
    fmt = SUFFIXES[file.suffix.lower()]
    if fmt == "png":
        try:
            with Image.open(file) as im:
                mode, (w, h) = im.mode, im.size
        except READ_ERRORS as exc:
            raise ValueError(f"{file}: unreadable image ({exc})") from None
        if mode not in PNG_MODES:
            raise ValueError(f"{file}: unsupported image mode {mode!r} (expected 8- or 16-bit "
                             "grey, or RGB with equal channels)")
        return [(Slice(file, 0, fmt), ((h, w), np.dtype(PNG_MODES[mode])))]
    try:
        with tifffile.TiffFile(file) as tif:
            pages = [(p.axes, p.shape, p.dtype) for p in tif.pages]
    except READ_ERRORS as exc:
        raise ValueError(f"{file}: unreadable TIFF ({exc})") from None
    if not pages:
        raise ValueError(f"{file}: a TIFF without images")
    out = []
    for i, (axes, shape, dtype) in enumerate(pages):
        s = Slice(file, i, fmt)
        if axes not in TIFF_LAYOUTS:
            raise ValueError(f"{s.where}: unsupported TIFF layout {axes} {shape} (expected grey "
                             "pages, or RGB with equal channels)")
        dtype = check_dtype(dtype, s.where)
        out.append((s, (tuple(shape[1:] if axes == "SYX" else shape[:2]), dtype)))
    return out


def _read_png(s: Slice) -> np.ndarray:
    try:
        with Image.open(s.file) as im:
            im.load()
            mode, pixels = im.mode, np.asarray(im)
    except READ_ERRORS as exc:
        raise ValueError(f"{s.file}: unreadable image ({exc})") from None
    pixels = pixels.astype(PNG_MODES[mode], copy=False)
    return grey_channel(pixels, "YXS" if pixels.ndim == 3 else "YX", s.where)


def _read_tiff_page(tif: tifffile.TiffFile, s: Slice) -> np.ndarray:
    try:
        page = tif.pages[s.page]
        return grey_channel(page.asarray(), page.axes, s.where)
    except READ_ERRORS as exc:
        raise ValueError(f"{s.where}: unreadable or truncated TIFF data ({exc})") from None


class SliceWriter:
    """One method's output for one input, under `folder`: `<name>_<method>.<png|tif>`, or a
    folder `<name>_<method>/` of slices for a folder input. Add slices in input order."""

    def __init__(self, source: ImageInput, folder: Path, method: str, record: dict,
                 scale: int):
        self.source, self.record = source, json.dumps(record, sort_keys=True)
        stem = f"{source.name}_{method}"
        self._stack: tifffile.TiffWriter | None = None
        self._count = 0
        if source.kind == "folder":
            self.path = folder / stem
            self.path.mkdir()
        elif source.kind == "stack":
            self.path = folder / f"{stem}.tif"
            size = len(source) * source.shape[0] * source.shape[1] * scale**2
            self._stack = tifffile.TiffWriter(
                self.path, bigtiff=size * source.dtype.itemsize > BIGTIFF_ABOVE)
        else:
            self.path = folder / f"{stem}{self._suffix(source.slices[0])}"

    def _suffix(self, s: Slice) -> str:
        return ".png" if s.fmt == "png" and self.source.dtype == np.uint8 else ".tif"

    def add(self, image: np.ndarray) -> None:
        s = self.source.slices[self._count]
        if self._stack is not None:
            self._stack.write(image, photometric="minisblack", contiguous=True, metadata=None,
                              description=self.record if self._count == 0 else None)
        else:
            path = (self.path / f"{s.file.stem}{self._suffix(s)}"
                    if self.source.kind == "folder" else self.path)
            self._write_one(path, image)
        self._count += 1

    def _write_one(self, path: Path, image: np.ndarray) -> None:
        if path.suffix == ".png":
            info = PngImagePlugin.PngInfo()
            info.add_text("rocksr", self.record)
            Image.fromarray(image).save(path, pnginfo=info)
        else:
            tifffile.imwrite(path, image, photometric="minisblack", metadata=None,
                             description=self.record)

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
