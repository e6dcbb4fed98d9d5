"""The VGG19 weights of a run's phase 2: provided before any training, verified, described.

Phase 2 needs its VGG19 weights only when it starts, possibly hours after phase 1 started,
and on a compute node that may have no network. So the workflow resolves them first:
- `provide` (rule vgg_weights, a local rule: under SLURM it runs on the login node) puts the
  configured weights into results/weights/<name>, beside `<name>.sha256`. `imagenet` is
  copied from the $TORCH_HOME cache when it is there, else downloaded from torchvision's URL
  with a timeout (a cut transfer leaves `<name>.part`, which the next run continues), and in
  both cases checked against the sha256 prefix in torchvision's file name; a local path is
  copied. Offline, the error names the file and where to place it.
- `VggRecord` (rule vgg_record, results/{run}/vgg_weights.yaml) says what a run's VGG term
  is: the verified copy and its sha256, what the weights were trained on, the input scale
  and layer, and whether that is the authors' exact VGG term (Caffe-trained weights with
  `caffe` input at pool5; any other pairing weighs alpha by an unmeasured factor). Phase 2
  checks the copy against the record's sha256 before loading it (`verify`), and states the
  record in its log and metrics; the report shows it.
"""

from __future__ import annotations

import dataclasses
import http.client
import logging
import re
import shutil
from pathlib import Path
from typing import Literal

import yaml

from rocksr.data.download import CHUNK, DownloadError, fetch, https_opener
from rocksr.fileio import atomic_path, sha256_file, write_sha256
from rocksr.nets.vgg import (
    VGG_FILE,
    VGG_URL,
    VGGWeightsError,
    default_origin,
    imagenet_file,
    vgg_cache_path,
)
from rocksr.settings import ConfigError, PhaseSettings, Settings, VggInput, VggLayer, key

log = logging.getLogger(__name__)

TRAINED = {"caffe": "Caffe-trained (BGR input, 0-255 minus the mean pixel)",
           "torchvision": "torchvision-trained (RGB input, [0, 1] normalised)"}
INPUT = {"caffe": "0-255, BGR, minus the Caffe mean pixel",
         "torchvision": "[0, 1] normalised by the ImageNet mean and std"}


def hub_hash(name: str) -> str | None:
    """The sha256 prefix in a torch.hub file name (`<name>-<hex>.<ext>`), if it has one."""
    match = re.search(r"-([0-9a-f]{8,})\.", name)
    return match[1] if match else None


def provide(source: str, out: str | Path, url: str = VGG_URL, timeout: float = 60.0) -> str:
    """Put the weights `source` (imagenet or a local path) at `out`, beside `out`.sha256;
    return the sha256. `url`: where imagenet comes from when the torch cache lacks it (its
    file name carries the sha256 prefix the file must have)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if source == "imagenet":
        expected = hub_hash(Path(url).name)
        cached = vgg_cache_path().with_name(Path(url).name)
        if cached.is_file():
            log.info("copying the ImageNet VGG19 weights from the torch cache, %s", cached)
            digest = _copy(cached, out, expected)
        else:
            digest = _download(url, out, timeout, expected)
    else:
        if not Path(source).is_file():
            raise VGGWeightsError(f"VGG19 weights file not found: {source} "
                                  "(training.phase2.vgg_weights)")
        digest = _copy(Path(source), out, None)
    write_sha256(out, digest)
    log.info("VGG19 weights %s: %s (%d bytes, sha256 %s)", source, out, out.stat().st_size,
             digest)
    return digest


def _not_torchvisions(what: str, digest: str, expected: str) -> VGGWeightsError:
    return VGGWeightsError(f"{what}: its sha256 {digest} does not start with {expected}, as "
                           f"torchvision's {VGG_FILE} does: not that file")


def _copy(source: Path, out: Path, expected: str | None) -> str:
    with atomic_path(out) as tmp:  # nothing is left under `out` if the check fails
        shutil.copyfile(source, tmp)
        digest = sha256_file(tmp)
        if expected is not None and not digest.startswith(expected):
            raise _not_torchvisions(str(source), digest, expected)
    return digest


def _download(url: str, out: Path, timeout: float, expected: str | None) -> str:
    part = out.with_name(out.name + ".part")
    try:
        # loopback http allowed: the tests' server stands in for torchvision's https URL
        complete = fetch(url, part, timeout, CHUNK, https_opener(allow_http_loopback=True))
    except (OSError, http.client.HTTPException, DownloadError) as exc:  # offline, timeouts
        reason = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        raise VGGWeightsError(_advice(url, reason, part)) from None
    if not complete:
        raise VGGWeightsError(_advice(url, "the transfer ended before the end of the file",
                                      part))
    digest = sha256_file(part)
    if expected is not None and not digest.startswith(expected):
        part.unlink()  # resuming would only extend a wrong file
        raise _not_torchvisions(f"{url} (downloaded, removed)", digest, expected)
    part.replace(out)
    return digest


def _advice(url: str, reason: str, part: Path) -> str:
    kept = f" The partial download {part} is kept and continues on the next run." if (
        part.exists()) else ""
    return (f"could not download the ImageNet VGG19 weights {VGG_FILE} from {url} ({reason}). "
            f"Without network: fetch that file on another machine and place it at "
            f"{vgg_cache_path()} (the torch cache, $TORCH_HOME), or anywhere and set "
            f"training.phase2.vgg_weights (or a run's runs.<run>.training.phase2.vgg_weights) "
            f"to its path.{kept}")


# --- what a run's VGG term is -------------------------------------------------------------

@dataclasses.dataclass(frozen=True, kw_only=True)
class VggRecord(Settings):
    """A run's VGG19 term (results/{run}/vgg_weights.yaml), as phase 2 loads and computes it."""
    source: str = key("training.phase2.vgg_weights: imagenet, random or a path")
    file: str | None = key("the verified copy phase 2 loads; null: random weights")
    sha256: str | None = key("the copy's sha256, recorded when it was provided")
    origin: Literal["caffe", "torchvision", "random", "none"] = key(
        "what the weights were trained on; none: no VGG term (a 3D run with vgg_3d: none)")
    input: VggInput = key("training.phase2.vgg_input")
    layer: VggLayer = key("training.phase2.vgg_layer")
    exact: bool = key("the authors' exact VGG term: Caffe-trained weights, caffe input, pool5")

    @property
    def weights(self) -> str:
        """What rocksr.nets.vgg loads: the file, or `random`."""
        return self.file or "random"

    def describe(self) -> str:
        """One line for logs and metrics."""
        if self.origin == "none":
            return ("no VGG term: a 3D run with vgg_3d: none, as the authors' 3D code (set "
                    "vgg_3d: slices for one on the volume's slices)")
        if self.file is None:
            weights = "RANDOM weights (not the paper's perceptual loss)"
        else:
            weights = f"weights {self.file} (sha256 {self.sha256}), {TRAINED[self.origin]}"
        verdict = ("the authors' exact VGG term" if self.exact else "NOT the authors' exact VGG "
                   "term (theirs: Caffe-trained weights, caffe input, pool5)")
        return (f"VGG19 {weights}; input {self.input} ({INPUT[self.input]}); layer "
                f"{self.layer}: {verdict}")


