"""Configuration of reward-model training: one frozen dataclass, validated on construction."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from adapref.scaling import SOLVERS, check_scaling_args, warn_if_tau_max_ignored

LOSSES: tuple[str, ...] = ("ada", "ada-quad", "bt", "hinge", "ipo")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Reward-model training with the adaptive loss or a baseline (defaults: the paper's control setting)."""

    loss: str = "ada"
    """``ada`` (eq. 6), ``ada-quad`` (eq. 12), ``bt`` (Bradley-Terry at ``temperature``), ``hinge``, ``ipo``."""
    rho0: float = 0.1
    """KL radius ρ0 (paper App. B control grid {0.1, 0.3, 0.5}; README default 0.1)."""
    tau0: float = 0.1
    """lower bound τ0 (paper, README, class default)."""
    tau_max: float = 1.0
    """upper bound τ_max (README control default 1; paper grid {1, 3})."""
    solver: str = "exact"
    """``exact`` closed form (ours), ``newton`` safeguarded Algorithm 1, ``newton-official``."""
    n_iter: int = 3
    """Newton iterations K (paper control setting and README: 3)."""
    tau_init: float = 1.0
    """Newton starting point τ^(0) (paper and code: 1)."""
    clamp_tau_max: bool = False
    """``ada-quad`` only: also clamp τ at ``tau_max``, as the authors' DPO trainer does (the paper and their
    control code have no upper bound with the quadratic penalty; unclamped, a ``tau_max`` below log 2 / (2ρ0)
    is ignored, with a warning)."""
    temperature: float = 1.0
    """temperature T of the ``bt`` baseline (1 = standard BT; other values for the fixed-temperature sweep)."""
    beta: float = 1.0
    """scale β of the ``hinge`` and ``ipo`` baselines."""
    epochs: int = 5
    """passes over the training pairs (paper control grid {1, 3, 5})."""
    lr: float = 1e-3
    """Adam learning rate (paper control grid {5e-3, 1e-3, 5e-4, 1e-4})."""
    batch_size: int = 64
    """pairs per minibatch (paper: 64 for HalfCheetah and Ant)."""
    weight_decay: float = 0.0
    """Adam weight decay."""
    hidden: tuple[int, ...] = (64, 64)
    """hidden widths of the per-step reward MLP (paper: 2×64); ``()`` is a linear reward ``r(x) = x·w + b``."""
    seed: int = 0
    """seed of the model initialisation and minibatch order."""
    device: str = "cpu"
    """``cpu``, ``cuda`` or ``auto``."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            expected = {"float": (int, float), "int": (int,), "str": (str,)}.get(str(f.type))
            if expected is not None and (isinstance(value, bool) or not isinstance(value, expected)):
                raise ValueError(f"{f.name} must be of type {f.type}, got {type(value).__name__} {value!r}")
        if not isinstance(self.hidden, tuple):
            raise ValueError(f"hidden must be a tuple of positive integers, got {self.hidden!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not isinstance(self.clamp_tau_max, bool):
            raise ValueError(f"clamp_tau_max must be true or false, got {self.clamp_tau_max!r}")
        if self.clamp_tau_max and self.loss != "ada-quad":
            raise ValueError(f"clamp_tau_max applies to loss 'ada-quad' only, got loss {self.loss!r}")
        if self.loss.startswith("ada"):
            check_scaling_args(self.rho0, self.tau0, self.tau_max, self.solver, self.n_iter, self.tau_init,
                               self.loss == "ada-quad", stacklevel=4)  # at the user's TrainConfig(...)  # fmt: skip
            warn_if_tau_max_ignored(self.tau_max, self.rho0, self.loss == "ada-quad", self.clamp_tau_max, stacklevel=4)
        elif self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        for name in ("temperature", "beta", "lr"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a tuple of positive integers, got {self.hidden!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not -(2**63) <= self.seed < 2**63:
            raise ValueError(f"seed must be a 64-bit integer (torch's generators take one), got {self.seed!r}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"unknown TrainConfig key(s) {unknown}; known: {sorted(fields)}")
        values = dict(data)
        if isinstance(values.get("hidden"), list):
            values["hidden"] = tuple(values["hidden"])
        return cls(**values)
