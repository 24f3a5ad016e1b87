r"""The shared shell of the ground-truth point processes: simulation driver, next-event oracle, registry glue.

Every process in :mod:`smurf_thp.simulate` is given by its conditional intensities after the ``j``-th
event of a history (``j`` 0-based; ``j = -1`` is the empty history at ``t_start``):

.. math::
    \lambda_k(\tau \mid \mathcal H_j) \;(k < K), \qquad
    \lambda(\tau \mid \mathcal H_j) = \sum_k \lambda_k(\tau \mid \mathcal H_j), \qquad
    \Lambda_j(\tau) = \int_0^\tau \lambda(s \mid \mathcal H_j)\, ds,

where ``τ`` is the time since ``t_j`` and no event happens in ``(t_j, t_j + τ)``. The law of the next event
``(τ_{j+1}, k_{j+1})`` follows (Daley and Vere-Jones 2003, ch. 7):

.. math::
    F_j(\tau) = 1 - e^{-\Lambda_j(\tau)}, \qquad
    p_j(\tau, k) = \lambda_k(\tau \mid \mathcal H_j)\, e^{-\Lambda_j(\tau)}, \qquad
    P_j(k) = \int_0^\infty \lambda_k(\tau \mid \mathcal H_j)\, e^{-\Lambda_j(\tau)}\, d\tau,

and the log-likelihood of a sequence observed on ``[t_start, t_end]`` is
``Σ_i log λ_{k_i}(τ_i | H_{i-1}) − Σ_i Λ_{i-1}(τ_i) − Λ_{L-1}(t_end − t_{L-1})`` (the last term is the
survival of the censored interval). A subclass gives the history state, the intensities and ``Λ``; this
module turns them into CDFs, quantiles (a vectorised safeguarded Newton solve of ``Λ_j(τ) = −log(1 − q)``),
exact samples (the same solve at ``Exp(1)`` targets), type probabilities (``scipy.integrate.quad_vec``) and
log-likelihoods. Subclasses override any of them where a closed form exists.
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from smurf_thp.data import EventDataset, EventSequence

__all__ = ["TemporalPointProcess"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
StateT = TypeVar("StateT")

_NEWTON_MAX_ITER = 200
"""Iteration cap of the vectorised bracketing Newton solve of ``Λ(τ) = target``."""
_REL_TOL = 1e-13
"""Relative tolerance on ``τ`` (bracket width) and on ``Λ(τ) − target`` in that solve."""


# -- validation helpers -------------------------------------------------------------------------------------
def real(name: str, value: object, *, low: float | None = None, strict: bool = False) -> float:
    """``value`` as a finite float (``>= low``, or ``> low`` when ``strict``), else ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    out = float(value)
    if low is not None and (out < low or (strict and out == low)):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {out}")
    return out


def array(name: str, value: ArrayLike, shape: tuple[int, ...], *, low: float | None = None) -> FloatArray:
    """``value`` as a read-only finite float64 array of ``shape`` (entries ``>= low``), else ``ValueError``."""
    try:
        out = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers, got {value!r}") from err
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite, got {out.tolist()}")
    if low is not None and np.any(out < low):
        raise ValueError(f"{name} must be >= {low}, got {out.tolist()}")
    out.flags.writeable = False
    return out


def vector(name: str, value: ArrayLike, *, low: float | None = None) -> FloatArray:
    """A number or a 1-D sequence as a read-only non-empty float64 vector (see :func:`array`)."""
    try:
        arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a number or a 1-D sequence of numbers, got {value!r}") from err
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty 1-D sequence, got shape {arr.shape}")
    return array(name, arr, arr.shape, low=low)


def probabilities(name: str, value: ArrayLike, k: int) -> FloatArray:
    """A probability vector of length ``k`` (non-negative, sums to 1 within 1e-9), else ``ValueError``."""
    out = array(name, value, (k,), low=0.0)
    if abs(float(out.sum()) - 1.0) > 1e-9:
        raise ValueError(f"{name} must sum to 1, got {out.tolist()} (sum {float(out.sum())})")
    return out


