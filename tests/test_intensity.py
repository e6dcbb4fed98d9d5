"""The intensity window: 8-bit as in training, 16-bit full range or stack percentiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rocksr.imaging.intensity import window_for
from rocksr.imaging.pixels import quantize_unit, uint8_to_unit
from rocksr.settings import IntensitySettings
from rocksr.workflow.config import ConfigError

FULL = IntensitySettings("full", (1, 99))


def percentile(lo: float, hi: float) -> IntensitySettings:
    return IntensitySettings.from_dict({"window": "percentile", "percentiles": [lo, hi]},
                                       "intensity")


def test_uint8_maps_as_in_training_whatever_the_window():
    x = torch.arange(256, dtype=torch.uint8)
    for settings in (FULL, percentile(10, 90), None):
        w = window_for(np.uint8, settings, slices=None)
        assert torch.equal(w.to_unit(x), uint8_to_unit(x))
    u = torch.linspace(-0.1, 1.1, 1001)
    np.testing.assert_array_equal(w.from_unit(u), (quantize_unit(u) * 255).round().numpy())
    assert w.from_unit(u).dtype == np.uint8


def test_uint16_full_range_round_trips_every_level():
    x = np.arange(65536, dtype=np.uint16)
    w = window_for(np.uint16, FULL)
    assert (w.low, w.high) == (0, 65535)
    np.testing.assert_array_equal(w.from_unit(w.to_unit(x)), x)


def test_uint16_percentiles_of_the_whole_stack_shared_by_every_slice():
    rng = np.random.default_rng(1)
    stack = [rng.integers(1000, 3000, (20, 20), dtype=np.uint16),
             rng.integers(20000, 30000, (20, 20), dtype=np.uint16)]
    w = window_for(np.uint16, percentile(2, 98), iter(stack))
    expected = np.percentile(np.stack(stack), [2, 98], method="inverted_cdf")
    assert [w.low, w.high] == expected.tolist()
    assert w.record()["low"] == w.low and "percentile" in w.record()["window"]
    # Outside the window clips; inside, the inverse recovers the level to within rounding.
    assert w.to_unit(np.uint16([0, 65535])).tolist() == [0.0, 1.0]
    inside = stack[1][(stack[1] >= w.low) & (stack[1] <= w.high)]
    np.testing.assert_array_equal(w.from_unit(w.to_unit(inside)), inside)
    np.testing.assert_array_equal(w.from_unit(torch.tensor([0.0, 1.0])), [w.low, w.high])


def test_zeroth_percentile_is_the_smallest_value():
    w = window_for(np.uint16, percentile(0, 100),
                   [np.uint16([[500, 700], [900, 1200]])])
    assert (w.low, w.high) == (500, 1200)


def test_constant_image_and_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="vol.tif: the 1 and 99 percentiles are both 7"):
        window_for(np.uint16, percentile(1, 99), [np.full((4, 4), 7, np.uint16)], where="vol.tif")
    with pytest.raises(ConfigError, match="intensity.percentiles"):
        percentile(60, 40)
    with pytest.raises(ConfigError, match="vol.tif: 16-bit input without intensity settings"):
        window_for(np.uint16, None, [], where="vol.tif")
    with pytest.raises(ValueError, match="unsupported pixel type float32"):
        window_for(np.float32, FULL)


def test_clipped_fraction_is_the_share_of_voxels_outside_the_window():
    # 1000 voxels: 10 dark (100), 970 mid (1000-1969), 20 bright minerals (60000)
    stack = np.concatenate([np.full(10, 100), 1000 + np.arange(970), np.full(20, 60000)])
    stack = stack.astype(np.uint16).reshape(10, 100)
    w = window_for(np.uint16, percentile(0.5, 98), [stack])
    assert (w.low, w.high) == (100, 1969)  # the bright 2% are the tail cut off
    assert w.clipped == pytest.approx(0.02) == np.mean((stack < w.low) | (stack > w.high))
    assert w.record()["clipped_fraction"] == pytest.approx(0.02)
    assert window_for(np.uint16, FULL, [stack]).clipped == 0


def test_minmax_window_clips_nothing_and_round_trips_every_value():
    stack = [np.uint16([[300, 900], [1200, 47000]]), np.uint16([[5000, 301], [302, 303]])]
    w = window_for(np.uint16, IntensitySettings("minmax", (0.5, 99.5)), iter(stack))
    assert (w.low, w.high, w.clipped) == (300, 47000, 0.0)
    for image in stack:  # (47000 - 300) levels over float32 [0, 1]: each value comes back
        np.testing.assert_array_equal(w.from_unit(w.to_unit(image)), image)
    with pytest.raises(ValueError, match="vol.tif: every voxel is 7"):
        window_for(np.uint16, IntensitySettings("minmax", (0.5, 99.5)),
                   [np.full((2, 2), 7, np.uint16)], where="vol.tif")
