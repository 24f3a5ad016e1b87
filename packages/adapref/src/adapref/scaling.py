"""Per-pair scaling parameters τ of adaptive preference scaling (pure functions, tensors in and out).

For one preference pair with reward margin ``d = r(z_w) − r(z_l)`` the paper (Hong et al., 2024,
eq. 5-6) minimises over the scaling factor τ ∈ [τ0, τ_max]

.. math::

    \\ell(\\tau) = -\\tau \\log\\sigma(d/\\tau) + \\rho\\,\\tau, \\qquad \\rho = \\rho_0 - \\log 2,

where ρ0 (argument ``rho0``) is the radius of the KL ball of the distributionally robust problem
(eq. 3) and τ0, τ_max are ``tau0``, ``tau_max``. With ``u = d/τ`` its derivatives are

.. math::

    \\partial_\\tau \\ell = f(u) + \\rho_0, \\quad f(u) = -\\log(2\\sigma(u)) + (1-\\sigma(u))\\,u, \\qquad
    \\partial^2_\\tau \\ell = \\frac{d^2}{\\tau^3}\\sigma(u)(1-\\sigma(u)).

``f`` is even, ``f(0) = 0`` and ``f`` decreases strictly in ``|u|`` towards ``−log 2``. Hence, for
``0 < ρ0 < log 2``, the minimiser has the closed form (derived here, not stated in the paper)

.. math::

    \\tau^* = \\operatorname{clip}(|d| / u^*(\\rho_0), \\tau_0, \\tau_{\\max}), \\qquad f(u^*) = -\\rho_0,

with ``u*`` a constant per ρ0 (``optimal_u``). For ``ρ0 ≥ log 2`` the derivative is positive
everywhere and τ* ≡ τ0: the loss degenerates to Bradley-Terry at temperature τ0.

The quadratic variant (§3.6, eq. 12) replaces ``ρτ`` by ``ρ0 τ² − (log 2) τ``; its derivative is
``f(u) + 2ρ0τ`` and its second derivative gains ``+2ρ0`` (strictly convex, Prop. 3.2). It has no
closed form and no upper bound in the paper.

Solvers (argument ``solver``):

- ``"exact"`` (default): the closed form for the linear penalty; for the quadratic penalty a
  bracketed Newton iteration run to convergence.
- ``"newton"``: the paper's Algorithm 1 (``n_iter`` projected Newton steps from ``tau_init``),
  safeguarded: a bracket of the minimiser is kept from the sign of ∂τℓ and a Newton step that
  would leave it is replaced by bisection. It cannot cycle.
- ``"newton-official"``: the authors' unsafeguarded iteration, formulas and clamps as in their code
  (``log(2σ(u) + eps)``, Hessian clamped below at ``eps``; eps = 1e-8 in the control code, 1e-6 in
  the DPO trainer). It can cycle between τ0 and τ_max forever (e.g. ρ0 = 0.5, τ_max = 3,
  d ≈ 1.5); and in float32 a margin |d| ≳ 1e19 overflows d² in the Hessian (inf · 0 = NaN), as the
  authors' float32 code would. It is here for parity studies only.

References:
    Hong, Li, Bukharin, Li, Jiang, Yang, Zhao, "Adaptive Preference Scaling for Reinforcement
    Learning with Human Feedback", NeurIPS 2024, arXiv:2406.02764. Official code:
    IlgeeHong/Adaptive-Preference-Scaling (``robotic_control/ppo_rm.py``, ``llm_dpo/dpo_trainer.py``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

import torch
import torch.nn.functional as F

Solver = Literal["exact", "newton", "newton-official"]
SOLVERS: tuple[str, ...] = ("exact", "newton", "newton-official")
LOG2 = math.log(2.0)
_F32 = torch.finfo(torch.float32)

_EXACT_QUADRATIC_ITERS = 60


class NonFiniteMarginsError(ValueError):
    """A margin is NaN or inf (raised where ``check_finite`` checks them); callers that know the context
    (a training step) catch this class to say more."""


def dual_f(u: torch.Tensor) -> torch.Tensor:
    """``f(u) = −log(2σ(u)) + (1 − σ(u))·u``, the τ-derivative of the loss minus ρ0.

    Computed stably as ``−log 2 − logσ(u) + u·σ(−u)``.

    Args:
        u: any shape, floating point.

    Returns:
        ``f(u)``, same shape: even in ``u``, 0 at 0, tending to ``−log 2`` as ``|u| → ∞``.

    Example:
        >>> round(float(dual_f(torch.tensor(0.0))), 6)
        0.0
    """
    return -LOG2 - F.logsigmoid(u) + u * torch.sigmoid(-u)


def _f_scalar(u: float) -> float:
    """Float64 scalar twin of :func:`dual_f` for u ≥ 0, to about 1e-15 relative for every u ≥ 0.

    Below u = 0.25, where any closed form cancels (two terms ≈ ∓u/2 sum to ≈ −u²/8), its Taylor series
    −u²/8 + u⁴/64 − u⁶/576 + 17u⁸/92160 − 31u¹⁰/1612800 + 691u¹²/348364800 − 5461u¹⁴/26824089600
    + 929569u¹⁶/44635285094400 (the next term is below 1e-17 relative there); above,
    ``log1p(expm1(−u)/2) + u/(1 + e^u)``, as −log(2σ(u)) = log1p((e^{−u} − 1)/2).
    """
    if u < 0.25:
        v = u * u
        c = (-1 / 8, 1 / 64, -1 / 576, 17 / 92160, -31 / 1612800, 691 / 348364800, -5461 / 26824089600,
             929569 / 44635285094400)  # fmt: skip
        acc = 0.0
        for coef in reversed(c):
            acc = acc * v + coef
        return acc * v
    return math.log1p(math.expm1(-u) / 2) + u / (1.0 + math.exp(u)) if u < 700 else -LOG2


@lru_cache(maxsize=256)
def optimal_u(rho0: float) -> float:
    """The constant ``u*(ρ0) > 0`` with ``f(u*) = −ρ0``; ``τ* = clip(|d|/u*, τ0, τ_max)``.

    Solved once per ρ0 in float64 by bracketing and bisection (f to about 1e-15 relative, see
    ``_f_scalar``), then cached: u* to about 1e-16 relative for small ρ0 and 1e-14 as ρ0 → log 2,
    where f flattens; below ρ0 = 1e-30, √(8ρ0), exact there in float64.

    Args:
        rho0: KL radius ρ0 > 0.

    Returns:
        ``u*``; ``math.inf`` when ``ρ0 ≥ log 2`` (then τ* ≡ τ0 for every pair).

    Raises:
        ValueError: if ``rho0 ≤ 0`` or is not finite.

    Example:
        >>> round(optimal_u(0.1), 6)
        0.943443
    """
    if not math.isfinite(rho0) or rho0 <= 0:
        raise ValueError(f"rho0 must be a finite number > 0, got {rho0!r}")
    if rho0 >= LOG2:
        return math.inf
    if rho0 < 1e-30:  # u*² = 8ρ0(1 + ρ0 + …): exact in float64 here, and u² would be subnormal below
        return math.sqrt(8.0) * math.sqrt(rho0)
    # f(u) ≈ −u²/8 near 0, so u* ≈ √(8ρ0): start the bracket there (a small ρ0 is then as exact as a large one)
    lo, hi = 0.0, min(1.0, 2.0 * math.sqrt(8.0 * rho0))
    while _f_scalar(hi) > -rho0:  # f decreases from 0 to −log 2 on u > 0
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if _f_scalar(mid) > -rho0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def check_finite_arg(check_finite: object) -> bool | None:
    """``check_finite`` validated: ``None``, ``True`` or ``False`` (a ``ValueError`` naming it otherwise)."""
    if check_finite is not None and not isinstance(check_finite, bool):
        raise ValueError(f"check_finite must be None, True or False, got {check_finite!r}")
    return check_finite


def check_scaling_args(
    rho0: float,
    tau0: float,
    tau_max: float,
    solver: str,
    n_iter: int,
    tau_init: float,
    quadratic: bool = False,
    *,
    stacklevel: int = 3,
) -> None:
    """Validate the hyperparameters of τ solving; ``ValueError`` names the argument.

    Warns (``UserWarning``) when ``rho0 ≥ log 2`` with the linear penalty, where τ ≡ τ0 and the
    method is Bradley-Terry at temperature τ0 (the quadratic penalty has no such degeneracy).
    """
    for name, value in (("rho0", rho0), ("tau0", tau0), ("tau_max", tau_max), ("tau_init", tau_init)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(rho0) or rho0 <= 0:
        raise ValueError(f"rho0 must be a finite number > 0 (the KL radius ρ0; ρ = ρ0 − log 2), got {rho0!r}")
    if not math.isfinite(tau0) or tau0 < _F32.tiny:  # τ is float32 at least: a smaller τ0 would round to 0 (0/0)
        raise ValueError(f"tau0 must be a number >= {_F32.tiny:.4g} (float32's smallest normal), got {tau0!r}")
    if not math.isfinite(tau_max) or tau_max < tau0 or tau_max > _F32.max:
        raise ValueError(
            f"tau_max must be a number >= tau0 = {tau0!r} and <= {_F32.max:.4g} (float32's largest), got {tau_max!r}"
        )
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if solver != "exact" and (isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1):
        raise ValueError(f"n_iter must be an integer >= 1 with solver={solver!r}, got {n_iter!r}")
    if not math.isfinite(tau_init) or tau_init <= 0:
        raise ValueError(f"tau_init must be a finite number > 0, got {tau_init!r}")
    if rho0 >= LOG2 and not quadratic:
        warnings.warn(
            f"rho0 = {rho0} >= log 2: every tau equals tau0 = {tau0}, so the adaptive loss is "
            "Bradley-Terry at temperature tau0",
            UserWarning,
            stacklevel=stacklevel,
        )


def warn_if_tau_max_ignored(
    tau_max: float, rho0: float, quadratic: bool, clamp_tau_max: bool, *, stacklevel: int = 3
) -> None:
    """Warn (``UserWarning``) that the quadratic penalty ignores ``tau_max`` (spec §4).

    Raised where a loss is configured once (the loss modules and ``AdaDPOConfig``, so ``adapref dpo``
    too), not per call: with the quadratic penalty and ``clamp_tau_max`` off, τ has no upper bound, as in the paper
    (§3.6), and a ``tau_max`` below the penalty's own bound log 2 / (2ρ0) would have bound. ``stacklevel``
    points the warning at the caller's caller (4 from a dataclass's ``__post_init__``).
    """
    if quadratic and not clamp_tau_max and tau_max < LOG2 / (2.0 * rho0):
        warnings.warn(
            f"tau_max = {tau_max} is ignored by the quadratic penalty, which has no upper bound (paper §3.6): "
            f"tau can reach log 2 / (2ρ0) = {LOG2 / (2.0 * rho0):.4g}. Pass clamp_tau_max=True to clamp at "
            "tau_max as the authors' DPO trainer does",
            UserWarning,
            stacklevel=stacklevel,
        )


def tau_gradient(margins: torch.Tensor, tau: torch.Tensor, rho0: float, quadratic: bool = False) -> torch.Tensor:
    """``∂τ ℓ``: ``f(d/τ) + ρ0`` (linear penalty) or ``f(d/τ) + 2ρ0τ`` (quadratic penalty)."""
    base = dual_f(margins / tau)
    return base + (2.0 * rho0 * tau if quadratic else rho0)


def tau_hessian(margins: torch.Tensor, tau: torch.Tensor, rho0: float, quadratic: bool = False) -> torch.Tensor:
    """``∂²τ ℓ = d²/τ³ · σ(d/τ)(1 − σ(d/τ))`` (``+ 2ρ0`` for the quadratic penalty)."""
    u = margins / tau
    h = margins.square() / tau.pow(3) * torch.sigmoid(u) * torch.sigmoid(-u)  # σ(−u) = 1 − σ(u), no cancellation
    return h + 2.0 * rho0 if quadratic else h


def _safeguarded_newton(
    margins: torch.Tensor,
    tau: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    n_iter: int,
    grad: Callable[[torch.Tensor], torch.Tensor],
    hess: Callable[[torch.Tensor], torch.Tensor],
    hessian_floor: float,
) -> torch.Tensor:
    """Projected Newton on a convex 1-D function per element, kept inside a shrinking bracket.

    ``lo``/``hi`` start at the feasible bounds. After each evaluation the sign of the derivative
    moves one end of the bracket to the current point (the minimiser lies on the other side) and
    marks that end as excluded. A projected Newton step onto a bound not yet excluded is always
    accepted: evaluating there either ends the solve (the derivative points out of the box, the
    bracket closes on the bound) or excludes that bound, so this happens at most twice. A step
    strictly inside the bracket is accepted when Newton is making progress: the step is at most half
    as long as the step before last (Numerical Recipes' ``rtsafe``), or the last step at least halved
    |derivative|. Otherwise the midpoint is taken, so the iteration cannot cycle (the official one
    does, between the bounds) and converges for any start. (Without the bound rule, a pair whose
    minimiser is τ0, e.g. d = 0, met the half-step test with equality after a bisection, lost it to
    rounding and only halved its way down: 0.2125 after 3 steps from τ = 1 instead of τ0 = 0.1.
    Without the derivative rule, the step rule alone threw good Newton steps away: 66 % off at K = 5
    in the authors' quadratic DPO setting, where the official iteration is within 0.1 %.)
    An element stays put once its derivative is exactly zero or its Newton step |g/h| is below a
    few ulps of τ (converged). That test comes before the bracket's: a converged step lands on the
    bracket end just moved to τ, and was once taken for a step out of the bracket and bisected away.
    """
    lo_excl = torch.zeros_like(tau, dtype=torch.bool)
    hi_excl = torch.zeros_like(tau, dtype=torch.bool)
    step_old = hi - lo  # length of the step before last (rtsafe's dxold)
    step = step_old.clone()
    g_old = torch.full_like(tau, math.inf)  # |derivative| at the previous iterate
    done = torch.zeros_like(tau, dtype=torch.bool)
    tol = 8.0 * torch.finfo(tau.dtype).eps
    for _ in range(n_iter):
        g = grad(tau)
        newton = g / hess(tau).clamp_min(hessian_floor)
        done = done | (g == 0) | (newton.abs() <= tol * tau)
        pos, neg = g > 0, g < 0
        hi = torch.where(pos, tau, hi)
        hi_excl = hi_excl | pos
        lo = torch.where(neg, tau, lo)
        lo_excl = lo_excl | neg
        cand = torch.minimum(torch.maximum(tau - newton, lo), hi)
        on_bound = ((cand == lo) & ~lo_excl) | ((cand == hi) & ~hi_excl)
        inside = ((cand > lo) & (cand < hi)) | on_bound
        progress = (2.0 * (cand - tau).abs() <= step_old) | (2.0 * g.abs() <= g_old)
        new = torch.where(inside & (on_bound | progress), cand, 0.5 * (lo + hi))
        step_old, step = step, (new - tau).abs()
        g_old = g.abs()
        tau = torch.where(done, tau, new)
    return tau


def _official_newton(
    margins: torch.Tensor,
    tau: torch.Tensor,
    rho0: float,
    tau0: float,
    upper: float,
    n_iter: int,
    quadratic: bool,
    eps: float,
    clamp_hessian: bool,
) -> torch.Tensor:
    # The authors' update, written out as in their code (signed d, log(2σ+eps), Hessian clamp).
    for _ in range(n_iter):
        u = margins / tau
        s = torch.sigmoid(u)
        g = -torch.log(2.0 * s + eps) + (1.0 - s) * u + (2.0 * rho0 * tau if quadratic else rho0)
        h = margins.square() / tau.pow(3) * (1.0 - s) * s + (2.0 * rho0 if quadratic else 0.0)
        if clamp_hessian:
            h = h.clamp_min(eps)
        tau = (tau - g / h).clamp(min=tau0, max=upper)
    return tau


def solve_tau(
    margins: torch.Tensor,
    *,
    rho0: float = 0.1,
    tau0: float = 0.1,
    tau_max: float = 1.0,
    solver: Solver = "exact",
    n_iter: int = 3,
    tau_init: float = 1.0,
    quadratic: bool = False,
    clamp_tau_max: bool = False,
    official_eps: float = 1e-8,
    check_finite: bool | None = None,
) -> torch.Tensor:
    """Optimal scaling factor τ_i of every pair, detached (the paper's inner minimisation).

    Paper symbols: ``margins`` = d_i = r(z_w,i) − r(z_l,i); ``rho0`` = ρ0 (ρ = ρ0 − log 2 in eq. 6);
    ``tau0`` = τ0; ``tau_max`` = τ_max; ``n_iter`` = K of Algorithm 1; ``tau_init`` = τ^(0).

    .. math::

        \\tau_i = \\arg\\min_{\\tau_0 \\le \\tau \\le \\tau_{\\max}} -\\tau\\log\\sigma(d_i/\\tau) + \\rho\\,\\tau
        \\quad\\text{(eq. 6)}, \\qquad \\text{exact: } \\tau_i = \\operatorname{clip}(|d_i|/u^*(\\rho_0), \\tau_0, \\tau_{\\max}).

    Args:
        margins: reward margins, any shape; only their values are used (τ is never differentiated,
            as the paper prescribes: the gradient flows through ``d/τ`` with τ fixed).
        rho0: KL radius ρ0 > 0; ρ0 ≥ log 2 gives τ ≡ τ0 (with a warning).
        tau0: lower bound τ0 > 0.
        tau_max: upper bound τ_max ≥ τ0 (linear penalty; the quadratic penalty ignores it unless
            ``clamp_tau_max``).
        solver: ``"exact"``, ``"newton"`` (safeguarded Algorithm 1) or ``"newton-official"``.
        n_iter: Newton iterations K ≥ 1 (Newton solvers only).
        tau_init: starting point τ^(0) of the Newton solvers (the paper and code use 1).
        quadratic: the quadratic penalty ``ρ0τ² − (log 2)τ`` of §3.6 instead of ``ρτ``.
        clamp_tau_max: with ``quadratic``, also clamp at ``tau_max`` as the authors' DPO trainer
            does (the paper and control code have no upper bound there).
        official_eps: the ``eps`` of ``"newton-official"`` (1e-8 control code, 1e-6 DPO trainer).
        check_finite: raise ``ValueError`` for NaN or inf margins. ``None`` (default) checks CPU
            tensors and skips the check on an accelerator, where reading its verdict back would make
            the host wait for the device on every call; there a non-finite margin gives a NaN τ and
            loss. ``True`` always checks, ``False`` never.

    Returns:
        τ, same shape as ``margins``, dtype float32 (float64 for float64 input), no gradient.

    Raises:
        ValueError: for an invalid hyperparameter (named), or non-finite margins when checked (see
            ``check_finite``).

    Example:
        >>> tau = solve_tau(torch.tensor([0.0, 2.0, -50.0]), rho0=0.1, tau0=0.1, tau_max=4.0)
        >>> [round(t, 6) for t in tau.tolist()]
        [0.1, 2.119895, 4.0]

    Note:
        ``solver="newton"`` departs from the paper's Algorithm 1 by its bracket safeguard, so it
        cannot cycle between the bounds as the authors' iteration does for ρ0 = 0.5, τ_max = 3 and
        d ≈ ±1.5 (their HalfCheetah setting); ``"newton-official"`` keeps that behaviour.
    """
    check_scaling_args(rho0, tau0, tau_max, solver, n_iter, tau_init, quadratic)
    if not isinstance(margins, torch.Tensor) or not margins.is_floating_point():
        raise ValueError(f"margins must be a floating-point tensor, got {type(margins).__name__}")
    dtype = torch.promote_types(margins.dtype, torch.float32)
    d = margins.detach().to(dtype)
    check_finite = check_finite_arg(check_finite)
    wants_check = d.device.type == "cpu" if check_finite is None else check_finite
    if wants_check and not bool(torch.isfinite(d).all()):
        raise NonFiniteMarginsError("margins must be finite; got NaN or inf (check the rewards / log-probabilities)")

    # Quadratic penalty: beyond log 2 / (2ρ0) the derivative f + 2ρ0τ > −log 2 + 2ρ0τ > 0, so the
    # minimiser lies below that point and it bounds the search.
    upper = tau_max if not quadratic or clamp_tau_max else max(tau0, LOG2 / (2.0 * rho0))

    if solver == "newton-official":
        start = torch.full_like(d, tau_init)
        return _official_newton(
            d, start, rho0, tau0, upper if (clamp_tau_max or not quadratic) else 1e8,
            n_iter, quadratic, official_eps, clamp_hessian=not quadratic or clamp_tau_max,
        )  # fmt: skip

    if solver == "exact" and not quadratic:
        u_star = optimal_u(rho0)
        if math.isinf(u_star):
            return torch.full_like(d, tau0)
        return (d.abs() / u_star).clamp(min=tau0, max=tau_max)

    a = d.abs()  # f is even: solve on |d| for symmetric numerics
    lo = torch.full_like(a, tau0)
    hi = torch.full_like(a, upper)
    if solver == "exact":  # quadratic: converge from the middle of the bracket
        start, iters = 0.5 * (lo + hi), _EXACT_QUADRATIC_ITERS
    else:
        start, iters = torch.full_like(a, tau_init).clamp(min=tau0, max=upper), n_iter
    return _safeguarded_newton(
        a,
        start,
        lo,
        hi,
        iters,
        grad=lambda t: tau_gradient(a, t, rho0, quadratic),
        hess=lambda t: tau_hessian(a, t, rho0, quadratic),
        hessian_floor=torch.finfo(dtype).tiny,
    )
