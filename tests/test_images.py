"""Reading the user's own images: every format, and one clear error per kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from rocksr.imaging.images import open_input

RNG = np.random.default_rng(0)
U8 = RNG.integers(0, 256, (3, 12, 10), dtype=np.uint8)
U16 = RNG.integers(0, 65536, (3, 12, 10), dtype=np.uint16)


def write_png(path, image):
    Image.fromarray(image).save(path)
    return path


def write_tif(path, image, **kw):
    tifffile.imwrite(path, image, photometric=kw.pop("photometric", "minisblack"), **kw)
    return path


def read_all(path):
    source = open_input(path)
    return source, np.stack(list(source))


@pytest.mark.parametrize("data", [U8, U16], ids=["8bit", "16bit"])
@pytest.mark.parametrize("fmt", ["png", "tif"])
def test_single_image(tmp_path, data, fmt):
    path = (write_png if fmt == "png" else write_tif)(tmp_path / f"a.{fmt}", data[0])
    source, pixels = read_all(path)
    assert (source.kind, source.name, source.shape, source.dtype) == ("image", "a", (12, 10),
                                                                      data.dtype)
    np.testing.assert_array_equal(pixels, data[:1])


@pytest.mark.parametrize("data", [U8, U16], ids=["8bit", "16bit"])
def test_multipage_stack(tmp_path, data):
    source, pixels = read_all(write_tif(tmp_path / "vol.tif", data))
    assert (source.kind, len(source), source.dtype) == ("stack", 3, data.dtype)
    np.testing.assert_array_equal(pixels, data)


@pytest.mark.parametrize("data,fmt", [(U8, "png"), (U16, "tif"), (U16, "png")],
                         ids=["8bit-png", "16bit-tif", "16bit-png"])
def test_folder_of_slices_in_natural_order(tmp_path, data, fmt):
    for i, name in enumerate(["s2", "s10", "s1"]):  # natural order: s1, s2, s10
        (write_png if fmt == "png" else write_tif)(tmp_path / f"{name}.{fmt}", data[i])
    (tmp_path / "notes.txt").write_text("ignored")
    source, pixels = read_all(tmp_path)
    assert source.kind == "folder" and [s.file.stem for s in source.slices] == ["s1", "s2", "s10"]
    np.testing.assert_array_equal(pixels, data[[2, 0, 1]])


@pytest.mark.parametrize("fmt", ["png", "tif"])
def test_rgb_with_equal_channels_is_grey(tmp_path, fmt):
    rgb = np.repeat(U8[0][..., None], 3, axis=2)
    path = tmp_path / f"rgb.{fmt}"
    if fmt == "png":
        write_png(path, rgb)
    else:
        write_tif(path, rgb, photometric="rgb")
    np.testing.assert_array_equal(read_all(path)[1][0], U8[0])


def bad_inputs(tmp_path):
    """(input path, message naming what is wrong) per kind of bad input."""
    colour = np.repeat(U8[0][..., None], 3, axis=2)
    colour[0, 0, 1] ^= 1
    cases = {
        "float": (write_tif(tmp_path / "float.tif", U16[0].astype(np.float32)),
                  "float.tif: unsupported pixel type float32"),
        "int16": (write_tif(tmp_path / "signed.tif", U16[0].astype(np.int16)),
                  "signed.tif: unsupported pixel type int16"),
        "mode": (write_png(tmp_path / "la.png", np.stack([U8[0]] * 2, -1)),
                 "la.png: unsupported image mode 'LA'"),
        "colour_png": (write_png(tmp_path / "c.png", colour),
                       "c.png: colour image, its channels differ"),
        "colour_tif": (write_tif(tmp_path / "c.tif", colour, photometric="rgb"),
                       "c.tif: colour image, its channels differ"),
        "not_png": (tmp_path / "junk.png", "junk.png: unreadable image"),
        "missing": (tmp_path / "absent.tif", "absent.tif: no such file or folder"),
        "empty": (tmp_path / "empty", "empty: no PNG or TIFF images"),
    }
    (tmp_path / "junk.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "empty").mkdir()
    data = write_tif(tmp_path / "full.tif", U16).read_bytes()
    for name, cut in (("header", 200), ("data", len(data) - 100)):
        path = tmp_path / f"trunc_{name}.tif"
        path.write_bytes(data[:cut])
        cases[f"truncated_{name}"] = (path, f"trunc_{name}.tif")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    write_tif(mixed / "1.tif", U16[0])
    write_tif(mixed / "2.tif", U16[1, :, :8])
    cases["mixed_sizes"] = (mixed, "2.tif: 12x8 pixels, but")
    types = tmp_path / "types"
    types.mkdir()
    write_tif(types / "1.tif", U16[0])
    write_tif(types / "2.tif", U8[1])
    cases["mixed_types"] = (types, "2.tif: uint8 pixels, but")
    with tifffile.TiffWriter(tmp_path / "ragged.tif") as tif:
        tif.write(U16[0], photometric="minisblack")
        tif.write(U16[1, :10], photometric="minisblack")
    cases["ragged_stack"] = (tmp_path / "ragged.tif", "ragged.tif (page 2): 10x10 pixels, but")
    nested = tmp_path / "nested"
    nested.mkdir()
    write_tif(nested / "1.tif", U16[0])
    write_tif(nested / "2.tif", U16)
    cases["stack_in_folder"] = (nested, "2.tif: a multi-page stack inside a folder")
    return cases


CASES = ["float", "int16", "mode", "colour_png", "colour_tif", "not_png", "missing", "empty",
         "truncated_header", "truncated_data", "mixed_sizes", "mixed_types", "ragged_stack",
         "stack_in_folder"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_clear_error_naming_the_file(tmp_path, case):
    path, message = bad_inputs(tmp_path)[case]
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        list(open_input(path))
    assert message in str(info.value)
