"""Fixtures for the tests of the ci/ scripts: a throw-away copy of the repository's skeleton."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from matrix import ROOT


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of ci/, packages/ (sources, tests, metadata) and the root LICENSE under tmp_path."""
    dest = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".pytest_cache", "results", "data")
    shutil.copytree(ROOT / "ci", dest / "ci", ignore=ignore)
    shutil.copytree(ROOT / "packages", dest / "packages", ignore=ignore)
    shutil.copy2(ROOT / "LICENSE", dest / "LICENSE")
    return dest
