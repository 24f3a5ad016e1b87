"""Baseline preference losses for side-by-side runs, in the reward-model and the DPO form.

Reward-model form: ``(chosen_rewards, rejected_rewards) -> per-pair losses (B,)`` on the margin
``d = r(z_w) − r(z_l)``. DPO form: ``(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps,
ref_rejected_logps) -> (losses, chosen_rewards, rejected_rewards)`` on ``z = β·h`` with h the
log-ratio margin, TRL's conventions. Losses:

- Bradley-Terry / DPO ``sigmoid``: ``−logσ(d)``.
- conservative (cBT / cDPO, label smoothing, Mitchell 2023): ``−(1−ε)logσ(d) − ε logσ(−d)``. TRL
  removed it from its ``sigmoid`` loss in v0.29 (#3906); this is our own function.
- unbiased (rBT / rDPO, Chowdhury et al. 2024; TRL ``robust``): ``[−(1−ε)logσ(d) + ε logσ(−d)]/(1−2ε)``.
- IPO (Azar et al. 2023, eq. 17): ``(h − 1/(2β))²`` on the unscaled margin.
- hinge (SLiC-HF): ``relu(1 − d)`` with d β-scaled in the DPO form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from r3m.functional import check_beta, check_pair, dpo_logratios


def _margin(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    check_pair("chosen_rewards", chosen, "rejected_rewards", rejected)
    dtype = torch.promote_types(chosen.dtype, torch.float32)
    return chosen.to(dtype) - rejected.to(dtype)


def _check_eps(eps: float, upper: float) -> None:
    if not (0.0 <= eps < upper):
        raise ValueError(f"eps must lie in [0, {upper}), got {eps!r}")


def _check_beta(beta: float) -> None:
    check_beta(beta)


def bt_from_margin(d: torch.Tensor) -> torch.Tensor:
    """``−logσ(d)``."""
    return -F.logsigmoid(d)


def conservative_from_margin(d: torch.Tensor, eps: float) -> torch.Tensor:
    """``−(1−ε)logσ(d) − ε logσ(−d)`` (label smoothing), ε ∈ [0, 0.5)."""
    _check_eps(eps, 0.5)
    return -(1.0 - eps) * F.logsigmoid(d) - eps * F.logsigmoid(-d)


def unbiased_from_margin(d: torch.Tensor, eps: float) -> torch.Tensor:
    """``[−(1−ε)logσ(d) + ε logσ(−d)]/(1−2ε)`` (rDPO's unbiased estimator), ε ∈ [0, 0.5)."""
    _check_eps(eps, 0.5)
    return (-(1.0 - eps) * F.logsigmoid(d) + eps * F.logsigmoid(-d)) / (1.0 - 2.0 * eps)


def bt_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry ``−logσ(d)`` per pair.

    Example:
        >>> round(bt_loss(torch.tensor([0.0]), torch.tensor([0.0])).item(), 6)
        0.693147
    """
    return bt_from_margin(_margin(chosen_rewards, rejected_rewards))


def conservative_loss(
    chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, *, eps: float = 0.1
) -> torch.Tensor:
    """Conservative BT (label smoothing) per pair; see the module docstring."""
    return conservative_from_margin(_margin(chosen_rewards, rejected_rewards), eps)


def unbiased_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, *, eps: float = 0.1) -> torch.Tensor:
    """Unbiased (robust) BT of rDPO per pair; see the module docstring."""
    return unbiased_from_margin(_margin(chosen_rewards, rejected_rewards), eps)


def ipo_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, *, beta: float = 0.1) -> torch.Tensor:
    """IPO's ``(d − 1/(2β))²`` per pair."""
    _check_beta(beta)
    return (_margin(chosen_rewards, rejected_rewards) - 1.0 / (2.0 * beta)).square()


def hinge_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, *, beta: float = 1.0) -> torch.Tensor:
    """SLiC hinge ``relu(1 − β·d)`` per pair."""
    _check_beta(beta)
    return torch.relu(1.0 - beta * _margin(chosen_rewards, rejected_rewards))


DPOOut = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def dpo_baseline(
    kind: str,
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
    eps: float = 0.1,
) -> DPOOut:
    """A DPO-family baseline by name: ``sigmoid``, ``conservative`` (cDPO), ``robust`` (rDPO), ``ipo``, ``hinge``.

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each ``(B,)``; rewards β·logratio, detached.

    Raises:
        ValueError: unknown ``kind``, bad β or ε, bad shapes.

    Example:
        >>> z = torch.zeros(1)
        >>> losses, _, _ = dpo_baseline("sigmoid", torch.tensor([-1.0]), torch.tensor([-1.0]), z, z)
        >>> round(losses.item(), 6)
        0.693147
    """
    _check_beta(beta)
    chosen, rejected = dpo_logratios(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    h = chosen - rejected
    z = beta * h
    if kind == "sigmoid":
        losses = bt_from_margin(z)
    elif kind == "conservative":
        losses = conservative_from_margin(z, eps)
    elif kind == "robust":
        losses = unbiased_from_margin(z, eps)
    elif kind == "ipo":
        losses = (h - 1.0 / (2.0 * beta)).square()
    elif kind == "hinge":
        losses = torch.relu(1.0 - z)
    else:
        raise ValueError(f"unknown DPO baseline {kind!r}; choose from sigmoid, conservative, robust, ipo, hinge")
    return losses, (beta * chosen).detach(), (beta * rejected).detach()
