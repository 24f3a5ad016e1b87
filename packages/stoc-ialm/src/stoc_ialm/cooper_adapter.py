"""An adapter that solves a :class:`~stoc_ialm.problem.Problem` with cooper (``cooper-optim``).

:class:`CooperSolver` (config :class:`CooperConfig`) hands cooper a ``ConstrainedMinimizationProblem``
built on our counted minibatch oracles, through cooper's ``Lagrangian`` or ``AugmentedLagrangian`` with
its simultaneous or alternating primal-dual optimizer; the primal optimizer is :class:`_ProxSGD`
(SGD followed by the proximal step of ``h``). cooper is optional (the ``[cooper]`` extra) and imported
only at :meth:`CooperSolver.solve`. The outer loop, records, budget and checkpoints are the shared shell
of :mod:`stoc_ialm._loop`; :mod:`stoc_ialm.baselines` re-exports both public names.

References:
    J. Gallego-Posada et al., "Cooper: a library for constrained optimization in deep learning" (cooper-optim).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from stoc_ialm._loop import State, StochasticGDAConfig, _Baseline, _choice, _number
from stoc_ialm.problem import Problem
from stoc_ialm.prox import Regularizer
from stoc_ialm.pstorm import prox_gradient_step

__all__ = ["CooperConfig", "CooperSolver"]


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
    ``formulation="lagrangian"`` and the simultaneous optimizer this is
    :class:`~stoc_ialm.baselines.StochasticGDA`, iterate for iterate; ``"augmented_lagrangian"`` adds
    cooper's ``(ρ/2)‖c‖²`` (max-form for inequalities) to the primal Lagrangian. The primal optimizer is
    SGD followed by ``prox_{ηh}``; the dual one is SGD with ``maximize=True`` (then cooper clips
    inequality multipliers at 0). The KKT report uses cooper's multipliers.

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
