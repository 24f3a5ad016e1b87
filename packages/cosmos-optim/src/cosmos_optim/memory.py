"""Optimizer-state memory: measured from a live optimizer, and predicted from shapes in closed form.

Closed forms per matrix ``(m, n)`` (``r = min(rank, m, n)``), in numbers of state entries:

=============  ==========================================  =====================================
method         entries                                     what they are
=============  ==========================================  =====================================
``adamw``      ``2 mn``                                    first and second moment
``muon``       ``mn``                                      momentum
``soap``       ``2 mn + 2 (m^2 + n^2)``                    Adam moments, ``GG`` and ``Q`` factors
``soap-gg``    ``2 mn + m^2 + n^2``                        one set of factors (the paper's count)
``galore``     ``s r + 2 r l``                             projector and projected Adam moments
``cosmos``     ``mn + nr + r^2 + mr``                      ``M, U, S, V``
=============  ==========================================  =====================================

(``s = min(m, n)``, ``l = max(m, n)``.) SOAP factors a side only when it is at most
``max_precond_dim`` (10000, the reference default); a larger side keeps no factor. Every
non-matrix parameter (embeddings, head, norms, biases) costs ``2 numel`` (AdamW) for every method.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

METHODS: tuple[str, ...] = ("adamw", "muon", "soap", "soap-gg", "galore", "cosmos")
"""Methods :func:`predict` knows."""


@dataclass(frozen=True)
class ParamMemory:
    """Optimizer state held for one parameter."""

    group: int
    """Index of the param group."""
    index: int
    """Index of the parameter in its group."""
    name: str
    """The parameter's name when the optimizer was given named parameters, else ``""``."""
    shape: tuple[int, ...]
    """Shape of the parameter."""
    param_bytes: int
    """Bytes of the parameter itself."""
    state_bytes: int
    """Bytes of all tensors in its optimizer state."""
    by_kind: dict[str, int]
    """State key (``exp_avg``, ``U``...) -> bytes."""

    @property
    def bytes_per_param(self) -> float:
        """State bytes per parameter entry."""
        return self.state_bytes / max(1, math.prod(self.shape))


