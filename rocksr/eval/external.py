"""External HR test sets (`evaluation.external`): your own HR images, scored like the
DeepRock-SR splits, e.g. the Bentheimer sandstone and Ketton carbonate of the paper's Figure 3.

Each set (an image, a TIFF stack or a folder of slices; rocksr.imaging.images) becomes one pack of
the evaluation, under rock type = its name and split = test, so the same per-image scoring
(rocksr.eval.evaluate.score_pack) gives its rows. Per slice:
- HR: mapped to 8 bits through the intensity window (rocksr.imaging.intensity; 8-bit input as is),
  as DeepRock-SR's images are 8-bit, and cropped at the bottom/right to a multiple of the
  scale.
- LR: degraded with the run's scale and degradation by the synthetic archive's recipe
  (rocksr.imaging.degrade.downsample). `default` is PIL's antialiased bicubic, the dataset's
  kernel (MATLAB's imresize differs only at the border). `unknown` is a gaussian blur of
  sigma U(0.2, 0.5) x scale, gaussian noise of sigma U(0, 8) grey levels and bicubic, drawn
  per slice from a seed fixed by the set's name: NOT the dataset's own randomised recipe,
  which is not published, so `unknown` scores on external sets are not comparable one to one
  with the DeepRock-SR rows.
"""

from __future__ import annotations

import logging
import zlib

import numpy as np

from rocksr.data.packs import Pack
from rocksr.imaging.degrade import downsample
from rocksr.imaging.images import open_input
from rocksr.imaging.intensity import window_for
from rocksr.settings import ConfigError, ExternalSet, IntensitySettings

log = logging.getLogger(__name__)

SPLIT = "test"
MIN_LR = 11  # SSIM's window (rocksr.eval.metrics) needs 11 px; so does a meaningful LR image


def external_packs(entries: list[ExternalSet], scale: int, degradation: str,
                   intensity: IntensitySettings | None) -> list[Pack]:
    return [external_pack(e.name, e.path, scale, degradation, intensity) for e in entries]


def external_pack(name: str, path: str, scale: int, degradation: str,
                  intensity: IntensitySettings | None) -> Pack:
    source = open_input(path)
    if source.dtype != np.uint8 and intensity is None:
        raise ConfigError(f"{path}: 16-bit external set without intensity settings")
    window = window_for(source.dtype, intensity, source, where=path)
    h, w = (side // scale * scale for side in source.shape)
    if min(h, w) < MIN_LR * scale:
        raise ValueError(f"{path}: {source.shape[0]}x{source.shape[1]} pixels is too small to "
                         f"score at x{scale} (needs {MIN_LR * scale} a side)")
    if (h, w) != source.shape:
        log.warning("%s: cropped from %dx%d to %dx%d, a multiple of the scale %d", path,
                    *source.shape, h, w, scale)
    to_8bit = window_for(np.uint8, None).from_unit
    hr = np.stack([to_8bit(window.to_unit(image[:h, :w])) for image in source])
    seed = zlib.crc32(name.encode())
    lr = np.stack([downsample(image, scale, degradation, np.random.default_rng([seed, i]))
                   for i, image in enumerate(hr)])
    log.info("external set %s: %d slice(s) of %dx%d from %s, window %s, LR by %s x%d", name,
             len(hr), h, w, path, window.record(), degradation, scale)
    return Pack(name, SPLIT, hr, lr, np.arange(1, len(hr) + 1))
