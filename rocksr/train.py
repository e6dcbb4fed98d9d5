"""Two-phase EDSR / EDSRGAN training: one loop for both phases, checkpointed and resumable.

Phase 1 ("SRCNN"): L1 loss. Phase 2 ("SRGAN"): starts from the phase-1 generator; generator
loss L1 + vgg_weight * VGG19-conv5_4 MSE + adv_weight * BCE(D(SR), real); one G step, then
one D step on the same SR batch, detached. Learning rate per epoch:
lr * decay_factor ** (epoch / decay_epochs) (epoch counted from 0, as the original code).

Fast path (DESIGN.md section 7): the train split lives on the device as uint8 and batches are
cut there (rocksr.batches); bf16 autocast, fused Adam and cuDNN autotuning on CUDA;
channels_last; optional torch.compile. The loop never waits for the device except every CHECK_EVERY
iterations, at checkpoints and at epoch ends: per-iteration figures go into a device-side
table whose rows are checked for NaN/inf at those points, so a bad loss is still reported
with its exact iteration.

Checkpoints (`<checkpoints>/checkpoint.pt`, written atomically every `checkpoint_every`
iterations, on SIGTERM, and never once a loss or weight went non-finite) hold the models,
optimizers, crop sampler and torch RNG states, the finished epochs' metrics rows and the
current epoch's per-iteration table. A run finds its checkpoint and continues from it, so a
killed run, rerun, ends at the same iteration with the same weights as an uninterrupted one.
A checkpoint is used only if its fingerprint (settings, packs index, phase-2 init file hash)
matches the run's; otherwise it is ignored (logged) and overwritten. Final outputs are
written only after the last iteration; then the checkpoint is deleted, so re-invoking a
finished job (e.g. --forcerun) trains afresh: on the CPU, with the same seed and thread count,
to the same weights. If the job dies after
writing its outputs but before deleting the checkpoint, the rerun finds a checkpoint at the
last iteration and just writes the outputs again.
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
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from rocksr.batches import CropSampler, pick_images, stack_packs
from rocksr.config import ConfigError
from rocksr.data.packs import load_split, read_index
from rocksr.device import pick_device
from rocksr.losses import VGGLoss, discriminator_loss, generator_adversarial_loss
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
    2: ["d_lr", "vgg_weight", "adv_weight", "vgg_weights"],
}


class TrainingInterrupted(Exception):
    """SIGTERM arrived; a checkpoint was saved. The CLI exits 143 so a retry resumes."""


class NonFiniteError(RuntimeError):
    """A loss or weight became NaN/inf; the last good checkpoint is left untouched."""


def metrics_columns(phase: int) -> list[str]:
    return ["epoch", "iteration", "lr", *STATS[phase], "val_psnr"]


def check_settings(s: dict) -> None:
    phase = s.get("phase")
    if phase not in (1, 2):
        raise ConfigError(f"settings: 'phase' must be 1 or 2, got {phase!r}")
    for key in REQUIRED[1] + (REQUIRED[2] if phase == 2 else []):
        if key not in s:
            raise ConfigError(f"settings: missing key '{key}' (training.phase{phase}.{key} "
                              f"or training.{key} in the config)")
    if phase == 2 and (s["scale"] * s["lr_patch"]) % 16:
        raise ConfigError(f"training.phase2.lr_patch: scale x lr_patch = "
                          f"{s['scale'] * s['lr_patch']} must be a multiple of 16 "
                          "(the discriminator halves its input 4 times)")


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


def generator_terms(sr: torch.Tensor, hr: torch.Tensor, discriminator: nn.Module | None = None,
                    vgg: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """The generator's loss terms; each keeps its graph back to the generator."""
    terms = {"loss_l1": F.l1_loss(sr.float(), hr)}
    if vgg is not None:
        terms["loss_vgg"] = vgg(sr, hr)
    if discriminator is not None:
        terms["loss_adv"] = generator_adversarial_loss(discriminator(sr))
    return terms


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


