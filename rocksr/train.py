"""Two-phase EDSR / EDSRGAN training: one loop for both phases, checkpointed and resumable.

Phase 1 ("SRCNN"): L1 loss. Phase 2 ("SRGAN"): starts from the phase-1 generator; generator
loss L1 + vgg_weight * VGG19 MSE + adv_weight * BCE(D(SR), real) (rocksr.losses; VGG layer,
input scale and weights as the authors' code by default: rocksr.vgg); one G step, then one D
step on the same SR batch, detached. Learning rate per epoch: `lr_at`. Once per phase-2 epoch
each generator term's weighted value and gradient share are measured and a term that does
nothing, or a collapsed discriminator, is warned about (rocksr.diagnostics).

Fast path (DESIGN.md section 7): the train split lives on the device as uint8 and batches are
cut there (rocksr.batches); bf16 autocast, fused Adam and cuDNN autotuning on CUDA;
channels_last; optional torch.compile. The loop never waits for the device except every
CHECK_EVERY iterations, at checkpoints and at epoch ends: per-iteration figures go into a
device-side table whose rows are checked for NaN/inf at those points, so a bad loss is still
reported with its exact iteration.

Checkpoints (rocksr.checkpoint; every `checkpoint_every` iterations, on a stop signal, at the
end, never after a NaN/inf loss or weight): a killed run, rerun, ends at the same iteration
with the same weights as an uninterrupted one.

Stopping (see `stop_signals`): SIGTERM and SIGINT finish the iteration, save a checkpoint
and raise TrainingInterrupted; after the last iteration they are ignored. The final state is
checkpointed before the outputs are written, and train() leaves that checkpoint in place: the
caller removes it (rocksr.checkpoint.remove) once the outputs are written and it is about to
exit. A job killed anywhere in between finds the final checkpoint on its rerun and only
writes the outputs again; a finished job re-invoked (e.g. --forcerun) trains afresh: on the
CPU, with the same seed and thread count, to the same weights.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from rocksr.batches import CropSampler, pick_images, stack_packs
from rocksr.checkpoint import Checkpoint, TrainingState, fingerprint
from rocksr.data.packs import load_split
from rocksr.device import pick_device
from rocksr.diagnostics import COLUMNS as DIAGNOSTICS
from rocksr.diagnostics import epoch_warnings, term_diagnostics
from rocksr.fileio import atomic_path
from rocksr.losses import VGGLoss, discriminator_loss, generator_loss
from rocksr.metrics import psnr
from rocksr.models import Discriminator, Generator, load_model, save_model
from rocksr.pixels import signed_to_unit, uint8_to_signed, uint8_to_unit
from rocksr.settings import ConfigError, PhaseSettings

log = logging.getLogger(__name__)

CHECK_EVERY = 50  # iterations between host syncs: finite-loss check and progress figures
STATS = {  # per-iteration figures, averaged per epoch into the metrics CSV
    1: ["loss_l1", "train_psnr"],
    2: ["loss_l1", "loss_vgg", "loss_adv", "loss_g", "loss_d", "d_real", "d_fake", "train_psnr"],
}
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # SLURM time limit, kill, Snakemake; Ctrl-C


class TrainingInterrupted(Exception):
    """A stop signal arrived; a checkpoint was saved. The CLI exits 128 + the signal number
    (143 for SIGTERM, 130 for SIGINT), so a retry or rerun resumes."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class NonFiniteError(RuntimeError):
    """A loss or weight became NaN/inf; the last good checkpoint is left untouched."""


@contextlib.contextmanager
def stop_signals() -> Iterator[list[int]]:
    """While inside, SIGTERM and SIGINT are only recorded in the yielded list, for train()'s
    `stop`: no signal can cut a checkpoint or an output file half-written."""
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                for sig in STOP_SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def metrics_columns(phase: int) -> list[str]:
    extra = [*DIAGNOSTICS, "warnings"] if phase == 2 else []
    return ["epoch", "iteration", "lr", *STATS[phase], "val_psnr", *extra]


# --- numerics and models -------------------------------------------------------------------

def tune_backend(device: torch.device) -> None:
    """cuDNN autotuning: training shapes never change, so the fastest kernels are picked once
    (CPU runs are untouched and stay bit-for-bit deterministic)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def autocast(device: torch.device, precision: str):
    """bf16 autocast on CUDA when asked; fp32 otherwise (CPU bf16 convs are slow)."""
    if device.type == "cuda" and precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_adam(params, lr: float, betas, device: torch.device,
              fused: bool = True) -> torch.optim.Adam:
    """Adam as the paper's; the fused kernel on CUDA (one launch for all parameters)."""
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas),
                            fused=fused and device.type == "cuda")


