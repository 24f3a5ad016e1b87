"""SMURF-THP: the THP encoder with the intensity score head and the time-conditioned type head, its loss and sampler.

``loss`` implements the official objective (spec §1): for every predicted event (events ``1..L−1`` of a
sequence, each from the hidden state ``h_{j}`` of the events before it) ``M = num_noise`` noisy copies of the
normalised gap, the DSM time loss (or the Hyvärinen objective) and the label-smoothed type cross-entropy at the
noisy times, combined as ``loss_lambda · ℓ_time + ℓ_type`` and reduced per event by the mean (default) or the
official sum. ``sample`` runs Langevin for every event and sample at once with the encoder output fixed,
starting uniformly in ``[q05, q95]`` of the normalised training gaps, then the Tweedie step at the training σ,
and draws each sample's type from ``softmax(logits(· | τ_sample))``.

Everything here works in the caller's normalised gap space (see :mod:`smurf_thp.normalize`); the absolute
event times fed to the encoder are the data's own (as in the official ``log`` mode).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from smurf_thp.losses import dsm_loss, hyvarinen_loss, noisy_copies, type_ce
from smurf_thp.model import IntensityScoreHead, THPEncoder, TimeTypeHead
from smurf_thp.sampling import categorical, draw, langevin

__all__ = ["PRESETS", "SMURFTHP", "LossOut", "SMURFConfig", "SamplerConfig", "Samples"]


@dataclasses.dataclass(frozen=True)
class SMURFConfig:
    """Model and loss settings (defaults: the official ``main.py`` argparse defaults unless noted)."""

    num_types: int
    d_model: int = 64
    d_inner: int = 128
    n_layers: int = 4
    n_head: int = 4
    d_k: int = 16
    d_v: int = 16
    dropout: float = 0.1
    sigma: float = 0.1
    """DSM noise std ``σ`` in the normalised space (the official scripts use 0.1; the argparse default is 0.01)."""
    num_noise: int = 100
    """noisy copies per event ``M``."""
    loss_lambda: float = 1.0
    """weight of the time loss (official scripts: 5, or 3 for MIMIC)."""
    smoothing: float = 0.1
    """label smoothing of the type loss (official scripts: 0.1, 0 for StackOverflow)."""
    grad_mode: Literal["exact", "semi"] = "exact"
    """``exact``: the full DSM gradient; ``semi``: the official code's (``∂τ log λ`` detached)."""
    objective: Literal["dsm", "hyvarinen"] = "dsm"
    reduction: Literal["mean", "sum"] = "mean"
    """per-event mean (ours, decouples the learning rate from batch size) or the official sum."""
    normalize: Literal["log", "mean", "none"] = "log"
    """the gap space the trainer fits on train and the model works in (:class:`smurf_thp.normalize.TimeNormalizer`):
    ``log`` (default; standardised log gaps, unbounded), ``mean`` (gaps over their train mean) or ``none`` (raw
    gaps); the official code offers the same three. The bounded spaces pair with a Langevin ``boundary`` at 0.
    SMURF-THP only: the MLE heads, which share this config, work in mean-scaled gaps whatever it says."""

    def __post_init__(self) -> None:
        for name in ("num_types", "d_model", "d_inner", "n_layers", "n_head", "d_k", "d_v", "num_noise"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("sigma", "loss_lambda"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {self.smoothing!r}")
        for name, options in (("grad_mode", ("exact", "semi")), ("objective", ("dsm", "hyvarinen")),
                              ("reduction", ("mean", "sum")), ("normalize", ("log", "mean", "none"))):  # fmt: skip
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {options}, got {getattr(self, name)!r}")


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """Langevin settings (official defaults: 100 samples, step 5e-2, 100 steps)."""

    n_samples: int = 100
    step: float = 5e-2
    n_steps: int = 100
    denoise: bool = True
    """the final Tweedie step at the training σ."""
    boundary: Literal["none", "reflect", "truncate"] = "none"
    lower: float = 0.0
    """the lower bound of the normalised space for ``boundary`` (raw or mean-scaled gaps: 0)."""

    def __post_init__(self) -> None:
        if isinstance(self.n_samples, bool) or not isinstance(self.n_samples, int) or self.n_samples < 2:
            raise ValueError(f"n_samples must be an integer >= 2, got {self.n_samples!r}")
        if not self.step > 0:
            raise ValueError(f"step must be > 0, got {self.step!r}")
        if isinstance(self.n_steps, bool) or not isinstance(self.n_steps, int) or self.n_steps < 0:
            raise ValueError(f"n_steps must be an integer >= 0, got {self.n_steps!r}")


PRESETS: dict[str, dict[str, object]] = {
    "cpu-small": {"d_model": 32, "d_inner": 64, "n_layers": 2, "n_head": 2, "d_k": 16, "d_v": 16, "sigma": 0.1,
                  "num_noise": 20, "loss_lambda": 5.0, "smoothing": 0.1},
    "so": {"d_model": 64, "d_inner": 256, "n_layers": 4, "n_head": 4, "sigma": 0.1, "loss_lambda": 5.0,
           "smoothing": 0.0},
    "retweet": {"d_model": 64, "d_inner": 256, "n_layers": 3, "n_head": 3, "sigma": 0.1, "loss_lambda": 5.0},
    "mimic": {"d_model": 64, "d_inner": 256, "n_layers": 3, "n_head": 3, "sigma": 0.1, "loss_lambda": 3.0},
    "financial": {"d_model": 128, "d_inner": 2048, "n_layers": 6, "n_head": 6, "d_k": 64, "d_v": 64, "sigma": 0.01,
                  "loss_lambda": 5.0},
}  # fmt: skip
"""Model presets: ``cpu-small`` (spec §4) and the four paper datasets' scripts (spec §1 table)."""


class LossOut(NamedTuple):
    total: Tensor
    """the reduced loss to backpropagate."""
    time: Tensor
    """mean per-event time loss (detached)."""
    type: Tensor
    """mean per-event type loss (detached)."""
    n_events: int


class Samples(NamedTuple):
    tau: Tensor
    """``(B, L−1, S)`` sampled next gaps in the normalised space (position ``j`` predicts event ``j + 1``)."""
    types: Tensor
    """``(B, L−1, S)`` sampled types."""
    type_probs: Tensor
    """``(B, L−1, K)`` type probabilities averaged over the samples."""


class SMURFTHP(nn.Module):
    """The model. Inputs are padded batches: ``types (B, L)`` 0-based, ``times (B, L)`` absolute, ``mask (B, L)``.

    Example:
        >>> model = SMURFTHP(SMURFConfig(num_types=2, d_model=8, d_inner=16, n_layers=1, n_head=1, num_noise=4))
        >>> types = torch.tensor([[0, 1, 1]])
        >>> times = torch.tensor([[0.1, 0.5, 0.7]])
        >>> out = model.loss(types, times, types >= 0, torch.tensor([[0.4, 0.2]]).log())
        >>> out.n_events
        2
    """

    @property
    def space(self) -> str:
        """The gap space the trainer normalises to: ``config.normalize`` (the MLE baselines use ``"mean"``)."""
        return self.config.normalize

    def __init__(self, config: SMURFConfig) -> None:
        super().__init__()
        c = self.config = config
        self.encoder = THPEncoder(c.num_types, c.d_model, c.d_inner, c.n_layers, c.n_head, c.d_k, c.d_v, c.dropout)
        self.time_head = IntensityScoreHead(c.d_model)
        self.type_head = TimeTypeHead(c.d_model, c.num_types)

    def encode(self, types: Tensor, times: Tensor, mask: Tensor) -> Tensor:
        """``h_j`` for ``j = 0..L−2`` (each conditions event ``j + 1``): ``(B, L−1, d_model)``."""
        h: Tensor = self.encoder(types, times, mask)
        return h[:, :-1]

    def score(self, h: Tensor, u: Tensor) -> Tensor:
        """The score of the next gap at ``u (..., M)`` given ``h (..., d)``, in the configured gradient mode."""
        return self.time_head.score(h, u, semi=self.config.grad_mode == "semi")

    def loss(self, types: Tensor, times: Tensor, mask: Tensor, u_next: Tensor,
             generator: torch.Generator | None = None) -> LossOut:  # fmt: skip
        """The training loss of a batch.

        Args:
            types, times, mask: the padded batch ``(B, L)``.
            u_next: ``(B, L−1)`` normalised gaps of events ``1..L−1`` (any value where ``mask[:, 1:]`` is False).
            generator: for the noise.

        Raises:
            ValueError: shapes that do not match, or a non-finite loss (with a hint).
        """
        B, L = types.shape
        if u_next.shape != (B, L - 1):
            raise ValueError(f"u_next must have shape ({B}, {L - 1}), got {tuple(u_next.shape)}")
        c = self.config
        valid = mask[:, 1:]
        u = torch.where(valid, u_next, torch.zeros_like(u_next))
        h = self.encode(types, times, mask)
        tilde, eps = noisy_copies(u, c.sigma, c.num_noise, generator)
        if c.objective == "dsm":
            l_time = dsm_loss(lambda t: self.score(h, t), tilde, eps, c.sigma)
        else:
            l_time = hyvarinen_loss(lambda t: self.time_head.dscore_dtau(h, t), u)
        l_type = type_ce(self.type_head(h, tilde), types[:, 1:], c.smoothing)
        per_event = (c.loss_lambda * l_time + l_type) * valid
        n = int(valid.sum())
        total = per_event.sum() / max(n, 1) if c.reduction == "mean" else per_event.sum()
        if not torch.isfinite(total):
            raise ValueError("the loss is not finite: lower the learning rate or raise sigma")
        denom = max(n, 1)
        return LossOut(total, (l_time * valid).sum().detach() / denom, (l_type * valid).sum().detach() / denom, n)

    @torch.no_grad()
    def sample(self, types: Tensor, times: Tensor, mask: Tensor, sampler: SamplerConfig, init: tuple[float, float],
               generator: torch.Generator | None = None) -> Samples:  # fmt: skip
        """Langevin samples of every next gap (normalised space) and their types.

        Args:
            types, times, mask: the padded batch.
            sampler: the Langevin settings.
            init: ``(low, high)`` of the uniform start (the normalised train gaps' q05 and q95).
            generator: for the start, the noise and the type draws.
        """
        if sampler.boundary != "none" and self.space == "log":
            raise ValueError(f"boundary {sampler.boundary!r} needs a space with a lower bound; this model samples "
                             "standardised log gaps (unbounded): use boundary='none'")  # fmt: skip
        h = self.encode(types, times, mask)  # (B, L-1, d): fixed during the chains
        low, high = init
        shape = (*h.shape[:-1], sampler.n_samples)
        x0 = low + (high - low) * draw("uniform", shape, h, generator)
        tau, _ = langevin(lambda x: self.time_head.score(h, x), x0, sampler.step, sampler.n_steps,
                          denoise_sigma=self.config.sigma if sampler.denoise else None, boundary=sampler.boundary,
                          lower=sampler.lower, generator=generator)  # fmt: skip
        probs = torch.softmax(self.type_head(h, tau), dim=-1)  # (B, L-1, S, K)
        flat = probs.reshape(-1, probs.shape[-1])
        drawn = categorical(flat, generator).reshape(shape)
        return Samples(tau, drawn, probs.mean(dim=-2))
