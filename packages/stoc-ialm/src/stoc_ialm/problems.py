"""Concrete constrained learning problems: Neyman-Pearson and demographic-parity classification, and any torch model.

The linear problems (:class:`NeymanPearson`, :class:`FairnessDP`) score a sample ``a_j`` (a row of
:attr:`Dataset.X <stoc_ialm.datasets.Dataset.X>`, bias column included) by ``z_j = a_j^T x`` and give
every value and gradient in closed form, with no autograd: for a per-sample function ``ℓ(z)``,

.. math::
    \\frac{1}{|B|}\\sum_{j \\in B} \\ell(a_j^T x), \\qquad
    \\nabla = \\frac{1}{|B|} A_B^T \\big(\\ell'(a_j^T x)\\big)_{j \\in B}.

The two surrogate losses of a label ``y`` with sign ``t = 2y − 1`` are (σ the logistic sigmoid)

.. math::
    \\ell_{\\text{sigmoid}}(z) = \\sigma(-t z), \\qquad \\ell_{\\text{logistic}}(z) = \\log(1 + e^{-t z}),

a smooth nonconvex surrogate of the 0/1 error and the convex logistic loss.

:class:`TorchModelProblem` is the generic path: ``x`` is the flat vector of a float64 ``torch.nn.Module``'s
parameters and values and gradients come from autograd.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from stoc_ialm.datasets import Dataset
from stoc_ialm.problem import Kind, Problem
from stoc_ialm.prox import L1, Regularizer, Sum, Zero

Loss = Literal["sigmoid", "logistic"]
LOSSES: tuple[Loss, ...] = ("sigmoid", "logistic")
PerSample = Callable[[Tensor, Tensor | None], tuple[Tensor, Tensor]]
"""``(z, idx) -> (values, slopes)``: per-sample ``ℓ_j(z_j)`` and ``ℓ_j'(z_j)`` of the samples ``idx`` (all if None)."""


def margin_loss(z: Tensor, t: Tensor | float, loss: Loss) -> tuple[Tensor, Tensor]:
    """Per-sample surrogate loss of scores ``z`` for label signs ``t = ±1`` and its derivative in ``z``.

    .. math::
        \\text{sigmoid: } \\ell = \\sigma(-tz),\\; \\ell' = -t\\,\\sigma(tz)\\sigma(-tz); \\qquad
        \\text{logistic: } \\ell = \\log(1 + e^{-tz}),\\; \\ell' = -t\\,\\sigma(-tz).

    Args:
        z: scores ``(B,)``.
        t: ``+1`` (label 1) or ``−1`` (label 0), a scalar or ``(B,)``.
        loss: ``"sigmoid"`` or ``"logistic"``.

    Returns:
        ``(values, slopes)``, both ``(B,)``.

    Example:
        >>> v, s = margin_loss(torch.zeros(1, dtype=torch.float64), 1.0, "sigmoid")
        >>> v.item(), s.item()
        (0.5, -0.25)
    """
    u = t * z
    if loss == "sigmoid":
        value = torch.sigmoid(-u)
        return value, -t * torch.sigmoid(u) * value
    if loss == "logistic":  # log(1 + e^{-u}) = max(-u, 0) + log1p(e^{-|u|}), exact (torch's softplus cuts off at 20)
        return torch.clamp(-u, min=0.0) + torch.log1p(torch.exp(-u.abs())), -t * torch.sigmoid(-u)
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


def _check_loss(loss: str) -> Loss:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return loss


def _check_l1(l1: float, dim: int, penalize_bias: bool) -> Regularizer:
    """``λ₁‖x‖₁`` (bias included), or over all but the last coordinate (the bias), or ``Zero`` for ``λ₁ = 0``."""
    if not l1 >= 0.0:
        raise ValueError(f"l1 must be >= 0, got {l1!r}")
    if l1 == 0:
        return Zero()
    if penalize_bias or dim == 1:
        return L1(float(l1))
    return Sum([(slice(0, dim - 1), L1(float(l1)))])


