r"""Metrics for sampled next-arrival times: coverage, calibration, interval length, CRPS, RMSE, accuracy, PIT, oracles.

Every function takes ``samples`` of shape ``(N, S)`` (``N`` predicted events, ``S >= 2`` samples each, original
units, never clamped) and true gaps ``y`` of shape ``(N,)``; torch tensors or numpy arrays, computed in float64 on
the device of ``samples``. Padding is the caller's business: select the real events first, e.g. with
:func:`flatten_events` (``samples[mask]``, ``y[mask]``). Per-quantile results are float64 tensors ``(Q,)``.
The PIT (``pit``, ``pit_histogram``) and the metrics against the true process (``oracle_coverage``,
``oracle_calibration``, ``oracle_gap``) live in :mod:`smurf_thp.oracle_metrics`; this module re-exports them.

The sample quantile is torch's default (``torch.quantile``, linear interpolation, Hyndman-Fan type 7; the
official code calls ``torch.quantile``): with the sorted samples ``x_(0) <= ... <= x_(S-1)`` and ``h = (S-1) q``,

.. math::
    \hat Q_q = x_{(\lfloor h \rfloor)} + (h - \lfloor h \rfloor)\,(x_{(\lfloor h \rfloor + 1)} - x_{(\lfloor h \rfloor)}).

Papers disagree on each metric (spec pitfall 8), so each choice is explicit:

=================  ==========================================  ===========================================
metric             default here = official SMURF-THP code      alternative offered
=================  ==========================================  ===========================================
coverage           one-sided ``y < Q_q`` (``kind="upper"``)    central ``Q_(1-q)/2 <= y <= Q_(1+q)/2``
calibration score  RMS of ``cov(q) - q`` over ``q >= 0.5``     over all ``q`` (``subset="all"``)
interval length    mean ``max(Q_q, 0)`` (printed at q = 0.5)   mean central width ``Q_(1+q)/2 - Q_(1-q)/2``
CRPS               fair U-statistic, ``1/(2S(S-1))``           official V-statistic ``1/(2S^2)``
type accuracy      mode of sampled types, ties -> smallest     argmax of probabilities
RMSE               (absent in the official code)               point = interpolated median or mean
=================  ==========================================  ===========================================

Note:
    The default CRPS departs from the official code, whose V-statistic counts the ``S`` zero diagonal pairs, so
    its spread term is too small and its CRPS too *high* by ``E|X - X'| / (2S)`` (the spec's "biased low" is
    the spread term, not the score); ``crps(..., fair=False)`` reproduces it. The official code picks the Langevin step count by test-set CS;
    these functions only measure, choose steps on the dev split.

References:
    Li et al., SMURF-THP, ICML 2023 (arXiv:2310.16336), official ``Utils.py::evaluate_samples``;
    Gneiting & Raftery 2007 (CRPS); Ferro 2014 (fair scores).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, overload

import numpy as np
import torch
from torch import Tensor

from smurf_thp._metric_utils import (
    _F64,
    _HALF_TOL,
    ArrayLike,
    Levels,
    _calibration_score,
    _choice,
    _levels,
    _quantiles_sorted,
    _samples,
    _samples_y,
    _tensor,
    _types,
)
from smurf_thp.oracle_metrics import oracle_calibration, oracle_coverage, oracle_gap, pit, pit_histogram, pit_ks

__all__ = [
    "calibration_score",
    "coverage",
    "crps",
    "flatten_events",
    "interval_length",
    "oracle_calibration",
    "oracle_coverage",
    "oracle_gap",
    "pit",
    "pit_histogram",
    "pit_ks",
    "quantile_levels",
    "rmse",
    "sample_quantiles",
    "summarize",
    "type_accuracy",
]


# -- levels and event selection -------------------------------------------------------------------------------------
def quantile_levels(step: float = 0.05) -> tuple[float, ...]:
    """The levels ``step, 2 step, ..., 1 - step``, each the float nearest to ``k / n`` (no accumulated drift).

    The official code evaluates ``q in {0.05, ..., 0.95}`` (``eval_quantile_step 0.05`` in every script).

    Args:
        step: spacing in (0, 0.5] with ``1 / step`` an integer ``n`` (to 1e-9).

    Returns:
        ``n - 1`` levels ``k / n``, ``k = 1, ..., n - 1``.

    Raises:
        ValueError: if ``step`` is outside (0, 0.5] or does not divide 1.

    Example:
        >>> quantile_levels(0.1)
        (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    """
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not (0 < step <= 0.5):
        raise ValueError(f"step must be a number in (0, 0.5], got {step!r}")
    n = round(1.0 / step)
    if abs(n * step - 1.0) > 1e-9:
        raise ValueError(f"step must divide 1 (1 / step an integer), got {step!r}")
    return tuple(k / n for k in range(1, n))


def flatten_events(samples: ArrayLike, y: ArrayLike, mask: ArrayLike) -> tuple[Tensor, Tensor]:
    """Keep the real events of padded batches: ``(samples[mask], y[mask])``, shapes ``(N, S)`` and ``(N,)``.

    Args:
        samples: ``(..., S)``, e.g. ``(B, L, S)`` from the sampler.
        y: ``(...)``, the true gaps, e.g. ``(B, L)``.
        mask: ``(...)`` booleans, True at predicted (non-padding) events.

    Returns:
        float64 ``(N, S)`` and ``(N,)`` with ``N = mask.sum()``.

    Raises:
        ValueError: if the shapes disagree or ``mask`` is not boolean.

    Example:
        >>> s, t = flatten_events(torch.ones(2, 3, 4), torch.zeros(2, 3), torch.tensor([[1, 1, 0], [1, 0, 0]]) > 0)
        >>> tuple(s.shape), tuple(t.shape)
        ((3, 4), (3,))
    """
    m = mask.detach() if isinstance(mask, Tensor) else torch.as_tensor(np.asarray(mask))
    if m.dtype != torch.bool:
        raise ValueError(f"mask must be boolean, got dtype {m.dtype}")
    x = _tensor("samples", samples, m.ndim + 1)
    yt = _tensor("y", y, m.ndim, x.device)
    if tuple(x.shape[:-1]) != tuple(m.shape) or tuple(yt.shape) != tuple(m.shape):
        raise ValueError(f"samples (..., S), y and mask must share leading shape; got {tuple(x.shape)}, "
                         f"{tuple(yt.shape)}, {tuple(m.shape)}")  # fmt: skip
    m = m.to(x.device)
    return x[m], yt[m]


def sample_quantiles(samples: ArrayLike, q: Levels) -> Tensor:
    """Per-event sample quantiles ``Q_q`` (type 7, as ``torch.quantile``; no 16M-element limit).

    Args:
        samples: ``(N, S)``, ``S >= 2``.
        q: levels ``(Q,)`` in (0, 1).

    Returns:
        float64 ``(N, Q)``.

    Raises:
        ValueError: on a bad shape, NaN/inf or a level outside (0, 1).

    Example:
        >>> sample_quantiles(torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]]), [0.5, 0.9])
        tensor([[2.0000, 3.6000]], dtype=torch.float64)
    """
    x = _samples(samples)
    return _quantiles_sorted(x.sort(dim=1).values, _levels("q", q, x.device))


# -- calibration ----------------------------------------------------------------------------------------------------
@overload
def coverage(samples: ArrayLike, y: ArrayLike, q: float, kind: str = ...) -> float: ...
@overload
def coverage(samples: ArrayLike, y: ArrayLike, q: Levels, kind: str = ...) -> Tensor: ...
def coverage(samples: ArrayLike, y: ArrayLike, q: float | Levels, kind: str = "upper") -> float | Tensor:
    r"""Empirical coverage of the predicted intervals at level ``q``.

    .. math::
        \text{upper: } \frac1N \sum_i 1[y_i < \hat Q_{q,i}] \qquad
        \text{central: } \frac1N \sum_i 1[\hat Q_{(1-q)/2,i} \le y_i \le \hat Q_{(1+q)/2,i}]

    "upper" is the official single-bound interval ``[0, Q_q]`` (strict ``<``); "central" is closed on both ends.
    With ``S`` exact samples the expected upper coverage is ``k/(S+1) .. (k+1)/(S+1)``, ``k = floor((S-1)q) + 1``,
    i.e. about ``q + (1 - 2q)/(S + 1)``, not exactly ``q``.

    Args:
        samples: ``(N, S)``.
        y: ``(N,)`` true gaps.
        q: one level (returns a float) or levels ``(Q,)`` (returns a tensor), each in (0, 1).
        kind: ``"upper"`` or ``"central"``.

    Returns:
        The fraction covered, a float or float64 ``(Q,)``.

    Raises:
        ValueError: on bad shapes, NaN, ``q`` outside (0, 1) or an unknown ``kind``.

    Example:
        >>> s = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0], [10.0, 11.0, 12.0, 13.0, 14.0]])
        >>> coverage(s, torch.tensor([2.0, 15.0]), [0.5, 0.9]), coverage(s, torch.tensor([2.0, 15.0]), 0.5, "central")
        (tensor([0.0000, 0.5000], dtype=torch.float64), 0.5)
    """
    _choice("kind", kind, ("upper", "central"))
    x, yt = _samples_y(samples, y)
    qt = _levels("q", q, x.device)
    xs = x.sort(dim=1).values
    yc = yt[:, None]
    if kind == "upper":
        cov = (yc < _quantiles_sorted(xs, qt)).to(_F64).mean(0)
    else:
        lo, hi = _quantiles_sorted(xs, (1 - qt) / 2), _quantiles_sorted(xs, (1 + qt) / 2)
        cov = ((lo <= yc) & (yc <= hi)).to(_F64).mean(0)
    return float(cov[0]) if isinstance(q, (int, float)) else cov


def calibration_score(cov: Levels, q: Levels, subset: str = "upper") -> float:
    r"""Calibration score: the RMS gap between coverage and nominal level.

    .. math::
        \mathrm{CS} = \sqrt{\frac{1}{|\mathcal Q|} \sum_{q \in \mathcal Q} (\mathrm{cov}(q) - q)^2}, \qquad
        \mathcal Q = \{q : q \ge 0.5\}\ (\text{``upper''}, \text{official}) \text{ or all levels (``all'')}.

    The official CS uses the upper (single-bound) coverage with ``subset="upper"``.

    Args:
        cov: coverages ``(Q,)`` in [0, 1] (from :func:`coverage` or
            :func:`~smurf_thp.oracle_metrics.oracle_coverage`).
        q: their levels ``(Q,)`` in (0, 1).
        subset: ``"upper"`` (levels ``>= 0.5``) or ``"all"``.

    Returns:
        CS >= 0.

    Raises:
        ValueError: on mismatched lengths, values out of range, or no level ``>= 0.5`` for ``"upper"``.

    Example:
        >>> calibration_score([0.5, 0.75, 1.0], [0.25, 0.5, 0.75]), calibration_score([0.0, 0.75], [0.25, 0.5], "all")
        (0.25, 0.25)
    """
    return _calibration_score(cov, q, subset)


@overload
def interval_length(samples: ArrayLike, q: float, kind: str = ...) -> float: ...
@overload
def interval_length(samples: ArrayLike, q: Levels, kind: str = ...) -> Tensor: ...
def interval_length(samples: ArrayLike, q: float | Levels, kind: str = "upper") -> float | Tensor:
    r"""Mean length of the predicted intervals at level ``q`` (original units).

    .. math::
        \text{upper: } \frac1N \sum_i \max(\hat Q_{q,i}, 0) \qquad
        \text{central: } \frac1N \sum_i (\hat Q_{(1+q)/2,i} - \hat Q_{(1-q)/2,i})

    "upper" is the official ``Q_q.clamp(min=0)`` (interval ``[0, Q_q]``); its printed "Interval Length" is
    ``q = 0.5``, a mean median. The central width is not clamped (negative samples count as they are).

    Args:
        samples: ``(N, S)``.
        q: one level (float result) or levels ``(Q,)`` (tensor result).
        kind: ``"upper"`` or ``"central"``.

    Returns:
        Mean length, a float or float64 ``(Q,)``.

    Raises:
        ValueError: on a bad shape, NaN, ``q`` outside (0, 1) or an unknown ``kind``.

    Example:
        >>> s = torch.tensor([[-4.0, -3.0, -2.0, -1.0, 0.0], [0.0, 1.0, 2.0, 3.0, 4.0]])
        >>> interval_length(s, 0.5), interval_length(s, 0.5, "central")
        (1.0, 2.0)
    """
    _choice("kind", kind, ("upper", "central"))
    x = _samples(samples)
    qt = _levels("q", q, x.device)
    xs = x.sort(dim=1).values
    if kind == "upper":
        il = _quantiles_sorted(xs, qt).clamp(min=0).mean(0)
    else:
        il = (_quantiles_sorted(xs, (1 + qt) / 2) - _quantiles_sorted(xs, (1 - qt) / 2)).mean(0)
    return float(il[0]) if isinstance(q, (int, float)) else il


# -- scores ---------------------------------------------------------------------------------------------------------
def _crps_sorted(xs: Tensor, y: Tensor, fair: bool) -> Tensor:
    """Per-event CRPS ``(N,)`` from rows sorted ascending; ``sum_ij |x_i - x_j| = 2 sum_i (2i - S + 1) x_(i)``."""
    s = xs.shape[1]
    weights = 2 * torch.arange(s, device=xs.device, dtype=_F64) - (s - 1)  # (S,), 0-based rank i -> 2i - S + 1
    pair_sum = 2 * (xs * weights).sum(1)  # sum over ordered pairs i != j of |x_i - x_j|
    return (xs - y[:, None]).abs().mean(1) - pair_sum / (2 * s * (s - 1) if fair else 2 * s * s)


@overload
def crps(samples: ArrayLike, y: ArrayLike, *, fair: bool = ..., per_event: Literal[False] = ...) -> float: ...
@overload
def crps(samples: ArrayLike, y: ArrayLike, *, fair: bool = ..., per_event: Literal[True]) -> Tensor: ...
def crps(samples: ArrayLike, y: ArrayLike, *, fair: bool = True, per_event: bool = False) -> float | Tensor:
    r"""Continuous ranked probability score of the sample ensemble (lower is better, original units).

    .. math::
        \mathrm{CRPS}_i = \frac1S \sum_s |X_{is} - y_i| - \frac{1}{2 S (S - 1)} \sum_{s \ne t} |X_{is} - X_{it}|
        \quad (\text{fair}), \qquad \text{denominator } 2 S^2 \text{ for the V-statistic (``fair=False``)}.

    The fair (U-statistic) form is unbiased for the CRPS of the law the samples come from; the official code's
    V-statistic is *higher* by exactly ``U / (2S)``, ``U`` the mean pairwise distance (``≈ E|X - X'|``). Computed in
    ``O(S log S)`` per event by sorting.

    Args:
        samples: ``(N, S)``, ``S >= 2``.
        y: ``(N,)`` true gaps.
        fair: U-statistic (default) or the official V-statistic.
        per_event: return the ``(N,)`` scores instead of their mean.

    Returns:
        The mean over events (float) or float64 ``(N,)``.

    Raises:
        ValueError: on bad shapes or NaN.

    Example:
        >>> crps(torch.tensor([[0.0, 2.0]]), torch.tensor([1.0])), crps([[0.0, 2.0]], [1.0], fair=False)
        (0.0, 0.5)
    """
    x, yt = _samples_y(samples, y)
    per = _crps_sorted(x.sort(dim=1).values, yt, fair)
    return per if per_event else float(per.mean())


def rmse(samples: ArrayLike, y: ArrayLike, point: str = "median") -> float:
    r"""Root mean squared error of a point forecast taken from the samples: ``sqrt(mean_i (p_i - y_i)^2)``.

    ``p_i`` is the interpolated median ``Q_0.5`` (the mean of the two middle samples for even ``S``; not
    ``torch.median``, which returns the lower one) or the sample mean. The official code has no RMSE.

    Args:
        samples: ``(N, S)``.
        y: ``(N,)``.
        point: ``"median"`` or ``"mean"``.

    Returns:
        RMSE in the units of ``y``.

    Raises:
        ValueError: on bad shapes, NaN or an unknown ``point``.

    Example:
        >>> rmse(torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 10.0]]), torch.tensor([0.0, 2.5]), "mean")
        1.7677669529663689
    """
    _choice("point", point, ("median", "mean"))
    x, yt = _samples_y(samples, y)
    p = x.mean(1) if point == "mean" else _quantiles_sorted(x.sort(dim=1).values, x.new_tensor([0.5]))[:, 0]
    return math.sqrt(float(((p - yt) ** 2).mean()))


def type_accuracy(predicted: ArrayLike, true_types: ArrayLike, rule: str = "mode") -> float:
    """Fraction of events whose predicted type equals the true one (types 0-based).

    ``rule="mode"`` (official): ``predicted`` are sampled types ``(N, S)`` and the prediction is the most frequent
    one, ties broken towards the smallest type (the official ``torch.mode`` documents no tie rule; it gives the
    smallest on CPU). ``rule="argmax"``: ``predicted`` are probabilities or logits ``(N, K)``, ties -> smallest.

    Args:
        predicted: int ``(N, S)`` for ``"mode"``; float ``(N, K)`` for ``"argmax"``.
        true_types: int ``(N,)``, ``>= 0``.
        rule: ``"mode"`` or ``"argmax"``.

    Returns:
        Accuracy in [0, 1].

    Raises:
        ValueError: on bad shapes or dtypes, negative types, NaN or an unknown ``rule``.

    Example:
        >>> type_accuracy(torch.tensor([[2, 2, 1, 1, 0], [0, 1, 1, 2, 2]]), torch.tensor([1, 2]))
        0.5
    """
    _choice("rule", rule, ("mode", "argmax"))
    if rule == "mode":
        sampled = _types("predicted", predicted, 2, torch.device("cpu"))
        truth = _types("true_types", true_types, 1, sampled.device)
        counts = torch.zeros(sampled.shape[0], int(sampled.max()) + 1, dtype=torch.int64)
        counts.scatter_add_(1, sampled, torch.ones_like(sampled))  # (N, K) votes per type
        pred = counts.argmax(1)  # argmax returns the first maximum: the smallest tied type
    else:
        probs = _tensor("predicted", predicted, 2)
        truth = _types("true_types", true_types, 1, probs.device)
        pred = probs.argmax(1)
    if pred.shape[0] != truth.shape[0]:
        raise ValueError(f"true_types must have {pred.shape[0]} entries to match predicted, got {truth.shape[0]}")
    return float((pred.to(truth.device) == truth).to(_F64).mean())


# -- everything at once ---------------------------------------------------------------------------------------------
def summarize(
    samples: ArrayLike,
    y: ArrayLike,
    types_sampled: ArrayLike | None = None,
    types_true: ArrayLike | None = None,
    quantiles: Levels | None = None,
    true_cdf: Callable[[np.ndarray[Any, Any]], Any] | None = None,
    type_rule: str = "mode",
) -> dict[str, Any]:
    """Every metric in one JSON-ready dict (what ``smurf-thp evaluate`` prints).

    Keys: ``n_events``, ``n_samples``, ``quantiles``; ``cs`` (upper coverage, ``q >= 0.5``, official),
    ``cs_all`` (upper, all ``q``), ``cs_central`` (central coverage, all ``q``); ``coverage_upper`` and
    ``coverage_central`` (lists per ``q``); ``il`` (official: mean ``max(Q_0.5, 0)``), ``il_upper`` and
    ``il_central`` (lists per ``q``); ``crps`` (fair) and ``crps_official`` (V-statistic); ``rmse_median``,
    ``rmse_mean``; ``frac_negative`` (share of samples ``< 0``); ``accuracy`` when types are given; ``oracle_cs``,
    ``oracle_cs_all`` and ``oracle_coverage`` when ``true_cdf`` is given. Lengths and scores are in ``y``'s units;
    ``cs`` and ``oracle_cs`` are NaN when no level is ``>= 0.5``.

    Args:
        samples: ``(N, S)``.
        y: ``(N,)``.
        types_sampled: sampled types ``(N, S)`` (``type_rule="mode"``) or probabilities ``(N, K)`` (``"argmax"``).
        types_true: true types ``(N,)``; given together with ``types_sampled``.
        quantiles: levels (default :func:`quantile_levels` ``(0.05)``).
        true_cdf: ``true_cdf_at`` of :func:`~smurf_thp.oracle_metrics.oracle_coverage`.
        type_rule: ``"mode"`` or ``"argmax"``.

    Returns:
        ``dict[str, int | float | list[float]]``.

    Raises:
        ValueError: as the single metrics, or if only one of ``types_sampled`` and ``types_true`` is given.

    Example:
        >>> out = summarize(torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]]), torch.tensor([2.5]), quantiles=[0.5, 0.9])
        >>> out["coverage_upper"], out["il"], round(out["crps"], 12), out["frac_negative"]
        ([0.0, 1.0], 2.0, 0.3, 0.0)
    """
    if (types_sampled is None) != (types_true is None):
        raise ValueError("types_sampled and types_true must be given together")
    x, yt = _samples_y(samples, y)
    qt = _levels("quantiles", quantile_levels() if quantiles is None else quantiles, x.device)
    xs = x.sort(dim=1).values
    yc = yt[:, None]
    upper = _quantiles_sorted(xs, qt)  # (N, Q)
    lo, hi = _quantiles_sorted(xs, (1 - qt) / 2), _quantiles_sorted(xs, (1 + qt) / 2)
    cov_u = (yc < upper).to(_F64).mean(0)
    cov_c = ((lo <= yc) & (yc <= hi)).to(_F64).mean(0)
    median = _quantiles_sorted(xs, qt.new_tensor([0.5]))[:, 0]
    has_upper = bool((qt >= 0.5 - _HALF_TOL).any())
    out: dict[str, Any] = {
        "n_events": int(x.shape[0]),
        "n_samples": int(x.shape[1]),
        "quantiles": qt.tolist(),
        "cs": calibration_score(cov_u, qt, "upper") if has_upper else math.nan,
        "cs_all": calibration_score(cov_u, qt, "all"),
        "cs_central": calibration_score(cov_c, qt, "all"),
        "coverage_upper": cov_u.tolist(),
        "coverage_central": cov_c.tolist(),
        "il": float(median.clamp(min=0).mean()),
        "il_upper": upper.clamp(min=0).mean(0).tolist(),
        "il_central": (hi - lo).mean(0).tolist(),
        "crps": float(_crps_sorted(xs, yt, fair=True).mean()),
        "crps_official": float(_crps_sorted(xs, yt, fair=False).mean()),
        "rmse_median": math.sqrt(float(((median - yt) ** 2).mean())),
        "rmse_mean": math.sqrt(float(((x.mean(1) - yt) ** 2).mean())),
        "frac_negative": float((x < 0).to(_F64).mean()),
    }
    if types_sampled is not None and types_true is not None:
        out["accuracy"] = type_accuracy(types_sampled, types_true, type_rule)
    if true_cdf is not None:
        oc = oracle_coverage(x, true_cdf, qt)
        out["oracle_cs"] = calibration_score(oc, qt, "upper") if has_upper else math.nan
        out["oracle_cs_all"] = calibration_score(oc, qt, "all")
        out["oracle_coverage"] = oc.tolist()
    return out
