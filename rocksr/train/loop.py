"""Two-phase EDSR / EDSRGAN training: one loop for both phases, checkpointed and resumable.

Phase 1 ("SRCNN"): L1 loss. Phase 2 ("SRGAN"): starts from the phase-1 generator; generator
loss L1 + vgg_weight * VGG19 MSE + adv_weight * BCE(D(SR), real) (rocksr.nets.losses; VGG layer
and input scale as the authors' code by default, weights as configured: rocksr.nets.vgg); one G
step, then one D step on the same SR batch, detached. Learning rate per epoch: `lr_at`. alpha
and beta are fixed, or rebalanced after each epoch (rocksr.train.balance). Every
`diagnose_every` phase-2 iterations and at each epoch's end, each generator term's weighted
value, gradient share and the cosines between the terms' gradients are measured, averaged
per epoch, and a term that does nothing, terms that cancel, or a collapsed discriminator,
are warned about (rocksr.train.diagnostics). The VGG19 weights are checked against the
sha256 recorded when they were provided (rocksr.nets.vgg_files), and their record is
logged and kept in every metrics row.

Fast path (docs/performance.md): the train split lives on the device as uint8 and batches are
cut there (rocksr.train.batches); bf16 autocast, fused Adam and cuDNN autotuning on CUDA;
channels_last; optional torch.compile. The loop never waits for the device except every
CHECK_EVERY iterations, at checkpoints and at epoch ends: per-iteration figures go into a
device-side table whose rows are checked for NaN/inf at those points, so a bad loss is still
reported with its exact iteration.

Checkpoints (rocksr.train.checkpoint; every `checkpoint_every` iterations, on a stop signal, at the
end, never after a NaN/inf loss or weight): a killed run, rerun, ends at the same iteration
with the same weights as an uninterrupted one. On CUDA they are written in the background
while training goes on; a stop signal, the end of the phase and any error wait for the
write in flight, so each leaves a complete checkpoint.

Stopping (see `stop_signals`): SIGTERM, SIGINT and SIGHUP finish the iteration, save a
checkpoint and raise TrainingInterrupted; after the last iteration they are ignored. The
final state is checkpointed before the outputs are written, and train() leaves that
checkpoint in place: the workflow deletes it once it has accepted the outputs
(rocksr.workflow.hooks). A job killed at any point after it finds the final checkpoint on its
rerun and only writes the outputs again; a finished job re-invoked (e.g. --forcerun) trains
afresh, its checkpoint deleted at the start: on the CPU, with the same seed and thread
count, to the same weights.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rocksr.data.packs import load_split
from rocksr.device import pick_device
from rocksr.fileio import atomic_path
from rocksr.nets.models import save_model
from rocksr.nets.vgg_files import VggRecord, settings_record, verify
from rocksr.settings import ConfigError, PhaseSettings
from rocksr.train.balance import LossWeights
from rocksr.train.batches import CropSampler, pick_images, stack_packs
from rocksr.train.checkpoint import Checkpoint, TrainingState, fingerprint
from rocksr.train.cuda_graphs import GraphedStep
from rocksr.train.diagnostics import COLUMNS as DIAGNOSTICS
from rocksr.train.diagnostics import EpochMean, diagnosed, epoch_warnings
from rocksr.train.step import STATS, Models, Step, build_models, tune_backend

log = logging.getLogger(__name__)

CHECK_EVERY = 50  # iterations between host syncs: finite-loss check and progress figures
# Devices whose runs write checkpoints in the background: on CUDA the host is idle while the
# GPU trains; on a CPU a writer thread would take the training's own cores.
BACKGROUND_WRITES = ("cuda",)
# SLURM's time limit, kill, Snakemake; Ctrl-C; a closed terminal
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class TrainingInterrupted(Exception):
    """A stop signal arrived; a checkpoint was saved. The CLI exits 128 + the signal number
    (143 for SIGTERM, 130 for SIGINT, 129 for SIGHUP), so a retry or rerun resumes."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class NonFiniteError(RuntimeError):
    """A loss or weight became NaN/inf; the last good checkpoint is left untouched."""


