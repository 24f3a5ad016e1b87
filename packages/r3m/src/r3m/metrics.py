"""Evaluation metrics: preference accuracy, reward correlations and outlier detection.

R³M is judged on the clean-test preference accuracy of the learned reward, on how well ``r̂``
correlates with ``r*`` (spec §6 B1), and on how well its per-pair ``δ_i`` find the corrupted pairs:
precision/recall of the flagged set ``{δ_i > 0}`` and the AUROC of ``δ`` as an outlier score
(spec §7: report both: ``δ = max(t_λ − d, 0)`` is a non-increasing function of the margin that ties
every unflagged pair at 0, so its AUROC is not that of ``−margin``).

Every function takes torch tensors or numpy arrays (on any device), computes in float64 numpy and
returns plain Python numbers. Undefined values (a correlation of a constant input, a precision
with nothing flagged, an AUROC with one class empty) are returned as ``nan`` with a logged
warning; scipy and scikit-learn are not needed (the tests check against ``scipy.stats`` and brute
force).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch

logger = logging.getLogger(__name__)

__all__ = [
    "flag_precision",
    "kendall_tau",
    "outlier_auroc",
    "outlier_precision_recall",
    "pearson",
    "preference_accuracy",
    "reward_correlation",
    "spearman",
]

ArrayLike = torch.Tensor | npt.NDArray[Any]
"""A 1-D torch tensor or numpy array."""

CorrelationKind = Literal["pearson", "spearman", "kendall"]

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


def _mask(x: ArrayLike, name: str) -> npt.NDArray[np.bool_]:
    """``x`` as a 1-D numpy bool array, or a ValueError naming ``name``."""
    if isinstance(x, torch.Tensor):
        if x.dtype != torch.bool:
            raise ValueError(f"{name} must be a bool tensor, got dtype {x.dtype}")
        arr = x.detach().cpu().numpy()
    elif isinstance(x, np.ndarray):
        if x.dtype != np.bool_:
            raise ValueError(f"{name} must be a bool array, got dtype {x.dtype}")
        arr = x
    else:
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
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


def reward_correlation(pred: ArrayLike, true: ArrayLike, kind: CorrelationKind = "pearson") -> float:
    """Correlation of a learned reward ``r̂`` with the true reward ``r*`` on the same inputs.

    Args:
        pred: ``(n,)`` learned rewards ``r̂(x_i)`` (per step or per segment).
        true: ``(n,)`` true rewards ``r*(x_i)``.
        kind: ``"pearson"`` (:func:`pearson`), ``"spearman"`` (:func:`spearman`) or ``"kendall"``
            (:func:`kendall_tau`, tau-b).

    Returns:
        The correlation in ``[−1, 1]``; ``nan`` if either input is constant.

    Raises:
        ValueError: if ``kind`` is unknown or the inputs are not finite 1-D arrays of one length ``≥ 2``.

    Example:
        >>> x = np.array([1.0, 2.0, 3.0, 4.0])
        >>> reward_correlation(x**3, x, kind="spearman")
        1.0
    """
    a, _ = _pair(pred, true, ("pred", "true"))  # named as passed here, not as x and y
    if a.size < 2:
        raise ValueError(f"pred and true need at least 2 values, got {a.size}")
    if kind == "pearson":
        return pearson(pred, true)
    if kind == "spearman":
        return spearman(pred, true)
    if kind == "kendall":
        return kendall_tau(pred, true)
    raise ValueError(f"kind must be 'pearson', 'spearman' or 'kendall', got {kind!r}")


def outlier_precision_recall(flagged: ArrayLike, corrupted: ArrayLike) -> tuple[float, float]:
    """Precision and recall of a flagged set against the truly corrupted pairs.

    With ``TP = |flagged ∧ corrupted|``: precision ``= TP / |flagged|``, recall ``= TP / |corrupted|``.
    For R³M the flagged set is ``{δ_i > 0}`` (spec §1).

    Args:
        flagged: ``(N,)`` bool, True on the pairs a method calls outliers.
        corrupted: ``(N,)`` bool, True on the pairs whose label contradicts the truth.

    Returns:
        ``(precision, recall)``; precision is ``nan`` when nothing is flagged and recall is ``nan``
        when nothing is corrupted (each with a logged warning).

    Raises:
        ValueError: if the inputs are not non-empty 1-D bool arrays of one length.

    Example:
        >>> flagged = np.array([True, True, False, False])
        >>> corrupted = np.array([True, False, True, False])
        >>> outlier_precision_recall(flagged, corrupted)
        (0.5, 0.5)
    """
    f, c = _mask(flagged, "flagged"), _mask(corrupted, "corrupted")
    if f.shape != c.shape:
        raise ValueError(f"flagged and corrupted must have the same length, got {f.size} and {c.size}")
    tp = int(np.count_nonzero(f & c))
    n_flagged, n_corrupted = int(np.count_nonzero(f)), int(np.count_nonzero(c))
    if n_flagged == 0:
        logger.warning("outlier_precision_recall: nothing is flagged, precision is undefined (nan)")
    if n_corrupted == 0:
        logger.warning("outlier_precision_recall: nothing is corrupted, recall is undefined (nan)")
    precision = tp / n_flagged if n_flagged else math.nan
    recall = tp / n_corrupted if n_corrupted else math.nan
    return precision, recall


def flag_precision(corrupted_share: float, recall: float, clean_flag_rate: float) -> float:
    """Precision of a flagged set from the corrupted share ρ, its recall R and its flag rate e on clean pairs.

    Of N pairs, ρN are corrupted and (1 − ρ)N clean; a flagged set with recall R and clean-pair
    flag rate e holds TP = RρN corrupted and FP = e(1 − ρ)N clean pairs, so, exactly,

    .. math::

        P = \\frac{ρR}{ρR + (1 − ρ)e} \\le \\frac{ρ}{ρ + (1 − ρ)e}.

    The right side (R = 1) bounds any detector's precision by its false-flag rate on the clean
    pairs. For R³M at λ = ½ (threshold t_λ = 0) the flagged pairs are those the model ranks
    against their label, so e is the model's error rate on the clean training pairs: precision
    cannot exceed what the fitted reward's accuracy on them allows, however large the recall.

    Args:
        corrupted_share: ρ ∈ [0, 1], share of corrupted pairs.
        recall: R ∈ [0, 1], share of corrupted pairs flagged (1 gives the bound).
        clean_flag_rate: e ∈ [0, 1], share of clean pairs flagged.

    Returns:
        P ∈ [0, 1]; ``nan`` when nothing would be flagged (ρR + (1 − ρ)e = 0).

    Raises:
        ValueError: if an argument is not a number in [0, 1].

    Example:
        >>> round(flag_precision(0.2, 1.0, 0.1), 4)  # 0.2 / (0.2 + 0.8 · 0.1)
        0.7143
    """
    for name, value in (("corrupted_share", corrupted_share), ("recall", recall), ("clean_flag_rate", clean_flag_rate)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    tp, fp = corrupted_share * recall, (1.0 - corrupted_share) * clean_flag_rate
    return tp / (tp + fp) if tp + fp > 0 else math.nan


def outlier_auroc(scores: ArrayLike, corrupted: ArrayLike) -> float:
    """Area under the ROC curve of an outlier score, in the Mann-Whitney form.

    .. math::

        \\mathrm{AUROC} = \\frac{1}{n_+ n_-} \\sum_{i: c_i} \\sum_{j: \\neg c_j}
            \\big(1[s_i > s_j] + \\tfrac12 1[s_i = s_j]\\big),

    the probability that a corrupted pair scores higher than a clean one, ties counting ½. It is
    computed in O(n log n) from average ranks: ``(Σ_{i: c_i} rank_i − n_+(n_+ + 1)/2) / (n_+ n_-)``.

    Args:
        scores: ``(N,)`` finite outlier scores, larger meaning more suspect (R³M's ``δ_i``, or
            ``−margin``).
        corrupted: ``(N,)`` bool, True on the truly corrupted pairs.

    Returns:
        The AUROC in ``[0, 1]`` (0.5 for an uninformative score); ``nan`` with a logged warning if
        every pair is corrupted or none is.

    Raises:
        ValueError: if ``scores`` is not a finite 1-D array, ``corrupted`` not a 1-D bool array, or
            their lengths differ.

    Example:
        >>> outlier_auroc(np.array([0.9, 0.1, 0.5, 0.5]), np.array([True, False, True, False]))
        0.875
    """
    s, c = _vector(scores, "scores"), _mask(corrupted, "corrupted")
    if s.shape != c.shape:
        raise ValueError(f"scores and corrupted must have the same length, got {s.size} and {c.size}")
    n_pos = int(np.count_nonzero(c))
    n_neg = s.size - n_pos
    if n_pos == 0 or n_neg == 0:
        logger.warning(
            "outlier_auroc: only one class is present (%d corrupted of %d), AUROC is undefined (nan)", n_pos, s.size
        )
        return math.nan
    u = float(_rankdata(s)[c].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)