def make_record(source: str, origin: str, input: str, layer: str, file: str | Path | None = None,
                sha256: str | None = None) -> VggRecord:
    """The record of weights `source` with the setting vgg_weights_origin `origin` (auto:
    by the file's kind), provided as `file` with digest `sha256` (None for random); source
    `none`: no VGG term."""
    resolved = source if source in ("random", "none") else (
        default_origin(source) if origin == "auto" else origin)
    return VggRecord(source=source, file=None if file is None else str(file), sha256=sha256,
                     origin=resolved, input=input, layer=layer,
                     exact=(resolved, input, layer) == ("caffe", "caffe", "pool5"))


def settings_record(s: PhaseSettings) -> VggRecord:
    """The record of phase-2 settings `s` without the workflow's provided copy (a step run
    by hand): the torch cache's or the named file, hashed here."""
    if s.vgg_weights == "random" or not s.vgg_term:
        return make_record("random" if s.vgg_term else "none", "auto", s.vgg_input, s.vgg_layer)
    file = imagenet_file() if s.vgg_weights == "imagenet" else Path(s.vgg_weights)
    if not file.is_file():
        raise VGGWeightsError(f"VGG19 weights file not found: {file} "
                              "(training.phase2.vgg_weights)")
    return make_record(s.vgg_weights, s.vgg_weights_origin, s.vgg_input, s.vgg_layer, file,
                       sha256_file(file))


def write_record(path: str | Path, record: VggRecord) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(record.to_dict(), sort_keys=False))


def read_record(path: str | Path) -> VggRecord:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise VGGWeightsError(f"{path}: not a readable VGG record ({exc})") from None
    try:
        return VggRecord.from_dict(data, str(path))
    except ConfigError as exc:
        raise VGGWeightsError(str(exc)) from None


def verify(record: VggRecord, s: PhaseSettings) -> None:
    """Before phase 2 loads the weights: the record is for the settings `s`, and its file is
    the one that was verified when it was provided."""
    source = s.vgg_weights if s.vgg_term else "none"
    for name, value in (("vgg_weights", record.source), ("vgg_input", record.input),
                        ("vgg_layer", record.layer)):
        if (source if name == "vgg_weights" else getattr(s, name)) != value:
            raise VGGWeightsError(f"the VGG record says {name} {value}, the settings "
                                  f"{getattr(s, name)}: rerun its rule vgg_record")
    if record.file is None:
        return
    digest = sha256_file(record.file) if Path(record.file).is_file() else "no file"
    if digest != record.sha256:
        raise VGGWeightsError(f"{record.file}: sha256 {digest} is not the {record.sha256} "
                              "recorded when it was provided; delete it and its .sha256, and "
                              "rerun to provide it again")
