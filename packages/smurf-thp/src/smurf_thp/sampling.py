r"""Samplers: unadjusted Langevin dynamics with the final Tweedie step, and exact inverse-CDF sampling.

Langevin (the official ``predict_langevin_smurf``), batched over every event and sample, the encoder output fixed:

.. math::
    x^{m+1} = x^m + \tfrac{\epsilon}{2} s(x^m) + \sqrt{\epsilon}\, z^m, \quad z^m \sim N(0, 1), \qquad
    \text{then}\quad x \leftarrow x + \sigma^2 s(x)

— the last step is Tweedie's formula ``E[x | x̃] = x̃ + σ² ∇ log p_σ(x̃)`` with the *training* σ, since a DSM-trained
score is that of the noised law. Boundary handling for a space with a lower bound (raw gaps ``τ ≥ 0``): ``reflect``
maps ``x < L`` to ``2L − x``; ``truncate`` rejects a move below ``L`` (the official ``truncated`` variant).

Inverse CDF (for intensity-based models, e.g. the MLE baselines): ``Λ(τ) = ∫_0^τ λ`` by the trapezoid rule on a grid,
``τ = Λ^{-1}(E)`` with ``E ~ Exp(1)``, linear interpolation, and the last grid intensity held constant beyond the grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

__all__ = ["categorical", "draw", "inverse_cdf_sample", "langevin"]


def _device_of(generator: torch.Generator | None, like: Tensor) -> torch.device:
    return generator.device if generator is not None else like.device


def draw(kind: Literal["normal", "uniform", "exponential"], shape: tuple[int, ...], like: Tensor,
         generator: torch.Generator | None = None) -> Tensor:  # fmt: skip
    """Random numbers of ``like``'s dtype and device, drawn on the generator's device.

    A CPU generator then gives the same numbers for a model on the CPU or on CUDA (and works at all: torch
    refuses a CPU generator for a CUDA tensor). ``exponential`` is Exp(1).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> draw("normal", (2,), torch.zeros(1, dtype=torch.float64), g).dtype
        torch.float64
    """
    device = _device_of(generator, like)
    if kind == "normal":
        out = torch.randn(shape, generator=generator, dtype=like.dtype, device=device)
    elif kind == "uniform":
        out = torch.rand(shape, generator=generator, dtype=like.dtype, device=device)
    else:
        out = torch.empty(shape, dtype=like.dtype, device=device).exponential_(generator=generator)
    return out.to(like.device)


def categorical(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One draw per row of ``probs (N, K)`` (on the generator's device), shape ``(N,)``."""
    device = _device_of(generator, probs)
    return torch.multinomial(probs.to(device), 1, generator=generator).squeeze(-1).to(probs.device)


