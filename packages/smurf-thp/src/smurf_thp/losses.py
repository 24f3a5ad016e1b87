r"""Training objectives of SMURF-THP: denoising score matching, the Hyvärinen objective and the type loss.

Denoising score matching (the official ``get_obj_denoise``) with ``M`` noisy copies
``τ̃ = τ + σ ε``, ``ε ~ N(0, 1)`` of every observed gap:

.. math::
    \ell_{\text{time}} = \frac{1}{M}\sum_{m} \tfrac12 \sigma^2 \Big(s(\tilde\tau_m) - \frac{\tau - \tilde\tau_m}{\sigma^2}\Big)^2
    = \frac{1}{M}\sum_m \tfrac12 \big(\sigma s(\tilde\tau_m) + \varepsilon_m\big)^2,

whose minimiser is the score of the noised law ``p_σ = p * N(0, σ²)`` (Vincent 2011). The Hyvärinen objective
``∂τ s(τ) + ½ s(τ)²`` on the clean gaps is the exact alternative. The type loss is the label-smoothed cross-entropy
of ``logits(k | τ̃)`` at the noisy times, averaged over the copies (types are trained at noisy times).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["dsm_loss", "hyvarinen_loss", "noisy_copies", "type_ce"]


def noisy_copies(
    tau: Tensor, sigma: float, num_noise: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``(τ̃, ε)`` with ``τ̃ = τ[..., None] + σ ε``, shapes ``(..., M)``.

    Raises:
        ValueError: ``sigma <= 0`` or ``num_noise < 1``.

    Example:
        >>> tilde, eps = noisy_copies(torch.zeros(2), 0.5, 3, torch.Generator().manual_seed(0))
        >>> tilde.shape, bool(torch.allclose(tilde, 0.5 * eps))
        (torch.Size([2, 3]), True)
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    if isinstance(num_noise, bool) or not isinstance(num_noise, int) or num_noise < 1:
        raise ValueError(f"num_noise must be an integer >= 1, got {num_noise!r}")
    from smurf_thp.sampling import draw

    eps = draw("normal", (*tau.shape, num_noise), tau, generator)
    return tau.unsqueeze(-1) + sigma * eps, eps


def dsm_loss(score_fn: Callable[[Tensor], Tensor], tilde: Tensor, eps: Tensor, sigma: float) -> Tensor:
    """Per-event DSM loss ``mean_m ½(σ s(τ̃_m) + ε_m)²``, shape ``(...)`` from ``τ̃, ε (..., M)``.

    Args:
        score_fn: ``τ̃ (..., M) -> s(τ̃) (..., M)`` (closes over the hidden states; its gradient mode — exact or the
            official semi-gradient — is the score function's business).
        tilde, eps: from :func:`noisy_copies`.
        sigma: the noise level ``σ``.

    Example:
        >>> # the score of N(0, 1 + σ²) (the noised standard normal) makes E[loss] minimal
        >>> g = torch.Generator().manual_seed(0)
        >>> sigma = 0.5
        >>> x = torch.randn(20000, generator=g)
        >>> tilde, eps = noisy_copies(x, sigma, 4, g)
        >>> good = dsm_loss(lambda t: -t / (1 + sigma**2), tilde, eps, sigma).mean()
        >>> bad = dsm_loss(lambda t: -t / 1.0, tilde, eps, sigma).mean()
        >>> bool(good < bad)
        True
    """
    s = score_fn(tilde)
    return (0.5 * (sigma * s + eps) ** 2).mean(dim=-1)


def hyvarinen_loss(score_and_derivative: Callable[[Tensor], tuple[Tensor, Tensor]], tau: Tensor) -> Tensor:
    """Per-event Hyvärinen objective ``∂τ s(τ) + ½ s(τ)²`` on the clean gaps ``τ (...)``.

    Args:
        score_and_derivative: ``τ (..., 1) -> (s, ∂τ s)`` with a graph to the parameters
            (:meth:`~smurf_thp.model.IntensityScoreHead.dscore_dtau`).
        tau: the gaps.
    """
    s, ds = score_and_derivative(tau.unsqueeze(-1))
    return (ds + 0.5 * s * s).squeeze(-1)


def type_ce(logits: Tensor, target: Tensor, smoothing: float = 0.0) -> Tensor:
    """Label-smoothed cross-entropy averaged over the noisy copies: ``logits (..., M, K)``, ``target (...)`` -> ``(...)``.

    With smoothing ``ε``, the target distribution is ``(1 − ε) one_hot + ε / K``.

    Raises:
        ValueError: ``smoothing`` outside ``[0, 1)``.

    Example:
        >>> logits = torch.zeros(1, 2, 4)  # uniform over K = 4 types
        >>> round(float(type_ce(logits, torch.tensor([1]))), 4)  # log 4
        1.3863
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    K = logits.shape[-1]
    logp = F.log_softmax(logits, dim=-1)
    onehot = F.one_hot(target.clamp_min(0), K).to(logp.dtype).unsqueeze(-2)  # (..., 1, K)
    q = (1.0 - smoothing) * onehot + smoothing / K
    return -(q * logp).sum(-1).mean(-1)
