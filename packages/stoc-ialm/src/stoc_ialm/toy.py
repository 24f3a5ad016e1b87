"""Small problems with known solutions, for tests, examples and sanity checks of a solver.

:class:`QuadraticProblem` is a quadratic objective with linear constraints whose samples carry
zero-mean noise, so that minibatch oracles are noisy while the full-data problem (and its KKT point)
is exact:

.. math::
    f(x; \\xi_j) = \\lVert x - x_c \\rVert^2 + \\xi_j^T x, \\qquad
    C_i(x; \\zeta_{ij}) = a_i^T x - b_i + \\zeta_{ij}^T x, \\qquad \\textstyle\\sum_j \\xi_j = \\sum_j \\zeta_{ij} = 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from stoc_ialm.problem import Kind, Problem
from stoc_ialm.prox import Regularizer


class QuadraticProblem(Problem):
    """``min ‖x − center‖² + h(x)`` s.t. ``a_i^T x − b_i = 0`` or ``≤ 0``, with zero-mean sample noise.

    Args:
        center: ``x_c`` (length ``d``).
        a: constraint rows ``(m, d)``.
        b: right-hand sides ``(m,)``.
        kinds: ``"eq"`` / ``"ineq"`` per constraint.
        n: samples per finite sum.
        noise: standard deviation of the per-sample linear noise (0: deterministic oracles).
        regularizer: ``h``.
        seed: seed of the noise.

    Example:
        >>> prob = QuadraticProblem(center=[0.0], a=[[1.0]], b=[1.0], kinds=["eq"])  # min x^2 s.t. x = 1
        >>> (
        ...     prob.objective(torch.tensor([1.0], dtype=torch.float64)),
        ...     prob.violation(torch.tensor([1.0], dtype=torch.float64)),
        ... )
        (1.0, 0.0)
    """

    def __init__(
        self,
        center: Sequence[float],
        a: Sequence[Sequence[float]],
        b: Sequence[float],
        kinds: Sequence[Kind],
        *,
        n: int = 8,
        noise: float = 0.0,
        regularizer: Regularizer | None = None,
        seed: int = 0,
    ) -> None:
        self.center = torch.as_tensor(center, dtype=torch.float64).reshape(-1)
        d = self.center.numel()
        self.a = torch.as_tensor(a, dtype=torch.float64).reshape(-1, d) if len(kinds) else torch.zeros(0, d)
        self.b = torch.as_tensor(b, dtype=torch.float64).reshape(-1)
        if self.a.shape[0] != len(kinds) or self.b.numel() != len(kinds):
            raise ValueError(f"a and b must have one row per constraint ({len(kinds)}), got {tuple(self.a.shape)}, "
                             f"{self.b.numel()}")  # fmt: skip
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        super().__init__(d, kinds, n, [n] * len(kinds), regularizer=regularizer)
        gen = torch.Generator().manual_seed(seed)

        def centred(rows: int) -> Tensor:
            e = noise * torch.randn(rows, d, generator=gen, dtype=torch.float64)
            return e - e.mean(0)

        self.xi = centred(n)
        self.zeta = [centred(n) for _ in kinds]

    def _f(self, x: Tensor, idx: Tensor | None, grad: bool) -> tuple[Tensor, Tensor | None]:
        xi = self.xi.mean(0) if idx is None else self.xi[idx].mean(0)
        value = (x - self.center).square().sum() + xi @ x
        return value, (2 * (x - self.center) + xi) if grad else None

    def _c(self, i: int, x: Tensor, idx: Tensor | None, grad: bool) -> tuple[Tensor, Tensor | None]:
        zeta = self.zeta[i].mean(0) if idx is None else self.zeta[i][idx].mean(0)
        row = self.a[i] + zeta
        return row @ x - self.b[i], row if grad else None
