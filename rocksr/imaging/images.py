"""The user's own micro-CT images: reading and writing PNG and TIFF, 8- and 16-bit grey.

An input is one image file, a multi-page TIFF stack, or a folder of slice files (PNG/TIFF,
sorted by name, numbers compared as numbers). TIFFs are read with tifffile one page at a
time, PNGs with Pillow; RGB(A) is accepted when its colour channels are equal.

Every file's headers are checked before any pixel is read (`open_input`): the pixel type,
the layout, one size and type for all slices, each slice's size against a pixel limit
(`max_pixels`, predict.max_slice_pixels: a header that declares more stops the run before
anything is allocated, a PNG "bomb" too), and in a TIFF every page's header and pixel data
inside the file (a stack cut short stops with the file and page named, rather than being
read as a shorter stack). Pixel data that still cannot be read stops with the file and
page named. The voxel size is read with the headers (rocksr.imaging.voxel).

Outputs (`write_output`) keep the input's dtype and shape of things: a stack stays a
multi-page TIFF, a folder stays a folder of files named like the input's slices, a PNG
stays a PNG (8 or 16 bit), a TIFF a TIFF; a volume upsampled along z (a 3D model) has
`per_slice` output slices per input slice. TIFFs are written as ImageJ files (ImageJ and
Fiji read their voxel size and unit), or, above 4 GB, which ImageJ's format cannot hold, as
OME BigTIFF; slices are written one at a time as they come. Each output carries a record
(the input, the intensity mapping, the method: ImageJ `Info`, OME `Description`, PNG text
chunk `rocksr`; `read_record`).
"""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from rocksr.imaging.grey import grey_channel
from rocksr.imaging.intensity import check_dtype
from rocksr.imaging.voxel import Voxel, read_voxel
from rocksr.settings import MAX_SLICE_PIXELS

SUFFIXES = {".png": "png", ".tif": "tiff", ".tiff": "tiff"}
PNG_MODES = {"L": np.uint8, "RGB": np.uint8, "RGBA": np.uint8,
             "I;16": np.uint16, "I;16B": np.uint16, "I;16L": np.uint16}
TIFF_LAYOUTS = ("YX", "YXS", "SYX")  # grey, interleaved and planar samples
READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, UnidentifiedImageError, KeyError,
               IndexError)
