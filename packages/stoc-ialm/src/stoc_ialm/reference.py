"""The full-batch reference optimum of a :class:`~stoc_ialm.problem.Problem` by scipy's SLSQP, with its multipliers.

SLSQP needs smooth functions, so the regularizer is written coordinatewise as
``h(x) = Σ_j λ1_j |x_j| + λ2_j x_j² + 1{l_j ≤ x_j ≤ u_j}`` (:class:`~stoc_ialm.prox.Zero`, ``L1``, ``L2Sq``,
``ElasticNet``, ``Box``, ``NonNeg`` and a ``Sum`` of them over blocks) and every coordinate ``j ∈ S`` with
``λ1_j > 0`` is split as ``x_j = u_j − v_j``, ``u_j, v_j ≥ 0``:

.. math::
    \\min_{u, v}\\; f(x) + \\sum_{j \\in S} \\lambda_{1j} (u_j + v_j) + \\sum_j \\lambda_{2j} x_j^2
    \\quad \\text{s.t.} \\quad c_i(x) = 0 \\;(\\text{eq}), \\qquad -c_i(x) \\ge 0
    \\;(\\text{ineq, SLSQP's sign convention}), \\qquad l \\le x \\le u \\;(\\text{bounds}).

Every value and gradient is a free full-data evaluation (:meth:`Problem.full_f`, :meth:`Problem.full_c`):
no oracle is counted.

**Multipliers.** scipy ≥ 1.16 reports SLSQP's multipliers (kept in ``info["slsqp_multipliers"]``); older
versions do not, so the returned multipliers are recovered from the stationarity condition at ``x*``,
on any scipy:

.. math::
    \\nabla f(x^*) + \\sum_{i \\in A} y_i \\nabla c_i(x^*) + \\partial h(x^*) \\ni 0, \\qquad
    A = \\{\\text{eq}\\} \\cup \\{i \\text{ ineq}: c_i(x^*) \\ge -\\text{active\\_tol}\\},

first by bounded linear least squares (``scipy.optimize.lsq_linear``: a nonnegative least squares for
the inequalities, free equality multipliers) on the coordinates where ``h`` is differentiable
(``x_j ≠ 0`` where ``λ1_j > 0``, strictly inside the bounds), then polished by minimising the exact
``dist(0, ∇f + J_A^T y_A + ∂h(x*))²`` (``Regularizer.stationarity``) over the same bounds with L-BFGS-B,
started at the least-squares solution. Inactive inequalities get ``y_i = 0``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from stoc_ialm.problem import Problem
from stoc_ialm.prox import L1, Box, ElasticNet, L2Sq, Regularizer, Sum, Zero

logger = logging.getLogger(__name__)


class SLSQPResult(NamedTuple):
    """``(x, F, multipliers, info)``; unpacks like a tuple."""

    x: Tensor
    """``(dim,)`` float64 solution ``x*``."""
    F: float
    """``F(x*) = f(x*) + h(x*)`` on the full data."""
    multipliers: Tensor
    """``(m,)`` recovered multipliers (``>= 0`` for inequalities, 0 for inactive ones)."""
    info: dict[str, Any]
    """SLSQP's status, iterations, time and the KKT residuals at ``(x*, multipliers)``."""


class Separable(NamedTuple):
    """``h(x) = Σ_j l1_j |x_j| + l2_j x_j² + 1{lower_j ≤ x_j ≤ upper_j}``, each field ``(dim,)`` float64."""

    l1: np.ndarray
    l2: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def separable(reg: Regularizer, dim: int) -> Separable:
    """The coordinatewise form of ``reg`` (see :class:`Separable`).

    Raises:
        ValueError: a regularizer that is not coordinate-separable (``GroupL1``, ``L2Ball``, user classes).
    """
    out = Separable(np.zeros(dim), np.zeros(dim), np.full(dim, -np.inf), np.full(dim, np.inf))
    _fill(reg, np.arange(dim), out)
    return out


