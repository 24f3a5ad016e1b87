"""Planar-vector helpers for ``(..., 2)`` tensors, fast on the CPU in eager mode.

Every quantity of the simulator is a 2-D vector stored as ``(..., 2)``. On the CPU, torch's kernels
for ``torch.stack(..., dim=-1)`` and for reductions over a last dimension of size 2 (``norm``,
``sum(-1)``, ``hypot`` of the two strided halves) run 5-10x slower than an elementwise product of
the same size, and the simulator calls them dozens of times per step. Here:

- :func:`stack2` builds ``(..., 2)`` from the two components through a complex tensor
  (``view_as_real(complex(x, y))``: one contiguous interleaving kernel);
- :func:`rot` and :func:`rot_inv` rotate by one complex product ``v · (c ± i s)``, which computes the
  same products and sums as the real formula;
- :func:`norm2` is ``sqrt(x² + y²)`` (within an ulp of ``torch.linalg.vector_norm``);
- :func:`dot2` is ``a_x b_x + a_y b_y`` as the real part of ``a · conj(b)``, and :func:`sum2` sums
  vectors over a dimension as complex numbers;
- :func:`select` replaces ``torch.where`` between finite float tensors by a 0/1 blend (``torch.where``
  with a broadcast mask costs about 80x an elementwise product on the CPU).

The complex route is taken for float32/float64 CPU tensors outside ``torch.compile`` tracing;
elsewhere (CUDA, compiled graphs, other dtypes) the plain ``torch.stack`` formulas run. The two agree
to rounding: :func:`stack2` and :func:`select` (finite inputs) are exact; :func:`rot`, :func:`rot_inv`
and :func:`dot2` compute the same products and sums, bit for bit in torch's vectorised complex kernel,
but may differ in the last bit in its scalar tail and when an input is broadcast; :func:`sum2` may
sum in another order; and :func:`norm2` (all devices) is within an ulp of
``torch.linalg.vector_norm`` but, unlike it, over- and underflows for components beyond about 1e19 or
below 1e-19 in float32 (field coordinates are metres).

:func:`constant_cache` is the package's cache for small constant tensors built per size and device,
usable inside a ``torch.compile``'d region.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import torch

__all__ = ["constant_cache", "dot2", "is_compiling", "norm2", "rot", "rot_inv", "select", "stack2", "sum2"]

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}

_P = ParamSpec("_P")
_R = TypeVar("_R")


def is_compiling() -> bool:
    """True while torch.compile traces (``torch.compiler.is_compiling``, torch >= 2.3; dynamo's own before)."""
    check = getattr(torch.compiler, "is_compiling", None)
    if check is None:  # torch 2.2
        check = importlib.import_module("torch._dynamo").is_compiling
    return bool(check())


def constant_cache(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """``functools.lru_cache(maxsize=64)`` of ``fn``, bypassed while torch.compile traces.

    Dynamo warns on every ``lru_cache`` wrapper it meets and traces the wrapped function anyway; here
    the traced graph builds the constant itself and eager calls share one cached copy (do not modify
    it in place). The arguments must be hashable (sizes, devices, dtypes).
    """
    cached = functools.lru_cache(maxsize=64)(fn)

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if is_compiling():
            return fn(*args, **kwargs)
        return cached(*args, **kwargs)  # type: ignore[arg-type]

    return wrapper


def _complex_ok(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype in _COMPLEX and not is_compiling()


def stack2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``torch.stack((x, y), dim=-1)`` for two tensors of one shape and dtype.

    Example:
        >>> stack2(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])).tolist()
        [[1.0, 3.0], [2.0, 4.0]]
    """
    if _complex_ok(x) and y.dtype == x.dtype and y.shape == x.shape:
        return torch.view_as_real(torch.complex(x, y))
    return torch.stack((x, y), dim=-1)


def rot(v: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Rotate ``v (..., 2)`` by the angle with cosine ``c`` and sine ``s`` (broadcast to ``v[..., 0]``):
    ``(c v_x − s v_y, s v_x + c v_y)``.

    Example:
        >>> rot(torch.tensor([1.0, 0.0]), torch.tensor(0.0), torch.tensor(1.0)).tolist()
        [0.0, 1.0]
    """
    if _complex_ok(v) and c.dtype == v.dtype and s.dtype == v.dtype:
        return torch.view_as_real(torch.view_as_complex(v.contiguous()) * torch.complex(c, s))
    return torch.stack((c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]), dim=-1)


def rot_inv(v: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Rotate ``v (..., 2)`` back by that angle: ``(c v_x + s v_y, −s v_x + c v_y)``.

    Example:
        >>> rot_inv(torch.tensor([0.0, 1.0]), torch.tensor(0.0), torch.tensor(1.0)).tolist()
        [1.0, 0.0]
    """
    if _complex_ok(v) and c.dtype == v.dtype and s.dtype == v.dtype:
        return torch.view_as_real(torch.view_as_complex(v.contiguous()) * torch.complex(c, -s))
    return torch.stack((c * v[..., 0] + s * v[..., 1], -s * v[..., 0] + c * v[..., 1]), dim=-1)


def norm2(v: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    """Euclidean length of ``v (..., 2)``: ``sqrt(v_x² + v_y²)``, shape ``(...)`` (``(..., 1)`` with ``keepdim``).

    Example:
        >>> norm2(torch.tensor([[3.0, 4.0]])).tolist()
        [5.0]
    """
    x, y = v[..., 0], v[..., 1]
    out = (x * x + y * y).sqrt()
    return out.unsqueeze(-1) if keepdim else out


def dot2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a_x b_x + a_y b_y`` of ``(..., 2)`` tensors (broadcast), shape ``(...)``.

    Example:
        >>> dot2(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])).item()
        11.0
    """
    if _complex_ok(a) and b.dtype == a.dtype:
        return (torch.view_as_complex(a.contiguous()) * torch.view_as_complex(b.contiguous()).conj()).real
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]


def sum2(v: torch.Tensor, dim: int) -> torch.Tensor:
    """``v (..., 2)`` summed over ``dim`` (a dimension before the last), as ``v.sum(dim)``.

    Example:
        >>> sum2(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), 0).tolist()
        [4.0, 6.0]
    """
    if dim < 0:
        dim += v.dim()
    if not 0 <= dim < v.dim() - 1:
        raise ValueError(f"dim must name a dimension before the last of a {v.dim()}-d tensor, got {dim}")
    if _complex_ok(v):
        return torch.view_as_real(torch.view_as_complex(v.contiguous()).sum(dim))
    return v.sum(dim)


def select(mask: torch.Tensor, a: torch.Tensor | float, b: torch.Tensor) -> torch.Tensor:
    """``torch.where(mask, a, b)`` for finite ``a`` and ``b``: ``a·m + b·(1 − m)`` with ``m`` the mask as 0/1.

    Exact for finite values (a product by 0 or 1 and a sum with 0 round nothing), except that a -0.0
    taken comes out as +0.0; an inf or nan in the branch not taken would leak, which is why only
    finite quantities go through here.

    Example:
        >>> select(torch.tensor([True, False]), torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])).tolist()
        [1.0, 4.0]
    """
    if not _complex_ok(b):
        return torch.where(mask, a, b)
    m = mask.to(b.dtype)
    return a * m + b * (1 - m)
