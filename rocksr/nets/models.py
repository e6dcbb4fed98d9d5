"""EDSR-style generator and SRGAN-style discriminator, 2D or 3D, as in Wang et al. 2020.

Data convention: the networks work on [-1, 1] (the original code's scaling); the generator
ends with tanh. `rocksr.imaging.pixels` converts to and from uint8 / [0, 1].

`dim` (2 or 3) picks 2D or 3D layers for one shared architecture. Where the authors' 3D nets
(sr3dModels.py `generatorTF`, `discriminatorTF`) differ from their 2D ones (sr2dModels.py
`generator2D`, `discriminator2D`), the default of each `dim` is that code's choice (`FLAVOURS`):
- generator upsampling: 2D conv to 4x the features, pixel shuffle x2, PReLU; 3D conv (same
  features), PReLU, nearest-neighbour x2 (`upsample="nearest"`; the 3D sub-pixel shuffle,
  `upsample="subpixel"`, is there too but left unused by their 3D generator);
- generator output conv: 1x1 in 2D, 3x3x3 in 3D;
- discriminator: LeakyReLU slope 0.2 in 2D, 0.3 in 3D; BatchNorm eps 1e-5 with a learnt
  scale in 2D, eps 1e-3 and no scale (gamma fixed at 1) in 3D;
- initialisation: 2D conv and dense weights N(0, 0.02), BatchNorm gamma N(1, 0.02); 3D
  Keras's defaults, Glorot-uniform weights. Biases and BatchNorm beta start at 0 in both.

Generator activations (`act`): "authors" as their code built them, with Keras PReLUs whose
slopes start at 0. In 2D a residual block applies its activation twice; with two zero
slopes in series neither slope ever gets a gradient (the first's output for a negative
input is 0, which the second passes on with derivative 0), so the blocks compute ReLU for
the whole run, and that is what they hold here. In 3D a block applies it once: a PReLU
from 0 that learns. Each upsampler's single PReLU starts at 0 and learns. "prelu": one
PReLU per block and per upsampler, slopes from torch's 0.25.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from rocksr.fileio import atomic_path

CONV = {2: nn.Conv2d, 3: nn.Conv3d}
BATCHNORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
UPSAMPLING = ("subpixel", "nearest")
ACTIVATIONS = ("authors", "prelu")
# The authors' choices by dimension (module docstring); `block_act`: the residual blocks'
# activation under act="authors".
FLAVOURS = {
    2: {"upsample": "subpixel", "tail_kernel": 1, "init": "normal", "slope": 0.2,
        "bn_eps": 1e-5, "bn_scale": True, "block_act": "relu"},
    3: {"upsample": "nearest", "tail_kernel": 3, "init": "glorot", "slope": 0.3,
        "bn_eps": 1e-3, "bn_scale": False, "block_act": "prelu"},
}


def _check_dim(dim: int) -> int:
    if dim not in CONV:
        raise ValueError(f"dim must be 2 or 3, got {dim}")
    return dim


def init_weights(model: nn.Module, how: str) -> None:
    """`normal`: N(0, 0.02) weights, BatchNorm gamma N(1, 0.02) (the 2D code); `glorot`:
    Glorot-uniform weights, gamma 1 (Keras's defaults, the 3D code). Zero biases in both."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            if how == "normal":
                nn.init.normal_(m.weight, 0.0, 0.02)
            else:
                nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            if how == "normal":
                nn.init.normal_(m.weight, 1.0, 0.02)
            else:
                nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def conv3x3(cin: int, cout: int, stride: int = 1, dim: int = 2) -> nn.Module:
    return CONV[dim](cin, cout, 3, stride=stride, padding=1)


def pixel_shuffle(x: torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
    """Sub-pixel rearrangement over the last len(factors) axes: (N, C * prod(r), *S) to
    (N, C, *(r * S)). Channel c * prod(r) + offset, the offset's digits (i_1, ..., i_d) in
    row-major order over the factors, lands at output position s_k * r_k + i_k on axis k:
    torch's nn.PixelShuffle for two equal factors, applied slice by slice when a leading
    factor is 1."""
    d = len(factors)
    n, channels, *size = x.shape
    block = math.prod(factors)
    if channels % block:
        raise ValueError(f"pixel_shuffle: {channels} channels do not divide by {block}")
    x = x.reshape(n, channels // block, *factors, *size)
    # (N, C, r_1 .. r_d, S_1 .. S_d) -> (N, C, S_1, r_1, .., S_d, r_d)
    order = [0, 1] + [i for k in range(d) for i in (2 + d + k, 2 + k)]
    return x.permute(order).reshape(n, channels // block,
                                    *(s * r for s, r in zip(size, factors)))


class PixelShuffle(nn.Module):
    def __init__(self, factor: int, dim: int):
        super().__init__()
        self.factors = (factor,) * dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_shuffle(x, self.factors)


def prelu(filters: int, act: str) -> nn.PReLU:
    """A PReLU per channel whose slopes start at 0 (`authors`, Keras's default) or 0.25."""
    return nn.PReLU(filters, init=0.0 if act == "authors" else 0.25)


class ResidualBlock(nn.Module):
    """conv3x3 - activation - conv3x3, plus the block input (no BN, no residual scaling);
    the activation is the authors' for `dim` (ReLU in 2D, a PReLU from 0 in 3D) or a PReLU
    from 0.25 (`prelu`)."""

    def __init__(self, filters: int, dim: int = 2, act: str = "authors"):
        super().__init__()
        relu = act == "authors" and FLAVOURS[dim]["block_act"] == "relu"
        self.body = nn.Sequential(conv3x3(filters, filters, dim=dim),
                                  nn.ReLU() if relu else prelu(filters, act),
                                  conv3x3(filters, filters, dim=dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Upsample2x(nn.Sequential):
    """`subpixel`: conv3x3 to 2^dim x the features, pixel shuffle x2, PReLU. `nearest`:
    conv3x3, PReLU, nearest-neighbour x2. The PReLU's slopes start at 0 for `authors`, at
    0.25 for `prelu`."""

    def __init__(self, filters: int, dim: int = 2, how: str = "subpixel", act: str = "authors"):
        if how == "subpixel":
            super().__init__(conv3x3(filters, 2**dim * filters, dim=dim), PixelShuffle(2, dim),
                             prelu(filters, act))
        else:
            super().__init__(conv3x3(filters, filters, dim=dim), prelu(filters, act),
                             nn.Upsample(scale_factor=2, mode="nearest"))


class Generator(nn.Module):
    """`upsample` None: the authors' choice for `dim` (FLAVOURS)."""

    def __init__(self, scale: int = 4, blocks: int = 16, filters: int = 64, channels: int = 1,
                 dim: int = 2, upsample: str | None = None, act: str = "authors"):
        super().__init__()
        if scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, got {scale}")
        flavour = FLAVOURS[_check_dim(dim)]
        upsample = upsample or flavour["upsample"]
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}, got {upsample!r}")
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
        self.arch = {"scale": scale, "blocks": blocks, "filters": filters, "channels": channels,
                     "dim": dim, "upsample": upsample, "act": act}
        self.head = conv3x3(channels, filters, dim=dim)
        self.body = nn.Sequential(*(ResidualBlock(filters, dim, act) for _ in range(blocks)))
        self.body_tail = conv3x3(filters, filters, dim=dim)
        self.upsample = nn.Sequential(*(Upsample2x(filters, dim, upsample, act)
                                        for _ in range(scale // 2)))
        k = flavour["tail_kernel"]
        self.tail = CONV[dim](filters, channels, k, padding=k // 2)
        init_weights(self, flavour["init"])

    @property
    def scale(self) -> int:
        return self.arch["scale"]

    @property
    def dim(self) -> int:
        return self.arch["dim"]

    @property
    def tail_radius(self) -> int:
        """LR voxels of context the upsampling stages and the output convolution need around
        a kept region (each k x k convolution counted as k // 2 LR voxels: an upper bound)."""
        return sum(m.kernel_size[0] // 2 for part in (self.upsample, self.tail)
                   for m in part.modules() if isinstance(m, nn.modules.conv._ConvNd))

    def forward(self, x: torch.Tensor, keep: tuple[slice, ...] | None = None) -> torch.Tensor:
        """The SR image of `x`; with `keep` (a slice per spatial axis of `x`) only the SR of
        that region, equal to the same part of the whole output: the features are cropped to
        it plus `tail_radius` before they are upsampled, where most of the memory goes."""
        head = self.head(x)
        features = head + self.body_tail(self.body(head))  # global skip from the first conv
        if keep is None:
            return torch.tanh(self.tail(self.upsample(features)))
        margin, scale = self.tail_radius, self.scale
        around = tuple(slice(max(k.start - margin, 0), min(k.stop + margin, n))
                       for k, n in zip(keep, x.shape[2:]))
        sr = torch.tanh(self.tail(self.upsample(features[(..., *around)])))
        return sr[(..., *(slice(scale * (k.start - a.start), scale * (k.stop - a.start))
                          for k, a in zip(keep, around)))]


class Discriminator(nn.Module):
    """SRGAN discriminator on `patch`-sided HR squares or cubes; one logit per input."""

    STAGES = ((64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2))

    def __init__(self, patch: int, channels: int = 1, dim: int = 2):
        super().__init__()
        if patch % 16:
            raise ValueError(f"discriminator patch must be a multiple of 16, got {patch}")
        flavour = FLAVOURS[_check_dim(dim)]
        self.arch = {"patch": patch, "channels": channels, "dim": dim}
        slope = flavour["slope"]
        layers: list[nn.Module] = [conv3x3(channels, 64, dim=dim), nn.LeakyReLU(slope)]
        cin = 64
        for cout, stride in self.STAGES:
            norm = BATCHNORM[dim](cout, eps=flavour["bn_eps"])
            norm.weight.requires_grad_(flavour["bn_scale"])  # 3D: no learnt scale
            layers += [conv3x3(cin, cout, stride, dim), norm, nn.LeakyReLU(slope)]
            cin = cout
        self.features = nn.Sequential(*layers)
        side = patch // 16
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(512 * side**dim, 1024), nn.LeakyReLU(slope),
            nn.Linear(1024, 1))
        init_weights(self, flavour["init"])

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


def generator_of(arch: dict) -> Generator:
    """The Generator of a saved architecture; one saved before `act` existed had PReLUs from
    0.25 throughout."""
    return Generator(**{"act": "prelu", **arch})


def load_model(path: str | Path, map_location="cpu") -> nn.Module:
    """Rebuild a Generator or Discriminator saved by `save_model` (files from before `dim`
    or `act` was saved rebuild as the nets they are: 2D, PReLUs from 0.25)."""
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
    model = generator_of(arch) if payload["kind"] == "Generator" else Discriminator(**arch)
    model.load_state_dict(payload["state_dict"])
    return model
