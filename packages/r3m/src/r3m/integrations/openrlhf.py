"""R³M for OpenRLHF: :func:`use_r3m` swaps the loss module of an OpenRLHF trainer for R³M's.

OpenRLHF's reward-model trainer (``RewardModelTrainer``) and DPO trainer (``DPOTrainer``) both keep
their loss in ``trainer.loss_fn`` and call it positionally, so assigning a module with the same
signature changes the objective and nothing else. The signatures followed are those of OpenRLHF
0.11.2 (``openrlhf/models/loss.py``):

- ``PairWiseLoss()`` / ``LogExpLoss()``: ``loss_fn(chosen_reward, reject_reward, margin)`` returns the
  scalar mean loss (``margin`` is ``None`` unless ``--margin_loss``) → :class:`r3m.nn.R3MLoss`;
- ``DPOLoss(beta, label_smoothing, ipo)``: ``loss_fn(policy_chosen_logps, policy_rejected_logps,
  reference_chosen_logps, reference_rejected_logps)`` returns ``(loss, chosen_rewards,
  rejected_rewards)`` → :class:`r3m.nn.R3MDPOLoss`.

OpenRLHF itself is not imported or required: the trainer is duck-typed (any object with a
``loss_fn`` attribute), which also keeps this module importable without its CUDA-only dependencies.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from r3m.nn import R3MDPOLoss, R3MLoss

__all__ = ["OPENRLHF_VERSION", "use_r3m"]

logger = logging.getLogger(__name__)

OPENRLHF_VERSION = "0.11.2"
"""The OpenRLHF release whose ``PairWiseLoss`` / ``DPOLoss`` call signatures :func:`use_r3m` follows."""


def _is_dpo_loss(loss_fn: object) -> bool:
    """OpenRLHF's ``DPOLoss`` (by class name) or any loss carrying a DPO ``beta``."""
    return hasattr(loss_fn, "beta") or type(loss_fn).__name__ == "DPOLoss"


def use_r3m(trainer: Any, lam: float = 0.5, beta: float | None = None) -> torch.nn.Module:
    """Replace ``trainer.loss_fn`` by the R³M loss with the same OpenRLHF signature; return the new module.

    Paper symbols: ``lam`` = λ, the per-sample ℓ1 weight of eqs. 3.3–3.4; ``beta`` = DPO's β (§3.4).
    A reward-model trainer gets :class:`~r3m.nn.R3MLoss` (eq. 3.5 at the δ of eq. 3.4, on
    d_i = r(z_w) − r(z_l) − margin_i as in OpenRLHF's ``PairWiseLoss``); a DPO trainer, recognised by
    a ``loss_fn`` that has a ``beta`` attribute or is OpenRLHF's ``DPOLoss``, gets
    :class:`~r3m.nn.R3MDPOLoss` (δ on the β-scaled implicit-reward margin).

    Args:
        trainer: an OpenRLHF ``RewardModelTrainer`` or ``DPOTrainer`` (or anything holding its loss in
            ``loss_fn`` and calling it with those signatures), after construction and before training.
        lam: per-sample λ ∈ (0, 1); 0.5 flags every pair the model currently misranks.
        beta: β > 0 for a DPO trainer; ``None`` keeps the current ``trainer.loss_fn.beta``. Ignored
            (with a warning) for a reward-model trainer.

    Returns:
        The installed module (now ``trainer.loss_fn``); its ``last_delta`` holds the ``(B,)`` δ of
        the last call, for logging the outlier fraction ``(last_delta > 0).float().mean()``.

    Raises:
        TypeError: ``trainer`` has no ``loss_fn`` attribute, or it is ``None``.
        ValueError: ``lam`` ∉ (0, 1); ``beta`` ≤ 0 or non-finite; a ``DPOLoss`` without ``beta``
            and no ``beta`` given.

    Example:
        >>> class RewardModelTrainer:  # stand-in: OpenRLHF's sets loss_fn = PairWiseLoss()
        ...     loss_fn = None
        >>> trainer = RewardModelTrainer()
        >>> trainer.loss_fn = torch.nn.Identity()
        >>> use_r3m(trainer, lam=0.75)
        R3MLoss(lam=0.75)
        >>> round(trainer.loss_fn(torch.tensor([2.0]), torch.tensor([0.0]), None).item(), 6)
        0.126928

    Note:
        The DPO replacement drops the settings of the loss it replaces other than β: OpenRLHF's
        ``label_smoothing`` (cDPO) and ``ipo`` are not combined with R³M, and a warning says so when
        they were set. OpenRLHF's own ``acc`` and reward logs are unchanged (they are computed by the
        trainer from the rewards, not by the loss).

    References:
        Bukharin et al., "Robust Reinforcement Learning from Corrupted Human Feedback", NeurIPS 2024,
        arXiv:2406.15568; OpenRLHF 0.11.2 ``openrlhf/models/loss.py``, ``openrlhf/trainer/rm_trainer.py``,
        ``openrlhf/trainer/dpo_trainer.py``.
    """
    current = getattr(trainer, "loss_fn", None)
    if current is None:
        raise TypeError(
            f"use_r3m needs an OpenRLHF trainer holding its loss in `loss_fn` (RewardModelTrainer or DPOTrainer); "
            f"{type(trainer).__name__} has no loss_fn (or it is None)"
        )
    module: torch.nn.Module
    if _is_dpo_loss(current):
        if beta is None:
            beta = getattr(current, "beta", None)
            if beta is None:
                raise ValueError(f"beta must be given: the {type(current).__name__} in trainer.loss_fn has no beta")
        dropped = {k: getattr(current, k) for k in ("label_smoothing", "ipo") if getattr(current, k, None)}
        if dropped:
            logger.warning("use_r3m: R³M-DPO replaces %s; its %s are not applied", type(current).__name__, dropped)
        module = R3MDPOLoss(beta=beta, lam=lam)
    else:
        if beta is not None:
            logger.warning("use_r3m: beta=%r is ignored for a reward-model loss (%s)", beta, type(current).__name__)
        module = R3MLoss(lam=lam)
    trainer.loss_fn = module
    logger.info("use_r3m: trainer.loss_fn = %r (was %s)", module, type(current).__name__)
    return module