def _fill(reg: Regularizer, idx: np.ndarray, out: Separable) -> None:
    if isinstance(reg, Zero):
        return
    if isinstance(reg, L1):
        out.l1[idx] = reg.lam
    elif isinstance(reg, L2Sq):
        out.l2[idx] = reg.lam
    elif isinstance(reg, ElasticNet):
        out.l1[idx], out.l2[idx] = reg.l1, reg.l2
    elif isinstance(reg, Box):
        for bound, target in ((reg.lower, out.lower), (reg.upper, out.upper)):
            if isinstance(bound, Tensor):
                if bound.numel() != idx.size:
                    raise ValueError(
                        f"a Box bound has length {bound.numel()}, but it applies to {idx.size} coordinates"
                    )
                target[idx] = bound.detach().cpu().double().numpy()
            else:
                target[idx] = bound
    elif isinstance(reg, Sum):
        for block, sub in reg.blocks:
            b = block.numpy()
            if b.size and b.max() >= idx.size:
                raise ValueError(f"a Sum block indexes coordinate {int(b.max())}, but the vector has length {idx.size}")
            _fill(sub, idx[b], out)
    else:
        raise ValueError(
            f"problem.regularizer must be coordinate-separable for SLSQP (Zero, L1, L2Sq, ElasticNet, Box, NonNeg "
            f"or a Sum of them), got {type(reg).__name__}"
        )


