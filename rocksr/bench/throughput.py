"""Throughput of the fast path against the plain recipe, both measured in one process.

Baseline, the plain PyTorch recipe: PNG files on disk, decoded and cropped per sample in
DataLoader workers, fp32, NCHW, Adam without fusing, no compile; evaluation image by image
(PNG decode, PIL bicubic, one generator call per image and model, scikit-image PSNR, SSIM
and Otsu on the host).
Fast path, the workflow's own code: packs resident on the device with whole-batch crops
(rocksr.train.batches), bf16 autocast, fused Adam and cuDNN autotuning on CUDA, channels_last;
on CUDA also as whole-iteration CUDA graphs (rocksr.train.cuda_graphs); batched evaluation with
bicubic on the device (rocksr.eval.evaluate).

Both variants run the same models, losses and step (rocksr.train.step.build_models, Step) on
the same synthetic images at the same settings, so a ratio measures the data path and the
numerics settings only. Model weights are random: speed does not depend on them.
Extra variants (EXTRAS): the best fast path compiled, with phase 2's second D pass, or with
the VGG term in fp16. Each variant's set-up time (capture, compilation) enters the projected
schedule. Also measured: what a phase-2 checkpoint costs the training, written in the call
or in the background (rocksr.train.checkpoint), and the VGG term's fp16 accuracy
(rocksr.bench.vgg_precision).

Volumes (presets `paper3d`, `tiny3d`: a dim-3 run with config.yaml's training_3d) time the
fast path's training only: there is no plain recipe of PNG files to compare with.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import statistics
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from skimage.filters import threshold_otsu
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from rocksr import ROCK_TYPES
from rocksr.bench import vgg_precision
from rocksr.data.archive import decode_grey
from rocksr.data.packs import load_split
from rocksr.data.split import split_archive
from rocksr.data.synthetic import write_archive
from rocksr.eval.evaluate import evaluate
from rocksr.imaging.pixels import signed_to_unit, uint8_to_signed
from rocksr.nets.models import Generator
from rocksr.settings import EvaluationSettings, ModelSettings, PhaseSettings, SyntheticSettings
from rocksr.train.batches import CropSampler, stack_packs
from rocksr.train.checkpoint import CHECKPOINT, Checkpoint, TrainingState
from rocksr.train.diagnostics import diagnosed as is_diagnosed
from rocksr.train.loop import make_step
from rocksr.train.step import STATS, build_models, tune_backend
from rocksr.workflow.config import phase_settings, read

log = logging.getLogger(__name__)

EPOCH_ITERS = 1000  # the paper's iterations per epoch


@dataclasses.dataclass
class Setup:
    """What is timed: each phase's settings (the model, batch and patch come from there) and
    the synthetic images the batches are cut from."""
    name: str
    phases: dict[int, PhaseSettings]
    iters: dict[int, int]      # timed iterations per phase and repeat
    hr_size: int               # synthetic HR side (the real images are 500)
    images: int                # train images per rock type
    eval_images: int           # valid images per rock type
    eval_batch: int

    @property
    def scale(self) -> int:
        return self.phases[1].scale

    @property
    def dim(self) -> int:
        return self.phases[1].dim

    def summary(self) -> dict:
        """The figures the report prints about the setup."""
        s1, s2 = self.phases[1], self.phases[2]
        return {"name": self.name, "scale": s1.scale, "dim": s1.dim, "blocks": s1.model.blocks,
                "filters": s1.model.filters, "iters": self.iters, "hr_size": self.hr_size,
                "diagnosed_per_epoch": sum(is_diagnosed(i, EPOCH_ITERS, s2.diagnose_every)
                                           for i in range(EPOCH_ITERS)),
                **{key: {p: getattr(s, attr) for p, s in self.phases.items()}
                   for key, attr in (("batch", "batch_size"), ("lr_patch", "lr_patch"),
                                     ("schedule", "total_iterations"))},
                "checkpoint_every": self.phases[2].checkpoint_every}


def resized(setup: Setup, blocks: int, filters: int, batch: dict[int, int],
            lr_patch: dict[int, int], **fields) -> Setup:
    """`setup` with another model size and batches (and any other Setup field)."""
    phases = {p: dataclasses.replace(s, model=ModelSettings(blocks, filters),
                                     batch_size=batch[p], lr_patch=lr_patch[p])
              for p, s in setup.phases.items()}
    return dataclasses.replace(setup, phases=phases, **fields)


PRESETS = ("paper", "tiny", "micro", "paper3d", "tiny3d")


def setup_from_config(config_path: str | Path, preset: str) -> Setup:
    """'paper': the paper run of config.yaml at the real image size; 'tiny': a CPU-sized one;
    'micro': the smallest that runs every stage (dry runs, tests). 'paper3d': the paper run
    as volumes (dim 3, with training_3d: the authors' 64^3 HR cubes, batch 16) of the
    presumed real size, 100^3; 'tiny3d': a CPU-sized one. VGG weights are random: speed does
    not depend on them, and none are downloaded."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: {', '.join(PRESETS)}")
    config = read(config_path)  # the repository's config.yaml, checked by the tests
    dim = 3 if preset.endswith("3d") else 2
    config["runs"]["bench"] = {**config["runs"]["paper"], "dim": dim}
    paper = Setup(name="paper3d" if dim == 3 else "paper", iters={1: 50, 2: 20},
                  hr_size=100 if dim == 3 else 500, images=4 if dim == 3 else 8,
                  eval_images=1 if dim == 3 else 4,
                  eval_batch=config["evaluation"]["batch_size"],
                  phases={p: dataclasses.replace(phase_settings(config, "bench", p),
                                                 vgg_weights="random" if p == 2 else None)
                          for p in (1, 2)})
    if preset == "tiny":  # the demo's model and batches
        return resized(paper, 4, 32, batch={1: 8, 2: 4}, lr_patch={1: 16, 2: 16}, name="tiny",
                       iters={1: 30, 2: 5}, hr_size=96, eval_batch=6)
    if preset == "micro":  # VGG features before pool5, which would need 32 px
        micro = resized(paper, 1, 8, batch={1: 2, 2: 2}, lr_patch={1: 4, 2: 4}, name="micro",
                        iters={1: 2, 2: 1}, hr_size=48, images=2, eval_images=2, eval_batch=2)
        micro.phases[2] = dataclasses.replace(micro.phases[2], vgg_layer="conv5_4")
        return micro
    if preset == "tiny3d":  # the demo's 3D run
        return resized(paper, 2, 16, batch={1: 4, 2: 2}, lr_patch={1: 8, 2: 4}, name="tiny3d",
                       iters={1: 5, 2: 2}, hr_size=32, images=2)
    return paper


