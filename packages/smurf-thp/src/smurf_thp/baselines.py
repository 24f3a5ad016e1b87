r"""Intensity-based baselines trained by maximum likelihood and sampled exactly by inverse CDF.

Two models share the THP encoder of :class:`~smurf_thp.smurf.SMURFTHP` (same sizes) and its interface
(``loss(types, times, mask, u_next)``, ``sample(types, times, mask, sampler, init)``), so the trainer and the
evaluation treat every model alike:

* :class:`FlexibleIntensityMLE` — SMURF's ground intensity ``λ(u | h)``
  (:class:`~smurf_thp.model.IntensityScoreHead`) and its time-conditioned type head, trained by the exact
  log-likelihood instead of score matching (spec §6, row "SMURF head, MLE + inverse-CDF").
* :class:`THPIntensity` — Zuo et al.'s per-type intensities
  ``λ_k(u | h_j) = softplus_β(w_kᵀ h_j + α_k u / (t_j + 1) + b_k)`` (spec §3 "THP").

The negative log-likelihood of the next event ``(u, k)`` given ``h_j`` is split into a time and a type part,

.. math::
    -\log p(u, k \mid h_j) = \underbrace{-\log\lambda(u) + \int_0^{u}\lambda(s)\,ds}_{\text{time}}
    \;\underbrace{-\log p(k \mid u, h_j)}_{\text{type}},

with ``λ = Σ_k λ_k`` and ``p(k | u) = λ_k(u)/λ(u)`` for THP (so the sum is ``−log λ_k(u) + Λ(u)``) and
``p(k | u) = softmax(logits(· | u, h_j))_k`` for the flexible head. The compensator ``Λ(u) = ∫_0^u λ`` is the
trapezoid rule on the per-event grid ``u · i / G``, ``i = 0..G`` (``G = grid_points``, 16 as in the spec's MLE rows):
softplus of a non-linear function of ``u`` has no elementary integral. Its error is at most
``u³ max|λ''| / (12 G²)``.

Sampling is exact up to the grid: :func:`~smurf_thp.sampling.inverse_cdf_sample` inverts ``Λ`` on a shared grid
``[0, upper]`` with quadratic spacing (dense near 0 where Hawkes gap densities peak), and holds the last intensity
constant beyond ``upper``; the type is then drawn from ``p(k | u_sample)``.

Note:
    **Space.** These models live in the *mean-scaled* space ``u = τ / mean`` (``u ≥ 0``; class attribute
    ``space = "mean"``, read by the trainer to fit a ``TimeNormalizer(mode="mean")``), as the spec's MLE rows
    ("gaps/mean"). The likelihood's integral starts at ``u = 0``, so a space where ``u`` can be negative (the log
    normaliser of SMURF-THP, ``space = "log"``) does not fit; ``loss`` rejects negative ``u``. Their losses are
    exact negative log-likelihoods per event: no label smoothing and no ``loss_lambda`` (both SMURF-only
    settings of :class:`~smurf_thp.smurf.SMURFConfig` are ignored; ``reduction`` is honoured).
"""

from __future__ import annotations

import abc
import functools
import math
from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from smurf_thp.model import IntensityScoreHead, THPEncoder, TimeTypeHead
from smurf_thp.sampling import categorical, inverse_cdf_sample
from smurf_thp.smurf import LossOut, SamplerConfig, Samples, SMURFConfig

__all__ = ["FlexibleIntensityMLE", "THPIntensity", "compensator", "quadratic_grid"]

