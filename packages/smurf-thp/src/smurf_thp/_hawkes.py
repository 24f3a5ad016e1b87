r"""Multivariate Hawkes processes with exponential and sum-of-exponential kernels (exact simulation and oracle).

Both classes are the same process with ``M`` exponential components per pair of types:

.. math::
    \lambda_k(t) = \mu_k + \sum_{t_i < t} \phi_{k k_i}(t - t_i), \qquad
    \phi_{kl}(s) = \sum_{m=1}^{M} \alpha_{klm}\, \beta_{klm}\, e^{-\beta_{klm} s},

so ``α_{klm}`` is the kernel's L1 norm (tick's convention: ``alpha[k, l]`` is the effect of type ``l`` on
type ``k``) and the branching matrix is ``A_{kl} = Σ_m α_{klm}``. The process is stationary iff the spectral
radius ``ρ(A) < 1``; its stationary rate is ``(I − A)^{-1} μ``.

The state after the ``j``-th event is the excitation ``R_{klm} = Σ_{i <= j, k_i = l} α_{klm} β_{klm}
e^{−β_{klm}(t_j − t_i)}``; with no event in ``(t_j, t_j + τ)``

.. math::
    \lambda_k(t_j + \tau) = \mu_k + \sum_{l,m} R_{klm} e^{-\beta_{klm}\tau}, \qquad
    \Lambda_j(\tau) = \tau \sum_k \mu_k + \sum_{k,l,m} R_{klm} \frac{1 - e^{-\beta_{klm}\tau}}{\beta_{klm}},

the spec's next-event CDF ``1 − exp(−(Σμ)τ − Σ S (1 − e^{−βτ})/β)`` with ``S = Σ_{lm} R``. Every term of the
intensity decays between events, so the current intensity bounds it until the next event and Ogata's thinning
with that bound is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from smurf_thp._process import FloatArray, IntArray, TemporalPointProcess, array, as_list, f64, vector
from smurf_thp.data import EventSequence

__all__ = ["HawkesExp", "HawkesSumExp"]


class _ExpKernelHawkes(TemporalPointProcess[FloatArray]):
    """Shared machinery: ``mu (K,)``, ``alpha (K, K, M)`` (L1 norms), ``beta (K, K, M)`` decays."""

    def _setup(self, mu: FloatArray, alpha: FloatArray, beta: FloatArray) -> None:
        if float(mu.sum()) <= 0.0:
            raise ValueError(f"mu must have a positive sum (else the process may never fire), got {mu.tolist()}")
        branching = alpha.sum(axis=2)
        radius = float(np.max(np.abs(np.linalg.eigvals(branching))))
        if radius >= 1.0:
            raise ValueError(
                f"alpha is not stationary: the spectral radius of the branching matrix alpha is {radius:.4g} "
                "(must be < 1)"
            )
        self.num_types = int(mu.shape[0])
        self._mu = mu
        self._alpha3 = alpha
        self._beta3 = beta
        self._jump = alpha * beta  # (K, K, M): the jump of R[:, l, :] at a type-l event
        self.spectral_radius = radius
        """``ρ(A)`` of the branching matrix ``A = Σ_m α_{::m}``."""

    def stationary_rate(self) -> FloatArray:
        """The stationary intensity ``E λ = (I − A)^{-1} μ`` per type, ``(K,)``."""
        branching = self._alpha3.sum(axis=2)
        return np.linalg.solve(np.eye(self.num_types) - branching, self._mu)

    # -- state and intensities (R: (K, K, M) excitation right after the last event) --------------------------
    def _state(self, seq: EventSequence, j: int) -> FloatArray:
        shape = self._jump.shape
        if j < 0:
            return np.zeros(shape)
        dt = float(seq.times[j]) - np.asarray(seq.times[: j + 1], dtype=np.float64)  # (n,)
        types = np.asarray(seq.types[: j + 1], dtype=np.int64)
        contrib = self._jump[:, types, :] * np.exp(-self._beta3[:, types, :] * dt[None, :, None])  # (K, n, M)
        onehot = np.zeros((types.size, self.num_types))
        onehot[np.arange(types.size), types] = 1.0
        return f64(np.einsum("knm,nl->klm", contrib, onehot))

    def _states(self, seq: EventSequence) -> Iterator[FloatArray]:
        state = np.zeros(self._jump.shape)
        prev = float(seq.t_start)
        yield state
        for t, k in zip(np.asarray(seq.times, dtype=np.float64), np.asarray(seq.types), strict=True):
            state = state * np.exp(-self._beta3 * (float(t) - prev))
            state[:, k, :] += self._jump[:, k, :]
            prev = float(t)
            yield state

    def _intensity(self, state: FloatArray, tau: FloatArray) -> FloatArray:
        decay = np.exp(-self._beta3[None] * tau[:, None, None, None])  # (n, K, K, M)
        return self._mu[None, :] + f64(np.einsum("klm,nklm->nk", state, decay))

    def _cumhazard(self, state: FloatArray, tau: FloatArray) -> FloatArray:
        beta = self._beta3[None]
        frac = -np.expm1(-beta * tau[:, None, None, None]) / beta  # (n, K, K, M)
        return float(self._mu.sum()) * tau + f64(np.einsum("klm,nklm->n", state, frac))

    def _quantile(self, state: FloatArray, q: FloatArray) -> FloatArray:
        return self._solve(state, -np.log1p(-q))

    # -- Ogata thinning ------------------------------------------------------------------------------------
    def _simulate_one(
        self, rng: np.random.Generator, t_end: float | None, n_events: int | None
    ) -> tuple[FloatArray, IntArray]:
        mu, jump, beta = self._mu, self._jump, self._beta3
        mu_sum = float(mu.sum())
        state = np.zeros(jump.shape)
        t = 0.0
        times: list[float] = []
        types: list[int] = []
        while n_events is None or len(times) < n_events:
            bound = mu_sum + float(state.sum())  # λ(t+) >= λ(s) for all s until the next event
            wait = rng.standard_exponential() / bound
            if t_end is not None and t + wait > t_end:
                break
            t += wait
            state *= np.exp(-beta * wait)
            lam = mu + state.sum(axis=(1, 2))  # (K,)
            u = rng.random() * bound
            if u < lam.sum():  # accept; given acceptance u is uniform on [0, λ(t)), so it also picks the type
                k = min(int(np.searchsorted(np.cumsum(lam), u, side="right")), self.num_types - 1)
                state[:, k, :] += jump[:, k, :]
                times.append(t)
                types.append(k)
        return np.asarray(times, dtype=np.float64), np.asarray(types, dtype=np.int64)


class HawkesExp(_ExpKernelHawkes):
    r"""Multivariate Hawkes process with exponential kernels ``φ_kl(s) = α_kl β_kl e^{−β_kl s}``.

    .. math::
        \lambda_k(t) = \mu_k + \sum_{t_i < t} \alpha_{k k_i} \beta_{k k_i} e^{-\beta_{k k_i}(t - t_i)}

    ``alpha`` is the kernel's L1 norm (tick's ``adjacency``; ``alpha[k, l]``: effect of type ``l`` on type ``k``)
    and ``beta`` the decay (tick's ``decays``), a number or a ``(K, K)`` matrix. Next-event CDF (scalar ``β``):
    ``F(τ) = 1 − exp(−(Σ_k μ_k) τ − Σ_k S_k (1 − e^{−βτ}) / β)`` with ``S_k`` the excitation of type ``k`` at ``t_j``.

    Args:
        mu: baselines ``μ (K,)`` (a number when ``K = 1``), ``>= 0`` with a positive sum.
        alpha: L1 norms ``(K, K)`` (a number when ``K = 1``), ``>= 0``, spectral radius ``< 1``.
        beta: decays ``> 0``: a number or ``(K, K)``.

    Raises:
        ValueError: negative ``mu`` / ``alpha``, non-positive ``beta``, wrong shapes, or ``ρ(alpha) >= 1``.

    Example:
        >>> import math
        >>> from smurf_thp.data import EventSequence
        >>> proc = HawkesExp(mu=0.2, alpha=0.8, beta=1.0)  # Omi et al.'s hawkes1
        >>> round(float(proc.stationary_rate()[0]), 6)
        1.0
        >>> seq = EventSequence([1.0], [0], t_end=3.0)
        >>> cdf = proc.next_cdf(seq, 0, 2.0)  # one event at t = 1: excitation S = 0.8 at t_j
        >>> round(float(cdf), 9), round(1 - math.exp(-0.2 * 2 - 0.8 * (1 - math.exp(-2.0))), 9)
        (0.664365253, 0.664365253)
    """

    name = "hawkes-exp"

    def __init__(self, mu: ArrayLike, alpha: ArrayLike, beta: ArrayLike) -> None:
        mu_v = vector("mu", mu, low=0.0)
        k = mu_v.shape[0]
        alpha_m = array(
            "alpha", np.reshape(alpha, (1, 1)) if k == 1 and np.ndim(alpha) == 0 else alpha, (k, k), low=0.0
        )
        if np.ndim(beta) == 0:
            beta_m = array("beta", np.full((k, k), beta, dtype=np.float64), (k, k))
        else:
            beta_m = array("beta", beta, (k, k))
        if np.any(beta_m <= 0):
            raise ValueError(f"beta must be > 0, got {beta_m.tolist() if np.ndim(beta) else beta!r}")
        self._beta_arg = float(np.asarray(beta)) if np.ndim(beta) == 0 else beta_m
        self.mu = mu_v
        """``μ (K,)``."""
        self.alpha = alpha_m
        """``α (K, K)``: kernel L1 norms (branching matrix)."""
        self.beta = beta_m
        """``β (K, K)``: decays (a scalar argument is broadcast)."""
        self._setup(mu_v, alpha_m[:, :, None], beta_m[:, :, None])

    def _params(self) -> dict[str, Any]:
        beta = self._beta_arg if isinstance(self._beta_arg, float) else as_list(self._beta_arg)
        return {"mu": as_list(self.mu), "alpha": as_list(self.alpha), "beta": beta}


class HawkesSumExp(_ExpKernelHawkes):
    r"""Hawkes process whose kernels are sums of exponentials with shared decays ``β_m``.

    .. math::
        \lambda_k(t) = \mu_k + \sum_{t_i < t} \sum_{m=1}^{M} \alpha_{k k_i m}\, \beta_m e^{-\beta_m (t - t_i)}

    tick's ``HawkesSumExpKern`` convention (``alphas[k, l, m]`` is the L1 norm of component ``m`` of the effect
    of type ``l`` on type ``k``). Omi et al. (2019)'s ``hawkes2`` is ``HawkesSumExp(0.2, (0.4, 0.4), (1, 20))``.

    Args:
        mu: baselines ``(K,)`` (a number when ``K = 1``), ``>= 0`` with a positive sum.
        alphas: L1 norms ``(K, K, M)``, or ``(M,)`` when ``K = 1``; ``>= 0``; ``ρ(Σ_m alphas[..., m]) < 1``.
        betas: decays ``(M,)``, ``> 0``.

    Raises:
        ValueError: negative ``mu`` / ``alphas``, non-positive ``betas``, wrong shapes, or a non-stationary kernel.

    Example:
        >>> proc = HawkesSumExp(0.2, (0.4, 0.4), (1.0, 20.0))
        >>> proc.spectral_radius, round(float(proc.stationary_rate()[0]), 6)
        (0.8, 1.0)
    """

    name = "hawkes-sumexp"

    def __init__(self, mu: ArrayLike, alphas: ArrayLike, betas: ArrayLike) -> None:
        mu_v = vector("mu", mu, low=0.0)
        betas_v = vector("betas", betas)
        if np.any(betas_v <= 0):
            raise ValueError(f"betas must be > 0, got {betas_v.tolist()}")
        k, m = mu_v.shape[0], betas_v.shape[0]
        raw = np.reshape(alphas, (1, 1, m)) if k == 1 and np.ndim(alphas) == 1 and np.size(alphas) == m else alphas
        alphas_a = array("alphas", raw, (k, k, m), low=0.0)
        self.mu = mu_v
        """``μ (K,)``."""
        self.alphas = alphas_a
        """``α (K, K, M)``: L1 norms of the kernel components."""
        self.betas = betas_v
        """``β (M,)``: decays of the components."""
        self._setup(mu_v, alphas_a, np.broadcast_to(betas_v, (k, k, m)).copy())

    def _params(self) -> dict[str, Any]:
        return {"mu": as_list(self.mu), "alphas": as_list(self.alphas), "betas": as_list(self.betas)}
