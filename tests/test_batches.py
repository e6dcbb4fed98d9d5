"""CropSampler on volumes: aligned LR/HR cubes, flips along each axis, reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rocksr.data.packs import Pack
from rocksr.train.batches import CropSampler, stack_packs

SCALE = 2


def volumes(n: int = 3, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """HR volumes whose voxels all differ (so a crop's origin is known from its values) and
    their exact SCALE^3 block means as LR."""
    hr = torch.from_numpy(np.random.default_rng(0).permutation(n * size**3).reshape(
        n, size, size, size) % 251).to(torch.uint8)
    lr = F.avg_pool3d(hr.float().unsqueeze(1), SCALE).squeeze(1).round().byte()
    return lr, hr


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) * 127.5).round().byte()


def test_cubes_are_aligned_crops_of_the_volumes():
    lr, hr = volumes()
    sampler = CropSampler(lr, hr, SCALE, lr_patch=3, batch_size=32, seed=1)
    lr_b, hr_b = sampler.sample()
    assert lr_b.shape == (32, 1, 3, 3, 3) and hr_b.shape == (32, 1, 6, 6, 6)
    lr_u8, hr_u8 = to_uint8(lr_b)[:, 0], to_uint8(hr_b)[:, 0]
    lr_blocks = F.avg_pool3d(hr_u8.float().unsqueeze(1), SCALE).squeeze(1).round().byte()
    assert torch.equal(lr_blocks, lr_u8)  # each LR cube is its HR cube, downsampled
    for cube in hr_u8[:4]:  # and each HR cube is a real crop at a multiple of the scale
        found = [(i, z, y, x) for i in range(len(hr)) for z in range(0, 11, SCALE)
                 for y in range(0, 11, SCALE) for x in range(0, 11, SCALE)
                 if torch.equal(hr[i, z:z + 6, y:y + 6, x:x + 6], cube)]
        assert len(found) == 1


@pytest.mark.parametrize("flips, rot90", [(True, False), (False, True), (True, True)])
def test_volume_augmentation_transforms_lr_and_hr_alike(flips, rot90):
    lr, hr = volumes()
    plain = CropSampler(lr, hr, SCALE, 3, 64, seed=5)
    augmented = CropSampler(lr, hr, SCALE, 3, 64, seed=5, flips=flips, rot90=rot90)
    lr_a, hr_a = (to_uint8(t)[:, 0] for t in augmented.sample())
    lr_p, hr_p = (to_uint8(t)[:, 0] for t in plain.sample())
    lr_blocks = F.avg_pool3d(hr_a.float().unsqueeze(1), SCALE).squeeze(1).round().byte()
    assert torch.equal(lr_blocks, lr_a)

    def variants(t):
        flipped = [t.flip(dims) if dims else t for dims in
                   ([], [0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2])] if flips else [t]
        return [f.rot90(k, (1, 2)) for f in flipped for k in range(4 if rot90 else 1)]

    matches = [[torch.equal(v, a) for v in variants(p)] for p, a in zip(hr_p, hr_a)]
    assert all(any(m) for m in matches)
    assert any(not m[0] for m in matches)  # some were transformed
    if flips:  # the depth axis too
        assert any(torch.equal(p.flip(0), a) and not torch.equal(p, a)
                   for p, a in zip(hr_p, hr_a))


def test_volume_sampler_checks_and_state():
    lr, hr = volumes()
    with pytest.raises(ValueError, match="not 2x the LR images"):
        CropSampler(lr, hr[:, :, :, :-2], SCALE, 3, 4, seed=0)
    with pytest.raises(ValueError, match="lr_patch 9 is larger"):
        CropSampler(lr, hr, SCALE, 9, 4, seed=0)
    sampler = CropSampler(lr, hr, SCALE, 3, 4, seed=0, flips=True)
    state = sampler.state_dict()
    first = sampler.sample()
    sampler.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(first, sampler.sample()))


def test_stack_packs_of_volumes():
    lr, hr = volumes(4)
    packs = [Pack("coal", "train", hr[:3].numpy(), lr[:3].numpy(), np.arange(3)),
             Pack("sandstone", "train", hr[3:].numpy(), lr[3:].numpy(), np.arange(1))]
    lr_all, hr_all = stack_packs(packs, torch.device("cpu"))
    assert torch.equal(lr_all, lr) and torch.equal(hr_all, hr)
