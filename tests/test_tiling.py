"""Tiled inference equals whole-image inference once the overlap covers the receptive field."""

from __future__ import annotations

import pytest
import torch

from rocksr.infer.inference import upscalers
from rocksr.infer.tiling import receptive_radius, spans, upscale_tiled
from rocksr.nets.models import Generator

CPU = torch.device("cpu")


def test_receptive_radius_counts_every_3x3_conv():
    # head + 2 per block + body tail + one conv per x2 upsampling stage (the tail is 1x1)
    assert receptive_radius(Generator(scale=4, blocks=16, filters=4)) == 1 + 32 + 1 + 2
    assert receptive_radius(Generator(scale=2, blocks=2, filters=4)) == 1 + 4 + 1 + 1


def test_spans_cover_the_axis_once():
    parts = spans(37, 16, 5)
    assert parts == [(0, 16, 0, 21), (16, 32, 11, 37), (32, 37, 27, 37)]


@torch.inference_mode()
@pytest.mark.parametrize("method", ["bicubic", "g"])
def test_tiled_equals_whole_image(method):
    torch.manual_seed(0)
    g = Generator(scale=4, blocks=2, filters=8)
    for m in g.modules():  # torch's larger default init: the authors' N(0, 0.02) gives a
        if isinstance(m, torch.nn.Conv2d):  # near-constant output that would hide seams
            m.reset_parameters()
    up = upscalers({"g": g.eval()}, 4)[method]
    image = torch.rand(37, 45)
    whole = up(image[None, None])[0, 0]
    overlap = receptive_radius(g)  # 7
    tiled = upscale_tiled(up, image, 4, tile=12, overlap=overlap, device=CPU)
    assert tiled.shape == (148, 180)
    torch.testing.assert_close(tiled, whole, atol=2e-6, rtol=0)
    if method == "g":  # too little context: seams (so the test above can fail)
        short = upscale_tiled(up, image, 4, tile=12, overlap=2, device=CPU)
        assert (short - whole).abs().max() > 1e-3
