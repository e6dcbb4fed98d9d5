"""EDSR-style generator and SRGAN-style discriminator (2D), as in Wang et al. 2020.

Data convention: the networks work on [-1, 1] (the original code's scaling); the generator
ends with tanh. `rocksr.imaging.pixels` converts to and from uint8 / [0, 1].
Initialisation as the authors' code: conv and dense weights N(0, 0.02), zero biases,
BatchNorm gamma N(1, 0.02) and beta 0.

Generator activations (`act`): "authors" as their code built them: a residual block applies
its activation twice, Keras PReLUs whose slopes start at 0; with two zero slopes in series
neither slope ever gets a gradient (the first's output for a negative input is 0, which the
second passes on with derivative 0), so the blocks compute ReLU for the whole run, and
that is what they hold here. Each upsampler's single PReLU starts at 0 and learns.
"prelu": one PReLU per block and per upsampler, slopes from torch's 0.25.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from rocksr.fileio import atomic_path


def init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


ACTIVATIONS = ("authors", "prelu")


class ResidualBlock(nn.Module):
    """conv3x3 - activation - conv3x3, plus the block input (no BN, no residual scaling);
    the activation is ReLU (`authors`) or a PReLU from 0.25 (`prelu`)."""

    def __init__(self, filters: int, act: str = "authors"):
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(filters, filters),
            nn.ReLU() if act == "authors" else nn.PReLU(filters),
            conv3x3(filters, filters),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Upsample2x(nn.Sequential):
    """conv3x3 to 4x the features, pixel shuffle x2, PReLU (slope from 0 for `authors`,
    from 0.25 for `prelu`)."""

    def __init__(self, filters: int, act: str = "authors"):
        super().__init__(
            conv3x3(filters, 4 * filters), nn.PixelShuffle(2),
            nn.PReLU(filters, init=0.0 if act == "authors" else 0.25),
        )


class Generator(nn.Module):
    def __init__(self, scale: int = 4, blocks: int = 16, filters: int = 64, channels: int = 1,
                 act: str = "authors"):
        super().__init__()
        if scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, got {scale}")
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
        self.arch = {"scale": scale, "blocks": blocks, "filters": filters, "channels": channels,
                     "act": act}
        self.head = conv3x3(channels, filters)
        self.body = nn.Sequential(*(ResidualBlock(filters, act) for _ in range(blocks)))
        self.body_tail = conv3x3(filters, filters)
        self.upsample = nn.Sequential(*(Upsample2x(filters, act) for _ in range(scale // 2)))
        self.tail = nn.Conv2d(filters, channels, 1)
        init_weights(self)

    @property
    def scale(self) -> int:
        return self.arch["scale"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x)
        features = head + self.body_tail(self.body(head))  # global skip from the first conv
        return torch.tanh(self.tail(self.upsample(features)))


class Discriminator(nn.Module):
    """SRGAN discriminator on `patch` x `patch` HR inputs; returns one logit per image."""

    STAGES = ((64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2))

    def __init__(self, patch: int, channels: int = 1):
        super().__init__()
        if patch % 16:
            raise ValueError(f"discriminator patch must be a multiple of 16, got {patch}")
        self.arch = {"patch": patch, "channels": channels}
        layers: list[nn.Module] = [conv3x3(channels, 64), nn.LeakyReLU(0.2)]
        cin = 64
        for cout, stride in self.STAGES:
            layers += [conv3x3(cin, cout, stride), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        side = patch // 16
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(512 * side * side, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 1)
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).squeeze(1)


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)  # torch.compile wrapper


def save_model(path: str | Path, model: nn.Module, **meta) -> None:
    """Write architecture + weights atomically (a partial file is never left in place)."""
    model = _unwrap(model)
    payload = {"kind": type(model).__name__, "arch": model.arch,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "meta": meta}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_model(path: str | Path, map_location="cpu") -> nn.Module:
    """Rebuild a Generator or Discriminator saved by `save_model`."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"model file not found: {path}") from None
    except Exception as exc:  # corrupt or foreign file
        raise ValueError(f"{path}: not a readable rocksr model file ({exc})") from None
    kinds = {"Generator": Generator, "Discriminator": Discriminator}
    if not isinstance(payload, dict) or payload.get("kind") not in kinds:
        raise ValueError(f"{path}: not a rocksr model file (no known 'kind')")
    arch = payload["arch"]
    if payload["kind"] == "Generator":  # saved before `act` existed: PReLU(0.25) throughout
        arch = {"act": "prelu", **arch}
    model = kinds[payload["kind"]](**arch)
    model.load_state_dict(payload["state_dict"])
    return model
