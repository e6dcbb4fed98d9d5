"""Every configuration key, defined once: the typed dataclasses below.

Each field is one key of config.yaml: its type (allowed values as Literal), its default, its
bounds and its one-line doc, all in `key(...)`. From these classes come
- the JSON schema that validates the config at workflow start (`config_schema`, generated:
  a key without a default is required; `Config` is the whole file, a run's `model` and
  `training` overrides are partial copies of those blocks),
- each step's settings: rocksr.workflow.config builds a rule's slice (one function per step),
  the rule passes it as JSON, and the step's script parses it back once with `from_dict`,
  which names the key of anything missing, unknown, mistyped or out of bounds. A step's class
  inherits the blocks it reads (PhaseSettings: TrainingKeys + Phase2Keys + its run's phase,
  scale, seed and model), so a new key reaches the step with no other edit.
The rules between keys live in each class's `check`; config.validate runs them for every
enabled run when the workflow starts.

Defaults are the paper's and the tool's choices, and config.yaml states the same values
(tests/test_settings_schema.py). A key has none where it sizes the work for the data and
hardware at hand (batch, patch, image counts; epochs, iterations, learning rates) or names
which run or data: a config must state those. The predict keys all have one, so that
`rocksr predict` runs with none given.

Adding a training key takes three edits: (1) its field in TrainingKeys (both phases, e.g.
`cuda_graphs`), PhaseKeys (each phase's block) or Phase2Keys (phase 2 only), e.g.
    warmup: int = key("iterations of linear learning-rate warm-up", 0, minimum=0)
(2) the same key and default in config.yaml, with a comment for users; (3) the code that
reads it (`s.warmup` in rocksr.train). The schema, the runs' overrides, phase_settings and
the rules' JSON follow from the field. A key the trained weights do not depend on (how often
to log, say) adds `weights=False`: changing it then neither discards a resumable checkpoint
nor reruns the phase (PhaseSettings.split).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from rocksr import ROCK_TYPES, SPLITS

Device = Literal["auto", "cpu", "cuda"]
Scale = Literal[2, 4]
Degradation = Literal["default", "unknown"]
Dim = Literal[2, 3]
VggLayer = Literal["pool5", "relu5_4", "conv5_4"]
VggInput = Literal["caffe", "torchvision"]
VggOrigin = Literal["auto", "caffe", "torchvision"]
Vgg3d = Literal["none", "slices"]
Upsample = Literal["subpixel", "nearest"]
VGG_MIN_PATCH = {"pool5": 32, "relu5_4": 16, "conv5_4": 16}  # HR px for >= 1 output pixel
VGG_IMAGENET_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's VGG19_Weights.IMAGENET1K_V1
SPLIT_SIZES = {"train": 3200, "valid": 400, "test": 400}  # images per rock type, real dataset
MAX_SLICE_PIXELS = 16384**2  # predict.max_slice_pixels: generous for micro-CT slices
SPLIT_SIZES_3D = {"train": 800, "valid": 100, "test": 100}  # volumes per rock type (presumed)
NAME = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # a run's or external set's name (a folder, a label)
# What results/ holds besides the runs' folders: no run may take these names.
SHARED_RESULTS = ("benchmarks", "compare", "data", "download", "gpu-check", "logs", "predict",
                  "report.html", "synthetic", "weights")

# Bounds, as JSON Schema keywords (key(..., **POSITIVE)).
POSITIVE = {"exclusiveMinimum": 0}
FRACTION = {"exclusiveMinimum": 0, "maximum": 1}
SEED = {"minimum": 0, "maximum": 2**32 - 1}  # numpy's seeds are non-negative


def up_to(maximum: int | float) -> dict:
    """A positive number of at most `maximum`: an upper limit that stops a typo (10**9 for
    10**3) at the start, not by running out of memory or time."""
    return {"exclusiveMinimum": 0, "maximum": maximum}


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""


def key(doc: str, default: Any = dataclasses.MISSING, *, phase1: Any = None,
        weights: bool | Literal["cuda"] = True, **schema: Any) -> Any:
    """A dataclass field that is one config key: its one-line `doc`, its `default` (none: the
    config must give it) and its bounds as JSON Schema keywords (minimum=1, pattern=...,
    items={...} for a list's values). `phase1`: what phase 1 holds for a Phase2Keys key.
    `weights` (training keys): whether the trained weights depend on the value; "cuda": only
    on CUDA (PhaseSettings.split)."""
    metadata = {"doc": doc, "schema": schema, "phase1": phase1, "weights": weights}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default),
                                 metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Override:
    """Annotated marker: a run's overrides of `block`, any of its keys, merged over it."""
    block: type[Settings]


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base: typed construction from a mapping, checked against the field annotations."""

    @classmethod
    def from_dict(cls, data: Any, where: str = "settings") -> Self:
        """Build from a mapping (e.g. a rule's JSON slice); `where` prefixes every error's key."""
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {_name(data)}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        values = {}
        for name, field in fields.items():
            if name in data:
                values[name] = _typed(data[name], hints[name], f"{where}.{name}")
                _check_bounds(values[name], field.metadata.get("schema", {}), f"{where}.{name}")
            elif not _has_default(field):
                raise ConfigError(f"{where}.{name}: missing")
        settings = cls(**values)
        settings.check(where)
        return settings

    def check(self, where: str) -> None:
        """The rules between keys (none by default); raise ConfigError naming the key."""

    def to_dict(self) -> dict:
        """Plain JSON-ready values (tuples as lists), as from_dict reads them back."""
        return _plain(dataclasses.asdict(self))


def _plain(value):
    if isinstance(value, Settings):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _name(value) -> str:
    return "null" if value is None else f"{type(value).__name__} {value!r}"


def _typed(value, hint, where: str):
    """`value` as type `hint` (a number where a float is wanted becomes a float)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        return _typed(value, kinds[0], where) if len(kinds) == 1 else value
    if origin is Literal:
        if value not in args or isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if isinstance(hint, type) and issubclass(hint, Settings):
        return hint.from_dict(value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {_name(value)}")
        if origin is tuple and Ellipsis not in args and len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        kinds = [args[0]] * len(value) if origin is list or Ellipsis in args else args
        items = [_typed(v, k, f"{where}[{i}]") for i, (v, k) in enumerate(zip(value, kinds))]
        return origin(items)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {_name(value)}")
        return {str(k): _typed(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{where}: expected {hint.__name__}, got {_name(value)}")


BOUNDS = {"exclusiveMinimum": (lambda v, b: v > b, "must be more than"),
          "minimum": (lambda v, b: v >= b, "must be at least"),
          "exclusiveMaximum": (lambda v, b: v < b, "must be less than"),
          "maximum": (lambda v, b: v <= b, "must be at most")}


def _check_bounds(value, schema: Mapping, where: str) -> None:
    """A number's bounds and a string's pattern (the field's schema keywords), as the config
    schema checks them; a list's values against its `items` keywords."""
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_bounds(item, schema.get("items", {}), f"{where}[{i}]")
        return
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"],
                                                                        value):
        raise ConfigError(f"{where}: {value!r} does not match {schema['pattern']!r}")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    for keyword, (holds, words) in BOUNDS.items():
        if keyword in schema and not holds(value, schema[keyword]):
            bound = schema[keyword]
            text = "must be positive" if (keyword, bound) == ("exclusiveMinimum", 0) else (
                f"{words} {bound}")
            raise ConfigError(f"{where}: {text}, got {value}")


# --- the JSON schema, generated from the fields ---------------------------------------------

JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def config_schema() -> dict:
    """The JSON schema (draft 2020-12) of the whole workflow configuration."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "rocksr workflow configuration", **json_schema(Config)}


def json_schema(cls: type[Settings], partial: bool = False) -> dict:
    """One object with a property per field: its type, bounds, doc and default; the fields
    without a default are required. `partial`: a run's overrides: any of the keys (of nested
    blocks too), none required and no defaults (nothing is filled in)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    properties, required = {}, []
    for field in dataclasses.fields(cls):
        properties[field.name] = _field_schema(field, hints[field.name], partial)
        if not _has_default(field):
            required.append(field.name)
    schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if required and not partial:
        schema["required"] = required
    return schema


def _has_default(field: dataclasses.Field) -> bool:
    return (field.default is not dataclasses.MISSING
            or field.default_factory is not dataclasses.MISSING)


def _field_schema(field: dataclasses.Field, hint, partial: bool) -> dict:
    schema = _type_schema(hint, partial)
    extra = dict(field.metadata["schema"])
    values = schema.get("additionalProperties")
    if "properties" in extra and isinstance(values, dict):  # a mapping's named keys
        extra["properties"] = {k: _merge(values, v) for k, v in extra["properties"].items()}
    schema = {**_merge(schema, extra), "description": field.metadata["doc"]}
    override = typing.get_origin(hint) is Annotated
    if _has_default(field) and not partial:
        default = field.default
        if default is dataclasses.MISSING:
            default = field.default_factory()
        if default or not override:  # an empty override block fills nothing in
            schema["default"] = _plain(default)
    return schema


def _type_schema(hint, partial: bool) -> dict:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        marker = next(m for m in hint.__metadata__ if isinstance(m, Override))
        return json_schema(marker.block, partial=True)
    if origin in (typing.Union, types.UnionType):
        return _union([_type_schema(a, partial) if a is not type(None) else {"type": "null"}
                       for a in args])
    if origin is Literal:
        return {"enum": list(args)}
    if isinstance(hint, type) and issubclass(hint, Settings):
        return json_schema(hint, partial)
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0], partial)}
    if origin is tuple:
        if len(set(args)) != 1 or Ellipsis in args:
            raise TypeError(f"no schema for {hint}: a tuple's values must share one type")
        return {"type": "array", "items": _type_schema(args[0], partial),
                "minItems": len(args), "maxItems": len(args)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1], partial)}
    if hint is Any:
        return {}
    return {"type": JSON_TYPES[hint]}


