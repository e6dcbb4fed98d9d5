"""Two-phase EDSR / EDSRGAN training: one loop for both phases, checkpointed and resumable.

Phase 1 ("SRCNN"): L1 loss. Phase 2 ("SRGAN"): starts from the phase-1 generator; generator
loss L1 + vgg_weight * VGG19 MSE + adv_weight * BCE(D(SR), real) (rocksr.losses; VGG layer,
input scale and weights as the authors' code by default: rocksr.vgg); one G step, then one D
step on the same SR batch, detached. Learning rate per epoch:
lr * decay_factor ** (epoch / decay_epochs) (epoch counted from 0, as the original code).
Once per phase-2 epoch each generator term's weighted value and gradient share are measured
and a term that does nothing, or a collapsed discriminator, is warned about
(rocksr.diagnostics).

Fast path (DESIGN.md section 7): the train split lives on the device as uint8 and batches are
cut there (rocksr.batches); bf16 autocast, fused Adam and cuDNN autotuning on CUDA;
channels_last; optional torch.compile. The loop never waits for the device except every CHECK_EVERY
iterations, at checkpoints and at epoch ends: per-iteration figures go into a device-side
table whose rows are checked for NaN/inf at those points, so a bad loss is still reported
with its exact iteration.

Checkpoints (`<checkpoints>/checkpoint.pt`, written atomically every `checkpoint_every`
iterations, on a stop signal, at the end, never after a NaN/inf loss or weight) hold the models,
optimizers, crop sampler and torch RNG states, the finished epochs' metrics rows and the
current epoch's per-iteration table. A run finds its checkpoint and continues from it, so a
killed run, rerun, ends at the same iteration with the same weights as an uninterrupted one.
A checkpoint is used only if its fingerprint (settings, packs index, phase-2 init file hash)
matches the run's; otherwise it is ignored (logged) and overwritten.

Stopping (see `stop_signals`): SIGTERM and SIGINT finish the iteration, save a checkpoint
and raise TrainingInterrupted; after the last iteration they are ignored. The final state is
checkpointed before the outputs are written, and train() leaves that checkpoint in place: the
caller removes it with `remove_checkpoint` once the outputs are written and it is about to
exit. A job killed anywhere in between finds the final checkpoint on its rerun and only
writes the outputs again; a finished job re-invoked (e.g. --forcerun) trains afresh: on the
CPU, with the same seed and thread count, to the same weights.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from rocksr.batches import CropSampler, pick_images, stack_packs
from rocksr.config import ConfigError, check_phase
from rocksr.data.packs import load_split, read_index
from rocksr.device import pick_device
from rocksr.diagnostics import COLUMNS as DIAGNOSTICS
from rocksr.diagnostics import epoch_warnings, term_diagnostics
from rocksr.losses import VGGLoss, discriminator_loss, generator_terms, weighted_terms
from rocksr.metrics import psnr
from rocksr.models import Discriminator, Generator, load_model, save_model
from rocksr.pixels import signed_to_unit, uint8_to_signed, uint8_to_unit

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
CHECK_EVERY = 50  # iterations between host syncs: finite-loss check and progress figures
STATS = {  # per-iteration figures, averaged per epoch into the metrics CSV
    1: ["loss_l1", "train_psnr"],
    2: ["loss_l1", "loss_vgg", "loss_adv", "loss_g", "loss_d", "d_real", "d_fake", "train_psnr"],
}
REQUIRED = {
    1: ["phase", "scale", "seed", "model", "device", "precision", "channels_last", "compile",
        "checkpoint_every", "validation", "epochs", "iters_per_epoch", "batch_size",
        "lr_patch", "lr", "betas", "decay_factor", "decay_epochs", "augment"],
    2: ["d_lr", "vgg_weight", "adv_weight", "vgg_weights", "vgg_layer", "vgg_input"],
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


def remove_checkpoint(checkpoints: str | Path) -> None:
    """Once the outputs are in place: delete the phase's checkpoint (and a half-written one),
    then its folder and that folder's parent (results/{run}/checkpoints) if left empty."""
    folder = Path(checkpoints)
    for name in (CHECKPOINT, CHECKPOINT + ".tmp"):
        (folder / name).unlink(missing_ok=True)
    for empty in (folder, folder.parent):
        with contextlib.suppress(OSError):  # not empty (or never made)
            empty.rmdir()


def metrics_columns(phase: int) -> list[str]:
    extra = [*DIAGNOSTICS, "warnings"] if phase == 2 else []
    return ["epoch", "iteration", "lr", *STATS[phase], "val_psnr", *extra]


