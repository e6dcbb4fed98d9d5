"""Apply trained generators to a folder of the user's own LR images.

Each readable PNG/TIFF `<stem>.<ext>` gives `<stem>_<model>.png` per model and
`<stem>_bicubic.png` (rocksr.resize, the evaluation's baseline), all 8-bit grey. Whole
images go through the network at once: a 500x500 output at 64 filters needs well under
1 GB of activations. The output folder appears only once complete.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from rocksr.evaluate import postprocess, upscalers
from rocksr.models import Generator

log = logging.getLogger(__name__)

SUFFIXES = {".png", ".tif", ".tiff"}


def read_grey(path: Path) -> np.ndarray:
    """(H, W) uint8 from an 8-bit grey image, or a colour one whose 3 channels are equal."""
    try:
        with Image.open(path) as im:
            im.load()
            mode, pixels = im.mode, np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError) as exc:
        raise ValueError(f"{path}: unreadable image ({exc})") from None
    if mode == "L":
        return pixels
    if mode in ("RGB", "RGBA"):
        grey = pixels[..., 0]
        if not (np.array_equal(grey, pixels[..., 1]) and np.array_equal(grey, pixels[..., 2])):
            raise ValueError(f"{path}: colour image, its channels differ (expected grey)")
        return np.ascontiguousarray(grey)
    raise ValueError(f"{path}: unsupported image mode {mode!r} (expected 8-bit grey or RGB)")


def list_images(input_dir: Path) -> list[Path]:
    if not input_dir.is_dir():
        raise FileNotFoundError(f"{input_dir}: input folder not found")
    images = sorted(p for p in input_dir.iterdir() if p.suffix.lower() in SUFFIXES)
    if not images:
        raise ValueError(f"{input_dir}: no PNG or TIFF images")
    stems = [p.stem for p in images]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise ValueError(f"{input_dir}: several images share the name(s) {', '.join(duplicates)}")
    return images


@torch.inference_mode()
def predict_folder(input_dir: str | Path, generators: dict[str, Generator], out_dir: str | Path,
                   device: torch.device) -> list[Path]:
    """Write SR and bicubic PNGs for every image of `input_dir`; return the files written."""
    scales = {g.scale for g in generators.values()}
    if len(scales) != 1:
        raise ValueError(f"the models upscale by different factors: {sorted(scales)}")
    methods = upscalers({n: g.to(device).eval() for n, g in generators.items()}, scales.pop())
    images = list_images(Path(input_dir))
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for path in images:
            lr = torch.from_numpy(read_grey(path))[None, None].to(device)
            for name, upscale in methods.items():
                sr = postprocess(upscale(lr).float(), clamp=True, quantize=True)
                pixels = (sr[0, 0] * 255).round().to(torch.uint8).cpu().numpy()
                Image.fromarray(pixels).save(tmp / f"{path.stem}_{name}.png")
            log.info("%s: %dx%d -> %dx%d", path.name, *lr.shape[-2:], *sr.shape[-2:])
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return sorted(out_dir.iterdir())