def langevin(
    score_fn: Callable[[Tensor], Tensor],
    x0: Tensor,
    step: float,
    n_steps: int,
    *,
    denoise_sigma: float | None = None,
    boundary: Literal["none", "reflect", "truncate"] = "none",
    lower: float = 0.0,
    generator: torch.Generator | None = None,
    record_every: int | None = None,
) -> tuple[Tensor, list[Tensor]]:
    """Run ``n_steps`` of unadjusted Langevin from ``x0`` (any shape), then the optional Tweedie step.

    Args:
        score_fn: ``x -> s(x)``, same shape.
        x0: starting points.
        step: ``ε > 0``.
        n_steps: ``>= 0``.
        denoise_sigma: the training σ for the final ``x + σ² s(x)`` (None: no denoising).
        boundary: ``none``, ``reflect`` or ``truncate`` at ``lower``.
        lower: the lower bound of the space for ``boundary``.
        generator: for the noise.
        record_every: also return the (denoised) state every that many steps (to pick the step count on dev).

    Returns:
        ``(x, records)``; ``records`` is empty unless ``record_every`` is given.

    Raises:
        ValueError: bad arguments, or non-finite samples (with a hint to lower the step).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, _ = langevin(lambda x: -x, torch.zeros(20000), 0.05, 400, generator=g)  # N(0, 1)
        >>> round(float(x.std()), 1)
        1.0
    """
    if not (isinstance(step, (int, float)) and step > 0 and math.isfinite(step)):
        raise ValueError(f"step must be a finite number > 0, got {step!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(f"n_steps must be an integer >= 0, got {n_steps!r}")
    if boundary not in ("none", "reflect", "truncate"):
        raise ValueError(f"boundary must be 'none', 'reflect' or 'truncate', got {boundary!r}")
    if denoise_sigma is not None and not denoise_sigma > 0:
        raise ValueError(f"denoise_sigma must be None or > 0, got {denoise_sigma!r}")
    if record_every is not None and (
        isinstance(record_every, bool) or not isinstance(record_every, int) or record_every < 1
    ):
        raise ValueError(f"record_every must be None or an integer >= 1, got {record_every!r}")
    x = x0.detach().clone()
    records: list[Tensor] = []
    root = math.sqrt(step)

    def finish(v: Tensor) -> Tensor:
        if denoise_sigma is None:
            return v
        out = v + denoise_sigma**2 * score_fn(v)
        if boundary == "reflect":
            out = torch.where(out < lower, 2 * lower - out, out)
        elif boundary == "truncate":
            out = torch.where(out < lower, v, out)
        return out

    with torch.no_grad():
        for m in range(1, n_steps + 1):
            z = draw("normal", tuple(x.shape), x, generator)
            proposal = x + 0.5 * step * score_fn(x) + root * z
            if boundary == "reflect":
                proposal = torch.where(proposal < lower, 2 * lower - proposal, proposal)
            elif boundary == "truncate":
                proposal = torch.where(proposal < lower, x, proposal)
            x = proposal
            if record_every is not None and m % record_every == 0:
                records.append(finish(x).clone())
        x = finish(x)
    if not torch.isfinite(x).all():
        raise ValueError(f"Langevin produced non-finite samples (step {step:g}): lower the step size")
    return x, records


def inverse_cdf_sample(
    intensity_fn: Callable[[Tensor], Tensor], grid: Tensor, n: int, generator: torch.Generator | None = None
) -> Tensor:
    """Exact samples of the next gap of intensity-based models, by inverting ``Λ(τ) = ∫_0^τ λ``.

    Args:
        intensity_fn: ``τ (..., G) -> λ(τ) (..., G)`` on the grid (``...`` = the events).
        grid: ``(G,)`` increasing, starting at 0.
        n: samples per event (>= 1).
        generator: for the ``Exp(1)`` draws.

    Returns:
        ``(..., n)`` samples.

    Example:
        >>> grid = torch.linspace(0, 10, 2001)
        >>> x = inverse_cdf_sample(lambda t: torch.full_like(t, 2.0), grid, 200000, torch.Generator().manual_seed(0))
        >>> round(float(x.mean()), 2)  # Exp(2) has mean 1/2
        0.5
    """
    if grid.ndim != 1 or grid.numel() < 2 or float(grid[0]) != 0.0 or not bool((grid[1:] > grid[:-1]).all()):
        raise ValueError("grid must be a 1-D increasing tensor starting at 0 with at least 2 points")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    with torch.no_grad():
        lam = intensity_fn(grid)  # (..., G)
        dt = grid[1:] - grid[:-1]
        Lam = torch.cat(
            [torch.zeros_like(lam[..., :1]), torch.cumsum(0.5 * (lam[..., 1:] + lam[..., :-1]) * dt, -1)], -1
        )
        E = draw("exponential", (*lam.shape[:-1], n), lam, generator)
        idx = torch.searchsorted(Lam.contiguous(), E.contiguous()).clamp(1, grid.numel() - 1)  # Λ[idx-1] < E <= Λ[idx]
        lo, hi = Lam.gather(-1, idx - 1), Lam.gather(-1, idx)
        t_lo, t_hi = grid[idx - 1], grid[idx]
        inside = t_lo + (E - lo) / (hi - lo).clamp_min(1e-30) * (t_hi - t_lo)
        beyond = grid[-1] + (E - Lam[..., -1:]) / lam[..., -1:].clamp_min(1e-30)
        return torch.where(Lam[..., -1:] < E, beyond, inside)