def f64(x: Any) -> FloatArray:
    """``x`` as a float64 array (a typed ``np.asarray``)."""
    return np.asarray(x, dtype=np.float64)


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _taus(name: str, tau: ArrayLike) -> tuple[FloatArray, tuple[int, ...]]:
    """``tau`` flattened to float64 (any shape; the caller restores it); NaN raises ``ValueError``."""
    arr = np.asarray(tau, dtype=np.float64)
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} must not contain NaN")
    return arr.reshape(-1), arr.shape


class TemporalPointProcess(abc.ABC, Generic[StateT]):
    """A marked temporal point process with an exact simulator and an exact next-event oracle.

    Subclasses implement the state of a history (:meth:`_state`), the conditional intensities
    ``λ_k(τ | H_j)`` (:meth:`_intensity`), the ground compensator ``Λ_j(τ)`` (:meth:`_cumhazard`) and one exact
    simulation (:meth:`_simulate_one`); the oracle methods below follow from them (module docstring).

    Oracle convention: ``j`` is a 0-based event index into ``seq`` and the oracle describes event ``j + 1``
    given events ``0..j`` (the history ``H_j``); ``j = -1`` is the empty history at ``seq.t_start``. Events after
    ``j`` and ``seq.t_end`` are ignored (the next event may fall after ``t_end``).

    Example:
        >>> from smurf_thp.data import EventSequence
        >>> from smurf_thp.simulate import PoissonProcess
        >>> proc = PoissonProcess(rate=[0.5, 1.5])  # next gap ~ Exp(2) whatever the history
        >>> seq = EventSequence([0.2, 0.9], [0, 1], t_end=1.0)
        >>> [round(float(x), 6) for x in proc.next_cdf(seq, 1, [0.0, np.log(2) / 2])]  # predicts event 2
        [0.0, 0.5]
        >>> tau, types = proc.next_sample(seq, -1, 4, np.random.default_rng(0))  # the first event
        >>> tau.shape, types.dtype
        ((4,), dtype('int64'))
    """

    name: ClassVar[str]
    """Registry key, stored as ``"process"`` in :meth:`to_dict`."""

    num_types: int
    """``K``: the number of event types (types are 0-based)."""

    # -- subclass interface ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def _state(self, seq: EventSequence, j: int) -> StateT:
        """The sufficient statistic of the history ``H_j`` (events ``0..j`` of ``seq``; ``j = -1``: empty)."""

    @abc.abstractmethod
    def _intensity(self, state: StateT, tau: FloatArray) -> FloatArray:
        """``λ_k(τ | H_j)`` for ``τ >= 0`` of shape ``(n,)``; returns ``(n, K)``."""

    @abc.abstractmethod
    def _cumhazard(self, state: StateT, tau: FloatArray) -> FloatArray:
        """``Λ_j(τ)`` for ``τ >= 0`` of shape ``(n,)``; returns ``(n,)``."""

    @abc.abstractmethod
    def _simulate_one(
        self, rng: np.random.Generator, t_end: float | None, n_events: int | None
    ) -> tuple[FloatArray, IntArray]:
        """One exact realisation from ``t = 0`` (absolute times, 0-based types) up to ``t_end`` or ``n_events``."""

    @abc.abstractmethod
    def _params(self) -> dict[str, Any]:
        """The constructor arguments as JSON-safe values."""

    def _log_intensity(self, state: StateT, tau: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore"):
            return np.log(self._intensity(state, tau))

    def _states(self, seq: EventSequence) -> Iterator[StateT]:
        """The states of ``H_{-1}, H_0, ..., H_{L-1}`` in order (override for an O(L) recursion)."""
        for j in range(-1, len(seq.times)):
            yield self._state(seq, j)

    def _quantile(self, state: StateT, q: FloatArray) -> FloatArray:
        return self._solve(state, -np.log1p(-q))

    def _sample(self, state: StateT, n: int, rng: np.random.Generator) -> tuple[FloatArray, IntArray]:
        tau = self._solve(state, rng.standard_exponential(n))
        return tau, self._draw_types(state, tau, rng)

    def _type_probs(self, state: StateT) -> FloatArray:
        if self.num_types == 1:
            return np.ones(1)
        from scipy.integrate import quad_vec

        def integrand(t: float) -> FloatArray:
            tau = np.array([t])
            return f64(self._intensity(state, tau)[0] * math.exp(-float(self._cumhazard(state, tau)[0])))

        probs = np.asarray(quad_vec(integrand, 0.0, math.inf, epsabs=1e-11, epsrel=1e-10)[0], dtype=np.float64)
        return f64(probs / probs.sum())

    # -- shared machinery ------------------------------------------------------------------------------------
    def _draw_types(self, state: StateT, tau: FloatArray, rng: np.random.Generator) -> IntArray:
        """Types from ``p(k | τ) = λ_k(τ) / λ(τ)``, one per ``τ``."""
        if self.num_types == 1:
            return np.zeros(tau.shape[0], dtype=np.int64)
        cum = np.cumsum(self._intensity(state, tau), axis=1)  # (n, K)
        u = rng.random(len(tau)) * cum[:, -1]
        return np.asarray(np.minimum((cum <= u[:, None]).sum(axis=1), self.num_types - 1), dtype=np.int64)

    def _solve(self, state: StateT, target: FloatArray) -> FloatArray:
        """``τ`` with ``Λ_j(τ) = target`` (vectorised; ``+inf`` for an infinite target).

        ``Λ_j`` is continuous and increasing with derivative ``λ``; a bracket ``[lo, hi]`` is grown by doubling,
        then Newton steps that leave the bracket (or meet ``λ = 0``) are replaced by bisection.
        """
        out = np.where(target > 0, np.inf, 0.0)
        finite = np.isfinite(target) & (target > 0)
        y = target[finite]
        lo = np.zeros_like(y)
        hi = np.ones_like(y)
        for _ in range(_NEWTON_MAX_ITER):
            short = self._cumhazard(state, hi) < y
            if not short.any():
                break
            lo = np.where(short, hi, lo)
            hi = np.where(short, 2.0 * hi, hi)
        else:
            raise RuntimeError("could not bracket the quantile: the compensator stays below the target")
        x = 0.5 * (lo + hi)
        for _ in range(_NEWTON_MAX_ITER):
            g = self._cumhazard(state, x) - y
            lo = np.where(g < 0, x, lo)
            hi = np.where(g > 0, x, hi)
            if np.all((np.abs(g) <= _REL_TOL * (1.0 + y)) | (hi - lo <= _REL_TOL * (1.0 + x))):
                break
            slope = self._intensity(state, x).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = x - g / slope
            ok = np.isfinite(newton) & (newton > lo) & (newton < hi)
            x = np.where(ok, newton, 0.5 * (lo + hi))
        out[finite] = x
        return out

    def _check(self, seq: EventSequence, j: object) -> int:
        n = len(seq.times)
        if isinstance(j, bool) or not isinstance(j, numbers.Integral) or not -1 <= int(j) < n:
            raise ValueError(f"j must be an int in [-1, {n - 1}] (events 0..j are the history), got {j!r}")
        types = np.asarray(seq.types)
        if types.size and (types.min() < 0 or types.max() >= self.num_types):
            raise ValueError(f"seq.types must lie in [0, {self.num_types}), got range [{types.min()}, {types.max()}]")
        return int(j)

    def _last_time(self, seq: EventSequence, j: int) -> float:
        return float(seq.t_start) if j < 0 else float(seq.times[j])

    # -- simulation ------------------------------------------------------------------------------------------
    def simulate(
        self,
        n_seqs: int,
        *,
        t_end: float | None = None,
        n_events: int | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> EventDataset:
        """Simulate ``n_seqs`` independent sequences from an empty history at ``t = 0``, exactly.

        Args:
            n_seqs: number of sequences, ``>= 1``.
            t_end: observation window ``[0, t_end]`` (``> 0``); the sequences keep this ``t_end``.
            n_events: instead of ``t_end``: exactly this many events (``>= 1``) per sequence, whose ``t_end`` is
                then the last event time (a stopping time, so the log-likelihood has no survival term).
            seed: an int or a ``np.random.Generator``; the same seed gives the same data set.

        Returns:
            An ``EventDataset`` with ``num_types = K``; times float64, types int64 0-based.

        Raises:
            ValueError: ``n_seqs < 1``, neither or both of ``t_end`` and ``n_events``, or a bad value of either.
        """
        n_seqs = _count("n_seqs", n_seqs)
        if (t_end is None) == (n_events is None):
            raise ValueError(f"give exactly one of t_end and n_events, got t_end={t_end!r}, n_events={n_events!r}")
        end = None if t_end is None else real("t_end", t_end, low=0.0, strict=True)
        count = None if n_events is None else _count("n_events", n_events)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        seqs = []
        for _ in range(n_seqs):
            times, types = self._simulate_one(rng, end, count)
            seq_end = end if end is not None else float(times[-1])
            seqs.append(EventSequence(times=times, types=types, t_start=0.0, t_end=seq_end))
        return EventDataset(seqs=seqs, num_types=self.num_types)

    # -- oracle ----------------------------------------------------------------------------------------------
    def next_intensity(self, seq: EventSequence, j: int, tau: ArrayLike) -> FloatArray:
        """``λ_k(t_j + τ | H_j)`` if no event happens in ``(t_j, t_j + τ)``; shape ``tau.shape + (K,)``.

        Raises:
            ValueError: ``j`` outside ``[-1, len(seq) - 1]``, types outside ``[0, K)``, negative or NaN ``tau``.
        """
        state = self._state(seq, self._check(seq, j))
        flat, shape = _taus("tau", tau)
        if np.any(flat < 0):
            raise ValueError("tau must be >= 0")
        return self._intensity(state, flat).reshape((*shape, self.num_types))

    def next_cumhazard(self, seq: EventSequence, j: int, tau: ArrayLike) -> FloatArray:
        """``Λ_j(τ) = ∫_0^τ λ(s | H_j) ds`` (``0`` for ``τ <= 0``), vectorised over ``tau``.

        Evaluated at the observed gaps these are the time-rescaled increments ``Λ(t_{j+1}) − Λ(t_j)``, i.i.d.
        ``Exp(1)`` under the true process (time-rescaling theorem).
        """
        state = self._state(seq, self._check(seq, j))
        flat, shape = _taus("tau", tau)
        out = np.zeros_like(flat)
        pos = flat > 0
        out[pos] = self._cumhazard(state, flat[pos])
        return out.reshape(shape)

    def next_cdf(self, seq: EventSequence, j: int, tau: ArrayLike) -> FloatArray:
        """``F_j(τ) = P(τ_{j+1} <= τ | H_j) = 1 − exp(−Λ_j(τ))`` (``0`` for ``τ <= 0``), vectorised over ``tau``.

        Args:
            seq: the history (an ``EventSequence``); only events ``0..j`` and ``t_start`` are used.
            j: the history ends at event ``j`` (0-based); ``-1`` means no event yet (the gap from ``t_start``).
            tau: gaps after ``t_j``, any shape (``inf`` gives 1).

        Returns:
            Array of ``tau``'s shape.

        Raises:
            ValueError: ``j`` outside ``[-1, len(seq) - 1]``, types outside ``[0, K)`` or NaN in ``tau``.
        """
        return -np.expm1(-self.next_cumhazard(seq, j, tau))

    def next_quantile(self, seq: EventSequence, j: int, q: ArrayLike) -> FloatArray:
        """``F_j^{-1}(q)``: the ``q``-quantile of the next gap, vectorised over ``q`` (``q = 1`` gives ``inf``).

        Closed form where one exists, else the root of ``Λ_j(τ) = −log(1 − q)`` to ~1e-13 relative.

        Raises:
            ValueError: ``q`` outside ``[0, 1]`` or a bad ``j`` (as :meth:`next_cdf`).
        """
        state = self._state(seq, self._check(seq, j))
        flat, shape = _taus("q", q)
        if np.any((flat < 0) | (flat > 1)):
            raise ValueError(f"q must lie in [0, 1], got range [{flat.min()}, {flat.max()}]")
        with np.errstate(divide="ignore"):  # q = 1: -log(1 - q) = inf, tau = inf
            return self._quantile(state, flat).reshape(shape)

    def next_sample(self, seq: EventSequence, j: int, n: int, rng: np.random.Generator) -> tuple[FloatArray, IntArray]:
        """``n`` exact i.i.d. draws of the next event ``(τ_{j+1}, k_{j+1})`` given ``H_j``.

        ``τ`` by inversion of ``F_j`` (closed form or root), then ``k ~ p(k | τ) = λ_k(τ) / λ(τ)``.

        Returns:
            ``(tau, types)``: float64 ``(n,)`` gaps after ``t_j`` and int64 ``(n,)`` 0-based types.

        Raises:
            ValueError: ``n < 1`` or a bad ``j`` (as :meth:`next_cdf`).
        """
        state = self._state(seq, self._check(seq, j))
        return self._sample(state, _count("n", n), rng)

    def next_type_probs(self, seq: EventSequence, j: int) -> FloatArray:
        """``P_j(k) = ∫_0^∞ λ_k(τ | H_j) exp(−Λ_j(τ)) dτ``: the next event's type, marginal over its time; ``(K,)``.

        Closed form where one exists, else adaptive quadrature (``scipy.integrate.quad_vec`` on ``[0, ∞)``,
        absolute error ~1e-11) renormalised to sum to 1.
        """
        state = self._state(seq, self._check(seq, j))
        return self._type_probs(state)

    def next_type_probs_at(self, seq: EventSequence, j: int, tau: ArrayLike) -> FloatArray:
        """``p(k | τ, H_j) = λ_k(τ | H_j) / λ(τ | H_j)``: the next type given its gap; shape ``tau.shape + (K,)``."""
        lam = self.next_intensity(seq, j, tau)
        return f64(lam / lam.sum(axis=-1, keepdims=True))

    def loglik(self, seq: EventSequence) -> float:
        r"""Exact log-likelihood of ``seq`` on ``[t_start, t_end]`` (``t_end = None``: the last event time).

        .. math::
            \log L = \sum_{i=0}^{L-1} \big[\log \lambda_{k_i}(\tau_i \mid \mathcal H_{i-1})
                     - \Lambda_{i-1}(\tau_i)\big] - \Lambda_{L-1}(t_{end} - t_{L-1})

        Raises:
            ValueError: types outside ``[0, K)``.
        """
        self._check(seq, -1)
        times = np.asarray(seq.times, dtype=np.float64)
        types = np.asarray(seq.types, dtype=np.int64)
        last = float(times[-1]) if len(times) else float(seq.t_start)
        t_end = last if seq.t_end is None else float(seq.t_end)
        prev = float(seq.t_start)
        total = 0.0
        for i, state in enumerate(self._states(seq)):
            if i < len(times):
                gap = np.array([times[i] - prev])
                total += float(self._log_intensity(state, gap)[0, types[i]]) - float(self._cumhazard(state, gap)[0])
                prev = float(times[i])
            elif t_end > prev:
                total -= float(self._cumhazard(state, np.array([t_end - prev]))[0])
        return total

    # -- serialisation ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe ``{"process": name, <constructor arguments>}``; :func:`process_from_dict` inverts it."""
        return {"process": self.name, **self._params()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TemporalPointProcess[Any]:
        """Rebuild from :meth:`to_dict`'s output.

        Raises:
            ValueError: ``d["process"]`` is not this class's name.
        """
        name = getattr(cls, "name", None)
        if name is None:
            raise TypeError("call from_dict on a concrete process class, or use simulate.process_from_dict")
        if d.get("process") != name:
            raise ValueError(f"d['process'] must be {name!r}, got {d.get('process')!r}")
        params = {key: value for key, value in d.items() if key != "process"}
        return cls(**params)

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self._params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TemporalPointProcess) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def as_list(x: FloatArray | Sequence[float]) -> list[Any]:
    """A float array as nested Python lists (JSON-safe)."""
    return np.asarray(x, dtype=np.float64).tolist()  # type: ignore[no-any-return]
