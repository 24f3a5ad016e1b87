"""Expectation-constrained problems as counted stochastic oracles over a flat parameter vector.

The problem class of the paper (Li, Chen, Liu, Lu, Xu 2024, eq. (1.1)):

.. math::
    \\min_x\\; F(x) = f(x) + h(x), \\quad f(x) = \\mathbb{E}_\\xi[f(x;\\xi)], \\qquad
    \\text{s.t.}\\; c_i(x) = \\mathbb{E}_{\\zeta_i}[C_i(x;\\zeta_i)] = 0 \\text{ (or } \\le 0), \\; i = 1..m

with ``f`` and every ``c_i`` finite sums over their own data (``n_f`` and ``n_c[i]`` samples) and ``h``
closed convex with an easy proximal operator (:mod:`stoc_ialm.prox`). A :class:`Problem` gives
minibatch estimates of ``f``, ``∇f``, ``c`` and its Jacobian, and counts every sample it touches in an
:class:`OracleCounter` (the paper's complexity measure); full-data evaluations for metrics are free.

Subclasses implement four uncounted primitives (:meth:`Problem._f`, :meth:`Problem._c`) and inherit the
counted API; ``x`` is always a 1-D float64 tensor of length :attr:`Problem.dim`.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from stoc_ialm.prox import Regularizer, Zero

Kind = Literal["eq", "ineq"]


@dataclasses.dataclass
class OracleCounter:
    """Per-sample oracle calls, the paper's cost measure.

    ``f_grad``: samples at which ``∇f(x; ξ)`` was evaluated (with its value); ``c_grad[i]``: samples at
    which ``∇C_i(x; ζ)`` (a Jacobian row, with its value) was evaluated; ``c_value[i]``: samples at which
    ``C_i(x; ζ)`` alone was evaluated.
    """

    f_grad: int = 0
    c_grad: list[int] = dataclasses.field(default_factory=list)
    c_value: list[int] = dataclasses.field(default_factory=list)

    @property
    def total(self) -> int:
        """All oracle calls: gradient and value calls of ``f`` and of every ``c_i``."""
        return self.f_grad + sum(self.c_grad) + sum(self.c_value)

    def state(self) -> dict[str, object]:
        """A JSON-able copy (for checkpoints and histories)."""
        return {"f_grad": self.f_grad, "c_grad": list(self.c_grad), "c_value": list(self.c_value)}

    def load(self, state: dict[str, object]) -> None:
        """Restore a :meth:`state` copy."""
        self.f_grad = int(state["f_grad"])  # type: ignore[call-overload]
        self.c_grad = [int(v) for v in state["c_grad"]]  # type: ignore[attr-defined]
        self.c_value = [int(v) for v in state["c_value"]]  # type: ignore[attr-defined]


class Problem(abc.ABC):
    """An expectation-constrained problem over ``x ∈ R^dim`` with counted minibatch oracles.

    Attributes:
        dim: length of ``x``.
        kinds: ``"eq"`` or ``"ineq"`` (``c_i(x) ≤ 0``) per constraint; ``m = len(kinds)``.
        n_f: number of samples of the objective's finite sum.
        n_c: number of samples of each constraint's finite sum.
        regularizer: ``h`` (default :class:`~stoc_ialm.prox.Zero`).
        names: a name per constraint (for reports).
        counter: the :class:`OracleCounter` every counted call adds to.
    """

    def __init__(
        self,
        dim: int,
        kinds: Sequence[Kind],
        n_f: int,
        n_c: Sequence[int],
        *,
        regularizer: Regularizer | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
        kinds = tuple(kinds)
        for i, kind in enumerate(kinds):
            if kind not in ("eq", "ineq"):
                raise ValueError(f"kinds[{i}] must be 'eq' or 'ineq', got {kind!r}")
        if len(n_c) != len(kinds):
            raise ValueError(f"n_c must have one size per constraint ({len(kinds)}), got {len(n_c)}")
        for name, n in [("n_f", n_f), *((f"n_c[{i}]", v) for i, v in enumerate(n_c))]:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"{name} must be an integer >= 1 (a sampler with no data?), got {n!r}")
        self.dim = dim
        self.kinds: tuple[Kind, ...] = kinds
        self.n_f = n_f
        self.n_c = tuple(int(v) for v in n_c)
        if regularizer is not None and not isinstance(regularizer, Regularizer):
            raise ValueError(
                f"regularizer must be a stoc_ialm.prox.Regularizer or None, got {type(regularizer).__name__}"
            )
        self.regularizer: Regularizer = regularizer if regularizer is not None else Zero()
        try:  # now, not at the first prox step of a solve
            self.regularizer._check_size(torch.zeros(dim, dtype=torch.float64))
        except ValueError as err:
            raise ValueError(f"regularizer does not fit dim = {dim}: {err}") from None
        self.names = tuple(names) if names is not None else tuple(f"c{i}" for i in range(len(kinds)))
        if len(self.names) != len(kinds):
            raise ValueError(f"names must have one entry per constraint ({len(kinds)}), got {len(self.names)}")
        self.counter = OracleCounter(0, [0] * len(kinds), [0] * len(kinds))

    @property
    def m(self) -> int:
        """Number of constraints."""
        return len(self.kinds)

    # -- primitives a subclass implements (uncounted) -----------------------------------------
    @abc.abstractmethod
    def _f(self, x: Tensor, idx: Tensor | None, grad: bool) -> tuple[Tensor, Tensor | None]:
        """Mean of ``f(x; ξ_j)`` over samples ``idx`` (all when None) and, if ``grad``, its gradient ``(dim,)``."""

    @abc.abstractmethod
    def _c(self, i: int, x: Tensor, idx: Tensor | None, grad: bool) -> tuple[Tensor, Tensor | None]:
        """Mean of ``C_i(x; ζ_j)`` over samples ``idx`` (all when None) and, if ``grad``, its gradient ``(dim,)``."""

    # -- counted minibatch oracles --------------------------------------------------------------
    def f_grad(self, x: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Minibatch value and gradient of ``f``; costs ``len(idx)`` gradient calls."""
        value, g = self._f(x, idx, True)
        assert g is not None
        self.counter.f_grad += int(idx.numel())
        return value, g

    def c_values(self, x: Tensor, idxs: Sequence[Tensor]) -> Tensor:
        """Minibatch values ``(m,)`` of every constraint, ``idxs[i]`` for constraint ``i``; counted as value calls."""
        out = torch.empty(self.m, dtype=x.dtype)
        for i, idx in enumerate(idxs):
            out[i] = self._c(i, x, idx, False)[0]
            self.counter.c_value[i] += int(idx.numel())
        return out

    def c_jacobian(self, x: Tensor, idxs: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Minibatch values ``(m,)`` and Jacobian ``(m, dim)``; counted as gradient calls."""
        values = torch.empty(self.m, dtype=x.dtype)
        jac = torch.empty(self.m, self.dim, dtype=x.dtype)
        for i, idx in enumerate(idxs):
            v, g = self._c(i, x, idx, True)
            assert g is not None
            values[i], jac[i] = v, g
            self.counter.c_grad[i] += int(idx.numel())
        return values, jac

    # -- full-data evaluations (free: metrics, not part of the algorithm) -----------------------
    def full_f(self, x: Tensor, grad: bool = False) -> tuple[Tensor, Tensor | None]:
        """``f(x)`` over all samples (and ``∇f(x)``); not counted."""
        return self._f(x, None, grad)

    def full_c(self, x: Tensor, grad: bool = False) -> tuple[Tensor, Tensor | None]:
        """``c(x)`` ``(m,)`` over all samples (and the Jacobian ``(m, dim)``); not counted."""
        values = torch.empty(self.m, dtype=x.dtype)
        jac = torch.empty(self.m, self.dim, dtype=x.dtype) if grad else None
        for i in range(self.m):
            v, g = self._c(i, x, None, grad)
            values[i] = v
            if jac is not None:
                assert g is not None
                jac[i] = g
        return values, jac

    def objective(self, x: Tensor) -> float:
        """``F(x) = f(x) + h(x)`` over all samples; not counted."""
        return float(self._f(x, None, False)[0]) + float(self.regularizer.value(x))

    def violation(self, x: Tensor) -> float:
        """``‖[c(x)]‖``: the Euclidean norm of ``c_i`` for equalities and ``max(c_i, 0)`` for inequalities."""
        c = self.full_c(x)[0]
        return float(torch.linalg.vector_norm(self.violation_vector(c)))

    def violation_vector(self, c: Tensor) -> Tensor:
        """Per-constraint violation of values ``c``: ``c_i`` (eq) or ``max(c_i, 0)`` (ineq)."""
        ineq = torch.tensor([k == "ineq" for k in self.kinds])
        return torch.where(ineq, c.clamp_min(0.0), c)
