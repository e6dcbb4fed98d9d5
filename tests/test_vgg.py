"""VGG19 features as the authors computed them: Caffe input scale, the named layer, weight
sources (torchvision state dict, the authors' Caffe-converted vgg19.npy), fp32."""

from __future__ import annotations

import logging
import urllib.request

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rocksr.nets.vgg import (
    NPY_CONVS,
    VGGFeatures,
    VGGWeightsError,
    load_features,
    npy_state_dict,
    vgg_cache_path,
)


@pytest.fixture(scope="module")
def random_features() -> nn.Sequential:
    torch.manual_seed(1)
    return load_features("random")[0]


def grey(n=2, size=32) -> torch.Tensor:
    return torch.rand(n, 1, size, size) * 2 - 1


def test_caffe_input_is_0_255_bgr_minus_the_mean_pixel():
    x = grey()
    hand = torch.cat([(x + 1) / 2 * 255 - m for m in (103.939, 116.779, 123.68)], dim=1)
    assert torch.allclose(VGGFeatures("random", input="caffe").preprocess(x), hand, atol=1e-4)


def test_torchvision_input_is_imagenet_normalised():
    x = grey()
    hand = torch.cat([((x + 1) / 2 - m) / s
                      for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))], dim=1)
    assert torch.allclose(VGGFeatures("random", input="torchvision").preprocess(x), hand,
                          atol=1e-5)


def test_vgg_layer_picks_the_named_layer():
    torch.manual_seed(0)
    nets = {layer: VGGFeatures("random", layer=layer) for layer in ("conv5_4", "relu5_4",
                                                                       "pool5")}
    for net in nets.values():  # same seed, same weights: compare the layers' outputs
        net.load_state_dict(nets["pool5"].state_dict(), strict=False)
    x = grey()
    conv = nets["conv5_4"](x)
    assert conv.shape == (2, 512, 2, 2) and (conv < 0).any()  # before the ReLU
    assert isinstance(nets["conv5_4"].net[-1], nn.Conv2d)
    assert torch.equal(nets["relu5_4"](x), F.relu(conv))
    pool = nets["pool5"](x)
    assert pool.shape == (2, 512, 1, 1)  # 32 px / 2^5: no resize to 224
    assert torch.equal(pool, F.max_pool2d(F.relu(conv), 2))


def test_features_are_frozen_fp32_and_not_resized():
    net = VGGFeatures("random")
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training and not net.net.training
    with torch.autocast("cpu", dtype=torch.bfloat16):  # training's autocast stays outside
        out = net(grey())
    assert out.dtype == torch.float32


def hwio_layers(rng: np.random.Generator, channels: dict[str, tuple[int, int]]) -> dict:
    return {name: [rng.standard_normal((3, 3, cin, cout)).astype(np.float32),
                   rng.standard_normal(cout).astype(np.float32)]
            for name, (cin, cout) in channels.items()}


def test_npy_conv_equals_the_hwio_computation(tmp_path):
    """A converted conv computes what TensorFlow's conv2d computes with the HWIO kernel."""
    rng = np.random.default_rng(0)
    layers = hwio_layers(rng, {name: (3, 5) for name in NPY_CONVS})  # small, same structure
    path = tmp_path / "vgg19.npy"
    np.save(path, layers, allow_pickle=True)
    state = npy_state_dict(path)
    w, b = layers["conv2_1"]
    x = rng.standard_normal((3, 6, 7)).astype(np.float32)  # (in, H, W)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    hand = np.zeros((w.shape[3], 6, 7), np.float32)  # out[o,y,x] = sum W[h,w,i,o] in[i,y+h,x+w]
    for h in range(3):
        for v in range(3):
            hand += np.einsum("io,iyx->oyx", w[h, v], padded[:, h:h + 6, v:v + 7])
    hand += b[:, None, None]
    index = [i for i, m in enumerate(load_features("random")[0]) if isinstance(m, nn.Conv2d)][2]
    out = F.conv2d(torch.from_numpy(x)[None], state[f"{index}.weight"], state[f"{index}.bias"],
                   padding=1)
    assert torch.allclose(out[0], torch.from_numpy(hand), atol=1e-4)


def test_npy_weights_load_into_vgg19(tmp_path, random_features):
    """The authors' file layout, full size: every conv arrives, first layer kept BGR for
    caffe input and reversed for torchvision input."""
    convs = [m for m in random_features if isinstance(m, nn.Conv2d)]
    layers = {name: [c.weight.detach().numpy().transpose(2, 3, 1, 0), c.bias.detach().numpy()]
              for name, c in zip(NPY_CONVS, convs)}
    layers["fc6"] = [np.zeros((2, 2), np.float32), np.zeros(2, np.float32)]  # unused
    path = tmp_path / "vgg19.npy"
    np.save(path, layers, allow_pickle=True)
    caffe = VGGFeatures(str(path), layer="pool5", input="caffe")
    assert all(torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
               for a, b in zip([m for m in caffe.net if isinstance(m, nn.Conv2d)], convs))
    rgb = VGGFeatures(str(path), layer="pool5", input="torchvision")
    assert torch.equal(rgb.net[0].weight, convs[0].weight.flip(1))


