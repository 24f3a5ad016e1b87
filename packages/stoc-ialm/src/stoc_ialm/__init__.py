"""stoc-ialm: stochastic inexact augmented Lagrangian solver for expectation-constrained problems.

Paper: Li, Chen, Liu, Lu, Xu, "Stochastic inexact augmented Lagrangian method for nonconvex expectation constrained optimization", Computational Optimization and Applications 87 (2024), arXiv:2212.09513.

The public API is resolved lazily (PEP 562), so that ``import stoc_ialm`` and ``stoc-ialm --help``
stay fast and import no heavy dependency until a name that needs it is used. Each public name is
listed in ``_LAZY`` with the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import Any

from stoc_ialm._version import __version__

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
