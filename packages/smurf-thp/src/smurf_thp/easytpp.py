r"""EasyTPP anchors: THP, SAHP, NHP and IntensityFree of ``easy-tpp``, trained on smurf-thp data and scored by
smurf-thp's calibration metrics (extra ``[easytpp]``: ``pip install 'smurf-thp[easytpp]'``).

EasyTPP (``ant-research/EasyTemporalPointProcess``, PyPI ``easy-tpp`` 0.3) is used as a library: its model
classes, its ``ModelConfig``, its log-likelihood (``loglike_loss``) and its thinning sampler (``EventSampler``)
are called, never copied. This module is the thin shell that lets them take part in smurf-thp's pipeline:

* :func:`to_easytpp_batch` turns smurf-thp's padded batch (:func:`~smurf_thp.data.collate`: types 0-based with
  ``-1`` padding, absolute times, a boolean mask) into the five tensors EasyTPP's models read, with EasyTPP's
  conventions (those of its ``EventTokenizer.pad``); :func:`from_easytpp_batch` is its inverse.
* :class:`EasyTPPAnchor` wraps one EasyTPP model behind the interface of the MLE baselines
  (``space``, ``loss(types, times, mask, u_next)``, ``sample(types, times, mask, sampler, init, generator)``), so
  :class:`~smurf_thp.train.Trainer` trains it with early stopping on the dev split (the loss is EasyTPP's own
  negative log-likelihood per event), checkpoints hold it, and :func:`~smurf_thp.train.predict` /
  :func:`~smurf_thp.train.evaluate` sample it and score the samples with :func:`~smurf_thp.metrics.summarize`
  (coverage, calibration score, oracle CS against the true process, CRPS, interval length, type accuracy).

Samples of the next gap, per event: THP, SAHP and NHP by EasyTPP's thinning sampler
(``EventSampler.draw_next_time_one_step``; ``sampler="thinning"``, the default) or by smurf-thp's exact inverse CDF
of the model's intensity on a grid (``sampler="inverse-cdf"``); IntensityFree by exact draws from its log-normal
mixture (both settings). The type of each sample is drawn from the model's ``p(k | τ) = λ_k(τ) / λ(τ)`` at the
sampled ``τ`` (IntensityFree: its mark distribution, which does not depend on ``τ``).

Conventions (read from the ``easy-tpp`` 0.3.0 wheel):

==========================  =====================================================================================
``type_seqs``               0-based types, padded with ``K`` (``event_pad_index = K``, ``num_event_types_pad = K + 1``)
``time_seqs``               absolute times ``t_j / scale``, padded with ``float(K)`` (the tokenizer pads every
                            sequence with the pad index)
``time_delta_seqs``         ``[0, t_1 − t_0, …] / scale``: the first element is 0 (NHP's docstring; the losses use
                            ``[:, 1:]`` only), padded with ``float(K)``
``seq_non_pad_mask``        ``True`` at real events
``attention_mask``          ``(B, L, L)``, ``True`` where attention is *forbidden*: a later event or a padded key
==========================  =====================================================================================

Note:
    **Space.** The anchors live in the mean-scaled space ``u = τ / m`` of the baselines (``space = "mean"``; ``m`` =
    the mean train gap, EasyTPP's own ``rescale_time`` option). Absolute times are divided by the same ``m``
    (buffer ``time_scale``, set by :meth:`EasyTPPAnchor.prepare`, which the trainer calls after fitting its
    normaliser); IntensityFree's ``mean_log_inter_time`` / ``std_log_inter_time`` are the statistics of
    ``log max(u, 1e-5)`` on the train gaps, as EasyTPP's runner computes them (``TPPDataset.get_dt_stats``).

    **EasyTPP behaviour worth knowing** (not changed here, reported):
    the thinning sampler reuses one set of ``num_exp`` exponential proposals for all ``num_sample`` samples of an
    event (the samples are correlated; each is a correct thinning draw given the proposals), bounds the intensity
    by ``over_sample_rate`` × its maximum on ``num_samples_boundary`` points over the *previous* gap (a heuristic:
    an intensity that rises beyond it is under-bounded), and returns ``dtime_max`` when all proposals are
    rejected (counted in :attr:`EasyTPPAnchor.thinning_stats`); IntensityFree's mark head has ``K + 1`` outputs
    (the pad class included; renormalised over the ``K`` real types here); THP's and SAHP's layers have no residual
    connection or layer norm and THP shares one feed-forward block across layers (unlike Zuo et al.).

References:
    Xue et al., "EasyTPP: Towards Open Benchmarking Temporal Point Processes", ICLR 2024; Zuo et al., THP, ICML
    2020; Zhang et al., SAHP, ICML 2020; Mei & Eisner, NHP, NeurIPS 2017; Shchur et al., intensity-free learning,
    ICLR 2020.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
from importlib import metadata
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from smurf_thp._easytpp import from_easytpp_batch, to_easytpp_batch
from smurf_thp.baselines import quadratic_grid
from smurf_thp.sampling import categorical, inverse_cdf_sample
from smurf_thp.smurf import LossOut, SamplerConfig, Samples

if TYPE_CHECKING:
    from smurf_thp.data import EventDataset
    from smurf_thp.normalize import TimeNormalizer

__all__ = [
    "ANCHORS",
    "EXTRA_HINT",
    "EasyTPPAnchor",
    "EasyTPPConfig",
    "from_easytpp_batch",
    "preset_settings",
    "require_easy_tpp",
    "to_easytpp_batch",
]

logger = logging.getLogger(__name__)

ANCHORS: dict[str, str] = {
    "easytpp-thp": "THP",
    "easytpp-sahp": "SAHP",
    "easytpp-nhp": "NHP",
    "easytpp-intensityfree": "IntensityFree",
}
"""smurf-thp model name (``--model``) -> EasyTPP ``model_id``."""

EXTRA_HINT = "pip install 'smurf-thp[easytpp]'"
"""The install line that provides ``easy_tpp``."""

_CHUNK_ELEMENTS = 1 << 22
"""Sampling works on groups of sequences whose largest intermediate holds about this many numbers (16 MB)."""

_BATCH_KEYS = ("time_seqs", "time_delta_seqs", "type_seqs", "seq_non_pad_mask", "attention_mask")


def require_easy_tpp() -> str:
    """The installed easy-tpp version, or an ``ImportError`` naming the extra.

    Example:
        >>> try:
        ...     version = require_easy_tpp()
        ... except ImportError as exc:
        ...     assert EXTRA_HINT in str(exc)
    """
    _easy_tpp("model")
    try:
        return metadata.version("easy-tpp")
    except metadata.PackageNotFoundError:  # importable without metadata (a source checkout on the path)
        return "unknown"


def _easy_tpp(module: str) -> Any:
    """``easy_tpp.<module>``, or an ``ImportError`` naming the extra (untyped: imported by name for mypy)."""
    try:
        version = metadata.version("easy-tpp")
    except metadata.PackageNotFoundError:
        version = None
    try:
        mod = importlib.import_module(f"easy_tpp.{module}")
    except ImportError as exc:
        raise ImportError(f"the EasyTPP anchors need easy-tpp 0.3: {EXTRA_HINT} ({exc})") from exc
    if version is not None and tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) < (0, 3):
        raise ImportError(f"the EasyTPP anchors need easy-tpp >= 0.3, found {version}: {EXTRA_HINT}")
    return mod


# -- configuration ----------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EasyTPPConfig:
    """One EasyTPP anchor (defaults: EasyTPP's ``ModelConfig``/``ThinningConfig`` unless noted)."""

    num_types: int
    model_id: str = "THP"
    """``THP``, ``SAHP``, ``NHP`` or ``IntensityFree``."""
    hidden_size: int = 32
    num_layers: int = 2
    """attention layers (THP, SAHP)."""
    num_heads: int = 2
    """attention heads (THP, SAHP); must divide ``hidden_size``."""
    time_emb_size: int = 16
    dropout: float = 0.0
    use_ln: bool = False
    """SAHP's layer norm after each layer."""
    loss_integral_num_sample_per_step: int = 20
    """points per interval of the compensator in the loss (THP, SAHP, NHP)."""
    num_mix_components: int = 16
    """IntensityFree's log-normal components (ifl-tpp's default; EasyTPP has no default)."""
    sampler: Literal["thinning", "inverse-cdf"] = "thinning"
    """THP/SAHP/NHP: EasyTPP's thinning sampler or smurf-thp's exact inverse CDF on a grid."""
    num_exp: int = 500
    """thinning: exponential proposals per event."""
    over_sample_rate: float = 5.0
    """thinning: multiplier of the intensity bound."""
    num_samples_boundary: int = 5
    """thinning: points over the previous gap where the bound's maximum is taken."""
    dtime_max: float = 20.0
    """thinning: the value of a draw whose proposals were all rejected, in mean gaps (EasyTPP: 5 data units)."""
    grid_upper: float = 20.0
    """inverse CDF: end of the quadratic grid in mean gaps (beyond it the last intensity is held constant)."""
    grid_points: int = 1025
    reduction: Literal["mean", "sum"] = "mean"
    """per-event mean of the negative log-likelihood (EasyTPP's trainer divides by the event count) or the sum."""

    def __post_init__(self) -> None:
        if self.model_id not in ANCHORS.values():
            raise ValueError(f"model_id must be one of {tuple(ANCHORS.values())}, got {self.model_id!r}")
        for name in ("num_types", "hidden_size", "num_layers", "num_heads", "time_emb_size",
                     "loss_integral_num_sample_per_step", "num_mix_components", "num_exp", "num_samples_boundary"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.grid_points, bool) or not isinstance(self.grid_points, int) or self.grid_points < 2:
            raise ValueError(f"grid_points must be an integer >= 2, got {self.grid_points!r}")
        if self.loss_integral_num_sample_per_step < 2:
            raise ValueError(
                f"loss_integral_num_sample_per_step must be >= 2, got {self.loss_integral_num_sample_per_step}"
            )
        for name in ("over_sample_rate", "dtime_max", "grid_upper"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value > 0)
            ):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.model_id in ("THP", "SAHP") and self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        for name, options in (("sampler", ("thinning", "inverse-cdf")), ("reduction", ("mean", "sum"))):
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {options}, got {getattr(self, name)!r}")