@dataclasses.dataclass
class Data:
    packs: Path
    train_pngs: list[tuple[Path, Path]]  # (LR, HR) files, as from the unzipped archive
    valid_pngs: list[tuple[Path, Path]]


def prepare_data(workdir: Path, setup: Setup, degradation: str = "unknown") -> Data:
    """A synthetic archive, split into packs (fast path) and unzipped to PNGs (baseline; none
    of volumes)."""
    archive = write_archive(workdir / "bench.zip", SyntheticSettings(
        hr_size=setup.hr_size, seed=0,
        counts={"train": setup.images, "valid": setup.eval_images, "test": 1}), dim=setup.dim)
    packs, manifest = workdir / "packs", workdir / "manifest.csv"
    split_archive(archive, packs, manifest, ROCK_TYPES, setup.scale, degradation, dim=setup.dim)
    if setup.dim == 3:
        return Data(packs, [], [])
    pngs = workdir / "png"
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(pngs)
    table = pd.read_csv(manifest)

    def files(split: str) -> list[tuple[Path, Path]]:
        rows = table[table.split == split]
        return [(pngs / lr, pngs / hr) for lr, hr in zip(rows.lr_member, rows.hr_member)]

    return Data(packs, files("train"), files("valid"))


def read_png(path: Path) -> np.ndarray:
    return decode_grey(path.read_bytes(), str(path))


class PngCrops(Dataset):
    """The plain recipe's dataset: decode one LR/HR pair per sample, crop it at random."""

    def __init__(self, pairs: list[tuple[Path, Path]], scale: int, lr_patch: int, length: int):
        self.pairs, self.scale, self.p, self.length = pairs, scale, lr_patch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        lr_path, hr_path = self.pairs[index % len(self.pairs)]
        lr, hr = read_png(lr_path), read_png(hr_path)
        p, s = self.p, self.scale
        y = int(torch.randint(lr.shape[0] - p + 1, ()))
        x = int(torch.randint(lr.shape[1] - p + 1, ()))
        lr = torch.from_numpy(lr[y:y + p, x:x + p].copy())
        hr = torch.from_numpy(hr[s * y:s * (y + p), s * x:s * (x + p)].copy())
        return uint8_to_signed(lr[None]), uint8_to_signed(hr[None])


