"""Input checks and kernels shared by :mod:`smurf_thp.metrics` and :mod:`smurf_thp.oracle_metrics` (private).

Validation of ``samples``, ``y``, type labels and quantile levels (each failure a ``ValueError`` naming the
argument), the type-7 quantile of pre-sorted rows, and the calibration-score computation behind
:func:`smurf_thp.metrics.calibration_score`. Conventions are those of :mod:`smurf_thp.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import torch
from torch import Tensor

ArrayLike: TypeAlias = "Tensor | np.ndarray[Any, Any] | Sequence[Any]"
"""A torch tensor, a numpy array or a (nested) list of numbers."""

Levels: TypeAlias = "Tensor | np.ndarray[Any, Any] | Sequence[float]"
"""Quantile levels in the open interval (0, 1), one-dimensional."""

_F64 = torch.float64
_HALF_TOL = 1e-12
"""``q >= 0.5 - _HALF_TOL`` counts as ``q >= 0.5`` (levels such as 0.5 computed with float drift)."""


# -- validation -----------------------------------------------------------------------------------------------------
def _choice(name: str, value: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def _tensor(name: str, x: object, ndim: int, device: torch.device | None = None) -> Tensor:
    """``x`` as a detached float64 tensor with ``ndim`` dimensions and finite values, else ``ValueError`` naming it."""
    try:
        t = x.detach() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a tensor or an array of numbers, got {type(x).__name__}") from err
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if t.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(t.shape)}")
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return t.to(device=device if device is not None else t.device, dtype=_F64)


def _types(name: str, x: object, ndim: int, device: torch.device) -> Tensor:
    """Integer type labels (0-based, ``>= 0``) as int64 with ``ndim`` dimensions, else ``ValueError`` naming them."""
    t = x.detach() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer types, got dtype {t.dtype}")
    if t.ndim != ndim or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty array with {ndim} dimension(s), got shape {tuple(t.shape)}")
    if bool((t < 0).any()):
        raise ValueError(f"{name} must hold types >= 0 (0-based), got minimum {int(t.min())}")
    return t.to(device=device, dtype=torch.int64)


def _samples(samples: ArrayLike) -> Tensor:
    x = _tensor("samples", samples, 2)
    if x.shape[0] < 1 or x.shape[1] < 2:
        raise ValueError(f"samples must have shape (N, S) with N >= 1 and S >= 2, got {tuple(x.shape)}")
    return x


def _samples_y(samples: ArrayLike, y: ArrayLike) -> tuple[Tensor, Tensor]:
    x = _samples(samples)
    yt = _tensor("y", y, 1, x.device)
    if yt.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape ({x.shape[0]},) to match samples {tuple(x.shape)}, got {tuple(yt.shape)}")
    return x, yt


def _levels(name: str, q: object, device: torch.device) -> Tensor:
    """Levels as float64 ``(Q,)`` (a scalar becomes ``(1,)``), each in (0, 1), else ``ValueError`` naming them."""
    if isinstance(q, bool):
        raise ValueError(f"{name} must be a level in (0, 1) or a sequence of levels, got {q!r}")
    if isinstance(q, (int, float)):
        q = [float(q)]
    try:
        flat = q.detach().reshape(-1) if isinstance(q, Tensor) else torch.as_tensor(np.asarray(q)).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a level or a sequence of levels, got {type(q).__name__}") from err
    qt = _tensor(name, flat, 1, device)
    if qt.numel() == 0 or bool(((qt <= 0) | (qt >= 1)).any()):
        raise ValueError(f"{name} must be non-empty with every level in the open interval (0, 1), got {qt.tolist()}")
    return qt


def _quantiles_sorted(xs: Tensor, q: Tensor) -> Tensor:
    """Type-7 quantiles ``(N, Q)`` of rows already sorted ascending (``xs`` ``(N, S)``); no size limit."""
    h = (xs.shape[1] - 1) * q  # (Q,)
    lo = h.floor().long().clamp(0, xs.shape[1] - 1)
    hi = (lo + 1).clamp(max=xs.shape[1] - 1)
    frac = h - lo.to(h.dtype)
    return xs[:, lo] + frac * (xs[:, hi] - xs[:, lo])


def _calibration_score(cov: Levels, q: Levels, subset: str) -> float:
    """The body of :func:`smurf_thp.metrics.calibration_score` (validation included), shared with the oracle's CS."""
    _choice("subset", subset, ("upper", "all"))
    c = _tensor("cov", cov, 1)
    qt = _levels("q", q, c.device)
    if c.shape != qt.shape:
        raise ValueError(f"cov must have one entry per level, got {tuple(c.shape)} for q {tuple(qt.shape)}")
    if bool(((c < 0) | (c > 1)).any()):
        raise ValueError(f"cov must lie in [0, 1], got {c.tolist()}")
    keep = qt >= 0.5 - _HALF_TOL if subset == "upper" else torch.ones_like(qt, dtype=torch.bool)
    if not bool(keep.any()):
        raise ValueError(f"q has no level >= 0.5 for subset='upper', got {qt.tolist()}")
    return math.sqrt(float(((c[keep] - qt[keep]) ** 2).mean()))
