"""Baselines with Stoc-iALM's interface: IPP-ConEx, fixed-penalty SGD, stochastic GDA and a cooper adapter.

Every solver takes a :class:`~stoc_ialm.problem.Problem` and a frozen config, and its
``solve(x0=None, *, checkpoint=None, resume=False, progress=False, callback=None)`` returns the
:class:`~stoc_ialm.ialm.SolveResult` of :class:`~stoc_ialm.ialm.StocIALM`, with one history record per
"outer" step (``k, oracle_calls, data_passes, objective, violation, stationarity, complementarity, kkt,
inner_iters, eta, wall_s`` and method extras). All oracle calls go through the problem's counted
``f_grad``, ``c_values`` and ``c_jacobian``; the metrics (:func:`~stoc_ialm.kkt.kkt_residual` at the
method's own multiplier estimate) are free. Minibatches are drawn uniformly with replacement
(``batch=None``: the full data, deterministic).

- :class:`IPPConEx`: outer proximal point ``x̄_{k+1} ≈ argmin f + h + μ‖x − x̄_k‖²`` s.t.
  ``c_i + μ_c‖x − x̄_k‖² ≤ 0``, each subproblem solved by :func:`conex` (Boob, Deng, Lan 2023);
- :class:`PenaltySGD`: ``x ← prox_{ηh}(x − η(∇f + βJ^T[c]))`` with a fixed ``β``;
- :class:`StochasticGDA`: ``x ← prox_{ηh}(x − η(∇f + J^T y))``, ``y ← Π(y + η_y c)`` (simultaneous, cooper-style);
- :class:`CooperSolver`: the same problem through cooper's ``Lagrangian`` or ``AugmentedLagrangian`` (optional).

Hyperparameters the papers do not pin down are marked [R]/ours in the config docstrings.

References:
    D. Boob, Q. Deng, G. Lan, "Stochastic first-order methods for convex and nonconvex functional
    constrained optimization", Math. Program. 197:215-279 (2023), arXiv:1908.02734.
    J. Gallego-Posada et al., "Cooper: a library for constrained optimization in deep learning" (cooper-optim).
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from stoc_ialm.ialm import _RESUME_FREE, DivergenceError, SolveResult, save_checkpoint
from stoc_ialm.kkt import kkt_residual
from stoc_ialm.problem import Problem
from stoc_ialm.prox import Regularizer
from stoc_ialm.pstorm import prox_gradient_step

__all__ = [
    "ConExResult", "CooperConfig", "CooperSolver", "IPPConEx", "IPPConExConfig", "PenaltySGD", "PenaltySGDConfig",
    "StochasticGDA", "StochasticGDAConfig", "conex", "conex_schedule",
]  # fmt: skip

State = dict[str, Tensor]
Oracle = Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]
"""``x -> (∇ψ_0(x), ψ(x) (m,), J_ψ(x) (m, dim))``: one stochastic first-order call of a ConEx subproblem."""


def _number(name: str, value: object, low: float, *, strict: bool = True) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (value > low if strict else value >= low):  # type: ignore[operator]
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low}, got {value!r}")


def _integer(name: str, value: object, low: int, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be {'None or ' if optional else ''}an integer >= {low}, got {value!r}")


def _choice(name: str, value: object, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")


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


# -- configs --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _LoopConfig:
    """Fields every baseline shares (when to record and when to stop)."""

    batch: int | None = 64
    """minibatch size of every oracle call (None: full batch, deterministic); spec §6's batch."""
    inner_iters: int = 100
    """iterations per outer step (a history record follows each)."""
    max_outer: int = 100
    """outer steps (records) at most."""
    budget: int | None = None
    """oracle-call budget (None: unlimited); the inner loop stops at the first iteration that reaches it."""
    tol: float = 0.0
    """stop when the full-data KKT residual (at the method's multiplier) is at most ``tol``."""
    seed: int = 0
    """seed of the minibatch sampler."""

    def __post_init__(self) -> None:
        for name, low in (("inner_iters", 1), ("max_outer", 1), ("seed", 0)):
            _integer(name, getattr(self, name), low)
        _integer("batch", self.batch, 1, optional=True)
        _integer("budget", self.budget, 1, optional=True)
        _number("tol", self.tol, 0.0, strict=False)


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


