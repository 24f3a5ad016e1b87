"""The R³M losses (pure functions): ℓ1-sparse perturbations for reward learning and for DPO.

R³M (Bukharin et al., 2024) models each observed preference as
``p(z_w ≻ z_l) = σ(r*(z_w) − r*(z_l) + δ*_i)`` (eq. 3.1) with a sparse vector δ* of outliers and fits

.. math::

    (\\hat r, \\hat\\delta) = \\arg\\min_{r,\\delta} \\frac1n \\sum_i \\big[-\\log\\sigma(d_i + \\delta_i) + \\lambda|\\delta_i|\\big],
    \\qquad d_i = r(z_{w,i}) - r(z_{l,i}),

by alternating the closed-form δ-step (eq. 3.4)

.. math::

    \\delta_i = \\max\\{\\log(1/\\lambda - 1) - d_i,\\ 0\\} = \\max\\{t_\\lambda - d_i, 0\\}

with a gradient step on r (eq. 3.5). λ is **per sample**, λ ∈ (0, 1), as in eqs. 3.3–3.4 and all the
paper's experiments; eq. 3.2 puts λ outside the 1/n average, so its λ = 1/n (Thm. 4.4) is the
per-sample λ = 1, where no pair is ever an outlier and R³M is plain Bradley-Terry.

Eliminating δ gives (derived here, not stated in the paper)

.. math::

    \\min_{\\delta\\ge0} \\ell_i = \\begin{cases} \\operatorname{softplus}(-d_i) & d_i \\ge t_\\lambda \\\\
    \\operatorname{softplus}(-t_\\lambda) + \\lambda\\,(t_\\lambda - d_i) & d_i < t_\\lambda \\end{cases},
    \\qquad \\frac{\\partial \\ell_i}{\\partial d_i} = -\\min(1 - \\sigma(d_i), \\lambda),

i.e. Bradley-Terry with each pair's gradient weight capped at λ. The functions below evaluate it as
eq. 3.5 at the δ of eq. 3.4 held fixed (the paper's alternating step), ``ℓ_i = softplus(−(d_i + δ_i)) + λδ_i``
with ``d_i + δ_i`` evaluated exactly as ``max(d_i, t_λ)`` (no rounding of ``d_i + (t_λ − d_i)``): its
gradient ``−σ(−max(d_i, t_λ))`` is the one above, since ``σ(−t_λ) = λ``, and its backward pass is
Bradley-Terry's (the δ-step adds five elementwise kernels to the forward pass and none to the
backward). δ is returned (detached) for the outlier report, and ``δ_i > 0`` exactly when ``d_i < t_λ``.

References:
    Bukharin, Hong, Jiang, Li, Zhang, Zhang, Zhao, "Robust Reinforcement Learning from Corrupted
    Human Feedback", NeurIPS 2024, arXiv:2406.15568.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings

import torch
import torch.nn.functional as F

_REDUCTIONS = ("mean", "sum", "none")


def r3m_threshold(lam: float) -> float:
    """``t_λ = log(1/λ − 1) = −logit(λ)``: pairs with margin below it are flagged as outliers.

    Args:
        lam: per-sample ℓ1 weight λ ∈ (0, 1).

    Returns:
        t_λ (``+2.197`` at λ = 0.1, ``0`` at 0.5, ``−1.099`` at 0.75).

    Raises:
        ValueError: λ outside (0, 1), with a hint on the per-sample convention.

    Example:
        >>> round(r3m_threshold(0.75), 6)
        -1.098612
    """
    value: object = lam
    lam = math.nan
    if isinstance(value, bool):
        pass  # True/False are not a weight
    elif isinstance(value, numbers.Real):
        lam = float(value)
    if not (0.0 < lam < 1.0):
        raise ValueError(
            f"lam must be a number in the open interval (0, 1), got {value!r}. R³M uses the per-sample λ of eqs. 3.3-3.4: "
            "the theorem's λ = 1/n (eq. 3.2's convention) is the per-sample λ = 1, which flags nothing and is "
            "plain Bradley-Terry; the paper's experiments use λ in 0.1..0.9"
        )
    return math.log(1.0 / lam - 1.0)


SMALL_LAM = 0.05
"""Below this λ, :func:`check_lam` warns: the paper's experiments use λ ∈ 0.1..0.9, and a tiny λ is
likely eq. 3.2's λ = 1/n, which in the per-sample convention of eqs. 3.3-3.4 is λ = 1."""


