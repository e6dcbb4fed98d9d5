"""Phase-2 losses: the VGG19 feature loss, the adversarial (BCE-on-logits) losses, and the
generator's weighted sum.

Generator loss = L1 + vgg_weight * VGG MSE + adv_weight * BCE(D(SR), real). With the
authors' VGG term (Caffe-trained weights, Caffe-scaled input, pool5 features: rocksr.nets.vgg)
`vgg_weight` means what the paper's alpha meant in their runs; `adv_weight` is their beta.
Volumes get the VGG term only on their 2D slices (`SliceVGGLoss`, `vgg_3d: slices`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rocksr.nets.vgg import VGGFeatures


class GradScale(torch.autograd.Function):
    """Identity forward; the backward pass multiplies the gradient by `scale` (a power of
    two, so exactly)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


class VGGLoss(nn.Module):
    """MSE between VGG19 features (rocksr.nets.vgg) of SR and HR, both grey [-1, 1]; no resizing
    or cropping. Gradients flow through the frozen VGG into SR.

    `precision` fp16: the network runs in fp16 (rocksr.nets.vgg), the MSE in fp32, and the
    gradient through the network is scaled by a power of two chosen from `weight` (the term's
    weight in the generator loss, as configured: under `balance: ratio` the scale stays that
    of the starting weight) and the feature count, and scaled back after it. `origin`: what
    the weights were trained on (rocksr.nets.vgg)."""

    def __init__(self, weights: str, layer: str = "pool5", input: str = "caffe",
                 origin: str | None = None, precision: str = "fp32", weight: float = 0.0):
        super().__init__()
        self.features = VGGFeatures(weights, layer, input, origin, precision)
        self.weight = weight

    def grad_scale(self, features: torch.Tensor) -> float:
        """In fp16, 2^k nearest feature count / weight (else 1): the gradient entering the
        network is then about 2 x (SR - HR features), in the features' own range (rocksr.bench.
        vgg_precision checks it stays finite), where unscaled, weight x 2 / feature count
        times that, it underflows fp16."""
        if self.features.precision != "fp16" or self.weight <= 0:
            return 1.0
        return 2.0 ** round(math.log2(features.numel() / self.weight))

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the target's features need no graph; SR's below keep theirs
            target = self.features(hr).float()
        scale = self.grad_scale(target)
        features = self.features(GradScale.apply(sr, 1 / scale) if scale != 1 else sr)
        features = features.float()
        return F.mse_loss(GradScale.apply(features, scale) if scale != 1 else features, target)


class SliceVGGLoss(VGGLoss):
    """VGGLoss of volumes (B, 1, D, H, W) on their 2D slices: across D (B * D images of
    H x W), across H and across W in turn, the three MSEs averaged (`vgg_3d: slices`). The
    authors' 3D code has no such term: its `convert22D` returns the volume unchanged."""

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return sum(super(SliceVGGLoss, self).forward(slices(sr, axis), slices(hr, axis))
                   for axis in (2, 3, 4)) / 3


def slices(volumes: torch.Tensor, axis: int) -> torch.Tensor:
    """(B, 1, D, H, W) volumes as the batch of their 2D slices across `axis` (2, 3 or 4),
    e.g. axis 3: (B * H, 1, D, W)."""
    x = volumes.movedim(axis, 1)
    return x.reshape(-1, 1, *x.shape[3:])


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE(D(SR), real): the generator is rewarded when D calls its output real."""
    fake_logits = fake_logits.float()
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE(D(HR), real) + BCE(D(SR), fake); pass SR detached so D's step leaves G alone."""
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_terms(sr: torch.Tensor, hr: torch.Tensor, fake_logits: torch.Tensor | None = None,
                    vgg: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """The generator's unweighted loss terms; each keeps its graph back to the generator.
    `fake_logits`: D's logits of `sr` (phase 2)."""
    terms = {"loss_l1": F.l1_loss(sr.float(), hr)}
    if vgg is not None:
        terms["loss_vgg"] = vgg(sr, hr)
    if fake_logits is not None:
        terms["loss_adv"] = generator_adversarial_loss(fake_logits)
    return terms


def weighted_terms(terms: dict[str, torch.Tensor], vgg_weight: float = 0.0,
                   adv_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """Each term as it enters the generator loss (l1, vgg, adv); their sum is that loss."""
    weights = {"loss_l1": ("l1", 1.0), "loss_vgg": ("vgg", vgg_weight),
               "loss_adv": ("adv", adv_weight)}
    return {weights[k][0]: weights[k][1] * v for k, v in terms.items()}


def generator_loss(sr: torch.Tensor, hr: torch.Tensor, fake_logits: torch.Tensor | None = None,
                   vgg: nn.Module | None = None, vgg_weight: float = 0.0,
                   adv_weight: float = 0.0
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """L1 + vgg_weight * VGG + adv_weight * adversarial (phase 1: L1 alone): the loss, its
    unweighted terms (loss_l1, ...) and its weighted ones (l1, vgg, adv; they sum to it)."""
    terms = generator_terms(sr, hr, fake_logits, vgg)
    weighted = weighted_terms(terms, vgg_weight, adv_weight)
    return sum(weighted.values()), terms, weighted
