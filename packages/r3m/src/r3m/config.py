"""Configuration of reward-model training: one frozen dataclass, validated on construction."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from r3m.functional import check_lam

LOSSES: tuple[str, ...] = ("r3m", "bt", "cbt", "rbt", "ipo", "hinge")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Reward-model training with R³M or a baseline (defaults: the spec's CPU setting, paper App. B grids)."""

    loss: str = "r3m"
    """``r3m`` (eqs. 3.4-3.5), ``bt`` Bradley-Terry, ``cbt`` conservative (label smoothing ``eps``),
    ``rbt`` unbiased/robust (``eps``), ``ipo``, ``hinge`` (scale ``beta``)."""
    lam: float = 0.5
    """per-sample λ ∈ (0, 1) (paper grid 0.1..0.9; 0.5 flags every misranked pair)."""
    eps: float = 0.1
    """label-noise rate assumed by ``cbt`` and ``rbt``, in [0, 0.5)."""
    beta: float = 1.0
    """scale of the ``ipo`` and ``hinge`` losses."""
    epochs: int = 5
    """maximum passes over the pairs (paper {1, 3, 5}; few epochs matter: an over-trained model memorises outliers)."""
    lr: float = 3e-3
    """Adam learning rate (the spec's CPU setting, between the paper's grid points {1e-2, 5e-3, 1e-3})."""
    batch_size: int = 64
    """pairs per minibatch (paper grid {8, 16, 64})."""
    weight_decay: float = 0.0
    """Adam weight decay."""
    hidden: tuple[int, ...] = (64, 64)
    """hidden widths of the per-step reward MLP (paper: 2×64)."""
    discount: float = 1.0
    """γ of the segment score Σ_t γ^t r(s_t, a_t) (eq. 3.1)."""
    early_stopping: str = "val_accuracy"
    """``val_accuracy``: keep the epoch with the best validation accuracy (needs validation data); ``none``."""
    patience: int = 2
    """epochs without improvement before stopping (with ``early_stopping``)."""
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
        check_lam(self.lam, stacklevel=4)  # at the user's TrainConfig(...), past the dataclass __init__
        if not 0.0 <= self.eps < 0.5:
            raise ValueError(f"eps must lie in [0, 0.5), got {self.eps!r}")
        for name in ("beta", "lr"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0.0 < self.discount <= 1.0:
            raise ValueError(f"discount must lie in (0, 1], got {self.discount!r}")
        for name in ("epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a tuple of positive integers, got {self.hidden!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not -(2**63) <= self.seed < 2**63:
            raise ValueError(f"seed must be a 64-bit integer (torch's generators take one), got {self.seed!r}")
        if self.early_stopping not in ("val_accuracy", "none"):
            raise ValueError(f"early_stopping must be 'val_accuracy' or 'none', got {self.early_stopping!r}")
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