def check_lam(lam: float, *, stacklevel: int = 3) -> float:
    """Validate a configured λ (as :func:`r3m_threshold`) and warn when it looks like eq. 3.2's 1/n.

    A per-sample λ below :data:`SMALL_LAM` puts t_λ above 2.9 (8.5 at λ = 1/5000), so nearly every pair
    of a trained model is flagged: likely the theorem's λ = 1/n, which per sample is λ = 1 (Bradley-Terry).
    Called once where a loss is configured (``TrainConfig``, the modules, the TRL configs), not per call;
    ``stacklevel`` points the warning at the caller's caller (4 from a dataclass's ``__post_init__``).

    Returns:
        t_λ.

    Raises:
        ValueError: λ outside (0, 1).
    """
    t = r3m_threshold(lam)
    if lam < SMALL_LAM:
        warnings.warn(
            f"lam = {lam:g} flags every pair whose margin is below t_lambda = {t:.3g}: R³M's lambda is per sample "
            "(eqs. 3.3-3.4; the paper's experiments use 0.1..0.9). If this is the theorem's 1/n (eq. 3.2), that is "
            "the per-sample lambda = 1, plain Bradley-Terry",
            UserWarning,
            stacklevel=stacklevel,
        )
    return t


def r3m_delta(margins: torch.Tensor, lam: float) -> torch.Tensor:
    """The δ-step of eq. 3.4: ``δ_i = max(t_λ − d_i, 0)``, detached, same shape as ``margins``.

    Computed in at least float32, as :func:`r3m_loss` does: bf16 margins would round t_λ
    (−1.0986 → −1.1016 at λ = .75) and flip the flag of pairs near the threshold.

    Example:
        >>> r3m_delta(torch.tensor([-1.0, 2.0]), 0.5).tolist()
        [1.0, 0.0]
    """
    t = r3m_threshold(lam)
    if not isinstance(margins, torch.Tensor) or not margins.is_floating_point():
        raise ValueError(f"margins must be a floating tensor, got {type(margins).__name__}")
    d = margins.detach()
    return (t - d.to(torch.promote_types(d.dtype, torch.float32))).clamp_min(0.0)


@dataclasses.dataclass(frozen=True)
class R3MOutput:
    """Result of :func:`r3m_loss`."""

    loss: torch.Tensor
    """the reduced loss (scalar, or ``(B,)`` with ``reduction="none"``)."""
    per_pair_loss: torch.Tensor
    """``(B,)`` loss of each pair at its optimal δ_i, differentiable."""
    delta: torch.Tensor
    """``(B,)`` perturbations δ_i ≥ 0 (detached); δ_i > 0 flags pair i as an outlier."""
    margins: torch.Tensor
    """``(B,)`` d_i = r(z_w) − r(z_l), differentiable."""


@dataclasses.dataclass(frozen=True)
class R3MDPOOutput:
    """Result of :func:`r3m_dpo_loss` (the first three fields follow TRL / OpenRLHF's DPO loss)."""

    losses: torch.Tensor
    """``(B,)`` per-pair losses, differentiable."""
    chosen_rewards: torch.Tensor
    """``(B,)`` implicit rewards β(log π(y_w|x) − log π_ref(y_w|x)), detached."""
    rejected_rewards: torch.Tensor
    """``(B,)`` implicit rewards of the rejected responses, detached."""
    delta: torch.Tensor
    """``(B,)`` perturbations δ_i ≥ 0 on the β-scaled logit (detached)."""


