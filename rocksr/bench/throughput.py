"""Throughput of the fast path against the plain recipe, both measured in one process.

Baseline, the plain PyTorch recipe: PNG files on disk, decoded and cropped per sample in
DataLoader workers, fp32, NCHW, Adam without fusing, no compile; evaluation image by image
(PNG decode, PIL bicubic, one generator call per image and model, scikit-image PSNR, SSIM
and Otsu on the host).
Fast path, the workflow's own code: packs resident on the device with whole-batch crops
(rocksr.train.batches), bf16 autocast, fused Adam and cuDNN autotuning on CUDA, channels_last;
on CUDA also as whole-iteration CUDA graphs (rocksr.train.cuda_graphs); optionally torch.compile, on
CUDA also inside the graphs; batched evaluation with bicubic on the device (rocksr.eval.evaluate).

Both variants run the same models, losses and step (rocksr.train.step.build_models, Step) on
the same synthetic images at the same settings, so a ratio measures the data path and the
numerics settings only. Model weights are random: speed does not depend on them.

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
from rocksr.data.archive import decode_grey
from rocksr.data.packs import load_split
from rocksr.data.split import split_archive
from rocksr.data.synthetic import write_archive
from rocksr.eval.evaluate import evaluate
from rocksr.imaging.pixels import signed_to_unit, uint8_to_signed
from rocksr.nets.models import Generator
from rocksr.settings import EvaluationSettings, ModelSettings, PhaseSettings, SyntheticSettings
from rocksr.train.batches import CropSampler, stack_packs
from rocksr.train.loop import make_step
from rocksr.train.step import build_models, tune_backend
from rocksr.workflow.config import load, phase_settings

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
        s1 = self.phases[1]
        return {"name": self.name, "scale": s1.scale, "dim": s1.dim, "blocks": s1.model.blocks,
                "filters": s1.model.filters, "iters": self.iters, "hr_size": self.hr_size,
                **{key: {p: getattr(s, attr) for p, s in self.phases.items()}
                   for key, attr in (("batch", "batch_size"), ("lr_patch", "lr_patch"),
                                     ("schedule", "total_iterations"))}}


def resized(setup: Setup, blocks: int, filters: int, batch: dict[int, int],
            lr_patch: dict[int, int], **fields) -> Setup:
    """`setup` with another model size and batches (and any other Setup field)."""
    phases = {p: dataclasses.replace(s, model=ModelSettings(blocks, filters),
                                     batch_size=batch[p], lr_patch=lr_patch[p])
              for p, s in setup.phases.items()}
    return dataclasses.replace(setup, phases=phases, **fields)


PRESETS = ("paper", "tiny", "paper3d", "tiny3d")


def setup_from_config(config_path: str | Path, preset: str) -> Setup:
    """'paper': the paper run of config.yaml at the real image size; 'tiny': a CPU-sized one.
    'paper3d': the paper run as volumes (dim 3, with training_3d: the authors' 64^3 HR cubes,
    batch 16) of the presumed real size, 100^3; 'tiny3d': a CPU-sized one. VGG weights are
    random: speed does not depend on them, and none are downloaded."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: {', '.join(PRESETS)}")
    config = load(config_path)
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


def training_step(setup: Setup, phase: int, data: Data, device: torch.device, fast: bool,
                  compile_models: bool = False, graphs: bool = False, workers: int = 0
                  ) -> Callable[..., torch.Tensor]:
    """One training iteration of `phase` as a closure, baseline or fast path; called with
    True, it also measures the loss terms' gradient shares (once per epoch in training).
    Both build their models and step as training does (rocksr.train.loop); the baseline with fp32,
    NCHW, plain Adam and no cuDNN autotuning."""
    torch.manual_seed(0)
    s = dataclasses.replace(setup.phases[phase], precision="bf16" if fast else "fp32",
                            channels_last=fast, compile=compile_models, cuda_graphs=graphs)
    torch.backends.cudnn.benchmark = False  # the plain recipe's default
    if fast:
        tune_backend(device)
    step = make_step(s, build_models(s, device, fused=fast), device)
    batch, p = s.batch_size, s.lr_patch

    if fast:
        sampler = CropSampler(*stack_packs(load_split(data.packs, "train"), device),
                              s.scale, p, batch, seed=0)
        next_batch = sampler.sample
    else:
        # One epoch = EPOCH_ITERS batches of pairs repeated and shuffled, EDSR-style.
        loader = DataLoader(PngCrops(data.train_pngs, s.scale, p, EPOCH_ITERS * batch),
                            batch_size=batch, shuffle=True, num_workers=workers,
                            pin_memory=device.type == "cuda", drop_last=True,
                            persistent_workers=workers > 0)
        batches = iter(loader)

        def next_batch():
            nonlocal batches
            try:
                lr, hr = next(batches)
            except StopIteration:
                batches = iter(loader)
                lr, hr = next(batches)
            return lr.to(device, non_blocking=True), hr.to(device, non_blocking=True)

    return lambda diagnose=False: step(*next_batch(), diagnose=diagnose)[0]


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


STAGES = ("phase1", "phase2", "evaluate")


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


