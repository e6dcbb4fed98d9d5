"""Tiled inference equals whole-image inference once the overlap covers the receptive field."""

from __future__ import annotations

import pytest
import torch

from rocksr.infer.inference import upscalers
from rocksr.infer.tiling import receptive_radius, spans, upscale_slabs, upscale_tiled
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


def random_3d_generator(upsample: str) -> Generator:
    torch.manual_seed(0)
    g = Generator(scale=2, blocks=1, filters=4, dim=3, upsample=upsample)
    for m in g.modules():  # torch's larger default init, as above: seams would show
        if isinstance(m, torch.nn.Conv3d):
            m.reset_parameters()
    return g.eval()


def test_receptive_radius_of_3d_generators():
    # head + 2 per block + body tail + one conv per x2 stage, and the 3x3x3 output conv
    assert receptive_radius(Generator(scale=4, blocks=16, filters=4, dim=3)) == 1 + 32 + 1 + 2 + 1
    assert receptive_radius(Generator(scale=2, blocks=1, filters=4, dim=3,
                                      upsample="subpixel")) == 1 + 2 + 1 + 1 + 1


@torch.inference_mode()
@pytest.mark.parametrize("upsample", ["nearest", "subpixel"])
def test_tiled_volume_equals_whole_volume(upsample):
    g = random_3d_generator(upsample)
    up = upscalers({"g": g}, 2)["g"]
    volume = torch.rand(11, 9, 13)
    whole = up(volume[None, None])[0, 0]
    overlap = receptive_radius(g)
    tiled = upscale_tiled(up, volume, 2, tile=4, overlap=overlap, device=CPU)
    assert tiled.shape == (22, 18, 26)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)
    short = upscale_tiled(up, volume, 2, tile=4, overlap=1, device=CPU)
    assert (short - whole).abs().max() > 1e-3  # too little context: seams


@torch.inference_mode()
def test_volume_goes_slab_by_slab():
    g = random_3d_generator("nearest")
    up = upscalers({"g": g}, 2)["g"]
    volume = torch.rand(10, 6, 7)
    slabs = list(upscale_slabs(up, volume, 2, tile=4, overlap=receptive_radius(g), device=CPU))
    assert [(z0, tuple(s.shape)) for z0, s in slabs] == [
        (0, (8, 12, 14)), (4, (8, 12, 14)), (8, (4, 12, 14))]
    torch.testing.assert_close(torch.cat([s for _, s in slabs]), up(volume[None, None])[0, 0],
                               atol=1e-5, rtol=0)


@torch.inference_mode()
@pytest.mark.parametrize("dim", [2, 3])
def test_a_generator_upsamples_only_the_kept_region_and_its_margin(dim):
    """keep=: the output of that LR region, equal to the same part of the whole output, with
    only the region plus tail_radius upsampled (the memory of tiled inference)."""
    torch.manual_seed(0)
    g = Generator(scale=4, blocks=1, filters=4, dim=dim)
    for m in g.modules():  # torch's larger default init, as above
        if isinstance(m, torch.nn.modules.conv._ConvNd):
            m.reset_parameters()
    g.eval()
    x = torch.rand(1, 1, *(14,) * dim)
    whole = g(x)
    seen = []
    g.tail.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[2:]))
    margin = g.tail_radius
    assert margin == (2 if dim == 2 else 3)  # 3x3 convs of the x2 stages, the output conv
    for keep in [(slice(5, 9),) * dim, (slice(0, 3),) * dim, (slice(10, 14),) * dim]:
        part = g(x, keep)
        expected = whole[(..., *(slice(4 * k.start, 4 * k.stop) for k in keep))]
        torch.testing.assert_close(part, expected, atol=1e-5, rtol=0)
        upsampled = [min(k.stop + margin, 14) - max(k.start - margin, 0) for k in keep]
        assert tuple(seen[-1]) == tuple(4 * n for n in upsampled)