@dataclasses.dataclass
class Models:
    """What one phase trains: G and its optimizer; in phase 2 also D, its optimizer and the
    frozen VGG feature loss."""
    generator: nn.Module
    opt_g: torch.optim.Optimizer
    discriminator: nn.Module | None = None
    opt_d: torch.optim.Optimizer | None = None
    vgg: nn.Module | None = None

    def parts(self) -> dict:
        """The state a checkpoint holds, by name."""
        names = ("generator", "opt_g", "discriminator", "opt_d")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def set_lr(self, lr_g: float, lr_d: float | None) -> None:
        for optimizer, lr in ((self.opt_g, lr_g), (self.opt_d, lr_d)):
            for group in optimizer.param_groups if optimizer else ():
                group["lr"] = lr

    def compiled(self) -> Models:
        """The same models (shared weights) behind torch.compile, for the step only."""
        return dataclasses.replace(self, **{
            n: torch.compile(getattr(self, n)) for n in ("generator", "discriminator", "vgg")
            if getattr(self, n) is not None})


def build_models(s: PhaseSettings, device: torch.device, init: str | Path | None = None,
                 fused: bool = True) -> Models:
    """G (with the weights of the generator file `init`, if given), D and VGG in phase 2, and
    their Adams, on `device` in the settings' memory format. `fused=False`: the plain Adam
    (the benchmark's baseline)."""
    memory_format = torch.channels_last if s.channels_last else torch.contiguous_format
    generator = Generator(s.scale, s.model.blocks, s.model.filters)
    discriminator = vgg = None
    if init is not None:
        start = load_model(init)
        if not isinstance(start, Generator) or start.arch != generator.arch:
            raise ConfigError(f"{init}: expected a generator with {generator.arch}, got "
                              f"{getattr(start, 'arch', type(start).__name__)}")
        generator.load_state_dict(start.state_dict())
    if s.phase == 2:
        discriminator = Discriminator(s.hr_patch).to(device, memory_format=memory_format)
        vgg = VGGLoss(s.vgg_weights, s.vgg_layer, s.vgg_input)
        vgg.to(device, memory_format=memory_format)
    generator.to(device, memory_format=memory_format)
    opt_d = (make_adam(discriminator.parameters(), s.d_lr, s.betas, device, fused)
             if discriminator is not None else None)
    return Models(generator, make_adam(generator.parameters(), s.lr, s.betas, device, fused),
                  discriminator, opt_d, vgg)


def lr_at(s: PhaseSettings, epoch: int) -> tuple[float, float | None]:
    """G's and D's learning rate in `epoch` (from 0): lr * decay_factor ** (epoch /
    decay_epochs), as the original code; D's is None in phase 1."""
    decay = s.decay_factor ** (epoch / s.decay_epochs)
    return s.lr * decay, (s.d_lr * decay if s.d_lr is not None else None)


# --- one iteration -----------------------------------------------------------------------

