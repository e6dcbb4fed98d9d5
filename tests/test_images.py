"""Reading and writing the user's own images: every format, the voxel size, one clear error
per kind of bad input, checked from the headers before anything is allocated."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from rocksr.imaging import images
from rocksr.imaging.images import open_input, read_record, write_output
from rocksr.imaging.voxel import Voxel, read_voxel

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
    assert (source.kind, source.shape, source.dtype) == ("image", (12, 10), data.dtype)
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


# --- issue 22, finding 5: checked from the headers, before anything is allocated ----------

def test_stack_with_later_page_headers_cut_off_is_refused_naming_the_file_and_page(tmp_path):
    """Not read as a shorter stack (tifffile steps over the cut-off headers and logs)."""
    path = write_tif(tmp_path / "vol.tif", np.repeat(U16, 2, axis=0))  # 6 pages
    with tifffile.TiffFile(path) as tif:
        third = tif.pages[2].offset  # tifffile writes the pixel data first, then the headers
    data = path.read_bytes()
    path.write_bytes(data[:third])
    with pytest.raises(ValueError, match=r"vol.tif \(page 3\): damaged or truncated TIFF"):
        open_input(path)


def test_imagej_stack_with_fewer_pages_than_it_declares_is_refused(tmp_path):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, U16, imagej=True)
    data = bytearray(path.read_bytes())
    data[data.index(b"images=3")+7] = ord("5")  # the description now promises 5 images
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="ij.tif: its ImageJ metadata declares 5 images, but it "
                                         "holds 3 page headers"):
        open_input(path)


def test_page_data_beyond_the_end_of_the_file_is_refused(tmp_path):
    path = huge_tiff(tmp_path / "cut.tif", 10)  # 200 bytes of pixels declared, none there
    with pytest.raises(ValueError, match="cut.tif: its pixel data lies beyond the end of the "
                                         "file"):
        open_input(path)


def huge_tiff(path, side):
    """A TIFF header declaring side x side uint16 pixels, with next to no data."""
    tags = [(256, 4, side), (257, 4, side), (258, 3, 16), (259, 3, 1), (262, 3, 1),
            (273, 4, 8), (277, 3, 1), (278, 4, side), (279, 4, 2 * side * side % 2**32)]
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3
                                              else struct.pack("<I", value))
        for tag, kind, value in tags) + struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 16) + b"\x00" * 8 + ifd)
    return path


def huge_png(path, side):
    """A PNG declaring side x side 8-bit grey pixels: the "bomb" of a few hundred bytes."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    row = b"\x00" * (side + 1)
    body = zlib.compressobj()
    stream = body.compress(row * 64) + body.flush()  # the first rows only: enough to open
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side,
                                                                        8, 0, 0, 0, 0))
                     + chunk(b"IDAT", stream) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("make", [huge_tiff, huge_png], ids=["tiff", "png"])
def test_a_slice_over_the_pixel_limit_is_refused_from_its_header(tmp_path, make):
    path = make(tmp_path / f"big.{'tif' if make is huge_tiff else 'png'}", 100000)
    with pytest.raises(ValueError, match=r"big\.(tif|png): 100000x100000 pixels, more than "
                                         r"the limit of 268435456 per slice"):
        open_input(path)
    # Within the limit the headers pass that check: the PNG's (over Pillow's own "bomb" limit
    # of 179 Mpixels, which would stop it with a traceback), while the TIFF's pixel data,
    # missing here, is then found to lie past the end of the file.
    within = make(tmp_path / f"ok.{'tif' if make is huge_tiff else 'png'}", 14000)
    if make is huge_png:
        assert open_input(within).shape == (14000, 14000)
    else:
        with pytest.raises(ValueError, match="ok.tif: its pixel data lies beyond the end"):
            open_input(within)
    with pytest.raises(ValueError, match="more than the limit of 100 per slice"):
        open_input(write_tif(tmp_path / "a.tif", U16[0]), max_pixels=100)


# --- the voxel size, read and written ------------------------------------------------------

@pytest.mark.parametrize("how,expected", [
    ("imagej", Voxel(3.2, 3.2, 6.4, "um", "ImageJ metadata")),
    ("ome", Voxel(3.2, 3.2, 6.4, "um", "OME-XML")),
    ("inch", Voxel(25400 / 300, 25400 / 300, None, "um", "TIFF resolution tags")),
    ("none", None),
])
def test_voxel_size_is_read_from_the_metadata(tmp_path, how, expected):
    path = tmp_path / "v.tif"
    if how == "imagej":
        tifffile.imwrite(path, U16, imagej=True, resolution=(1 / 3.2, 1 / 3.2),
                         metadata={"spacing": 6.4, "unit": "micron"})
    elif how == "ome":
        tifffile.imwrite(path, U16, ome=True, metadata={
            "axes": "ZYX", "PhysicalSizeX": 3.2, "PhysicalSizeY": 3.2, "PhysicalSizeZ": 6.4})
    elif how == "inch":
        write_tif(path, U16, resolution=(300, 300), resolutionunit="INCH")
    else:
        write_tif(path, U16)
    assert open_input(path).voxel == expected


@pytest.mark.parametrize("big", [False, True], ids=["imagej", "ome-bigtiff"])
def test_stack_output_keeps_dtype_and_voxel_size_for_imagej(tmp_path, monkeypatch, big):
    """An ImageJ TIFF, or above 4 GB (here: a threshold lowered for the test) an OME
    BigTIFF, written slice by slice; both carry the voxel size and the record."""
    if big:
        monkeypatch.setattr(images, "BIGTIFF_ABOVE", 100)
    source = open_input(write_tif(tmp_path / "in.tif", U16))
    out = tmp_path / "out.tif"
    voxel = Voxel(3.2, 3.2, 3.2, "um", "test").upsampled(4)
    served = []

    def slices():
        for image in source:
            served.append(len(served))
            yield np.kron(image, np.ones((4, 4), np.uint16))

    write_output(out, source, slices(), {"input": "in.tif", "method": "m"}, voxel)
    with tifffile.TiffFile(out) as tif:
        assert (tif.is_bigtiff, tif.is_ome, tif.is_imagej) == (big, big, not big)
        assert tif.series[0].shape == (3, 48, 40) and tif.series[0].dtype == np.uint16
        np.testing.assert_array_equal(tif.asarray()[:, ::4, ::4], U16)
        got = read_voxel(tif)
    assert (got.x, got.y, got.z, got.unit) == (0.8, 0.8, 3.2, "um")
    assert read_record(out) == {"input": "in.tif", "method": "m"}
    assert served == [0, 1, 2]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_stays_png_of_its_bit_depth_with_its_record(tmp_path, dtype):
    image = U16[0] if dtype == np.uint16 else U8[0]
    source = open_input(write_png(tmp_path / "a.png", image))
    write_output(tmp_path / "o.png", source, [image], {"input": "a.png"}, None)
    back = open_input(tmp_path / "o.png")
    assert back.dtype == dtype
    np.testing.assert_array_equal(next(iter(back)), image)
    assert read_record(tmp_path / "o.png") == {"input": "a.png"}
    assert read_record(write_png(tmp_path / "foreign.png", image)) is None
    assert json.loads(Image.open(tmp_path / "o.png").text["rocksr"]) == {"input": "a.png"}