_CHUNK_ELEMENTS = 1 << 22
"""Sampling works on chunks of events so that the ``(events, grid, width)`` intermediates stay ~16 MB."""


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def compensator(intensity_fn: Callable[[Tensor], Tensor], tau: Tensor, grid_points: int = 16) -> tuple[Tensor, Tensor]:
    r"""``(λ(τ), Λ(τ))`` with ``Λ(τ) = ∫_0^τ λ`` by the trapezoid rule on ``G = grid_points`` equal intervals.

    .. math::
        \Lambda(\tau) \approx \frac{\tau}{G}\Big(\tfrac12\lambda(0) + \sum_{i=1}^{G-1}\lambda\big(\tfrac{i\tau}{G}\big)
        + \tfrac12\lambda(\tau)\Big)

    Args:
        intensity_fn: ``s (..., G + 1) -> λ(s) (..., G + 1)`` (``...`` = the events).
        tau: ``(...)`` gaps ``>= 0``.
        grid_points: ``G >= 1``.

    Returns:
        ``(λ(τ), Λ(τ))``, both of shape ``(...)``; ``λ(τ)`` is the last grid value.

    Raises:
        ValueError: ``grid_points < 1``.

    Example:
        >>> lam, Lam = compensator(lambda s: 2.0 + s, torch.tensor([1.0, 3.0]), 4)  # ∫ 2 + s = 2τ + τ²/2, exact
        >>> lam.tolist(), Lam.tolist()
        ([3.0, 5.0], [2.5, 10.5])
    """
    _check_int("grid_points", grid_points, 1)
    frac = torch.linspace(0.0, 1.0, grid_points + 1, dtype=tau.dtype, device=tau.device)
    lam = intensity_fn(tau.unsqueeze(-1) * frac)  # (..., G + 1)
    inner = lam.sum(-1) - 0.5 * (lam[..., 0] + lam[..., -1])
    return lam[..., -1], inner * tau / grid_points


