"""The size of a voxel (a pixel, in 2D) and its unit: read from an input TIFF's metadata,
written into every output's.

Read, the first found wins: ImageJ metadata (`unit`, the z `spacing`; x and y from the
resolution tags, in pixels per unit), OME-XML (PhysicalSizeX/Y/Z and their units), TIFF
resolution tags in inches, centimetres, millimetres or micrometres (given in um). PNG
stores none that a micro-CT scan would use: unknown (None).

A 2D model upsamples in-plane only: an output's x and y sizes are the input's divided by
the scale, z (the slice spacing) is unchanged; a 3D model upsamples isotropically: x, y and
z are divided, a z spacing not known staying unknown (`Voxel.upsampled`).
"""

from __future__ import annotations

import dataclasses
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import tifffile

# Unit names as ImageJ and OME write them, to one spelling ("um" is ImageJ's for microns).
UNITS = {"micron": "um", "microns": "um", "um": "um", "µm": "um", "μm": "um", "\\u00B5m": "um",
         "nm": "nm", "mm": "mm", "cm": "cm", "m": "m"}
OME_UNITS = {"um": "µm"}  # OME's symbols, where they differ
# TIFF ResolutionUnit (2 inch, 3 centimetre; 4 and 5 as tifffile writes them) in um.
RESOLUTION_UNIT_UM = {2: 25400.0, 3: 10000.0, 4: 1000.0, 5: 1.0}


@dataclass(frozen=True)
class Voxel:
    x: float
    y: float
    z: float | None  # slice spacing; None where the file does not say
    unit: str
    source: str  # where it was read, for the record

    def upsampled(self, scale: int, z: bool = False) -> Voxel:
        """The voxel of an output upsampled by `scale` in-plane (x and y), with `z` along the
        slices too (a 3D model); a z spacing not known stays unknown."""
        if not z:
            how, new_z = "x and y divided by {}, z unchanged", self.z
        elif self.z:
            how, new_z = "x, y and z divided by {}", self.z / scale
        else:
            how, new_z = "x and y divided by {}, z unknown", None
        return dataclasses.replace(self, x=self.x / scale, y=self.y / scale, z=new_z,
                                   source=f"{self.source}; {how.format(scale)}")

    def record(self) -> dict:
        return dataclasses.asdict(self)

    def imagej(self) -> dict:
        """tifffile.TiffWriter.write arguments of an ImageJ file (imagej=True)."""
        metadata = {"unit": self.unit} | ({"spacing": self.z} if self.z else {})
        return {"resolution": (1 / self.x, 1 / self.y), "metadata": metadata}

    def ome(self) -> dict:
        """The OME metadata keys (tifffile.TiffWriter.write(metadata=...), ome=True)."""
        unit = OME_UNITS.get(self.unit, self.unit)
        sizes = {"X": self.x, "Y": self.y} | ({"Z": self.z} if self.z else {})
        return {k: v for axis, size in sizes.items()
                for k, v in ((f"PhysicalSize{axis}", size), (f"PhysicalSize{axis}Unit", unit))}


def read_voxel(tif: tifffile.TiffFile) -> Voxel | None:
    """The voxel size stated by an open TIFF's metadata, or None."""
    page = tif.pages.first
    imagej = tif.imagej_metadata
    if imagej and imagej.get("unit") not in (None, "", "pixel", "pixels"):
        x, y = _sizes(page.resolution, 1.0)
        if x:
            return Voxel(x, y, _positive(imagej.get("spacing")), _unit(imagej["unit"]),
                         "ImageJ metadata")
    if tif.is_ome:
        voxel = _ome_voxel(tif.ome_metadata)
        if voxel:
            return voxel
    per_um = RESOLUTION_UNIT_UM.get(int(page.resolutionunit))
    if per_um:
        x, y = _sizes(page.resolution, per_um)
        if x:
            return Voxel(x, y, None, "um", "TIFF resolution tags")
    return None


def _positive(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _sizes(resolution: tuple[float, float], per_unit: float) -> tuple[float | None, ...]:
    """Pixel sizes from pixels per unit; (None, None) when unset (0) or nonsense."""
    x, y = (_positive(r) for r in resolution)
    return (per_unit / x, per_unit / y) if x and y else (None, None)


def _unit(name: str) -> str:
    return UNITS.get(name.strip(), name.strip())


def _ome_voxel(xml: str | None) -> Voxel | None:
    try:
        root = ET.fromstring(xml or "")
    except ET.ParseError:
        return None
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None
    size = {a: _positive(pixels.get(f"PhysicalSize{a}")) for a in "XYZ"}
    units = {_unit(pixels.get(f"PhysicalSize{a}Unit", "µm")) for a in "XYZ" if size[a]}
    if not (size["X"] and size["Y"]) or len(units) != 1:
        return None
    return Voxel(size["X"], size["Y"], size["Z"], units.pop(), "OME-XML")