def variants(device: torch.device, compile_models: bool, dim: int = 2) -> dict[str, dict]:
    """Each timed variant's training_step options: the plain recipe (not for volumes), the
    fast path, and on CUDA the fast path as whole-iteration CUDA graphs
    (rocksr.train.cuda_graphs); optionally compiled."""
    out = {"baseline": {"fast": False}} if dim == 2 else {}
    out["fast"] = {"fast": True}
    if device.type == "cuda":
        out["fast+graphs"] = {"fast": True, "graphs": True}
    if compile_models:
        out["fast+compile"] = {"fast": True, "compile_models": True}
        if device.type == "cuda":
            out["fast+graphs+compile"] = {"fast": True, "graphs": True, "compile_models": True}
    return out


def time_training(stage: dict, name: str, phase: int, step: Callable[..., torch.Tensor],
                  n: int, device: torch.device, repeats: int) -> None:
    """Into `stage`: the variant's it/s over calls of `n` steps; the FLOPs of a step (counted
    on the first variant, eager); the GPU's busy share and peak memory; the diagnosed step's
    rate (fast path, phase 2)."""
    def steps(diagnose: bool = False) -> int:
        return len([step(diagnose) for _ in range(n)])

    if "tflop_per_it" not in stage:
        stage["tflop_per_it"] = step_flops(step) / 1e12
    stage[name] = rate(steps, lambda count: count, warmup=1, repeats=repeats, device=device)
    busy = kernel_seconds(steps, device)
    if busy is not None:  # GPU seconds per wall second, at the unprofiled rate
        stage["gpu_busy"][name] = busy / n * stage[name]
    if device.type == "cuda":  # since the variant's models were built (run resets it)
        stage["peak_gib"][name] = torch.cuda.max_memory_allocated(device) / 2**30
    if phase == 2 and name == "fast":  # training diagnoses one step an epoch
        stage["plain step"], stage["diagnosed step"] = paired_rates(
            steps, lambda: steps(True), repeats, device)


def run(setup: Setup, workdir: Path, device: torch.device, workers: int, repeats: int = 3,
        compile_models: bool = False, stages: tuple[str, ...] = STAGES) -> dict:
    """Time every stage for each variant; returns the figures `report` prints."""
    data = prepare_data(workdir, setup)
    results: dict = {"setup": setup.summary(), "device": describe(device),
                     "workers": workers, "repeats": repeats, "stages": {}}
    for phase in (p for p in (1, 2) if f"phase{p}" in stages):
        stage = results["stages"][f"phase {phase}"] = {"unit": "it/s", "gpu_busy": {},
                                                        "peak_gib": {}}
        for name, options in variants(device, compile_models, setup.dim).items():
            step = None
            gc.collect()  # the last variant's models and graph go before the peak is reset
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            step = training_step(setup, phase, data, device, workers=workers, **options)
            time_training(stage, name, phase, step, setup.iters[phase], device, repeats)
            log.info("phase %d %s: %.3g it/s", phase, name, stage[name])
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
    names = [n for n in ("baseline", "fast", "fast+graphs", "fast+compile", "fast+graphs+compile")
             if any(n in st for st in results["stages"].values())]
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
        if st.get("peak_gib"):
            peak = ", ".join(f"{n} {v:.3g}" for n, v in st["peak_gib"].items())
            lines.append(f"{stage}: peak GPU memory allocated (GiB): {peak}")
    st = results["stages"].get("phase 2", {})
    if "diagnosed step" in st:
        plain, diagnosed = st["plain step"], st["diagnosed step"]
        extra = 1 / diagnosed - 1 / plain  # s per epoch: one diagnosed step in each
        lines.append(f"phase 2 loss-term diagnostics (one step per epoch of {EPOCH_ITERS} "
                     f"iterations), fast path timed in alternation: {diagnosed:.3g} it/s "
                     f"diagnosed vs {plain:.3g} plain: {extra * 1e3:+.3g} ms per epoch = "
                     f"{100 * extra * plain / EPOCH_ITERS:.3g}% of an epoch")
    evaluation = results["stages"].get("evaluate", {})
    if "fast_no_texture" in evaluation:
        with_texture, without = evaluation["fast_with_texture"], evaluation["fast_no_texture"]
        lines.append(f"evaluate: fast path {with_texture:.3g} img/s with the texture metrics, "
                     f"{without:.3g} img/s without: they add "
                     f"{100 * (without / with_texture - 1):.1f}% to the evaluation time")
    phases = [results["stages"].get(f"phase {p}") for p in (1, 2)]
    if s["name"].startswith("paper") and all(phases):
        for n in names:
            if all(n in st for st in phases):
                hours = sum(s["schedule"][p] / st[n] for p, st in zip((1, 2), phases)) / 3600
                lines.append(f"projected full paper schedule ({s['schedule'][1]} + "
                             f"{s['schedule'][2]} iterations), {n}: {hours:.2f} h")
    elif not s["name"].startswith("paper"):
        lines.append("no projection of the paper schedule: these are not the paper's "
                     f"settings (use --preset paper{'3d' if volumes else ''})")
    return "\n".join(lines)


def save(results: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(results, indent=2, default=str))