def _union(schemas: list[dict]) -> dict:
    """One schema for `A | B`: enums joined, or types listed with each type's keywords
    (a JSON Schema keyword applies to its own type only)."""
    if all(set(s) <= {"enum"} or s == {"type": "null"} for s in schemas):
        return {"enum": [v for s in schemas for v in s.get("enum", [None])]}
    keywords = [k for s in schemas for k in s if k != "type"]
    if any("type" not in s for s in schemas) or len(keywords) != len(set(keywords)):
        raise TypeError(f"no schema for the union of {schemas}")
    merged = {k: v for s in schemas for k, v in s.items()}
    merged["type"] = [s["type"] for s in schemas]
    return merged


def _merge(base: dict, extra: dict) -> dict:
    """`base` with `extra`'s keywords; nested schemas merge."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# --- model and training ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ModelSettings(Settings):
    """The `model` block: the EDSR generator's size (the paper's)."""
    blocks: int = key("residual blocks of the generator", 16, **up_to(256))
    filters: int = key("feature channels of the generator", 64, **up_to(1024))
    activation: Literal["authors", "prelu"] = key(
        "authors (their code's: in 2D ReLU in the residual blocks, in 3D a PReLU from slope 0; "
        "a PReLU from 0 after each upsampler) | prelu (one PReLU per block and upsampler, "
        "slopes from 0.25)", "authors")
    upsample: Upsample | None = key("x2 stages: subpixel (conv, pixel shuffle) or nearest "
                                    "(conv, nearest-neighbour); null: the authors' choice for "
                                    "the run's dim (2D subpixel, 3D nearest)", None)


@dataclasses.dataclass(frozen=True)
class AugmentSettings(Settings):
    flips: bool = key("random horizontal and vertical flips of the training patches", False)
    rot90: bool = key("random 90-degree rotations of the training patches", False)


@dataclasses.dataclass(frozen=True)
class ValidationSettings(Settings):
    images: int = key("fixed subset of the valid split scored each epoch", **up_to(10_000))


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingKeys(Settings):
    """The `training` keys both phases share."""
    device: Device = key("auto: CUDA (an error if a GPU job cannot use it); cpu on purpose only",
                         "auto")
    precision: Literal["bf16", "fp32"] = key("bf16 autocast on CUDA (ignored on the CPU) | fp32",
                                             "bf16", weights="cuda")
    channels_last: bool = key("models and batches in channels_last memory format", True)
    compile: bool = key("torch.compile the generator, discriminator and VGG", False)
    cuda_graphs: bool = key("CUDA only: replay each training iteration as one CUDA graph "
                            "(rocksr.train.cuda_graphs)", True, weights="cuda")
    checkpoint_every: int = key("iterations between resumable checkpoints", 1000,
                                weights=False, **up_to(10**7))
    validation: ValidationSettings = key("what is scored after each epoch", weights=False)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhaseKeys(Settings):
    """The keys of each phase's block (training.phase1, training.phase2)."""
    epochs: int = key("epochs of this phase", **up_to(100_000))
    iters_per_epoch: int = key("iterations (batches) per epoch", **up_to(10**7))
    batch_size: int = key("patches per batch", **up_to(1024))
    lr_patch: int = key("LR patch side in pixels; HR patch = scale * lr_patch", minimum=4,
                        maximum=1024)
    lr: float = key("generator learning rate at the phase's epoch 0", **up_to(1))
    betas: tuple[float, float] = key("Adam betas", (0.9, 0.999),
                                     items={"minimum": 0, "exclusiveMaximum": 1})
    decay_factor: float = key("lr = lr * decay_factor ** (epoch / decay_epochs)", 0.1,
                              **FRACTION)
    decay_epochs: float = key("epochs over which the lr falls by decay_factor", 100.0,
                              **POSITIVE)
    augment: AugmentSettings = key("random flips and rotations of the patches",
                                   AugmentSettings())


