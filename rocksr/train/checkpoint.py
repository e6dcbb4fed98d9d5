"""Resumable training state and its checkpoint file.

`TrainingState` is everything a killed run needs to continue as if it had never stopped: the
models and optimizers, the crop sampler's and torch's RNG states, the iteration, the finished
epochs' metrics rows and the current epoch's per-iteration table. It has one
`state_dict`/`load_state_dict` pair; `Checkpoint` writes it atomically with a fingerprint of
what the trained weights depend on (settings, packs index, phase-2 initial generator) and
resumes only from a checkpoint whose fingerprint matches: a change of the checkpoint
interval, the validation subset, or (on the CPU) precision or cuda_graphs keeps it.

Off the critical path: `save` copies the state to host memory (the training goes on changing
its tensors) and a writer thread writes the copy (phase 2's is about 1 GB, seconds of disk
time), at most one write in flight; `wait` returns once the file is in place, re-raising the
writer's error. A kill during a write leaves the previous checkpoint (atomic rename).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import torch

from rocksr.data.packs import read_index
from rocksr.fileio import atomic_path, sha256_file
from rocksr.settings import PhaseSettings
from rocksr.train.batches import CropSampler

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"


class TrainingState:
    """The models/optimizers in `parts` (name -> object with state_dict), the sampler, the RNG
    states, `iteration`, `rows` (one dict per finished epoch) and `stats`, this epoch's
    per-iteration table on the device (iterations_per_epoch x figures)."""

    def __init__(self, parts: dict, sampler: CropSampler, stats: torch.Tensor):
        self.parts, self.sampler, self.stats = parts, sampler, stats
        self.iteration = 0
        self.rows: list[dict] = []

    def state_dict(self) -> dict:
        cuda = self.stats.device.type == "cuda"
        return {"iteration": self.iteration, "rows": self.rows,
                "epoch_stats": self.stats[:self.iteration % len(self.stats)].cpu(),
                **{name: part.state_dict() for name, part in self.parts.items()},
                "sampler": self.sampler.state_dict(),
                "rng": {"cpu": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state() if cuda else None}}

    def load_state_dict(self, state: dict) -> None:
        for name, part in self.parts.items():
            part.load_state_dict(state[name])
        self.sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["rng"]["cpu"])
        if self.stats.device.type == "cuda" and state["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"])
        self.iteration, self.rows = state["iteration"], state["rows"]
        self.stats[:self.iteration % len(self.stats)] = state["epoch_stats"].to(self.stats.device)


def fingerprint(settings: PhaseSettings, packs_dir: str | Path,
                init: str | Path | None = None, device: str = "cpu") -> str:
    """What a checkpoint must have been written for, to be resumed: what the weights depend
    on when training on a `device` ("cpu", "cuda"; PhaseSettings.split)."""
    return json.dumps({"settings": settings.split(device)[0], "packs": read_index(packs_dir),
                       "init": sha256_file(init) if init else None}, sort_keys=True)


class Checkpoint:
    """`<folder>/checkpoint.pt` of one phase, for runs with this `fingerprint`; written in a
    thread (`background`) or in the call."""

    def __init__(self, folder: str | Path, fingerprint: str, background: bool = True):
        self.path, self.fingerprint = Path(folder) / CHECKPOINT, fingerprint
        self.saved_at: int | None = None  # iteration of the file on disk, if it is this run's
        self.background = background
        self._writer: threading.Thread | None = None
        self._written: tuple[int, BaseException | None] | None = None  # the writer's outcome

    def save(self, state: TrainingState) -> None:
        """Write `state` as it is now; in the background, after the write in flight."""
        self.wait()
        checkpoint = {"fingerprint": self.fingerprint, **state.state_dict()}
        if not self.background:
            write(self.path, checkpoint)
            self.saved_at = state.iteration
            return
        copy = host_copy(checkpoint)
        self._writer = threading.Thread(target=self._write, args=(copy, state.iteration),
                                        name="checkpoint writer")
        self._writer.start()

    @property
    def writing(self) -> bool:
        """Whether a write is in flight."""
        return self._writer is not None and self._writer.is_alive()

    def _write(self, checkpoint: dict, iteration: int) -> None:
        try:
            write(self.path, checkpoint)
            self._written = iteration, None
        except BaseException as exc:  # raised in the training's thread by `wait`
            self._written = iteration, exc

    def wait(self) -> None:
        """Return once no write is in flight: the last one's file is in place, or its error
        is raised here."""
        if self._writer is None:
            return
        self._writer.join()
        self._writer = None
        (iteration, error), self._written = self._written, None
        if error is not None:
            raise error
        self.saved_at = iteration

    def close(self) -> None:
        """`wait`, for a training that is failing anyway: the writer's own error is logged."""
        try:
            self.wait()
        except BaseException as exc:
            log.error("the checkpoint write in flight failed too: %s: %s",
                      type(exc).__name__, exc)

    def resume(self, state: TrainingState) -> bool:
        """Load the file into `state` if it is this run's; False if there is none or it is
        another run's (logged; it is overwritten at the next save)."""
        if not self.path.exists():
            return False
        try:  # on the CPU: RNG states must be CPU tensors; load_state_dict moves the rest
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch's text is long: its first line is enough
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ValueError(f"delete {self.path} to train this phase from the start: it is "
                             f"an unreadable checkpoint ({reason})") from None
        if saved.get("fingerprint") != self.fingerprint:
            log.warning("ignoring %s: it was written for other settings, data or initial "
                        "generator; training from the start", self.path)
            return False
        state.load_state_dict(saved)
        self.saved_at = state.iteration
        return True


def host_copy(value):
    """`value` with every tensor copied to host memory, and every dict, list and tuple
    rebuilt: nothing in it is shared with the running training."""
    if torch.is_tensor(value):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: host_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(host_copy(v) for v in value)
    return value


def write(path: Path, checkpoint: dict) -> None:
    """The file write itself, atomic: a kill leaves the previous checkpoint or this one."""
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
