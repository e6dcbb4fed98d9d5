"""Does a graphed or compiled training step compute what the eager step computes?

A trajectory cannot tell: training is chaotic (at batch 2 a one-off 2^-9 nudge of every weight
moves D(fake) by 4-10% within 4-6 iterations, on a CPU in fp32), so any rounding difference
grows into a large one. Here each variant of the step takes ONE step at a time from the
reference's exact state (`scripts/onestep.py`):

Part 1, one step at a time: before each step every variant is loaded in place with the eager
reference's full state (weights, batch-norm buffers, Adam moments and step counts; not the
learning rates, which each variant gets as training sets them), takes one step on the same
batch, and is compared with its counterpart: the STATS row, per-tensor gradients, updates,
Adam moments, batch-norm buffers, the counters (Adam steps, batches tracked) and each
network's update-norm ratio (a stale learning rate shows there). The learning rates halve
halfway; phase 2's last step is the diagnosed one (the epoch's last in training).
Part 2, a free run from one state (learning rates halved halfway), each variant on its own:
the drift of its rows from its counterpart's, next to the drift of the eager step started
from weights nudged once by 2^-9 relative (bf16's rounding size), the benign yardstick.

Variants (VARIANTS, all from one seed): eager, the reference; eager again, a second eager
copy (bitwise equal on a CPU; on a GPU it shows what cuDNN's atomics alone do); eager with
autocast's weight cache (the eager step's policy before it matched the graph's, bf16 on CUDA);
eager nudged; graphed; compiled; compiled graphed. `deterministic`: deterministic cuDNN,
cuBLAS (CUBLAS_WORKSPACE_CONFIG, set by the CLI) and, where torch has the switch, Inductor.
Verdicts (TOLERANCES, `judge`): graphed = eager and compiled graphed = compiled to 1e-6,
also in the free run (bitwise expected; where "eager again" is not bitwise, as with cuDNN's
atomics on a GPU, within 10x what it shows, and a free-run drift at most 3x the nudged
variant's); compiled vs eager in fp32 without TF32 within 1e-4 (rows, gradients, batch norm)
and 1e-3 (updates, moments, update ratios), in bf16 rows 2e-2, the rest 5e-2, and a free-run
drift at most 3x the nudged variant's; counters equal throughout. D's conv biases before a
batch norm are compared apart (`cancelled_biases`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import torch
import torch._inductor.config
import torch.nn.functional as F
from torch import nn

from rocksr.settings import PhaseSettings
from rocksr.train.cuda_graphs import GraphedStep
from rocksr.train.loop import lr_at
from rocksr.train.step import STATS, Models, Step, build_models, tune_backend

log = logging.getLogger(__name__)

NUDGE = 2.0 ** -9  # bf16's relative rounding step
LR_CHANGE = 0.5    # the learning rates' factor halfway through each part
METRICS = ("rows", "grads", "updates", "moments", "bn", "ratio")
EXACT = dict.fromkeys(METRICS, 1e-6)
TOLERANCES = {  # kind -> precision -> metric -> largest relative difference allowed
    "exact": {"fp32": EXACT, "bf16": EXACT},
    "compiled": {"fp32": {"rows": 1e-4, "grads": 1e-4, "bn": 1e-4,
                          "updates": 1e-3, "moments": 1e-3, "ratio": 1e-3},
                 "bf16": {"rows": 2e-2, "grads": 5e-2, "bn": 5e-2,
                          "updates": 5e-2, "moments": 5e-2, "ratio": 5e-2}},
}
FLOOR_FACTOR = 10  # exact variants: within 10x what two eager copies show (0 if bitwise)
DRIFT_FACTOR = 3   # free run: within 3x the nudged variant's drift

# name: (counterpart, kind); kinds without TOLERANCES are shown, not judged
VARIANTS = {
    "eager": (None, "reference"),
    "eager again": ("eager", "floor"),
    "eager, autocast cache": ("eager", "policy"),
    "eager, nudged": ("eager", "yardstick"),
    "graphed": ("eager", "exact"),
    "compiled": ("eager", "compiled"),
    "compiled graphed": ("compiled", "exact"),
}


@dataclasses.dataclass
class Variant:
    name: str
    models: Models
    step: Step
    against: str | None  # the counterpart it is judged against (None: the reference)
    kind: str
    nudged: bool = False


def available(device: torch.device, precision: str, compile_models: bool) -> list[str]:
    """The variants this device and precision can run."""
    cuda = device.type == "cuda"
    return [n for n in VARIANTS
            if not ("graphed" in n and not cuda)
            and not (n.startswith("compiled") and not compile_models)
            and not (n == "eager, autocast cache" and not (cuda and precision == "bf16"))]


def build_variant(name: str, s: PhaseSettings, device: torch.device, seed: int = 0) -> Variant:
    """The models (from `seed`) and step of variant `name` (VARIANTS)."""
    against, kind = VARIANTS[name]
    s = dataclasses.replace(s, compile=name.startswith("compiled"), cuda_graphs=False)
    torch.manual_seed(seed)
    models = build_models(s, device)
    step = GraphedStep(s, models, device) if "graphed" in name else Step(s, models, device)
    if name == "eager, autocast cache":
        step.amp = torch.autocast("cuda", dtype=torch.bfloat16)  # cache on
    return Variant(name, models, step, against, kind, nudged=name == "eager, nudged")


@contextlib.contextmanager
def numerics(device: torch.device, precision: str, deterministic: bool) -> Iterator[None]:
    """The case's arithmetic, undone on leaving: cuDNN autotuning as in training; fp32
    without TF32; deterministic cuDNN, cuBLAS and Inductor when asked."""
    inductor = torch._inductor.config  # its `deterministic` switch, where torch has one
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
             torch.are_deterministic_algorithms_enabled(), getattr(inductor, "deterministic", None))
    tune_backend(device)
    if precision == "fp32":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    if saved[-1] is not None:
        inductor.deterministic = deterministic
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) = saved[:4]
        torch.use_deterministic_algorithms(saved[4])
        if saved[-1] is not None:
            inductor.deterministic = saved[-1]


# --- state: read, captured, loaded -----------------------------------------------------------

def live_state(m: Models) -> dict[str, dict[str, torch.Tensor]]:
    """The tensors a step reads and writes, by kind: params, bn (running statistics),
    moments (Adam's), counters (Adam's step, batches tracked)."""
    out: dict[str, dict[str, torch.Tensor]] = {k: {} for k in ("params", "bn", "moments",
                                                               "counters")}
    for name, net, opt in (("G", m.generator, m.opt_g), ("D", m.discriminator, m.opt_d)):
        if net is None:
            continue
        for key, p in net.named_parameters():
            out["params"][f"{name}.{key}"] = p
            for stat, value in opt.state.get(p, {}).items():
                if torch.is_tensor(value):
                    kind = "counters" if stat == "step" else "moments"
                    out[kind][f"{name}.{key}.{stat}"] = value
        for key, b in net.named_buffers():
            kind = "counters" if key.endswith("num_batches_tracked") else "bn"
            out[kind][f"{name}.{key}"] = b
    return out


def cancelled_biases(m: Models) -> set[str]:
    """Conv biases a batch norm right after cancels (D's): their gradient is zero in exact
    arithmetic, so it is rounding noise, which Adam turns into full-size steps; their
    gradients, updates and moments are left out of the comparisons (counted apart)."""
    out = set()
    for name, net in (("G", m.generator), ("D", m.discriminator)):
        for prefix, module in net.named_modules() if net is not None else ():
            if isinstance(module, nn.Sequential):
                children = list(module.named_children())
                for (key, a), (_, b) in zip(children, children[1:]):
                    if (isinstance(a, nn.Conv2d) and a.bias is not None
                            and isinstance(b, nn.BatchNorm2d)):
                        out.add(".".join(filter(None, (name, prefix, key, "bias"))))
    return out


def capture(m: Models) -> dict[str, dict[str, torch.Tensor]]:
    return {kind: {k: v.detach().clone() for k, v in d.items()}
            for kind, d in live_state(m).items()}


@torch.no_grad()
def load(m: Models, state: dict[str, dict[str, torch.Tensor]], name: str = "variant") -> None:
    """Copy `state` into `m` in place (a CUDA graph keeps reading the same tensors)."""
    live = live_state(m)
    for kind, saved in state.items():
        if live[kind].keys() != saved.keys():
            raise ValueError(f"{name}: its {kind} are not the reference's (missing or extra: "
                             f"{sorted(live[kind].keys() ^ saved.keys())[:3]})")
        for key, value in saved.items():
            live[kind][key].copy_(value)


@torch.no_grad()
def nudge(m: Models, seed: int) -> None:
    """Every weight times 1 +- 2^-9, the sign drawn per element."""
    for p in live_state(m)["params"].values():
        gen = torch.Generator(p.device).manual_seed(seed)
        sign = torch.randint(0, 2, p.shape, generator=gen, device=p.device) * 2 - 1
        p.mul_(1 + NUDGE * sign.to(p.dtype))
        seed += 1


def grads(m: Models) -> dict[str, torch.Tensor | None]:
    return {k: None if p.grad is None else p.grad.detach().clone()
            for k, p in live_state(m)["params"].items()}


@dataclasses.dataclass
class Record:
    """One variant's step: its row, gradients, the state it started from and the one after."""
    row: torch.Tensor
    grads: dict[str, torch.Tensor | None]
    before: dict[str, dict[str, torch.Tensor]]
    after: dict[str, dict[str, torch.Tensor]]

    def update(self, key: str) -> torch.Tensor:
        return self.after["params"][key] - self.before["params"][key]


# --- comparisons -----------------------------------------------------------------------------

def rel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a - b|| / ||b|| in float64 (0 when both are 0)."""
    a, b = a.double(), b.double()
    return torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b).clamp_min(1e-300)


def row_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest relative difference of two rows of figures."""
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).abs() / b.abs().clamp_min(1e-12)).max().item()


