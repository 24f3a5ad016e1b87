"""The docstring examples of the modules run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "stoc_ialm.ialm",
    "stoc_ialm.prox",
    "stoc_ialm.pstorm",
    "stoc_ialm.toy",
    "stoc_ialm.datasets",
    "stoc_ialm.problems",
    "stoc_ialm.reference",
    "stoc_ialm.baselines",
    "stoc_ialm.conex",
    "stoc_ialm.commands",
    "stoc_ialm.bench",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), extraglobs={"torch": importlib.import_module("torch")})
    assert result.failed == 0
    assert result.attempted > 0