@dataclasses.dataclass(frozen=True)
class StochasticGDAConfig(_LoopConfig):
    """Simultaneous stochastic GDA hyperparameters (defaults: the spec §6 prototype's ``η = 0.5``, ``η_y = 0.05``)."""

    lr: float = 0.5
    """primal step ``η > 0``."""
    dual_lr: float = 0.05
    """dual step ``η_y > 0``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _number("lr", self.lr, 0.0)
        _number("dual_lr", self.dual_lr, 0.0)


@dataclasses.dataclass(frozen=True)
class CooperConfig(StochasticGDAConfig):
    """cooper adapter: formulation and optimizer (spec §6: ``cooper-gda`` and ``cooper-alm``)."""

    formulation: Literal["lagrangian", "augmented_lagrangian"] = "lagrangian"
    """cooper's ``Lagrangian`` or ``AugmentedLagrangian``."""
    alternating: bool = False
    """``SimultaneousOptimizer`` (False) or ``AlternatingPrimalDualOptimizer`` (True: the dual step uses
    fresh constraint values at the new point, counted as value calls)."""
    penalty: float = 1.0
    """``ρ`` of the augmented Lagrangian (unused by ``"lagrangian"``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _choice("formulation", self.formulation, ("lagrangian", "augmented_lagrangian"))
        if not isinstance(self.alternating, bool):
            raise ValueError(f"alternating must be True or False, got {self.alternating!r}")
        _number("penalty", self.penalty, 0.0)


# -- the shared shell -----------------------------------------------------------------------------
class _Baseline(abc.ABC):
    """Outer loop, records, budget, checkpoints; subclasses implement one outer step."""

    config: _LoopConfig

    def __init__(self, problem: Problem, config: _LoopConfig) -> None:
        self.problem = problem
        self.config = config
        self._ineq = torch.tensor([k == "ineq" for k in problem.kinds], dtype=torch.bool)
        smallest = min((problem.n_f, *problem.n_c))
        if config.batch is not None and config.batch > smallest:
            raise ValueError(f"batch must be <= the smallest data set ({smallest} samples), got {config.batch}")

    @abc.abstractmethod
    def _start(self, x0: Tensor) -> State: ...

    def _prepare(self, state: State) -> None:
        """Build per-solve objects from ``state`` (after a start or a resume); none by default."""
        return None

    @abc.abstractmethod
    def _outer(self, state: State, k: int, gen: torch.Generator) -> dict[str, float]:
        """One outer step in place; returns the record's extras (``inner_iters``, ``eta``, ...)."""

    def _point(self, state: State) -> Tensor:
        return state["x"]

    def _multiplier(self, state: State) -> Tensor:
        return state["y"]

    def _spent(self) -> bool:
        return self.config.budget is not None and self.problem.counter.total >= self.config.budget

    def _draw(self, n: int, gen: torch.Generator) -> Tensor:
        size = self.config.batch
        return torch.arange(n) if size is None else torch.randint(0, n, (size,), generator=gen)

    def _draws(self, gen: torch.Generator) -> list[Tensor]:
        return [self._draw(n, gen) for n in self.problem.n_c]

    def solve(
        self,
        x0: Tensor | None = None,
        *,
        checkpoint: str | Path | None = None,
        resume: bool = False,
        progress: bool = False,
        callback: Callable[[dict[str, Any]], None] | None = None,
    ) -> SolveResult:
        """Run from ``x0`` (default zeros); same contract as :meth:`stoc_ialm.ialm.StocIALM.solve`.

        Args:
            x0: start ``(dim,)``.
            checkpoint: a file written atomically after every outer step (``torch.save``).
            resume: continue from ``checkpoint`` if it exists (same method, problem and config), bit-identically.
            progress: a tqdm bar over outer steps.
            callback: called with each history record.

        Returns:
            A :class:`~stoc_ialm.ialm.SolveResult` (``status`` ``"tol"``, ``"budget"`` or ``"max_outer"``).

        Raises:
            DivergenceError: a non-finite iterate or objective.
            ValueError: a bad ``x0`` or a checkpoint of another method, problem or config.
        """
        cfg, p = self.config, self.problem
        x0 = torch.zeros(p.dim, dtype=torch.float64) if x0 is None else x0
        if x0.shape != (p.dim,):
            raise ValueError(f"x0 must have shape ({p.dim},), got {tuple(x0.shape)}")
        gen = torch.Generator().manual_seed(cfg.seed)
        state = self._start(x0.detach().to(torch.float64).clone())
        history: list[dict[str, Any]] = []
        k0, wall0 = 0, 0.0
        path = Path(checkpoint) if checkpoint is not None else None
        config = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _RESUME_FREE}
        method = type(self).__name__
        if resume and path is not None and path.is_file():
            saved = torch.load(path, weights_only=True)
            if (saved["method"], saved["config"], saved["dim"], saved["m"]) != (method, config, p.dim, p.m):
                raise ValueError(f"checkpoint {path} was written for another method, problem or config; not resuming")
            state, k0, history, wall0 = saved["state"], saved["k"], saved["history"], saved["wall"]
            gen.set_state(saved["rng"])
            p.counter.load(saved["counter"])
        self._prepare(state)
        n_total = p.n_f + sum(p.n_c)
        t_start = time.perf_counter()
        status = "max_outer"
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.max_outer, initial=k0, desc=f"{method} outer", disable=None)
        for k in range(k0, cfg.max_outer):
            if self._spent():
                status = "budget"
                break
            extras = self._outer(state, k, gen)
            x, y = self._point(state), self._multiplier(state)
            objective = p.objective(x) if bool(torch.isfinite(x).all()) else math.nan
            if not math.isfinite(objective):
                raise DivergenceError(f"{method}: non-finite iterate or objective at outer step {k}; lower the step "
                                      "(lr, lr_scale or dual_lr) or raise lipschitz")  # fmt: skip
            res = kkt_residual(p, x, y)
            record: dict[str, Any] = {
                "k": k, "oracle_calls": p.counter.total, "data_passes": p.counter.total / n_total,
                "objective": objective, "violation": res.violation, "stationarity": res.stationarity,
                "complementarity": res.complementarity, "kkt": res.kkt, **extras,
                "wall_s": wall0 + time.perf_counter() - t_start,
            }  # fmt: skip
            history.append(record)
            if callback is not None:
                callback(record)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(kkt=f"{res.kkt:.2e}", calls=p.counter.total)
            if path is not None:
                saved = {"method": method, "state": state, "k": k + 1, "history": history, "wall": record["wall_s"],
                         "rng": gen.get_state(), "counter": p.counter.state(), "config": config, "dim": p.dim,
                         "m": p.m}  # fmt: skip
                save_checkpoint(saved, path)
            if res.kkt <= cfg.tol:
                status = "tol"
                break
        if bar is not None:
            bar.close()
        if status == "max_outer" and self._spent():
            status = "budget"
        x, y = self._point(state), self._multiplier(state)
        return SolveResult(x=x.clone(), multipliers=y.clone(), history=history, status=status)


