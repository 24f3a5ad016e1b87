"""Segment reward model ``r_φ``: a per-step MLP summed over the steps of a segment.

The paper's control reward model is a 2×64 MLP on ``(s, a)`` (App. B; the official
``networks.RewardModel``), applied to single transitions; over a segment ``z = (x_1, …, x_T)``
the score is ``r_φ(z) = Σ_t r_φ(x_t)``, the quantity compared in the Bradley-Terry and AdaPref
losses (``d_i = r_φ(z_w,i) − r_φ(z_l,i)``). Concatenate states and actions into ``x_t`` beforehand.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["SegmentRewardModel"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU}


def _autocast_on(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (torch < 2.4 takes no argument and has a CPU variant)."""
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:
        return bool(torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled())


class SegmentRewardModel(nn.Module):
    """Per-step MLP reward ``r_φ(x_t)``, summed over a segment's (unmasked) steps.

    Args:
        obs_dim: features per step ``D ≥ 1``: the state's, or all of them (state and action
            concatenated) with ``act_dim = 0``.
        act_dim: action features ``≥ 0`` that follow the state's in each step, so a step is
            ``x_t = [s_t, a_t]`` of width ``obs_dim + act_dim`` (as ``collect_segments`` writes it:
            ``SegmentRewardModel(pool.obs_dim, pool.act_dim)``). Pass ``hidden`` by keyword.
        hidden: hidden layer widths, each ``≥ 1``; ``(64, 64)`` is the paper's control RM, ``()``
            gives a linear model ``r_φ(x) = x·w + b``.
        activation: ``"relu"`` (the official code's), ``"tanh"``, ``"gelu"`` or ``"silu"``.
        generator: if given, the source of the initial weights, drawn as torch's default
            ``nn.Linear`` init ``U(−1/sqrt(fan_in), 1/sqrt(fan_in))``; if None, torch's default
            init (from the global generator) is kept.

    Raises:
        ValueError: naming ``obs_dim``, ``act_dim``, ``hidden`` or ``activation`` when invalid.

    Example:
        >>> model = SegmentRewardModel(8, generator=torch.Generator().manual_seed(0))
        >>> model(torch.zeros(4, 10, 8)).shape, model.step_rewards(torch.zeros(4, 10, 8)).shape
        (torch.Size([4]), torch.Size([4, 10]))
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int = 0,
        hidden: tuple[int, ...] = (64, 64),
        activation: str = "relu",
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if isinstance(obs_dim, bool) or not isinstance(obs_dim, int) or obs_dim < 1:
            raise ValueError(f"obs_dim must be an int >= 1, got {obs_dim!r}")
        if isinstance(act_dim, bool) or not isinstance(act_dim, int) or act_dim < 0:
            given: object = act_dim  # a tuple here is hidden, passed where act_dim now sits
            hint = " (hidden comes third: pass it by keyword, hidden=...)" if isinstance(given, (tuple, list)) else ""
            raise ValueError(f"act_dim must be an int >= 0, got {act_dim!r}{hint}")
        hidden = tuple(hidden)
        if not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden):
            raise ValueError(f"hidden must be a tuple of ints >= 1, got {hidden!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.in_dim = obs_dim + act_dim
        self.hidden = hidden
        self.activation = activation
        layers: list[nn.Module] = []
        width = self.in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), _ACTIVATIONS[activation]()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        if generator is not None:
            self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Redraw every weight and bias from ``U(−1/sqrt(fan_in), 1/sqrt(fan_in))`` (torch's ``nn.Linear`` default)."""
        for module in self.net:
            if isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.in_features)
                module.weight.uniform_(-bound, bound, generator=generator)
                module.bias.uniform_(-bound, bound, generator=generator)

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != self.in_dim:
            shown = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            width = (
                f"obs_dim={self.obs_dim}"
                if self.act_dim == 0
                else f"obs_dim + act_dim = {self.obs_dim} + {self.act_dim} = {self.in_dim}"
            )
            raise ValueError(f"x must have shape (B, T, {width}), got {shown}")
        weight = next(self.parameters())
        if x.dtype != weight.dtype and not _autocast_on(x.device.type):  # (autocast casts both)
            # torch would say "mat1 and mat2 must have the same dtype"
            raise ValueError(
                f"x must have the model's dtype {weight.dtype}, got {x.dtype} (convert with x.to({weight.dtype}))"
            )

    def step_rewards(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step rewards ``r_φ(x_t)``.

        Args:
            x: ``(B, T, obs_dim + act_dim)`` floating tensor.

        Returns:
            ``(B, T)`` tensor.

        Raises:
            ValueError: if ``x`` is not ``(B, T, obs_dim + act_dim)``.
        """
        self._check(x)
        out: torch.Tensor = self.net(x)  # (B, T, 1)
        return out.squeeze(-1)  # (B, T)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Segment scores ``r_φ(z) = Σ_t mask_t · r_φ(x_t)``.

        Args:
            x: ``(B, T, obs_dim + act_dim)`` floating tensor.
            mask: optional ``(B, T)`` bool tensor, True on the steps to count (padding is False).

        Returns:
            ``(B,)`` tensor.

        Raises:
            ValueError: if ``x`` is not ``(B, T, obs_dim + act_dim)`` or ``mask`` is not a ``(B, T)`` bool tensor.
        """
        steps = self.step_rewards(x)
        if mask is None:
            return steps.sum(dim=-1)
        if not isinstance(mask, torch.Tensor) or mask.shape != steps.shape or mask.dtype != torch.bool:
            shown = f"{tuple(mask.shape)} {mask.dtype}" if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"mask must be a bool tensor of shape (B, T)={tuple(steps.shape)}, got {shown}")
        return torch.where(mask, steps, torch.zeros_like(steps)).sum(dim=-1)

    def extra_repr(self) -> str:
        act = f", act_dim={self.act_dim}" if self.act_dim else ""
        return f"obs_dim={self.obs_dim}{act}, hidden={self.hidden}, activation={self.activation!r}"
