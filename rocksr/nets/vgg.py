"""VGG19 feature extractor of the perceptual loss, as the authors' code computed it.

Layer (`vgg_layer`), as torchvision `vgg19().features` prefixes: `pool5` = [:37], after the
fifth max-pool (the authors' `Vgg19_simple_api`, the default); `relu5_4` = [:36], "before
the 5th max-pool" (the paper's text); `conv5_4` = [:35], before its ReLU (ESRGAN's choice).

Input (`vgg_input`): `caffe` (the authors'): [0, 1] x 255, BGR, minus the Caffe mean pixel
(B, G, R) = (103.939, 116.779, 123.68), no std division. `torchvision`: [0, 1] RGB
normalised by the ImageNet mean/std, about 1/58 of the Caffe scale.

Weights (`vgg_weights`): `imagenet` (torchvision's IMAGENET1K_V1, read from the $TORCH_HOME
cache, never downloaded here: rocksr.nets.vgg_files provides it before training), a path to
a VGG19 state dict in torchvision's layout, a path to the Caffe-converted `vgg19.npy` the
authors' TensorLayer code loads (a pickled dict: layer name -> [W (HWIO), b]), or `random`
(offline demo/tests only). What the weights were trained on (`origin`): `caffe` (BGR,
0-255: vgg19.npy, or a state dict converted from Caffe such as `vgg19-d01eb7cb.pth`) or
`torchvision` (RGB); by default `.npy` files are caffe and the rest torchvision. When the
input's channel order differs from the weights', the first convolution's input channels are
reversed on load, so each colour meets the filters trained on it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

from rocksr.settings import VGG_IMAGENET_FILE as VGG_FILE

log = logging.getLogger(__name__)

VGG_URL = torchvision.models.VGG19_Weights.IMAGENET1K_V1.url  # .../VGG_FILE
ORIGINS = {"caffe": "BGR", "torchvision": "RGB"}  # what the weights were trained on
LAYERS = {"conv5_4": 35, "relu5_4": 36, "pool5": 37}
INPUTS = ("caffe", "torchvision")
PRECISIONS = ("fp32", "fp16")
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# vgg19.npy's convolution names, in the order of torchvision's features (config "E").
NPY_CONVS = [f"conv{block}_{i}" for block, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
             for i in range(1, n + 1)]


class VGGWeightsError(RuntimeError):
    """VGG19 weights cannot be had; the message says what to place where."""


def vgg_cache_path() -> Path:
    """Where torchvision looks for (and downloads) the ImageNet VGG19 weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG_FILE


def imagenet_file() -> Path:
    """torchvision's ImageNet weights in the torch cache; an error says where to place them
    when they are not there (nothing is downloaded here)."""
    path = vgg_cache_path()
    if not path.is_file():
        raise VGGWeightsError(
            f"the ImageNet VGG19 weights are not in the torch cache: place {VGG_FILE} (from "
            f"{VGG_URL}) at {path}, or set training.phase2.vgg_weights to a local path of "
            "that file or of the authors' vgg19.npy")
    return path


def _features() -> nn.Sequential:
    # Only the convolutional part: the classifier's 120 M parameters would cost seconds.
    return torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])


def default_origin(weights: str) -> str | None:
    """What `weights` were trained on when the config says `auto`: the authors' .npy is
    Caffe's, torchvision's ImageNet file and other state dicts torchvision's (None: random)."""
    if weights == "random":
        return None
    return "caffe" if Path(weights).suffix == ".npy" else "torchvision"


def load_features(weights: str, origin: str | None = None) -> tuple[nn.Sequential, str | None]:
    """VGG19's `features` (torchvision layout) with `weights`, and the channel order the
    weights were trained on ('RGB', 'BGR', or None for random weights); `origin` (caffe or
    torchvision; None: default_origin) says which."""
    if weights == "imagenet":
        weights, origin = str(imagenet_file()), "torchvision"
    features = _features()
    if weights == "random":
        log.warning("VGG19 has RANDOM weights (training.phase2.vgg_weights: random): "
                    "the VGG loss term is NOT the paper's perceptual loss; use only for "
                    "offline demos and tests")
        for m in features.modules():
            if isinstance(m, nn.Conv2d):  # torchvision's own VGG initialisation
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        return features, None
    path = Path(weights)
    if not path.is_file():
        raise VGGWeightsError(f"VGG19 weights file not found: {path} "
                              "(training.phase2.vgg_weights)")
    if path.suffix == ".npy":
        features.load_state_dict(npy_state_dict(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()
                                      if k.startswith("features.")})
        except Exception as exc:
            raise VGGWeightsError(f"{path}: not a VGG19 state dict in torchvision's layout "
                                  f"({type(exc).__name__}: {exc})") from None
    order = ORIGINS[origin or default_origin(weights)]
    log.info("VGG19 weights loaded from %s (%s-ordered first layer)", path, order)
    return features, order


