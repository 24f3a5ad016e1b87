"""Stoc-iALM: the stochastic inexact augmented Lagrangian method (Li, Chen, Liu, Lu, Xu 2024, Algorithms 1-2).

Outer loop (Algorithm 1), with the augmented Lagrangian
:math:`\\mathcal L_\\beta(z, y) = f(x) + h(x) + y^T \\tilde c(z) + \\tfrac{\\beta}{2}\\lVert \\tilde c(z)\\rVert^2`:

.. math::
    z^{k+1} \\approx \\arg\\min_z \\mathcal L_{\\beta_k}(z, y^k) \\;\\text{(Algorithm 2, warm start } z^k),\\qquad
    y^{k+1} = y^k + w_k\\, \\tilde c(z^{k+1}),\\quad w_k = \\min\\{\\beta_k, \\gamma_k / \\lVert \\tilde c(z^{k+1})\\rVert\\},\\qquad
    \\beta_{k+1} = \\sigma \\beta_k

with the summable ``γ_k = γ_0 (log 2)^2 ‖c̃(z^1)‖ / ((k+1) log^2(k+2))`` (so ``Σ‖y^{k+1} − y^k‖ ≤ Σγ_k < ∞``)
and ``c̃`` a minibatch estimate (value oracles). Inequalities ``c_i(x) ≤ 0`` get a slack ``s_i ≥ 0``:
``z = (x, s)``, ``c̃_i(z) = c_i(x) + s_i``, and ``h`` gains the indicator of ``s ≥ 0``, so a satisfied
constraint is never penalised (``s_i`` absorbs it). Inner solver (Algorithm 2): PStorm on
``φ_k(z) = f(x) + y^Tc̃(z) + (β_k/2)‖c̃(z)‖²`` with the stochastic gradient

.. math::
    G(z; B) = \\begin{pmatrix} \\nabla f(x; B_f) + J_c(x; B_J)^T (y^k + \\beta_k \\tilde c(z; B_c)) \\\\
    (y^k + \\beta_k \\tilde c(z; B_c))_{\\text{ineq}} \\end{pmatrix}

(independent ``B_J`` and ``B_c``, so ``G`` is unbiased; the same ``B`` at ``z_t`` and ``z_{t−1}``), step
``η_k = lr_scale / L_k``, ``L_k = L (1 + ‖y^k‖ + β_k)``, on the slacks ``min(η_k, 1/β_k)`` (see below),
``T_k = min(⌈T_0 σ^{k/2}⌉, T_max)`` iterations, output the
last or a uniformly random iterate, then one proximal-gradient step with a large batch (postprocessing).
The KKT residual is measured at the effective multiplier ``ȳ = y^k + β_k c̃(z^{k+1})``.

Note:
    The paper's text was not available when this was written (see the package's method note): the
    dual-step rule follows the docstring of a third-party port that cites Algorithm 1, the γ_k schedule and
    the inner-effort growth are the iALM line of work's, and ``L_k`` is a scaled proxy for the paper's
    ``L_f + ‖y‖L_J + β(L_J B_c + B_J²)``. Each is a field of :class:`StocIALMConfig`.

    φ_k is exactly quadratic in the slacks, with curvature ``β_k`` (``∂c̃/∂s = I``), so a step longer than
    ``2/β_k`` makes them oscillate whatever ``L`` says; with ``L < 1`` (estimated Lipschitz constants often
    are) or ``lr_scale > 1`` the uniform step ``η_k`` exceeded that and inactive inequalities never settled.
    The slack block therefore steps ``min(η_t, 1/β_k)``: ``1/β_k`` is its exact block minimiser, and the
    ``x`` block keeps ``η_t``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from stoc_ialm.kkt import KKTResidual, kkt_residual
from stoc_ialm.problem import Problem
from stoc_ialm.pstorm import paper_schedule, pstorm_direction

_RESUME_FREE = ("max_outer", "budget", "tol")
"""Config fields a resumed solve may change (when to stop), without changing the iterates (an outer step the
budget cut short is not checkpointed, so a larger budget redoes it in full)."""


class DivergenceError(FloatingPointError):
    """The augmented Lagrangian became non-finite."""


@dataclasses.dataclass(frozen=True)
class StocIALMConfig:
    """Hyperparameters of Stoc-iALM.

    Defaults are ours, within the ranges spec §1 proposes, chosen by the benchmark (``stoc-ialm bench``:
    the grid point with the smallest median KKT residual over 3 seeds on fairness-Adult, second on
    NP-Adult, where ``beta0=3, lr_scale=4`` is slightly better): ``σ = 1.5``, ``γ_0 = 1000`` (the dual
    step is then ``β_k`` until the summable bound ``γ_k`` bites), ``T_0 = 500`` and full-data dual and
    postprocessing batches (the dual estimate's noise enters ``ȳ = y + β_k c̃`` multiplied by ``β_k``; a
    1024-sample estimate leaves a stationarity floor near 1e-2 on Adult). On very large data, set
    ``dual_batch`` and ``post_batch`` to a few thousand.
    """

    beta0: float = 1.0
    """initial penalty ``β_0 > 0``."""
    sigma: float = 1.5
    """penalty growth ``σ > 1``: ``β_{k+1} = σ β_k``."""
    gamma0: float = 1000.0
    """scale ``γ_0 > 0`` of the summable dual-step bound."""
    lipschitz: float = 1.0
    """``L`` in ``L_k = L (1 + ‖y^k‖ + β_k)`` (the smoothness scale of ``f`` and ``c``)."""
    lr_scale: float = 1.0
    """step ``η_k = lr_scale / L_k``."""
    momentum: float | Literal["paper"] = 0.1
    """PStorm's ``θ`` (constant in (0, 1]) or ``"paper"`` (the diminishing schedule of Xu & Xu, restarted per outer step)."""
    inner_iters0: int = 500
    """``T_0``: PStorm iterations of the first subproblem; ``T_k = ⌈T_0 σ^{k/2}⌉``."""
    max_inner_iters: int = 20_000
    """cap on ``T_k`` (the growth ``σ^{k/2}`` is geometric)."""
    batch: int | None = 64
    """minibatch size of ``B_f``, ``B_J`` and ``B_c`` (None: full batch, deterministic)."""
    post_batch: int | None = None
    """batch of the postprocessing proximal step (None: full batch; 0: no postprocessing)."""
    dual_batch: int | None = None
    """batch of the constraint estimate ``c̃(z^{k+1})`` used for the dual step (None: full batch)."""
    output: Literal["last", "random"] = "last"
    """inner output: the last iterate or a uniformly random one (the theory's choice)."""
    max_outer: int = 20
    """outer iterations at most."""
    budget: int | None = None
    """oracle-call budget (None: unlimited), never exceeded: an inner step runs only when its gradient pair and
    the outer step's postprocessing and dual estimate still fit, and an outer step starts only when its first
    gradient and those fit."""
    tol: float = 0.0
    """stop when the full-data KKT residual (at ``ȳ``) is at most ``tol``."""
    seed: int = 0
    """seed of the minibatch sampler."""

    def __post_init__(self) -> None:
        for name in ("beta0", "gamma0", "lipschitz", "lr_scale"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 or math.isinf(value):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not isinstance(self.sigma, (int, float)) or not self.sigma > 1 or math.isinf(self.sigma):
            raise ValueError(f"sigma must be a finite number > 1, got {self.sigma!r}")
        if self.momentum != "paper" and not (
            isinstance(self.momentum, (int, float)) and not isinstance(self.momentum, bool) and 0 < self.momentum <= 1
        ):
            raise ValueError(f"momentum must be in (0, 1] or 'paper', got {self.momentum!r}")
        for name, low in (("inner_iters0", 1), ("max_inner_iters", 1), ("max_outer", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        for name, low in (("batch", 1), ("post_batch", 0), ("dual_batch", 1), ("budget", 1)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise ValueError(f"{name} must be None or an integer >= {low}, got {value!r}")
        if self.output not in ("last", "random"):
            raise ValueError(f"output must be 'last' or 'random', got {self.output!r}")
        if not isinstance(self.tol, (int, float)) or self.tol < 0:
            raise ValueError(f"tol must be >= 0, got {self.tol!r}")


@dataclasses.dataclass
class SolveResult:
    """The outcome of :meth:`StocIALM.solve`."""

    x: Tensor
    """the final point (original variables, slacks dropped)."""
    multipliers: Tensor
    """the effective multiplier ``ȳ`` of the last outer step."""
    history: list[dict[str, Any]]
    """one record per outer step: k, oracle_calls, data_passes, objective, violation, stationarity,
    complementarity, kkt, beta, inner_iters, wall_s. ``data_passes`` is ``oracle_calls / (n_f + Σ_i n_c[i])``:
    oracle calls in units of one call per sample of every component, the same unit for every method; one
    full-batch gradient of the augmented Lagrangian costs ``(n_f + 2 Σ_i n_c[i]) / (n_f + Σ_i n_c[i])`` of them
    (a gradient and a value of each ``c_i``), e.g. 5/3 for :class:`~stoc_ialm.problems.FairnessDP`, whose two
    constraints read the same ``n`` samples as the objective."""
    status: str
    """``"tol"`` (KKT ≤ tol), ``"budget"`` or ``"max_outer"``."""

    @property
    def final(self) -> dict[str, Any]:
        """The last history record."""
        return self.history[-1]

    def to_json(self, path: str | Path) -> None:
        """Write ``x``, ``multipliers``, ``status`` and ``history`` as JSON (atomically)."""
        obj = {"x": self.x.tolist(), "multipliers": self.multipliers.tolist(), "status": self.status,
               "history": self.history}  # fmt: skip
        _atomic_write(Path(path), json.dumps(obj, indent=1))

    def plot(self, path: str | Path, label: str = "stoc-ialm") -> None:
        """Objective, violation and KKT residual against oracle calls (PNG/SVG; needs ``stoc-ialm[plot]``)."""
        from stoc_ialm.plotting import plot_history

        plot_history({label: self}, path)


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """``torch.save(state, path)`` atomically (a temporary file, then ``os.replace``); shared by every solver."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``; an unreadable or foreign file is a ``ValueError`` naming it."""
    try:
        state = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as err:
        raise ValueError(
            f"checkpoint {path} is unreadable ({type(err).__name__}: {err}); delete it to start over"
        ) from None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} is not a stoc-ialm checkpoint")
    return state


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class StocIALM:
    """The Stoc-iALM solver for a :class:`~stoc_ialm.problem.Problem`.

    Args:
        problem: the problem (its oracle counter accumulates the cost).
        config: hyperparameters (:class:`StocIALMConfig`).

    Example:
        >>> import torch
        >>> from stoc_ialm.toy import QuadraticProblem
        >>> prob = QuadraticProblem(center=[2.0], a=[[1.0]], b=[1.0], kinds=["ineq"])  # min (x-2)^2 s.t. x <= 1
        >>> res = StocIALM(
        ...     prob,
        ...     StocIALMConfig(
        ...         batch=None,
        ...         post_batch=None,
        ...         dual_batch=None,
        ...         lipschitz=2.0,
        ...         inner_iters0=200,
        ...         max_outer=30,
        ...         tol=1e-8,
        ...     ),
        ... ).solve()
        >>> round(float(res.x[0]), 6), round(float(res.multipliers[0]), 4)
        (1.0, 2.0)
    """

    def __init__(self, problem: Problem, config: StocIALMConfig | None = None) -> None:
        self.problem = problem
        self.config = config or StocIALMConfig()
        self._ineq = [i for i, k in enumerate(problem.kinds) if k == "ineq"]
        self._slack_of = torch.full((problem.m,), -1, dtype=torch.long)
        for j, i in enumerate(self._ineq):
            self._slack_of[i] = j
        for name in ("batch", "post_batch", "dual_batch"):
            value = getattr(self.config, name)
            smallest = min(problem.n_f, *problem.n_c) if problem.m else problem.n_f
            if value is not None and value > 0 and value > smallest and name == "batch":
                raise ValueError(f"batch must be <= the smallest data set ({smallest} samples), got {value}")

    # -- pieces --------------------------------------------------------------------------------
    def _split(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z[: self.problem.dim], z[self.problem.dim :]

    def _ctilde(self, c: Tensor, s: Tensor) -> Tensor:
        out = c.clone()
        if self._ineq:
            out[self._ineq] = out[self._ineq] + s
        return out

    def _prox(self, z: Tensor, t: float) -> Tensor:
        x, s = self._split(z)
        return torch.cat([self.problem.regularizer.prox(x, t), s.clamp_min(0.0)])

    def _grad_cost(self, batch: int | None) -> int:
        """Oracle calls of one :meth:`_grad` with mini-batch ``batch`` (None: full), counted per sample."""
        p = self.problem
        return (p.n_f if batch is None else batch) + 2 * sum(n if batch is None else batch for n in p.n_c)

    def _closing_cost(self) -> int:
        """Oracle calls of an outer step's postprocessing gradient and dual estimate."""
        p, cfg = self.problem, self.config
        post = 0 if cfg.post_batch == 0 else self._grad_cost(cfg.post_batch)
        return post + sum(n if cfg.dual_batch is None else cfg.dual_batch for n in p.n_c)

    def _prox_step(self, z: Tensor, g: Tensor, t: float, beta: float) -> Tensor:
        """``prox(z − step·g)`` with step ``t`` on x and ``min(t, 1/β)`` on the slacks (curvature β there)."""
        (x, s), (g_x, g_s) = self._split(z), self._split(g)
        return self._prox(torch.cat([x - t * g_x, s - min(t, 1.0 / beta) * g_s]), t)

    def _draw(self, n: int, size: int | None, gen: torch.Generator) -> Tensor:
        if size is None:
            return torch.arange(n)
        return torch.randint(0, n, (size,), generator=gen)

    def _batch(self, size: int | None, gen: torch.Generator) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        p = self.problem
        b_f = self._draw(p.n_f, size, gen)
        b_j = [self._draw(n, size, gen) for n in p.n_c]
        b_c = [self._draw(n, size, gen) for n in p.n_c]
        return b_f, b_j, b_c

    def _grad(self, z: Tensor, y: Tensor, beta: float, batch: tuple[Tensor, list[Tensor], list[Tensor]]) -> Tensor:
        """``G(z; B)``: unbiased stochastic gradient of ``φ_k`` (independent Jacobian and value batches)."""
        p = self.problem
        x, s = self._split(z)
        b_f, b_j, b_c = batch
        _, g_f = p.f_grad(x, b_f)
        if not p.m:
            return g_f
        _, jac = p.c_jacobian(x, b_j)
        c = p.c_values(x, b_c)
        w = y + beta * self._ctilde(c, s)
        g = torch.cat([g_f + jac.T @ w, w[self._ineq]])
        if not bool(torch.isfinite(g).all()):
            raise DivergenceError(f"non-finite augmented-Lagrangian gradient at β = {beta:g}; lower lr_scale or sigma")
        return g

    def _metrics(self, z: Tensor, y_bar: Tensor) -> tuple[float, KKTResidual]:
        x, _ = self._split(z)
        return self.problem.objective(x), kkt_residual(self.problem, x, y_bar)

    # -- solve ---------------------------------------------------------------------------------
    def solve(
        self,
        x0: Tensor | None = None,
        *,
        checkpoint: str | Path | None = None,
        resume: bool = False,
        progress: bool = False,
        callback: Callable[[dict[str, Any]], None] | None = None,
    ) -> SolveResult:
        """Run Algorithm 1 from ``x0`` (default zeros); checkpoint after every outer step when asked.

        Args:
            x0: start ``(dim,)``.
            checkpoint: a file written atomically after every outer step (``torch.save``).
            resume: continue from ``checkpoint`` if it exists (same problem and config), bit-identically.
            progress: a tqdm bar over outer steps.
            callback: called with each history record.

        Returns:
            A :class:`SolveResult`.

        Raises:
            DivergenceError: the augmented Lagrangian became non-finite.
            ValueError: a bad ``x0`` or a checkpoint of another problem or config.
        """
        cfg, p = self.config, self.problem
        dtype = torch.float64
        if x0 is None:
            x0 = torch.zeros(p.dim, dtype=dtype)
        if x0.shape != (p.dim,):
            raise ValueError(f"x0 must have shape ({p.dim},), got {tuple(x0.shape)}")
        gen = torch.Generator().manual_seed(cfg.seed)
        z = torch.cat([x0.to(dtype), torch.zeros(len(self._ineq), dtype=dtype)])
        y = torch.zeros(p.m, dtype=dtype)
        beta, k0, c1_norm = float(cfg.beta0), 0, None
        history: list[dict[str, Any]] = []
        y_bar = y.clone()
        wall0 = 0.0
        path = Path(checkpoint) if checkpoint is not None else None
        if resume and path is not None and path.is_file():
            state = load_checkpoint(path)
            saved = {k: v for k, v in state["config"].items() if k not in _RESUME_FREE}
            now = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _RESUME_FREE}
            if saved != now or state["dim"] != p.dim or state["m"] != p.m:
                raise ValueError(f"checkpoint {path} was written for another problem or config; not resuming")
            z, y, y_bar, beta, k0 = state["z"], state["y"], state["y_bar"], state["beta"], state["k"]
            c1_norm, history, wall0 = state["c1_norm"], state["history"], state["wall"]
            gen.set_state(state["rng"])
            p.counter.load(state["counter"])
        n_total = p.n_f + sum(p.n_c)
        t_start = time.perf_counter()
        status = "max_outer"
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.max_outer, initial=k0, desc="stoc-ialm outer", disable=None)
        # the budget is never exceeded: an outer step starts only with room for its first gradient, its
        # postprocessing and its dual estimate, and an inner step only with room for its gradient pair
        reserve, step_cost = self._closing_cost(), self._grad_cost(cfg.batch)

        def over_budget(gradients: int) -> bool:
            """Would ``gradients`` more mini-batch gradients plus the closing cost exceed the budget?"""
            return cfg.budget is not None and p.counter.total + gradients * step_cost + reserve > cfg.budget

        for k in range(k0, cfg.max_outer):
            if over_budget(1):
                status = "budget"
                break
            L_k = cfg.lipschitz * (1.0 + float(torch.linalg.vector_norm(y)) + beta)
            eta = cfg.lr_scale / L_k
            T_k = min(cfg.max_inner_iters, math.ceil(cfg.inner_iters0 * cfg.sigma ** (k / 2)))
            # Algorithm 2: PStorm on φ_k from the warm start z^k.
            z_prev = z
            d = self._grad(z, y, beta, self._batch(cfg.batch, gen))
            iterates = [z]
            t_done, truncated = 0, False
            for t in range(T_k):
                # paper: η_t steps z_t and θ_{t+1} mixes d_{t+1}, both from the scaled steps (as PStorm)
                if cfg.momentum == "paper":
                    eta_t = paper_schedule(L_k, t, scale=cfg.lr_scale)[0]
                    theta = paper_schedule(L_k, t + 1, scale=cfg.lr_scale)[1]
                else:
                    eta_t, theta = eta, float(cfg.momentum)
                z_next = self._prox_step(z, d, eta_t, beta)
                z_prev, z = z, z_next
                t_done += 1
                if cfg.output == "random":
                    iterates.append(z)
                if t + 1 < T_k:
                    if over_budget(2):
                        truncated = True
                        break
                    batch = self._batch(cfg.batch, gen)
                    d = pstorm_direction(self._grad(z, y, beta, batch), self._grad(z_prev, y, beta, batch), d, theta)
            if cfg.output == "random":
                z = iterates[int(torch.randint(0, len(iterates), (1,), generator=gen))]
            if cfg.post_batch != 0:
                g = self._grad(z, y, beta, self._batch(cfg.post_batch, gen))
                z = self._prox_step(z, g, eta, beta)
            # Dual step with a fresh constraint estimate at z^{k+1}.
            if p.m:
                x, s = self._split(z)
                c_est = self._ctilde(p.c_values(x, [self._draw(n, cfg.dual_batch, gen) for n in p.n_c]), s)
                norm = float(torch.linalg.vector_norm(c_est))
                if c1_norm is None:
                    c1_norm = norm
                gamma_k = cfg.gamma0 * math.log(2) ** 2 * c1_norm / ((k + 1) * math.log(k + 2) ** 2)
                w = min(beta, gamma_k / norm) if norm > 0 else 0.0
                y_bar = y + beta * c_est
                y = y + w * c_est
            objective, res = self._metrics(z, y_bar)
            if not math.isfinite(objective):
                raise DivergenceError(f"non-finite objective at outer step {k} (β = {beta:g}); lower lr_scale or sigma")
            record = {
                "k": k, "oracle_calls": p.counter.total, "data_passes": p.counter.total / n_total,
                "objective": objective, "violation": res.violation, "stationarity": res.stationarity,
                "complementarity": res.complementarity, "kkt": res.kkt, "beta": beta, "inner_iters": t_done,
                "eta": eta, "wall_s": wall0 + time.perf_counter() - t_start,
            }  # fmt: skip
            history.append(record)
            if callback is not None:
                callback(record)
            beta *= cfg.sigma
            if bar is not None:
                bar.update(1)
                bar.set_postfix(kkt=f"{res.kkt:.2e}", calls=p.counter.total)
            # A step the budget cut short is not saved: the checkpoint stays at the last whole step, so a resume
            # with a larger budget redoes this one in full and equals a solve that had that budget from the start.
            if path is not None and not truncated:
                state = {
                    "z": z, "y": y, "y_bar": y_bar, "beta": beta, "k": k + 1, "c1_norm": c1_norm,
                    "history": history, "wall": record["wall_s"], "rng": gen.get_state(),
                    "counter": p.counter.state(), "config": dataclasses.asdict(cfg), "dim": p.dim, "m": p.m,
                }  # fmt: skip
                save_checkpoint(state, path)
            if res.kkt <= cfg.tol:
                status = "tol"
                break
        else:
            status = "max_outer"
        if bar is not None:
            bar.close()
        if status == "max_outer" and over_budget(1):
            status = "budget"
        x, _ = self._split(z)
        return SolveResult(x=x.clone(), multipliers=y_bar.clone(), history=history, status=status)