def crop_sampler(s: PhaseSettings, data: Data, device: torch.device) -> CropSampler:
    """The fast path's batches: the train packs on the device, cropped there."""
    return CropSampler(*stack_packs(load_split(data.packs, "train"), device), s.scale,
                       s.lr_patch, s.batch_size, seed=0)


class TrainingRun:
    """One training iteration of `phase`, baseline or fast path, as a call; called with True,
    it also measures the loss terms' gradient shares (once per epoch in training). Both build
    their models and step as training does (rocksr.train.loop); the baseline with fp32, NCHW,
    plain Adam and no cuDNN autotuning. `settings`: an extra variant's (EXTRAS). Its models
    and, on the fast path, its crop sampler are kept (the checkpoint stage saves them)."""

    def __init__(self, setup: Setup, phase: int, data: Data, device: torch.device, fast: bool,
                 graphs: bool = False, workers: int = 0, **settings):
        torch.manual_seed(0)
        s = dataclasses.replace(setup.phases[phase], precision="bf16" if fast else "fp32",
                                channels_last=fast, compile=False, cuda_graphs=graphs)
        self.settings = s = dataclasses.replace(s, **settings)
        torch.backends.cudnn.benchmark = False  # the plain recipe's default
        if fast:
            tune_backend(device)
        self.models = build_models(s, device, fused=fast)
        self.step = make_step(s, self.models, device)
        self.device, self.sampler = device, None
        if fast:
            self.sampler = crop_sampler(s, data, device)
        else:
            # One epoch = EPOCH_ITERS batches of pairs repeated and shuffled, EDSR-style.
            self.loader = DataLoader(
                PngCrops(data.train_pngs, s.scale, s.lr_patch, EPOCH_ITERS * s.batch_size),
                batch_size=s.batch_size, shuffle=True, num_workers=workers,
                pin_memory=device.type == "cuda", drop_last=True,
                persistent_workers=workers > 0)
            self.batches = iter(self.loader)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.sampler is not None:
            return self.sampler.sample()
        try:
            lr, hr = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            lr, hr = next(self.batches)
        return lr.to(self.device, non_blocking=True), hr.to(self.device, non_blocking=True)

    def __call__(self, diagnose: bool = False) -> torch.Tensor:
        return self.step(*self.next_batch(), diagnose=diagnose)[0]


def baseline_evaluate(pairs: list[tuple[Path, Path]], generators: dict[str, Generator],
                      scale: int, device: torch.device) -> pd.DataFrame:
    """The plain evaluation loop: one image at a time, metrics by scikit-image on the host."""
    rows = []
    with torch.inference_mode():
        for lr_path, hr_path in pairs:
            lr_image = Image.open(lr_path).convert("L")
            hr8 = read_png(hr_path)
            hr, cut = hr8 / 255.0, threshold_otsu(hr8)
            size = (lr_image.width * scale, lr_image.height * scale)
            outputs = {"bicubic": np.asarray(lr_image.resize(size, Image.BICUBIC)) / 255.0}
            x = uint8_to_signed(torch.from_numpy(np.array(lr_image))[None, None]).to(device)
            for name, g in generators.items():
                sr = signed_to_unit(g(x)).clamp(0, 1).mul(255).round()
                outputs[name] = sr[0, 0].cpu().double().numpy() / 255.0
            for name, sr in outputs.items():
                rows.append({
                    "method": name, "hr": hr_path.name,
                    "psnr": peak_signal_noise_ratio(hr, sr, data_range=1.0),
                    "ssim": structural_similarity(hr, sr, data_range=1.0, gaussian_weights=True,
                                                  sigma=1.5, use_sample_covariance=False),
                    "porosity": float((sr * 255 <= cut).mean())})
    return pd.DataFrame(rows)


