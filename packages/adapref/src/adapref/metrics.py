"""Evaluation metrics: preference accuracy, rank and linear correlations, and τ reports.

The τ reports mirror the paper's Fig. 5: the histogram of the learned per-pair temperatures
``τ_i ∈ [τ0, τmax]`` (with the shares sitting at either bound) and the mean ``τ`` per quantile of the
true preference strength ``|R*(z_w) − R*(z_l)|``, which AdaPref should make increasing.

Every function takes torch tensors or numpy arrays (any float dtype, on any device), computes in
float64 numpy and returns plain Python numbers. Correlations of constant inputs are undefined and
returned as ``nan``; scipy is not needed (the tests check against ``scipy.stats``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

logger = logging.getLogger(__name__)

__all__ = [
    "kendall_tau",
    "pearson",
    "preference_accuracy",
    "spearman",
    "spearman_ceiling",
    "strength_quantile_table",
    "tau_histogram",
]

ArrayLike = torch.Tensor | npt.NDArray[Any]
"""A 1-D torch tensor or numpy array."""

_KENDALL_BLOCK = 1 << 22
"""Elements per block of the O(n²) pairwise comparison in :func:`kendall_tau` (bounds its memory)."""


def _vector(x: ArrayLike, name: str) -> npt.NDArray[np.float64]:
    """``x`` as a finite 1-D float64 numpy array, or a ValueError naming ``name``."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
        arr = x.detach().to("cpu", torch.float64).numpy()
    elif isinstance(x, np.ndarray):
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.issubdtype(x.dtype, np.complexfloating):
            raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
        arr = x.astype(np.float64)
    else:
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _pair(
    x: ArrayLike, y: ArrayLike, names: tuple[str, str]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    a, b = _vector(x, names[0]), _vector(y, names[1])
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same length, got {a.size} and {b.size}")
    return a, b


def preference_accuracy(chosen_scores: ArrayLike, rejected_scores: ArrayLike) -> float:
    """Share of pairs the scores rank as labelled; a tie counts 0.5.

    Args:
        chosen_scores: ``(N,)`` scores ``r(z_w)`` of the preferred segments.
        rejected_scores: ``(N,)`` scores ``r(z_l)``.

    Returns:
        ``mean(1[s_w > s_l] + 0.5·1[s_w = s_l])`` in ``[0, 1]``.

    Raises:
        ValueError: if the inputs are not finite 1-D arrays of one non-zero length.

    Example:
        >>> preference_accuracy(torch.tensor([2.0, 1.0, 0.0]), torch.tensor([1.0, 1.0, 3.0]))
        0.5
    """
    c, r = _pair(chosen_scores, rejected_scores, ("chosen_scores", "rejected_scores"))
    return float(np.mean((c > r) + 0.5 * (c == r)))


def pearson(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson's linear correlation ``cov(x, y) / (sd(x)·sd(y))``.

    Args:
        x: ``(n,)`` values, ``n ≥ 2``.
        y: ``(n,)`` values.

    Returns:
        The correlation in ``[−1, 1]``; ``nan`` if ``x`` or ``y`` is constant.

    Raises:
        ValueError: if the inputs are not finite 1-D arrays of one length ``≥ 2``.

    Example:
        >>> pearson(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.5]))  # doctest: +ELLIPSIS
        0.99...
    """
    a, b = _pair(x, y, ("x", "y"))
    return _pearson(a, b, "pearson", ("x", "y"))


def _pearson(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], name: str, names: tuple[str, str]) -> float:
    """Pearson's r of checked arrays; ``name`` is the function the user called (for the log line),
    ``names`` its arguments (for the error)."""
    if a.size < 2:
        raise ValueError(f"{names[0]} and {names[1]} need at least 2 values, got {a.size}")
    da, db = a - a.mean(), b - b.mean()
    # a constant input leaves rounding residue after the mean is subtracted (0.1 - mean(0.1, 0.1, 0.1) != 0)
    if a.min() == a.max() or b.min() == b.max():
        logger.warning("%s: an input is constant, the correlation is undefined (nan)", name)
        return math.nan
    da, db = da / np.abs(da).max(), db / np.abs(db).max()  # scaled: da @ da of 1e200s would overflow to inf
    denom = math.sqrt(float(da @ da) * float(db @ db))
    if denom == 0.0:
        logger.warning("%s: an input is constant, the correlation is undefined (nan)", name)
        return math.nan
    return max(-1.0, min(1.0, float(da @ db) / denom))


def _rankdata(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """1-based ranks of ``x``, tied values sharing their average rank (``scipy.stats.rankdata`` ``"average"``)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])  # first sorted position of each tie group
    bounds = np.r_[starts, x.size]
    avg = (bounds[:-1] + bounds[1:] - 1) / 2.0 + 1.0  # mean of the 1-based ranks in each group
    group = np.cumsum(np.r_[True, xs[1:] != xs[:-1]]) - 1  # group of each sorted position
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = avg[group]
    return ranks


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rank correlation: Pearson's correlation of the ranks, ties given average ranks.

    Args:
        x: ``(n,)`` values, ``n ≥ 2``.
        y: ``(n,)`` values.

    Returns:
        The correlation in ``[−1, 1]``; ``nan`` if ``x`` or ``y`` is constant.

    Raises:
        ValueError: if the inputs are not finite 1-D arrays of one length ``≥ 2``.

    Example:
        >>> spearman(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 8.0, 27.0, 64.0]))
        1.0
    """
    a, b = _pair(x, y, ("x", "y"))
    return _pearson(_rankdata(a), _rankdata(b), "spearman", ("x", "y"))


def spearman_ceiling(tau: ArrayLike, strength: ArrayLike, tau0: float, tau_max: float) -> float:
    """The largest Spearman(τ, strength) reachable with τ's numbers of pairs at its two bounds.

    The clip ``τ_i = clip(|d_i|/u*, τ0, τmax)`` ties every pair that reaches a bound, and a tie
    carries no rank information. Let ``n_0`` pairs sit at ``τ0`` and ``n_max`` at ``τmax``. Among
    all τ with those two tie blocks and distinct values elsewhere, the rank correlation with the
    strength is largest when τ orders the pairs as the strength does (rearrangement inequality):
    the ``n_0`` weakest pairs at ``τ0``, the ``n_max`` strongest at ``τmax``. This returns that
    correlation, so a measured Spearman can be read against what the bounds allow.

    Args:
        tau: ``(n,)`` scaling factors in ``[τ0, τmax]``.
        strength: ``(n,)`` true preference strengths, distinct values assumed (ties in the strength
            only lower the ceiling's meaning, not its computation).
        tau0: the lower bound ``τ0 > 0``; pairs with ``τ ≤ τ0·(1 + 1e-6)`` count as at the bound (the
            histogram's relative tolerance; a τ below the bound counts there too).
        tau_max: the upper bound ``τmax``; pairs with ``τ ≥ τmax·(1 − 1e-6)`` count as at the bound
            (``inf`` for the unbounded quadratic form).

    Returns:
        The ceiling in ``[−1, 1]``; ``nan`` if every pair sits in one tie block.

    Raises:
        ValueError: if the inputs are not finite 1-D arrays of one length ``≥ 2``, ``tau0 ≤ 0`` or
            ``tau_max < tau0``.

    Example:
        >>> round(
        ...     spearman_ceiling(torch.tensor([0.1, 0.5, 1.0, 1.0]), torch.tensor([4.0, 1.0, 2.0, 3.0]), 0.1, 1.0), 12
        ... )
        0.948683298051
    """
    t, s = _pair(tau, strength, ("tau", "strength"))
    if not (math.isfinite(tau0) and tau0 > 0) or math.isnan(tau_max) or tau_max < tau0:
        raise ValueError(
            f"need a finite tau0 > 0 and tau_max >= tau0 (inf allowed), got tau0={tau0!r}, tau_max={tau_max!r}"
        )
    n0 = int(np.count_nonzero(t <= tau0 * (1 + 1e-6)))
    n_max = int(np.count_nonzero(t >= tau_max * (1 - 1e-6)))
    if tau_max == tau0:  # every pair sits at the one bound
        n0, n_max = t.size, 0
    order = np.argsort(s, kind="mergesort")
    best = np.empty(t.size, dtype=np.float64)
    best[order] = np.clip(np.arange(t.size, dtype=np.float64), n0 - 1, t.size - n_max)
    return _pearson(_rankdata(best), _rankdata(s), "spearman_ceiling", ("tau", "strength"))


def kendall_tau(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall's tau-b, which corrects for ties in either input.

    ``τ_b = (n_c − n_d) / sqrt((n_0 − n_x)(n_0 − n_y))`` over the ``n_0 = n(n−1)/2`` pairs, with
    ``n_x``/``n_y`` the pairs tied in ``x``/``y``.

    Note:
        The pairwise comparison is O(n²) in time (vectorised, in blocks of about 4M elements so the
        memory stays bounded): well under a second up to ``n ≈ 5000``. Use an O(n log n) routine
        (``scipy.stats.kendalltau``) for larger inputs.

    Args:
        x: ``(n,)`` values, ``n ≥ 2``.
        y: ``(n,)`` values.

    Returns:
        ``τ_b`` in ``[−1, 1]``; ``nan`` if ``x`` or ``y`` is constant.

    Raises:
        ValueError: if the inputs are not finite 1-D arrays of one length ``≥ 2``.

    Example:
        >>> kendall_tau(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0]))  # doctest: +ELLIPSIS
        0.333...
    """
    a, b = _pair(x, y, ("x", "y"))
    n = a.size
    if n < 2:
        raise ValueError(f"x and y need at least 2 values, got {n}")
    # Sums over ordered pairs (i, j), i ≠ j, count each unordered pair twice; the diagonal adds 0.
    s = 0.0
    tied_x = tied_y = -n  # the diagonal's n self-pairs are "tied"; remove them
    rows = max(1, _KENDALL_BLOCK // n)
    for start in range(0, n, rows):
        sx = np.sign(a[start : start + rows, None] - a[None, :])  # (rows, n)
        sy = np.sign(b[start : start + rows, None] - b[None, :])  # (rows, n)
        s += float((sx * sy).sum())
        tied_x += int(np.count_nonzero(sx == 0))
        tied_y += int(np.count_nonzero(sy == 0))
    n0 = n * (n - 1) / 2.0
    denom = math.sqrt((n0 - tied_x / 2.0) * (n0 - tied_y / 2.0))
    if denom == 0.0:
        logger.warning("kendall_tau: an input is constant, the correlation is undefined (nan)")
        return math.nan
    return max(-1.0, min(1.0, (s / 2.0) / denom))


def strength_quantile_table(tau: ArrayLike, strength: ArrayLike, q: int = 5) -> list[dict[str, float | int]]:
    """Mean ``τ`` per quantile bin of the true preference strength (paper Fig. 5b).

    The bin edges are the ``0, 1/q, …, 1`` quantiles of ``strength`` (linear interpolation, as
    ``numpy.quantile``); bin ``k`` holds ``lo ≤ s < hi``, the last one also ``s = hi``. Heavily tied
    strengths can make edges coincide, leaving bins empty (``n = 0``, ``mean_tau = nan``).

    Args:
        tau: ``(N,)`` learned temperatures ``τ_i``.
        strength: ``(N,)`` true strengths ``|R*(z_w) − R*(z_l)|``.
        q: number of bins, ``≥ 1`` (5 gives quintiles).

    Returns:
        ``q`` dicts ``{"lo", "hi", "n", "mean_tau"}``, from the weakest to the strongest bin.

    Raises:
        ValueError: if the inputs are not finite 1-D arrays of one length or ``q < 1``.

    Example:
        >>> rows = strength_quantile_table(torch.arange(4.0), torch.arange(4.0), q=2)
        >>> [(r["n"], r["mean_tau"]) for r in rows]
        [(2, 0.5), (2, 2.5)]
    """
    t, s = _pair(tau, strength, ("tau", "strength"))
    if isinstance(q, bool) or not isinstance(q, int) or q < 1:
        raise ValueError(f"q must be an int >= 1, got {q!r}")
    edges = np.quantile(s, np.linspace(0.0, 1.0, q + 1))
    which = np.searchsorted(edges[1:-1], s, side="right")  # bin index in [0, q)
    table: list[dict[str, float | int]] = []
    for k in range(q):
        members = t[which == k]
        table.append(
            {
                "lo": float(edges[k]),
                "hi": float(edges[k + 1]),
                "n": int(members.size),
                "mean_tau": float(members.mean()) if members.size else math.nan,
            }
        )
    return table


def tau_histogram(tau: ArrayLike, tau0: float, tau_max: float, bins: int = 10) -> dict[str, Any]:
    """Histogram of the learned ``τ_i`` over ``[τ0, τmax]`` and the shares at either bound (Fig. 5a).

    A value counts as "at" a bound when within ``1e-6`` relative of it (float32 round-off). Values
    within that tolerance outside the range are clipped into it; values farther out are counted in
    ``n_outside`` and left out of ``counts``.

    Args:
        tau: ``(N,)`` temperatures.
        tau0: lower bound ``τ0 > 0``.
        tau_max: upper bound ``τmax ≥ τ0`` (equal bounds give a single bin).
        bins: number of equal-width bins, ``≥ 1``.

    Returns:
        ``{"counts": list[int] (bins,), "edges": list[float] (bins + 1,), "frac_at_tau0": float,
        "frac_at_tau_max": float, "n": int, "n_outside": int}``.

    Raises:
        ValueError: if ``tau`` is not a finite 1-D array, or ``tau0``, ``tau_max`` or ``bins`` are invalid.

    Example:
        >>> h = tau_histogram(torch.tensor([0.1, 0.1, 0.5, 1.0]), 0.1, 1.0, bins=3)
        >>> h["counts"], h["frac_at_tau0"], h["frac_at_tau_max"]
        ([2, 1, 1], 0.5, 0.25)
    """
    t = _vector(tau, "tau")
    if not (math.isfinite(tau0) and tau0 > 0):
        raise ValueError(f"tau0 must be a finite number > 0, got {tau0!r}")
    if not (math.isfinite(tau_max) and tau_max >= tau0):
        raise ValueError(f"tau_max must be a finite number >= tau0={tau0}, got {tau_max!r}")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be an int >= 1, got {bins!r}")
    tol0, tol_max = 1e-6 * abs(tau0), 1e-6 * abs(tau_max)
    inside = (t >= tau0 - tol0) & (t <= tau_max + tol_max)
    if tau_max == tau0:  # τ fixed (the Bradley-Terry setting): one degenerate bin
        counts, edges = np.array([np.count_nonzero(inside)]), np.array([tau0, tau_max])
    else:
        counts, edges = np.histogram(np.clip(t[inside], tau0, tau_max), bins=bins, range=(tau0, tau_max))
    n_outside = int(t.size - np.count_nonzero(inside))
    if n_outside:
        logger.warning("tau_histogram: %d of %d values lie outside [tau0, tau_max]", n_outside, t.size)
    return {
        "counts": [int(c) for c in counts],
        "edges": [float(e) for e in edges],
        "frac_at_tau0": float(np.mean(np.abs(t - tau0) <= tol0)),
        "frac_at_tau_max": float(np.mean(np.abs(t - tau_max) <= tol_max)),
        "n": int(t.size),
        "n_outside": n_outside,
    }