@dataclasses.dataclass(frozen=True, kw_only=True)
class Phase2Keys(PhaseKeys):
    """training.phase2: each phase's keys and the GAN's (rocksr.nets.losses: generator loss
    L1 + vgg_weight * VGG + adv_weight * adversarial). Phase 1 has no GAN: its settings
    hold each GAN key's `phase1` value (None unless the field says)."""
    d_lr: float | None = key("discriminator learning rate at the phase's epoch 0", **up_to(1))
    vgg_weight: float = key("weight of the VGG19 feature MSE (the paper's alpha)", 1e-5,
                            phase1=0.0, minimum=0)
    adv_weight: float = key("weight of the adversarial loss (the paper's beta)", 1e-3,
                            phase1=0.0, minimum=0)
    vgg_weights: str | None = key("imagenet, a .pth or Caffe .npy file, or random (tests)",
                                  "imagenet", minLength=1)
    vgg_layer: VggLayer | None = key("VGG19 features: pool5 (authors' code), relu5_4 (paper's "
                                     "text) or conv5_4 (ESRGAN)", "pool5")
    vgg_input: VggInput | None = key("VGG input scale: caffe (authors') or torchvision",
                                     "caffe")
    vgg_precision: Literal["fp32", "fp16"] = key(
        "CUDA only: the VGG network in fp16 (MSE in fp32, gradient scaled by a power of two) "
        "or fp32", "fp32", phase1="fp32")
    d_sr_once: bool = key("one D pass on the SR batch serves G's adversarial and D's fake term",
                          True, phase1=True)
    vgg_weights_origin: VggOrigin | None = key(
        "what the vgg_weights were trained on: caffe (BGR, 0-255: vgg19.npy, or a state dict "
        "converted from it) or torchvision; auto: .npy caffe, else torchvision", "auto")
    balance: Literal["fixed", "ratio"] | None = key(
        "fixed alpha and beta (the paper's runs) | ratio: rescaled after each epoch to the "
        "target ratios of the L1 loss (the authors' --hyperFlag)", "fixed")
    feature_ratio: float | None = key("balance ratio: alpha x VGG = feature_ratio x L1 (epoch "
                                      "means)", 0.5, **POSITIVE)
    adv_ratio: float | None = key("balance ratio: beta x adversarial = adv_ratio x L1; <= 0: "
                                  "beta / mean D loss (tune against a D loss of 1)", 0.1)
    diagnose_every: int | None = key("iterations between diagnosed steps (gradient shares and "
                                     "cosines, averaged per epoch; the epoch's last step is "
                                     "always one)", 100, **up_to(10**6))
    vgg_3d: Vgg3d | None = key("3D runs: none (no VGG term, as the authors' 3D code) or slices "
                               "(VGG19 on the 2D slices along each axis)", "none")

    @classmethod
    def phase1_values(cls) -> dict[str, Any]:
        """The GAN keys (Phase2Keys' own) as phase 1 holds them."""
        own = {f.name for f in dataclasses.fields(PhaseKeys)}
        return {f.name: f.metadata["phase1"] for f in dataclasses.fields(cls)
                if f.name not in own}


