"""adapref: adaptive preference scaling (DRO) for reward learning and DPO.

Paper: Hong, Li, Bukharin, Li, Jiang, Yang, Zhao, "Adaptive Preference Scaling for Reinforcement Learning with Human Feedback", NeurIPS 2024, arXiv:2406.02764.

The public API is resolved lazily (PEP 562), so that ``import adapref`` and ``adapref --help``
stay fast and import no heavy dependency until a name that needs it is used. Each public name is
listed in ``_LAZY`` with the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import Any

from adapref._version import __version__

_LAZY: dict[str, str] = {}
"""Public name -> module defining it; names are added here as the method lands."""

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
