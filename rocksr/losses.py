"""Phase-2 losses: VGG19 feature loss and the adversarial (BCE-on-logits) losses.

VGG feature layer. torchvision's `vgg19().features[:35]` ends at index 34, the conv5_4
convolution, so the features are conv5_4's output *before* its ReLU (as ESRGAN argues, the
pre-activation features are denser). The paper's text says "before the 5th max-pool"; the
original code took pool5. We follow DESIGN.md: conv5_4, pre-activation.

The VGG weight (config `training.phase2.vgg_weight`) versus the paper's alpha. The original
code fed 0-255 BGR, mean-pixel-subtracted images to Caffe VGG19 weights; torchvision's
weights expect RGB in [0, 1] normalised by the ImageNet mean/std (std ~0.226), so the network
input here is ~1/58 of the Caffe input's scale, and the two weight sets were trained
separately on those scales. The conv5_4 features, and with them the feature MSE, are
therefore of a different (much smaller) magnitude than the original's, by a factor that can
only be measured with both real weight sets at hand (e.g. the ratio of the two pipelines'
mean conv5_4 MSE between SR and HR batches, which then rescales alpha). No machine of this
project can download the weights, so it has not been measured: the default vgg_weight 1e-5
is the original code's alpha applied unchanged to our feature scale, which gives the VGG term
less weight relative to L1 than in the paper. Random weights (`random`, offline demo/tests)
have yet another scale and are not the paper's loss at all.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

log = logging.getLogger(__name__)

VGG_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's VGG19_Weights.IMAGENET1K_V1
VGG_CONV5_4 = 35                 # features[:35] ends with conv5_4 (before its ReLU)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGWeightsError(RuntimeError):
    """VGG19 weights cannot be had; the message says what to place where."""


def vgg_cache_path() -> Path:
    """Where torchvision looks for (and downloads) the ImageNet VGG19 weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG_FILE


def load_vgg19_features(weights: str) -> nn.Sequential:
    """VGG19's convolutional part (torchvision layout) with `weights`: 'imagenet', 'random',
    or a path to a torchvision VGG19 state dict (its `features.*` entries are used)."""
    if weights == "imagenet":
        try:
            return torchvision.models.vgg19(
                weights=torchvision.models.VGG19_Weights.IMAGENET1K_V1).features
        except Exception as exc:  # offline download, corrupt cache file, hash mismatch
            raise VGGWeightsError(
                f"cannot load the ImageNet VGG19 weights ({type(exc).__name__}: {exc}). "
                f"Place {VGG_FILE} (from {torchvision.models.VGG19_Weights.IMAGENET1K_V1.url}) "
                f"at {vgg_cache_path()}, or set training.phase2.vgg_weights to a local "
                "path of that file") from None
    # Only the features are built: the classifier's 120 M parameters would cost seconds.
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])
    if weights == "random":
        log.warning("VGG19 has RANDOM weights (training.phase2.vgg_weights: random): "
                    "the VGG loss term is NOT the paper's perceptual loss; use only for "
                    "offline demos and tests")
        for m in features.modules():
            if isinstance(m, nn.Conv2d):  # torchvision's own VGG initialisation
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        return features
    path = Path(weights)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()
                                  if k.startswith("features.")})
    except FileNotFoundError:
        raise VGGWeightsError(f"VGG19 weights file not found: {path} "
                              "(training.phase2.vgg_weights)") from None
    except Exception as exc:
        raise VGGWeightsError(f"{path}: not a torchvision VGG19 state dict "
                              f"({type(exc).__name__}: {exc})") from None
    log.info("VGG19 weights loaded from %s", path)
    return features


class VGGLoss(nn.Module):
    """MSE between VGG19 conv5_4 features of SR and HR, both given in [-1, 1] grey.

    Input mapping: [-1, 1] -> [0, 1] -> 3 identical channels -> ImageNet mean/std; no
    resizing or cropping. VGG is frozen (no parameter gradients, eval mode), but the loss is
    NOT computed under no_grad: gradients flow through VGG into the SR image.
    """

    def __init__(self, weights: str):
        super().__init__()
        self.features = load_vgg19_features(weights)[:VGG_CONV5_4].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> "VGGLoss":
        return super().train(False)  # always a fixed feature extractor

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x + 1.0) * 0.5).expand(-1, 3, -1, -1)
        return self.features((x - self.mean) / self.std).float()

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the target's features need no graph; SR's below keep theirs
            target = self._features(hr)
        return F.mse_loss(self._features(sr), target)


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE(D(SR), real): the generator is rewarded when D calls its output real."""
    fake_logits = fake_logits.float()
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE(D(HR), real) + BCE(D(SR), fake); pass SR detached so D's step leaves G alone."""
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
