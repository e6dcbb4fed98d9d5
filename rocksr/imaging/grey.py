"""Grey micro-CT slices from decoded image pixels: the one check shared by the dataset's PNGs
(rocksr.data.archive) and the user's own images (rocksr.imaging.images). numpy only, so that the
data steps' environment needs nothing more."""

from __future__ import annotations

import numpy as np


def grey_channel(pixels: np.ndarray, axes: str, where: str,
                 error: type[ValueError] = ValueError) -> np.ndarray:
    """(H, W) from grey pixels, or from colour ones whose colour channels are equal (alpha
    ignored); `axes` as tifffile names them (YX, YXS, SYX). Else `error` naming `where`."""
    if axes == "YX":
        return pixels
    if axes == "SYX":
        pixels = np.moveaxis(pixels, 0, -1)
    colour = pixels[..., :3] if pixels.shape[-1] >= 3 else pixels[..., :1]  # alpha ignored
    grey = colour[..., 0]
    if not all(np.array_equal(grey, colour[..., c]) for c in range(1, colour.shape[-1])):
        raise error(f"{where}: colour image, its channels differ (expected grey: one channel "
                    "or identical ones)")
    return np.ascontiguousarray(grey)
