"""KKT residuals of an expectation-constrained problem at a point and a multiplier (full data, not counted).

For ``min f(x) + h(x) s.t. c_i(x) = 0 (eq) or c_i(x) ≤ 0 (ineq)`` and a multiplier ``ȳ`` the
residuals are (Li et al. 2024, the ε-KKT point of Definition 2.1 [R]):

.. math::
    \\text{stationarity} = \\operatorname{dist}\\big(0, \\nabla f(x) + J_c(x)^T \\bar y_+ + \\partial h(x)\\big), \\qquad
    \\text{violation} = \\lVert [c(x)] \\rVert, \\qquad
    \\text{complementarity} = \\lVert (\\bar y_i c_i(x))_{i \\in \\text{ineq}} \\rVert

where ``[c]`` keeps ``c_i`` for equalities and ``max(c_i, 0)`` for inequalities, and ``ȳ_+`` clips the
multipliers of inequalities at 0 (a negative multiplier of an inequality is never optimal). The solver
passes the effective multiplier ``ȳ = y^k + β_k c̃(x^{k+1})`` (not ``y^{k+1}``), as the paper does.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from stoc_ialm.problem import Problem


@dataclasses.dataclass(frozen=True)
class KKTResidual:
    """The three KKT residuals and their maximum."""

    stationarity: float
    """``dist(0, ∇f + J^T ȳ_+ + ∂h(x))`` (exact for the regularizers with a closed form, else the gradient mapping)."""
    violation: float
    """``‖[c(x)]‖``."""
    complementarity: float
    """``‖ȳ_i c_i(x)‖`` over the inequalities (0 without inequalities)."""

    @property
    def kkt(self) -> float:
        """``max(stationarity, violation, complementarity)``."""
        return max(self.stationarity, self.violation, self.complementarity)


def clip_multipliers(problem: Problem, y: Tensor) -> Tensor:
    """``ȳ_+``: multipliers of inequalities clipped at 0, equalities unchanged."""
    ineq = torch.tensor([k == "ineq" for k in problem.kinds])
    return torch.where(ineq, y.clamp_min(0.0), y)


def kkt_residual(problem: Problem, x: Tensor, y: Tensor) -> KKTResidual:
    """KKT residuals of ``problem`` at ``x`` with multiplier ``y`` on the full data (no oracle is counted).

    Args:
        problem: the problem.
        x: point ``(dim,)``.
        y: multiplier ``(m,)``.

    Returns:
        A :class:`KKTResidual`.

    Raises:
        ValueError: if ``x`` or ``y`` has the wrong shape.
    """
    if x.shape != (problem.dim,):
        raise ValueError(f"x must have shape ({problem.dim},), got {tuple(x.shape)}")
    if y.shape != (problem.m,):
        raise ValueError(f"y must have shape ({problem.m},), got {tuple(y.shape)}")
    y_plus = clip_multipliers(problem, y.to(x.dtype))
    _, grad_f = problem.full_f(x, grad=True)
    c, jac = problem.full_c(x, grad=True)
    assert grad_f is not None
    assert jac is not None
    g = grad_f + jac.T @ y_plus if problem.m else grad_f
    stationarity = float(problem.regularizer.stationarity(x, g))
    violation = float(torch.linalg.vector_norm(problem.violation_vector(c)))
    ineq = [i for i, k in enumerate(problem.kinds) if k == "ineq"]
    comp = float(torch.linalg.vector_norm(y_plus[ineq] * c[ineq])) if ineq else 0.0
    return KKTResidual(stationarity, violation, comp)