def compare(a: Record, b: Record, skip: set[str] = frozenset()) -> dict:
    """The largest relative difference of `a` from `b` per metric, the tensors in `skip`
    (cancelled_biases) left out; counters equal; bitwise equal."""
    inf = torch.tensor(math.inf, dtype=torch.float64)
    found: dict[str, list[torch.Tensor]] = {m: [] for m in METRICS[1:]}
    keys = [k for k in a.grads if k not in skip]
    for key in keys:
        ga, gb = a.grads[key], b.grads[key]
        if ga is not None or gb is not None:  # one None, the other not: a bug
            found["grads"].append(inf if ga is None or gb is None else rel(ga, gb).cpu())
        found["updates"].append(rel(a.update(key), b.update(key)).cpu())
    found["moments"] = [rel(v, b.after["moments"][k]).cpu()
                        for k, v in a.after["moments"].items() if k.rsplit(".", 1)[0] not in skip]
    found["bn"] = [rel(v, b.after["bn"][k]).cpu() for k, v in a.after["bn"].items()]
    for net in ("G", "D"):
        mine = [k for k in keys if k.startswith(net + ".")]
        if mine:
            norms = [torch.linalg.vector_norm(torch.stack([
                torch.linalg.vector_norm(r.update(k).double()) for k in mine])).cpu()
                for r in (a, b)]
            found["ratio"].append((norms[0] / norms[1].clamp_min(1e-300) - 1).abs())
    out = {"rows": row_diff(a.row, b.row),
           **{m: torch.stack(v).max().item() if v else 0.0 for m, v in found.items()}}
    out["counters"] = all(torch.equal(v.double().cpu(), b.after["counters"][k].double().cpu())
                          for k, v in a.after["counters"].items())
    out["bitwise"] = (torch.equal(a.row, b.row)
                      and all((x is None and y is None) or (x is not None and y is not None
                                                            and torch.equal(x, y))
                              for x, y in zip(a.grads.values(), b.grads.values()))
                      and all(torch.equal(v, b.after[kind][k])
                              for kind in a.after for k, v in a.after[kind].items()))
    return out


