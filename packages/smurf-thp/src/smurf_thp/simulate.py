r"""Ground-truth temporal point processes: exact simulators and exact next-event oracles (the benchmark data).

No event data can be downloaded offline, so every benchmark of this package runs on these processes, and the
true process is the oracle against which calibration is measured (spec §6).

=============================  ==========================================================  ====================
class                          conditional intensity                                       simulation
=============================  ==========================================================  ====================
:class:`HawkesExp`             ``μ_k + Σ_{t_i<t} α_{k k_i} β e^{−β(t − t_i)}``              Ogata thinning
:class:`HawkesSumExp`          ``μ_k + Σ_{t_i<t} Σ_m α_{k k_i m} β_m e^{−β_m (t − t_i)}``   Ogata thinning
:class:`SelfCorrecting`        ``exp(μ t − α N(t))``                                       inversion
:class:`RenewalLogNormal`      hazard of i.i.d. ``LogNormal(μ, s²)`` gaps                  i.i.d. gaps
:class:`PoissonProcess`        ``r_k``                                                     i.i.d. gaps
:class:`TimeDependentMarks`    ``r_{k_j} p(k | τ)``, ``p`` switching at ``τ = 1``          inversion
=============================  ==========================================================  ====================

Hawkes kernels follow tick's convention: ``alpha`` is the kernel's L1 norm (``φ(s) = α β e^{−βs}``), and
``alpha[k, l]`` is the effect of type ``l`` on type ``k``; a non-stationary ``alpha`` (spectral radius ``>= 1``)
is refused. Every process has

- ``simulate(n_seqs, *, t_end=None | n_events=None, seed) -> EventDataset`` (exact; from ``t = 0``);
- the oracle of event ``j + 1`` given events ``0..j`` of an ``EventSequence`` (``j = -1``: the empty history at
  ``t_start``): ``next_cdf(seq, j, tau)``, ``next_quantile(seq, j, q)``, ``next_sample(seq, j, n, rng) -> (tau,
  types)``, ``next_type_probs(seq, j)`` (marginal over the gap), ``next_type_probs_at(seq, j, tau)`` (given the
  gap), ``next_intensity`` and ``next_cumhazard`` (the time-rescaled increment);
- ``loglik(seq)`` (exact, with the survival term up to ``t_end``) and ``to_dict()`` / :func:`process_from_dict`
  (the ``ground_truth.json`` of a simulated data set).

:data:`PRESETS` holds the five benchmark processes of spec §6 (``hawkes1`` and ``hawkes2`` as two variants of
item 2) and :data:`PRESET_T_END` their windows, chosen so that sequences average about 50 events:

=====================  ==================================================================  =======  ===========
preset                 process                                                              t_end    mean events
=====================  ==================================================================  =======  ===========
``hawkes3``            ``HawkesExp(μ=(.2, .3, .1), α=[[.3,.1,0],[.1,.3,.1],[0,.2,.3]], β=2)``  40       46.4
``hawkes1``            ``HawkesExp(0.2, 0.8, 1)`` (Omi et al. 2019)                          50       46.0
``hawkes2``            ``HawkesSumExp(0.2, (0.4, 0.4), (1, 20))`` (Omi et al. 2019)          50       47.9
``self-correcting``    ``SelfCorrecting(1, 1)`` (long-run rate μ/α = 1)                      50       50.3
``renewal-lognormal``  ``RenewalLogNormal(−0.5, 1)`` (mean gap 1, median 0.61)               50       50.1
``time-marks``         ``TimeDependentMarks((2, .5), (.9, .1), (.1, .9), switch=1)``         50       51.8
=====================  ==================================================================  =======  ===========

Mean events: for the Hawkes presets the exact ``E N(t_end)`` from an empty history (below the stationary
``Σ (I − A)^{-1} μ · t_end`` = 47.0 / 50 / 50 because of the start-up transient), else the mean of 2000 simulated
sequences (standard error ≤ 0.3).

Example:
    >>> ds = PRESETS["hawkes3"].simulate(3, t_end=PRESET_T_END["hawkes3"], seed=0)
    >>> len(ds), ds.num_types
    (3, 3)
    >>> process_from_dict(PRESETS["hawkes3"].to_dict()) == PRESETS["hawkes3"]
    True
"""

from __future__ import annotations

from typing import Any

from smurf_thp._hawkes import HawkesExp, HawkesSumExp
from smurf_thp._process import TemporalPointProcess
from smurf_thp._renewal import PoissonProcess, RenewalLogNormal, SelfCorrecting, TimeDependentMarks

__all__ = [
    "PRESETS",
    "PRESET_T_END",
    "PROCESSES",
    "HawkesExp",
    "HawkesSumExp",
    "PoissonProcess",
    "RenewalLogNormal",
    "SelfCorrecting",
    "TemporalPointProcess",
    "TimeDependentMarks",
    "process_from_dict",
]

PROCESSES: dict[str, type[TemporalPointProcess[Any]]] = {
    cls.name: cls
    for cls in (HawkesExp, HawkesSumExp, SelfCorrecting, RenewalLogNormal, PoissonProcess, TimeDependentMarks)
}
"""Registry: the ``"process"`` key of :meth:`TemporalPointProcess.to_dict` -> class."""

PRESETS: dict[str, TemporalPointProcess[Any]] = {
    "hawkes3": HawkesExp(mu=(0.2, 0.3, 0.1), alpha=[[0.3, 0.1, 0.0], [0.1, 0.3, 0.1], [0.0, 0.2, 0.3]], beta=2.0),
    "hawkes1": HawkesExp(mu=0.2, alpha=0.8, beta=1.0),
    "hawkes2": HawkesSumExp(mu=0.2, alphas=(0.4, 0.4), betas=(1.0, 20.0)),
    "self-correcting": SelfCorrecting(mu=1.0, alpha=1.0),
    "renewal-lognormal": RenewalLogNormal(mu=-0.5, s=1.0),
    "time-marks": TimeDependentMarks(rates=(2.0, 0.5), p_early=(0.9, 0.1), p_late=(0.1, 0.9), switch=1.0),
}
"""The benchmark processes of spec §6 (the table in the module docstring). The objects are immutable."""

PRESET_T_END: dict[str, float] = {
    "hawkes3": 40.0,
    "hawkes1": 50.0,
    "hawkes2": 50.0,
    "self-correcting": 50.0,
    "renewal-lognormal": 50.0,
    "time-marks": 50.0,
}
"""Observation window of each preset (``hawkes3``: spec §6; the others: about 50 events per sequence)."""


def process_from_dict(d: dict[str, Any]) -> TemporalPointProcess[Any]:
    """Rebuild a process from :meth:`TemporalPointProcess.to_dict` (e.g. a loaded ``ground_truth.json``).

    Args:
        d: ``{"process": <a key of PROCESSES>, <constructor arguments>}``.

    Returns:
        The process.

    Raises:
        ValueError: ``d`` is not a dict with a known ``"process"``, or its arguments are invalid.

    Example:
        >>> process_from_dict({"process": "poisson", "rate": [1.0, 2.0]})
        PoissonProcess(rate=[1.0, 2.0])
    """
    if not isinstance(d, dict) or d.get("process") not in PROCESSES:
        got = d.get("process") if isinstance(d, dict) else type(d).__name__
        raise ValueError(f"d['process'] must be one of {sorted(PROCESSES)}, got {got!r}")
    try:
        return PROCESSES[d["process"]].from_dict(d)
    except TypeError as err:  # unknown or missing constructor argument
        raise ValueError(f"bad arguments for process {d['process']!r}: {err}") from err