# -- IPP-ConEx ------------------------------------------------------------------------------------
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


# -- cooper adapter -------------------------------------------------------------------------------
def _import_cooper() -> Any:
    try:
        return importlib.import_module("cooper")
    except ImportError as err:
        raise ImportError("CooperSolver needs cooper: pip install 'stoc-ialm[cooper]' (or cooper-optim)") from err


class _ProxSGD(torch.optim.Optimizer):
    """SGD followed by ``prox_{lr h}`` on one flat parameter (the primal optimizer handed to cooper)."""

    def __init__(self, param: torch.nn.Parameter, lr: float, reg: Regularizer) -> None:
        super().__init__([param], {"lr": lr})
        self.reg = reg

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.copy_(prox_gradient_step(p, p.grad, group["lr"], self.reg))
        return None


class CooperSolver(_Baseline):
    r"""The problem solved by cooper (``cooper-optim``), with our counted oracles and proximal step.

    cooper differentiates ``f̃(x) = f_B + (x − x_t)^T∇f_B`` and ``c̃_i(x) = c_{i,B} + (x − x_t)^T∇c_{i,B}``
    (values and gradients of our counted minibatch oracles, so autograd reproduces them exactly). With
    ``formulation="lagrangian"`` and the simultaneous optimizer this is :class:`StochasticGDA`, iterate for
    iterate; ``"augmented_lagrangian"`` adds cooper's ``(ρ/2)‖c‖²`` (max-form for inequalities) to the
    primal Lagrangian. The primal optimizer is SGD followed by ``prox_{ηh}``; the dual one is SGD with
    ``maximize=True`` (then cooper clips inequality multipliers at 0). The KKT report uses cooper's multipliers.

    Raises:
        ImportError: cooper is not installed (at :meth:`solve`).
    """

    config: CooperConfig

    def __init__(self, problem: Problem, config: CooperConfig | None = None) -> None:
        super().__init__(problem, config or CooperConfig())

    def _start(self, x0: Tensor) -> State:
        return {"x": x0, "y": torch.zeros(self.problem.m, dtype=torch.float64)}

    def _prepare(self, state: State) -> None:
        cooper = _import_cooper()
        p, cfg = self.problem, self.config
        self._param = torch.nn.Parameter(state["x"].clone())
        aug = cfg.formulation == "augmented_lagrangian"

        def compute_cmp_state(cmp: Any, b_f: Tensor, b_j: list[Tensor]) -> Any:
            x = self._param
            with torch.no_grad():
                f_val, g = p.f_grad(x.detach(), b_f)
                v, jac = p.c_jacobian(x.detach(), b_j)
            delta = x - x.detach()
            observed = {cmp.constraints_list[i]: cooper.ConstraintState(violation=(v[i] + delta @ jac[i]).reshape(1))
                        for i in range(p.m)}  # fmt: skip
            return cooper.CMPState(loss=f_val + delta @ g, observed_constraints=observed)

        def compute_violations(cmp: Any, b_c: list[Tensor]) -> Any:
            v = p.c_values(self._param.detach(), b_c)
            observed = {cmp.constraints_list[i]: cooper.ConstraintState(violation=v[i].reshape(1)) for i in range(p.m)}
            return cooper.CMPState(loss=None, observed_constraints=observed)

        cmp_class = type("ProblemCMP", (cooper.ConstrainedMinimizationProblem,),
                         {"compute_cmp_state": compute_cmp_state, "compute_violations": compute_violations})  # fmt: skip
        cmp = cmp_class()
        constraints = []
        for i, kind in enumerate(p.kinds):
            ctype = cooper.ConstraintType.INEQUALITY if kind == "ineq" else cooper.ConstraintType.EQUALITY
            multiplier = cooper.multipliers.DenseMultiplier(init=state["y"][i : i + 1].clone(), dtype=torch.float64)
            penalty = cooper.penalty_coefficients.DensePenaltyCoefficient(
                init=torch.tensor(cfg.penalty, dtype=torch.float64)) if aug else None  # fmt: skip
            formulation = cooper.formulations.AugmentedLagrangian if aug else cooper.formulations.Lagrangian
            constraint = cooper.Constraint(ctype, formulation_type=formulation, multiplier=multiplier,
                                           penalty_coefficient=penalty)  # fmt: skip
            setattr(cmp, f"c{i}", constraint)
            constraints.append(constraint)
        cmp.constraints_list = constraints
        primal = _ProxSGD(self._param, cfg.lr, p.regularizer)
        optimizer = (
            cooper.optim.AlternatingPrimalDualOptimizer if cfg.alternating else cooper.optim.SimultaneousOptimizer
        )
        if p.m:
            dual = torch.optim.SGD(list(cmp.dual_parameters()), lr=cfg.dual_lr, maximize=True)
            self._cooper = optimizer(cmp=cmp, primal_optimizers=primal, dual_optimizers=dual)
        else:
            self._cooper = cooper.optim.UnconstrainedOptimizer(cmp=cmp, primal_optimizers=primal)
        self._constraints = constraints

    def _outer(self, state: State, k: int, gen: torch.Generator) -> dict[str, float]:
        p, cfg = self.problem, self.config
        t = 0
        while t < cfg.inner_iters and not self._spent():
            kwargs: dict[str, Any] = {
                "compute_cmp_state_kwargs": {"b_f": self._draw(p.n_f, gen), "b_j": self._draws(gen)}
            }
            if cfg.alternating and p.m:
                kwargs["compute_violations_kwargs"] = {"b_c": self._draws(gen)}
            self._cooper.roll(**kwargs)
            t += 1
        state["x"] = self._param.detach().clone()
        y = [c.multiplier.weight.detach().reshape(-1) for c in self._constraints]
        state["y"] = torch.cat(y) if y else torch.zeros(0, dtype=torch.float64)
        return {"inner_iters": t, "eta": cfg.lr, "dual_lr": cfg.dual_lr}
