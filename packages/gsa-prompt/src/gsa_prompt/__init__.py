"""gsa-prompt: generative Self-Aggregation (GSA) and its baselines over any OpenAI-compatible endpoint, with an evaluation harness.

Paper: Li, Feng, Cai, Zhang, Liu, Liang, Chen, Wang, Zhao, "LLMs Can Generate a Better Answer by Aggregating Their Own Responses", arXiv:2503.04104 (2025).

The public API is resolved lazily (PEP 562), so that ``import gsa_prompt`` and ``gsa-prompt --help``
stay fast and import no heavy dependency until a name that needs it is used. Each public name is
listed in ``_LAZY`` with the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import Any

from gsa_prompt._version import __version__

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