def preset_settings(preset: str) -> dict[str, Any]:
    """The sizes of a :data:`smurf_thp.smurf.PRESETS` entry as :class:`EasyTPPConfig` fields (same width, depth,
    heads and dropout as SMURF-THP in that preset).

    Raises:
        ValueError: an unknown preset.

    Example:
        >>> preset_settings("cpu-small")
        {'hidden_size': 32, 'num_layers': 2, 'num_heads': 2, 'dropout': 0.1}
    """
    from smurf_thp.smurf import PRESETS, SMURFConfig

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    settings: dict[str, Any] = dict(PRESETS[preset])
    c = SMURFConfig(num_types=1, **settings)
    return {"hidden_size": c.d_model, "num_layers": c.n_layers, "num_heads": c.n_head, "dropout": c.dropout}


# -- the anchor -------------------------------------------------------------------------------------------------------
class EasyTPPAnchor(nn.Module):
    r"""One EasyTPP model (THP, SAHP, NHP or IntensityFree) behind the interface of smurf-thp's MLE baselines.

    The loss is the model's own ``loglike_loss`` (``−Σ log λ_k(t_i) + Σ ∫ λ`` for THP/SAHP/NHP with EasyTPP's
    ``loss_integral_num_sample_per_step``-point compensator; ``−Σ log p(τ_i) + log p(k_i)`` for IntensityFree), in the
    mean-scaled space, divided by the number of predicted events (``reduction="mean"``).

    Args:
        config: :class:`EasyTPPConfig`.

    Raises:
        ImportError: ``easy_tpp`` is not installed (the message names the extra).

    Note:
        Randomness: EasyTPP's thinning sampler and IntensityFree's mixture draw from torch's global generator; they
        run inside ``torch.random.fork_rng`` seeded from the ``generator`` passed to :meth:`sample`, so the samples
        are reproducible and the caller's global RNG state is left as it was.
    """

    space: ClassVar[str] = "mean"
    """the normalised gap space (``u = τ / mean``; read by the trainer)."""
    time_scale: Tensor
    """buffer: the divisor of times and gaps (the mean train gap, set by :meth:`prepare`; 1 before)."""
    log_gap_stats: Tensor
    """buffer: mean and std of ``log max(u, 1e-5)`` on the train gaps (IntensityFree's normalisation)."""

    def __init__(self, config: EasyTPPConfig) -> None:
        super().__init__()
        model_mod, config_mod = _easy_tpp("model"), _easy_tpp("config_factory")
        self.config = c = config
        K = c.num_types
        thinning = {"num_sample": 1, "num_exp": c.num_exp, "over_sample_rate": c.over_sample_rate,
                    "num_samples_boundary": c.num_samples_boundary, "dtime_max": c.dtime_max}  # fmt: skip
        mc = config_mod.ModelConfig(
            model_id=c.model_id, hidden_size=c.hidden_size, time_emb_size=c.time_emb_size, num_layers=c.num_layers,
            num_heads=c.num_heads, dropout_rate=c.dropout, use_ln=c.use_ln, num_event_types=K,
            num_event_types_pad=K + 1, event_pad_index=K, thinning=thinning, gpu=-1,
            loss_integral_num_sample_per_step=c.loss_integral_num_sample_per_step,
            model_specs={"num_mix_components": c.num_mix_components},
        )  # fmt: skip
        if c.model_id == "IntensityFree":  # EasyTPP reads these with Config.get, which fails when they are unset
            mc.set("mean_log_inter_time", 0.0)
            mc.set("std_log_inter_time", 1.0)
        self.net: Any = model_mod.TorchBaseModel.generate_model_from_config(mc)
        self.register_buffer("time_scale", torch.tensor(1.0, dtype=torch.float64))
        self.register_buffer("log_gap_stats", torch.tensor([0.0, 1.0], dtype=torch.float64))
        self.sampler_method: str = c.sampler
        """``"thinning"`` or ``"inverse-cdf"`` (THP/SAHP/NHP); may be switched after training."""
        self.thinning_stats: dict[str, int] = {"samples": 0, "at_dtime_max": 0}
        """thinning draws at real targets so far, and how many fell back to ``dtime_max`` (all proposals rejected)."""

    # --- data statistics ---------------------------------------------------------------------------------------------
    def prepare(self, train: EventDataset, normalizer: TimeNormalizer) -> None:
        """Set the time scale (the normaliser's mean gap) and IntensityFree's log-gap statistics from ``train``.

        Raises:
            ValueError: the normaliser is not in ``mean`` mode.
        """
        if normalizer.mode != "mean":
            raise ValueError(f"EasyTPP anchors use a mean-mode normaliser (space 'mean'), got {normalizer.mode!r}")
        scale = float(normalizer.mean)
        log_u = np.log(np.clip(np.asarray(train.all_gaps(), dtype=np.float64) / scale, 1e-5, None))
        with torch.no_grad():
            self.time_scale.fill_(scale)
            self.log_gap_stats.copy_(torch.tensor([log_u.mean(), log_u.std()], dtype=torch.float64))

    def _sync(self) -> None:
        """Push the device and the data statistics into the EasyTPP module (it keeps them as plain attributes)."""
        device = self.time_scale.device
        self.net.device = device
        if self.net.event_sampler is not None:
            self.net.event_sampler.device = device
        if self.config.model_id == "IntensityFree":
            self.net.mean_log_inter_time = float(self.log_gap_stats[0])
            self.net.std_log_inter_time = float(self.log_gap_stats[1])

    def inputs(self, types: Tensor, times: Tensor, mask: Tensor, gaps: Tensor | None = None) -> dict[str, Tensor]:
        """:func:`to_easytpp_batch` with this model's ``K`` and time scale."""
        return to_easytpp_batch(types, times, mask, self.config.num_types, float(self.time_scale), gaps)

    # --- likelihood ---------------------------------------------------------------------------------------------------
    def loss(self, types: Tensor, times: Tensor, mask: Tensor, u_next: Tensor,
             generator: torch.Generator | None = None) -> LossOut:  # fmt: skip
        """EasyTPP's negative log-likelihood of a batch, per predicted event (or summed).

        Args:
            types, times, mask: the padded batch ``(B, L)`` (times in data units; divided by ``time_scale`` here).
            u_next: ``(B, L−1)`` mean-scaled gaps ``τ / mean`` of events ``1..L−1`` (any value at padding).
            generator: unused (the loss is deterministic); kept for the common interface.

        Returns:
            :class:`~smurf_thp.smurf.LossOut`; ``time`` and ``type`` are NaN (EasyTPP's losses do not split).

        Raises:
            ValueError: a shape mismatch, a negative or non-finite ``u`` at a real event, or a non-finite loss.
        """
        B, L = types.shape
        if u_next.shape != (B, L - 1):
            raise ValueError(f"u_next must have shape ({B}, {L - 1}), got {tuple(u_next.shape)}")
        valid = mask[:, 1:].bool()
        u = torch.where(valid, u_next, torch.ones_like(u_next))
        if not bool(torch.isfinite(u).all()) or bool((u < 0).any()):
            raise ValueError("u_next must be finite and >= 0 at real events: EasyTPP anchors work in the mean-scaled "
                             "space u = τ / mean (space = 'mean'), not the log space")  # fmt: skip
        self._sync()
        nll, _ = self.net.loglike_loss(**self.inputs(types, times, mask, u))
        n = int(valid.sum())
        total = nll / max(n, 1) if self.config.reduction == "mean" else nll
        if not torch.isfinite(total):
            raise ValueError("the loss is not finite: lower the learning rate")
        nan = torch.full((), math.nan)
        return LossOut(total, nan, nan, n)

    # --- sampling -----------------------------------------------------------------------------------------------------
    def _width(self, S: int) -> int:
        """Numbers held per (event, sample) by the sampler's largest intermediate (sizes the sequence groups)."""
        c = self.config
        if c.model_id == "IntensityFree":
            return S + c.num_types
        if self.sampler_method == "thinning":
            return S * c.num_exp
        return c.grid_points * max(c.hidden_size, c.num_types) + S * c.num_types

    def _intensity_free(self, dts: Tensor, ks: Tensor) -> tuple[Any, Tensor]:
        """IntensityFree's next-gap distribution (EasyTPP's ``LogNormalMixtureDistribution``, built from the model's
        output layer as its ``loglike_loss`` does) and its type probabilities ``(b, l, K)`` renormalised over the
        ``K`` real types."""
        mod = _easy_tpp("model.intensity_free")
        context = self.net.forward(dts, ks)
        M = self.net.num_mix_components
        locs, log_scales, weights = torch.split(self.net.linear(context), M, dim=-1)
        dist = mod.LogNormalMixtureDistribution(
            locs=locs, log_scales=mod.clamp_preserve_gradients(log_scales, -5.0, 3.0),
            log_weights=torch.log_softmax(weights, dim=-1), mean_log_inter_time=self.net.mean_log_inter_time,
            std_log_inter_time=self.net.std_log_inter_time,
        )  # fmt: skip
        probs = torch.softmax(self.net.mark_linear(context), dim=-1)[..., : self.config.num_types]
        return dist, probs / probs.sum(-1, keepdim=True)

    def _draw(
        self, ts: Tensor, dts: Tensor, ks: Tensor, S: int, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """``(τ (b, l, S), p(k | τ) (b, l, S, K))`` for one group of sequences (inputs already sliced to ``[:, :-1]``)."""
        c, net = self.config, self.net
        if c.model_id == "IntensityFree":
            dist, probs = self._intensity_free(dts, ks)
            tau = dist.sample((S,)).permute(1, 2, 0)  # (S, b, l) -> (b, l, S)
            return tau, probs.unsqueeze(2).expand(-1, -1, S, -1)
        if self.sampler_method == "thinning":
            sampler = _easy_tpp("model").EventSampler(
                num_sample=S, num_exp=c.num_exp, over_sample_rate=c.over_sample_rate,
                num_samples_boundary=c.num_samples_boundary, dtime_max=c.dtime_max, patience_counter=5,
                device=ts.device,
            )  # fmt: skip
            boundary = torch.maximum(dts * c.dtime_max, dts + c.dtime_max)  # as EasyTPP's one-step predictor (unused)
            tau, _ = sampler.draw_next_time_one_step(ts, dts, ks, boundary, net.compute_intensities_at_sample_times,
                                                     compute_last_step_only=False)  # fmt: skip
        else:
            grid = quadratic_grid(c.grid_upper, c.grid_points, ts.dtype, ts.device)
            lam = net.compute_intensities_at_sample_times(ts, dts, ks, grid.expand(*ts.shape, -1)).sum(-1)  # (b, l, G)
            tau = inverse_cdf_sample(lambda _grid: lam, grid, S, generator)
        lam_k = net.compute_intensities_at_sample_times(ts, dts, ks, tau)  # (b, l, S, K)
        return tau, lam_k / lam_k.sum(-1, keepdim=True).clamp_min(1e-30)

    @torch.no_grad()
    def sample(self, types: Tensor, times: Tensor, mask: Tensor, sampler: SamplerConfig,
               init: tuple[float, float] | None = None, generator: torch.Generator | None = None) -> Samples:  # fmt: skip
        """Samples of every next gap (mean-scaled space) and their types.

        Args:
            types, times, mask: the padded batch ``(B, L)``.
            sampler: only ``n_samples`` is used.
            init: ignored (the common interface's Langevin start).
            generator: seeds EasyTPP's draws (in a forked global RNG) and draws the types and inverse-CDF samples.

        Returns:
            :class:`~smurf_thp.smurf.Samples` with ``tau``/``types`` ``(B, L−1, S)`` and ``type_probs`` ``(B, L−1, K)``;
            zeros at positions without history (``mask[:, :-1]`` False).
        """
        B, L = types.shape
        S, K = sampler.n_samples, self.config.num_types
        device = self.time_scale.device
        tau = torch.zeros(B, max(L - 1, 0), S, device=device)
        drawn = torch.zeros(B, max(L - 1, 0), S, dtype=torch.long, device=device)
        probs = torch.zeros(B, max(L - 1, 0), K, device=device)
        if L < 2:
            return Samples(tau, drawn, probs)
        self._sync()
        self.eval()
        full = {k: v[:, :-1] for k, v in self.inputs(types, times, mask).items() if k != "attention_mask"}
        gen_device = generator.device if generator is not None else torch.device("cpu")
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=gen_device))
        step = max(1, _CHUNK_ELEMENTS // ((L - 1) * self._width(S)))
        forked = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=forked):
            torch.manual_seed(seed)
            for i in range(0, B, step):
                rows = slice(i, i + step)
                t_c, p_c = self._draw(full["time_seqs"][rows], full["time_delta_seqs"][rows], full["type_seqs"][rows],
                                      S, generator)  # fmt: skip
                tau[rows] = t_c.float()
                probs[rows] = p_c.mean(2).float()
                drawn[rows] = categorical(p_c.reshape(-1, K).float(), generator).reshape(t_c.shape)
        hist = mask[:, :-1].bool()
        tau[~hist], drawn[~hist], probs[~hist] = 0.0, 0, 0.0
        if self.config.model_id != "IntensityFree" and self.sampler_method == "thinning":
            target = tau[mask[:, 1:].bool()]
            censored = int((target == self.config.dtime_max).sum())
            self.thinning_stats["samples"] += target.numel()
            self.thinning_stats["at_dtime_max"] += censored
            if censored:
                logger.info("%d of %d thinning draws rejected every proposal and returned dtime_max (%g mean gaps); "
                            "raise num_exp", censored, target.numel(), self.config.dtime_max)  # fmt: skip
        return Samples(tau, drawn, probs)