def evaluation_run(setup: Setup, data: Data, device: torch.device,
                   fast: bool, texture: bool = True) -> Callable[[], int]:
    """Evaluate bicubic and two generators on the valid images; returns the image count.
    `texture`: the fast path with or without the texture metrics (rocksr.eval.texture)."""
    torch.manual_seed(0)
    model = setup.phases[1].model
    generators = {name: Generator(setup.scale, model.blocks, model.filters).to(device).eval()
                  for name in ("srcnn", "srgan")}
    settings = EvaluationSettings(splits=["valid"], batch_size=setup.eval_batch, clamp=True,
                                  quantize=True)
    if fast:
        return lambda: len(evaluate(data.packs, generators, settings, device,
                                    with_texture=texture)) // 3
    return lambda: len(baseline_evaluate(data.valid_pngs, generators, setup.scale, device)) // 3


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(run: Callable[[], object], units: Callable[[object], int], warmup: int, repeats: int,
         device: torch.device) -> float:
    """Median units per second over `repeats` timed calls of `run`, after `warmup` calls."""
    for _ in range(warmup):
        run()
    synchronize(device)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = units(run())
        synchronize(device)
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def paired_rates(a: Callable[[], int], b: Callable[[], int], repeats: int,
                 device: torch.device) -> tuple[float, float]:
    """Median units per second of `a` and of `b`, timed in alternation (a, b, a, b, ...) after
    one warm-up call each, so that load changes on a shared machine hit both alike."""
    rates: dict[int, list[float]] = {0: [], 1: []}
    for i, run_once in enumerate([a, b] * (repeats + 1)):
        synchronize(device)
        start = time.perf_counter()
        n = run_once()
        synchronize(device)
        if i >= 2:
            rates[i % 2].append(n / (time.perf_counter() - start))
    return statistics.median(rates[0]), statistics.median(rates[1])