def quadratic_grid(
    upper: float, points: int, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> Tensor:
    """``upper · (i / (points − 1))²``, ``i = 0..points−1``: the inverse-CDF grid, dense near 0.

    Raises:
        ValueError: ``upper <= 0`` or ``points < 2``.

    Example:
        >>> quadratic_grid(4.0, 3).tolist()
        [0.0, 1.0, 4.0]
    """
    _check_positive("upper", upper)
    _check_int("points", points, 2)
    return upper * torch.linspace(0.0, 1.0, points, dtype=dtype, device=device) ** 2


def _log_softplus(x: Tensor) -> Tensor:
    """``log softplus(x)``, exact to float precision for very negative ``x`` (where it is ``≈ x``)."""
    low = x < -20.0
    safe = torch.where(low, torch.zeros_like(x), x)  # keeps the unused branch's gradient finite
    return torch.where(low, x, torch.log(F.softplus(safe)))


class _IntensityMLE(nn.Module, abc.ABC):
    """Shared shell: encoder, validation, per-event NLL, reduction and inverse-CDF sampling."""

    space: ClassVar[str] = "mean"
    """the normalised gap space the caller must use (``u = τ / mean``)."""

    def __init__(self, config: SMURFConfig, grid_points: int, sample_upper: float, sample_points: int) -> None:
        super().__init__()
        _check_int("grid_points", grid_points, 1)
        _check_positive("sample_upper", sample_upper)
        _check_int("sample_points", sample_points, 2)
        c = self.config = config
        self.grid_points, self.sample_upper, self.sample_points = grid_points, float(sample_upper), sample_points
        self.encoder = THPEncoder(c.num_types, c.d_model, c.d_inner, c.n_layers, c.n_head, c.d_k, c.d_v, c.dropout)

    # --- what a model defines ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def intensity(self, h: Tensor, t_prev: Tensor, u: Tensor) -> Tensor:
        """Ground intensity ``λ(u | h, t_prev)``: ``h (..., d)``, ``t_prev (...)``, ``u (..., M)`` -> ``(..., M)``."""

    @abc.abstractmethod
    def type_log_probs(self, h: Tensor, t_prev: Tensor, u: Tensor) -> Tensor:
        """``log p(k | u, h)``: ``(..., M, K)``."""

    @abc.abstractmethod
    def _width(self) -> int:
        """Features computed per event and grid value (sizes the sampling chunks so ``_on_grid`` stays in memory)."""

    def _on_grid(self, h: Tensor, t_prev: Tensor, grid: Tensor) -> Tensor:
        """``λ`` of ``n`` events on a shared grid: ``h (n, d)``, ``t_prev (n,)``, ``grid (G,)`` -> ``(n, G)``."""
        return self.intensity(h, t_prev, grid.expand(h.shape[0], -1))

    # --- shared --------------------------------------------------------------------------------------------------
    def encode(self, types: Tensor, times: Tensor, mask: Tensor) -> Tensor:
        """``h_j`` for ``j = 0..L−2`` (each conditions event ``j + 1``): ``(B, L−1, d_model)``."""
        h: Tensor = self.encoder(types, times, mask)
        return h[:, :-1]

    def nll(self, types: Tensor, times: Tensor, mask: Tensor, u_next: Tensor) -> tuple[Tensor, Tensor]:
        """Per-event negative log-likelihood ``(time, type)``, each ``(B, L−1)``, 0 where ``mask[:, 1:]`` is False.

        ``time = −log λ(u) + Λ(u)`` (trapezoid ``Λ``, ``grid_points`` intervals) and ``type = −log p(k | u)`` at the
        true ``u``; their sum is the exact ``−log p(u, k | h_j)`` in the ``mean`` space (up to the trapezoid error).

        Args:
            types, times, mask: the padded batch ``(B, L)`` (types 0-based, times absolute).
            u_next: ``(B, L−1)`` mean-scaled gaps ``τ / mean`` of events ``1..L−1`` (any value at padding).

        Raises:
            ValueError: a shape mismatch, or a negative or non-finite ``u`` at a real event.
        """
        B, L = types.shape
        if u_next.shape != (B, L - 1):
            raise ValueError(f"u_next must have shape ({B}, {L - 1}), got {tuple(u_next.shape)}")
        valid = mask[:, 1:]
        u = torch.where(valid, u_next, torch.zeros_like(u_next))
        if not bool(torch.isfinite(u).all()) or bool((u < 0).any()):
            raise ValueError(
                f"u_next must be finite and >= 0 at real events: {type(self).__name__} works in the mean-scaled "
                "space u = τ / mean (space = 'mean'), not the log space"
            )
        h = self.encode(types, times, mask)
        t_prev = times[:, :-1].to(h.dtype)
        lam, Lam = compensator(lambda s: self.intensity(h, t_prev, s), u.to(h.dtype), self.grid_points)
        time_nll = Lam - torch.log(lam.clamp_min(1e-30))
        logp = self.type_log_probs(h, t_prev, u.to(h.dtype).unsqueeze(-1)).squeeze(-2)  # (B, L-1, K)
        type_nll = -logp.gather(-1, types[:, 1:].clamp_min(0).unsqueeze(-1)).squeeze(-1)
        zero = torch.zeros_like(time_nll)
        return torch.where(valid, time_nll, zero), torch.where(valid, type_nll, zero)

    def loss(self, types: Tensor, times: Tensor, mask: Tensor, u_next: Tensor,
             generator: torch.Generator | None = None) -> LossOut:  # fmt: skip
        """The negative log-likelihood of a batch, reduced per event (``mean``) or summed (``sum``).

        Args:
            types, times, mask: the padded batch ``(B, L)``.
            u_next: ``(B, L−1)`` mean-scaled gaps (see :meth:`nll`).
            generator: unused (the loss is deterministic); kept for the common interface.

        Returns:
            :class:`~smurf_thp.smurf.LossOut` ``(total, time, type, n_events)``.

        Raises:
            ValueError: see :meth:`nll`, or a non-finite loss (with a hint).
        """
        time_nll, type_nll = self.nll(types, times, mask, u_next)
        n = int(mask[:, 1:].sum())
        per_event = time_nll + type_nll
        total = per_event.sum() / max(n, 1) if self.config.reduction == "mean" else per_event.sum()
        if not torch.isfinite(total):
            raise ValueError("the loss is not finite: lower the learning rate")
        denom = max(n, 1)
        return LossOut(total, time_nll.sum().detach() / denom, type_nll.sum().detach() / denom, n)

    @torch.no_grad()
    def sample(self, types: Tensor, times: Tensor, mask: Tensor, sampler: SamplerConfig,
               init: tuple[float, float] | None = None, generator: torch.Generator | None = None, *,
               upper: float | None = None) -> Samples:  # fmt: skip
        """Exact inverse-CDF samples of every next gap (mean-scaled space) and their types.

        Args:
            types, times, mask: the padded batch ``(B, L)``.
            sampler: only ``n_samples`` is used (the Langevin fields do not apply).
            init: ignored (the common interface's Langevin start).
            generator: for the ``Exp(1)`` and type draws.
            upper: end of the quadratic grid (default :attr:`sample_upper`, 20 mean gaps); beyond it the last
                intensity is held constant, so larger gaps are still sampled.

        Returns:
            :class:`~smurf_thp.smurf.Samples` with ``tau``/``types`` ``(B, L−1, S)`` and ``type_probs``
            ``(B, L−1, K)``; zeros at positions without history (``mask[:, :-1]`` False).
        """
        h = self.encode(types, times, mask)
        B, Lm1, _ = h.shape
        S, K = sampler.n_samples, self.config.num_types
        grid = quadratic_grid(self.sample_upper if upper is None else upper, self.sample_points, h.dtype, h.device)
        tau = torch.zeros(B, Lm1, S, dtype=h.dtype, device=h.device)
        drawn = torch.zeros(B, Lm1, S, dtype=torch.long, device=h.device)
        probs = torch.zeros(B, Lm1, K, dtype=h.dtype, device=h.device)
        has_history = mask[:, :-1]
        hs, ts = h[has_history], times[:, :-1][has_history].to(h.dtype)  # (N, d), (N,)
        step = max(1, _CHUNK_ELEMENTS // (self.sample_points * self._width()))
        taus, types_out, probs_out = [], [], []
        for i in range(0, hs.shape[0], step):
            hc, tc = hs[i : i + step], ts[i : i + step]
            x = inverse_cdf_sample(functools.partial(self._on_grid, hc, tc), grid, S, generator)
            p = self.type_log_probs(hc, tc, x).exp()  # (n, S, K)
            taus.append(x)
            types_out.append(categorical(p.reshape(-1, K), generator).reshape(x.shape))
            probs_out.append(p.mean(-2))
        if taus:
            tau[has_history] = torch.cat(taus)
            drawn[has_history] = torch.cat(types_out)
            probs[has_history] = torch.cat(probs_out)
        return Samples(tau, drawn, probs)


class FlexibleIntensityMLE(_IntensityMLE):
    r"""SMURF's intensity and type heads trained by maximum likelihood (spec §6, "SMURF head, MLE + inverse-CDF").

    ``λ(u | h_j) = softplus(wᵀ tanh(a(h_j) u + b(h_j)) + c)`` (:class:`~smurf_thp.model.IntensityScoreHead`) and
    ``p(k | u, h_j) = softmax(W_c tanh(tanh(W_a' h_j) u + W_b' h_j))_k`` (:class:`~smurf_thp.model.TimeTypeHead`):

    .. math::
        -\log p(u, k \mid h_j) = -\log\lambda(u) + \int_0^u \lambda - \log p(k \mid u, h_j)

    with the integral by the ``grid_points``-interval trapezoid rule and the type term at the true ``u``.

    Args:
        config: sizes and ``num_types`` (the SMURF-only loss settings are ignored; ``reduction`` is used).
        grid_points: trapezoid intervals per event in the loss (spec: 16).
        sample_upper: end of the inverse-CDF grid in mean gaps (20).
        sample_points: points of that grid (1025).

    Raises:
        ValueError: ``grid_points < 1``, ``sample_upper <= 0`` or ``sample_points < 2``.

    Note:
        ``space = "mean"``: ``u_next`` must be ``τ / mean`` (module note). ``log λ`` is taken of ``λ`` clamped at
        ``1e-30``.

    Example:
        >>> cfg = SMURFConfig(num_types=2, d_model=8, d_inner=16, n_layers=1, n_head=1, dropout=0.0)
        >>> model = FlexibleIntensityMLE(cfg)
        >>> types, times = torch.tensor([[0, 1, 1]]), torch.tensor([[0.5, 1.5, 1.7]])
        >>> model.loss(types, times, types >= 0, torch.tensor([[1.0, 0.2]])).n_events
        2
        >>> model.sample(types, times, types >= 0, SamplerConfig(n_samples=4)).tau.shape
        torch.Size([1, 2, 4])
    """

    def __init__(self, config: SMURFConfig, grid_points: int = 16, sample_upper: float = 20.0,
                 sample_points: int = 1025) -> None:  # fmt: skip
        super().__init__(config, grid_points, sample_upper, sample_points)
        self.time_head = IntensityScoreHead(config.d_model)
        self.type_head = TimeTypeHead(config.d_model, config.num_types)

    def _width(self) -> int:
        return self.config.d_model

    def intensity(self, h: Tensor, t_prev: Tensor, u: Tensor) -> Tensor:
        """``λ(u | h)`` of the SMURF head (``t_prev`` unused): ``(..., M)``."""
        return self.time_head.intensity(h, u)

    def type_log_probs(self, h: Tensor, t_prev: Tensor, u: Tensor) -> Tensor:
        """``log softmax(logits(· | u, h))``: ``(..., M, K)``."""
        return F.log_softmax(self.type_head(h, u), dim=-1)


class THPIntensity(_IntensityMLE):
    r"""Zuo et al.'s THP intensity trained by maximum likelihood (spec §3 "THP", §6 "THP intensity (Zuo head)").

    Per-type intensities after event ``j`` (absolute time ``t_j``, hidden state ``h_j``), gap ``u``:

    .. math::
        \lambda_k(u \mid h_j) = \operatorname{softplus}_\beta\Big(w_k^\top h_j + \alpha_k \frac{u}{t_j + 1} + b_k\Big),
        \quad \operatorname{softplus}_\beta(x) = \tfrac1\beta \log(1 + e^{\beta x}),

    ``λ = Σ_k λ_k``, ``−log p(u, k | h_j) = −log λ_k(u) + ∫_0^u λ`` (trapezoid, ``grid_points`` intervals), and
    ``p(k | u) = λ_k(u) / λ(u)``.

    Args:
        config: sizes and ``num_types`` (``reduction`` is used; the SMURF-only loss settings are ignored).
        grid_points: trapezoid intervals per event (16; the THP code uses a 100-sample Monte-Carlo integral).
        sample_upper, sample_points: the inverse-CDF grid (20 mean gaps, 1025 points).
        beta: the softness ``β > 0`` (THP: 1).
        learn_beta: train ``β`` too (THP declares it a parameter; default fixed, since ``β`` and the scale of
            ``w, α, b`` largely trade off).

    Raises:
        ValueError: ``beta <= 0`` or a bad grid setting.

    Note:
        ``t_j`` is the absolute time as fed to the encoder; ``t_j + 1`` (THP's integral code) instead of the
        official SMURF baseline's ``t_j + 1e-10``, which explodes at ``t_0 = 0`` (spec §7, pitfall 5). ``u`` is the
        mean-scaled gap, so ``u / (t_j + 1)`` has THP's ``(t − t_j)/(t_j + 1)`` form when the caller also divides
        the absolute times by the mean gap. ``α_k`` is per type (THP: one scalar), initialised to THP's −0.1.

    Example:
        >>> cfg = SMURFConfig(num_types=3, d_model=8, d_inner=16, n_layers=1, n_head=1, dropout=0.0)
        >>> model = THPIntensity(cfg)
        >>> h, t_prev, u = torch.randn(2, 8), torch.tensor([0.0, 4.0]), torch.rand(2, 5)
        >>> model.per_type_intensity(h, t_prev, u).shape
        torch.Size([2, 5, 3])
        >>> bool(torch.allclose(model.type_log_probs(h, t_prev, u).exp().sum(-1), torch.ones(2, 5)))
        True
    """

    def __init__(self, config: SMURFConfig, grid_points: int = 16, sample_upper: float = 20.0,
                 sample_points: int = 1025, beta: float = 1.0, learn_beta: bool = False) -> None:  # fmt: skip
        super().__init__(config, grid_points, sample_upper, sample_points)
        _check_positive("beta", beta)
        self.linear = nn.Linear(config.d_model, config.num_types)
        self.alpha = nn.Parameter(torch.full((config.num_types,), -0.1))
        self.log_beta = nn.Parameter(torch.tensor(math.log(beta)), requires_grad=learn_beta)

    def _width(self) -> int:
        return self.config.num_types

    def _pre(self, h: Tensor, t_prev: Tensor, u: Tensor) -> Tensor:
        """``β (w_kᵀ h + α_k u / (t_j + 1) + b_k)``: ``(..., M, K)``."""
        base: Tensor = self.linear(h).unsqueeze(-2)  # (..., 1, K)
        scaled = (u / (t_prev.unsqueeze(-1) + 1.0)).unsqueeze(-1)  # (..., M, 1)
        return self.log_beta.exp() * (base + self.alpha * scaled)

    def per_type_intensity(self, h: Tensor, t_prev: Tensor, u: Tensor) -> Tensor:
        """``λ_k(u | h_j)``: ``h (..., d)``, ``t_prev (...)``, ``u (..., M)`` -> ``(..., M, K)``."""
        return F.softplus(self._pre(h, t_prev, u)) / self.log_beta.exp()

    def intensity(self, h: Tensor, t_prev: Tensor, u: Tensor) -> Tensor:
        """``λ(u) = Σ_k λ_k(u)``: ``(..., M)``."""
        return self.per_type_intensity(h, t_prev, u).sum(-1)

    def type_log_probs(self, h: Tensor, t_prev: Tensor, u: Tensor) -> Tensor:
        """``log λ_k(u) − log Σ_j λ_j(u)`` (stable for tiny intensities): ``(..., M, K)``."""
        return torch.log_softmax(_log_softplus(self._pre(h, t_prev, u)), dim=-1)
