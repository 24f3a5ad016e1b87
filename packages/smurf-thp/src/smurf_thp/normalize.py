"""The normalised space of inter-event times in which SMURF-THP learns scores and runs Langevin chains.

Modes (``τ`` a raw gap, ``u`` its normalised value; statistics from the train split only):

=========  ===================================  ==========================================
mode       ``u = transform(τ)``                 fitted statistics
=========  ===================================  ==========================================
``log``    ``(log max(τ, eps) - m) / s``        ``m``, ``s``: mean and population std of
                                                ``log max(τ, eps)`` over the train gaps
``mean``   ``τ / m``                            ``m``: mean train gap
``none``   ``τ``                                none
=========  ===================================  ==========================================

The authors' ``-normalize`` option has ``log`` and ``normal`` (their name for ``mean``); their code
keeps ``u = log τ`` standardised the same way (spec §1 "Sampling"). :attr:`TimeNormalizer.quantiles`
holds the 5% and 95% quantiles of the transformed train gaps, the range of the Langevin
initialisation ``u⁰ ~ U[q05, q95]``.

Densities change between the spaces by the Jacobian: ``p_τ(τ) = p_u(u(τ)) · du/dτ``
(:meth:`TimeNormalizer.density_factor`).

Note:
    In ``log`` mode gaps below ``eps`` (ties, ``τ = 0``) are clamped to ``eps``: :meth:`~TimeNormalizer.fit`
    warns once with their number; :meth:`~TimeNormalizer.transform` clamps silently (padded
    positions hold 0), and :meth:`~TimeNormalizer.count_clamped` counts them for a report.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, TypeVar

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

MODES = ("log", "mean", "none")
"""The normalisation modes."""

_STATE_KEYS = ("mode", "eps", "mean", "std", "q05", "q95", "gap_mean", "n_fit", "n_clamped")

ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)


class TimeNormalizer:
    """Map inter-event times ``τ >= 0`` to the normalised space ``u`` and back.

    Args:
        mode: ``"log"`` (default, ``u = (log τ - m)/s``), ``"mean"`` (``u = τ/m``) or ``"none"`` (``u = τ``).
        eps: lower clamp of ``τ`` before the logarithm, ``> 0`` (default 1e-6).

    Raises:
        ValueError: an unknown ``mode`` or ``eps <= 0``.

    Example:
        >>> import numpy as np
        >>> norm = TimeNormalizer("log").fit(np.exp([0.0, 1.0, 2.0]))
        >>> round(norm.mean, 6), round(norm.std, 6)
        (1.0, 0.816497)
        >>> np.round(norm.transform(np.array([np.e])), 6).tolist()
        [0.0]
        >>> float(norm.inverse(np.array([0.0]))[0]) == float(np.exp(1.0))
        True
    """

    def __init__(self, mode: str = "log", eps: float = 1e-6) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
        self.mode = mode
        self.eps = float(eps)
        self._fitted = False
        self.mean = 0.0
        """``m``: mean of ``log max(τ, eps)`` (``log``), the mean gap (``mean``), 0 (``none``)."""
        self.std = 1.0
        """``s``: population std of ``log max(τ, eps)`` (``log``), else 1."""
        self.q05 = 0.0
        """5% quantile of the transformed train gaps."""
        self.q95 = 0.0
        """95% quantile of the transformed train gaps."""
        self.gap_mean = 1.0
        """mean raw train gap (every mode; a natural unit for absolute times)."""
        self.n_fit = 0
        """number of train gaps fitted."""
        self.n_clamped = 0
        """number of train gaps below ``eps`` clamped in ``log`` mode."""

    def __repr__(self) -> str:
        if not self._fitted:
            return f"TimeNormalizer(mode={self.mode!r}, eps={self.eps:g}, unfitted)"
        return f"TimeNormalizer(mode={self.mode!r}, mean={self.mean:.6g}, std={self.std:.6g}, n_fit={self.n_fit})"

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`from_state`) has set the statistics."""
        return self._fitted

    @property
    def quantiles(self) -> tuple[float, float]:
        """``(q05, q95)`` of the transformed train gaps: the Langevin initialisation range ``U[q05, q95]``.

        Raises:
            RuntimeError: the normaliser is not fitted.
        """
        self._check_fitted()
        return self.q05, self.q95

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError("TimeNormalizer is not fitted: call .fit(train_gaps) or TimeNormalizer.from_state(...)")

    def fit(self, gaps: ArrayLike | Tensor) -> TimeNormalizer:
        """Fit the statistics on the train split's predicted gaps (never on dev or test).

        Args:
            gaps: the train gaps ``τ >= 0``, any shape (flattened), e.g. ``EventDataset.all_gaps()``.

        Returns:
            ``self``.

        Raises:
            ValueError: ``gaps`` empty, non-finite or negative; in ``mean`` mode all zero.

        Warns:
            UserWarning: ``log`` mode with gaps below ``eps`` (states how many were clamped), or all
                log gaps equal (then ``s = 1``).

        Example:
            >>> TimeNormalizer("mean").fit([1.0, 2.0, 3.0]).mean
            2.0
        """
        tau = _to_numpy(gaps).ravel()
        if tau.size == 0:
            raise ValueError("gaps must not be empty")
        bad = np.flatnonzero(~np.isfinite(tau))
        if bad.size:
            raise ValueError(f"gaps must be finite; gaps[{bad[0]}] is {tau[bad[0]]}")
        neg = np.flatnonzero(tau < 0)
        if neg.size:
            raise ValueError(f"gaps must be >= 0; gaps[{neg[0]}] is {tau[neg[0]]!r}")
        n_clamped = 0
        if self.mode == "log":
            n_clamped = int((tau < self.eps).sum())
            if n_clamped:
                warnings.warn(
                    f"TimeNormalizer(mode='log'): {n_clamped} of {tau.size} gaps are below eps={self.eps:g} "
                    "(ties) and were clamped to eps before the logarithm",
                    UserWarning,
                    stacklevel=2,
                )
            logs = np.log(np.maximum(tau, self.eps))
            mean, std = float(logs.mean()), float(logs.std())
            if not std > 0:
                warnings.warn(
                    "TimeNormalizer(mode='log'): all train gaps are equal; using std=1", UserWarning, stacklevel=2
                )
                std = 1.0
        elif self.mode == "mean":
            mean, std = float(tau.mean()), 1.0
            if not mean > 0:
                raise ValueError("gaps must not all be 0 in mode 'mean' (their mean is the scale)")
        else:
            mean, std = 0.0, 1.0
        self.mean, self.std = mean, std
        self.gap_mean = float(tau.mean())
        self.n_fit, self.n_clamped = int(tau.size), n_clamped
        self._fitted = True
        q05, q95 = np.quantile(self.transform(tau), [0.05, 0.95])
        self.q05, self.q95 = float(q05), float(q95)
        return self

    def transform(self, tau: ArrayT) -> ArrayT:
        """``u = transform(τ)`` (see the module table); ``τ < eps`` is clamped silently in ``log`` mode.

        Args:
            tau: gaps, a numpy array or a torch tensor of any shape.

        Returns:
            ``u``, same type, shape, dtype and device as ``tau``.

        Raises:
            RuntimeError: not fitted.
        """
        self._check_fitted()
        tau = _floating(tau)
        if self.mode == "log":
            if isinstance(tau, Tensor):
                return (torch.log(tau.clamp_min(self.eps)) - self.mean) / self.std
            return np.asarray((np.log(np.maximum(tau, self.eps)) - self.mean) / self.std, dtype=tau.dtype)
        if self.mode == "mean":
            return tau / self.mean
        return tau

    def inverse(self, u: ArrayT) -> ArrayT:
        """``τ = inverse(u)``: ``exp(u s + m)`` (``log``), ``u m`` (``mean``), ``u`` (``none``).

        Args:
            u: normalised values, a numpy array or a torch tensor of any shape.

        Returns:
            ``τ``, same type, shape, dtype and device as ``u``.

        Raises:
            RuntimeError: not fitted.
        """
        self._check_fitted()
        u = _floating(u)
        if self.mode == "log":
            if isinstance(u, Tensor):
                return torch.exp(u * self.std + self.mean)
            return np.asarray(np.exp(u * self.std + self.mean), dtype=u.dtype)
        if self.mode == "mean":
            return u * self.mean
        return u

    def density_factor(self, tau: ArrayT) -> ArrayT:
        """``du/dτ`` at ``τ``, so that ``p_τ(τ) = p_u(transform(τ)) · density_factor(τ)``.

        ``1/(s·τ)`` (``log``), ``1/m`` (``mean``), ``1`` (``none``). In ``log`` mode this is the
        derivative of the unclamped map (``τ = 0`` gives ``inf``), so that it stays exact for the
        small ``τ = inverse(u)`` a sampler can reach.

        Args:
            tau: gaps, a numpy array or a torch tensor.

        Returns:
            Same type, shape, dtype and device as ``tau``.

        Raises:
            RuntimeError: not fitted.

        Example:
            >>> norm = TimeNormalizer("mean").fit([2.0, 2.0])
            >>> norm.density_factor(np.array([1.0, 5.0])).tolist()
            [0.5, 0.5]
        """
        self._check_fitted()
        tau = _floating(tau)
        if self.mode == "log":
            if isinstance(tau, Tensor):
                return 1.0 / (self.std * tau)
            with np.errstate(divide="ignore"):
                return np.asarray(1.0 / (self.std * tau), dtype=tau.dtype)
        scale = 1.0 / self.mean if self.mode == "mean" else 1.0
        if isinstance(tau, Tensor):
            return torch.full_like(tau, scale)
        return np.full_like(tau, scale)

    def count_clamped(self, tau: ArrayLike | Tensor) -> int:
        """Number of entries of ``tau`` that :meth:`transform` clamps (``τ < eps`` in ``log`` mode, else 0)."""
        if self.mode != "log":
            return 0
        return int((_to_numpy(tau) < self.eps).sum())

    def state_dict(self) -> dict[str, Any]:
        """The fitted statistics as plain Python values (JSON-able; store it in checkpoints).

        Raises:
            RuntimeError: not fitted.
        """
        self._check_fitted()
        return {key: getattr(self, key) for key in _STATE_KEYS}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TimeNormalizer:
        """Rebuild a fitted normaliser from :meth:`state_dict`.

        Raises:
            ValueError: a key is missing or a value is invalid (the message names it).

        Example:
            >>> norm = TimeNormalizer("log").fit([0.5, 1.0, 4.0])
            >>> TimeNormalizer.from_state(norm.state_dict()).state_dict() == norm.state_dict()
            True
        """
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            raise ValueError(f"state is missing key {missing[0]!r} (need {list(_STATE_KEYS)})")
        norm = cls(state["mode"], state["eps"])
        for key in ("mean", "std", "q05", "q95", "gap_mean"):
            value = float(state[key])
            if not math.isfinite(value):
                raise ValueError(f"state[{key!r}] must be finite, got {value}")
            setattr(norm, key, value)
        if not norm.std > 0 or (norm.mode == "mean" and not norm.mean > 0):
            raise ValueError(f"state holds a degenerate scale (mean={norm.mean}, std={norm.std})")
        norm.n_fit, norm.n_clamped = int(state["n_fit"]), int(state["n_clamped"])
        norm._fitted = True
        return norm


def _floating(x: ArrayT) -> ArrayT:
    """``x`` itself when it is floating point, else converted to float64 (numpy array or tensor)."""
    if isinstance(x, Tensor):
        return x if x.is_floating_point() else x.to(torch.float64)
    arr = np.asarray(x)
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)


def _to_numpy(x: ArrayLike | Tensor) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)