def step_flops(step: Callable[[], torch.Tensor]) -> int:
    """FLOPs of one training iteration (forward and backward), counted by torch."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


STAGES = ("vgg", "checkpoint", "phase1", "phase2", "evaluate")  # in the order they run


def kernel_seconds(run: Callable[[], object], device: torch.device) -> float | None:
    """GPU time of one call of `run`: its CUDA kernels' durations summed (torch.profiler);
    None off CUDA or where the profiler records no kernels."""
    if device.type != "cuda":
        return None
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
        synchronize(device)
    busy = sum(e.time_range.elapsed_us() for e in prof.events()
               if e.device_type == DeviceType.CUDA)
    return busy / 1e6 or None


# An extra variant is the best fast path (CUDA graphs on CUDA) plus one or more of these,
# joined by "+" (e.g. compile+vgg16): token -> (training settings, phase 2 only).
EXTRAS = {
    "compile": ({"compile": True}, False),        # torch.compile (inside the graphs on CUDA)
    "d-twice": ({"d_sr_once": False}, True),      # a second D pass on SR, as before d_sr_once
    "vgg16": ({"vgg_precision": "fp16"}, True),   # the VGG term in fp16 (rocksr.nets.vgg)
}


def variants(device: torch.device, phase: int, extras: tuple[str, ...] = (), dim: int = 2
             ) -> dict[str, dict]:
    """Each timed variant's TrainingRun options: the plain recipe (not for volumes, `dim` 3),
    the fast path, on CUDA the fast path as whole-iteration CUDA graphs
    (rocksr.train.cuda_graphs), then the `extras` (EXTRAS; those with a phase-2-only part are
    left out of phase 1)."""
    out = {"baseline": {"fast": False}} if dim == 2 else {}
    out["fast"] = {"fast": True}
    base = "fast"
    if device.type == "cuda":
        base = "fast+graphs"
        out[base] = {"fast": True, "graphs": True}
    for extra in extras:
        tokens = extra.split("+")
        unknown = [x for x in tokens if x not in EXTRAS]
        if unknown:
            raise ValueError(f"unknown extra variant {extra!r}: use {', '.join(EXTRAS)}, "
                             "or several joined by +")
        if phase == 1 and any(EXTRAS[x][1] for x in tokens):
            continue
        if "vgg16" in tokens and device.type != "cuda":
            log.info("%s: fp16 VGG is CUDA only (training ignores it on %s)", extra, device)
            continue
        out[f"{base}+{extra}"] = {**out[base], **{k: v for x in tokens
                                                  for k, v in EXTRAS[x][0].items()}}
    return out


def phase1_counterpart(name: str) -> str:
    """The phase-1 variant a phase-2 one pairs with in the projection: its phase-2-only
    extras dropped."""
    return "+".join(x for x in name.split("+") if not EXTRAS.get(x, (None, False))[1])


def time_training(stage: dict, name: str, phase: int, step: TrainingRun, n: int,
                  device: torch.device, repeats: int, built_s: float) -> None:
    """Into `stage`: the variant's it/s over calls of `n` steps; its set-up time (`built_s`
    to build models and step, CUDA graph capture included, plus what the first call takes
    beyond a timed one: compilation, cuDNN autotuning); the FLOPs of a step (counted on the
    first variant, eager); the GPU's busy share and peak memory; the diagnosed step's rate
    (fast path, phase 2)."""
    def steps(diagnose: bool = False) -> int:
        return len([step(diagnose) for _ in range(n)])

    start = time.perf_counter()
    steps()
    synchronize(device)
    first = time.perf_counter() - start
    if "tflop_per_it" not in stage:
        stage["tflop_per_it"] = step_flops(step) / 1e12
    stage[name] = rate(steps, lambda count: count, warmup=0, repeats=repeats, device=device)
    stage["setup_s"][name] = built_s + max(0.0, first - n / stage[name])
    busy = kernel_seconds(steps, device)
    if busy is not None:  # GPU seconds per wall second, at the unprofiled rate
        stage["gpu_busy"][name] = busy / n * stage[name]
    if device.type == "cuda":  # since the variant's models were built (run resets it)
        stage["peak_gib"][name] = torch.cuda.max_memory_allocated(device) / 2**30
    if phase == 2 and name == "fast":  # training diagnoses one step an epoch
        stage["plain step"], stage["diagnosed step"] = paired_rates(
            steps, lambda: steps(True), repeats, device)


def calls(step: TrainingRun, n: int) -> Callable[[], int]:
    """`n` steps of `step` as one call, returning `n`."""
    return lambda: len([step() for _ in range(n)])


def checkpoint_costs(step: TrainingRun, n: int, workdir: Path, repeats: int) -> dict:
    """What one checkpoint of `step`'s phase costs the training: written in the call (its
    whole time), and in the background (the copy to host memory, plus the training's
    slowdown while the writer thread runs, from the rate of `n`-step calls then)."""
    device = step.device
    state = TrainingState(step.models.parts(), step.sampler,
                          torch.zeros(EPOCH_ITERS, len(STATS[step.settings.phase]),
                                      device=device))
    steps = calls(step, n)
    plain = rate(steps, lambda count: count, warmup=1, repeats=repeats, device=device)
    found = {"plain_its": plain, "sync_s": [], "copy_s": [], "write_its": [], "extra_s": []}
    for i in range(repeats):
        synchronous = Checkpoint(workdir / f"sync{i}", "bench", background=False)
        start = time.perf_counter()
        synchronous.save(state)
        found["sync_s"].append(time.perf_counter() - start)
        background = Checkpoint(workdir / f"async{i}", "bench")
        synchronize(device)
        start = time.perf_counter()
        background.save(state)
        copied = time.perf_counter() - start
        done = 0
        while background.writing:  # train while the thread writes
            done += steps()
            synchronize(device)
        elapsed = time.perf_counter() - start
        background.wait()
        found["copy_s"].append(copied)
        found["write_its"].append(done / max(elapsed - copied, 1e-9))
        found["extra_s"].append(elapsed - done / plain)
    size = (workdir / "sync0" / CHECKPOINT).stat().st_size
    return {"bytes": size, "plain_its": plain,
            **{k: statistics.median(v) for k, v in found.items() if isinstance(v, list)}}


def run(setup: Setup, workdir: Path, device: torch.device, workers: int, repeats: int = 3,
        extras: tuple[str, ...] = (), stages: tuple[str, ...] = STAGES,
        progress: Callable[[dict], None] = lambda results: None) -> dict:
    """Time every stage for each variant; returns the figures `report` prints, which
    `progress` also gets after each stage (to keep them if the run is cut short)."""
    data = prepare_data(workdir, setup)
    results: dict = {"setup": setup.summary(), "device": describe(device), "variants": [],
                     "workers": workers, "repeats": repeats, "stages": {}}
    if "vgg" in stages and setup.phases[2].vgg_term:  # volumes: no VGG term by default
        s = setup.phases[2]
        results["vgg"] = vgg_precision.measure(s, crop_sampler(s, data, device), device)
        progress(results)
    if "checkpoint" in stages:  # phase 2's: the large one (D and both Adams)
        graphs = device.type == "cuda"
        results["checkpoint"] = checkpoint_costs(
            TrainingRun(setup, 2, data, device, fast=True, graphs=graphs),
            setup.iters[2], workdir / "checkpoints", repeats=1)  # seconds each: once
        results["checkpoint"]["variant"] = "fast+graphs" if graphs else "fast"
        log.info("checkpoint: %s", results["checkpoint"])
        progress(results)
    base = "fast+graphs" if device.type == "cuda" else "fast"
    for phase in (p for p in (1, 2) if f"phase{p}" in stages):
        stage = results["stages"][f"phase {phase}"] = {"unit": "it/s", "gpu_busy": {},
                                                       "setup_s": {}, "paired": {},
                                                       "peak_gib": {}}
        kept = {}  # the best fast path and its phase-2-only extras: timed again, alternately
        for name, options in variants(device, phase, extras, setup.dim).items():
            gc.collect()  # the last variant's models and graph go before the peak is reset
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            step = TrainingRun(setup, phase, data, device, workers=workers, **options)
            time_training(stage, name, phase, step, setup.iters[phase], device, repeats,
                          time.perf_counter() - start)
            results["variants"] += [name] if name not in results["variants"] else []
            log.info("phase %d %s: %.3g it/s, set-up %.3g s", phase, name, stage[name],
                     stage["setup_s"][name])
            if name == base or phase1_counterpart(name) == base:
                kept[name] = step
            del step
            progress(results)
        for name in [k for k in kept if k != base]:  # small effects: in alternation
            stage["paired"][name] = paired_rates(
                calls(kept[base], setup.iters[phase]), calls(kept[name], setup.iters[phase]),
                repeats, device)
        del kept
    if "evaluate" in stages and setup.dim == 2:
        stage = results["stages"]["evaluate"] = {"unit": "img/s"}
        for name, fast in (("baseline", False), ("fast", True)):
            stage[name] = rate(evaluation_run(setup, data, device, fast), lambda n: n,
                               warmup=1, repeats=repeats, device=device)
            log.info("evaluate %s: %.3g img/s", name, stage[name])
        # What the texture metrics cost: the fast path with and without them, alternately.
        stage["fast_with_texture"], stage["fast_no_texture"] = paired_rates(
            evaluation_run(setup, data, device, True, True),
            evaluation_run(setup, data, device, True, False), repeats, device)
        log.info("evaluate fast with / without texture metrics: %.3g / %.3g img/s",
                 stage["fast_with_texture"], stage["fast_no_texture"])
    return results


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def report(results: dict) -> str:
    """The printed table: rates, ratios to the baseline, TFLOP/s and, for the paper's settings,
    the projected wall time of the full schedule."""
    s = results["setup"]
    volumes = s.get("dim", 2) == 3
    cubes = "/".join(str(s["scale"] * s["lr_patch"][p]) for p in (1, 2))
    items = (f"synthetic {s['hr_size']}^3 volumes (HR cubes of {cubes})"
             if volumes else f"synthetic {s['hr_size']} px images")
    lines = [f"device: {results['device']}; torch {torch.__version__}",
             f"settings '{s['name']}': x{s['scale']}, {s['blocks']} blocks x {s['filters']} "
             f"filters; phase 1/2 batch {s['batch'][1]}/{s['batch'][2]}, LR patch "
             f"{s['lr_patch'][1]}/{s['lr_patch'][2]}; {items}; "
             + ("" if volumes else f"baseline DataLoader workers {results['workers']}; ")
             + "timed iterations "
             f"{s['iters'][1]}/{s['iters'][2]}, median of {results['repeats']} repeats",
             ""]
    order = results.get("variants") or ["baseline", "fast", "fast+graphs"]
    names = [n for n in order if any(n in st for st in results["stages"].values())]
    ratioed = names[1:] if names[:1] == ["baseline"] else []  # volumes: no baseline
    width = {n: max(16, len(n) + 2) for n in names}  # rate columns; ratio ones are +10
    lines.append(f"{'stage':10}" + "".join(f"{n:>{width[n]}}" for n in names)
                 + "".join(f"{n + ' / baseline':>{width[n] + 10}}" for n in ratioed))
    for stage, st in results["stages"].items():
        cells = "".join(f"{st[n]:>{width[n] - 6}.3g} {st['unit']:5}" if n in st
                        else f"{'-':>{width[n]}}" for n in names)
        ratios = "".join(f"{st[n] / st['baseline']:>{width[n] + 9}.2f}x" if n in st
                         else f"{'-':>{width[n] + 10}}" for n in ratioed)
        lines.append(f"{stage:10}{cells}{ratios}")
    lines.append("")
    for stage, st in results["stages"].items():
        if "tflop_per_it" in st:
            achieved = ", ".join(f"{n} {st['tflop_per_it'] * st[n]:.3g}" for n in names if n in st)
            lines.append(f"{stage}: {st['tflop_per_it'] * 1e3:.3g} GFLOP per iteration "
                         f"(forward + backward, counted); achieved TFLOP/s: {achieved}")
        if st.get("gpu_busy"):
            busy = ", ".join(f"{n} {100 * v:.0f}%" for n, v in st["gpu_busy"].items())
            lines.append(f"{stage}: share of wall time the GPU runs kernels: {busy}")
        for name, (plain, other) in st.get("paired", {}).items():
            lines.append(f"{stage}, timed in alternation: {name} {other:.3g} it/s against "
                         f"{phase1_counterpart(name)} {plain:.3g} "
                         f"({100 * (other / plain - 1):+.1f}%)")
        if st.get("setup_s"):
            setup = ", ".join(f"{n} {v:.3g} s" for n, v in st["setup_s"].items())
            lines.append(f"{stage}: set-up (models, capture, compilation, autotuning): {setup}")
        if st.get("peak_gib"):
            peak = ", ".join(f"{n} {v:.3g}" for n, v in st["peak_gib"].items())
            lines.append(f"{stage}: peak GPU memory allocated (GiB): {peak}")
    st = results["stages"].get("phase 2", {})
    if "diagnosed step" in st:
        plain, diagnosed = st["plain step"], st["diagnosed step"]
        n = s["diagnosed_per_epoch"]
        extra = n * (1 / diagnosed - 1 / plain)  # s per epoch: n diagnosed steps in each
        lines.append(f"phase 2 loss-term diagnostics ({n} steps per epoch of {EPOCH_ITERS} "
                     f"iterations), fast path timed in alternation: {diagnosed:.3g} it/s "
                     f"diagnosed vs {plain:.3g} plain: {extra * 1e3:+.3g} ms per epoch = "
                     f"{100 * extra * plain / EPOCH_ITERS:.3g}% of an epoch")
    evaluation = results["stages"].get("evaluate", {})
    if "fast_no_texture" in evaluation:
        with_texture, without = evaluation["fast_with_texture"], evaluation["fast_no_texture"]
        lines.append(f"evaluate: fast path {with_texture:.3g} img/s with the texture metrics, "
                     f"{without:.3g} img/s without: they add "
                     f"{100 * (without / with_texture - 1):.1f}% to the evaluation time")
    if "checkpoint" in results:
        c = results["checkpoint"]
        lines.append(f"phase-2 checkpoint ({c['bytes'] / 1e9:.3g} GB, {c['variant']}): "
                     f"{c['sync_s']:.3g} s written in the call; in the background "
                     f"{c['copy_s']:.3g} s to copy, then {c['write_its']:.3g} it/s (plain "
                     f"{c['plain_its']:.3g}) while it is written: {c['extra_s']:.3g} s lost")
    if "vgg" in results:
        lines.append(vgg_precision.report(results["vgg"]))
    phases = [results["stages"].get(f"phase {p}") for p in (1, 2)]
    if s["name"].startswith("paper") and all(phases):
        p1, p2 = phases
        for n in names:
            n1 = phase1_counterpart(n)
            if n1 in p1 and n in p2:
                seconds = sum(s["schedule"][p] / st[m] + st.get("setup_s", {}).get(m, 0.0)
                              for p, st, m in ((1, p1, n1), (2, p2, n)))
                lines.append(f"projected full paper schedule ({s['schedule'][1]} + "
                             f"{s['schedule'][2]} iterations, set-up included), {n}: "
                             f"{seconds / 3600:.2f} h")
        if "checkpoint" in results:
            c, count = results["checkpoint"], s["schedule"][2] // s["checkpoint_every"]
            lines.append(f"plus phase 2's {count} checkpoints: {count * c['sync_s'] / 60:.3g} "
                         f"min written in the call, {count * c['extra_s'] / 60:.3g} min in the "
                         "background")
    elif not s["name"].startswith("paper"):
        lines.append("no projection of the paper schedule: these are not the paper's "
                     f"settings (use --preset paper{'3d' if volumes else ''})")
    return "\n".join(lines)


def save(results: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(results, indent=2, default=str))