def check_settings(s: dict) -> None:
    phase = s.get("phase")
    if phase not in (1, 2):
        raise ConfigError(f"settings: 'phase' must be 1 or 2, got {phase!r}")
    for key in REQUIRED[1] + (REQUIRED[2] if phase == 2 else []):
        if key not in s:
            raise ConfigError(f"settings: missing key '{key}' (training.phase{phase}.{key} "
                              f"or training.{key} in the config)")
    check_phase(s)


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


def make_adam(params, lr: float, betas, device: torch.device) -> torch.optim.Adam:
    """Adam as the paper's; the fused kernel on CUDA (one launch for all parameters)."""
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), fused=device.type == "cuda")


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


def train_step(generator: nn.Module, opt_g: torch.optim.Optimizer, lr: torch.Tensor,
               hr: torch.Tensor, amp, discriminator: nn.Module | None = None,
               opt_d: torch.optim.Optimizer | None = None, vgg: nn.Module | None = None,
               vgg_weight: float = 0.0, adv_weight: float = 0.0, diagnose: bool = False
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
    """One iteration (phase 2 when a discriminator is given). Returns the STATS row and, when
    `diagnose`, the loss terms' weighted values and gradient shares; all on the device."""
    with amp:
        sr = generator(lr)
        if discriminator is not None:
            discriminator.requires_grad_(False)  # G's step needs no D parameter gradients
        terms = generator_terms(sr, hr, discriminator, vgg)
        weighted = weighted_terms(terms, vgg_weight, adv_weight)
        loss_g = sum(weighted.values())
    diagnostics = (term_diagnostics(weighted, list(generator.parameters()))
                   if diagnose else None)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    stats = {**terms, "loss_g": loss_g, "train_psnr": batch_psnr(sr, hr)}
    if discriminator is not None:
        stats.update(discriminator_step(discriminator, opt_d, sr, hr, amp))
    phase = 1 if discriminator is None else 2
    return torch.stack([stats[k].detach().float() for k in STATS[phase]]), diagnostics


@torch.inference_mode()
def validate(generator: nn.Module, lr: torch.Tensor, hr: torch.Tensor, batch: int, amp,
             memory_format: torch.memory_format) -> float:
    """Mean PSNR over full validation images (uint8 tensors), clamped SR, peak 1."""
    scores = []
    for i in range(0, len(lr), batch):
        x = uint8_to_signed(lr[i:i + batch].unsqueeze(1)).contiguous(memory_format=memory_format)
        with amp:
            sr = generator(x)
        scores.append(psnr(signed_to_unit(sr.float()).clamp(0, 1),
                           uint8_to_unit(hr[i:i + batch].unsqueeze(1))))
    return torch.cat(scores).mean().item()


def sampler_seed(seed: int, phase: int) -> int:
    """The crop sampler's seed: one independent stream per (run seed, phase)."""
    return int(np.random.SeedSequence([seed, phase]).generate_state(1)[0])


def _split(packs_dir: str | Path, split: str) -> list:
    packs = load_split(packs_dir, split)
    if not packs:
        raise ValueError(f"{packs_dir}: the {split} split has no images")
    return packs


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_metrics(path: Path, columns: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> float:
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def _check_finite_weights(models: list[nn.Module], iteration: int) -> None:
    params = [p for m in models for p in m.parameters()]
    if not torch.stack([p.isfinite().all() for p in params]).all():
        raise NonFiniteError(f"weights became NaN/inf by iteration {iteration}; stopped "
                             "without saving (the last good checkpoint is kept)")


def train(s: dict, packs_dir: str | Path, checkpoints: str | Path, generator_out: str | Path,
          metrics_out: str | Path, init: str | Path | None = None,
          discriminator_out: str | Path | None = None, stop: Sequence[int] = (),
          gpus: int = 0) -> None:
    """Train one phase and write its outputs. `stop` is stop_signals()' list: once it holds
    a signal, training stops at the end of the iteration with a checkpoint (unless that was
    the last one). The final checkpoint is left for the caller's remove_checkpoint().
    `gpus`: GPUs the job holds (rocksr.device.pick_device: then it never runs on the CPU
    unless training.device is cpu)."""
    check_settings(s)
    phase = s["phase"]
    if phase == 2 and (init is None or discriminator_out is None):
        raise ConfigError("phase 2 needs an initial generator (--init) and a discriminator "
                          "output path (--discriminator)")
    device = pick_device(s["device"], gpus)
    tune_backend(device)
    amp = autocast(device, s["precision"])
    memory_format = torch.channels_last if s["channels_last"] else torch.contiguous_format
    torch.manual_seed(s["seed"])
    log.info("phase %d on %s (precision %s, channels_last %s, compile %s)", phase, device,
             s["precision"] if device.type == "cuda" else "fp32", s["channels_last"], s["compile"])

    # Data: the whole train split on the device; a fixed subset of full valid images.
    train_lr, train_hr = stack_packs(_split(packs_dir, "train"), device)
    val_lr, val_hr = pick_images(_split(packs_dir, "valid"), s["validation"]["images"], device)
    # Each phase its own crop sequence (phase 2 must not replay phase 1's crops).
    sampler = CropSampler(train_lr, train_hr, s["scale"], s["lr_patch"], s["batch_size"],
                          seed=sampler_seed(s["seed"], phase), **s["augment"])
    log.info("train: %d images %s on %s; validation: %d full images", len(train_lr),
             tuple(train_hr.shape[1:]), device, len(val_lr))

    # Models and optimizers.
    generator = Generator(s["scale"], s["model"]["blocks"], s["model"]["filters"])
    discriminator = vgg = opt_d = None
    if phase == 2:
        start_g = load_model(init)
        if not isinstance(start_g, Generator) or start_g.arch != generator.arch:
            raise ConfigError(f"{init}: expected a generator with {generator.arch}, got "
                              f"{getattr(start_g, 'arch', type(start_g).__name__)}")
        generator.load_state_dict(start_g.state_dict())
        discriminator = Discriminator(s["scale"] * s["lr_patch"])
        discriminator.to(device, memory_format=memory_format)
        vgg = VGGLoss(s["vgg_weights"], s["vgg_layer"], s["vgg_input"])
        vgg.to(device, memory_format=memory_format)
    generator.to(device, memory_format=memory_format)
    opt_g = make_adam(generator.parameters(), s["lr"], s["betas"], device)
    if phase == 2:
        opt_d = make_adam(discriminator.parameters(), s["d_lr"], s["betas"], device)
    models = [m for m in (generator, discriminator) if m is not None]
    step_models = {"generator": generator, "discriminator": discriminator, "vgg": vgg}
    if s["compile"]:
        step_models = {k: m if m is None else torch.compile(m) for k, m in step_models.items()}

    weights = ({"vgg_weight": s["vgg_weight"], "adv_weight": s["adv_weight"]} if phase == 2
               else {})

    # Resume.
    iters, total = s["iters_per_epoch"], s["epochs"] * s["iters_per_epoch"]
    stats = torch.zeros(iters, len(STATS[phase]), device=device)  # this epoch, per iteration
    rows: list[dict] = []
    iteration = 0
    saved_at = None  # iteration of the checkpoint on disk, if it is this run's
    ckpt_path = Path(checkpoints) / CHECKPOINT
    fingerprint = json.dumps({"settings": s, "packs": read_index(packs_dir),
                              "init": _file_sha256(Path(init)) if init else None}, sort_keys=True)
    if ckpt_path.exists():
        try:  # on the CPU: RNG states must be CPU tensors; load_state_dict moves the rest
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch's text is long: its first line is enough
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ValueError(f"delete {ckpt_path} to train this phase from the start: it is "
                             f"an unreadable checkpoint ({reason})") from None
        if ckpt.get("fingerprint") != fingerprint:
            log.warning("ignoring %s: it was written for other settings, data or initial "
                        "generator; training from the start", ckpt_path)
        else:
            generator.load_state_dict(ckpt["generator"])
            opt_g.load_state_dict(ckpt["opt_g"])
            if phase == 2:
                discriminator.load_state_dict(ckpt["discriminator"])
                opt_d.load_state_dict(ckpt["opt_d"])
            sampler.load_state_dict(ckpt["sampler"])
            torch.set_rng_state(ckpt["rng"]["cpu"])
            if device.type == "cuda" and ckpt["rng"]["cuda"] is not None:
                torch.cuda.set_rng_state(ckpt["rng"]["cuda"])
            iteration, rows = ckpt["iteration"], ckpt["rows"]
            saved_at = iteration
            done = iteration % iters
            stats[:done] = ckpt["epoch_stats"].to(device)
            log.info("resumed from %s at iteration %d of %d", ckpt_path, iteration, total)

    def save_checkpoint() -> None:
        nonlocal saved_at
        _check_finite_weights(models, iteration)
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_save({
            "fingerprint": fingerprint, "iteration": iteration, "rows": rows,
            "epoch_stats": stats[:iteration % iters].cpu(),
            "generator": generator.state_dict(), "opt_g": opt_g.state_dict(),
            "discriminator": discriminator.state_dict() if discriminator else None,
            "opt_d": opt_d.state_dict() if opt_d else None,
            "sampler": sampler.state_dict(),
            "rng": {"cpu": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None},
        }, ckpt_path)
        saved_at = iteration

    def check_finite(done: int) -> None:
        """Raise on the first non-finite loss among this epoch's first `done` iterations."""
        columns = [j for j, k in enumerate(STATS[phase]) if k.startswith("loss_")]
        table = stats[:done, columns]
        bad = ~torch.isfinite(table).all(dim=1)
        if bad.any():
            row = int(bad.nonzero()[0])
            values = ", ".join(f"{STATS[phase][j]}={v:.4g}"
                               for j, v in zip(columns, table[row].tolist()))
            raise NonFiniteError(
                f"non-finite loss at iteration {iteration - done + row + 1} ({values}); "
                f"training stopped, last good checkpoint kept: {ckpt_path}")

    bar = tqdm(total=total, initial=iteration, desc=f"phase {phase}", unit="it",
               dynamic_ncols=True, mininterval=1.0 if sys.stderr.isatty() else 60.0)
    lr_now = None  # set at each epoch start, and on resuming mid-epoch
    try:
        while iteration < total:
            epoch, i = divmod(iteration, iters)
            if lr_now is None or i == 0:
                decay = s["decay_factor"] ** (epoch / s["decay_epochs"])
                lr_now = _set_lr(opt_g, s["lr"] * decay)
                if opt_d is not None:
                    _set_lr(opt_d, s["d_lr"] * decay)
            lr_batch, hr_batch = sampler.sample()
            stats[i], diagnostics = train_step(
                step_models["generator"], opt_g, lr_batch.contiguous(memory_format=memory_format),
                hr_batch.contiguous(memory_format=memory_format), amp,
                step_models["discriminator"], opt_d, step_models["vgg"],
                **weights, diagnose=phase == 2 and i == iters - 1)
            iteration += 1
            bar.update()
            epoch_done = iteration % iters == 0
            checkpoint_due = iteration % s["checkpoint_every"] == 0 or bool(stop)
            if epoch_done or checkpoint_due or iteration % CHECK_EVERY == 0:
                check_finite(i + 1)
                bar.set_postfix(loss_l1=f"{stats[i, 0].item():.4f}", refresh=False)
            if epoch_done:
                means = dict(zip(STATS[phase], stats.mean(dim=0).tolist()))
                row = {"epoch": epoch + 1, "iteration": iteration, "lr": lr_now, **means,
                       "val_psnr": validate(generator, val_lr, val_hr, s["batch_size"], amp,
                                            memory_format)}
                if diagnostics is not None:
                    row.update({k: v.item() for k, v in diagnostics.items()})
                    warnings = epoch_warnings(row, {"l1": 1.0, "vgg": weights["vgg_weight"],
                                                    "adv": weights["adv_weight"]})
                    row["warnings"] = "; ".join(warnings)
                    for warning in warnings:
                        log.warning("!!! epoch %d: %s", epoch + 1, warning)
                rows.append(row)
                log.info("epoch %d/%d: %s", epoch + 1, s["epochs"],
                         ", ".join(f"{k} {v:.5g}" for k, v in row.items()
                                   if isinstance(v, (int, float))))
            if checkpoint_due:
                save_checkpoint()
            if stop and iteration < total:  # after the last one, finishing is quicker
                raise TrainingInterrupted(f"{signal.Signals(stop[0]).name}: checkpoint saved "
                                          f"at iteration {iteration} of {total} in "
                                          f"{ckpt_path}; rerun to resume", stop[0])
    finally:
        bar.close()

    # Final state first, then the outputs: a kill from here on leaves the final checkpoint,
    # from which the rerun writes the outputs again without training.
    if saved_at != iteration:
        save_checkpoint()
    meta = {"phase": phase, "iteration": iteration, "settings": s}
    save_model(generator_out, generator, **meta)
    if phase == 2:
        save_model(discriminator_out, discriminator, **meta)
    _write_metrics(Path(metrics_out), metrics_columns(phase), rows)
    log.info("phase %d done: %d iterations; wrote %s", phase, iteration, generator_out)
