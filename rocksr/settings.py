"""One contract per step: the settings each step's script accepts, as typed dataclasses.

The config schema (config.schema.yaml) describes what a user may write; these classes describe
what a step reads. rocksr.workflow.config builds each rule's slice (one function per step), the rule
passes it as JSON, and the step's script parses it back with `from_dict`, which names the key
of anything missing, unknown or mistyped. The rules between keys live in each class's
`check`, so config.validate runs them for every enabled run when the workflow starts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Self

from rocksr import ROCK_TYPES, SPLITS

Device = Literal["auto", "cpu", "cuda"]
VggLayer = Literal["pool5", "relu5_4", "conv5_4"]
VGG_MIN_PATCH = {"pool5": 32, "relu5_4": 16, "conv5_4": 16}  # HR px for >= 1 output pixel


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""


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
            elif (field.default is dataclasses.MISSING
                  and field.default_factory is dataclasses.MISSING):
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


def _positive(where: str, **values: float) -> None:
    for key, value in values.items():
        if value <= 0:
            raise ConfigError(f"{where}.{key}: must be positive, got {value}")


# --- training ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ModelSettings(Settings):
    blocks: int
    filters: int


@dataclasses.dataclass(frozen=True)
class AugmentSettings(Settings):
    flips: bool = False
    rot90: bool = False


@dataclasses.dataclass(frozen=True)
class ValidationSettings(Settings):
    images: int


@dataclasses.dataclass(frozen=True)
class PhaseSettings(Settings):
    """Everything one training phase depends on (rocksr.train.loop), and nothing else."""
    phase: Literal[1, 2]
    scale: Literal[2, 4]
    seed: int
    model: ModelSettings
    device: Device
    precision: Literal["bf16", "fp32"]
    channels_last: bool
    compile: bool
    checkpoint_every: int
    validation: ValidationSettings
    epochs: int
    iters_per_epoch: int
    batch_size: int
    lr_patch: int
    lr: float
    betas: tuple[float, float]
    decay_factor: float
    decay_epochs: float
    augment: AugmentSettings
    cuda_graphs: bool = False  # iterations replayed as CUDA graphs (rocksr.train.cuda_graphs)
    # Phase 2 only (rocksr.nets.losses: L1 + vgg_weight * VGG + adv_weight * adversarial).
    d_lr: float | None = None
    vgg_weight: float = 0.0
    adv_weight: float = 0.0
    vgg_weights: str | None = None
    vgg_layer: VggLayer | None = None
    vgg_input: Literal["caffe", "torchvision"] | None = None
    vgg_precision: Literal["fp32", "fp16"] = "fp32"  # CUDA only (rocksr.nets.vgg)
    d_sr_once: bool = True  # one D pass on SR serves G's and D's loss (rocksr.train.step)

    @property
    def hr_patch(self) -> int:
        return self.scale * self.lr_patch

    @property
    def total_iterations(self) -> int:
        return self.epochs * self.iters_per_epoch

    def check(self, where: str) -> None:
        _positive(where, epochs=self.epochs, iters_per_epoch=self.iters_per_epoch,
                  batch_size=self.batch_size, lr_patch=self.lr_patch, lr=self.lr,
                  checkpoint_every=self.checkpoint_every, decay_epochs=self.decay_epochs)
        key = f"{where}.lr_patch"
        if self.phase == 1:
            return
        for name in ("d_lr", "vgg_weights", "vgg_layer", "vgg_input"):
            if getattr(self, name) is None:
                raise ConfigError(f"{where}.{name}: missing (phase 2 needs it)")
        if self.hr_patch % 16:
            raise ConfigError(f"{key}: scale x lr_patch = {self.hr_patch} must be a multiple "
                              "of 16 (the discriminator halves its input 4 times)")
        if self.hr_patch < VGG_MIN_PATCH[self.vgg_layer]:
            raise ConfigError(f"{key}: scale x lr_patch = {self.hr_patch} px is too small for "
                              f"vgg_layer {self.vgg_layer}, which needs "
                              f"{VGG_MIN_PATCH[self.vgg_layer]} px or more")


# --- data -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SyntheticSettings(Settings):
    """The offline stand-in archive (rocksr.data.synthetic)."""
    hr_size: int
    seed: int
    counts: dict[str, int]

    def check(self, where: str) -> None:
        if self.hr_size <= 0 or self.hr_size % 4:
            raise ConfigError(f"{where}.hr_size: must be a positive multiple of 4 (the largest "
                              f"scale), got {self.hr_size}")
        _same_keys(f"{where}.counts", self.counts, SPLITS)


@dataclasses.dataclass(frozen=True)
class ResplitSettings(Settings):
    ratios: dict[str, float]
    seed: int

    def check(self, where: str) -> None:
        _same_keys(f"{where}.ratios", self.ratios, SPLITS)


@dataclasses.dataclass(frozen=True)
class DataSettings(Settings):
    """One data product (rocksr.data.split, folder results/data/x{scale}_{degradation}/):
    which LR images pair with the HR ones, of which rock types, split how."""
    scale: Literal[2, 4]
    degradation: Literal["default", "unknown"]
    rock_types: list[str]
    resplit: ResplitSettings | None = None

    def check(self, where: str) -> None:
        unknown = [r for r in self.rock_types if r not in ROCK_TYPES]
        if unknown or not self.rock_types:
            raise ConfigError(f"{where}.rock_types: {self.rock_types} must name some of "
                              f"{', '.join(ROCK_TYPES)}")


def _same_keys(where: str, mapping: Mapping, keys: tuple[str, ...]) -> None:
    if set(mapping) != set(keys):
        raise ConfigError(f"{where}: needs exactly the keys {', '.join(keys)}, got "
                          f"{', '.join(mapping) or 'none'}")


# --- evaluation, prediction and figures --------------------------------------------------

@dataclasses.dataclass(frozen=True)
class IntensitySettings(Settings):
    """How 16-bit pixel values map to [0, 1] (rocksr.imaging.intensity)."""
    window: Literal["full", "percentile"]
    percentiles: tuple[float, float]

    def check(self, where: str) -> None:
        lo, hi = self.percentiles
        if not 0 <= lo < hi <= 100:
            raise ConfigError(f"{where}.percentiles: {list(self.percentiles)} must rise within "
                              "0-100")


@dataclasses.dataclass(frozen=True)
class ExternalSet(Settings):
    name: str
    path: str


@dataclasses.dataclass(frozen=True)
class EvaluationSettings(Settings):
    splits: list[Literal["train", "valid", "test"]]
    batch_size: int
    clamp: bool
    quantize: bool
    device: Device = "auto"
    external: list[ExternalSet] = dataclasses.field(default_factory=list)
    intensity: IntensitySettings | None = None  # needed by external sets only

    def check(self, where: str) -> None:
        _positive(where, batch_size=self.batch_size)
        names = [e.name for e in self.external]
        clash = sorted({n for n in names if names.count(n) > 1})
        if clash:
            raise ConfigError(f"{where}.external: the name(s) {', '.join(clash)} appear twice")
        if self.external and self.intensity is None:
            raise ConfigError(f"{where}.intensity: missing (external sets need it)")


@dataclasses.dataclass(frozen=True)
class PredictSettings(Settings):
    tile: int
    overlap: int
    intensity: IntensitySettings


@dataclasses.dataclass(frozen=True)
class FigureSettings(Settings):
    """Figures that take nothing but their resolution."""
    dpi: int = 150


@dataclasses.dataclass(frozen=True)
class BoxSettings(Settings):
    """Figure 2's crop square, as fractions of the image side."""
    x: float
    y: float
    size: float


@dataclasses.dataclass(frozen=True)
class Figure2Settings(Settings):
    ids: dict[str, int]
    box: BoxSettings
    diff_range: dict[str, float]
    dpi: int = 150

    def check_rocks(self, rocks: list[str], where: str) -> None:
        """Every rock type drawn needs an image id and a colour-bar top."""
        for key in ("ids", "diff_range"):
            missing = [r for r in rocks if r not in getattr(self, key)]
            if missing:
                raise ConfigError(f"{where}.{key}: no entry for rock type {', '.join(missing)}")


@dataclasses.dataclass(frozen=True)
class CompareSettings(Settings):
    """The runs side by side (rocksr.eval.compare): each run's description (config.run_description),
    in the order of the summaries given."""
    runs: list[dict[str, Any]]
    dpi: int = 150
