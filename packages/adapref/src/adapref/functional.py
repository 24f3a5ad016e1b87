"""The adaptive preference losses (pure functions): reward-model form and DPO form.

Both solve one scaling factor τ_i per pair with :func:`adapref.scaling.solve_tau` on the detached
margin, then evaluate the loss with τ_i held fixed, so that the gradient with respect to the
reward (or the policy) is ``−(1 − σ(d_i/τ_i))`` per unit margin, as the paper prescribes
(Algorithm 1: τ is solved, detached, then one SGD step is taken on the reward parameters).
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import torch
import torch.nn.functional as F

from adapref.scaling import LOG2, Solver, solve_tau

_REDUCTIONS = ("mean", "sum", "none")


@dataclasses.dataclass(frozen=True)
class AdaOutput:
    """Result of :func:`adaptive_preference_loss`."""

    loss: torch.Tensor
    """the reduced loss (a scalar, or ``(B,)`` with ``reduction="none"``)."""
    per_pair_loss: torch.Tensor
    """``(B,)`` loss of each pair, differentiable."""
    tau: torch.Tensor
    """``(B,)`` the scaling factors τ_i used (detached)."""
    margins: torch.Tensor
    """``(B,)`` the margins d_i = r(z_w) − r(z_l) (differentiable)."""


@dataclasses.dataclass(frozen=True)
class AdaDPOOutput:
    """Result of :func:`ada_dpo_loss` (the first three fields follow TRL / OpenRLHF's DPO loss)."""

    losses: torch.Tensor
    """``(B,)`` per-pair losses, differentiable."""
    chosen_rewards: torch.Tensor
    """``(B,)`` implicit rewards β(log π(y_w|x) − log π_ref(y_w|x)), detached."""
    rejected_rewards: torch.Tensor
    """``(B,)`` implicit rewards of the rejected responses, detached."""
    tau: torch.Tensor
    """``(B,)`` the scaling factors τ_i used (detached)."""


def _check_pair(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    for name, t in ((name_a, a), (name_b, b)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            got = f"dtype {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a floating-point tensor, got {got}")
        if t.ndim != 1:
            raise ValueError(f"{name} must be 1-D with shape (B,), got shape {tuple(t.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] == 0:
        raise ValueError(f"{name_a} is empty: a batch needs at least one pair")


def _positive_number(value: object) -> bool:
    """A real number (not a bool), finite and > 0."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value) and float(value) > 0


def _work_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype the losses compute in: that of all inputs promoted together, at least float32."""
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _reduce(per_pair: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_pair.mean()
    if reduction == "sum":
        return per_pair.sum()
    return per_pair


def adaptive_preference_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    *,
    rho0: float = 0.1,
    tau0: float = 0.1,
    tau_max: float = 1.0,
    solver: Solver = "exact",
    n_iter: int = 3,
    tau_init: float = 1.0,
    quadratic: bool = False,
    clamp_tau_max: bool = False,
    reduction: str = "mean",
    check_finite: bool | None = None,
) -> AdaOutput:
    """Adaptive preference loss for reward learning (Hong et al., 2024, eq. 6 and eq. 12).

    Paper symbols: ``chosen_rewards`` = r(z_w), ``rejected_rewards`` = r(z_l), ``rho0`` = ρ0,
    ``tau0`` = τ0, ``tau_max`` = τ_max, ``n_iter`` = K. With d_i = r(z_w,i) − r(z_l,i):

    .. math::

        \\mathcal L = \\frac1N\\sum_i -\\tau_i\\log\\sigma(d_i/\\tau_i) + (\\rho_0 - \\log 2)\\,\\tau_i
        \\quad (6), \\qquad \\text{quadratic (12): } \\ldots + \\rho_0\\tau_i^2 - (\\log 2)\\,\\tau_i,

    with τ_i the minimiser over [τ0, τ_max] (see :func:`adapref.scaling.solve_tau`), detached.

    Args:
        chosen_rewards: ``(B,)`` rewards of the preferred items.
        rejected_rewards: ``(B,)`` rewards of the other items.
        rho0, tau0, tau_max, solver, n_iter, tau_init, quadratic, clamp_tau_max, check_finite: see
            :func:`adapref.scaling.solve_tau`; defaults are the paper's control setting
            (ρ0 = 0.1, τ0 = 0.1, τ_max = 1, K = 3 when a Newton solver is chosen).
        reduction: ``"mean"`` (eq. 6), ``"sum"`` or ``"none"``.

    Returns:
        :class:`AdaOutput` with the loss, per-pair losses, τ and margins. The loss and margins are
        computed in float32 at least (float64 stays float64).

    Raises:
        ValueError: shapes differ or are not ``(B,)``, empty batch, bad hyperparameter, unknown
            reduction; non-finite margins when checked (see ``check_finite``).

    Example:
        >>> out = adaptive_preference_loss(torch.tensor([2.0]), torch.tensor([0.0]), tau_max=4.0)
        >>> round(out.loss.item(), 6), round(out.tau.item(), 6)
        (-0.560411, 2.119895)

    Note:
        With ``tau0 = tau_max = T`` the loss is Bradley-Terry at temperature T plus the constant
        ``(ρ0 − log 2)·T``; with T = 1 it is the usual BT cross-entropy up to that constant.
    """
    _check_pair("chosen_rewards", chosen_rewards, "rejected_rewards", rejected_rewards)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    dtype = _work_dtype(chosen_rewards, rejected_rewards)
    margins = chosen_rewards.to(dtype) - rejected_rewards.to(dtype)
    tau = solve_tau(
        margins,
        rho0=rho0,
        tau0=tau0,
        tau_max=tau_max,
        solver=solver,
        n_iter=n_iter,
        tau_init=tau_init,
        quadratic=quadratic,
        clamp_tau_max=clamp_tau_max,
        check_finite=check_finite,
    )
    # τ·(c − logσ(d/τ)) with c = ρ0 − log 2 (eq. 6) or ρ0τ − log 2 (eq. 12): the penalty folded into one
    # product, so the step costs two elementwise kernels more than Bradley-Terry's (the division and the product)
    coef = rho0 * tau - LOG2 if quadratic else rho0 - LOG2
    per_pair = tau * (coef - F.logsigmoid(margins / tau))
    return AdaOutput(_reduce(per_pair, reduction), per_pair, tau, margins)


def ada_dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
    rho0: float = 0.1,
    tau0: float = 0.1,
    tau_max: float = 5.0,
    solver: Solver = "exact",
    n_iter: int = 5,
    tau_init: float = 1.0,
    quadratic: bool = False,
    clamp_tau_max: bool = False,
    reference_free: bool = False,
    check_finite: bool | None = None,
) -> AdaDPOOutput:
    """Ada-DPO: the adaptive loss on DPO's implicit reward margin (Hong et al., 2024, §3.5).

    With h_i = (log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x)) and
    z_i = β·h_i, τ_i is solved on the detached z_i and

    .. math::

        \\ell_i = -\\tau_i \\log\\sigma(z_i / \\tau_i).

    Args:
        policy_chosen_logps, policy_rejected_logps: ``(B,)`` sequence log-probabilities under π.
        ref_chosen_logps, ref_rejected_logps: ``(B,)`` the same under π_ref (ignored when
            ``reference_free``).
        beta: DPO's β > 0 (TRL's default 0.1).
        rho0, tau0, tau_max, solver, n_iter, tau_init, quadratic, clamp_tau_max, check_finite: as in
            :func:`adapref.scaling.solve_tau`; defaults are the authors' DPO setting (ρ0 = 0.1,
            τ0 = 0.1, τ_max = 5, K = 5). ``newton-official`` uses the DPO trainer's eps = 1e-6.
        reference_free: use a uniform reference (π_ref terms set to 0), as TRL does.

    Returns:
        :class:`AdaDPOOutput` (per-pair losses, implicit rewards β·logratio, τ).

    Raises:
        ValueError: for mismatched shapes, empty input or a bad hyperparameter (named); non-finite
            margins when checked (see ``check_finite``).

    Example:
        >>> z = torch.tensor([0.0])
        >>> out = ada_dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]), z, z, beta=1.0)
        >>> round(out.tau.item(), 6)
        2.119895

    Note:
        The paper "merges" β into τ and ρ; the authors' trainer keeps β and solves τ on β·h, so the
        gradient has TRL's scale β(1 − σ(z/τ)). We follow the code, so β keeps its TRL meaning and
        the τ bounds are in β-scaled units. Like the code we drop the constant ρτ (τ is detached,
        so it changes no gradient) but use ``logsigmoid`` instead of the code's ``log(σ + 1e-6)``,
        which biases the loss and kills gradients for z/τ < −13.8.
    """
    _check_pair("policy_chosen_logps", policy_chosen_logps, "policy_rejected_logps", policy_rejected_logps)
    if not reference_free:
        _check_pair("ref_chosen_logps", ref_chosen_logps, "ref_rejected_logps", ref_rejected_logps)
        if ref_chosen_logps.shape != policy_chosen_logps.shape:
            raise ValueError(
                f"ref_chosen_logps must have the shape of policy_chosen_logps {tuple(policy_chosen_logps.shape)}, "
                f"got {tuple(ref_chosen_logps.shape)}"
            )
    if not _positive_number(beta):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    dtype = _work_dtype(
        policy_chosen_logps, policy_rejected_logps, *(() if reference_free else (ref_chosen_logps, ref_rejected_logps))
    )
    chosen_logratios = policy_chosen_logps.to(dtype)
    rejected_logratios = policy_rejected_logps.to(dtype)
    if not reference_free:
        chosen_logratios = chosen_logratios - ref_chosen_logps.to(dtype)
        rejected_logratios = rejected_logratios - ref_rejected_logps.to(dtype)
    z = beta * (chosen_logratios - rejected_logratios)
    tau = solve_tau(
        z,
        rho0=rho0,
        tau0=tau0,
        tau_max=tau_max,
        solver=solver,
        n_iter=n_iter,
        tau_init=tau_init,
        quadratic=quadratic,
        clamp_tau_max=clamp_tau_max,
        official_eps=1e-6,
        check_finite=check_finite,
    )
    losses = -tau * F.logsigmoid(z / tau)
    return AdaDPOOutput(
        losses,
        (beta * chosen_logratios).detach(),
        (beta * rejected_logratios).detach(),
        tau,
    )
