"""deptry, as `make lint` runs it, rejects a package that imports another package of this repo."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from matrix import ROOT

pytest.importorskip("deptry", reason="deptry is a development tool of .venv (make venv)")


def _deptry(package_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deptry", "src"], cwd=package_dir, capture_output=True, text=True, check=False
    )


@pytest.fixture
def r3m_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "r3m"
    shutil.copytree(ROOT / "packages" / "r3m", dest, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def test_deptry_accepts_the_untouched_package(r3m_copy: Path) -> None:
    result = _deptry(r3m_copy)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deptry_rejects_a_cross_package_import(r3m_copy: Path) -> None:
    (r3m_copy / "src" / "r3m" / "planted.py").write_text("import adapref\n\nprint(adapref.__version__)\n")
    result = _deptry(r3m_copy)
    assert result.returncode != 0
    assert "planted.py" in result.stdout + result.stderr
    assert "'adapref'" in result.stdout + result.stderr