@contextlib.contextmanager
def stop_signals() -> Iterator[list[int]]:
    """While inside, the STOP_SIGNALS are only recorded in the yielded list, for train()'s
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
    extra = ["alpha", "beta", *DIAGNOSTICS, "warnings", "vgg", "vgg_exact"] if phase == 2 else []
    return ["epoch", "iteration", "lr", *STATS[phase], "val_psnr", *extra]


def lr_at(s: PhaseSettings, epoch: int) -> tuple[float, float | None]:
    """G's and D's learning rate in `epoch` (from 0): lr * decay_factor ** (epoch /
    decay_epochs), as the original code; D's is None in phase 1."""
    decay = s.decay_factor ** (epoch / s.decay_epochs)
    return s.lr * decay, (s.d_lr * decay if s.d_lr is not None else None)


# --- data, checks and outputs ------------------------------------------------------------

def make_step(s: PhaseSettings, models: Models, device: torch.device) -> Step:
    """The eager step, or on CUDA with `cuda_graphs` the same iteration as one CUDA graph."""
    if s.cuda_graphs and device.type == "cuda":
        return GraphedStep(s, models, device)
    if s.cuda_graphs:
        log.info("cuda_graphs: ignored on %s (CUDA only); eager steps", device)
    return Step(s, models, device)


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
        values = ", ".join(f"{STATS[phase][j]}={v:.4g}"
                           for j, v in zip(columns, table[row].tolist()))
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
              valid: tuple[torch.Tensor, torch.Tensor], diagnostics: dict | None = None,
              weights: LossWeights | None = None, vgg: VggRecord | None = None) -> dict:
    """The epoch's metrics row (means of its iterations, validation PSNR; in phase 2 the
    epoch's alpha and beta, its diagnostics and the VGG record), logged with its warnings."""
    row = {"epoch": epoch + 1, "iteration": state.iteration, "lr": lr_at(s, epoch)[0],
           **dict(zip(STATS[s.phase], state.stats.mean(dim=0).tolist())),
           "val_psnr": step.validate(*valid, s.batch_size)}
    if weights is not None:
        row.update(weights.values())
        row.update({k: v.item() for k, v in (diagnostics or {}).items()})
        warnings = epoch_warnings(row, {"l1": 1.0, "vgg": row["alpha"], "adv": row["beta"]})
        row["warnings"] = "; ".join(warnings)
        for warning in warnings:
            log.warning("!!! epoch %d: %s", epoch + 1, warning)
        row.update({"vgg": vgg.describe(), "vgg_exact": vgg.exact})
    log.info("epoch %d/%d: %s", epoch + 1, s.epochs, ", ".join(
        f"{k} {v:.5g}" for k, v in row.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)))
    return row