class LinearProblem(Problem):
    """A :class:`Problem` whose finite sums are per-sample functions of linear scores ``z_j = a_j^T x``.

    Sum ``0`` is the objective ``f``, sum ``i + 1`` is constraint ``c_i``; each is a design matrix
    ``A_k`` ``(n_k, dim)`` and a :data:`PerSample` function giving ``ℓ_j(z_j)`` and ``ℓ_j'(z_j)``. Values
    are means over the samples ``idx`` and gradients ``A_B^T ℓ'(z_B) / |B|`` (closed form).

    Raises:
        ValueError: an empty design matrix, or ``idx`` empty at evaluation.
    """

    def __init__(
        self,
        sums: Sequence[tuple[Tensor, PerSample]],
        kinds: Sequence[Kind],
        *,
        regularizer: Regularizer | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        if len(sums) != len(kinds) + 1:
            raise ValueError(f"sums must hold the objective and one entry per constraint ({len(kinds) + 1}), "
                             f"got {len(sums)}")  # fmt: skip
        dim = int(sums[0][0].shape[1])
        for k, (a, _) in enumerate(sums):
            if a.ndim != 2 or a.shape[1] != dim or a.shape[0] == 0:
                raise ValueError(f"sums[{k}] must have a non-empty (n, {dim}) design matrix, got {tuple(a.shape)}")
        super().__init__(
            dim,
            kinds,
            int(sums[0][0].shape[0]),
            [int(a.shape[0]) for a, _ in sums[1:]],
            regularizer=regularizer,
            names=names,
        )
        self._sums = list(sums)

    def _mean(self, k: int, x: Tensor, idx: Tensor | None, grad: bool) -> tuple[Tensor, Tensor | None]:
        a, per_sample = self._sums[k]
        if idx is not None:
            if idx.numel() == 0:
                raise ValueError("idx must hold at least one sample index, got an empty tensor")
            a = a[idx]
        values, slopes = per_sample(a @ x, idx)  # (B,), (B,)
        return values.mean(), (a.T @ slopes) / a.shape[0] if grad else None

    def _f(self, x: Tensor, idx: Tensor | None, grad: bool) -> tuple[Tensor, Tensor | None]:
        return self._mean(0, x, idx, grad)

    def _c(self, i: int, x: Tensor, idx: Tensor | None, grad: bool) -> tuple[Tensor, Tensor | None]:
        return self._mean(i + 1, x, idx, grad)

    def initial_point(self) -> Tensor:
        """``x = 0`` ``(dim,)`` float64 (every score 0)."""
        return torch.zeros(self.dim, dtype=torch.float64)


class NeymanPearson(LinearProblem):
    """Neyman-Pearson classification: the smallest miss rate on positives at a false-alarm rate ``≤ α``.

    With positives ``P``, negatives ``N`` and scores ``z = a^T x`` (the spec's workload B1):

    .. math::
        \\min_x\\; \\frac{1}{|P|}\\sum_{j\\in P} \\ell(a_j^T x; y=1) + \\lambda_1 \\lVert x \\rVert_1
        \\quad \\text{s.t.}\\quad c(x) = \\frac{1}{|N|}\\sum_{j\\in N} \\ell(a_j^T x; y=0) - \\alpha \\le 0

    with ``ℓ`` the sigmoid (``σ(−z)`` / ``σ(z)``, nonconvex) or the logistic loss. The objective's
    samples are the positives (``n_f = |P|``, ``idx`` indexes them in data order), the constraint's are
    the negatives (``n_c = [|N|]``).

    Args:
        data: a :class:`~stoc_ialm.datasets.Dataset` with both classes.
        alpha: ``α`` in (0, 1), the bound on the surrogate false-positive rate (spec: 0.2 on Adult).
        loss: ``"sigmoid"`` (spec default) or ``"logistic"``.
        l1: ``λ₁ >= 0`` (spec: 1e-3); 0 gives no regularizer.
        penalize_bias: L1 on every coordinate (True, default) or on all but the bias (the last column):
            ``Sum([(slice(0, d − 1), L1(λ₁))])``.

    Note:
        By default the L1 penalty covers the bias too: this is ``‖x‖₁`` as the spec writes it, and it is
        what gives the spec's SLSQP reference F* = 0.224587 on Adult (α = 0.2, λ₁ = 1e-3; measured
        0.2245866 here; leaving the bias out gives 0.2178621).

    Example:
        >>> from stoc_ialm.datasets import load
        >>> prob = NeymanPearson(load("wine"), alpha=0.2)
        >>> prob.n_f, prob.n_c, prob.objective(prob.initial_point())
        (59, (119,), 0.5)
    """

    def __init__(
        self, data: Dataset, alpha: float = 0.2, loss: Loss = "sigmoid", l1: float = 1e-3, *, penalize_bias: bool = True
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        self.loss = _check_loss(loss)
        self.alpha = float(alpha)
        self.data = data
        pos, neg = data.X[data.y == 1], data.X[data.y == 0]
        if pos.shape[0] == 0 or neg.shape[0] == 0:
            raise ValueError(f"data must hold both classes, got {pos.shape[0]} positives and {neg.shape[0]} negatives")
        super().__init__(
            [(pos, self._positive), (neg, self._negative)],
            ["ineq"],
            regularizer=_check_l1(l1, data.d, penalize_bias),
            names=["false_positive_rate"],
        )

    def _positive(self, z: Tensor, idx: Tensor | None) -> tuple[Tensor, Tensor]:
        return margin_loss(z, 1.0, self.loss)

    def _negative(self, z: Tensor, idx: Tensor | None) -> tuple[Tensor, Tensor]:
        values, slopes = margin_loss(z, -1.0, self.loss)
        return values - self.alpha, slopes

    def metrics(self, x: Tensor) -> dict[str, float]:
        """0/1 error rates of the classifier ``z > 0`` on the full data: false-positive and false-negative rate."""
        pos, neg = self._sums[0][0], self._sums[1][0]
        return {"fpr": float((neg @ x > 0).double().mean()), "fnr": float((pos @ x <= 0).double().mean())}


class FairnessDP(LinearProblem):
    """Classification under demographic parity: ``|mean σ(z) on group 1 − mean σ(z) on group 0| ≤ κ``.

    With ``n`` samples, groups ``G₁`` (``group == 1``) and ``G₀`` and sigmoid scores ``σ(a^T x)`` (the
    spec's workload B2), the gap is split into two smooth inequalities:

    .. math::
        \\min_x \\frac{1}{n}\\sum_j \\ell(a_j^T x; y_j) + \\lambda_1\\lVert x\\rVert_1 \\quad\\text{s.t.}\\quad
        c_{1,2}(x) = \\pm\\Big(\\frac{1}{|G_1|}\\sum_{j\\in G_1}\\sigma(a_j^Tx) -
        \\frac{1}{|G_0|}\\sum_{j\\in G_0}\\sigma(a_j^Tx)\\Big) - \\kappa \\le 0.

    **Unbiased minibatches of a difference of group means.** Each constraint is written as one mean over
    all ``n`` samples with the importance weights ``s_j = n/|G₁|`` on ``G₁`` and ``s_j = −n/|G₀|`` on ``G₀``:
    ``c_1(x) = (1/n) Σ_j (s_j σ(a_j^T x) − κ)``, exactly the gap minus κ. A uniform minibatch of these
    samples is an unbiased estimate, and each sample touches one data point, so it costs one oracle
    call (``n_c = [n, n]``; ``n_f = n``).

    Args:
        data: a :class:`~stoc_ialm.datasets.Dataset` with a ``group`` and both groups non-empty.
        kappa: ``κ >= 0`` (spec: 0.05).
        loss: objective loss, ``"logistic"`` (spec default) or ``"sigmoid"``.
        l1: ``λ₁ >= 0`` (default 0: no regularizer).
        penalize_bias: L1 on every coordinate (True) or on all but the bias (the last column).

    Note:
        The importance-weighted estimate is unbiased for any uniform minibatch, but a batch that happens to
        be unbalanced between the groups has more variance than sampling each group separately would; it
        keeps one index set per constraint, which is what :class:`~stoc_ialm.problem.Problem` offers.

    Example:
        >>> from stoc_ialm.datasets import synthetic
        >>> prob = FairnessDP(synthetic(n=200, d=3), kappa=0.05)
        >>> prob.n_c, [round(float(v), 6) for v in prob.full_c(prob.initial_point())[0]]
        ((200, 200), [-0.05, -0.05])
    """

    def __init__(
        self,
        data: Dataset,
        kappa: float = 0.05,
        loss: Loss = "logistic",
        l1: float = 0.0,
        *,
        penalize_bias: bool = True,
    ) -> None:
        if not kappa >= 0.0:
            raise ValueError(f"kappa must be >= 0, got {kappa!r}")
        self.loss = _check_loss(loss)
        self.kappa = float(kappa)
        self.data = data
        if data.group is None:
            raise ValueError(f"data.group is None: FairnessDP needs a sensitive attribute ({data.name!r} has none)")
        n1 = int(data.group.sum())
        n0 = data.n - n1
        if n1 == 0 or n0 == 0:
            raise ValueError(f"group must have samples in both groups, got {n1} with group 1 and {n0} with group 0")
        self.signs = 2.0 * data.y.to(torch.float64) - 1.0  # t_j = ±1
        self.weights = torch.full((data.n,), -data.n / n0, dtype=torch.float64)  # s_j
        self.weights[data.group == 1] = data.n / n1
        super().__init__(
            [(data.X, self._loss), (data.X, self._gap_upper), (data.X, self._gap_lower)],
            ["ineq", "ineq"],
            regularizer=_check_l1(l1, data.d, penalize_bias),
            names=["dp_gap_upper", "dp_gap_lower"],
        )

    def _loss(self, z: Tensor, idx: Tensor | None) -> tuple[Tensor, Tensor]:
        return margin_loss(z, self.signs if idx is None else self.signs[idx], self.loss)

    def _gap(self, z: Tensor, idx: Tensor | None, sign: float) -> tuple[Tensor, Tensor]:
        w = sign * (self.weights if idx is None else self.weights[idx])
        s = torch.sigmoid(z)
        return w * s - self.kappa, w * s * (1.0 - s)

    def _gap_upper(self, z: Tensor, idx: Tensor | None) -> tuple[Tensor, Tensor]:
        return self._gap(z, idx, 1.0)

    def _gap_lower(self, z: Tensor, idx: Tensor | None) -> tuple[Tensor, Tensor]:
        return self._gap(z, idx, -1.0)

    def metrics(self, x: Tensor) -> dict[str, float]:
        """Full-data accuracy of ``z > 0`` and the DP gaps (group 1 − group 0) of sigmoid scores and of predictions."""
        assert self.data.group is not None
        z = self.data.X @ x
        g1 = self.data.group == 1
        s, pred = torch.sigmoid(z), (z > 0).double()
        return {
            "accuracy": float((pred == self.data.y).double().mean()),
            "dp_gap_score": float(s[g1].mean() - s[~g1].mean()),
            "dp_gap_pred": float(pred[g1].mean() - pred[~g1].mean()),
        }


SampleFn = Callable[..., Tensor]
"""``fn(model, *batch) -> (B,)`` per-sample values; ``batch`` the data tensors indexed by the minibatch."""


def _as_tuple(data: Tensor | Sequence[Tensor], what: str) -> tuple[Tensor, ...]:
    tensors = (data,) if isinstance(data, Tensor) else tuple(data)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise ValueError(f"{what} must be a tensor or a non-empty tuple of tensors")
    n = tensors[0].shape[0] if tensors[0].ndim else 0
    for t in tensors:
        if t.ndim == 0 or t.shape[0] != n:
            raise ValueError(f"{what} tensors must share their first dimension (samples), got "
                             f"{[tuple(t.shape) for t in tensors]}")  # fmt: skip
    if n == 0:
        raise ValueError(f"{what} holds no samples")
    return tensors


@dataclasses.dataclass(frozen=True)
class Constraint:
    """One expectation constraint of a :class:`TorchModelProblem`: ``E[fn(model, sample)] <= 0`` or ``= 0``.

    Attributes:
        fn: ``fn(model, *batch) -> (B,)`` per-sample values of ``c_i``; the solver averages them.
        data: the samples of this constraint (a tensor or tuple of tensors, first dimension ``n_i``); None:
            the objective's data.
        kind: ``"ineq"`` (``c_i <= 0``, default) or ``"eq"``.
        name: shown in reports (default ``c<i>``).

    Example:
        >>> Constraint(lambda m, a: torch.sigmoid(m(a)[:, 0]) - 0.2, kind="ineq", name="type_I").kind
        'ineq'
    """

    fn: SampleFn
    data: Tensor | Sequence[Tensor] | None = None
    kind: Kind = "ineq"
    name: str | None = None

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ValueError(f"Constraint fn must be callable, got {type(self.fn).__name__}")
        if self.kind not in ("eq", "ineq"):
            raise ValueError(f"Constraint kind must be 'eq' or 'ineq', got {self.kind!r}")


class TorchModelProblem(Problem):
    """Any float64 ``torch.nn.Module`` as a :class:`Problem` over its flattened parameters (autograd oracles).

    ``x`` is ``torch.nn.utils.parameters_to_vector`` of the model's trainable parameters, in
    ``model.parameters()`` order. An oracle writes ``x`` into the model (a copy, no aliasing), evaluates
    the per-sample values of ``objective_fn`` or ``constraint_fns[i]`` on the indexed rows of the data
    tensors, averages them and differentiates the mean with ``torch.autograd.grad``:

    .. math::
        f(x; B) = \\frac{1}{|B|}\\sum_{j\\in B} \\text{objective\\_fn}(\\text{model}_x, \\text{data}_j), \\qquad
        c_i(x; B) = \\frac{1}{|B|}\\sum_{j\\in B} \\text{constraint\\_fns}[i](\\text{model}_x, \\text{data}_j).

    Args:
        model: the model; every trainable parameter must be float64. Its parameters are overwritten by
            each oracle call (use :meth:`to_model` to set them to a solution).
        objective_fn: ``fn(model, *batch) -> (B,)`` per-sample objective values.
        objective_data: a tensor or tuple of tensors, first dimension ``n_f``.
        constraint_fns: one per-sample function per constraint.
        kinds: ``"eq"`` / ``"ineq"`` per constraint.
        constraint_data: the data of each constraint (default: ``objective_data`` for all).
        regularizer: ``h`` (default none).
        names: a name per constraint.
        constraints: the constraints as :class:`Constraint` records (function, data, kind and name together),
            instead of ``constraint_fns`` / ``kinds`` / ``constraint_data`` / ``names``.

    Raises:
        ValueError: a non-float64 parameter, mismatched lengths, data tensors of different lengths, or (at
            evaluation) a function that returns anything but a ``(B,)`` tensor.

    Note:
        PStorm evaluates the same minibatch at two points, so the functions must be deterministic: put the
        model in ``eval()`` mode (dropout, batch-norm statistics) before solving (spec §7, pitfall 3).

    Example:
        >>> model = torch.nn.Linear(2, 1, bias=False).double()
        >>> X = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
        >>> prob = TorchModelProblem(model, lambda m, a: torch.sigmoid(-m(a)[:, 0]), X)
        >>> prob.dim, prob.objective(torch.zeros(2, dtype=torch.float64))
        (2, 0.5)
    """

    def __init__(
        self,
        model: nn.Module,
        objective_fn: SampleFn,
        objective_data: Tensor | Sequence[Tensor],
        constraint_fns: Sequence[SampleFn] = (),
        kinds: Sequence[Kind] = (),
        *,
        constraint_data: Sequence[Tensor | Sequence[Tensor]] | None = None,
        regularizer: Regularizer | None = None,
        names: Sequence[str] | None = None,
        constraints: Sequence[Constraint] | None = None,
    ) -> None:
        if constraints is not None:
            if constraint_fns or kinds or constraint_data is not None or names is not None:
                raise ValueError("give either constraints=[Constraint(...)] or constraint_fns/kinds/constraint_data/"
                                 "names, not both")  # fmt: skip
            for i, c in enumerate(constraints):
                if not isinstance(c, Constraint):
                    raise ValueError(f"constraints[{i}] must be a Constraint, got {type(c).__name__}")
            constraint_fns = [c.fn for c in constraints]
            kinds = [c.kind for c in constraints]
            constraint_data = [objective_data if c.data is None else c.data for c in constraints]
            names = [c.name if c.name is not None else f"c{i}" for i, c in enumerate(constraints)]
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("model has no trainable parameter")
        for name, p in model.named_parameters():
            if p.requires_grad and p.dtype != torch.float64:
                raise ValueError(f"model parameter {name!r} must be float64 (call model.double()), got {p.dtype}")
        if not callable(objective_fn):
            raise ValueError(f"objective_fn must be callable, got {type(objective_fn).__name__}")
        constraint_fns = list(constraint_fns)
        for i, fn in enumerate(constraint_fns):
            if not callable(fn):
                raise ValueError(f"constraint_fns[{i}] must be callable, got {type(fn).__name__}")
        if len(kinds) != len(constraint_fns):
            raise ValueError(f"kinds must have one entry per constraint function ({len(constraint_fns)}), "
                             f"got {len(kinds)}")  # fmt: skip
        self.objective_data = _as_tuple(objective_data, "objective_data")
        if constraint_data is None:
            self.constraint_data = [self.objective_data] * len(constraint_fns)
        else:
            if len(constraint_data) != len(constraint_fns):
                raise ValueError(f"constraint_data must have one entry per constraint ({len(constraint_fns)}), "
                                 f"got {len(constraint_data)}")  # fmt: skip
            self.constraint_data = [_as_tuple(d, f"constraint_data[{i}]") for i, d in enumerate(constraint_data)]
        self.objective_fn = objective_fn
        self.constraint_fns = constraint_fns
        self._x0 = nn.utils.parameters_to_vector(self.params).detach().clone()
        super().__init__(
            int(self._x0.numel()),
            kinds,
            int(self.objective_data[0].shape[0]),
            [int(d[0].shape[0]) for d in self.constraint_data],
            regularizer=regularizer,
            names=names,
        )

    def initial_point(self) -> Tensor:
        """The model's parameters when the problem was built, flattened ``(dim,)``."""
        return self._x0.clone()

    @torch.no_grad()
    def to_model(self, x: Tensor) -> nn.Module:
        """Copy ``x`` into the model's trainable parameters and return the model."""
        if x.shape != (self.dim,):
            raise ValueError(f"x must have shape ({self.dim},), got {tuple(x.shape)}")
        start = 0
        for p in self.params:
            p.copy_(x[start : start + p.numel()].view_as(p))
            start += p.numel()
        return self.model

    def _evaluate(
        self, fn: SampleFn, data: tuple[Tensor, ...], x: Tensor, idx: Tensor | None, grad: bool, what: str
    ) -> tuple[Tensor, Tensor | None]:
        self.to_model(x)
        batch = data if idx is None else tuple(t[idx] for t in data)
        size = int(batch[0].shape[0])
        if size == 0:
            raise ValueError("idx must hold at least one sample index, got an empty tensor")
        with torch.set_grad_enabled(grad):
            out = fn(self.model, *batch)
            if not isinstance(out, Tensor):
                raise ValueError(f"{what} must return a tensor of per-sample values, got {type(out).__name__}")
            if out.shape != (size,):
                raise ValueError(f"{what} must return per-sample values of shape ({size},), got {tuple(out.shape)}")
            value = out.mean()
            if not grad:
                return value.detach(), None
            grads = torch.autograd.grad(value, self.params, allow_unused=True)
        flat = torch.cat(
            [(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(self.params, grads, strict=True)]
        )
        return value.detach(), flat

    def _f(self, x: Tensor, idx: Tensor | None, grad: bool) -> tuple[Tensor, Tensor | None]:
        return self._evaluate(self.objective_fn, self.objective_data, x, idx, grad, "objective_fn")

    def _c(self, i: int, x: Tensor, idx: Tensor | None, grad: bool) -> tuple[Tensor, Tensor | None]:
        return self._evaluate(self.constraint_fns[i], self.constraint_data[i], x, idx, grad, f"constraint_fns[{i}]")
