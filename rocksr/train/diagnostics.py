"""Does each phase-2 loss term act? Gradient shares and cosines per epoch, loud warnings.

Every `diagnose_every` iterations and at each epoch's last one (`diagnosed`), inside that
training step (same batch, same graph: no extra forward pass, and the step's own update is
unchanged), each weighted generator term (L1, alpha x VGG, beta x adversarial) is
differentiated on its own with respect to the generator's parameters. A term's share is the
norm of its gradient over the sum of the terms' norms (the shares sum to 1); the cosine of
two terms is that of their gradients: -1 when they cancel. Shares alone cannot see that:
L1 and adversarial gradients of equal size and opposite direction have shares 0.45 and 0.45
beside a VGG share of 0.09, while the whole update comes from the VGG term. The epoch's
figures are the mean over its diagnosed steps (`EpochMean`, kept on the device until the
epoch end, where the loop reads its figures anyway, and checkpointed with the epoch).

Warnings (logged, and kept in the metrics' `warnings` column, which the training-curves
figure shows): a term with a non-zero weight whose share is under MIN_SHARE (it does
nothing: the earlier public reproduction's silent failure); L1 and adversarial gradients
against each other (mean cosine under COS_AGAINST); a collapsed discriminator (the epoch's
mean D(fake) < 0.05 and D(real) > 0.95: G no longer fools D at all).
"""

from __future__ import annotations

import itertools

import torch

TERMS = ("l1", "vgg", "adv")
PAIRS = list(itertools.combinations(TERMS, 2))
COLUMNS = ([f"w_{t}" for t in TERMS] + [f"share_{t}" for t in TERMS]
           + [f"cos_{a}_{b}" for a, b in PAIRS])
MIN_SHARE = 0.01
COS_AGAINST = -0.5
D_FAKE_MAX, D_REAL_MIN = 0.05, 0.95


def diagnosed(i: int, iters: int, every: int) -> bool:
    """Whether an epoch's iteration `i` (from 0, of `iters`) is a diagnosed step."""
    return (i + 1) % every == 0 or i == iters - 1


def term_gradients(weighted: dict[str, torch.Tensor],
                   params: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each term's gradient with respect to `params`, as one flat fp32 vector; zeros where a
    term has no graph back to a parameter (computed under no_grad, or detached)."""
    flat = {}
    for name, term in weighted.items():
        grads = (torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
                 if term.requires_grad else [None] * len(params))
        flat[name] = torch.cat([(torch.zeros_like(p) if g is None else g).float().reshape(-1)
                                for g, p in zip(grads, params)])
    return flat


def shares_of(gradients: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each gradient's norm over the sum of their norms (0-d tensors)."""
    norms = {name: torch.linalg.vector_norm(g) for name, g in gradients.items()}
    total = torch.stack(list(norms.values())).sum().clamp_min(torch.finfo(torch.float32).tiny)
    return {name: norm / total for name, norm in norms.items()}


def cosines_of(gradients: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """cos_<a>_<b> of every pair of terms present; NaN where a gradient is zero."""
    return {f"cos_{a}_{b}": torch.dot(gradients[a], gradients[b])
            / (torch.linalg.vector_norm(gradients[a]) * torch.linalg.vector_norm(gradients[b]))
            for a, b in PAIRS if a in gradients and b in gradients}


def gradient_shares(weighted: dict[str, torch.Tensor],
                    params: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each term's share of the summed per-term gradient norms over `params` (0-d tensors).

    A term without a graph back to `params` (computed under no_grad, or detached) gets 0.
    """
    return shares_of(term_gradients(weighted, params))


def term_diagnostics(weighted: dict[str, torch.Tensor],
                     params: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """The COLUMNS of one batch: weighted values, gradient shares and cosines, on the device."""
    gradients = term_gradients(weighted, params)
    return {**{f"w_{t}": v.detach().float() for t, v in weighted.items()},
            **{f"share_{t}": v for t, v in shares_of(gradients).items()},
            **cosines_of(gradients)}


class EpochMean:
    """The running mean of an epoch's diagnosed steps, on `device`; part of the checkpoint,
    so that a resumed epoch averages the same steps as an uninterrupted one."""

    def __init__(self, device: torch.device):
        self.device = device
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, figures: dict[str, torch.Tensor]) -> None:
        for name, value in figures.items():
            self.sums[name] = self.sums.get(name, 0) + value
        self.count += 1

    def pop(self) -> dict[str, torch.Tensor] | None:
        """The mean of the steps added since the last pop (None if there were none)."""
        mean = {name: s / self.count for name, s in self.sums.items()} if self.count else None
        self.sums, self.count = {}, 0
        return mean

    def state_dict(self) -> dict:
        return {"sums": {name: s.cpu() for name, s in self.sums.items()}, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.sums = {name: s.to(self.device) for name, s in state["sums"].items()}
        self.count = state["count"]


def epoch_warnings(row: dict, weights: dict[str, float]) -> list[str]:
    """The warnings an epoch's metrics row calls for; `weights` maps term -> its weight
    (a term switched off on purpose, weight 0, is not warned about)."""
    found = []
    for t in TERMS:
        share = row.get(f"share_{t}")
        if weights.get(t, 0) > 0 and share is not None and share < MIN_SHARE:
            found.append(f"{t} term inactive: {100 * share:.2g}% of the generator's gradient "
                         f"(< {100 * MIN_SHARE:g}%)")
    cos = row.get("cos_l1_adv", float("nan"))
    if cos < COS_AGAINST:
        found.append(f"L1 and adversarial gradients against each other: cosine {cos:.2f} "
                     f"(< {COS_AGAINST}): they cancel, and the update comes from what is left")
    if row.get("d_fake", 1.0) < D_FAKE_MAX and row.get("d_real", 0.0) > D_REAL_MIN:
        found.append(f"discriminator collapsed: mean D(fake) {row['d_fake']:.3f} < "
                     f"{D_FAKE_MAX} and D(real) {row['d_real']:.3f} > {D_REAL_MIN}")
    return found
