r"""Poisson, self-correcting, log-normal renewal and time-dependent-mark processes (closed-form oracles).

=====================================  =========================================  ======================================
class                                  intensity after event ``j``                next-gap law
=====================================  =========================================  ======================================
:class:`PoissonProcess`                ``λ_k = r_k``                              ``Exp(Σ r)``, type ``∝ r``
:class:`SelfCorrecting`                ``λ(t) = exp(μ (t − t_start) − α N(t))``   ``Λ(τ) = e^c (e^{μτ} − 1)/μ``
:class:`RenewalLogNormal`              hazard of ``LogNormal(μ, s²)``             ``log τ ~ N(μ, s²)``, i.i.d.
:class:`TimeDependentMarks`            ``r_{k_j} p(k | τ)``, ``p`` switches at    ``Exp(r_{k_j})``
                                       ``τ = switch``
=====================================  =========================================  ======================================

All are simulated exactly by inversion (no thinning needed).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import log_ndtr, ndtri

from smurf_thp._process import FloatArray, IntArray, TemporalPointProcess, as_list, f64, probabilities, real, vector
from smurf_thp.data import EventSequence

__all__ = ["PoissonProcess", "RenewalLogNormal", "SelfCorrecting", "TimeDependentMarks"]


def _renewal_times(
    rng: np.random.Generator, draw: Any, mean_gap: float, t_end: float | None, n_events: int | None
) -> FloatArray:
    """Cumulative sums of i.i.d. gaps ``draw(rng, size)`` up to ``t_end`` or ``n_events`` events."""
    if n_events is not None or t_end is None:
        return np.cumsum(draw(rng, n_events or 1))
    times = np.empty(0)
    last = 0.0
    chunk = max(16, int(1.5 * t_end / mean_gap))
    while last <= t_end:
        new = last + np.cumsum(draw(rng, chunk))
        times = np.concatenate([times, new])
        last = float(new[-1])
    return times[times <= t_end]


class PoissonProcess(TemporalPointProcess[None]):
    r"""Homogeneous marked Poisson process with rates ``r_k``.

    .. math::
        \lambda_k(t) = r_k, \qquad F(\tau) = 1 - e^{-\tau \sum_k r_k}, \qquad P(k) = r_k / \textstyle\sum_l r_l

    Args:
        rate: ``r (K,)`` (a number when ``K = 1``), each ``> 0``.

    Raises:
        ValueError: a non-positive or non-finite ``rate``, or a wrong shape.

    Example:
        >>> from smurf_thp.data import EventSequence
        >>> proc = PoissonProcess([1.0, 3.0])
        >>> seq = EventSequence([0.5, 1.0], [1, 0], t_end=2.0)
        >>> proc.next_type_probs(seq, 1).tolist(), round(proc.loglik(seq), 6), round(math.log(3.0) - 4.0 * 2.0, 6)
        ([0.25, 0.75], -6.901388, -6.901388)
    """

    name = "poisson"

    def __init__(self, rate: ArrayLike) -> None:
        self.rate = vector("rate", rate)
        """``r (K,)``: rate of each type."""
        if np.any(self.rate <= 0):
            raise ValueError(f"rate must be > 0, got {self.rate.tolist()}")
        self.num_types = int(self.rate.shape[0])
        self._total = float(self.rate.sum())

    def _params(self) -> dict[str, Any]:
        return {"rate": as_list(self.rate)}

    def _state(self, seq: EventSequence, j: int) -> None:
        return None

    def _intensity(self, state: None, tau: FloatArray) -> FloatArray:
        return np.tile(self.rate, (len(tau), 1))

    def _cumhazard(self, state: None, tau: FloatArray) -> FloatArray:
        return self._total * tau

    def _quantile(self, state: None, q: FloatArray) -> FloatArray:
        return -np.log1p(-q) / self._total

    def _sample(self, state: None, n: int, rng: np.random.Generator) -> tuple[FloatArray, IntArray]:
        tau = rng.standard_exponential(n) / self._total
        return tau, rng.choice(self.num_types, size=n, p=self.rate / self._total).astype(np.int64)

    def _type_probs(self, state: None) -> FloatArray:
        return self.rate / self._total

    def _simulate_one(
        self, rng: np.random.Generator, t_end: float | None, n_events: int | None
    ) -> tuple[FloatArray, IntArray]:
        times = _renewal_times(
            rng, lambda g, n: g.standard_exponential(n) / self._total, 1.0 / self._total, t_end, n_events
        )
        types = rng.choice(self.num_types, size=len(times), p=self.rate / self._total).astype(np.int64)
        return times, types


class SelfCorrecting(TemporalPointProcess[float]):
    r"""Self-correcting (stress-release) process, ``K = 1``: the intensity grows and each event lowers it.

    .. math::
        \lambda(t) = \exp\big(\mu (t - t_{start}) - \alpha N(t)\big), \qquad
        \Lambda_j(\tau) = e^{c_j} \frac{e^{\mu\tau} - 1}{\mu}, \qquad
        \tau_q = \frac{1}{\mu} \log\!\big(1 + \mu (-\log(1 - q))\, e^{-c_j}\big),

    with ``c_j = μ (t_j − t_start) − α (j + 1)`` (``j + 1`` events so far; ``c_{-1} = 0``). The long-run rate is
    ``μ / α``. The quantile and the sampler use the closed form (inversion of ``Λ_j``).

    Args:
        mu: growth rate ``μ > 0``.
        alpha: drop per event ``α >= 0``.

    Raises:
        ValueError: ``mu <= 0`` or ``alpha < 0`` (or non-finite).

    Example:
        >>> from smurf_thp.data import EventSequence
        >>> proc = SelfCorrecting(mu=1.0, alpha=1.0)
        >>> seq = EventSequence([0.7, 1.5], [0, 0], t_end=2.0)
        >>> q = proc.next_quantile(seq, 1, 0.5)  # c = 1.5 - 2
        >>> bool(np.isclose(q, np.log(1 + np.log(2) * np.exp(0.5)))), bool(np.isclose(proc.next_cdf(seq, 1, q), 0.5))
        (True, True)
    """

    name = "self-correcting"

    def __init__(self, mu: float, alpha: float) -> None:
        self.mu = real("mu", mu, low=0.0, strict=True)
        """``μ``: growth rate of the log-intensity."""
        self.alpha = real("alpha", alpha, low=0.0)
        """``α``: drop of the log-intensity per event."""
        self.num_types = 1

    def _params(self) -> dict[str, Any]:
        return {"mu": self.mu, "alpha": self.alpha}

    def _state(self, seq: EventSequence, j: int) -> float:
        return self.mu * (self._last_time(seq, j) - float(seq.t_start)) - self.alpha * (j + 1)

    def _intensity(self, state: float, tau: FloatArray) -> FloatArray:
        return np.exp(state + self.mu * tau)[:, None]

    def _log_intensity(self, state: float, tau: FloatArray) -> FloatArray:
        return (state + self.mu * tau)[:, None]

    def _cumhazard(self, state: float, tau: FloatArray) -> FloatArray:
        with np.errstate(over="ignore"):  # Λ = inf for huge tau, as it should
            return f64(np.exp(state) * np.expm1(self.mu * tau) / self.mu)

    def _solve(self, state: float, target: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore"):  # target 0 -> log 0 = -inf -> tau 0
            return np.logaddexp(0.0, np.log(self.mu * target) - state) / self.mu

    def _simulate_one(
        self, rng: np.random.Generator, t_end: float | None, n_events: int | None
    ) -> tuple[FloatArray, IntArray]:
        times: list[float] = []
        t = 0.0
        while n_events is None or len(times) < n_events:
            c = self.mu * t - self.alpha * len(times)
            t += float(self._solve(c, np.array([rng.standard_exponential()]))[0])
            if t_end is not None and t > t_end:
                break
            times.append(t)
        return np.asarray(times, dtype=np.float64), np.zeros(len(times), dtype=np.int64)


class RenewalLogNormal(TemporalPointProcess[None]):
    r"""Renewal process with i.i.d. log-normal gaps, ``K = 1``: ``log τ ~ N(μ, s²)`` (heavy right tail).

    .. math::
        F(\tau) = \Phi\Big(\frac{\log\tau - \mu}{s}\Big), \qquad
        \lambda(\tau) = \frac{f(\tau)}{1 - F(\tau)}, \qquad
        \tau_q = e^{\mu + s\,\Phi^{-1}(q)},

    i.e. ``scipy.stats.lognorm(s, scale=exp(mu))``. The first gap (from ``t_start``) has the same law (an ordinary
    renewal process), and the history is irrelevant beyond ``t_j``. Mean gap ``e^{μ + s²/2}``.

    Args:
        mu: mean of ``log τ``.
        s: standard deviation of ``log τ``, ``> 0``.

    Raises:
        ValueError: ``s <= 0`` or non-finite arguments.

    Example:
        >>> from smurf_thp.data import EventSequence
        >>> proc = RenewalLogNormal(mu=-0.5, s=1.0)
        >>> seq = EventSequence([0.3], [0], t_end=1.0)
        >>> round(float(proc.next_quantile(seq, 0, 0.5)), 6), round(float(np.exp(-0.5)), 6), round(proc.mean_gap(), 6)
        (0.606531, 0.606531, 1.0)
    """

    name = "renewal-lognormal"

    def __init__(self, mu: float, s: float) -> None:
        self.mu = real("mu", mu)
        """``μ``: mean of ``log τ``."""
        self.s = real("s", s, low=0.0, strict=True)
        """``s``: standard deviation of ``log τ``."""
        self.num_types = 1

    def mean_gap(self) -> float:
        """``E τ = exp(μ + s² / 2)``."""
        return math.exp(self.mu + 0.5 * self.s**2)

    def _params(self) -> dict[str, Any]:
        return {"mu": self.mu, "s": self.s}

    def _state(self, seq: EventSequence, j: int) -> None:
        return None

    def _z(self, tau: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore"):
            return (np.log(tau) - self.mu) / self.s

    def _log_intensity(self, state: None, tau: FloatArray) -> FloatArray:
        z = self._z(tau)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_pdf = -0.5 * z**2 - np.log(self.s * tau * math.sqrt(2.0 * math.pi))
        log_pdf = np.where(tau > 0, log_pdf, -np.inf)
        return f64(log_pdf - log_ndtr(-z))[:, None]

    def _intensity(self, state: None, tau: FloatArray) -> FloatArray:
        return np.exp(self._log_intensity(state, tau))

    def _cumhazard(self, state: None, tau: FloatArray) -> FloatArray:
        return -f64(log_ndtr(-self._z(tau)))

    def _quantile(self, state: None, q: FloatArray) -> FloatArray:
        return f64(np.exp(self.mu + self.s * ndtri(q)))

    def _sample(self, state: None, n: int, rng: np.random.Generator) -> tuple[FloatArray, IntArray]:
        return rng.lognormal(self.mu, self.s, n), np.zeros(n, dtype=np.int64)

    def _simulate_one(
        self, rng: np.random.Generator, t_end: float | None, n_events: int | None
    ) -> tuple[FloatArray, IntArray]:
        times = _renewal_times(rng, lambda g, n: g.lognormal(self.mu, self.s, n), self.mean_gap(), t_end, n_events)
        return times, np.zeros(times.shape[0], dtype=np.int64)


class TimeDependentMarks(TemporalPointProcess[float]):
    r"""Markov renewal process whose next type depends on the gap: ``p(k | τ)`` switches at ``τ = switch``.

    After an event of type ``l`` the next gap is ``Exp(r_l)`` (the first gap, from ``t_start``, is ``Exp(r_0)``) and
    the next type is drawn from ``p_early`` if ``τ < switch`` else from ``p_late``:

    .. math::
        \lambda_k(\tau \mid \mathcal H_j) = r_{k_j}\, p(k \mid \tau), \qquad
        P_j(k) = (1 - e^{-r_{k_j} s})\, p^{early}_k + e^{-r_{k_j} s}\, p^{late}_k .

    With equal rates the ground process is Poisson and the types carry no information beyond ``τ``; unequal rates
    make the marginal type prediction depend on the history too. The preset ``time-marks`` (rates ``(2, 0.5)``,
    ``p_early = (0.9, 0.1)``, ``p_late = (0.1, 0.9)``, switch 1) has oracle accuracy 0.723 from the history alone
    (:meth:`oracle_accuracy`) and 0.9 when the true gap is known (:meth:`conditional_accuracy`); a type head that
    ignores the gap cannot exceed the former, one that ignores the history the 0.666 of always guessing type 0.

    Args:
        rates: ``r (K,)``: rate of the gap after a type-``l`` event, each ``> 0``.
        p_early: ``(K,)`` type distribution for ``τ < switch``.
        p_late: ``(K,)`` type distribution for ``τ >= switch``.
        switch: the switching gap ``s > 0`` (default 1, spec §6 item 5).

    Raises:
        ValueError: non-positive ``rates`` / ``switch``, mismatched lengths, or probabilities that do not sum to 1.

    Example:
        >>> proc = TimeDependentMarks(rates=(2.0, 0.5), p_early=(0.9, 0.1), p_late=(0.1, 0.9))
        >>> round(proc.oracle_accuracy(), 3), round(proc.conditional_accuracy(), 3)
        (0.723, 0.9)
    """

    name = "time-marks"

    def __init__(self, rates: ArrayLike, p_early: ArrayLike, p_late: ArrayLike, switch: float = 1.0) -> None:
        self.rates = vector("rates", rates)
        """``r (K,)``: rate of the next gap after a type-``l`` event."""
        if np.any(self.rates <= 0):
            raise ValueError(f"rates must be > 0, got {self.rates.tolist()}")
        k = int(self.rates.shape[0])
        self.p_early = probabilities("p_early", p_early, k)
        """``(K,)``: ``p(k | τ < switch)``."""
        self.p_late = probabilities("p_late", p_late, k)
        """``(K,)``: ``p(k | τ >= switch)``."""
        self.switch = real("switch", switch, low=0.0, strict=True)
        """the switching gap ``s``."""
        self.num_types = k

    def _params(self) -> dict[str, Any]:
        return {
            "rates": as_list(self.rates),
            "p_early": as_list(self.p_early),
            "p_late": as_list(self.p_late),
            "switch": self.switch,
        }

    def transition_matrix(self) -> FloatArray:
        """``P[l, k]``: probability that a type-``l`` event is followed by a type-``k`` event, ``(K, K)``."""
        early = -np.expm1(-self.rates * self.switch)[:, None]
        return early * self.p_early[None, :] + (1.0 - early) * self.p_late[None, :]

    def stationary_types(self) -> FloatArray:
        """The stationary distribution ``π`` of the types (left Perron vector of :meth:`transition_matrix`)."""
        k = self.num_types
        lhs = np.vstack([self.transition_matrix().T - np.eye(k), np.ones((1, k))])
        return f64(np.linalg.lstsq(lhs, np.r_[np.zeros(k), 1.0], rcond=None)[0])

    def oracle_accuracy(self) -> float:
        """Stationary accuracy of ``argmax_k P_j(k)`` (type predicted from the history alone): ``Σ_l π_l max_k P_lk``."""
        return float(self.stationary_types() @ self.transition_matrix().max(axis=1))

    def conditional_accuracy(self) -> float:
        """Stationary accuracy of ``argmax_k p(k | τ)`` (the true gap known)."""
        early = -np.expm1(-self.rates * self.switch)
        per_type = early * self.p_early.max() + (1.0 - early) * self.p_late.max()
        return float(self.stationary_types() @ per_type)

    def mean_gap(self) -> float:
        """Stationary mean gap ``Σ_l π_l / r_l`` (the long-run rate is its inverse)."""
        return float(self.stationary_types() @ (1.0 / self.rates))

    def _state(self, seq: EventSequence, j: int) -> float:
        return float(self.rates[int(seq.types[j])] if j >= 0 else self.rates[0])

    def _probs_at(self, tau: FloatArray) -> FloatArray:
        return np.where((tau < self.switch)[:, None], self.p_early[None, :], self.p_late[None, :])

    def _intensity(self, state: float, tau: FloatArray) -> FloatArray:
        return state * self._probs_at(tau)

    def _cumhazard(self, state: float, tau: FloatArray) -> FloatArray:
        return state * tau

    def _quantile(self, state: float, q: FloatArray) -> FloatArray:
        return -np.log1p(-q) / state

    def _type_probs(self, state: float) -> FloatArray:
        early = -math.expm1(-state * self.switch)
        return early * self.p_early + (1.0 - early) * self.p_late

    def _draw_types(self, state: float, tau: FloatArray, rng: np.random.Generator) -> IntArray:
        cum = np.cumsum(self._probs_at(tau), axis=1)
        u = rng.random(len(tau))
        return np.asarray(np.minimum((cum <= u[:, None]).sum(axis=1), self.num_types - 1), dtype=np.int64)

    def _sample(self, state: float, n: int, rng: np.random.Generator) -> tuple[FloatArray, IntArray]:
        tau = rng.standard_exponential(n) / state
        return tau, self._draw_types(state, tau, rng)

    def _simulate_one(
        self, rng: np.random.Generator, t_end: float | None, n_events: int | None
    ) -> tuple[FloatArray, IntArray]:
        times: list[float] = []
        types: list[int] = []
        t, rate = 0.0, float(self.rates[0])
        while n_events is None or len(times) < n_events:
            tau = rng.standard_exponential() / rate
            if t_end is not None and t + tau > t_end:
                break
            t += tau
            k = int(self._draw_types(rate, np.array([tau]), rng)[0])
            times.append(t)
            types.append(k)
            rate = float(self.rates[k])
        return np.asarray(times, dtype=np.float64), np.asarray(types, dtype=np.int64)
