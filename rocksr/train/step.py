"""One training iteration, as both phases and the benchmark run it.

`build_models` makes what a phase trains (rocksr.nets.models, rocksr.nets.losses, fused Adam
on CUDA); `train_step` is one eager iteration: the generator step on L1 (+ weighted VGG and
adversarial terms in phase 2, rocksr.nets.losses), then in phase 2 one discriminator step on
the same SR batch, detached. With `d_sr_once` (the default) D runs once on the SR batch: its
logits serve G's adversarial term and D's fake term, each network's backward pass stopping at
its own parameters, which is the same update as a second D pass on the detached batch. Its
figures (STATS) stay on the device. `Step` binds a phase's numerics (bf16 autocast on CUDA,
memory format, optional torch.compile) to the models; rocksr.train.cuda_graphs replays the
same iteration as one CUDA graph.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import torch
from torch import nn

from rocksr.eval.metrics import psnr
from rocksr.imaging.pixels import signed_to_unit, uint8_to_signed, uint8_to_unit
from rocksr.nets.losses import SliceVGGLoss, VGGLoss, discriminator_loss, generator_loss
from rocksr.nets.models import Discriminator, Generator, load_model
from rocksr.nets.vgg_files import VggRecord
from rocksr.settings import ConfigError, PhaseSettings
from rocksr.train.balance import LossWeights
from rocksr.train.diagnostics import term_diagnostics

STATS = {  # per-iteration figures, averaged per epoch into the metrics CSV
    1: ["loss_l1", "train_psnr"],
    2: ["loss_l1", "loss_vgg", "loss_adv", "loss_g", "loss_d", "d_real", "d_fake", "train_psnr"],
}


def tune_backend(device: torch.device) -> None:
    """cuDNN autotuning: training shapes never change, so the fastest kernels are picked once
    (CPU runs are untouched and stay bit-for-bit deterministic)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def autocast(device: torch.device, precision: str):
    """bf16 autocast on CUDA when asked; fp32 otherwise (CPU bf16 convs are slow).

    Without autocast's cache of bf16 weight copies, eager and graphed alike: a CUDA graph
    cannot keep it (rocksr.train.cuda_graphs), and with it two passes of one network in one
    autocast block share one bf16 copy, whose gradients then add up in bf16 instead of fp32:
    other arithmetic than the graph's."""
    if device.type == "cuda" and precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()


def make_adam(params, lr: float, betas, device: torch.device,
              fused: bool = True) -> torch.optim.Adam:
    """Adam as the paper's; the fused kernel on CUDA (one launch for all parameters)."""
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas),
                            fused=fused and device.type == "cuda")


@dataclasses.dataclass
class Models:
    """What one phase trains: G and its optimizer; in phase 2 also D, its optimizer, the
    frozen VGG feature loss and the loss weights alpha and beta (rocksr.train.balance)."""
    generator: nn.Module
    opt_g: torch.optim.Optimizer
    discriminator: nn.Module | None = None
    opt_d: torch.optim.Optimizer | None = None
    vgg: nn.Module | None = None
    loss_weights: LossWeights | None = None

    def parts(self) -> dict:
        """The state a checkpoint holds, by name."""
        names = ("generator", "opt_g", "discriminator", "opt_d", "loss_weights")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def set_lr(self, lr_g: float, lr_d: float | None) -> None:
        """In place where the rate is a device tensor (a CUDA graph reads it from there)."""
        for optimizer, lr in ((self.opt_g, lr_g), (self.opt_d, lr_d)):
            for group in optimizer.param_groups if optimizer else ():
                if torch.is_tensor(group["lr"]):
                    group["lr"].fill_(lr)
                else:
                    group["lr"] = lr

    def compiled(self) -> Models:
        """The same models (shared weights) behind torch.compile, for the step only."""
        return dataclasses.replace(self, **{
            n: torch.compile(getattr(self, n)) for n in ("generator", "discriminator", "vgg")
            if getattr(self, n) is not None})


def memory_format_of(s: PhaseSettings, dim: int | None = None) -> torch.memory_format:
    """channels_last (channels_last_3d for volumes, `dim` 3) when the settings ask for it."""
    if not s.channels_last:
        return torch.contiguous_format
    return torch.channels_last_3d if (dim or s.dim) == 3 else torch.channels_last


