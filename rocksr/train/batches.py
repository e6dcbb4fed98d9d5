"""Aligned random LR/HR crops, cut for a whole batch at once from images resident on the device.

Images (N, H, W) give square crops, volumes (N, D, H, W) cubes, by the same code.

The split step's uint8 packs are concatenated once into two tensors on the training device
(the full DeepRock-SR train split is 2.4 GB of HR bytes: it fits in GPU memory), so a batch
costs a few indexing kernels and no per-sample Python work or host-to-device image copies.
"""

from __future__ import annotations

import numpy as np
import torch

from rocksr.data.packs import Pack
from rocksr.imaging.pixels import uint8_to_signed


def _check_sizes(packs: list[Pack]) -> None:
    if not packs:
        raise ValueError("no images: the split's packs are empty")
    sizes = {(p.lr.shape[1:], p.hr.shape[1:]) for p in packs}
    if len(sizes) > 1:
        raise ValueError("packs differ in image size, cannot batch them: " + ", ".join(
            f"{p.rock}/{p.split} LR {p.lr.shape[1:]} HR {p.hr.shape[1:]}" for p in packs))


def stack_packs(packs: list[Pack], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of a split's packs as uint8 tensors LR (N, h, w) and HR (N, H, W) on `device`
    (volumes: (N, d, h, w) and (N, D, H, W)).

    Copied pack by pack into preallocated tensors, so a memory-mapped split is never held
    whole in host memory besides the result.
    """
    _check_sizes(packs)
    n = sum(len(p) for p in packs)
    lr = torch.empty((n, *packs[0].lr.shape[1:]), dtype=torch.uint8, device=device)
    hr = torch.empty((n, *packs[0].hr.shape[1:]), dtype=torch.uint8, device=device)
    start = 0
    for p in packs:  # np.array: a writable copy of one (memory-mapped, read-only) pack
        lr[start:start + len(p)] = torch.from_numpy(np.array(p.lr))
        hr[start:start + len(p)] = torch.from_numpy(np.array(p.hr))
        start += len(p)
    return lr, hr


def pick_images(packs: list[Pack], count: int,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` images spread evenly over the concatenated packs (so every rock type is in a
    small validation subset), as uint8 LR (count, h, w) and HR (count, H, W) on `device`."""
    _check_sizes(packs)
    where = [(p, i) for p in packs for i in range(len(p))]
    picks = np.linspace(0, len(where) - 1, min(count, len(where))).round().astype(int)
    lr = np.stack([where[k][0].lr[where[k][1]] for k in picks])
    hr = np.stack([where[k][0].hr[where[k][1]] for k in picks])
    return torch.from_numpy(lr).to(device), torch.from_numpy(hr).to(device)


class CropSampler:
    """Random aligned crops: an LR patch at (y, x) and the HR patch at (scale*y, scale*x);
    of volumes, an LR cube at (z, y, x) and the HR cube at scale times that.

    Random numbers come from a private seeded CPU torch.Generator whose state is part of a
    training checkpoint: the crop sequence is reproducible, independent of the model's RNG
    use and of the device. Each batch draws all its numbers at once (one small transfer).
    `flips`: a random flip per sample along each spatial axis; `rot90`: a random rotation by
    k*90 degrees per sample in the (H, W) plane; each applied identically to the LR and the
    HR patch.
    """

    def __init__(self, lr: torch.Tensor, hr: torch.Tensor, scale: int, lr_patch: int,
                 batch_size: int, seed: int, flips: bool = False, rot90: bool = False):
        n, *size = lr.shape
        if len(size) not in (2, 3):
            raise ValueError(f"LR images must be (N, H, W) or volumes (N, D, H, W), got "
                             f"{tuple(lr.shape)}")
        if tuple(hr.shape) != (n, *(s * scale for s in size)):
            raise ValueError(f"HR images {tuple(hr.shape[1:])} are not {scale}x the LR "
                             f"images {tuple(size)}")
        if lr_patch > min(size):
            raise ValueError(f"lr_patch {lr_patch} is larger than the LR images {tuple(size)}")
        self.lr, self.hr, self.scale = lr, hr, scale
        self.lr_patch, self.batch_size = lr_patch, batch_size
        self.flips, self.rot90 = flips, rot90
        self.generator = torch.Generator().manual_seed(seed)
        self._lr_grid = torch.arange(lr_patch, device=lr.device)
        self._hr_grid = torch.arange(lr_patch * scale, device=lr.device)

    @staticmethod
    def _crop(images: torch.Tensor, image: torch.Tensor, corner: torch.Tensor,
              grid: torch.Tensor) -> torch.Tensor:
        """(B, p, ..., p) patches at the (axes, B) `corner`s: one gather."""
        axes = len(corner)
        index = [image.view(-1, *(1,) * axes)]
        index += [(start[:, None] + grid).view(-1, *(len(grid) if j == k else 1
                                                     for j in range(axes)))
                  for k, start in enumerate(corner)]
        return images[tuple(index)]

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch: LR (B, 1, p, p) and HR (B, 1, s*p, s*p), float in [-1, 1]; of volumes
        (B, 1, p, p, p) and (B, 1, s*p, s*p, s*p)."""
        n, *size = self.lr.shape
        axes, p = len(size), self.lr_patch
        # 2D: (image, y, x, W flip, H flip, k), the order of the first 2D sampler
        highs = (n, *(s - p + 1 for s in size), *(2,) * axes, 4)
        draws = torch.stack([torch.randint(high, (self.batch_size,), generator=self.generator)
                             for high in highs])
        if self.lr.device.type == "cuda":
            draws = draws.pin_memory()  # so the copy is asynchronous: no wait for the GPU
        draws = draws.to(self.lr.device, non_blocking=True)
        image, corner, flip, k = draws[0], draws[1:1 + axes], draws[1 + axes:-1], draws[-1]
        lr = self._crop(self.lr, image, corner, self._lr_grid)
        hr = self._crop(self.hr, image, corner * self.scale, self._hr_grid)
        # Per-sample transforms as whole-batch selects; rot(k) = rot(1)^(k & 1) . rot(2)^(k >> 1).
        steps = []
        if self.flips:  # the last axis first
            steps += [(flip[i] == 1, lambda t, axis=-1 - i: t.flip(axis)) for i in range(axes)]
        if self.rot90:
            steps += [(k % 2 == 1, lambda t: t.rot90(1, (-2, -1))),
                      (k >= 2, lambda t: t.flip(-1).flip(-2))]
        for mask, fn in steps:
            mask = mask.view(-1, *(1,) * axes)
            lr = torch.where(mask, fn(lr), lr)
            hr = torch.where(mask, fn(hr), hr)
        return uint8_to_signed(lr.unsqueeze(1)), uint8_to_signed(hr.unsqueeze(1))

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