def check_pair(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Both tensors floating point, 1-D, same non-zero length; ``ValueError`` names the argument."""
    for name, t in ((name_a, a), (name_b, b)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            got = f"dtype {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a floating-point tensor, got {got}")
        if t.ndim != 1:
            raise ValueError(f"{name} must be 1-D with shape (B,), got shape {tuple(t.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dtype != b.dtype:
        raise ValueError(f"{name_a} and {name_b} must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.shape[0] == 0:
        raise ValueError(f"{name_a} is empty: a batch needs at least one pair")


def check_beta(beta: object) -> None:
    """``beta`` a real number (not a bool or tensor), finite and > 0; ``ValueError`` naming it otherwise."""
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not math.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")


def check_finite_arg(check_finite: object) -> bool | None:
    """``check_finite`` validated: ``None``, ``True`` or ``False`` (a ``ValueError`` naming it otherwise)."""
    if check_finite is not None and not isinstance(check_finite, bool):
        raise ValueError(f"check_finite must be None, True or False, got {check_finite!r}")
    return check_finite


def _wants_check(x: torch.Tensor, check_finite: bool | None) -> bool:
    # None: check where it is free (CPU); on an accelerator a check makes the host wait for the device
    check_finite = check_finite_arg(check_finite)
    return x.device.type == "cpu" if check_finite is None else check_finite


class NonFiniteMarginsError(ValueError):
    """A margin is NaN or inf (raised where ``check_finite`` checks them); callers that know the context
    (a training step) catch this class to say more."""


def _eliminated(d: torch.Tensor, lam: float, check_finite: bool | None) -> tuple[torch.Tensor, torch.Tensor]:
    # min_δ≥0 −logσ(d+δ) + λδ at δ = max(t − d, 0), δ held fixed: m = d + δ = max(d, t) exactly (no
    # d + (t − d) rounding), and the gradient −σ(−m) is −σ(−d) where d ≥ t and σ(−t) = λ where d < t.
    if _wants_check(d, check_finite) and not bool(torch.isfinite(d.detach()).all()):
        raise NonFiniteMarginsError("margins must be finite; got NaN or inf (check the rewards / log-probabilities)")
    d_fixed = d.detach()
    m_fixed = d_fixed.clamp_min(r3m_threshold(lam))
    delta = m_fixed - d_fixed
    # d + δ with δ fixed (the alternating step), evaluated exactly as max(d, t): d − d_fixed is 0 with gradient 1
    m = (d - d_fixed) + m_fixed
    return torch.add(F.softplus(-m), delta, alpha=lam), delta


def r3m_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    *,
    lam: float = 0.5,
    reduction: str = "mean",
    sample_weight: torch.Tensor | None = None,
    check_finite: bool | None = None,
) -> R3MOutput:
    """R³M reward-model loss: eq. 3.5 at the closed-form δ of eq. 3.4 (per-sample λ, eqs. 3.3–3.4).

    Paper symbols: ``chosen_rewards`` = r(z_w), ``rejected_rewards`` = r(z_l), ``lam`` = λ.

    .. math::

        \\ell_i = -\\log\\sigma(d_i + \\delta_i) + \\lambda\\,\\delta_i, \\qquad
        \\delta_i = \\max(\\log(1/\\lambda - 1) - d_i, 0).

    Args:
        chosen_rewards: ``(B,)`` rewards of the preferred items.
        rejected_rewards: ``(B,)`` rewards of the other items.
        lam: per-sample λ ∈ (0, 1); 0.5 flags every misranked pair, larger λ flags fewer.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        sample_weight: optional ``(B,)`` non-negative weights (weighted mean / sum).
        check_finite: raise ``ValueError`` for NaN or inf margins (and negative weights). ``None``
            (default) checks CPU tensors and skips the check on an accelerator, where reading its
            verdict back would make the host wait for the device on every call; there a non-finite
            margin gives a NaN loss. ``True`` always checks, ``False`` never.

    Returns:
        :class:`R3MOutput` (loss, per-pair losses, δ, margins); computed in float32 at least.

    Raises:
        ValueError: shapes, empty batch, λ ∉ (0, 1), bad reduction or weights; non-finite margins
            when checked (see ``check_finite``).

    Example:
        >>> out = r3m_loss(torch.tensor([-1.0]), torch.tensor([0.0]), lam=0.5)
        >>> round(out.loss.item(), 5), out.delta.item()
        (1.19315, 1.0)

    Note:
        The gradient w.r.t. d is ``−min(1 − σ(d), λ)``; it equals the gradient with δ detached
        and, by the envelope theorem, the gradient through the exact δ(d). Second derivatives
        (``create_graph=True``) are those of the objective at δ held fixed, as in the alternating
        algorithm: ``σ(m)σ(−m)`` at ``m = max(d, t_λ)``, also below t_λ, where the eliminated loss
        itself is linear in d.
    """
    check_pair("chosen_rewards", chosen_rewards, "rejected_rewards", rejected_rewards)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    dtype = torch.promote_types(chosen_rewards.dtype, torch.float32)
    d = chosen_rewards.to(dtype) - rejected_rewards.to(dtype)
    per_pair, delta = _eliminated(d, lam, check_finite)
    if sample_weight is None:
        loss = per_pair.mean() if reduction == "mean" else per_pair.sum() if reduction == "sum" else per_pair
    else:
        if (
            not isinstance(sample_weight, torch.Tensor)
            or sample_weight.shape != d.shape
            or (
                _wants_check(sample_weight, check_finite)
                and bool(((sample_weight < 0) | ~torch.isfinite(sample_weight)).any())
            )
        ):
            shown = (
                tuple(sample_weight.shape) if isinstance(sample_weight, torch.Tensor) else type(sample_weight).__name__
            )
            raise ValueError(
                f"sample_weight must be a finite, non-negative tensor of shape {tuple(d.shape)}, got {shown}"
            )
        weighted = per_pair * sample_weight.to(dtype)
        if reduction == "mean":
            loss = weighted.sum() / sample_weight.to(dtype).sum().clamp_min(torch.finfo(dtype).tiny)
        else:
            loss = weighted.sum() if reduction == "sum" else weighted
    return R3MOutput(loss, per_pair, delta, d)


def dpo_logratios(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    reference_free: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated ``(log π − log π_ref)`` of the chosen and the rejected responses, float32 at least."""
    check_pair("policy_chosen_logps", policy_chosen_logps, "policy_rejected_logps", policy_rejected_logps)
    dtype = torch.promote_types(policy_chosen_logps.dtype, torch.float32)
    chosen, rejected = policy_chosen_logps.to(dtype), policy_rejected_logps.to(dtype)
    if reference_free:
        return chosen, rejected
    check_pair("ref_chosen_logps", ref_chosen_logps, "ref_rejected_logps", ref_rejected_logps)
    if ref_chosen_logps.shape != policy_chosen_logps.shape:
        raise ValueError(
            f"ref_chosen_logps must have the shape of policy_chosen_logps {tuple(policy_chosen_logps.shape)}, "
            f"got {tuple(ref_chosen_logps.shape)}"
        )
    return chosen - ref_chosen_logps.to(dtype), rejected - ref_rejected_logps.to(dtype)


def r3m_dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
    lam: float = 0.5,
    reference_free: bool = False,
    check_finite: bool | None = None,
) -> R3MDPOOutput:
    """R³M-DPO (§3.4): the perturbation enters the β-scaled DPO logit.

    .. math::

        \\ell_i = -\\log\\sigma(z_i + \\delta_i) + \\lambda\\delta_i, \\quad
        z_i = \\beta[(\\log\\pi - \\log\\pi_{ref})(y_w) - (\\log\\pi - \\log\\pi_{ref})(y_l)], \\quad
        \\delta_i = \\max(\\log(1/\\lambda - 1) - z_i, 0).

    Args:
        policy_chosen_logps, policy_rejected_logps: ``(B,)`` sequence log-probabilities under π.
        ref_chosen_logps, ref_rejected_logps: ``(B,)`` under π_ref (ignored if ``reference_free``).
        beta: DPO's β > 0.
        lam: per-sample λ ∈ (0, 1). δ lives in logit units, so the threshold t_λ applies to β·h:
            retune λ when β changes.
        reference_free: uniform reference policy (TRL's ``reference_free``).
        check_finite: raise ``ValueError`` for NaN or inf logits z. ``None`` (default) checks CPU
            tensors and skips the check on an accelerator, where reading its verdict back would make
            the host wait for the device on every call; there a non-finite z gives a NaN loss.
            ``True`` always checks, ``False`` never.

    Returns:
        :class:`R3MDPOOutput`: per-pair losses, implicit rewards β·logratio (detached), δ.

    Example:
        >>> z = torch.zeros(1)
        >>> out = r3m_dpo_loss(torch.tensor([-3.0]), torch.tensor([-1.0]), z, z, beta=1.0, lam=0.5)
        >>> round(out.losses.item(), 5), out.delta.item()
        (1.69315, 2.0)
    """
    check_beta(beta)
    chosen, rejected = dpo_logratios(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, reference_free
    )
    z = beta * (chosen - rejected)
    losses, delta = _eliminated(z, lam, check_finite)
    return R3MDPOOutput(losses, (beta * chosen).detach(), (beta * rejected).detach(), delta)
