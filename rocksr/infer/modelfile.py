"""Models you can name and move: a trained generator as one self-describing file.

`export` turns a workflow generator (`generator.pt`) into `<name>.safetensors`: the weights
as safetensors (no pickle: reading it runs no code) and, in the file header's metadata under
"rocksr", a JSON card: the format and its version, the architecture, the scale, the
degradation and training data of the run that trained it, the pixel convention the network
expects, the project version and the sha256 of the weights. `<name>.safetensors.sha256`
beside it holds the file's sha256 (in sha256sum's format).

`open_model` reads such a file, or a workflow `generator.pt` (with torch's weights_only
loader: no code runs either), and refuses, with an error naming the file, anything that
does not match: another format or a newer version of it, another pixel convention, a card
that contradicts itself (scale against architecture), weights whose names or shapes do not
fit the architecture or whose digest differs from the card's, a file whose sha256 differs
from the one beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from rocksr import __version__
from rocksr.fileio import atomic_path, sha256_file
from rocksr.nets.models import Generator, generator_of, load_model

FORMAT = "rocksr-generator"
VERSION = 1  # of the card's layout; a file of a newer one is refused
SUFFIX = ".safetensors"
KEY = "rocksr"  # the metadata key of the card
# What the network reads and writes (rocksr.imaging.pixels); an exported file states it.
PIXELS = "grey, 1 channel; [0, 1] pixels enter as 2x - 1, leave through tanh in [-1, 1]"


def weights_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def export(generator_pt: str | Path, out: str | Path, card: dict) -> dict:
    """Write the generator of `generator_pt` with `card` (config.model_card: name, phase,
    run, data, dataset) to `out` and its sha256 beside it; return the file's card with its
    sha256."""
    generator_pt, out = Path(generator_pt), Path(out)
    generator = load_model(generator_pt)
    if not isinstance(generator, Generator):
        raise ValueError(f"{generator_pt}: holds a {type(generator).__name__}, not a generator")
    meta = torch.load(generator_pt, map_location="cpu", weights_only=True).get("meta", {})
    tensors = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    header = {"format": FORMAT, "version": VERSION, "rocksr_version": __version__,
              "name": card["name"], "kind": "Generator", "arch": generator.arch,
              "scale": generator.scale, "degradation": card["run"]["degradation"],
              "pixels": PIXELS, "weights_sha256": weights_digest(tensors),
              "training": {**card, "iteration": meta.get("iteration")},
              "exported_from": {"file": generator_pt.name, "sha256": sha256_file(generator_pt)}}
    with atomic_path(out) as tmp:
        save_file(tensors, tmp, metadata={KEY: json.dumps(header, sort_keys=True)})
    digest = sha256_file(out)
    with atomic_path(sidecar(out)) as tmp:
        tmp.write_text(f"{digest}  {out.name}\n")
    return {**header, "sha256": digest}


def open_model(path: str | Path) -> tuple[Generator, dict]:
    """The generator of an exported file or a workflow generator.pt, and what it says of
    itself (for a generator.pt: its architecture), with the file and its sha256."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.suffix != SUFFIX:
        generator = load_model(path)
        if not isinstance(generator, Generator):
            raise ValueError(f"{path}: holds a {type(generator).__name__}, not a generator")
        card = {"format": "generator.pt", "name": path.stem, "arch": generator.arch,
                "scale": generator.scale}
        return generator, {**card, "file": os.path.abspath(path), "sha256": sha256_file(path)}
    card, tensors = _read(path)
    _check_card(path, card)
    if weights_digest(tensors) != card["weights_sha256"]:
        raise ValueError(f"{path}: its weights differ from those its card describes (sha256 "
                         f"{card['weights_sha256'][:12]}...): a damaged or altered file")
    try:
        generator = generator_of(card["arch"])
        generator.load_state_dict(tensors)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{path}: its weights do not fit the architecture its card states "
                         f"({card['arch']}): {str(exc).splitlines()[0]}") from None
    digest = sha256_file(path)
    if sidecar(path).is_file():
        stated = sidecar(path).read_text().split(maxsplit=1)[:1]
        if stated != [digest]:
            raise ValueError(f"{path}: its sha256 is {digest}, but {sidecar(path).name} says "
                             f"{stated[0] if stated else 'nothing'}: a damaged or altered file")
    return generator, {**card, "file": os.path.abspath(path), "sha256": digest}


def _read(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from None
    if KEY not in metadata:
        raise ValueError(f"{path}: a safetensors file without a rocksr card: not a model "
                         "exported by rocksr (`snakemake export`)")
    try:
        card = json.loads(metadata[KEY])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: its rocksr card is not valid JSON ({exc})") from None
    if not isinstance(card, dict):
        raise ValueError(f"{path}: its rocksr card is not a mapping")
    return card, tensors


def _check_card(path: Path, card: dict) -> None:
    if card.get("format") != FORMAT or card.get("kind") != "Generator":
        raise ValueError(f"{path}: not a rocksr generator (format {card.get('format')!r}, "
                         f"kind {card.get('kind')!r})")
    version = card.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ValueError(f"{path}: a model file of format version {version}, written by "
                         f"rocksr {card.get('rocksr_version')}; this rocksr ({__version__}) "
                         f"reads up to version {VERSION}: upgrade rocksr")
    if card.get("pixels") != PIXELS:
        raise ValueError(f"{path}: its network expects pixels as {card.get('pixels')!r}, not "
                         f"as this rocksr gives them ({PIXELS!r})")
    arch = card.get("arch")
    if not isinstance(arch, dict) or arch.get("scale") != card.get("scale") \
            or arch.get("channels", 1) != 1 or "weights_sha256" not in card:
        raise ValueError(f"{path}: its card contradicts itself or is incomplete (scale "
                         f"{card.get('scale')}, architecture {arch})")
