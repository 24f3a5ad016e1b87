"""Shared pytest setup for gsa-prompt: it runs no local model, so ``gpu`` tests are always skipped."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="gsa-prompt runs no local model; it never uses a GPU")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)