@dataclasses.dataclass(frozen=True, kw_only=True)
class VggSettings(Settings):
    """What a run's VGG record says (rule vgg_record, rocksr.nets.vgg_files): its phase 2's
    VGG keys."""
    vgg_weights: str = key("training.phase2.vgg_weights", minLength=1)
    vgg_weights_origin: VggOrigin = key("training.phase2.vgg_weights_origin")
    vgg_input: VggInput = key("training.phase2.vgg_input")
    vgg_layer: VggLayer = key("training.phase2.vgg_layer")
    vgg_term: bool = key("whether phase 2 has a VGG term (not in a 3D run with vgg_3d: none)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingBlock(TrainingKeys):
    """The `training` block: shared keys, and each phase's."""
    phase1: PhaseKeys = key("phase 1 (SRCNN): L1 loss only")
    phase2: Phase2Keys = key("phase 2 (SRGAN): from the phase-1 generator, with the GAN losses")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhaseOfRun(Settings):
    """What a phase's settings take from the workflow: the phase and its run."""
    phase: Literal[1, 2] = key("1: L1 (SRCNN); 2: GAN (SRGAN)")
    scale: Scale = key("the run's upscaling factor (runs.*.scale)")
    seed: int = key("the run's seed (one of runs.*.seed)", **SEED)
    model: ModelSettings = key("the model block with the run's overrides")
    dim: Dim = key("2: slices; 3: volumes (runs.*.dim)", 2)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhaseSettings(Phase2Keys, TrainingKeys, PhaseOfRun):
    """Everything one training phase depends on (rocksr.train.loop), and nothing else: its run,
    the shared training keys and the phase's block."""

    @property
    def hr_patch(self) -> int:
        return self.scale * self.lr_patch

    @property
    def total_iterations(self) -> int:
        return self.epochs * self.iters_per_epoch

    @property
    def vgg_term(self) -> bool:
        """Whether phase 2 has a VGG term: always in 2D; in 3D only on slices (vgg_3d)."""
        return self.dim == 2 or self.vgg_3d == "slices"

    def split(self, device: str) -> tuple[dict, dict]:
        """(what the trained weights depend on, the rest) when training on a `device` ("cpu"
        or "cuda"), as to_dict() values. The first is what a checkpoint must match to be
        resumed, and what reruns the phase when it changes; the rest (checkpoint interval,
        validation subset; precision and cuda_graphs, ignored on the CPU) neither."""
        weights, rest = {}, {}
        for field in dataclasses.fields(self):
            depends = field.metadata.get("weights", True)
            part = weights if depends is True or depends == device else rest
            part[field.name] = _plain(getattr(self, field.name))
        return weights, rest

    def check(self, where: str) -> None:
        at = f"{where}.lr_patch"
        if self.phase == 1:
            return
        for name in Phase2Keys.phase1_values():
            if getattr(self, name) is None:
                raise ConfigError(f"{where}.{name}: missing (phase 2 needs it)")
        if self.dim == 3 and self.vgg_weight > 0 and self.vgg_3d == "none":
            raise ConfigError(f"{where}.vgg_weight: {self.vgg_weight} needs vgg_3d: slices in a "
                              "3D run (the authors' 3D code has no VGG term); or set it to 0")
        if self.hr_patch % 16:
            raise ConfigError(f"{at}: scale x lr_patch = {self.hr_patch} must be a multiple "
                              "of 16 (the discriminator halves its input 4 times)")
        if self.vgg_term and self.hr_patch < VGG_MIN_PATCH[self.vgg_layer]:
            raise ConfigError(f"{at}: scale x lr_patch = {self.hr_patch} px is too small for "
                              f"vgg_layer {self.vgg_layer}, which needs "
                              f"{VGG_MIN_PATCH[self.vgg_layer]} px or more")


# --- data -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SyntheticSettings(Settings):
    """The `synthetic` block: the offline stand-in archive (rocksr.data.synthetic)."""
    hr_size: int = key("HR side in pixels (real data: 500), a multiple of 4", minimum=16,
                       maximum=4096)
    seed: int = key("seed of the generated images", **SEED)
    counts: dict[str, int] = key(
        "images per rock type in each split (at most the real dataset's)",
        required=list(SPLITS), additionalProperties=False,
        properties={s: {"minimum": 1, "maximum": n} for s, n in SPLIT_SIZES.items()})

    def check(self, where: str) -> None:
        if self.hr_size <= 0 or self.hr_size % 4:
            raise ConfigError(f"{where}.hr_size: must be a positive multiple of 4 (the largest "
                              f"scale), got {self.hr_size}")
        _same_keys(f"{where}.counts", self.counts, SPLITS)


@dataclasses.dataclass(frozen=True)
class Synthetic3DSettings(SyntheticSettings):
    """The `synthetic_3d` block: the offline stand-in of the 3D archive, volumes of `hr_size`
    voxels a side."""
    counts: dict[str, int] = key(
        "volumes per rock type in each split (at most the real dataset's, presumed)",
        required=list(SPLITS), additionalProperties=False,
        properties={s: {"minimum": 1, "maximum": n} for s, n in SPLIT_SIZES_3D.items()})


@dataclasses.dataclass(frozen=True)
class ResplitSettings(Settings):
    ratios: dict[str, float] = key("share of each rock type's images in each split",
                                   required=list(SPLITS), additionalProperties=False,
                                   properties=dict.fromkeys(SPLITS, FRACTION))
    seed: int = key("seed of the shuffle before the re-split", **SEED)

    def check(self, where: str) -> None:
        _same_keys(f"{where}.ratios", self.ratios, SPLITS)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SplitKeys(Settings):
    """The `dataset` keys that shape every data product."""
    rock_types: list[str] = key("rock types used, of carbonate, coal, sandstone",
                                list(ROCK_TYPES), minItems=1, uniqueItems=True,
                                items={"enum": list(ROCK_TYPES)})
    resplit: ResplitSettings | None = key("null: the dataset's own train/valid/test split; or "
                                          "a seeded re-split by ratios", None)

    def check(self, where: str) -> None:
        unknown = [r for r in self.rock_types if r not in ROCK_TYPES]
        if unknown or not self.rock_types:
            raise ConfigError(f"{where}.rock_types: {self.rock_types} must name some of "
                              f"{', '.join(ROCK_TYPES)}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PortalBlock(Settings):
    """dataset.portal: the Digital Porous Media Portal download."""
    api: str = key("download API of the portal's published project",
                   "https://digitalporousmedia.org/api/datafiles/tapis/download/public/"
                   "drp.project.published.DRP-215/", pattern="^https://")
    path: str = key("the archive's path in the project",
                    "2D Dataset/DeepRock-SR-2D/DeepRockSR-2D.zip", minLength=1)
    path_3d: str | None = key("the 3D archive's path in the project; null: not known here, "
                              "the download step says where to get it", None, minLength=1)
    timeout_s: float = key("seconds without data before the download gives up", 60.0,
                           **up_to(3600))


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetBlock(SplitKeys):
    """The `dataset` block: where DeepRockSR-2D.zip comes from, and what of it is used."""
    source: Literal["portal", "synthetic"] = key("portal (download) or synthetic (offline)",
                                                 "portal")
    archive: str | None = key("a DeepRockSR-2D.zip on disk, read instead of the source", None,
                              minLength=1)
    sha256: str | None = key("the downloaded archive's sha256 (another stops the workflow); "
                             "null: any", None, pattern="^[0-9a-fA-F]{64}$")
    archive_3d: str | None = key("a DeepRockSR-3D.zip on disk, read by the dim-3 runs instead "
                                 "of the source", None, minLength=1)
    portal: PortalBlock = key("where the portal source downloads from", PortalBlock())


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataSettings(SplitKeys):
    """One data product (rocksr.data.split, folder results/data/x{scale}_{degradation}/):
    which LR images pair with the HR ones, of which rock types, split how."""
    scale: Scale = key("the runs' upscaling factor (runs.*.scale)")
    degradation: Degradation = key("the runs' LR images (runs.*.degradation)")
    dim: Dim = key("2: the 2D archive's slices; 3: the 3D archive's volumes (runs.*.dim)", 2)


def _same_keys(where: str, mapping: Mapping, keys: tuple[str, ...]) -> None:
    if set(mapping) != set(keys):
        raise ConfigError(f"{where}: needs exactly the keys {', '.join(keys)}, got "
                          f"{', '.join(mapping) or 'none'}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunBlock(Settings):
    """One entry of `runs`: a run writes results/{run}/."""
    enabled: bool = key("false: kept in the config, not run", True)
    scale: Scale = key("upscaling factor: which LR images of the dataset")
    degradation: Degradation = key("which LR images: bicubic (default) or unknown kernels")
    dim: Dim = key("2: slices (DeepRockSR-2D); 3: volumes (DeepRockSR-3D), training_3d applies",
                   2)
    seed: int | list[int] = key("one seed, or a list: one run per seed, named {run}-s{seed}",
                                minItems=1, uniqueItems=True, items=SEED, **SEED)
    model: Annotated[dict[str, Any], Override(ModelSettings)] = key(
        "this run's overrides of the `model` block", {})
    training: Annotated[dict[str, Any], Override(TrainingBlock)] = key(
        "this run's overrides of the `training` block", {})


# --- evaluation, prediction and figures --------------------------------------------------

@dataclasses.dataclass(frozen=True)
class IntensitySettings(Settings):
    """The `intensity` block: how 16-bit pixel values map to [0, 1] (rocksr.imaging.intensity)."""
    window: Literal["full", "percentile", "minmax"] = key(
        "full (0-65535), percentile (of the input; clips its tails) or minmax (of the input; "
        "clips nothing)", "full")
    percentiles: tuple[float, float] = key("the percentile window's bounds", (0.5, 99.5),
                                           items={"minimum": 0, "maximum": 100})

    def check(self, where: str) -> None:
        lo, hi = self.percentiles
        if not 0 <= lo < hi <= 100:
            raise ConfigError(f"{where}.percentiles: {list(self.percentiles)} must rise within "
                              "0-100")


@dataclasses.dataclass(frozen=True)
class ExternalSet(Settings):
    name: str = key("label of the set's rows in summary.csv (not a rock type)", pattern=NAME,
                    **{"not": {"enum": list(ROCK_TYPES)}})
    path: str = key("an image, a multi-page TIFF stack or a folder of slices", minLength=1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluationKeys(Settings):
    """The `evaluation` block (rocksr.eval.evaluate)."""
    splits: list[Literal["train", "valid", "test"]] = key(
        "splits scored", ["valid", "test"], minItems=1, uniqueItems=True)
    batch_size: int = key("images per inference batch", **up_to(1024))
    clamp: bool = key("clamp SR to the data range before scoring", True)
    quantize: bool = key("round SR to 8 bits before scoring, as a saved PNG would be", True)
    device: Device = key("auto | cpu | cuda, as training.device", "auto")
    external: list[ExternalSet] = key("external HR test sets, scored like the splits", [])


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluationSettings(EvaluationKeys):
    intensity: IntensitySettings | None = key("the intensity block (external sets need it)",
                                              None)

    def check(self, where: str) -> None:
        names = [e.name for e in self.external]
        clash = sorted({n for n in names if names.count(n) > 1})
        if clash:
            raise ConfigError(f"{where}.external: the name(s) {', '.join(clash)} appear twice")
        if self.external and self.intensity is None:
            raise ConfigError(f"{where}.intensity: missing (external sets need it)")


@dataclasses.dataclass(frozen=True)
class PredictKeys(Settings):
    """The `predict` keys of the predict step and of `rocksr predict` (rocksr.infer.predict):
    tiled inference (rocksr.infer.tiling) and the input checks."""
    tile: int = key("LR tile side with 2D models; memory grows with (tile + 2 overlap)^2",
                    256, minimum=8, maximum=16384)
    tile_3d: int = key("LR cube side (and z-slab depth) with 3D models; memory grows with "
                       "(tile_3d + 2 overlap)^3", 32, minimum=4, maximum=4096)
    overlap: int = key("LR context around each tile (at least the receptive radius)", 40,
                       minimum=0, maximum=4096)
    bicubic: bool = key("also write the baseline beside each model's output: bicubic, "
                        "tricubic with 3D models", True)
    max_slice_pixels: int = key("largest slice read, in pixels (checked from the file headers "
                                "before anything is allocated)", MAX_SLICE_PIXELS, minimum=1,
                                maximum=2**40)
    device: Device = key("auto: CUDA when usable (an error if a GPU job cannot use it) | cpu | "
                         "cuda", "auto")


@dataclasses.dataclass(frozen=True)
class PredictSettings(PredictKeys):
    intensity: IntensitySettings = key("the intensity block", IntensitySettings())


@dataclasses.dataclass(frozen=True, kw_only=True)
class PredictBlock(PredictKeys):
    """The `predict` block: your own images, super-resolved by `snakemake predict`."""
    input: str | list[str] | None = key(
        "LR images, TIFF stacks or folders (a path, a glob, or a list of them); null: nothing "
        "to predict", None, minLength=1, minItems=1, items={"minLength": 1})
    model: str | None = key("a trained generator file (.safetensors from `snakemake export`, "
                            "or a generator.pt), used as is; null: each enabled run's",
                            None, minLength=1)
    train: bool = key("with no model: train the enabled runs that have none (false: stop and "
                      "say so)", False)


@dataclasses.dataclass(frozen=True)
class FigureSettings(Settings):
    """Figures that take nothing but their resolution."""
    dpi: int = key("resolution of every figure's PNG", 150, **up_to(1200))


@dataclasses.dataclass(frozen=True)
class BoxSettings(Settings):
    """Figure 2's crop square, as fractions of the image side."""
    x: float = key("left edge", minimum=0, exclusiveMaximum=1)
    y: float = key("top edge", minimum=0, exclusiveMaximum=1)
    size: float = key("side", **FRACTION)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Figure2Keys(Settings):
    """figures.figure2: the images and crop shown."""
    ids: dict[str, int] = key("test image id per rock type",
                              propertyNames={"enum": list(ROCK_TYPES)},
                              additionalProperties={"minimum": 1, "maximum": 4000})
    box: BoxSettings = key("crop square as fractions of the image side")
    diff_range: dict[str, float] = key("colour-bar top of the |SR - HR| maps per rock type",
                                       propertyNames={"enum": list(ROCK_TYPES)},
                                       additionalProperties=POSITIVE)

    def check_rocks(self, rocks: list[str], where: str) -> None:
        """Every rock type drawn needs an image id and a colour-bar top."""
        for name in ("ids", "diff_range"):
            missing = [r for r in rocks if r not in getattr(self, name)]
            if missing:
                raise ConfigError(f"{where}.{name}: no entry for rock type {', '.join(missing)}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Figure2Settings(Figure2Keys, FigureSettings):
    """Figure 2's keys and the figures' dpi."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class OrthosliceKeys(Settings):
    """figures.orthoslices: the volumes the 3D runs' slice figure shows."""
    ids: dict[str, int] = key("test volume id per rock type",
                              propertyNames={"enum": list(ROCK_TYPES)},
                              additionalProperties={"minimum": 1, "maximum": 1000})
    diff_range: dict[str, float] = key("colour-bar top of the |SR - HR| maps per rock type",
                                       propertyNames={"enum": list(ROCK_TYPES)},
                                       additionalProperties=POSITIVE)
    check_rocks = Figure2Keys.check_rocks  # the same rule: an id and a bar top per rock type


@dataclasses.dataclass(frozen=True, kw_only=True)
class OrthosliceSettings(OrthosliceKeys, FigureSettings):
    """The orthogonal-slices figure's keys and the figures' dpi."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class FiguresBlock(FigureSettings):
    """The `figures` block."""
    figure2: Figure2Keys = key("the paper's Figure 2")
    orthoslices: OrthosliceKeys = key("the 3D runs' slices through one volume per rock type")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CompareSettings(FigureSettings):
    """The runs side by side (rocksr.eval.compare): each run's description
    (config.run_description), in the order of the summaries given."""
    runs: list[dict[str, Any]] = key("each run's description")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SlurmBlock(Settings):
    """The `slurm` block (profiles/slurm)."""
    signal_before_limit_s: int = key("SIGTERM this many seconds before a training job's time "
                                     "limit, to checkpoint; 0: none", 300, minimum=0,
                                     maximum=86_400)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(Settings):
    """The whole workflow configuration (config.yaml, overlays merged over it)."""
    dataset: DatasetBlock = key("the DeepRock-SR archive and what of it is used")
    synthetic: SyntheticSettings = key("the offline stand-in archive (dataset.source)")
    synthetic_3d: Synthetic3DSettings = key("the offline stand-in 3D archive (dim-3 runs)")
    runs: dict[str, RunBlock] = key(
        "named runs; each writes results/{run}/", minProperties=1,
        propertyNames={"pattern": NAME, "not": {"enum": list(SHARED_RESULTS)}})
    model: ModelSettings = key("the generator's size")
    training: TrainingBlock = key("both training phases")
    # The authors' 3D training: sr3dydw.py's --width/--height/--depth 64 (HR), --batch-size
    # 16, no VGG term in 3D; the schedule as in 2D.
    training_3d: Annotated[dict[str, Any], Override(TrainingBlock)] = key(
        "what a dim-3 run's training changes from `training` (the authors' 3D defaults: HR "
        "cubes of 64 at x4, batch 16, no VGG term), under the run's own overrides",
        {"phase1": {"batch_size": 16, "lr_patch": 16},
         "phase2": {"batch_size": 16, "lr_patch": 16, "vgg_weight": 0.0}})
    evaluation: EvaluationKeys = key("scoring against bicubic per rock type")
    figures: FiguresBlock = key("the paper's figures")
    slurm: SlurmBlock = key("SLURM cluster jobs")
    predict: PredictBlock = key("super-resolving your own images")
    intensity: IntensitySettings = key("16-bit pixel values to [0, 1] (predict, external sets)")
