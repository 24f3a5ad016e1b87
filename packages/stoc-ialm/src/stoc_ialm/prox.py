r"""Proximal operators of the closed convex regularizer ``h`` (the nonsmooth part of ``F = f + h``).

Every class acts on a flat 1-D float tensor ``x`` (float64 in the tests) and gives three things:

.. math::
    \operatorname{prox}_{t h}(v) = \operatorname*{argmin}_u\; h(u) + \frac{1}{2t}\lVert u - v\rVert^2, \qquad
    h(x), \qquad
    \operatorname{dist}\big(0,\; g + \partial h(x)\big)

The last one is the stationarity measure of the KKT residual (Li, Chen, Liu, Lu, Xu 2024, the ε-KKT
definition; ``g`` is the gradient of the smooth part). Every class here has it in closed form; a user
subclass that implements only :meth:`Regularizer._prox` and :meth:`Regularizer._value` gets the
gradient-mapping norm ``‖x − prox_h(x − g)‖`` (step 1) instead, which is 0 exactly where the distance is
0 but is not the distance itself (:attr:`Regularizer.exact_stationarity` says which one a regularizer
gives).

===================  =====================================  ==========================================
class                ``h(x)``                               ``prox_{t h}(v)``
===================  =====================================  ==========================================
:class:`Zero`        ``0``                                  ``v``
:class:`L1`          ``λ‖x‖₁``                              ``sign(v) max(|v| − tλ, 0)``
:class:`L2Sq`        ``λ‖x‖₂²`` (no ½)                      ``v / (1 + 2tλ)``
:class:`ElasticNet`  ``λ₁‖x‖₁ + λ₂‖x‖₂²``                   ``sign(v) max(|v| − tλ₁, 0) / (1 + 2tλ₂)``
:class:`GroupL1`     ``λ Σ_g w_g ‖x_g‖₂``                   ``max(1 − tλw_g/‖v_g‖, 0) v_g`` per group
:class:`Box`         indicator of ``l ≤ x ≤ u``             ``min(max(v, l), u)``
:class:`NonNeg`      indicator of ``x ≥ 0``                 ``max(v, 0)``
:class:`L2Ball`      indicator of ``‖x‖₂ ≤ R``              ``v min(1, R/‖v‖₂)``
:class:`Sum`         ``Σ_b h_b(x_b)`` over disjoint blocks  ``prox_{t h_b}(v_b)`` per block
===================  =====================================  ==========================================

An indicator's :meth:`~Regularizer.value` is ``+inf`` outside its set, and its
:meth:`~Regularizer.stationarity` is ``+inf`` there (``∂h(x)`` is empty).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import TypeAlias

import torch
from torch import Tensor

__all__ = [
    "L1",
    "Box",
    "ElasticNet",
    "GroupL1",
    "L2Ball",
    "L2Sq",
    "NonNeg",
    "Regularizer",
    "Sum",
    "Zero",
]

Index: TypeAlias = "slice | range | Sequence[int] | Tensor"
"""A set of coordinates: a slice with an explicit stop, a range, a list of ints or a 1-D integer tensor."""

_BOUNDARY_ULPS = 64.0
"""Relative tolerance, in units of the dtype's machine epsilon, for "on the sphere ‖x‖ = R" (L2Ball)."""