def build_models(s: PhaseSettings, device: torch.device, init: str | Path | None = None,
                 fused: bool = True, vgg_record: VggRecord | None = None) -> Models:
    """G (with the weights of the generator file `init`, if given), D, VGG and the loss
    weights in phase 2, and their Adams, on `device` in the settings' memory format; 2D or 3D
    nets by `s.dim` (in 3D a VGG term only on slices, `vgg_3d`). `fused=False`: the plain
    Adam (the benchmark's baseline). `vgg_record`: the VGG19 weights file to load
    (rocksr.nets.vgg_files; by default the settings' vgg_weights)."""
    memory_format = memory_format_of(s)
    generator = Generator(s.scale, s.model.blocks, s.model.filters, dim=s.dim,
                          upsample=s.model.upsample, act=s.model.activation)
    discriminator = vgg = loss_weights = None
    if init is not None:
        start = load_model(init)
        if not isinstance(start, Generator) or start.arch != generator.arch:
            raise ConfigError(f"{init}: expected a generator with {generator.arch}, got "
                              f"{getattr(start, 'arch', type(start).__name__)}")
        generator.load_state_dict(start.state_dict())
    if s.phase == 2:
        discriminator = Discriminator(s.hr_patch, dim=s.dim).to(device,
                                                                memory_format=memory_format)
        if s.vgg_term:
            if vgg_record is not None:
                weights, origin = vgg_record.weights, vgg_record.origin
            else:
                weights = s.vgg_weights
                origin = None if s.vgg_weights_origin == "auto" else s.vgg_weights_origin
            # fp16 VGG on CUDA only, as bf16 autocast (CPU fp16 convolutions are slow)
            vgg = (VGGLoss if s.dim == 2 else SliceVGGLoss)(
                weights, s.vgg_layer, s.vgg_input, origin,
                s.vgg_precision if device.type == "cuda" else "fp32", s.vgg_weight)
            vgg.to(device, memory_format=memory_format_of(s, dim=2))  # VGG sees 2D images
        loss_weights = LossWeights(s, device)
    generator.to(device, memory_format=memory_format)
    opt_d = (make_adam(discriminator.parameters(), s.d_lr, s.betas, device, fused)
             if discriminator is not None else None)
    return Models(generator, make_adam(generator.parameters(), s.lr, s.betas, device, fused),
                  discriminator, opt_d, vgg, loss_weights)


# --- one iteration -----------------------------------------------------------------------

def batch_psnr(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean PSNR of [-1, 1] batches, scored in [0, 1] with peak 1 on the clamped SR."""
    return psnr(signed_to_unit(sr.detach().float()).clamp(0, 1), signed_to_unit(hr)).mean()


def discriminator_step(discriminator: nn.Module, optimizer: torch.optim.Optimizer,
                       sr: torch.Tensor, hr: torch.Tensor, amp,
                       fake: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """D's step on HR and SR; `fake`: D's logits of `sr` from G's step (same weights, same
    batch), else D runs on `sr` detached. Its backward pass stops at D's parameters."""
    discriminator.requires_grad_(True)
    with amp:
        real = discriminator(hr)
        if fake is None:
            fake = discriminator(sr.detach())  # detach: G is untouched
        loss_d = discriminator_loss(real, fake)
    optimizer.zero_grad(set_to_none=True)
    loss_d.backward(inputs=list(discriminator.parameters()))
    optimizer.step()
    return {"loss_d": loss_d, "d_real": torch.sigmoid(real.float()).mean(),
            "d_fake": torch.sigmoid(fake.float()).mean()}


def train_step(m: Models, lr: torch.Tensor, hr: torch.Tensor, amp, vgg_weight: float = 0.0,
               adv_weight: float = 0.0, d_sr_once: bool = True, diagnose: bool = False
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
    """One iteration (phase 2 when `m` has a discriminator). Returns the STATS row and, when
    `diagnose`, the loss terms' weighted values and gradient shares; all on the device."""
    d = m.discriminator
    with amp:
        sr = m.generator(lr)
        fake = None
        if d is not None:
            d.requires_grad_(d_sr_once)  # else G's step needs no D parameter gradients
            fake = d(sr)
        loss_g, terms, weighted = generator_loss(sr, hr, fake, m.vgg, vgg_weight, adv_weight)
    g_params = list(m.generator.parameters())
    diagnostics = term_diagnostics(weighted, g_params) if diagnose else None
    m.opt_g.zero_grad(set_to_none=True)
    # D's step below goes back through `fake` once more: keep its graph
    loss_g.backward(inputs=g_params, retain_graph=d is not None and d_sr_once)
    m.opt_g.step()
    # a 3D run without a VGG term (vgg_3d: none) records loss_vgg 0
    stats = {"loss_vgg": torch.zeros((), device=sr.device), **terms, "loss_g": loss_g,
             "train_psnr": batch_psnr(sr, hr)}
    if d is not None:
        stats.update(discriminator_step(d, m.opt_d, sr, hr, amp, fake if d_sr_once else None))
    phase = 1 if d is None else 2
    return torch.stack([stats[k].detach().float() for k in STATS[phase]]), diagnostics


class Step:
    """A phase's iteration and validation with its numerics (autocast, memory format)."""

    def __init__(self, s: PhaseSettings, models: Models, device: torch.device):
        self.plain = models
        self.models = models.compiled() if s.compile else models
        self.generator = models.generator  # validation runs uncompiled (other shapes)
        self.amp = autocast(device, s.precision)
        self.memory_format = memory_format_of(s)
        self.options = ({**models.loss_weights.step_weights(), "d_sr_once": s.d_sr_once}
                        if models.loss_weights else {})
        if s.compile and self.options.get("d_sr_once"):
            # G's backward pass runs through D's compiled backward with retain_graph (D's
            # step needs it again), which AOTAutograd's donated buffers forbid.
            torch._functorch.config.donated_buffer = False

    def __call__(self, lr: torch.Tensor, hr: torch.Tensor, diagnose: bool = False):
        # The diagnosed step (once an epoch) uncompiled: its per-term gradients need
        # retain_graph, which a compiled backward with donated buffers refuses (torch 2.11).
        models = self.plain if diagnose else self.models
        return train_step(models, lr.contiguous(memory_format=self.memory_format),
                          hr.contiguous(memory_format=self.memory_format), self.amp,
                          **self.options, diagnose=diagnose)

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
