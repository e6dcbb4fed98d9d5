"""alpha and beta of the phase-2 generator loss: fixed (the paper's runs), or balanced after
each epoch as the authors' code can (`training.phase2.balance: ratio`).

The authors' "hyperparameter tuning module" (`--hyperFlag`, `sr3dydw.py`) rescales both after
every GAN epoch from the epoch's mean losses: alpha <- alpha x mean(L1) / mean(alpha x VGG) x
featureRatio, so that the weighted VGG term is `feature_ratio` times the content loss
whatever the VGG's scale; beta likewise with `adv_ratio` and the adversarial term, or, for
`adv_ratio` <= 0, beta <- beta / mean(D loss) (tuned against a D loss of 1). Their epoch means
are of the weighted terms; this code records the terms unweighted, so the weighted mean is
alpha x mean(VGG) (alpha is constant within an epoch). A weight of 0 (a term switched off)
stays 0, where theirs would divide 0 by 0.

`LossWeights` holds alpha and beta as device tensors that the step multiplies by (a CUDA
graph reads them there), updated in place, and is part of the checkpoint: a resumed run
continues with the values it had.
"""

from __future__ import annotations

import logging
import math

import torch

from rocksr.settings import PhaseSettings

log = logging.getLogger(__name__)


def rebalanced(alpha: float, beta: float, means: dict[str, float], feature_ratio: float,
               adv_ratio: float) -> tuple[float, float]:
    """The authors' update of (alpha, beta) from an epoch's mean unweighted losses `means`
    (loss_l1, loss_vgg, loss_adv, loss_d). A weight whose term gives nothing to scale by
    (0, or a non-finite mean) is kept."""
    def scaled(weight: float, term: str, ratio: float) -> float:
        weighted = weight * means[term]  # the authors' epoch mean of the weighted term
        if weight == 0 or not (math.isfinite(weighted) and weighted > 0):
            return weight
        return weight * means["loss_l1"] / weighted * ratio

    alpha = scaled(alpha, "loss_vgg", feature_ratio)
    if adv_ratio > 0:
        beta = scaled(beta, "loss_adv", adv_ratio)
    elif math.isfinite(means["loss_d"]) and means["loss_d"] > 0:
        beta = beta / means["loss_d"]
    return alpha, beta


class LossWeights:
    """alpha (vgg_weight) and beta (adv_weight) of one phase-2 run, on `device`."""

    def __init__(self, s: PhaseSettings, device: torch.device):
        self.s = s
        self.alpha = torch.tensor(s.vgg_weight, device=device)
        self.beta = torch.tensor(s.adv_weight, device=device)

    def step_weights(self) -> dict[str, torch.Tensor]:
        """train_step's keyword arguments."""
        return {"vgg_weight": self.alpha, "adv_weight": self.beta}

    def values(self) -> dict[str, float]:
        return {"alpha": self.alpha.item(), "beta": self.beta.item()}

    def end_epoch(self, row: dict) -> None:
        """After an epoch (its metrics `row`): under `balance: ratio`, the next epoch's
        alpha and beta, logged."""
        if self.s.balance != "ratio":
            return
        old = self.values()
        alpha, beta = rebalanced(old["alpha"], old["beta"], row, self.s.feature_ratio,
                                 self.s.adv_ratio)
        self.load_state_dict({"alpha": alpha, "beta": beta})
        log.info("balance ratio: alpha %.4g -> %.4g, beta %.4g -> %.4g (epoch means: L1 %.4g, "
                 "VGG %.4g, adversarial %.4g, D %.4g)", old["alpha"], alpha, old["beta"], beta,
                 row["loss_l1"], row["loss_vgg"], row["loss_adv"], row["loss_d"])

    def state_dict(self) -> dict[str, float]:
        return self.values()

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.alpha.fill_(state["alpha"])
        self.beta.fill_(state["beta"])
