"""Baseline preference losses for side-by-side runs: Bradley-Terry (any fixed temperature), margin-BT, hinge,
IPO, and for DPO also conservative DPO (cDPO) and robust DPO (rDPO), the related losses the spec names.

Each comes in the reward-model form ``(chosen_rewards, rejected_rewards) -> per-pair losses`` and
the DPO form ``(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
-> (losses, chosen_rewards, rejected_rewards)``, with TRL's conventions (``loss_type`` sigmoid,
hinge, ipo), so benchmarks compare every loss in one call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from adapref.functional import _check_pair, _positive_number, _work_dtype


def _check_positive(name: str, value: object) -> None:
    if not _positive_number(value):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _margins(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    _check_pair("chosen_rewards", chosen, "rejected_rewards", rejected)
    dtype = _work_dtype(chosen, rejected)
    return chosen.to(dtype) - rejected.to(dtype)


def bt_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, *, temperature: float = 1.0) -> torch.Tensor:
    """Bradley-Terry negative log-likelihood at a fixed temperature T, per pair.

    .. math::

        \\ell_i = -T \\log\\sigma(d_i / T), \\qquad d_i = r(z_w) - r(z_l).

    T = 1 is the standard BT loss (Christiano et al., 2017); other T give the fixed-temperature
    sweep that the adaptive loss is meant to replace (it equals the adaptive loss with
    τ0 = τ_max = T, up to the constant (ρ0 − log 2)·T). The factor T keeps the gradient scale
    ``1 − σ(d/T)`` comparable across temperatures.

    Args:
        chosen_rewards, rejected_rewards: ``(B,)``.
        temperature: T > 0.

    Returns:
        ``(B,)`` per-pair losses.

    Example:
        >>> round(bt_loss(torch.tensor([0.0]), torch.tensor([0.0])).item(), 6)  # log 2
        0.693147
    """
    _check_positive("temperature", temperature)
    d = _margins(chosen_rewards, rejected_rewards)
    if temperature == 1.0:  # the plain BT loss, without the two no-op kernels (the same values)
        return -F.logsigmoid(d)
    return -temperature * F.logsigmoid(d / temperature)


def margin_bt_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """Margin Bradley-Terry of TRL's ``RewardTrainer`` (its ``margin`` column): ``−logσ(d − m)`` per pair.

    With the known preference strength as ``margin`` m this is the fixed, hand-set counterpart of what
    the adaptive loss learns per pair.

    Example:
        >>> round(margin_bt_loss(torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([2.0])).item(), 6)
        0.693147
    """
    d = _margins(chosen_rewards, rejected_rewards)
    if not isinstance(margin, torch.Tensor) or margin.shape != d.shape:
        shown = tuple(margin.shape) if isinstance(margin, torch.Tensor) else type(margin).__name__
        raise ValueError(f"margin must be a tensor of shape {tuple(d.shape)}, got {shown}")
    return -F.logsigmoid(d - margin.to(d.dtype))


def hinge_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, *, beta: float = 1.0) -> torch.Tensor:
    """SLiC hinge loss ``relu(1 − β·d)`` per pair (TRL ``loss_type="hinge"`` on a reward margin)."""
    _check_positive("beta", beta)
    return torch.relu(1.0 - beta * _margins(chosen_rewards, rejected_rewards))


def ipo_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, *, beta: float = 0.1) -> torch.Tensor:
    """IPO's squared loss ``(d − 1/(2β))²`` per pair (Azar et al., 2023, eq. 17; TRL's form)."""
    _check_positive("beta", beta)
    return (_margins(chosen_rewards, rejected_rewards) - 1.0 / (2.0 * beta)).square()


def _dpo_logits(
    pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    _check_pair("policy_chosen_logps", pc, "policy_rejected_logps", pr)
    _check_pair("ref_chosen_logps", rc, "ref_rejected_logps", rr)
    if rc.shape != pc.shape:
        raise ValueError(f"reference log-probs must have shape {tuple(pc.shape)}, got {tuple(rc.shape)}")
    dtype = _work_dtype(pc, pr, rc, rr)
    chosen = pc.to(dtype) - rc.to(dtype)
    rejected = pr.to(dtype) - rr.to(dtype)
    return chosen - rejected, chosen, rejected


def sigmoid_dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO (Rafailov et al., 2023): ``−logσ(β·h)``, h the log-ratio margin (TRL ``"sigmoid"``).

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each ``(B,)``; rewards are
        β·(log π − log π_ref), detached.
    """
    _check_positive("beta", beta)
    h, chosen, rejected = _dpo_logits(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    return -F.logsigmoid(beta * h), (beta * chosen).detach(), (beta * rejected).detach()


def hinge_dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SLiC-HF hinge on the DPO margin: ``relu(1 − β·h)`` (TRL ``"hinge"``)."""
    _check_positive("beta", beta)
    h, chosen, rejected = _dpo_logits(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    return torch.relu(1.0 - beta * h), (beta * chosen).detach(), (beta * rejected).detach()


def ipo_dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """IPO: ``(h − 1/(2β))²`` with h the unscaled log-ratio margin (Azar et al., eq. 17).

    Note:
        TRL's ``"ipo"`` divides each sequence log-ratio by its completion length first; pass
        length-averaged log-probabilities to reproduce it.
    """
    _check_positive("beta", beta)
    h, chosen, rejected = _dpo_logits(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    return (h - 1.0 / (2.0 * beta)).square(), (beta * chosen).detach(), (beta * rejected).detach()


def _check_smoothing(label_smoothing: object, upper: float) -> float:
    if (
        isinstance(label_smoothing, bool)
        or not isinstance(label_smoothing, (int, float))
        or not 0.0 <= label_smoothing < upper
    ):
        raise ValueError(f"label_smoothing must be a number in [0, {upper}), got {label_smoothing!r}")
    return float(label_smoothing)


def conservative_dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Conservative DPO (cDPO; Mitchell, 2023): ``−(1 − ε)logσ(βh) − ε logσ(−βh)``, ε = ``label_smoothing``.

    TRL's ``sigmoid`` loss with ``label_smoothing`` before TRL removed it; ε = 0 is DPO.
    """
    _check_positive("beta", beta)
    eps = _check_smoothing(label_smoothing, 1.0)
    h, chosen, rejected = _dpo_logits(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    losses = -(1.0 - eps) * F.logsigmoid(beta * h) - eps * F.logsigmoid(-beta * h)
    return losses, (beta * chosen).detach(), (beta * rejected).detach()


def robust_dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Robust DPO (rDPO; Chowdhury et al., 2024), TRL's ``"robust"``: the unbiased loss under flip rate ε.

    ``(−(1 − ε)logσ(βh) + ε logσ(−βh)) / (1 − 2ε)``, ε = ``label_smoothing`` ∈ [0, 0.5); ε = 0 is DPO.
    """
    _check_positive("beta", beta)
    eps = _check_smoothing(label_smoothing, 0.5)
    h, chosen, rejected = _dpo_logits(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    losses = (-(1.0 - eps) * F.logsigmoid(beta * h) + eps * F.logsigmoid(-beta * h)) / (1.0 - 2.0 * eps)
    return losses, (beta * chosen).detach(), (beta * rejected).detach()