def slsqp_reference(
    problem: Problem,
    x0: Tensor | None = None,
    *,
    l1_split: bool = True,
    maxiter: int = 2000,
    ftol: float = 1e-12,
    active_tol: float = 1e-6,
    zero_tol: float = 1e-9,
) -> SLSQPResult:
    """Solve ``problem`` on the full batch with SLSQP and recover its KKT multipliers.

    Args:
        problem: a problem with a coordinate-separable regularizer (see :func:`separable`).
        x0: start ``(dim,)`` (default: ``problem.initial_point()`` when it has one, else 0).
        l1_split: split the L1 coordinates (True, exact); False hands SLSQP the nonsmooth ``λ|x_j|`` with
            the subgradient ``λ sign(x_j)`` (for comparison only: inaccurate).
        maxiter: SLSQP iterations (>= 1).
        ftol: SLSQP's tolerance on the objective (> 0).
        active_tol: an inequality with ``c_i(x*) >= -active_tol`` is active (> 0).
        zero_tol: ``|x_j| <= zero_tol`` is set to 0 in ``x*`` on the L1 coordinates, and ``x_j`` within
            ``zero_tol`` of a bound is set to it (> 0; SLSQP leaves round-off of about 1e-17 where
            ``u_j = v_j = 0`` or at a bound), so that ``x_j`` sits exactly on the kink or the boundary.

    Returns:
        :class:`SLSQPResult` ``(x*, F*, multipliers, info)``. ``info`` holds ``success``, ``message``,
        ``nit``, ``nfev``, ``time_s``, ``active``, ``violation``, ``stationarity``, ``complementarity``
        (:func:`stoc_ialm.kkt.kkt_residual` at ``(x*, multipliers)``), ``l1_split``, and
        ``slsqp_multipliers`` when scipy reports them.

    Raises:
        ValueError: a bad argument, a regularizer that is not separable, or an L1 coordinate whose bounds
            straddle 0 strictly (``l_j < 0 < u_j`` with finite ``l_j`` or ``u_j``).

    Example:
        >>> from stoc_ialm.toy import QuadraticProblem
        >>> prob = QuadraticProblem(center=[2.0], a=[[1.0]], b=[1.0], kinds=["ineq"])  # min (x-2)^2 s.t. x <= 1
        >>> x, F, y, info = slsqp_reference(prob)
        >>> round(float(x[0]), 6), round(F, 6), round(float(y[0]), 6)
        (1.0, 1.0, 2.0)
    """
    from scipy.optimize import minimize

    from stoc_ialm.kkt import kkt_residual

    if isinstance(maxiter, bool) or not isinstance(maxiter, int) or maxiter < 1:
        raise ValueError(f"maxiter must be an integer >= 1, got {maxiter!r}")
    for name, value in (("ftol", ftol), ("active_tol", active_tol), ("zero_tol", zero_tol)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    d = problem.dim
    h = separable(problem.regularizer, d)
    if x0 is None:
        init = getattr(problem, "initial_point", None)
        x0 = init() if callable(init) else torch.zeros(d, dtype=torch.float64)
    assert x0 is not None
    if x0.shape != (d,):
        raise ValueError(f"x0 must have shape ({d},), got {tuple(x0.shape)}")
    start = np.clip(x0.detach().to(torch.float64).numpy(), h.lower, h.upper)

    S = np.flatnonzero(h.l1 > 0) if l1_split else np.zeros(0, dtype=np.int64)
    lam = h.l1[S]
    # variables z = [w (d), v (|S|)], x = w - P_S v: w_j = u_j on S, free (within bounds) elsewhere
    lo_w, hi_w = h.lower.copy(), h.upper.copy()
    lo_v, hi_v = np.zeros(S.size), np.full(S.size, np.inf)
    for k, j in enumerate(S):
        if h.lower[j] >= 0:  # x_j = u_j in [l_j, u_j], v_j = 0
            lo_w[j], hi_v[k] = h.lower[j], 0.0
        elif h.upper[j] <= 0:  # x_j = -v_j, u_j = 0
            lo_w[j], hi_w[j], lo_v[k], hi_v[k] = 0.0, 0.0, -h.upper[j], -h.lower[j]
        elif np.isfinite(h.lower[j]) or np.isfinite(h.upper[j]):
            raise ValueError(f"coordinate {j} has an L1 term and bounds [{h.lower[j]}, {h.upper[j]}] around 0: "
                             "SLSQP's split cannot take it")  # fmt: skip
        else:
            lo_w[j] = 0.0
    z0 = np.concatenate([start, np.zeros(S.size)])
    z0[S] = np.clip(np.maximum(start[S], 0.0), lo_w[S], hi_w[S])
    z0[d:] = np.clip(np.maximum(-start[S], 0.0), lo_v, hi_v)
    box = [(None if not np.isfinite(lo) else float(lo), None if not np.isfinite(hi) else float(hi))
           for lo, hi in zip(np.concatenate([lo_w, lo_v]), np.concatenate([hi_w, hi_v]), strict=True)]  # fmt: skip
    bounds = box if any(b != (None, None) for b in box) else None
    rest = h.l1 * (h.l1 > 0) if not l1_split else np.zeros(d)  # nonsmooth L1 left in (l1_split=False)

    def to_x(z: np.ndarray) -> np.ndarray:
        x: np.ndarray = z[:d].copy()
        x[S] -= z[d:]
        return x

    def lift(g: np.ndarray) -> np.ndarray:  # gradient in x (..., d) -> in z (..., d + |S|)
        return np.concatenate([g, -g[..., S]], axis=-1)

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        x = to_x(z)
        value, grad = problem.full_f(torch.from_numpy(x), grad=True)
        assert grad is not None
        g = grad.numpy() + 2.0 * h.l2 * x + rest * np.sign(x)
        F = float(value) + float(h.l2 @ x**2) + float(rest @ np.abs(x)) + float(lam @ (z[S] + z[d:]))
        gz = lift(g)
        gz[S] += lam
        gz[d:] += lam
        return F, gz

    cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def constraints_at(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = z.tobytes()
        if key not in cache:
            cache.clear()
            c, jac = problem.full_c(torch.from_numpy(to_x(z)), grad=True)
            assert jac is not None
            cache[key] = (c.numpy(), lift(jac.numpy()))
        return cache[key]

    def one(i: int, sign: float) -> dict[str, Any]:
        return {
            "type": "eq" if sign == 1.0 else "ineq",
            "fun": lambda z: sign * constraints_at(z)[0][i],
            "jac": lambda z: sign * constraints_at(z)[1][i],
        }

    cons = [one(i, 1.0 if kind == "eq" else -1.0) for i, kind in enumerate(problem.kinds)]
    t0 = time.perf_counter()
    res = minimize(
        fun, z0, jac=True, method="SLSQP", bounds=bounds, constraints=cons, options={"maxiter": maxiter, "ftol": ftol}
    )
    elapsed = time.perf_counter() - t0
    if not res.success:
        logger.warning("SLSQP did not converge: %s (status %s, %s iterations)", res.message, res.status, res.nit)
    xs = np.clip(to_x(np.asarray(res.x, dtype=np.float64)), h.lower, h.upper)
    xs[(h.l1 > 0) & (np.abs(xs) <= zero_tol)] = 0.0
    for bound in (h.lower, h.upper):
        near = np.abs(xs - bound) <= zero_tol
        xs[near] = bound[near]
    x = torch.from_numpy(xs)

    y = recover_multipliers(problem, x, active_tol=active_tol, zero_tol=zero_tol)
    kkt = kkt_residual(problem, x, y)
    c = problem.full_c(x)[0]
    info: dict[str, Any] = {
        "success": bool(res.success),
        "status": int(res.status),
        "message": str(res.message),
        "nit": int(res.nit),
        "nfev": int(res.nfev),
        "time_s": elapsed,
        "active": [kind == "eq" or float(c[i]) >= -active_tol for i, kind in enumerate(problem.kinds)],
        "violation": kkt.violation,
        "stationarity": kkt.stationarity,
        "complementarity": kkt.complementarity,
        "l1_split": bool(S.size),
    }
    if getattr(res, "multipliers", None) is not None:
        info["slsqp_multipliers"] = [float(v) for v in np.asarray(res.multipliers)[: problem.m]]
    return SLSQPResult(x, problem.objective(x), y, info)


def recover_multipliers(problem: Problem, x: Tensor, *, active_tol: float = 1e-6, zero_tol: float = 1e-9) -> Tensor:
    """KKT multipliers ``(m,)`` at a candidate solution ``x`` (the method is in the module docstring).

    Bounded least squares on the coordinates where ``h`` is differentiable, then a polish of the exact
    stationarity distance; inequalities are kept ``>= 0``, inactive ones (``c_i(x) < −active_tol``) at 0.

    Raises:
        ValueError: the regularizer is not coordinate-separable (see :func:`separable`).
    """
    from scipy.optimize import lsq_linear, minimize

    reg = problem.regularizer
    h = separable(reg, problem.dim)
    _, grad = problem.full_f(x, grad=True)
    c, jac = problem.full_c(x, grad=True)
    assert grad is not None
    assert jac is not None
    y = torch.zeros(problem.m, dtype=torch.float64)
    active = [i for i, kind in enumerate(problem.kinds) if kind == "eq" or float(c[i]) >= -active_tol]
    if not active:
        return y
    lower = np.array([-np.inf if problem.kinds[i] == "eq" else 0.0 for i in active])
    upper = np.full(len(active), np.inf)
    xn = x.detach().cpu().double().numpy()
    rows = ((h.l1 == 0) | (np.abs(xn) > zero_tol)) & (xn > h.lower) & (xn < h.upper)
    target = grad.detach().cpu().double().numpy() + h.l1 * np.sign(xn) + 2.0 * h.l2 * xn
    ja = jac[active].T  # (dim, |A|)
    if rows.any():
        sol = lsq_linear(ja.numpy()[rows], -target[rows], bounds=(lower, upper))
        ya = np.clip(np.asarray(sol.x, dtype=np.float64), lower, upper)
    else:
        ya = np.zeros(len(active))

    def residual(v: np.ndarray) -> float:
        return float(reg.stationarity(x, grad + ja @ torch.from_numpy(v))) ** 2

    polished = minimize(
        residual, ya, method="L-BFGS-B", bounds=list(zip(lower, upper, strict=True)), options={"ftol": 1e-15}
    )
    if float(polished.fun) < residual(ya):
        ya = np.clip(np.asarray(polished.x, dtype=np.float64), lower, upper)
    y[active] = torch.from_numpy(ya)
    return y
