"""Is the VGG term safe in fp16 (training.phase2.vgg_precision)? Measured, not assumed.

On batches cut as training cuts them (the benchmark's synthetic images), with SR stand-ins
from far to near the HR (bicubic from LR, then HR plus noise of falling size): the feature
MSE in fp16 against fp32 (its relative bias; the criterion is under 2%), the largest
activation anywhere in the network in fp32 (fp16 overflows above 65504) and whether fp16
stayed finite, and the gradient that the vgg_weight-weighted term sends into SR (relative
error against fp32, share of exact zeros: underflow). The weights are the configured
ones; the benchmark's are random (none are downloaded), which the report says, as
activations depend on them.
"""

from __future__ import annotations

import torch

from rocksr.imaging.resize import bicubic_upscale
from rocksr.nets.losses import VGGLoss
from rocksr.settings import PhaseSettings
from rocksr.train.batches import CropSampler

FP16_MAX = 65504.0
MAX_BIAS = 0.02
# HR + N(0, sigma^2) in [-1, 1] units; 0.01 is a PSNR of 46 dB, closer than SR gets to HR
NOISE = (0.1, 0.03, 0.01)


def stand_ins(lr: torch.Tensor, hr: torch.Tensor, scale: int, seed: int = 0
              ) -> dict[str, torch.Tensor]:
    """SR stand-ins by name: bicubic from LR, and HR plus noise of each NOISE level."""
    gen = torch.Generator(hr.device).manual_seed(seed)
    out = {"bicubic": bicubic_upscale(lr, scale).clamp(-1, 1)}
    for sigma in NOISE:
        noise = torch.randn(hr.shape, generator=gen, device=hr.device)
        out[f"noise {sigma:g}"] = (hr + sigma * noise).clamp(-1, 1)
    return out


def term_gradient(vgg: VGGLoss, sr: torch.Tensor, hr: torch.Tensor, weight: float
                  ) -> tuple[float, torch.Tensor, float, bool]:
    """The MSE, the gradient of weight x MSE with respect to SR, the largest |activation| of
    any layer on SR or HR, and whether all activations stayed finite."""
    found = []

    def record(module, inputs, output):
        found.append((output.detach().abs().amax().float(), output.detach().isfinite().all()))

    hooks = [m.register_forward_hook(record) for m in vgg.features.net]
    try:
        sr = sr.detach().requires_grad_(True)
        loss = vgg(sr, hr)
        (weight * loss).backward()
    finally:
        for hook in hooks:
            hook.remove()
    return (loss.item(), sr.grad, torch.stack([a for a, _ in found]).max().item(),
            bool(torch.stack([f for _, f in found]).all()))


def measure(s: PhaseSettings, sampler: CropSampler, device: torch.device,
            batches: int = 2) -> dict:
    """fp16 against fp32 on `batches` training batches per stand-in (module doc)."""
    torch.manual_seed(s.seed)
    fp32 = VGGLoss(s.vgg_weights, s.vgg_layer, s.vgg_input, None, "fp32", s.vgg_weight).to(device)
    fp16 = VGGLoss(s.vgg_weights, s.vgg_layer, s.vgg_input, None, "fp16", s.vgg_weight).to(device)
    fp16.load_state_dict(fp32.state_dict())
    rows: dict[str, dict] = {}
    for b in range(batches):
        lr, hr = sampler.sample()
        for name, sr in stand_ins(lr, hr, s.scale, seed=b).items():
            row = rows.setdefault(name, {"loss_fp32": 0.0, "loss_fp16": 0.0, "max_act": 0.0,
                                         "finite_fp16": True, "grad_err": 0.0, "zeros": 0.0})
            loss32, grad32, act, _ = term_gradient(fp32, sr, hr, s.vgg_weight)
            loss16, grad16, _, finite = term_gradient(fp16, sr, hr, s.vgg_weight)
            err = (torch.linalg.vector_norm((grad16 - grad32).double())
                   / torch.linalg.vector_norm(grad32.double()).clamp_min(1e-300)).item()
            row["loss_fp32"] += loss32 / batches
            row["loss_fp16"] += loss16 / batches
            row["max_act"] = max(row["max_act"], act)
            row["finite_fp16"] &= finite and bool(grad16.isfinite().all())
            row["grad_err"] = max(row["grad_err"], err)
            row["zeros"] = max(row["zeros"], (grad16 == 0).float().mean().item()
                               - (grad32 == 0).float().mean().item())
    for row in rows.values():
        row["bias"] = row["loss_fp16"] / row["loss_fp32"] - 1
    worst_bias = max(abs(r["bias"]) for r in rows.values())
    largest = max(r["max_act"] for r in rows.values())
    ok = (worst_bias < MAX_BIAS and largest < FP16_MAX
          and all(r["finite_fp16"] for r in rows.values()))
    return {"weights": s.vgg_weights, "layer": s.vgg_layer, "input": s.vgg_input,
            "vgg_weight": s.vgg_weight, "batch": s.batch_size, "hr_patch": s.hr_patch,
            "inputs": rows, "worst_bias": worst_bias, "max_act": largest, "fp16_ok": ok}


def report(found: dict) -> str:
    lines = [f"VGG in fp16 vs fp32 ({found['weights']} weights, {found['layer']}, "
             f"{found['input']} input, batch {found['batch']} of {found['hr_patch']} px, "
             f"weight {found['vgg_weight']:g}):",
             f"  {'SR stand-in':14}{'MSE fp32':>12}{'bias fp16':>11}{'max |act|':>11}"
             f"{'grad err':>10}{'+zeros':>9}  finite"]
    for name, r in found["inputs"].items():
        lines.append(f"  {name:14}{r['loss_fp32']:>12.4g}{100 * r['bias']:>10.2f}%"
                     f"{r['max_act']:>11.4g}{100 * r['grad_err']:>9.2f}%"
                     f"{100 * r['zeros']:>8.2f}%  {'yes' if r['finite_fp16'] else 'NO'}")
    verdict = "within" if found["fp16_ok"] else "NOT within"
    lines.append(f"  worst bias {100 * found['worst_bias']:.2f}% (limit {100 * MAX_BIAS:g}%), "
                 f"largest activation {found['max_act']:.4g} (fp16 max {FP16_MAX:g}): "
                 f"{verdict} the limits"
                 + ("; random weights: activations of the real VGG19 differ"
                    if found["weights"] == "random" else ""))
    return "\n".join(lines)
