"""Baselines with Stoc-iALM's interface: IPP-ConEx, fixed-penalty SGD, stochastic GDA and a cooper adapter.

Every solver takes a :class:`~stoc_ialm.problem.Problem` and a frozen config, and its
``solve(x0=None, *, checkpoint=None, resume=False, progress=False, callback=None)`` returns the
:class:`~stoc_ialm.ialm.SolveResult` of :class:`~stoc_ialm.ialm.StocIALM`, with one history record per
"outer" step (``k, oracle_calls, data_passes, objective, violation, stationarity, complementarity, kkt,
inner_iters, eta, wall_s`` and method extras). All oracle calls go through the problem's counted
``f_grad``, ``c_values`` and ``c_jacobian``; the metrics (:func:`~stoc_ialm.kkt.kkt_residual` at the
method's own multiplier estimate) are free. Minibatches are drawn uniformly with replacement
(``batch=None``: the full data, deterministic).

- :class:`~stoc_ialm.conex.IPPConEx`: outer proximal point ``x̄_{k+1} ≈ argmin f + h + μ‖x − x̄_k‖²`` s.t.
  ``c_i + μ_c‖x − x̄_k‖² ≤ 0``, each subproblem solved by :func:`~stoc_ialm.conex.conex` (Boob, Deng, Lan 2023);
- :class:`PenaltySGD`: ``x ← prox_{ηh}(x − η(∇f + βJ^T[c]))`` with a fixed ``β``;
- :class:`StochasticGDA`: ``x ← prox_{ηh}(x − η(∇f + J^T y))``, ``y ← Π(y + η_y c)`` (simultaneous, cooper-style);
- :class:`~stoc_ialm.cooper_adapter.CooperSolver`: the same problem through cooper's ``Lagrangian`` or
  ``AugmentedLagrangian`` (optional).

This module defines the two plain stochastic solvers (:class:`PenaltySGD`, :class:`StochasticGDA`) and
re-exports the others, so that every baseline imports from here: IPP-ConEx and ConEx live in
:mod:`stoc_ialm.conex`, the cooper adapter in :mod:`stoc_ialm.cooper_adapter`, and the shared outer loop
(with :class:`StochasticGDAConfig`, which the cooper config extends) in :mod:`stoc_ialm._loop`.

Hyperparameters the papers do not pin down are marked [R]/ours in the config docstrings.

References:
    D. Boob, Q. Deng, G. Lan, "Stochastic first-order methods for convex and nonconvex functional
    constrained optimization", Math. Program. 197:215-279 (2023), arXiv:1908.02734.
    J. Gallego-Posada et al., "Cooper: a library for constrained optimization in deep learning" (cooper-optim).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import Tensor

from stoc_ialm._loop import State as State
from stoc_ialm._loop import StochasticGDAConfig, _Baseline, _choice, _LoopConfig, _number
from stoc_ialm.conex import ConExResult, IPPConEx, IPPConExConfig, conex, conex_schedule
from stoc_ialm.conex import Oracle as Oracle
from stoc_ialm.cooper_adapter import CooperConfig, CooperSolver
from stoc_ialm.problem import Problem
from stoc_ialm.pstorm import prox_gradient_step

__all__ = [
    "ConExResult", "CooperConfig", "CooperSolver", "IPPConEx", "IPPConExConfig", "PenaltySGD", "PenaltySGDConfig",
    "StochasticGDA", "StochasticGDAConfig", "conex", "conex_schedule",
]  # fmt: skip


# -- configs --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PenaltySGDConfig(_LoopConfig):
    """Fixed-penalty proximal SGD hyperparameters (defaults ours; the benchmark tunes ``beta``)."""

    beta: float = 10.0
    """the fixed penalty ``β > 0``."""
    lipschitz: float = 1.0
    """``L`` in ``L_β = L(1 + β)`` (as Stoc-iALM's ``L_k`` with ``y = 0``)."""
    lr_scale: float = 1.0
    """step ``η = lr_scale / L_β``."""
    inequality: Literal["max", "slack"] = "max"
    """``"max"``: ``(β/2)max(c_i, 0)²``; ``"slack"``: ``(β/2)(c_i + s_i)²`` with ``s_i ≥ 0`` (unbiased, slower)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("beta", "lipschitz", "lr_scale"):
            _number(name, getattr(self, name), 0.0)
        _choice("inequality", self.inequality, ("max", "slack"))


# -- fixed-penalty proximal SGD -------------------------------------------------------------------
class PenaltySGD(_Baseline):
    r"""Proximal SGD on a fixed quadratic penalty, never penalising a satisfied inequality.

    .. math::
        \min_x f(x) + h(x) + \tfrac{\beta}{2}\lVert [c(x)] \rVert^2, \qquad
        x_{t+1} = \operatorname{prox}_{\eta h}\big(x_t - \eta(\nabla f(x_t; B_f) + \beta J_c(x_t; B_J)^T [c(x_t; B_c)])\big)

    with ``[c_i] = c_i`` (eq) and ``max(c_i, 0)`` (ineq, ``inequality="max"``), ``η = lr_scale/(L(1 + β))``
    and independent ``B_J``, ``B_c`` (so the equality part is unbiased). ``inequality="slack"`` instead
    minimises over ``(x, s ≥ 0)`` the penalty ``(β/2)‖c̃‖²`` with ``c̃_i = c_i + s_i`` (unbiased, but
    ill-conditioned along ``x + s`` when the constraint is inactive). One iteration costs ``b + 2m·b`` calls.
    The KKT report uses ``y = β[c(x)]`` on the full data (free): at a minimiser of the penalty function it
    makes the stationarity residual exactly 0, so only the violation ``O(1/β)`` remains.

    Example:
        >>> from stoc_ialm.toy import QuadraticProblem
        >>> prob = QuadraticProblem(center=[2.0], a=[[1.0]], b=[1.0], kinds=["ineq"])
        >>> res = PenaltySGD(prob, PenaltySGDConfig(batch=None, beta=98.0, lipschitz=2.0, max_outer=5)).solve()
        >>> round(float(res.x[0]), 6)  # (4 + β)/(2 + β)
        1.02
    """

    config: PenaltySGDConfig

    def __init__(self, problem: Problem, config: PenaltySGDConfig | None = None) -> None:
        super().__init__(problem, config or PenaltySGDConfig())
        self._slack = self.config.inequality == "slack"
        self.eta = self.config.lr_scale / (self.config.lipschitz * (1.0 + self.config.beta))

    def _start(self, x0: Tensor) -> State:
        return {"x": x0, "s": torch.zeros(int(self._ineq.sum()) if self._slack else 0, dtype=torch.float64)}

    def _multiplier(self, state: State) -> Tensor:
        c = self.problem.full_c(state["x"])[0]
        return self.config.beta * self.problem.violation_vector(c)

    def _outer(self, state: State, k: int, gen: torch.Generator) -> dict[str, float]:
        p, beta, eta = self.problem, self.config.beta, self.eta
        x, s = state["x"], state["s"]
        t = 0
        while t < self.config.inner_iters and not self._spent():
            _, g = p.f_grad(x, self._draw(p.n_f, gen))
            _, jac = p.c_jacobian(x, self._draws(gen))
            c = p.c_values(x, self._draws(gen))
            if self._slack:
                c[self._ineq] += s
                s = (s - eta * beta * c[self._ineq]).clamp_min(0.0)
            else:
                c = p.violation_vector(c)
            x = prox_gradient_step(x, g + beta * (jac.T @ c), eta, p.regularizer)
            t += 1
        state["x"], state["s"] = x, s
        return {"inner_iters": t, "eta": eta, "beta": beta}


# -- stochastic gradient descent-ascent -----------------------------------------------------------
class StochasticGDA(_Baseline):
    r"""Simultaneous stochastic gradient descent-ascent on the Lagrangian (cooper's ``Lagrangian`` +
    ``SimultaneousOptimizer`` with SGD, plus a proximal step for ``h``).

    .. math::
        x_{t+1} = \operatorname{prox}_{\eta h}\big(x_t - \eta(\nabla f(x_t; B_f) + J_c(x_t; B_J)^T y_t)\big), \qquad
        y_{t+1} = \Pi_Y\big(y_t + \eta_y\, c(x_t; B_J)\big)

    ``Π_Y`` clips inequality multipliers at 0. The dual step uses the constraint values of the Jacobian's
    minibatch (as cooper does with one ``compute_cmp_state``), so an iteration costs ``b + m·b`` calls.
    The KKT report uses ``y_t``.

    Example:
        >>> from stoc_ialm.toy import QuadraticProblem
        >>> prob = QuadraticProblem(center=[2.0], a=[[1.0]], b=[1.0], kinds=["ineq"])
        >>> res = StochasticGDA(prob, StochasticGDAConfig(batch=None, lr=0.2, dual_lr=0.5, max_outer=5)).solve()
        >>> round(float(res.x[0]), 6), round(float(res.multipliers[0]), 6)
        (1.0, 2.0)
    """

    config: StochasticGDAConfig

    def __init__(self, problem: Problem, config: StochasticGDAConfig | None = None) -> None:
        super().__init__(problem, config or StochasticGDAConfig())

    def _start(self, x0: Tensor) -> State:
        return {"x": x0, "y": torch.zeros(self.problem.m, dtype=torch.float64)}

    def _outer(self, state: State, k: int, gen: torch.Generator) -> dict[str, float]:
        p, cfg = self.problem, self.config
        x, y = state["x"], state["y"]
        t = 0
        while t < cfg.inner_iters and not self._spent():
            _, g = p.f_grad(x, self._draw(p.n_f, gen))
            c, jac = p.c_jacobian(x, self._draws(gen))
            x = prox_gradient_step(x, g + jac.T @ y, cfg.lr, p.regularizer)
            y = y + cfg.dual_lr * c
            y = torch.where(self._ineq, y.clamp_min(0.0), y)
            t += 1
        state["x"], state["y"] = x, y
        return {"inner_iters": t, "eta": cfg.lr, "dual_lr": cfg.dual_lr}
