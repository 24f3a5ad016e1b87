"""The docstring examples of the public modules run and print what they claim (the integrations' and
``lm_text``'s are run by their own test files)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "r3m.functional",
    "r3m.baselines",
    "r3m.metrics",
    "r3m.nn",
    "r3m.data",
    "r3m.synthetic",
    "r3m.teachers",
    "r3m.reward_model",
    "r3m.bandit",
    "r3m.trainer",
]


@pytest.mark.parametrize("name", [*MODULES, "r3m.envs"])
def test_docstring_examples(name: str) -> None:
    if name == "r3m.envs":  # its example runs Pendulum: the [gym] extra
        pytest.importorskip("gymnasium")
    result = doctest.testmod(importlib.import_module(name), extraglobs={"torch": importlib.import_module("torch")})
    assert result.failed == 0
    assert result.attempted > 0
