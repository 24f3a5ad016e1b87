r"""PIT and oracle metrics of sampled next-arrival times: PIT values and histogram; coverage, CS, gap vs the truth.

Conventions as in :mod:`smurf_thp.metrics` (which re-exports every function here): ``samples`` ``(N, S)``,
``S >= 2``, true gaps ``y`` ``(N,)``, torch tensors or numpy arrays computed in float64 on the device of
``samples``; quantiles are type 7 (``torch.quantile``). The probability integral transform (PIT) needs only
the observed gaps; the oracle metrics need the true process's next-gap CDF or quantiles (from a simulator),
and carry no Bernoulli noise from ``y``.

References:
    Li et al., SMURF-THP, ICML 2023 (arXiv:2310.16336); Gneiting, Balabdaoui & Raftery 2007 (PIT).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from smurf_thp._metric_utils import (
    _F64,
    ArrayLike,
    Levels,
    _calibration_score,
    _levels,
    _quantiles_sorted,
    _samples,
    _samples_y,
    _tensor,
)

__all__ = ["oracle_calibration", "oracle_coverage", "oracle_gap", "pit", "pit_histogram", "pit_ks"]


# -- probability integral transform ---------------------------------------------------------------------------------
def pit(
    samples: ArrayLike, y: ArrayLike, *, randomized: bool = False, generator: torch.Generator | None = None
) -> Tensor:
    r"""Probability integral transform of each true gap under its sample ensemble.

    .. math::
        u_i = \frac{\#\{s : X_{is} < y_i\}}{S} \quad (\text{default}), \qquad
        u_i = \frac{\#\{s : X_{is} < y_i\} + V_i\,(\#\{s : X_{is} = y_i\} + 1)}{S + 1},\ V_i \sim U(0, 1)
        \quad (\text{randomized}).

    The randomised (rank) form is exactly ``U(0, 1)`` when ``y_i`` and the samples are exchangeable draws, ties
    included; the default is the empirical CDF just below ``y_i``, a discrete value in ``{0, 1/S, ..., 1}``.

    Args:
        samples: ``(N, S)``.
        y: ``(N,)``.
        randomized: use the randomised rank form.
        generator: CPU ``torch.Generator`` for ``V`` (randomised form only).

    Returns:
        float64 ``(N,)`` in [0, 1].

    Raises:
        ValueError: on bad shapes or NaN.

    Example:
        >>> pit(torch.tensor([[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]]), torch.tensor([1.5, 1.0]))
        tensor([0.5000, 0.2500], dtype=torch.float64)
    """
    x, yt = _samples_y(samples, y)
    below = (x < yt[:, None]).sum(1).to(_F64)
    if not randomized:
        return below / x.shape[1]
    ties = (x == yt[:, None]).sum(1).to(_F64)
    v = torch.rand(x.shape[0], generator=generator, dtype=_F64).to(x.device)
    return (below + v * (ties + 1)) / (x.shape[1] + 1)


def pit_ks(pit_values: ArrayLike) -> float:
    r"""Kolmogorov-Smirnov distance of PIT values from ``U(0, 1)``: one number for "how far from calibrated".

    .. math:: D = \max_i \max\Big(\frac{i}{n} - u_{(i)},\ u_{(i)} - \frac{i-1}{n}\Big)

    over the sorted values ``u_(1) <= ... <= u_(n)``.

    Example:
        >>> pit_ks(torch.tensor([0.125, 0.375, 0.625, 0.875]))  # the midpoints of 4 equal bins: 1 / (2n)
        0.125
    """
    u = _tensor("pit_values", pit_values, 1)
    if u.numel() == 0 or bool(((u < 0) | (u > 1)).any()):
        raise ValueError("pit_values must be non-empty and lie in [0, 1]")
    srt = torch.sort(u.to(_F64)).values
    n = srt.numel()
    i = torch.arange(1, n + 1, dtype=_F64, device=srt.device)
    return float(torch.maximum(i / n - srt, srt - (i - 1) / n).max())


def pit_histogram(pit_values: ArrayLike, bins: int = 10) -> tuple[Tensor, Tensor]:
    """Density histogram of PIT values on ``bins`` equal bins of [0, 1] (1 everywhere when calibrated).

    Bin ``b`` is ``[b/bins, (b+1)/bins)``, the last one closed; density = count * bins / N.

    Args:
        pit_values: ``(N,)`` in [0, 1].
        bins: number of bins, ``>= 1``.

    Returns:
        ``(density (bins,), edges (bins + 1,))``, float64.

    Raises:
        ValueError: if ``bins < 1`` or a value is outside [0, 1] or NaN.

    Example:
        >>> pit_histogram(torch.tensor([0.0, 0.05, 0.5, 1.0]), bins=4)[0]
        tensor([2., 0., 1., 1.], dtype=torch.float64)
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be an int >= 1, got {bins!r}")
    u = _tensor("pit_values", pit_values, 1)
    if u.numel() == 0 or bool(((u < 0) | (u > 1)).any()):
        raise ValueError("pit_values must be non-empty and lie in [0, 1]")
    idx = (u * bins).floor().long().clamp(max=bins - 1)
    counts = torch.bincount(idx, minlength=bins).to(_F64)
    return counts * bins / u.numel(), torch.linspace(0, 1, bins + 1, dtype=_F64, device=u.device)


# -- against the true process ---------------------------------------------------------------------------------------
def oracle_coverage(samples: ArrayLike, true_cdf_at: Callable[[np.ndarray[Any, Any]], Any], q: Levels) -> Tensor:
    r"""Expected upper coverage of the model quantiles under the true law: ``mean_i F_i(Q_{q,i})`` per level.

    .. math::
        \mathrm{cov}^\star(q) = \frac1N \sum_i F_i(\hat Q_{q,i})

    ``F_i`` is the true next-gap CDF of event ``i`` (from a simulator's oracle). Unlike
    :func:`~smurf_thp.metrics.coverage` it carries no Bernoulli noise from ``y``.

    Args:
        samples: ``(N, S)`` model samples.
        true_cdf_at: called once with a float64 numpy array ``(N, Q)`` of model quantiles ``Q_{q,i}``; returns
            ``F_i(Q_{q,i})`` as an ``(N, Q)`` array (numpy or torch) in [0, 1].
        q: levels ``(Q,)``.

    Returns:
        float64 ``(Q,)``.

    Raises:
        ValueError: on bad shapes or NaN in the input, or a CDF output of the wrong shape, NaN or outside [0, 1].

    Example:
        >>> s = torch.tensor([[0.0, 1.0, 2.0]])
        >>> oracle_coverage(s, lambda v: np.clip(v / 2, 0, 1), [0.5, 0.75])  # U(0, 2)
        tensor([0.5000, 0.7500], dtype=torch.float64)
    """
    x = _samples(samples)
    quant = _quantiles_sorted(x.sort(dim=1).values, _levels("q", q, x.device))  # (N, Q)
    f = _tensor("true_cdf_at(...)", true_cdf_at(quant.cpu().numpy()), 2, x.device)
    if f.shape != quant.shape or bool(((f < 0) | (f > 1)).any()):
        raise ValueError(f"true_cdf_at(...) must return values in [0, 1] of shape {tuple(quant.shape)}")
    return f.mean(0)


def oracle_calibration(
    samples: ArrayLike, true_cdf_at: Callable[[np.ndarray[Any, Any]], Any], q: Levels, subset: str = "upper"
) -> float:
    r"""Calibration score against the true process: ``calibration_score(oracle_coverage(...), q, subset)``.

    .. math::
        \mathrm{CS}^\star = \sqrt{\operatorname{mean}_{q \ge 0.5} \big(\operatorname{mean}_i F_i(\hat Q_{q,i}) - q\big)^2}

    (over all levels with ``subset="all"``). Exact samples score about ``|1 - 2q| / (S + 1)`` per level (finite
    ``S``), not 0.

    Args:
        samples: ``(N, S)``.
        true_cdf_at: as in :func:`oracle_coverage`.
        q: levels ``(Q,)``.
        subset: ``"upper"`` or ``"all"``.

    Returns:
        CS* >= 0.

    Raises:
        ValueError: as :func:`oracle_coverage` and :func:`~smurf_thp.metrics.calibration_score`.

    Example:
        >>> oracle_calibration(torch.tensor([[0.0, 1.0, 2.0]]), lambda v: np.clip(v / 2, 0, 1), [0.5, 0.75])
        0.0
    """
    return _calibration_score(oracle_coverage(samples, true_cdf_at, q), q, subset)


def oracle_gap(samples: ArrayLike, true_quantiles: ArrayLike, q: Levels) -> Tensor:
    """Mean absolute distance between model and true quantiles per level: ``mean_i |Q_{q,i} - Q*_{q,i}|``.

    Args:
        samples: ``(N, S)``.
        true_quantiles: ``(N, Q)`` true quantiles ``Q*_{q,i}`` (e.g. a simulator's ``next_quantile``).
        q: levels ``(Q,)`` matching the columns.

    Returns:
        float64 ``(Q,)`` in the units of the samples.

    Raises:
        ValueError: on bad shapes, NaN or levels outside (0, 1).

    Example:
        >>> oracle_gap(torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[1.5, 1.0]]), [0.5, 0.75])
        tensor([0.5000, 0.5000], dtype=torch.float64)
    """
    x = _samples(samples)
    quant = _quantiles_sorted(x.sort(dim=1).values, _levels("q", q, x.device))
    truth = _tensor("true_quantiles", true_quantiles, 2, x.device)
    if truth.shape != quant.shape:
        raise ValueError(f"true_quantiles must have shape {tuple(quant.shape)}, got {tuple(truth.shape)}")
    return (quant - truth).abs().mean(0)