# --- the two parts ---------------------------------------------------------------------------

def batch(s: PhaseSettings, device: torch.device, index: int) -> tuple[torch.Tensor, ...]:
    """A reproducible LR/HR pair: random LR, HR its nearest upsampling plus noise."""
    gen = torch.Generator().manual_seed(1000 + index)
    lr = torch.rand(s.batch_size, 1, s.lr_patch, s.lr_patch, generator=gen) * 2 - 1
    hr = F.interpolate(lr, scale_factor=s.scale, mode="nearest")
    hr = (hr + 0.1 * torch.randn(hr.shape, generator=gen)).clamp(-1, 1)
    return lr.to(device), hr.to(device)


def learning_rates(s: PhaseSettings, changed: bool) -> tuple[float, float | None]:
    lr_g, lr_d = lr_at(s, 0)
    factor = LR_CHANGE if changed else 1.0
    return lr_g * factor, (lr_d * factor if lr_d is not None else None)


def one_step_part(s: PhaseSettings, device: torch.device, variants: list[Variant],
                  steps: int, seed: int) -> list[dict[str, dict]]:
    """Part 1: per step, each judged variant's differences from its counterpart."""
    reference = variants[0]
    skip = cancelled_biases(reference.models)
    out = []
    for i in range(steps):
        state = capture(reference.models)
        records = {}
        for v in variants:
            v.models.set_lr(*learning_rates(s, changed=i >= steps // 2))
            if v is not reference:
                load(v.models, state, v.name)
            if v.nudged:
                nudge(v.models, seed + 7919 * i)
            before = capture(v.models) if v.nudged else state
            row, _ = v.step(*batch(s, device, i), diagnose=s.phase == 2 and i == steps - 1)
            records[v.name] = Record(row.clone(), grads(v.models), before, capture(v.models))
        out.append({v.name: compare(records[v.name], records[v.against], skip)
                    for v in variants if v.against})
        log.info("one-step part, step %d/%d done", i + 1, steps)
    return out


def free_run_part(s: PhaseSettings, device: torch.device, variants: list[Variant],
                  steps: int, seed: int) -> dict[str, dict]:
    """Part 2: each variant's drift from its counterpart over a free run from one state."""
    state = capture(variants[0].models)
    rows: dict[str, list[torch.Tensor]] = {}
    for v in variants:
        load(v.models, state, v.name)
        if v.nudged:
            nudge(v.models, seed)
        rows[v.name] = []
    for t in range(steps):
        for v in variants:
            v.models.set_lr(*learning_rates(s, changed=t >= steps // 2))
            rows[v.name].append(v.step(*batch(s, device, 100 + t))[0].clone())
    columns = STATS[s.phase]
    out = {}
    for v in variants:
        if not v.against:
            continue
        a, b = torch.stack(rows[v.name]), torch.stack(rows[v.against])
        per_column = ((a.double() - b.double()).abs() / b.double().abs().clamp_min(1e-12)
                      ).amax(dim=0).cpu().tolist()
        out[v.name] = {"drift": max(per_column), **{f"drift_{c}": x
                                                     for c, x in zip(columns, per_column)}}
    return out


def judge(kind: str, precision: str, found: dict, floor: dict | None,
          yardstick: float | None) -> tuple[str, list[str]]:
    """PASS or FAIL (with the reasons) for a judged kind; 'info' for the others."""
    if kind not in TOLERANCES:
        return "info", []
    limits = dict(TOLERANCES[kind][precision])
    if kind == "exact" and floor is not None:
        limits = {m: max(t, FLOOR_FACTOR * floor[m]) for m, t in limits.items()}
    reasons = [f"{m} {found[m]:.2g} > {limits[m]:.2g}" for m in METRICS
               if not found[m] <= limits[m]]  # NaN fails too
    if not found["counters"]:
        reasons.append("counters differ")
    if kind == "exact" and not (floor and floor["drift"] > 0):
        drift_limit = EXACT["rows"]  # two eager copies run alike: so must this one
    else:  # a free run amplifies any difference, as it does the nudge's
        drift_limit = DRIFT_FACTOR * yardstick if yardstick is not None else math.inf
    found["drift_limit"] = drift_limit
    if not found["drift"] <= drift_limit:
        reasons.append(f"free-run drift {found['drift']:.2g} > {drift_limit:.2g}")
    return ("FAIL" if reasons else "PASS"), reasons


def summarize(variants: list[Variant], per_step: list[dict], free: dict,
              precision: str) -> dict[str, dict]:
    """Each judged variant's worst step per metric, its free-run drift and its verdict."""
    worst = {}
    for v in variants:
        if not v.against:
            continue
        steps = [step[v.name] for step in per_step]
        worst[v.name] = {"against": v.against, "kind": v.kind,
                         **{m: max(st[m] for st in steps) for m in METRICS},
                         "counters": all(st["counters"] for st in steps),
                         "bitwise": all(st["bitwise"] for st in steps), **free[v.name]}
    floor = worst.get("eager again")
    yardstick = worst.get("eager, nudged", {}).get("drift")
    for v in variants:
        if v.against:
            worst[v.name]["verdict"], worst[v.name]["reasons"] = judge(
                v.kind, precision, worst[v.name], floor, yardstick)
    return worst


def run_case(s: PhaseSettings, device: torch.device, variants: list[Variant], steps: int = 4,
             free_steps: int = 6, seed: int = 0) -> dict:
    """Both parts for built `variants` (the first is the reference); call inside `numerics`.
    Every variant first takes one step on a priming batch, so that all have optimizer state."""
    if variants[0].against is not None:
        raise ValueError(f"the first variant must be the reference, not {variants[0].name!r}")
    for v in variants:
        v.models.set_lr(*learning_rates(s, changed=False))
        v.step(*batch(s, device, -1))
    precision = "bf16" if device.type == "cuda" and s.precision == "bf16" else "fp32"
    per_step = one_step_part(s, device, variants, steps, seed)
    free = free_run_part(s, device, variants, free_steps, seed)
    return {"phase": s.phase, "precision": precision, "device": str(device),
            "steps": steps, "free_steps": free_steps, "per_step": per_step,
            "variants": summarize(variants, per_step, free, precision)}


# --- the report --------------------------------------------------------------------------------

def table(case: dict) -> str:
    """The verdict table of one case."""
    head = (f"phase {case['phase']}, {case['precision']}, {case['mode']}: {case['steps']} "
            f"one-step comparisons, free run of {case['free_steps']}")
    cols = {"rows": "rows", "grads": "grads", "updates": "updates", "moments": "moments",
            "bn": "bn", "ratio": "|ratio-1|", "drift": "drift", "drift_limit": "limit"}
    width = max([len(n) for n in case["variants"]] + [8]) + 2
    lines = [head, f"{'variant':{width}}{'against':{width}}"
             + "".join(f"{c:>11}" for c in cols.values())
             + f"{'counters':>9}{'bitwise':>8}  verdict"]
    for name, v in case["variants"].items():
        cells = "".join(f"{v.get(c, math.nan):>11.2e}" for c in cols)
        flags = f"{'ok' if v['counters'] else 'DIFFER':>9}{'yes' if v['bitwise'] else 'no':>8}"
        reasons = f" ({'; '.join(v['reasons'])})" if v["reasons"] else ""
        lines.append(f"{name:{width}}{v['against']:{width}}{cells}{flags}  {v['verdict']}{reasons}")
    return "\n".join(lines)


def save(results: list[dict], path: str | Path) -> None:
    Path(path).write_text(json.dumps(results, indent=1, default=str))