def batch_psnr(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean PSNR of [-1, 1] batches, scored in [0, 1] with peak 1 on the clamped SR."""
    return psnr(signed_to_unit(sr.detach().float()).clamp(0, 1), signed_to_unit(hr)).mean()


def discriminator_step(discriminator: nn.Module, optimizer: torch.optim.Optimizer,
                       sr: torch.Tensor, hr: torch.Tensor, amp) -> dict[str, torch.Tensor]:
    discriminator.requires_grad_(True)
    with amp:
        real, fake = discriminator(hr), discriminator(sr.detach())  # detach: G is untouched
        loss_d = discriminator_loss(real, fake)
    optimizer.zero_grad(set_to_none=True)
    loss_d.backward()
    optimizer.step()
    return {"loss_d": loss_d, "d_real": torch.sigmoid(real.float()).mean(),
            "d_fake": torch.sigmoid(fake.float()).mean()}


def train_step(m: Models, lr: torch.Tensor, hr: torch.Tensor, amp, vgg_weight: float = 0.0,
               adv_weight: float = 0.0, diagnose: bool = False
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
    """One iteration (phase 2 when `m` has a discriminator). Returns the STATS row and, when
    `diagnose`, the loss terms' weighted values and gradient shares; all on the device."""
    with amp:
        sr = m.generator(lr)
        if m.discriminator is not None:
            m.discriminator.requires_grad_(False)  # G's step needs no D parameter gradients
        loss_g, terms, weighted = generator_loss(sr, hr, m.discriminator, m.vgg, vgg_weight,
                                                 adv_weight)
    diagnostics = (term_diagnostics(weighted, list(m.generator.parameters()))
                   if diagnose else None)
    m.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    m.opt_g.step()
    stats = {**terms, "loss_g": loss_g, "train_psnr": batch_psnr(sr, hr)}
    if m.discriminator is not None:
        stats.update(discriminator_step(m.discriminator, m.opt_d, sr, hr, amp))
    phase = 1 if m.discriminator is None else 2
    return torch.stack([stats[k].detach().float() for k in STATS[phase]]), diagnostics


class Step:
    """A phase's iteration and validation with its numerics (autocast, memory format)."""

    def __init__(self, s: PhaseSettings, models: Models, device: torch.device):
        self.models = models.compiled() if s.compile else models
        self.generator = models.generator  # validation runs uncompiled (other shapes)
        self.amp = autocast(device, s.precision)
        self.memory_format = torch.channels_last if s.channels_last else torch.contiguous_format
        self.weights = ({"vgg_weight": s.vgg_weight, "adv_weight": s.adv_weight}
                        if s.phase == 2 else {})

    def __call__(self, lr: torch.Tensor, hr: torch.Tensor, diagnose: bool = False):
        return train_step(self.models, lr.contiguous(memory_format=self.memory_format),
                          hr.contiguous(memory_format=self.memory_format), self.amp,
                          **self.weights, diagnose=diagnose)

    @torch.inference_mode()
    def validate(self, lr: torch.Tensor, hr: torch.Tensor, batch: int) -> float:
        """Mean PSNR over full validation images (uint8 tensors), clamped SR, peak 1."""
        scores = []
        for i in range(0, len(lr), batch):
            x = uint8_to_signed(lr[i:i + batch].unsqueeze(1))
            with self.amp:
                sr = self.generator(x.contiguous(memory_format=self.memory_format))
            scores.append(psnr(signed_to_unit(sr.float()).clamp(0, 1),
                               uint8_to_unit(hr[i:i + batch].unsqueeze(1))))
        return torch.cat(scores).mean().item()


# --- data, checks and outputs ------------------------------------------------------------

def sampler_seed(seed: int, phase: int) -> int:
    """The crop sampler's seed: one independent stream per (run seed, phase)."""
    return int(np.random.SeedSequence([seed, phase]).generate_state(1)[0])


def load_data(s: PhaseSettings, packs_dir: str | Path, device: torch.device
              ) -> tuple[CropSampler, tuple[torch.Tensor, torch.Tensor]]:
    """The train split on the device behind the phase's crop sampler, and a fixed subset of
    full valid images."""
    splits = {}
    for split in ("train", "valid"):
        splits[split] = load_split(packs_dir, split)
        if not splits[split]:
            raise ValueError(f"{packs_dir}: the {split} split has no images")
    train_lr, train_hr = stack_packs(splits["train"], device)
    valid = pick_images(splits["valid"], s.validation.images, device)
    # Each phase its own crop sequence (phase 2 must not replay phase 1's crops).
    sampler = CropSampler(train_lr, train_hr, s.scale, s.lr_patch, s.batch_size,
                          seed=sampler_seed(s.seed, s.phase), flips=s.augment.flips,
                          rot90=s.augment.rot90)
    log.info("train: %d images %s on %s; validation: %d full images", len(train_lr),
             tuple(train_hr.shape[1:]), device, len(valid[0]))
    return sampler, valid


def check_finite(state: TrainingState, done: int, phase: int, where: Path) -> None:
    """Raise on the first non-finite loss among this epoch's first `done` iterations."""
    columns = [j for j, k in enumerate(STATS[phase]) if k.startswith("loss_")]
    table = state.stats[:done, columns]
    bad = ~torch.isfinite(table).all(dim=1)
    if bad.any():
        row = int(bad.nonzero()[0])
        values = ", ".join(f"{STATS[phase][j]}={v:.4g}" for j, v in zip(columns, table[row].tolist()))
        raise NonFiniteError(f"non-finite loss at iteration {state.iteration - done + row + 1} "
                             f"({values}); training stopped, last good checkpoint kept: {where}")


def save_checkpoint(checkpoint: Checkpoint, state: TrainingState, models: Models) -> None:
    """Never a checkpoint of NaN/inf weights: the last good one stays."""
    params = [p for m in (models.generator, models.discriminator) if m for p in m.parameters()]
    if not torch.stack([p.isfinite().all() for p in params]).all():
        raise NonFiniteError(f"weights became NaN/inf by iteration {state.iteration}; stopped "
                             "without saving (the last good checkpoint is kept)")
    checkpoint.save(state)


def epoch_row(s: PhaseSettings, state: TrainingState, epoch: int, step: Step,
              valid: tuple[torch.Tensor, torch.Tensor], diagnostics: dict | None) -> dict:
    """The epoch's metrics row (means of its iterations, validation PSNR, phase-2 diagnostics),
    logged with its warnings."""
    row = {"epoch": epoch + 1, "iteration": state.iteration, "lr": lr_at(s, epoch)[0],
           **dict(zip(STATS[s.phase], state.stats.mean(dim=0).tolist())),
           "val_psnr": step.validate(*valid, s.batch_size)}
    if diagnostics is not None:
        row.update({k: v.item() for k, v in diagnostics.items()})
        warnings = epoch_warnings(row, {"l1": 1.0, "vgg": s.vgg_weight, "adv": s.adv_weight})
        row["warnings"] = "; ".join(warnings)
        for warning in warnings:
            log.warning("!!! epoch %d: %s", epoch + 1, warning)
    log.info("epoch %d/%d: %s", epoch + 1, s.epochs, ", ".join(
        f"{k} {v:.5g}" for k, v in row.items() if isinstance(v, (int, float))))
    return row


def write_metrics(path: Path, columns: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


# --- the loop ----------------------------------------------------------------------------

def train(s: PhaseSettings | dict, packs_dir: str | Path, checkpoints: str | Path,
          generator_out: str | Path, metrics_out: str | Path, init: str | Path | None = None,
          discriminator_out: str | Path | None = None, stop: Sequence[int] = (),
          gpus: int = 0) -> None:
    """Train one phase and write its outputs. `stop` is stop_signals()' list: once it holds
    a signal, training stops at the end of the iteration with a checkpoint (unless that was
    the last one). The final checkpoint is left for the caller to remove. `gpus`: GPUs the
    job holds (rocksr.device.pick_device: then it never runs on the CPU unless asked)."""
    s = PhaseSettings.from_dict(s)
    if s.phase == 2 and (init is None or discriminator_out is None):
        raise ConfigError("phase 2 needs an initial generator (--init) and a discriminator "
                          "output path (--discriminator)")
    device = pick_device(s.device, gpus)
    tune_backend(device)
    torch.manual_seed(s.seed)
    log.info("phase %d on %s (precision %s, channels_last %s, compile %s)", s.phase, device,
             s.precision if device.type == "cuda" else "fp32", s.channels_last, s.compile)
    sampler, valid = load_data(s, packs_dir, device)
    models = build_models(s, device, init)
    iters, total = s.iters_per_epoch, s.total_iterations
    state = TrainingState(models.parts(), sampler,
                          torch.zeros(iters, len(STATS[s.phase]), device=device))
    checkpoint = Checkpoint(checkpoints, fingerprint(s, packs_dir, init))
    if checkpoint.resume(state):
        log.info("resumed from %s at iteration %d of %d", checkpoint.path, state.iteration, total)
    step = Step(s, models, device)
    bar = tqdm(total=total, initial=state.iteration, desc=f"phase {s.phase}", unit="it",
               dynamic_ncols=True, mininterval=1.0 if sys.stderr.isatty() else 60.0)
    models.set_lr(*lr_at(s, state.iteration // iters))
    with bar:
        while state.iteration < total:
            epoch, i = divmod(state.iteration, iters)
            if i == 0:
                models.set_lr(*lr_at(s, epoch))
            state.stats[i], diagnostics = step(*sampler.sample(),
                                               diagnose=s.phase == 2 and i == iters - 1)
            state.iteration += 1
            bar.update()
            epoch_done, stopping = i == iters - 1, bool(stop)
            checkpoint_due = state.iteration % s.checkpoint_every == 0 or stopping
            if epoch_done or checkpoint_due or state.iteration % CHECK_EVERY == 0:
                check_finite(state, i + 1, s.phase, checkpoint.path)
                bar.set_postfix(loss_l1=f"{state.stats[i, 0].item():.4f}", refresh=False)
            if epoch_done:
                state.rows.append(epoch_row(s, state, epoch, step, valid, diagnostics))
            if checkpoint_due:
                save_checkpoint(checkpoint, state, models)
            if stopping and state.iteration < total:  # after the last one, finishing is quicker
                raise TrainingInterrupted(
                    f"{signal.Signals(stop[0]).name}: checkpoint saved at iteration "
                    f"{state.iteration} of {total} in {checkpoint.path}; rerun to resume", stop[0])
    # Final state first, then the outputs: a kill from here on leaves the final checkpoint,
    # from which the rerun writes the outputs again without training.
    if checkpoint.saved_at != state.iteration:
        save_checkpoint(checkpoint, state, models)
    meta = {"phase": s.phase, "iteration": state.iteration, "settings": s.to_dict()}
    save_model(generator_out, models.generator, **meta)
    if s.phase == 2:
        save_model(discriminator_out, models.discriminator, **meta)
    write_metrics(Path(metrics_out), metrics_columns(s.phase), state.rows)
    log.info("phase %d done: %d iterations; wrote %s", s.phase, state.iteration, generator_out)
