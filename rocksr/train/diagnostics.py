"""Does each phase-2 loss term act? Per-epoch gradient shares and loud warnings.

Once per epoch, inside the epoch's last training step (same batch, same graph: no extra
forward pass, and the step's own update is unchanged), each weighted generator term
(L1, vgg_weight * VGG, adv_weight * adversarial) is differentiated on its own with respect
to the generator's parameters. A term's share is the norm of its gradient over the sum of
the terms' norms, so the shares sum to 1. The values stay on the device until the epoch
end, where the loop reads its figures anyway.

Warnings (logged, and kept in the metrics' `warnings` column, which the training-curves
figure shows): a term with a non-zero weight whose share is under MIN_SHARE (it does
nothing: the earlier public reproduction's silent failure), and a collapsed discriminator
(the epoch's mean D(fake) < 0.05 and D(real) > 0.95: G no longer fools D at all).
"""

from __future__ import annotations

import torch

TERMS = ("l1", "vgg", "adv")
COLUMNS = [f"w_{t}" for t in TERMS] + [f"share_{t}" for t in TERMS]
MIN_SHARE = 0.01
D_FAKE_MAX, D_REAL_MIN = 0.05, 0.95


def gradient_shares(weighted: dict[str, torch.Tensor],
                    params: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each term's share of the summed per-term gradient norms over `params` (0-d tensors).

    A term without a graph back to `params` (computed under no_grad, or detached) gets 0.
    """
    norms = {}
    for name, term in weighted.items():
        grads = (torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
                 if term.requires_grad else ())
        grads = [torch.linalg.vector_norm(g.float()) for g in grads if g is not None]
        norms[name] = (torch.linalg.vector_norm(torch.stack(grads)) if grads
                       else torch.zeros((), device=term.device))
    total = torch.stack(list(norms.values())).sum().clamp_min(torch.finfo(torch.float32).tiny)
    return {name: norm / total for name, norm in norms.items()}


def term_diagnostics(weighted: dict[str, torch.Tensor],
                     params: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """The COLUMNS of one batch: weighted values and gradient shares, on the device."""
    shares = gradient_shares(weighted, params)
    return {**{f"w_{t}": v.detach().float() for t, v in weighted.items()},
            **{f"share_{t}": v for t, v in shares.items()}}


def epoch_warnings(row: dict, weights: dict[str, float]) -> list[str]:
    """The warnings an epoch's metrics row calls for; `weights` maps term -> its weight
    (a term switched off on purpose, weight 0, is not warned about)."""
    found = []
    for t in TERMS:
        share = row.get(f"share_{t}")
        if weights.get(t, 0) > 0 and share is not None and share < MIN_SHARE:
            found.append(f"{t} term inactive: {100 * share:.2g}% of the generator's gradient "
                         f"(< {100 * MIN_SHARE:g}%)")
    if row.get("d_fake", 1.0) < D_FAKE_MAX and row.get("d_real", 0.0) > D_REAL_MIN:
        found.append(f"discriminator collapsed: mean D(fake) {row['d_fake']:.3f} < "
                     f"{D_FAKE_MAX} and D(real) {row['d_real']:.3f} > {D_REAL_MIN}")
    return found
