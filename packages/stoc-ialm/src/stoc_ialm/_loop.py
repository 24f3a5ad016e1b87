"""The shell every baseline shares: hyperparameter checks, the common loop config and the outer loop.

:class:`_Baseline` takes a :class:`~stoc_ialm.problem.Problem` and a frozen config, and its
``solve(x0=None, *, checkpoint=None, resume=False, progress=False, callback=None)`` returns the
:class:`~stoc_ialm.ialm.SolveResult` of :class:`~stoc_ialm.ialm.StocIALM`, with one history record per
"outer" step (``k, oracle_calls, data_passes, objective, violation, stationarity, complementarity, kkt,
inner_iters, eta, wall_s`` and method extras). All oracle calls go through the problem's counted
``f_grad``, ``c_values`` and ``c_jacobian``; the metrics (:func:`~stoc_ialm.kkt.kkt_residual` at the
method's own multiplier estimate) are free. Minibatches are drawn uniformly with replacement
(``batch=None``: the full data, deterministic). Subclasses implement one outer step: the solvers of
:mod:`stoc_ialm.baselines`, :mod:`stoc_ialm.conex` and :mod:`stoc_ialm.cooper_adapter`.

:class:`StochasticGDAConfig` is defined here, not beside ``StochasticGDA``, because the cooper adapter's
config extends it: this keeps the imports acyclic (``_loop`` imports no baseline module).
:mod:`stoc_ialm.baselines` re-exports it.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from stoc_ialm.ialm import _RESUME_FREE, DivergenceError, SolveResult, load_checkpoint, save_checkpoint
from stoc_ialm.kkt import kkt_residual
from stoc_ialm.problem import Problem

State = dict[str, Tensor]


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
            saved = load_checkpoint(path)
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
            # As in StocIALM.solve: a step the budget ended is not saved, so a resume with a larger budget redoes
            # it in full (a step that ended just at the budget is redone identically with the same budget).
            if path is not None and not self._spent():
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
