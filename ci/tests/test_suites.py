"""suites.py and matrix.py: junit counting against a real pytest run, summary lines, selection."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from matrix import format_summary, read_packages, select
from suites import read_junit, run_pytest

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="2" skipped="3" tests="10" time="0.5"/>
<testsuite name="more" errors="0" failures="0" skipped="0" tests="4" time="0.1"/></testsuites>
"""


def test_read_junit_sums_suites(tmp_path: Path) -> None:
    path = tmp_path / "j.xml"
    path.write_text(JUNIT)
    # Worked by hand: tests 14, failed 2 + errors 1 = 3, skipped 3, passed 14 - 3 - 3 = 8.
    assert read_junit(path) == (8, 3, 3)


def test_run_pytest_counts_a_real_run(tmp_path: Path) -> None:
    (tmp_path / "test_demo.py").write_text(
        "import pytest\n"
        "def test_a(): assert 1 + 1 == 2\n"
        "def test_b(): assert True\n"
        "def test_c(): assert 0, 'planted failure'\n"
        "@pytest.mark.skip(reason='planted skip')\n"
        "def test_d(): pass\n"
    )
    result = run_pytest("demo", sys.executable, tmp_path, tmp_path / "out" / "junit.xml", ["-q"])
    assert (result.passed, result.failed, result.skipped) == (2, 1, 1)
    assert result.returncode == 1
    assert not result.ok


def test_run_pytest_with_no_test_is_not_ok(tmp_path: Path) -> None:
    (tmp_path / "test_empty.py").write_text("x = 1\n")
    result = run_pytest("empty", sys.executable, tmp_path, tmp_path / "junit.xml", ["-q"])
    assert (result.passed, result.failed, result.returncode) == (0, 0, 5)
    assert not result.ok


def test_run_pytest_collection_error_counts_as_failure(tmp_path: Path) -> None:
    (tmp_path / "test_broken.py").write_text("import no_such_module_anywhere\n")
    result = run_pytest("broken", sys.executable, tmp_path, tmp_path / "junit.xml", ["-q"])
    assert result.failed >= 1
    assert not result.ok


def test_format_summary_lines_and_totals() -> None:
    lines, final, totals = format_summary([("a", 3, 0, 1, 1.25), ("b", 2, 1, 0, 0.5)])
    assert lines == ["[a] 3 passed 0 failed 1 skipped 1.2s", "[b] 2 passed 1 failed 0 skipped 0.5s"]
    assert final == "5 passed, 1 failed, 1 skipped"
    assert totals == (5, 1, 1)


def test_select_accepts_commas_and_spaces_and_keeps_order() -> None:
    packages = read_packages()
    assert [p.name for p in select(packages, "r3m, adapref")] == ["r3m", "adapref"]
    assert [p.name for p in select(packages, "adapref r3m adapref")] == ["adapref", "r3m"]
    assert select(packages, "") == packages


def test_select_rejects_an_unknown_package() -> None:
    with pytest.raises(SystemExit, match="unknown package"):
        select(read_packages(), "r3m,nope")