@dataclass(frozen=True)
class MemoryReport:
    """Optimizer-state bytes of a live optimizer, per parameter and in total."""

    per_param: list[ParamMemory] = field(default_factory=list)
    """One entry per parameter that holds state."""

    @property
    def total_bytes(self) -> int:
        """Bytes of every state tensor of the optimizer."""
        return sum(p.state_bytes for p in self.per_param)

    @property
    def param_bytes(self) -> int:
        """Bytes of the parameters that hold state."""
        return sum(p.param_bytes for p in self.per_param)

    @property
    def by_kind(self) -> dict[str, int]:
        """State key -> total bytes over all parameters."""
        out: dict[str, int] = {}
        for p in self.per_param:
            for key, value in p.by_kind.items():
                out[key] = out.get(key, 0) + value
        return out

    @property
    def bytes_per_param(self) -> float:
        """State bytes per parameter entry, over the parameters that hold state."""
        entries = sum(math.prod(p.shape) for p in self.per_param)
        return self.total_bytes / max(1, entries)

    def table(self) -> str:
        """A plain-text table: one row per parameter and a total."""
        rows = [("group", "param", "name", "shape", "state bytes", "bytes/param")]
        for p in self.per_param:
            shape = "x".join(map(str, p.shape))
            rows.append((str(p.group), str(p.index), p.name, shape, f"{p.state_bytes:,}", f"{p.bytes_per_param:.2f}"))
        rows.append(("total", "", "", "", f"{self.total_bytes:,}", f"{self.bytes_per_param:.2f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _tensor_bytes(value: Any) -> dict[str, int]:
    """Bytes of every tensor inside a state value (tensors, lists, tuples, dicts), by local size."""
    if isinstance(value, Tensor):
        local = value.to_local() if hasattr(value, "to_local") else value
        return {"": local.numel() * local.element_size()}
    if isinstance(value, (list, tuple)):
        return {"": sum(sum(_tensor_bytes(v).values()) for v in value)}
    if isinstance(value, dict):
        return {"": sum(sum(_tensor_bytes(v).values()) for v in value.values())}
    return {}


def memory_report(optimizer: torch.optim.Optimizer, *, include_scalars: bool = False) -> MemoryReport:
    """Measure the optimizer-state bytes of any ``torch.optim.Optimizer``, per parameter and in total.

    Every tensor in ``optimizer.state[p]`` counts (nested lists and dicts too, for optimizers that
    keep lists of factors). The step counters are scalars and left out unless ``include_scalars``.

    Args:
        optimizer: a live optimizer (state exists only after its first ``step``).
        include_scalars: also count 0-dimensional tensors such as ``step``.

    Returns:
        A :class:`MemoryReport`.

    Example:
        >>> import torch
        >>> w = torch.nn.Parameter(torch.zeros(3, 4))
        >>> opt = torch.optim.AdamW([w])
        >>> w.grad = torch.ones(3, 4)
        >>> opt.step()
        >>> memory_report(opt).total_bytes  # exp_avg + exp_avg_sq, 12 float32 each
        96
    """
    rows: list[ParamMemory] = []
    for gi, group in enumerate(optimizer.param_groups):
        names = group.get("param_names")
        for pi, p in enumerate(group["params"]):
            state = optimizer.state.get(p)
            if not state:
                continue
            kinds: dict[str, int] = {}
            for key, value in state.items():
                if isinstance(value, Tensor) and value.ndim == 0 and not include_scalars:
                    continue
                size = sum(_tensor_bytes(value).values())
                if size:
                    kinds[str(key)] = size
            local = p.to_local() if hasattr(p, "to_local") else p
            rows.append(
                ParamMemory(
                    group=gi,
                    index=pi,
                    name=names[pi] if names else "",
                    shape=tuple(p.shape),
                    param_bytes=local.numel() * local.element_size(),
                    state_bytes=sum(kinds.values()),
                    by_kind=kinds,
                )
            )
    return MemoryReport(rows)


def matrix_state_entries(m: int, n: int, method: str, *, rank: int = 64, max_precond_dim: int = 10000) -> int:
    """State entries ``method`` keeps for one ``(m, n)`` matrix (closed forms of the module docstring).

    Example:
        >>> matrix_state_entries(512, 512, "cosmos", rank=64)  # mn + nr + r^2 + mr
        331776
    """
    if m < 1 or n < 1:
        raise ValueError(f"matrix shape must be positive, got ({m}, {n})")
    if rank < 0:
        raise ValueError(f"rank must be >= 0, got {rank}")
    mn = m * n
    factors = sum(d * d for d in (m, n) if d <= max_precond_dim)
    if method == "adamw":
        return 2 * mn
    if method == "muon":
        return mn
    if method == "soap":
        return 2 * mn + 2 * factors
    if method == "soap-gg":
        return 2 * mn + factors
    if method == "galore":
        r = min(rank, m, n)
        return min(m, n) * r + 2 * r * max(m, n)
    if method == "cosmos":
        r = min(rank, m, n)
        return mn + n * r + r * r + m * r
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def predict(
    matrix_shapes: Iterable[Sequence[int]],
    method: str,
    *,
    rank: int = 64,
    adam_shapes: Iterable[Sequence[int]] = (),
    dtype_bytes: int = 4,
    max_precond_dim: int = 10000,
) -> int:
    """Predicted optimizer-state bytes: ``method`` on the hidden matrices, AdamW on ``adam_shapes``.

    Args:
        matrix_shapes: ``(m, n)`` of every hidden matrix (``nn.Linear`` layout).
        method: one of :data:`METHODS`.
        rank: ``r`` for ``cosmos`` and ``galore`` (clamped per matrix to ``min(m, n)``).
        adam_shapes: shapes of the parameters every method trains with AdamW (embeddings, head,
            norms, biases): ``2 numel`` entries each.
        dtype_bytes: bytes per state entry (4 for float32 state).
        max_precond_dim: SOAP's largest factored side.

    Returns:
        Bytes.

    Example:
        >>> d = 512
        >>> block = [(d, d)] * 4 + [(4 * d, d), (d, 4 * d)]  # q, k, v, o, fc, proj
        >>> round(predict(block, "cosmos", rank=64) / predict(block, "adamw"), 3)
        0.598
    """
    if dtype_bytes < 1:
        raise ValueError(f"dtype_bytes must be >= 1, got {dtype_bytes}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    entries = 0
    for shape in matrix_shapes:
        if len(shape) != 2:
            raise ValueError(f"matrix_shapes must hold (m, n) pairs, got {tuple(shape)}")
        entries += matrix_state_entries(
            int(shape[0]), int(shape[1]), method, rank=rank, max_precond_dim=max_precond_dim
        )
    entries += sum(2 * math.prod(int(s) for s in shape) for shape in adam_shapes)
    return entries * dtype_bytes


predict_memory = predict
"""Alias of :func:`predict` under the package's top-level name ``cosmos_optim.predict_memory``."""
