"""The docstring examples of the public modules run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "cosmos_optim.functional",
    "cosmos_optim.optimizer",
    "cosmos_optim.routing",
    "cosmos_optim.memory",
    "cosmos_optim.soap",
    "cosmos_optim.baselines",
    "cosmos_optim.data",
    "cosmos_optim.model",
    "cosmos_optim.train",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), extraglobs={"torch": importlib.import_module("torch")})
    assert result.failed == 0
    assert result.attempted > 0