def test_bad_npy_names_the_file_and_layer(tmp_path):
    layers = hwio_layers(np.random.default_rng(0), {name: (3, 4) for name in NPY_CONVS[:-1]})
    np.save(tmp_path / "short.npy", layers, allow_pickle=True)
    with pytest.raises(VGGWeightsError, match=r"short.npy: layer conv5_4 is missing"):
        npy_state_dict(tmp_path / "short.npy")
    layers = hwio_layers(np.random.default_rng(0), {name: (3, 4) for name in NPY_CONVS})
    layers["conv1_1"][0] = layers["conv1_1"][0][0]
    np.save(tmp_path / "flat.npy", layers, allow_pickle=True)
    with pytest.raises(VGGWeightsError, match=r"flat.npy: layer conv1_1 has W \(3, 3, 4\)"):
        npy_state_dict(tmp_path / "flat.npy")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(VGGWeightsError, match="junk.npy: not a readable vgg19.npy"):
        VGGFeatures(str(tmp_path / "junk.npy"))


def test_random_weights_are_logged_loudly(caplog):
    with caplog.at_level(logging.WARNING, logger="rocksr.nets.vgg"):
        load_features("random")
    assert "RANDOM" in caplog.text and "NOT the paper" in caplog.text


def never_download(monkeypatch):
    def download(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    monkeypatch.setattr(urllib.request, "urlopen", download)


def test_imagenet_is_read_from_the_torch_cache_and_never_downloaded(tmp_path, monkeypatch,
                                                                    random_features):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    never_download(monkeypatch)
    with pytest.raises(VGGWeightsError) as info:
        load_features("imagenet")
    expected = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert vgg_cache_path() == expected
    assert str(expected) in str(info.value) and "vgg_weights" in str(info.value)
    expected.parent.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in random_features.state_dict().items()}, expected)
    loaded, order = load_features("imagenet")
    assert order == "RGB" and torch.equal(loaded[0].weight, random_features[0].weight)


def test_caffe_weights_as_npy_and_as_a_converted_state_dict_give_the_same_features(
        tmp_path, random_features):
    """vgg19.npy (HWIO, the authors' file) and a state dict converted from Caffe in
    torchvision's layout (e.g. vgg19-d01eb7cb.pth): both BGR, 0-255; same features."""
    convs = [m for m in random_features if isinstance(m, nn.Conv2d)]
    np.save(tmp_path / "vgg19.npy", {name: [c.weight.detach().numpy().transpose(2, 3, 1, 0),
                                             c.bias.detach().numpy()]
                                      for name, c in zip(NPY_CONVS, convs)}, allow_pickle=True)
    torch.save({f"features.{k}": v for k, v in random_features.state_dict().items()},
               tmp_path / "vgg19-caffe.pth")
    x = grey(size=32)
    npy = VGGFeatures(str(tmp_path / "vgg19.npy"), input="caffe")
    pth = VGGFeatures(str(tmp_path / "vgg19-caffe.pth"), input="caffe", origin="caffe")
    assert torch.equal(npy(x), pth(x))
    # the same file taken for torchvision's (RGB) weights: its first layer is reversed
    rgb = VGGFeatures(str(tmp_path / "vgg19-caffe.pth"), input="caffe")
    assert torch.equal(rgb.net[0].weight, pth.net[0].weight.flip(1))


def test_torchvision_state_dict_loads_and_meets_caffe_input_in_bgr(tmp_path, random_features):
    path = tmp_path / "vgg19.pth"
    # torchvision's file layout: "features.N.weight" (classifier entries, absent here, are unused)
    torch.save({f"features.{k}": v for k, v in random_features.state_dict().items()}, path)
    loaded, order = load_features(str(path))
    assert order == "RGB"
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(),
                                                 random_features.state_dict().values()))
    caffe = VGGFeatures(str(path), input="caffe")  # RGB-trained filters, BGR input: reversed
    assert torch.equal(caffe.net[0].weight, random_features[0].weight.flip(1))
    assert torch.equal(VGGFeatures(str(path), input="torchvision").net[0].weight,
                       random_features[0].weight)


def test_bad_local_weights_name_the_file(tmp_path):
    with pytest.raises(VGGWeightsError, match="not found: .*nope.pth"):
        load_features(str(tmp_path / "nope.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(VGGWeightsError, match="junk.pth: not a VGG19 state dict"):
        load_features(str(tmp_path / "junk.pth"))