# Bytes of pixel data above which a TIFF is written as OME BigTIFF: classic TIFF offsets are
# 32-bit (tifffile's limit, which leaves 32 MB for the headers).
BIGTIFF_ABOVE = 2**32 - 2**25
PNG_KEY = "rocksr"  # the PNG text chunk of an output's record


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
    """A checked input: its slices in order, one (H, W) shape and one dtype for all, and the
    voxel size its (first) file states."""

    path: Path
    kind: str  # image | stack | folder
    slices: list[Slice]
    shape: tuple[int, int]
    dtype: np.dtype
    voxel: Voxel | None = None

    def __len__(self) -> int:
        return len(self.slices)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.read()

    def read(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Slices start .. stop - 1 (all by default), each as an (H, W) array of `dtype`, read
        as they are consumed; a file is opened once for all its pages."""
        for file, group in itertools.groupby(self.slices[start:stop], key=lambda s: s.file):
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


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES and path.is_file()


def image_files_in(folder: Path) -> list[Path]:
    """The PNG and TIFF files directly in `folder`, in natural order; hidden files (a name
    starting with '.', such as macOS's `._` companions) are not images of the scan."""
    return sorted((p for p in folder.iterdir() if is_image_file(p) and not p.name.startswith(".")),
                  key=lambda p: natural(p.name))


def open_input(path: str | Path, max_pixels: int = MAX_SLICE_PIXELS) -> ImageInput:
    """Check every header of an image file, TIFF stack or folder of slices."""
    path = Path(path)
    if path.is_dir():
        files = image_files_in(path)
        if not files:
            raise ValueError(f"{path}: no PNG or TIFF images in this folder")
        kind = "folder"
    elif path.is_file():
        if path.suffix.lower() not in SUFFIXES:
            raise ValueError(f"{path}: not a PNG or TIFF file (by its suffix)")
        files = [path]
        kind = None
    else:
        raise FileNotFoundError(f"{path}: no such file or folder")
    slices, shape, dtype, voxel = [], None, None, None
    for file in files:
        pages, file_voxel = _probe(file, max_pixels)
        voxel = voxel or file_voxel
        for s, (s_shape, s_dtype) in pages:
            if shape is None:
                shape, dtype = s_shape, s_dtype
            elif s_shape != shape:
                raise ValueError(f"{s.where}: {s_shape[0]}x{s_shape[1]} pixels, but "
                                 f"{slices[0].where} has {shape[0]}x{shape[1]} (all slices must "
                                 "share one size; to predict images of different sizes, "
                                 "give them as files or a glob, not as a folder)")
            elif s_dtype != dtype:
                raise ValueError(f"{s.where}: {s_dtype.name} pixels, but {slices[0].where} has "
                                 f"{dtype.name} (all slices must share one type)")
            slices.append(s)
    if kind == "folder" and len(slices) != len(files):
        stack = next(s for s in slices if s.page > 0)
        raise ValueError(f"{stack.file}: a multi-page stack inside a folder of slices "
                         "(give the stack itself as the input)")
    kind = kind or ("stack" if len(slices) > 1 else "image")
    return ImageInput(path, kind, slices, shape, dtype, voxel)


def page_count(file: Path) -> int:
    """The pages of a TIFF (1 for a PNG), from its headers; 0 when they cannot be read
    (open_input then says why)."""
    if SUFFIXES[file.suffix.lower()] == "png":
        return 1
    try:
        with _tiff_damage(), tifffile.TiffFile(file) as tif:
            return len(tif.pages)
    except READ_ERRORS:
        return 0


def natural(name: str) -> list:
    """Sort key: numbers compared as numbers (s2 before s10)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _check_size(where: str, shape: tuple[int, int], max_pixels: int) -> None:
    if shape[0] * shape[1] > max_pixels:
        raise ValueError(f"{where}: {shape[0]}x{shape[1]} pixels, more than the limit of "
                         f"{max_pixels} per slice (predict.max_slice_pixels)")


@contextlib.contextmanager
def _png(file: Path) -> Iterator[Image.Image]:
    """An open PNG. Pillow's own decompression-bomb limit (89 Mpixels) is lifted: the caller
    checks the header's size against its pixel limit before any pixel is decoded."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(file) as im:
            yield im
    finally:
        Image.MAX_IMAGE_PIXELS = limit


@contextlib.contextmanager
def _tiff_damage() -> Iterator[list[str]]:
    """The errors tifffile logs (and steps over) while parsing a file: a page header past
    the end of the file, a corrupt tag list. Collected, not logged: the caller raises."""
    found: list[str] = []

    def collect(record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            found.append(record.getMessage())
            return False
        return True

    logger = logging.getLogger("tifffile")
    logger.addFilter(collect)
    try:
        yield found
    finally:
        logger.removeFilter(collect)


def _probe(file: Path, max_pixels: int
           ) -> tuple[list[tuple[Slice, tuple[tuple[int, int], np.dtype]]], Voxel | None]:
    """(slice, (shape, dtype)) of each page, and the voxel size, from the headers only."""
    fmt = SUFFIXES[file.suffix.lower()]
    if fmt == "png":
        try:
            with _png(file) as im:
                mode, (w, h) = im.mode, im.size
        except READ_ERRORS as exc:
            raise ValueError(f"{file}: unreadable image ({exc})") from None
        if mode not in PNG_MODES:
            raise ValueError(f"{file}: unsupported image mode {mode!r} (expected 8- or 16-bit "
                             "grey, or RGB with equal channels)")
        _check_size(str(file), (h, w), max_pixels)
        return [(Slice(file, 0, fmt), ((h, w), np.dtype(PNG_MODES[mode])))], None
    try:
        with _tiff_damage() as damage, tifffile.TiffFile(file) as tif:
            pages = list(tif.pages)
            declared = (tif.imagej_metadata or {}).get("images", len(pages))
            voxel = read_voxel(tif)
    except READ_ERRORS as exc:
        raise ValueError(f"{file}: unreadable TIFF ({exc})") from None
    if damage:
        raise ValueError(f"{file} (page {len(pages) + 1}): damaged or truncated TIFF, its "
                         f"page header cannot be read ({damage[0]})")
    if declared != len(pages):
        raise ValueError(f"{file}: its ImageJ metadata declares {declared} images, but it "
                         f"holds {len(pages)} page headers (a truncated file, or an ImageJ "
                         "stack over 4 GB, which keeps one header: save it as BigTIFF)")
    if not pages:
        raise ValueError(f"{file}: a TIFF without images")
    return [_check_page(file, i, page, max_pixels) for i, page in enumerate(pages)], voxel


def _check_page(file: Path, index: int, page, max_pixels: int
                ) -> tuple[Slice, tuple[tuple[int, int], np.dtype]]:
    s = Slice(file, index, "tiff")
    axes, shape = page.axes, page.shape
    if axes not in TIFF_LAYOUTS:
        raise ValueError(f"{s.where}: unsupported TIFF layout {axes} {shape} (expected grey "
                         "pages, or RGB with equal channels)")
    dtype = check_dtype(page.dtype, s.where)
    size = tuple(shape[1:] if axes == "SYX" else shape[:2])
    _check_size(s.where, size, max_pixels)
    length = file.stat().st_size
    extents = list(zip(page.dataoffsets, page.databytecounts))
    if any(offset + count > length for offset, count in extents):
        raise ValueError(f"{s.where}: its pixel data lies beyond the end of the file "
                         f"({length} bytes): a truncated TIFF")
    if page.compression == 1 and sum(c for _, c in extents) < page.size * dtype.itemsize:
        raise ValueError(f"{s.where}: its pixel data is shorter than its {size[0]}x{size[1]} "
                         "pixels: a damaged TIFF")
    return s, (size, dtype)


def _read_png(s: Slice) -> np.ndarray:
    try:
        with _png(s.file) as im:
            im.load()
            mode, pixels = im.mode, np.asarray(im)
    except READ_ERRORS as exc:
        raise ValueError(f"{s.file}: unreadable image ({exc})") from None
    pixels = pixels.astype(PNG_MODES[mode], copy=False)
    return grey_channel(pixels, "YXS" if pixels.ndim == 3 else "YX", s.where)


def _read_tiff_page(tif: tifffile.TiffFile, s: Slice) -> np.ndarray:
    try:
        with _tiff_damage() as damage:
            page = tif.pages[s.page]
            pixels = page.asarray()
        if damage:
            raise ValueError(damage[0])
        return grey_channel(pixels, page.axes, s.where)
    except READ_ERRORS as exc:
        raise ValueError(f"{s.where}: unreadable or truncated TIFF data ({exc})") from None


# --- outputs -----------------------------------------------------------------------------

def write_output(path: Path, source: ImageInput, slices: Iterable[np.ndarray], record: dict,
                 voxel: Voxel | None, per_slice: int = 1) -> None:
    """Write one method's output of `source` at `path` (any name: a temporary one too): a
    file in the input's format, or for a folder input a folder of files named like its
    slices. `slices` are the output slices in input order, consumed one at a time:
    `per_slice` of them per input slice (a 3D model's scale); when more than one, a folder's
    files are named like its slices with `_0`, `_1`, ... before the suffix."""
    text = json.dumps(record, sort_keys=True)
    slices = iter(slices)
    if source.kind == "folder":
        path.mkdir(exist_ok=True)
        names = [s.file.name if per_slice == 1 else f"{s.file.stem}_{k}{s.file.suffix}"
                 for s in source.slices for k in range(per_slice)]
        fmts = [s.fmt for s in source.slices for _ in range(per_slice)]
        for name, fmt, image in zip(names, fmts, slices):
            _write_image(path / name, fmt, image, text, voxel)
    elif source.kind == "stack":
        first = next(slices)
        shape = (per_slice * len(source), *first.shape)
        _write_tiff(path, itertools.chain([first], slices), shape, first.dtype, text, voxel)
    else:
        _write_image(path, source.slices[0].fmt, next(slices), text, voxel)


def _write_image(path: Path, fmt: str, image: np.ndarray, text: str, voxel: Voxel | None
                 ) -> None:
    if fmt == "png":
        info = PngImagePlugin.PngInfo()
        info.add_text(PNG_KEY, text)
        Image.fromarray(image).save(path, format="PNG", pnginfo=info)
    else:
        _write_tiff(path, image, image.shape, image.dtype, text, voxel)


def _write_tiff(path: Path, data: np.ndarray | Iterator[np.ndarray], shape: tuple[int, ...],
                dtype: np.dtype, text: str, voxel: Voxel | None) -> None:
    """An ImageJ TIFF, or an OME BigTIFF above BIGTIFF_ABOVE bytes; `data` an array or an
    iterator of pages, written as they come."""
    axes = "ZYX"[-len(shape):]
    big = int(np.prod(shape)) * dtype.itemsize > BIGTIFF_ABOVE
    if big:
        kwargs = {"metadata": {"axes": axes, "Description": text,
                               **(voxel.ome() if voxel else {})}}
    else:
        kwargs = voxel.imagej() if voxel else {"metadata": {}}
        kwargs["metadata"] = {"axes": axes, **kwargs["metadata"], "Info": text}
    with tifffile.TiffWriter(path, bigtiff=big, ome=big, imagej=not big) as tif:
        tif.write(data, shape=shape, dtype=dtype, photometric="minisblack", **kwargs)


def read_record(path: Path) -> dict | None:
    """The record an output carries (a folder output: its first file's), or None when
    there is none (not an output of this tool, or unreadable)."""
    if path.is_dir():
        files = image_files_in(path)
        return read_record(files[0]) if files else None
    try:
        if SUFFIXES.get(path.suffix.lower()) == "png":
            with _png(path) as im:
                text = im.text.get(PNG_KEY)
        else:
            with tifffile.TiffFile(path) as tif:
                text = ((tif.imagej_metadata or {}).get("Info")
                        or (tif.is_ome and _ome_description(tif.ome_metadata)))
        return json.loads(text) if text else None
    except (*READ_ERRORS, json.JSONDecodeError):
        return None


def _ome_description(xml: str) -> str | None:
    match = re.search(r"<Description>(.*?)</Description>", xml, re.S)
    return html.unescape(match[1]) if match else None