def write_metrics(path: Path, columns: list[str], rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


# --- the loop ----------------------------------------------------------------------------

def run_iterations(s: PhaseSettings, state: TrainingState, step: Step, sampler: CropSampler,
                   valid: tuple[torch.Tensor, torch.Tensor], models: Models,
                   checkpoint: Checkpoint, stop: Sequence[int], running: EpochMean,
                   vgg: VggRecord | None) -> None:
    """From `state.iteration` to the end of the schedule, with checkpoints (in the
    background) and epoch rows; a stop signal stops with a complete checkpoint."""
    iters, total = s.iters_per_epoch, s.total_iterations
    bar = tqdm(total=total, initial=state.iteration, desc=f"phase {s.phase}", unit="it",
               dynamic_ncols=True, mininterval=1.0 if sys.stderr.isatty() else 60.0)
    models.set_lr(*lr_at(s, state.iteration // iters))
    with bar:
        while state.iteration < total:
            epoch, i = divmod(state.iteration, iters)
            if i == 0:
                models.set_lr(*lr_at(s, epoch))
            state.stats[i], diagnostics = step(
                *sampler.sample(), diagnose=s.phase == 2 and diagnosed(i, iters, s.diagnose_every))
            if diagnostics is not None:
                running.add(diagnostics)
            state.iteration += 1
            bar.update()
            epoch_done, stopping = i == iters - 1, bool(stop)
            checkpoint_due = state.iteration % s.checkpoint_every == 0 or stopping
            if epoch_done or checkpoint_due or state.iteration % CHECK_EVERY == 0:
                check_finite(state, i + 1, s.phase, checkpoint.path)
                bar.set_postfix(loss_l1=f"{state.stats[i, 0].item():.4f}", refresh=False)
            if epoch_done:
                state.rows.append(epoch_row(s, state, epoch, step, valid, running.pop(),
                                            models.loss_weights, vgg))
                if models.loss_weights is not None:
                    models.loss_weights.end_epoch(state.rows[-1])
            if checkpoint_due:
                save_checkpoint(checkpoint, state, models)
            if stopping and state.iteration < total:  # after the last one, finishing is quicker
                checkpoint.wait()
                raise TrainingInterrupted(
                    f"{signal.Signals(stop[0]).name}: checkpoint saved at iteration "
                    f"{state.iteration} of {total} in {checkpoint.path}; rerun to resume", stop[0])


def train(s: PhaseSettings, packs_dir: str | Path, checkpoints: str | Path,
          generator_out: str | Path, metrics_out: str | Path, init: str | Path | None = None,
          discriminator_out: str | Path | None = None, stop: Sequence[int] = (),
          device: torch.device | None = None, vgg: VggRecord | None = None) -> None:
    """Train one phase and write its outputs. `s`: the phase's settings, parsed once by the
    caller (scripts/train.py: PhaseSettings.from_dict). `stop` is stop_signals()' list: once
    it holds a signal, training stops at the end of the iteration with a checkpoint (unless
    that was the last one). The final checkpoint is left for the workflow to remove. `device`:
    where to train (scripts/train.py picks it for its job); by default, `s.device` as
    rocksr.device.pick_device picks it outside a GPU job. `vgg`: phase 2's VGG record (rule
    vgg_record); by default the settings' weights, hashed here."""
    if not isinstance(s, PhaseSettings):
        raise TypeError(f"train() takes PhaseSettings, got {type(s).__name__}")
    if s.phase == 2 and (init is None or discriminator_out is None):
        raise ConfigError("phase 2 needs an initial generator (--init) and a discriminator "
                          "output path (--discriminator)")
    device = device or pick_device(s.device)
    tune_backend(device)
    torch.manual_seed(s.seed)
    log.info("phase %d on %s (precision %s, channels_last %s, compile %s)", s.phase, device,
             s.precision if device.type == "cuda" else "fp32", s.channels_last, s.compile)
    if s.phase == 2:
        vgg = vgg or settings_record(s)
        verify(vgg, s)
        (log.info if vgg.exact or vgg.origin == "none" else log.warning)("%s", vgg.describe())
    sampler, valid = load_data(s, packs_dir, device)
    models = build_models(s, device, init, vgg_record=vgg)
    iters, total = s.iters_per_epoch, s.total_iterations
    running = EpochMean(device)  # the epoch's diagnosed steps so far
    parts = {**models.parts(), **({"diagnostics": running} if s.phase == 2 else {})}
    state = TrainingState(parts, sampler, torch.zeros(iters, len(STATS[s.phase]), device=device))
    checkpoint = Checkpoint(checkpoints, fingerprint(s, packs_dir, init, device.type),
                            background=device.type in BACKGROUND_WRITES)
    if checkpoint.resume(state):
        log.info("resumed from %s at iteration %d of %d", checkpoint.path, state.iteration, total)
    step = make_step(s, models, device)
    try:
        run_iterations(s, state, step, sampler, valid, models, checkpoint, stop, running, vgg)
        # Final state first, then the outputs: a kill from here on leaves the final
        # checkpoint, from which the rerun writes the outputs again without training.
        checkpoint.wait()
        if checkpoint.saved_at != state.iteration:
            save_checkpoint(checkpoint, state, models)
            checkpoint.wait()
    except BaseException:
        checkpoint.close()  # a write in flight completes: that checkpoint is good
        raise
    meta = {"phase": s.phase, "iteration": state.iteration, "settings": s.to_dict()}
    save_model(generator_out, models.generator, **meta)
    if s.phase == 2:
        save_model(discriminator_out, models.discriminator, **meta)
    write_metrics(Path(metrics_out), metrics_columns(s.phase), state.rows)
    log.info("phase %d done: %d iterations; wrote %s", s.phase, state.iteration, generator_out)
