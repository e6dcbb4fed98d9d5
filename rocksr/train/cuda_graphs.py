"""Whole-iteration CUDA graphs (`training.cuda_graphs`): a phase's iteration captured once.

On a fast GPU an eager iteration is bound by the host launching its few hundred small
kernels, not by the GPU running them (docs/performance.md). `GraphedStep` captures one whole
iteration of rocksr.train.step.train_step (forward, backward and the fused Adam step of G; in
phase 2 then D's) and replays it: one launch per iteration. What changes between
iterations is fed without recapture: the crops, drawn eagerly by the same sampler as ever,
are copied into static input buffers; the learning rates live in device tensors that
Models.set_lr fills in place; the figures come out in a static row that the loop copies.

The step's bf16 autocast keeps no cache of weight copies, graphed or eager
(rocksr.train.step.autocast): both do the same arithmetic.

Capture needs a few warm-up iterations (cuDNN autotuning, lazy optimizer state, the
allocator), which really update weights, buffers and optimizer states: `preserved` puts
all of them back, in place, so the run follows the eager trajectory. The once-per-epoch
diagnosed step of phase 2 runs eagerly on the same models and optimizers.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch

from rocksr.settings import PhaseSettings
from rocksr.train.step import Models, Step, train_step

WARMUP = 3  # eager iterations before capture (cuDNN picks its kernels in the first)


@contextlib.contextmanager
def preserved(models: Models) -> Iterator[None]:
    """Every parameter, buffer and optimizer state of `models` is as it was on entry when the
    block leaves, restored in place (tensors keep their addresses). Optimizer state created
    inside the block is zeroed: a fresh Adam state is zeros (step 0, both moments 0)."""
    modules = [m for m in (models.generator, models.discriminator) if m is not None]
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
    saved = [t.detach().clone() for t in tensors]
    optimizers = [o for o in (models.opt_g, models.opt_d) if o is not None]
    states = [{p: {k: v.clone() for k, v in st.items() if torch.is_tensor(v)}
               for p, st in o.state.items()} for o in optimizers]
    yield
    with torch.no_grad():
        for tensor, value in zip(tensors, saved):
            tensor.copy_(value)
        for optimizer, before in zip(optimizers, states):
            for param, state in optimizer.state.items():
                for key, value in state.items():
                    if not torch.is_tensor(value):
                        continue
                    if param in before:
                        value.copy_(before[param][key])
                    else:
                        value.zero_()


class GraphedStep(Step):
    """Step's iteration as one CUDA graph; same call, same figures, same trajectory."""

    def __init__(self, s: PhaseSettings, models: Models, device: torch.device,
                 warmup: int = WARMUP):
        super().__init__(s, models, device)
        if device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, not {device}")
        for optimizer in (models.opt_g, models.opt_d):
            for group in optimizer.param_groups if optimizer else ():
                group["capturable"] = True  # state steps on the device; checked at capture
                group["lr"] = torch.tensor(float(group["lr"]), device=device)
        side = (s.batch_size, 1, *(s.lr_patch,) * s.dim)  # squares, or cubes in 3D
        self.lr = torch.zeros(side, device=device).contiguous(memory_format=self.memory_format)
        self.hr = torch.zeros(side[:2] + (s.hr_patch,) * s.dim, device=device
                              ).contiguous(memory_format=self.memory_format)
        stream = torch.cuda.Stream(device)
        with preserved(models), warnings.catch_warnings():
            # capturable=True run uncaptured: the warm-up and the diagnosed step, on purpose
            warnings.filterwarnings("ignore", message=".*capturable=True.*")
            stream.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(stream):
                for _ in range(warmup):
                    train_step(self.models, self.lr, self.hr, self.amp, **self.options)
            torch.cuda.current_stream(device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.row, _ = train_step(self.models, self.lr, self.hr, self.amp, **self.options)

    def __call__(self, lr: torch.Tensor, hr: torch.Tensor, diagnose: bool = False):
        if diagnose:  # gradient shares need autograd.grad: once an epoch, eagerly
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*capturable=True.*")
                return super().__call__(lr, hr, diagnose=True)
        self.lr.copy_(lr)
        self.hr.copy_(hr)
        self.graph.replay()
        return self.row, None