def train_step(s: dict, generator: nn.Module, opt_g: torch.optim.Optimizer,
               lr: torch.Tensor, hr: torch.Tensor, amp, discriminator: nn.Module | None = None,
               opt_d: torch.optim.Optimizer | None = None,
               vgg: nn.Module | None = None) -> torch.Tensor:
    """One iteration (phase 2 when a discriminator is given); returns the STATS row, on device."""
    with amp:
        sr = generator(lr)
        if discriminator is not None:
            discriminator.requires_grad_(False)  # G's step needs no D parameter gradients
        terms = generator_terms(sr, hr, discriminator, vgg)
        loss_g = terms["loss_l1"]
        if discriminator is not None:
            loss_g = (loss_g + s["vgg_weight"] * terms["loss_vgg"]
                      + s["adv_weight"] * terms["loss_adv"])
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    stats = {**terms, "loss_g": loss_g, "train_psnr": batch_psnr(sr, hr)}
    if discriminator is not None:
        stats.update(discriminator_step(discriminator, opt_d, sr, hr, amp))
    return torch.stack([stats[k].detach().float() for k in STATS[s["phase"]]])


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
          discriminator_out: str | Path | None = None, gpus: int = 0) -> None:
    """`gpus`: GPUs the job holds (rocksr.device.pick_device: then it never runs on the CPU
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
    sampler = CropSampler(train_lr, train_hr, s["scale"], s["lr_patch"], s["batch_size"],
                          seed=s["seed"], **s["augment"])
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
        vgg = VGGLoss(s["vgg_weights"]).to(device, memory_format=memory_format)
    generator.to(device, memory_format=memory_format)
    opt_g = make_adam(generator.parameters(), s["lr"], s["betas"], device)
    if phase == 2:
        opt_d = make_adam(discriminator.parameters(), s["d_lr"], s["betas"], device)
    models = [m for m in (generator, discriminator) if m is not None]
    step_models = {"generator": generator, "discriminator": discriminator, "vgg": vgg}
    if s["compile"]:
        step_models = {k: m if m is None else torch.compile(m) for k, m in step_models.items()}

    # Resume.
    iters, total = s["iters_per_epoch"], s["epochs"] * s["iters_per_epoch"]
    stats = torch.zeros(iters, len(STATS[phase]), device=device)  # this epoch, per iteration
    rows: list[dict] = []
    iteration = 0
    ckpt_path = Path(checkpoints) / CHECKPOINT
    fingerprint = json.dumps({"settings": s, "packs": read_index(packs_dir),
                              "init": _file_sha256(Path(init)) if init else None}, sort_keys=True)
    if ckpt_path.exists():
        try:  # on the CPU: RNG states must be CPU tensors; load_state_dict moves the rest
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"{ckpt_path}: unreadable checkpoint ({exc}); delete it to "
                             "train from the start") from None
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
            done = iteration % iters
            stats[:done] = ckpt["epoch_stats"].to(device)
            log.info("resumed from %s at iteration %d of %d", ckpt_path, iteration, total)

    def save_checkpoint() -> None:
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

    # SIGTERM (a SLURM time limit, Snakemake shutting down): finish the iteration, save, exit.
    stop = []
    previous_handler = signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
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
            stats[i] = train_step(s, step_models["generator"], opt_g,
                                  lr_batch.contiguous(memory_format=memory_format),
                                  hr_batch.contiguous(memory_format=memory_format), amp,
                                  step_models["discriminator"], opt_d, step_models["vgg"])
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
                rows.append(row)
                log.info("epoch %d/%d: %s", epoch + 1, s["epochs"],
                         ", ".join(f"{k} {v:.5g}" for k, v in row.items()))
            if checkpoint_due:
                save_checkpoint()
            if stop:
                raise TrainingInterrupted(f"SIGTERM: checkpoint saved at iteration {iteration} "
                                          f"of {total} in {ckpt_path}; rerun to resume")
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, previous_handler)

    # Final outputs, only now; then the checkpoint has served its purpose.
    _check_finite_weights(models, iteration)
    meta = {"phase": phase, "iteration": iteration, "settings": s}
    save_model(generator_out, generator, **meta)
    if phase == 2:
        save_model(discriminator_out, discriminator, **meta)
    _write_metrics(Path(metrics_out), metrics_columns(phase), rows)
    ckpt_path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        ckpt_path.parent.rmdir()  # only if nothing else lives there
    log.info("phase %d done: %d iterations; wrote %s", phase, iteration, generator_out)