# -- validation helpers -----------------------------------------------------------------------------
def _real(name: str, value: object, *, low: float | None = None, strict: bool = False) -> float:
    """``value`` as a finite float (``>= low``, or ``> low`` when ``strict``), else ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    out = float(value)
    if low is not None and (out < low or (strict and out == low)):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {out}")
    return out


def _vector(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 1 or not x.is_floating_point():
        raise ValueError(f"{name} must be a 1-D floating-point tensor, got shape {tuple(x.shape)} and dtype {x.dtype}")
    return x


def _as_index(name: str, block: object) -> Tensor:
    """A coordinate set as a 1-D int64 CPU tensor of distinct non-negative indices (in the given order)."""
    if isinstance(block, slice):
        start, stop, step = block.start, block.stop, block.step
        if stop is None:
            raise ValueError(f"{name} is a slice without a stop ({block!r}); give the stop explicitly")
        for part, val in (("start", start), ("stop", stop), ("step", step)):
            if val is not None and (isinstance(val, bool) or not isinstance(val, int) or val < 0):
                raise ValueError(f"{name} must be a slice of non-negative ints, got {part}={val!r}")
        if step == 0:
            raise ValueError(f"{name} has slice step 0")
        idx = torch.arange(start or 0, stop, step or 1, dtype=torch.int64)
    elif isinstance(block, range):
        idx = torch.tensor(list(block), dtype=torch.int64)
    elif isinstance(block, Tensor):
        if block.ndim != 1 or block.is_floating_point() or block.is_complex() or block.dtype == torch.bool:
            raise ValueError(
                f"{name} must be a 1-D integer tensor, got shape {tuple(block.shape)} and dtype {block.dtype}"
            )
        idx = block.detach().to(device="cpu", dtype=torch.int64)
    elif isinstance(block, Sequence) and not isinstance(block, (str, bytes)):
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in block):
            raise ValueError(f"{name} must hold ints, got {list(block)!r}")
        idx = torch.tensor(list(block), dtype=torch.int64)
    else:
        raise ValueError(f"{name} must be a slice, range, list of ints or 1-D integer tensor, got {block!r}")
    if idx.numel() == 0:
        raise ValueError(f"{name} is empty")
    if bool((idx < 0).any()):
        raise ValueError(f"{name} must hold non-negative indices, got {idx.tolist()}")
    if torch.unique(idx).numel() != idx.numel():
        raise ValueError(f"{name} repeats an index: {idx.tolist()}")
    return idx


def _check_disjoint(name: str, indices: Sequence[Tensor]) -> None:
    seen: dict[int, int] = {}
    for i, idx in enumerate(indices):
        for j in idx.tolist():
            if j in seen:
                raise ValueError(f"{name} must be disjoint: index {j} is in {name}[{seen[j]}] and {name}[{i}]")
            seen[j] = i


def _norm(x: Tensor) -> float:
    return float(torch.linalg.vector_norm(x))


def _soft_threshold(v: Tensor, tau: float) -> Tensor:
    """``sign(v) max(|v| − τ, 0)``, coordinatewise, written ``v − clip(v, −τ, τ)`` (the same numbers, no ``-0.``)."""
    return v - torch.clamp(v, -tau, tau)


def _l1_dist(x: Tensor, g: Tensor, lam: float) -> Tensor:
    """Coordinatewise ``dist(0, g_j + λ ∂|x_j|)``: ``|g_j + λ sign x_j|`` where ``x_j ≠ 0``, else ``max(|g_j| − λ, 0)``."""
    return torch.where(x != 0, (g + lam * torch.sign(x)).abs(), torch.clamp(g.abs() - lam, min=0.0))


# -- the base class ---------------------------------------------------------------------------------
class Regularizer(abc.ABC):
    r"""A closed convex ``h: R^n → R ∪ {+inf}`` with an easy proximal operator.

    Subclasses implement :meth:`_prox` and :meth:`_value` (and :meth:`_stationarity` where a closed form
    exists); the public methods validate their arguments first.
    """

    _EXACT = False

    @property
    def exact_stationarity(self) -> bool:
        """True when :meth:`stationarity` is ``dist(0, g + ∂h(x))`` itself, False for the gradient-mapping norm."""
        return self._EXACT

    def prox(self, v: Tensor, t: float) -> Tensor:
        r"""``argmin_u h(u) + ‖u − v‖²/(2t)``.

        Args:
            v: the point ``(n,)``, 1-D floating point.
            t: the step, ``t > 0`` (the prox of ``t·h``).

        Returns:
            A new tensor of ``v``'s shape, dtype and device.

        Raises:
            ValueError: ``v`` is not a 1-D float tensor, ``t`` is not a finite number ``> 0``, or ``v`` does
                not fit the regularizer (an index or a bound beyond its length).
        """
        v = _vector("v", v)
        t = _real("t", t, low=0.0, strict=True)
        self._check_size(v)
        return self._prox(v, t)

    def value(self, x: Tensor) -> float:
        """``h(x)`` as a Python float; ``+inf`` outside the domain of an indicator."""
        x = _vector("x", x)
        self._check_size(x)
        return self._value(x)

    def stationarity(self, x: Tensor, g: Tensor) -> float:
        r"""``dist(0, g + ∂h(x))``, or the gradient-mapping norm where no closed form is implemented.

        .. math:: \operatorname{dist}(0, g + \partial h(x)) \quad\text{or}\quad
            \lVert x - \operatorname{prox}_{h}(x - g)\rVert

        Args:
            x: the point ``(n,)``.
            g: the gradient of the smooth part at ``x``, ``(n,)``.

        Returns:
            A non-negative float; ``+inf`` when ``x`` is outside the domain of ``h`` (``∂h(x)`` is empty).
            :attr:`exact_stationarity` says which of the two measures this is.

        Raises:
            ValueError: ``x`` or ``g`` is not a 1-D float tensor, or their shapes differ.
        """
        x = _vector("x", x)
        g = _vector("g", g)
        if g.shape != x.shape:
            raise ValueError(f"g must have the shape of x {tuple(x.shape)}, got {tuple(g.shape)}")
        self._check_size(x)
        return self._stationarity(x, g)

    def _check_size(self, x: Tensor) -> None:
        """Raise ``ValueError`` when ``x`` does not fit (index-based or tensor-valued regularizers)."""
        return None

    @abc.abstractmethod
    def _prox(self, v: Tensor, t: float) -> Tensor: ...

    @abc.abstractmethod
    def _value(self, x: Tensor) -> float: ...

    def _stationarity(self, x: Tensor, g: Tensor) -> float:
        if not math.isfinite(self._value(x)):
            return math.inf
        return _norm(x - self._prox(x - g, 1.0))


class Zero(Regularizer):
    r"""``h = 0``: no regularizer.

    .. math:: \operatorname{prox}_{th}(v) = v, \qquad \operatorname{dist}(0, g + \partial h(x)) = \lVert g\rVert

    Example:
        >>> import torch
        >>> Zero().prox(torch.tensor([1.0, -2.0]), 0.5)
        tensor([ 1., -2.])
    """

    _EXACT = True

    def _prox(self, v: Tensor, t: float) -> Tensor:
        return v.clone()

    def _value(self, x: Tensor) -> float:
        return 0.0

    def _stationarity(self, x: Tensor, g: Tensor) -> float:
        return _norm(g)

    def __repr__(self) -> str:
        return "Zero()"


class L1(Regularizer):
    r"""``h(x) = λ‖x‖₁``, soft-thresholding.

    .. math::
        \operatorname{prox}_{th}(v)_j = \operatorname{sign}(v_j)\max(|v_j| - t\lambda, 0), \qquad
        \operatorname{dist}(0, g + \partial h(x))^2 = \sum_{x_j \ne 0} (g_j + \lambda\operatorname{sign} x_j)^2
        + \sum_{x_j = 0} \max(|g_j| - \lambda, 0)^2

    Args:
        lam: ``λ >= 0``.

    Example:
        >>> import torch
        >>> L1(1.0).prox(torch.tensor([3.0, -0.5, -2.0]), 1.0)
        tensor([ 2.,  0., -1.])
    """

    _EXACT = True

    def __init__(self, lam: float) -> None:
        self.lam = _real("lam", lam, low=0.0)

    def _prox(self, v: Tensor, t: float) -> Tensor:
        return _soft_threshold(v, t * self.lam)

    def _value(self, x: Tensor) -> float:
        return self.lam * float(x.abs().sum())

    def _stationarity(self, x: Tensor, g: Tensor) -> float:
        return _norm(_l1_dist(x, g, self.lam))

    def __repr__(self) -> str:
        return f"L1(lam={self.lam!r})"


class L2Sq(Regularizer):
    r"""``h(x) = λ‖x‖₂²`` (no factor ½), ridge shrinkage.

    .. math::
        \operatorname{prox}_{th}(v) = \frac{v}{1 + 2t\lambda}, \qquad
        \operatorname{dist}(0, g + \partial h(x)) = \lVert g + 2\lambda x\rVert

    Args:
        lam: ``λ >= 0``.

    Note:
        The spec (§5 item 1) writes the prox as ``v/(1 + tλ)``, which is the convention ``h = (λ/2)‖x‖²``;
        that regularizer is ``L2Sq(λ/2)`` here. torch's ``weight_decay=wd`` is the gradient of
        ``(wd/2)‖x‖²``, i.e. ``L2Sq(wd/2)``.

    Example:
        >>> import torch
        >>> L2Sq(0.5).prox(torch.tensor([2.0, -4.0]), 1.0)
        tensor([ 1., -2.])
    """

    _EXACT = True

    def __init__(self, lam: float) -> None:
        self.lam = _real("lam", lam, low=0.0)

    def _prox(self, v: Tensor, t: float) -> Tensor:
        return v / (1.0 + 2.0 * t * self.lam)

    def _value(self, x: Tensor) -> float:
        return self.lam * float(x.square().sum())

    def _stationarity(self, x: Tensor, g: Tensor) -> float:
        return _norm(g + 2.0 * self.lam * x)

    def __repr__(self) -> str:
        return f"L2Sq(lam={self.lam!r})"


class ElasticNet(Regularizer):
    r"""``h(x) = λ₁‖x‖₁ + λ₂‖x‖₂²`` (no factor ½ on the square, as in :class:`L2Sq`).

    .. math::
        \operatorname{prox}_{th}(v)_j = \frac{\operatorname{sign}(v_j)\max(|v_j| - t\lambda_1, 0)}{1 + 2t\lambda_2},
        \qquad \operatorname{dist}(0, g + \partial h(x)) = \text{the } L1(\lambda_1) \text{ distance with }
        g \leftarrow g + 2\lambda_2 x

    Args:
        l1: ``λ₁ >= 0``.
        l2: ``λ₂ >= 0``.

    Example:
        >>> import torch
        >>> ElasticNet(1.0, 0.5).prox(torch.tensor([3.0, 0.5]), 1.0)
        tensor([1., 0.])
    """

    _EXACT = True

    def __init__(self, l1: float, l2: float) -> None:
        self.l1 = _real("l1", l1, low=0.0)
        self.l2 = _real("l2", l2, low=0.0)

    def _prox(self, v: Tensor, t: float) -> Tensor:
        return _soft_threshold(v, t * self.l1) / (1.0 + 2.0 * t * self.l2)

    def _value(self, x: Tensor) -> float:
        return self.l1 * float(x.abs().sum()) + self.l2 * float(x.square().sum())

    def _stationarity(self, x: Tensor, g: Tensor) -> float:
        return _norm(_l1_dist(x, g + 2.0 * self.l2 * x, self.l1))

    def __repr__(self) -> str:
        return f"ElasticNet(l1={self.l1!r}, l2={self.l2!r})"


class GroupL1(Regularizer):
    r"""``h(x) = λ Σ_g w_g ‖x_g‖₂`` over disjoint groups (group lasso); coordinates in no group are free.

    .. math::
        \operatorname{prox}_{th}(v)_g = \max\Big(1 - \frac{t\lambda w_g}{\lVert v_g\rVert}, 0\Big) v_g, \qquad
        \operatorname{dist}(0, g + \partial h(x))^2 = \sum_{x_G \ne 0}
        \Big\lVert g_G + \lambda w_G \frac{x_G}{\lVert x_G\rVert}\Big\rVert^2
        + \sum_{x_G = 0} \max(\lVert g_G\rVert - \lambda w_G, 0)^2 + \sum_{j \notin \cup G} g_j^2

    Args:
        lam: ``λ >= 0``.
        groups: disjoint, non-empty coordinate sets (slices with a stop, ranges, lists of ints or 1-D integer
            tensors).
        weights: ``w_g >= 0``, one per group (default all 1; Yuan and Lin's choice is ``sqrt(|g|)``).

    Example:
        >>> import torch
        >>> GroupL1(1.0, [[0, 1], [2, 3]]).prox(torch.tensor([3.0, 4.0, 0.6, 0.8, 5.0]), 1.0)
        tensor([2.4000, 3.2000, 0.0000, 0.0000, 5.0000])
    """

    _EXACT = True

    def __init__(self, lam: float, groups: Sequence[Index], weights: Sequence[float] | None = None) -> None:
        self.lam = _real("lam", lam, low=0.0)
        given: object = groups  # checked at run time, whatever the annotation says
        if isinstance(given, (str, bytes, Tensor)) or not isinstance(given, Sequence) or len(given) == 0:
            raise ValueError(f"groups must be a non-empty list of coordinate sets, got {groups!r}")
        self.groups = [_as_index(f"groups[{i}]", grp) for i, grp in enumerate(groups)]
        _check_disjoint("groups", self.groups)
        if weights is None:
            weights = [1.0] * len(self.groups)
        if len(weights) != len(self.groups):
            raise ValueError(f"weights must have one entry per group ({len(self.groups)}), got {len(weights)}")
        self.weights = [_real(f"weights[{i}]", w, low=0.0) for i, w in enumerate(weights)]
        self._index = torch.cat(self.groups)  # (sum of group sizes,)
        self._gid = torch.cat([torch.full((len(grp),), i, dtype=torch.int64) for i, grp in enumerate(self.groups)])
        self._max = int(self._index.max())

    def _check_size(self, x: Tensor) -> None:
        if self._max >= x.numel():
            raise ValueError(f"groups index coordinate {self._max}, but the vector has length {x.numel()}")

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Grouped entries ``x[idx]``, the group id of each, the group norms ``(G,)`` and ``λ w`` ``(G,)``."""
        idx, gid = self._index.to(x.device), self._gid.to(x.device)
        vals = x[idx]
        sq = torch.zeros(len(self.groups), dtype=x.dtype, device=x.device).index_add_(0, gid, vals.square())
        lam_w = self.lam * torch.tensor(self.weights, dtype=x.dtype, device=x.device)
        return vals, gid, sq.sqrt(), lam_w

    def _prox(self, v: Tensor, t: float) -> Tensor:
        vals, gid, norms, lam_w = self._split(v)
        tau = t * lam_w
        scale = torch.where(norms > tau, 1.0 - tau / torch.where(norms > 0, norms, 1.0), 0.0)
        out = v.clone()
        out[self._index.to(v.device)] = vals * scale[gid]
        return out

    def _value(self, x: Tensor) -> float:
        _, _, norms, lam_w = self._split(x)
        return float((lam_w * norms).sum())

    def _stationarity(self, x: Tensor, g: Tensor) -> float:
        idx = self._index.to(x.device)
        _, gid, norms, lam_w = self._split(x)
        gv = g[idx]
        nonzero = norms > 0
        unit = x[idx] / torch.where(nonzero, norms, 1.0)[gid]
        resid = gv + (lam_w * nonzero)[gid] * unit  # g_G + λw x_G/‖x_G‖ on nonzero groups, g_G on zero ones
        sq = torch.zeros_like(norms).index_add_(0, gid, resid.square())
        per_group = torch.where(nonzero, sq, torch.clamp(sq.sqrt() - lam_w, min=0.0).square())
        free = torch.ones(x.numel(), dtype=torch.bool, device=x.device)
        free[idx] = False
        return math.sqrt(float(per_group.sum()) + float(g[free].square().sum()))

    def __repr__(self) -> str:
        return f"GroupL1(lam={self.lam!r}, groups={[grp.tolist() for grp in self.groups]}, weights={self.weights})"


class Box(Regularizer):
    r"""The indicator of ``{x : l ≤ x ≤ u}``; its prox is the projection (clipping).

    .. math::
        \operatorname{prox}_{th}(v) = \min(\max(v, l), u), \qquad
        \operatorname{dist}(0, g + N(x))_j = \begin{cases}
            |g_j| & l_j < x_j < u_j \\ \max(-g_j, 0) & x_j = l_j < u_j \\ \max(g_j, 0) & l_j < x_j = u_j
            \\ 0 & l_j = x_j = u_j \end{cases}

    The distance is the norm of the projected gradient, the projection of ``−g`` onto the tangent cone of
    the box at ``x`` (it is exact, not the gradient mapping); it is ``+inf`` for ``x`` outside the box.

    Args:
        lower: ``l``, a number or a 1-D tensor (``-inf`` allowed; not ``+inf``, not NaN).
        upper: ``u``, a number or a 1-D tensor (``+inf`` allowed), ``l ≤ u`` everywhere. Tensor bounds must
            have the length of the vector they are applied to.

    Example:
        >>> import torch
        >>> Box(-1.0, 1.0).prox(torch.tensor([-3.0, 0.5, 2.0]), 1.0)
        tensor([-1.0000,  0.5000,  1.0000])
    """

    _EXACT = True

    def __init__(self, lower: float | Tensor, upper: float | Tensor) -> None:
        self.lower = self._bound("lower", lower)
        self.upper = self._bound("upper", upper)
        lo, hi = self.lower, self.upper
        if isinstance(lo, Tensor) and isinstance(hi, Tensor) and lo.shape != hi.shape:
            raise ValueError(f"lower and upper must have the same shape, got {tuple(lo.shape)} and {tuple(hi.shape)}")
        lo_t = lo if isinstance(lo, Tensor) else torch.tensor(lo, dtype=torch.float64)
        hi_t = hi if isinstance(hi, Tensor) else torch.tensor(hi, dtype=torch.float64)
        if bool((lo_t == math.inf).any()):
            raise ValueError("lower must be < +inf")
        if bool((hi_t == -math.inf).any()):
            raise ValueError("upper must be > -inf")
        if bool((lo_t > hi_t).any()):
            raise ValueError(f"lower must be <= upper everywhere, got lower={lo!r} and upper={hi!r}")

    @staticmethod
    def _bound(name: str, value: object) -> float | Tensor:
        if isinstance(value, Tensor):
            if value.ndim != 1 or not value.is_floating_point():
                raise ValueError(
                    f"{name} must be a number or a 1-D float tensor, got shape {tuple(value.shape)}, dtype {value.dtype}"
                )
            if bool(value.isnan().any()):
                raise ValueError(f"{name} must not hold NaN")
            return value.detach().clone()
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ValueError(f"{name} must be a number or a 1-D float tensor, got {value!r}")
        return float(value)

    def _check_size(self, x: Tensor) -> None:
        for name, b in (("lower", self.lower), ("upper", self.upper)):
            if isinstance(b, Tensor) and b.numel() != x.numel():
                raise ValueError(f"{name} has length {b.numel()}, but the vector has length {x.numel()}")

    def _bounds(self, x: Tensor) -> tuple[Tensor, Tensor]:
        lo, hi = self.lower, self.upper
        lo_t = lo.to(x) if isinstance(lo, Tensor) else torch.full_like(x, lo)
        hi_t = hi.to(x) if isinstance(hi, Tensor) else torch.full_like(x, hi)
        return lo_t, hi_t

    def _prox(self, v: Tensor, t: float) -> Tensor:
        lo, hi = self._bounds(v)
        return torch.minimum(torch.maximum(v, lo), hi)

    def _value(self, x: Tensor) -> float:
        lo, hi = self._bounds(x)
        return 0.0 if bool(((x >= lo) & (x <= hi)).all()) else math.inf

    def _stationarity(self, x: Tensor, g: Tensor) -> float:
        lo, hi = self._bounds(x)
        if not bool(((x >= lo) & (x <= hi)).all()):
            return math.inf
        at_lo, at_hi = x == lo, x == hi
        dist = g.abs()
        dist = torch.where(at_lo, torch.clamp(-g, min=0.0), dist)
        dist = torch.where(at_hi, torch.clamp(g, min=0.0), dist)
        dist = torch.where(at_lo & at_hi, torch.zeros_like(g), dist)
        return _norm(dist)

    def __repr__(self) -> str:
        def show(b: float | Tensor) -> str:
            return repr(b.tolist()) if isinstance(b, Tensor) else repr(b)

        return f"Box(lower={show(self.lower)}, upper={show(self.upper)})"


class NonNeg(Box):
    r"""The indicator of ``{x : x ≥ 0}``: :class:`Box` with ``l = 0``, ``u = +inf``.

    .. math::
        \operatorname{prox}_{th}(v) = \max(v, 0), \qquad
        \operatorname{dist}(0, g + N(x))_j = |g_j| \ (x_j > 0), \quad \max(-g_j, 0) \ (x_j = 0)

    Example:
        >>> import torch
        >>> NonNeg().prox(torch.tensor([-1.0, 2.0]), 1.0)
        tensor([0., 2.])
    """

    def __init__(self) -> None:
        super().__init__(0.0, math.inf)

    def __repr__(self) -> str:
        return "NonNeg()"


class L2Ball(Regularizer):
    r"""The indicator of the Euclidean ball ``{x : ‖x‖₂ ≤ R}`` (centred at 0).

    .. math::
        \operatorname{prox}_{th}(v) = v \min\Big(1, \frac{R}{\lVert v\rVert}\Big), \qquad
        \operatorname{dist}(0, g + N(x)) = \begin{cases} \lVert g\rVert & \lVert x\rVert < R \\
        \lVert g + \alpha x\rVert,\ \alpha = \max(0, -g^T x/\lVert x\rVert^2) & \lVert x\rVert = R \end{cases}

    ``‖x‖ = R`` is tested with a relative tolerance of 64 machine epsilons of ``x``'s dtype, so that a
    projected point counts as on the sphere (and inside the ball) despite rounding.

    Args:
        radius: ``R > 0``.

    Example:
        >>> import torch
        >>> L2Ball(1.0).prox(torch.tensor([3.0, 4.0]), 1.0)
        tensor([0.6000, 0.8000])
    """

    _EXACT = True

    def __init__(self, radius: float) -> None:
        self.radius = _real("radius", radius, low=0.0, strict=True)

    def _tol(self, x: Tensor) -> float:
        return _BOUNDARY_ULPS * float(torch.finfo(x.dtype).eps) * self.radius

    def _prox(self, v: Tensor, t: float) -> Tensor:
        n = _norm(v)
        return v.clone() if n <= self.radius else v * (self.radius / n)

    def _value(self, x: Tensor) -> float:
        return 0.0 if _norm(x) <= self.radius + self._tol(x) else math.inf

    def _stationarity(self, x: Tensor, g: Tensor) -> float:
        n = _norm(x)
        tol = self._tol(x)
        if n > self.radius + tol:
            return math.inf
        if n < self.radius - tol:
            return _norm(g)
        alpha = max(0.0, -float(g @ x) / (n * n))
        return _norm(g + alpha * x)

    def __repr__(self) -> str:
        return f"L2Ball(radius={self.radius!r})"


class Sum(Regularizer):
    r"""A block-separable sum ``h(x) = Σ_b h_b(x_b)`` over disjoint coordinate blocks; free elsewhere.

    .. math::
        \operatorname{prox}_{th}(v)_b = \operatorname{prox}_{t h_b}(v_b), \qquad
        \operatorname{dist}(0, g + \partial h(x))^2 = \sum_b \operatorname{dist}(0, g_b + \partial h_b(x_b))^2
        + \sum_{j \notin \cup b} g_j^2

    Both are exact because ``∂h(x)`` is the Cartesian product of the blocks' subdifferentials. The
    stationarity is the distance when every block's is (:attr:`exact_stationarity`), otherwise the same
    Euclidean combination of the blocks' own measures. The solver uses it to put :class:`NonNeg` on the
    slack block of ``x_ext = [x, s]``.

    Args:
        blocks: ``(coordinates, regularizer)`` pairs; coordinates as in :class:`GroupL1`, disjoint across
            blocks. Each block's regularizer sees the sub-vector ``x[coordinates]`` (in the given order).

    Example:
        >>> import torch
        >>> h = Sum([(slice(0, 2), L1(1.0)), (slice(2, 4), NonNeg())])
        >>> h.prox(torch.tensor([3.0, -0.5, -2.0, 2.0]), 1.0)
        tensor([2., 0., 0., 2.])
    """

    def __init__(self, blocks: Sequence[tuple[Index, Regularizer]]) -> None:
        given: object = blocks  # checked at run time, whatever the annotation says
        if isinstance(given, (str, bytes)) or not isinstance(given, Sequence) or len(given) == 0:
            raise ValueError(f"blocks must be a non-empty list of (coordinates, Regularizer) pairs, got {blocks!r}")
        self.blocks: list[tuple[Tensor, Regularizer]] = []
        for i, pair in enumerate(blocks):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"blocks[{i}] must be a (coordinates, Regularizer) pair, got {pair!r}")
            coords, reg = pair
            if not isinstance(reg, Regularizer):
                raise ValueError(f"blocks[{i}][1] must be a Regularizer, got {type(reg).__name__}")
            self.blocks.append((_as_index(f"blocks[{i}][0]", coords), reg))
        _check_disjoint("blocks", [idx for idx, _ in self.blocks])
        self._max = max(int(idx.max()) for idx, _ in self.blocks)

    @property
    def exact_stationarity(self) -> bool:
        """True when every block's stationarity is exact."""
        return all(reg.exact_stationarity for _, reg in self.blocks)

    def _check_size(self, x: Tensor) -> None:
        if self._max >= x.numel():
            raise ValueError(f"blocks index coordinate {self._max}, but the vector has length {x.numel()}")
        for i, (idx, reg) in enumerate(self.blocks):
            try:
                reg._check_size(x[idx.to(x.device)])
            except ValueError as err:
                raise ValueError(f"blocks[{i}]: {err}") from err

    def _prox(self, v: Tensor, t: float) -> Tensor:
        out = v.clone()
        for idx, reg in self.blocks:
            i = idx.to(v.device)
            out[i] = reg._prox(v[i], t)
        return out

    def _value(self, x: Tensor) -> float:
        return sum((reg._value(x[idx.to(x.device)]) for idx, reg in self.blocks), 0.0)

    def _stationarity(self, x: Tensor, g: Tensor) -> float:
        total = 0.0
        free = torch.ones(x.numel(), dtype=torch.bool, device=x.device)
        for idx, reg in self.blocks:
            i = idx.to(x.device)
            total += reg._stationarity(x[i], g[i]) ** 2
            free[i] = False
        return math.sqrt(total + float(g[free].square().sum()))

    def __repr__(self) -> str:
        return "Sum([" + ", ".join(f"({idx.tolist()}, {reg!r})" for idx, reg in self.blocks) + "])"
