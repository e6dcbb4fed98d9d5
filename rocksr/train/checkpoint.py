"""Resumable training state and its checkpoint file.

`TrainingState` is everything a killed run needs to continue as if it had never stopped: the
models and optimizers, the crop sampler's and torch's RNG states, the iteration, the finished
epochs' metrics rows and the current epoch's per-iteration table. It has one
`state_dict`/`load_state_dict` pair; `Checkpoint` writes it atomically with a fingerprint of
what the trained weights depend on (settings, packs index, phase-2 initial generator) and
resumes only from a checkpoint whose fingerprint matches: a change of the checkpoint
interval, the validation subset, or (on the CPU) precision or cuda_graphs keeps it.
"""

from __future__ import annotations

import json
import logging
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
    """`<folder>/checkpoint.pt` of one phase, for runs with this `fingerprint`."""

    def __init__(self, folder: str | Path, fingerprint: str):
        self.path, self.fingerprint = Path(folder) / CHECKPOINT, fingerprint
        self.saved_at: int | None = None  # iteration of the file on disk, if it is this run's

    def save(self, state: TrainingState) -> None:
        write(self.path, {"fingerprint": self.fingerprint, **state.state_dict()})
        self.saved_at = state.iteration

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


def write(path: Path, checkpoint: dict) -> None:
    """The file write itself, atomic: a kill leaves the previous checkpoint or this one."""
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
