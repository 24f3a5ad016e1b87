"""ConEx, the constraint-extrapolation subsolver, and IPP-ConEx, the inexact proximal point baseline built on it.

- :func:`conex`: the pure subsolver (Boob, Deng, Lan 2023, Algorithm 1) on a strongly convex
  ``min ψ_0 + h`` s.t. ``ψ_i ≤ 0``, with the step schedule :func:`conex_schedule` and the output
  :class:`ConExResult`; it sees the problem only through one stochastic first-order :data:`Oracle`.
- :class:`IPPConEx` (config :class:`IPPConExConfig`): outer proximal point
  ``x̄_{k+1} ≈ argmin f + h + μ‖x − x̄_k‖²`` s.t. ``c_i + μ_c‖x − x̄_k‖² ≤ 0``, each subproblem solved by
  :func:`conex`; the outer loop, records, budget and checkpoints are the shared shell of
  :mod:`stoc_ialm._loop`. :mod:`stoc_ialm.baselines` re-exports every public name here.

Hyperparameters the paper does not pin down are marked [R]/ours in the docstrings.

References:
    D. Boob, Q. Deng, G. Lan, "Stochastic first-order methods for convex and nonconvex functional
    constrained optimization", Math. Program. 197:215-279 (2023), arXiv:1908.02734.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from stoc_ialm._loop import State, _Baseline, _choice, _integer, _LoopConfig, _number
from stoc_ialm.problem import Problem
from stoc_ialm.prox import Regularizer

__all__ = ["ConExResult", "IPPConEx", "IPPConExConfig", "Oracle", "conex", "conex_schedule"]

Oracle = Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]
"""``x -> (∇ψ_0(x), ψ(x) (m,), J_ψ(x) (m, dim))``: one stochastic first-order call of a ConEx subproblem."""


# -- ConEx: the pure subsolver --------------------------------------------------------------------
def _frobenius(a: Tensor) -> float:
    return float(torch.linalg.matrix_norm(a)) if a.numel() else 0.0


def conex_schedule(t: int, t0: int, strong_convexity: float, jac_bound: float) -> tuple[float, float, float, float]:
    r"""Weights and step parameters ``(γ_t, θ_t, η_t, τ_t)`` of ConEx on a strongly convex subproblem.

    .. math::
        \gamma_t = t + t_0 + 1, \quad \theta_t = \frac{\gamma_{t-1}}{\gamma_t} = \frac{t + t_0}{t + t_0 + 1}, \quad
        \eta_t = \frac{\mu_{sc}(t + t_0)}{2}, \quad \tau_t = \frac{4M^2}{\mu_{sc}(t + t_0)}

    (``η_t``, ``τ_t`` are the weights of the proximal terms, i.e. inverse primal and dual steps.) They satisfy
    the conditions of the accelerated primal-dual analysis that ConEx follows: ``γ_tθ_t = γ_{t−1}``,
    ``γ_tη_t ≤ γ_{t−1}(η_{t−1} + μ_sc)`` (equality), ``γ_tτ_t`` non-increasing, and
    ``τ_{t+1}(η_t − L_Λ) ≥ θ_{t+1}M²`` once ``t_0 ≥ 4L_Λ/μ_sc`` (so ``η_t ≥ 2L_Λ``).

    Args:
        t: iteration ``>= 0``.
        t0: offset ``>= 1``.
        strong_convexity: ``μ_sc > 0`` of the subproblem's objective.
        jac_bound: ``M > 0``, a bound on the constraint Jacobian's norm.

    Returns:
        ``(γ_t, θ_t, η_t, τ_t)``.

    Note:
        [R]/ours: the paper's strongly convex ConEx theorem uses schedules of this shape (linear ``γ_t``,
        ``η_t`` growing like ``μt/2``, ``τ_t`` decaying like ``1/t``); its exact constants were not available,
        so these are derived here from the conditions listed above.

    Example:
        >>> conex_schedule(0, 3, 2.0, 1.0)
        (4.0, 0.75, 3.0, 0.6666666666666666)
    """
    a = float(t + t0)
    return a + 1.0, a / (a + 1.0), strong_convexity * a / 2.0, 4.0 * jac_bound**2 / (strong_convexity * a)


class ConExResult(NamedTuple):
    """Output of :func:`conex`."""

    x: Tensor
    """the output point ``(dim,)`` (the ``γ``-weighted average of ``x_{t+1}``, or the last iterate)."""
    y: Tensor
    """the dual output ``(m,)`` (the same average of ``y_{t+1}``, or the last)."""
    iters: int
    """iterations run (fewer than asked when ``stop`` fired)."""
    step: float
    """the last primal step ``1/η_t``."""
    jac_bound: float
    """the ``M`` used."""


def conex(
    oracle: Oracle,
    prox: Regularizer,
    x0: Tensor,
    y0: Tensor,
    ineq: Tensor,
    *,
    strong_convexity: float,
    smoothness: float,
    constraint_smoothness: float,
    iters: int,
    dual_bound: float = math.inf,
    jac_bound: float | None = None,
    output: Literal["average", "last"] = "average",
    stop: Callable[[], bool] | None = None,
) -> ConExResult:
    r"""ConEx (Boob, Deng, Lan 2023, Algorithm 1) on ``min ψ_0(x) + h(x)`` s.t. ``ψ_i(x) ≤ 0`` (or ``= 0``).

    With ``ℓ(x_t) = ψ(x_{t−1}) + J_ψ(x_{t−1})(x_t − x_{t−1})`` (the linearised constraints, ``x_{−1} = x_0``)
    and the schedule of :func:`conex_schedule`:

    .. math::
        s_t = (1 + \theta_t)\,\ell(x_t) - \theta_t\,\ell(x_{t-1}), \qquad
        y_{t+1} = \Pi_{Y}\big(y_t + s_t/\tau_t\big), \\
        x_{t+1} = \operatorname{prox}_{h/\eta_t'}\Big(x_t - \tfrac{1}{\eta_t'}\big(\nabla\psi_0(x_t) +
        J_\psi(x_t)^T y_{t+1}\big)\Big), \qquad
        \bar x_T = \frac{\sum_t \gamma_t x_{t+1}}{\sum_t \gamma_t}

    ``Π_Y`` projects onto ``Y = {y : |y_i| ≤ B, y_i ≥ 0 for inequalities}`` (equalities are free up to
    ``B``), and ``η_t' = max(η_t, 2L_Λ(y_{t+1}))`` with ``L_Λ(y) = L_0 + ‖y‖₁L_c``, the smoothness of
    ``ψ_0 + y^Tψ``; ``t_0 = ⌈4L_Λ(y_0)/μ_sc⌉``. One ``oracle`` call per iteration, at ``x_t``: its values and
    Jacobian give ``ℓ(x_{t+1})`` and its gradients the step from ``x_t`` (``y_{t+1}`` does not depend on
    that call, so one minibatch serves both).

    Args:
        oracle: stochastic first-order oracle of the subproblem (:data:`Oracle`).
        prox: ``h``.
        x0: start ``(dim,)``.
        y0: dual start ``(m,)``, inside ``Y``.
        ineq: ``(m,)`` bool, True for inequalities.
        strong_convexity: ``μ_sc > 0`` of ``ψ_0``.
        smoothness: ``L_0 > 0``, the smoothness of ``ψ_0``.
        constraint_smoothness: ``L_c >= 0``, the smoothness of every ``ψ_i``.
        iters: ``T >= 1``.
        dual_bound: ``B > 0`` (``inf``: unbounded duals).
        jac_bound: ``M``; None uses the running maximum of ``‖J_ψ(x_t)‖_F`` over the calls so far (at least 1e-6).
        output: ``"average"`` (the paper's ``x̄_T``, ``ȳ_T``) or ``"last"``.
        stop: checked after each iteration; True ends the loop early (an oracle budget).

    Returns:
        :class:`ConExResult`.

    Raises:
        ValueError: a bad numeric argument or ``output``.

    Example:
        >>> import torch
        >>> from stoc_ialm.prox import Zero
        >>> def oracle(x):  # min (x - 2)^2 s.t. x - 1 <= 0
        ...     return 2 * (x - 2), x - 1, torch.ones(1, 1, dtype=x.dtype)
        >>> x0 = torch.zeros(1, dtype=torch.float64)
        >>> out = conex(oracle, Zero(), x0, torch.zeros(1, dtype=torch.float64), torch.tensor([True]),
        ...             strong_convexity=2.0, smoothness=2.0, constraint_smoothness=0.0, iters=300, output="last")
        >>> round(float(out.x[0]), 6), round(float(out.y[0]), 6)
        (1.0, 2.0)

    Note:
        The paper bounds the dual domain by ``B`` and fixes ``M`` and ``L_Λ(B)`` from its assumptions; the
        schedule (:func:`conex_schedule`), the box form of ``Y``, the running estimate of ``M`` and the step
        safeguard ``η_t'`` are ours ([R]). The bound matters: when the subproblem is infeasible (an infeasible
        centre ``x̄_k``), the duals would grow without limit; at ``B`` the subproblem acts as the exact
        penalty ``ψ_0 + B‖[ψ]_+‖₁`` and still moves toward feasibility.
    """
    _integer("iters", iters, 1)
    for name, value, strict in (("strong_convexity", strong_convexity, True), ("smoothness", smoothness, True),
                                ("constraint_smoothness", constraint_smoothness, False)):  # fmt: skip
        _number(name, value, 0.0, strict=strict)
    if jac_bound is not None:
        _number("jac_bound", jac_bound, 0.0)
    if not dual_bound > 0:
        raise ValueError(f"dual_bound must be > 0, got {dual_bound!r}")
    _choice("output", output, ("average", "last"))
    t0 = max(1, math.ceil(4.0 * (smoothness + float(y0.abs().sum()) * constraint_smoothness) / strong_convexity))
    x, y = x0.clone(), y0.clone()
    g0, v, jac = oracle(x)
    M = jac_bound if jac_bound is not None else max(_frobenius(jac), 1e-6)
    ell_prev = ell = v.clone()
    gamma_sum, x_sum, y_sum = 0.0, torch.zeros_like(x), torch.zeros_like(y)
    step, t = 0.0, 0
    while True:
        gamma, theta, eta, tau = conex_schedule(t, t0, strong_convexity, M)
        if y.numel():
            y = (y + ((1.0 + theta) * ell - theta * ell_prev) / tau).clamp(-dual_bound, dual_bound)
            y = torch.where(ineq, y.clamp_min(0.0), y)
        eta = max(eta, 2.0 * (smoothness + float(y.abs().sum()) * constraint_smoothness))
        x_next = prox.prox(x - (g0 + jac.T @ y) / eta, 1.0 / eta)
        step = 1.0 / eta
        gamma_sum += gamma
        x_sum += gamma * x_next
        y_sum += gamma * y
        t += 1
        if t >= iters or (stop is not None and stop()):
            x = x_next
            break
        ell_prev, ell = ell, v + jac @ (x_next - x)
        x = x_next
        g0, v, jac = oracle(x)
        if jac_bound is None:
            M = max(M, _frobenius(jac))
    if output == "average":
        return ConExResult(x_sum / gamma_sum, y_sum / gamma_sum, t, step, M)
    return ConExResult(x, y, t, step, M)


# -- IPP-ConEx ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class IPPConExConfig(_LoopConfig):
    """IPP-ConEx hyperparameters (defaults ours, [R]: the paper's constants were not available)."""

    inner_iters: int = 200
    """``T``: ConEx iterations per proximal-point step (constant in ``k``, as in the paper's analysis)."""
    max_outer: int = 50
    """proximal-point steps ``K`` at most."""
    lipschitz: float = 1.0
    """``L``: smoothness constant of ``f`` and every ``c_i`` (ConEx's step safeguard)."""
    weak_convexity: float | None = None
    """``ρ``: ``f + (ρ/2)‖x‖²`` and every ``c_i + (ρ/2)‖x‖²`` are convex (None: ``L``, always valid)."""
    mu: float | None = None
    """``μ`` of the objective's proximal term ``μ‖x − x̄_k‖²`` (None: ``ρ``); must exceed ``ρ/2``."""
    mu_c: float | None = None
    """``μ_c`` of the inequalities' proximal terms (None: ``ρ``); ``>= ρ/2`` makes them convex."""
    dual_bound: float = 10.0
    """``B``: the dual domain ``|y_i| ≤ B`` (the paper's bounded dual; ``inf`` allowed)."""
    jac_bound: float | None = None
    """``M`` in ``τ_t`` (None: the running maximum of the minibatch ``‖J_ψ(x_t)‖_F``)."""
    inner_output: Literal["average", "last"] = "average"
    """ConEx output: the paper's weighted average or the last iterate."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _number("lipschitz", self.lipschitz, 0.0)
        if self.weak_convexity is not None:
            _number("weak_convexity", self.weak_convexity, 0.0, strict=False)
        rho = self.lipschitz if self.weak_convexity is None else self.weak_convexity
        if not (isinstance(self.dual_bound, (int, float)) and not isinstance(self.dual_bound, bool)
                and self.dual_bound > 0):  # fmt: skip
            raise ValueError(f"dual_bound must be a number > 0 (inf allowed), got {self.dual_bound!r}")
        for name in ("mu", "mu_c", "jac_bound"):
            if getattr(self, name) is not None:
                _number(name, getattr(self, name), 0.0, strict=name != "mu_c")
        if self.mu is not None and not 2 * self.mu > rho:
            raise ValueError(f"mu must be > weak_convexity / 2 = {rho / 2} (strongly convex subproblem), "
                             f"got {self.mu!r}")  # fmt: skip
        if self.mu is None and rho == 0:
            raise ValueError("mu must be given when weak_convexity is 0 (its default is weak_convexity)")
        if self.mu_c is not None and not 2 * self.mu_c >= rho:
            raise ValueError(f"mu_c must be >= weak_convexity / 2 = {rho / 2} (convex constraints), "
                             f"got {self.mu_c!r}")  # fmt: skip
        _choice("inner_output", self.inner_output, ("average", "last"))


class IPPConEx(_Baseline):
    r"""Inexact proximal point with the stochastic ConEx subsolver (Boob, Deng, Lan 2023), the O(ε⁻⁶) baseline.

    Outer step ``k`` (paper: "IPP", Algorithm 3 [R]) solves, from ``(x̄_k, y^k)``, the strongly convex

    .. math::
        \min_x\; \psi_0(x) + h(x) = f(x) + \mu\lVert x - \bar x_k\rVert^2 + h(x) \quad \text{s.t.}\quad
        \psi_i(x) = c_i(x) + \mu_c\lVert x - \bar x_k\rVert^2 \le 0 \;(\text{ineq}), \qquad
        \psi_i(x) = c_i(x) = 0 \;(\text{eq})

    with :func:`conex` for ``T = inner_iters`` iterations (``μ_sc = 2μ − ρ``, ``L_0 = L + 2μ``,
    ``L_c = L + 2μ_c``, duals in ``|y_i| ≤ B``); then ``x̄_{k+1}, y^{k+1}`` = ConEx's output. Each iteration
    costs ``b + m·b`` oracle calls (one ``f_grad`` and one ``c_jacobian`` minibatch, whose values give
    the linearisation). The KKT report uses ``y^{k+1}``, the subproblem's multiplier, which is the original
    problem's as ``‖x̄_{k+1} − x̄_k‖ → 0``.

    Note:
        Ours where the paper's text was not at hand ([R]): the schedule (:func:`conex_schedule`), the
        estimate of ``M`` and the step safeguard (:func:`conex`), the defaults ``ρ = L``, ``μ = μ_c = ρ``,
        ``B = 10`` and ``T = 200``, the dual warm start ``y^k`` (the paper's analysis restarts from a bounded
        dual), the last proximal point as output (theory: a random one), and **equalities**: the paper
        covers inequalities only; here an equality keeps ``ψ_i = c_i`` (no proximal term, which would make
        ``c_i + μ_c‖x − x̄‖² = 0`` a nonconvex set) with a free (unprojected) multiplier, exact for affine ``c_i``.
        ``μ`` sets the proximal step ``1/(2μ)`` of the outer loop: ``μ`` near the true weak-convexity modulus
        (not the global ``L``) makes each outer step long (NP-wine: ``ρ = L/30`` needs ~30x fewer outer steps).

    Example:
        >>> from stoc_ialm.toy import QuadraticProblem
        >>> prob = QuadraticProblem(center=[2.0], a=[[1.0]], b=[1.0], kinds=["ineq"])  # min (x-2)^2 s.t. x <= 1
        >>> cfg = IPPConExConfig(batch=None, lipschitz=2.0, inner_iters=300, inner_output="last", max_outer=40)
        >>> res = IPPConEx(prob, cfg).solve()
        >>> round(float(res.x[0]), 6), round(float(res.multipliers[0]), 4)
        (1.0, 2.0)
    """

    config: IPPConExConfig

    def __init__(self, problem: Problem, config: IPPConExConfig | None = None) -> None:
        super().__init__(problem, config or IPPConExConfig())
        cfg = self.config
        self.rho = cfg.weak_convexity if cfg.weak_convexity is not None else cfg.lipschitz
        self.mu = cfg.mu if cfg.mu is not None else self.rho
        self.mu_c = cfg.mu_c if cfg.mu_c is not None else self.rho

    def _start(self, x0: Tensor) -> State:
        return {"x": x0, "y": torch.zeros(self.problem.m, dtype=torch.float64)}

    def subproblem_oracle(self, center: Tensor, gen: torch.Generator) -> Oracle:
        """The counted stochastic oracle of the subproblem at centre ``x̄ = center`` (:data:`Oracle`)."""
        p, mu, mu_c = self.problem, self.mu, self.mu_c
        w = self._ineq.to(torch.float64)  # (m,) 1 for inequalities

        def oracle(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            _, g = p.f_grad(x, self._draw(p.n_f, gen))
            v, jac = p.c_jacobian(x, self._draws(gen))
            diff = x - center
            return g + 2.0 * mu * diff, v + mu_c * (diff @ diff) * w, jac + 2.0 * mu_c * torch.outer(w, diff)

        return oracle

    def _outer(self, state: State, k: int, gen: torch.Generator) -> dict[str, float]:
        cfg, L = self.config, self.config.lipschitz
        center, y = state["x"], state["y"]
        out = conex(self.subproblem_oracle(center, gen), self.problem.regularizer, center, y, self._ineq,
                    strong_convexity=2.0 * self.mu - self.rho, smoothness=L + 2.0 * self.mu,
                    constraint_smoothness=L + 2.0 * self.mu_c, iters=cfg.inner_iters, dual_bound=cfg.dual_bound,
                    jac_bound=cfg.jac_bound, output=cfg.inner_output, stop=self._spent)  # fmt: skip
        state["x"], state["y"] = out.x, out.y
        return {"inner_iters": out.iters, "eta": out.step, "jac_bound": out.jac_bound}
