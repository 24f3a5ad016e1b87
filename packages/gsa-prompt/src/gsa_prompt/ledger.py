"""Token and cost accounting per run: every call, its usage and price, cached calls counted apart.

With ``n`` samples in one request the prompt is billed once, with ``n`` requests ``n`` times (spec §7,
pitfall 5), so the ledger adds what the server reports per request. A server that reports no usage gets
an estimate of one token per 4 characters, flagged ``estimated``. Calls served from the cache cost
nothing and are counted in ``cached_calls``.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from typing import Any

__all__ = ["Ledger", "Price", "Usage", "estimate_tokens"]


def estimate_tokens(text: str) -> int:
    """A rough token count, ``ceil(len(text) / 4)`` (used only when a server reports no usage).

    Example:
        >>> estimate_tokens("What is 2 + 2?")
        4
    """
    return math.ceil(len(text) / 4)


@dataclasses.dataclass(frozen=True)
class Price:
    """Dollars per million tokens (0 for a local server)."""

    input_per_mtok: float = 0.0
    """price of prompt tokens."""
    output_per_mtok: float = 0.0
    """price of completion tokens."""

    def __post_init__(self) -> None:
        for name in ("input_per_mtok", "output_per_mtok"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """``(prompt · input + completion · output) / 1e6`` dollars.

        Example:
            >>> Price(0.15, 0.60).cost(1_000_000, 500_000)
            0.45
        """
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


@dataclasses.dataclass(frozen=True)
class Usage:
    """Tokens of one request (all its choices), as the server reported them or estimated."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    """True when the server sent no usage and the counts are :func:`estimate_tokens`."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Ledger:
    """Thread-safe totals of a run, overall and per method and role (sample, aggregate, select, ...).

    Example:
        >>> led = Ledger(Price(1.0, 2.0))
        >>> led.add(Usage(100, 50), method="gsa", role="sample")
        >>> led.add(Usage(0, 0), method="gsa", role="sample", cached=True)
        >>> t = led.totals()
        >>> t["calls"], t["cached_calls"], t["prompt_tokens"], t["completion_tokens"], t["cost_usd"]
        (1, 1, 100, 50, 0.0002)
    """

    def __init__(self, price: Price | None = None) -> None:
        self.price = price or Price()
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, usage: Usage, *, method: str = "-", role: str = "-", cached: bool = False) -> None:
        """Record one request, or (``cached=True``) one sample served from the cache with the tokens it cost
        when it was made: those count in ``cached_*`` and ``cost_usd_uncached`` (what a run without the cache
        would pay), not in ``prompt_tokens`` / ``completion_tokens`` / ``cost_usd``."""
        with self._lock:
            row = self._rows.setdefault((method, role), _empty())
            if cached:
                row["cached_calls"] += 1
                row["cached_prompt_tokens"] += usage.prompt_tokens
                row["cached_completion_tokens"] += usage.completion_tokens
                row["cost_usd_uncached"] += self.price.cost(usage.prompt_tokens, usage.completion_tokens)
                return
            row["calls"] += 1
            row["prompt_tokens"] += usage.prompt_tokens
            row["completion_tokens"] += usage.completion_tokens
            row["estimated_calls"] += int(usage.estimated)
            row["cost_usd"] += self.price.cost(usage.prompt_tokens, usage.completion_tokens)
            row["cost_usd_uncached"] += self.price.cost(usage.prompt_tokens, usage.completion_tokens)

    def totals(self, method: str | None = None) -> dict[str, Any]:
        """Sums over every row, or over one method's rows."""
        out = _empty()
        with self._lock:
            for (m, _), row in self._rows.items():
                if method is None or m == method:
                    for k, v in row.items():
                        out[k] += v
        out["cost_usd"] = round(out["cost_usd"], 12)
        out["cost_usd_uncached"] = round(out["cost_usd_uncached"], 12)
        return out

    def rows(self) -> list[dict[str, Any]]:
        """One dict per (method, role), sorted."""
        with self._lock:
            return [{"method": m, "role": r, **row} for (m, r), row in sorted(self._rows.items())]


def _empty() -> dict[str, Any]:
    return {"calls": 0, "cached_calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "estimated_calls": 0,
            "cached_prompt_tokens": 0, "cached_completion_tokens": 0, "cost_usd": 0.0, "cost_usd_uncached": 0.0}  # fmt: skip
