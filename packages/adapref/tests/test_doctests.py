"""The docstring examples of the public modules run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "adapref.scaling",
    "adapref.functional",
    "adapref.baselines",
    "adapref.nn",
    "adapref.data",
    "adapref.synthetic",
    "adapref.metrics",
    "adapref.reward_model",
    "adapref.bandit",
    "adapref.trainer",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), extraglobs={"torch": importlib.import_module("torch")})
    assert result.failed == 0
    assert result.attempted > 0