def npy_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The Caffe-converted vgg19.npy as a torchvision `features` state dict.

    The file is a pickle, which can run code when loaded: it is read only from the path the
    user names in the config, never looked up or downloaded. W is stored HWIO (TensorFlow);
    torch wants OIHW.
    """
    try:
        layers = np.load(path, allow_pickle=True, encoding="latin1").item()
    except Exception as exc:
        raise VGGWeightsError(f"{path}: not a readable vgg19.npy (a pickled dict of "
                              f"layer -> [W, b]): {type(exc).__name__}: {exc}") from None
    if not isinstance(layers, dict):
        raise VGGWeightsError(f"{path}: expected a dict of layer -> [W, b], "
                              f"got {type(layers).__name__}")
    convs = [i for i, m in enumerate(_features()) if isinstance(m, nn.Conv2d)]
    state = {}
    for index, name in zip(convs, NPY_CONVS):
        if name not in layers:
            raise VGGWeightsError(f"{path}: layer {name} is missing")
        w, b = (np.asarray(a, dtype=np.float32) for a in layers[name][:2])
        if w.ndim != 4 or w.shape[:2] != (3, 3) or b.shape != (w.shape[3],):
            raise VGGWeightsError(f"{path}: layer {name} has W {w.shape} and b {b.shape}; "
                                  "expected W (3, 3, in, out) and b (out,)")
        state[f"{index}.weight"] = torch.from_numpy(w.transpose(3, 2, 0, 1).copy())
        state[f"{index}.bias"] = torch.from_numpy(b)
    return state


class VGGFeatures(nn.Module):
    """Frozen VGG19 features of grey [-1, 1] images, computed in fp32 (or fp16: `precision`).

    fp32 by default even under bf16 autocast: near convergence the SR-HR feature differences
    are small, and bf16 rounding biases their MSE upward (by up to ~18% at noise level 0.01,
    measured with random weights). fp16 keeps 3 more mantissa bits than bf16 but overflows
    above 65504 (training.phase2.vgg_precision; rocksr.bench.vgg_precision measures both).
    The input scaling always runs in fp32. The network is frozen but not under no_grad:
    gradients flow through it into the SR image.
    """

    def __init__(self, weights: str, layer: str = "pool5", input: str = "caffe",
                 origin: str | None = None, precision: str = "fp32"):
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"training.phase2.vgg_precision: {precision!r} is not one of "
                             f"{list(PRECISIONS)}")
        self.precision = precision
        if layer not in LAYERS:
            raise ValueError(f"training.phase2.vgg_layer: {layer!r} is not one of {list(LAYERS)}")
        if input not in INPUTS:
            raise ValueError(f"training.phase2.vgg_input: {input!r} is not one of {list(INPUTS)}")
        features, order = load_features(weights, origin)
        wanted = "BGR" if input == "caffe" else "RGB"
        if order is not None and order != wanted:
            with torch.no_grad():
                features[0].weight.copy_(features[0].weight.flip(1))
        self.input = input
        self.net = features[:LAYERS[layer]].eval().requires_grad_(False)
        if input == "caffe":
            mean, std = torch.tensor(CAFFE_MEAN_BGR), torch.ones(3)
        else:
            mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        self.register_buffer("mean", mean.view(1, 3, 1, 1))
        self.register_buffer("std", std.view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)  # always a fixed feature extractor

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] grey (N, 1, H, W) -> the network's 3-channel input. Grey has equal
        channels, so RGB->BGR only decides which mean each channel loses."""
        x = ((x.float() + 1.0) * 0.5).expand(-1, 3, -1, -1)
        if self.input == "caffe":
            x = x * 255.0
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            x = self.preprocess(x)
        with torch.autocast(x.device.type, dtype=torch.float16,
                            enabled=self.precision == "fp16", cache_enabled=False):
            return self.net(x)
