"""gsa-prompt: Generative Self-Aggregation (GSA) and its baselines over any OpenAI-compatible endpoint.

Paper: Li, Feng, Cai, Zhang, Liu, Liang, Chen, Wang, Zhao, "LLMs Can Generate a Better Answer by Aggregating Their Own Responses", arXiv:2503.04104 (2025).

The public API is resolved lazily (PEP 562), so that ``import gsa_prompt`` and ``gsa-prompt --help``
stay fast and import no heavy dependency (``openai``) until a name that needs it is used. Each public
name is listed in ``_LAZY`` with the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gsa_prompt._version import __version__

if TYPE_CHECKING:
    from gsa_prompt.api import aaggregate, aggregate
    from gsa_prompt.cache import ResponseCache, cache_key
    from gsa_prompt.client import Choice, Client, Endpoint, EndpointError, EndpointRejected, EndpointUnavailable
    from gsa_prompt.extract import extract_boxed, extract_choice, extract_gsm8k, extract_math, math_equal
    from gsa_prompt.ledger import Ledger, Price, Usage
    from gsa_prompt.methods import (
        METHODS,
        MethodResult,
        NoCandidates,
        bon_judge,
        budget_split,
        choose_from_n,
        greedy,
        gsa,
        self_consistency,
        self_refine,
        usc,
    )
    from gsa_prompt.sandbox import SandboxResult, extract_code, run_code_tests, run_program
    from gsa_prompt.tasks import TASK_KINDS, TaskKind
    from gsa_prompt.testing import FakeServer
    from gsa_prompt.vote import Vote, majority_vote

_LAZY: dict[str, str] = {
    "aaggregate": "gsa_prompt.api",
    "aggregate": "gsa_prompt.api",
    "ResponseCache": "gsa_prompt.cache",
    "cache_key": "gsa_prompt.cache",
    "Choice": "gsa_prompt.client",
    "Client": "gsa_prompt.client",
    "Endpoint": "gsa_prompt.client",
    "EndpointError": "gsa_prompt.client",
    "EndpointRejected": "gsa_prompt.client",
    "EndpointUnavailable": "gsa_prompt.client",
    "extract_boxed": "gsa_prompt.extract",
    "extract_choice": "gsa_prompt.extract",
    "extract_gsm8k": "gsa_prompt.extract",
    "extract_math": "gsa_prompt.extract",
    "math_equal": "gsa_prompt.extract",
    "Ledger": "gsa_prompt.ledger",
    "Price": "gsa_prompt.ledger",
    "Usage": "gsa_prompt.ledger",
    "METHODS": "gsa_prompt.methods",
    "MethodResult": "gsa_prompt.methods",
    "NoCandidates": "gsa_prompt.methods",
    "bon_judge": "gsa_prompt.methods",
    "budget_split": "gsa_prompt.methods",
    "choose_from_n": "gsa_prompt.methods",
    "greedy": "gsa_prompt.methods",
    "gsa": "gsa_prompt.methods",
    "self_consistency": "gsa_prompt.methods",
    "self_refine": "gsa_prompt.methods",
    "usc": "gsa_prompt.methods",
    "SandboxResult": "gsa_prompt.sandbox",
    "extract_code": "gsa_prompt.sandbox",
    "run_code_tests": "gsa_prompt.sandbox",
    "run_program": "gsa_prompt.sandbox",
    "TASK_KINDS": "gsa_prompt.tasks",
    "TaskKind": "gsa_prompt.tasks",
    "FakeServer": "gsa_prompt.testing",
    "Vote": "gsa_prompt.vote",
    "majority_vote": "gsa_prompt.vote",
}
"""Public name -> module defining it."""

__all__ = [
    "METHODS",
    "TASK_KINDS",
    "Choice",
    "Client",
    "Endpoint",
    "EndpointError",
    "EndpointRejected",
    "EndpointUnavailable",
    "FakeServer",
    "Ledger",
    "MethodResult",
    "NoCandidates",
    "Price",
    "ResponseCache",
    "SandboxResult",
    "TaskKind",
    "Usage",
    "Vote",
    "__version__",
    "aaggregate",
    "aggregate",
    "bon_judge",
    "budget_split",
    "cache_key",
    "choose_from_n",
    "extract_boxed",
    "extract_choice",
    "extract_code",
    "extract_gsm8k",
    "extract_math",
    "greedy",
    "gsa",
    "majority_vote",
    "math_equal",
    "run_code_tests",
    "run_program",
    "self_consistency",
    "self_refine",
    "usc",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
