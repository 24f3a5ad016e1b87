"""Smoke test of the benchmarks, so that they cannot rot (``benchmarks/run.py --quick``), and the pure parts of
``benchmarks/anchors.py`` (optillm and DSPy are not installed here: only its help and helpers are tested)."""

from __future__ import annotations

import doctest
import importlib.util
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from gsa_prompt.policies import AGGREGATE_TABLE, aggregate_key, sc_accuracy
from gsa_prompt.worlds import ArithmeticWorld, stable_rng

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
ANCHORS = RUN.with_name("anchors.py")


@pytest.mark.slow
def test_quick_benchmarks_write_their_records(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(RUN), "--quick", "--out", str(tmp_path)], capture_output=True,
                            text=True, check=False, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    fidelity = json.loads((tmp_path / "fidelity-quick.json").read_text())
    assert {r["method"] for r in fidelity["rows"]} == {"greedy", "sc", "usc", "cfn", "bon", "self-refine", "gsa"}
    assert all(r["rerun_requests"] == 0 for r in fidelity["rows"])
    assert fidelity["kill_resume"]["lost"] == 0
    assert fidelity["kill_resume"]["duplicated"] == 0
    for name in ("fidelity", "overhead", "sandbox"):
        md = (tmp_path / f"{name}-quick.md").read_text()
        assert "Command:" in md
        assert "Machine:" in md
    assert json.loads((tmp_path / "sandbox-quick.json").read_text())["as_expected"] == 20


@pytest.fixture
def anchors() -> Iterator[ModuleType]:
    """``benchmarks/anchors.py`` imported as a module; ``sys.path`` and the scripts' modules dropped afterwards."""
    path = list(sys.path)
    spec = importlib.util.spec_from_file_location("anchors", ANCHORS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path[:] = path
        for name in ("anchors", "run"):  # the benchmark scripts, imported by file path
            sys.modules.pop(name, None)


class TestAnchors:
    def test_help_runs_without_optillm_or_dspy(self) -> None:
        result = subprocess.run([sys.executable, str(ANCHORS), "--help"], capture_output=True, text=True,
                                check=False, timeout=60)  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        assert "optillm" in result.stdout
        assert "MultiChainComparison" in result.stdout

    def test_doctests_pass(self, anchors: ModuleType) -> None:
        result = doctest.testmod(anchors)
        assert result.failed == 0
        assert result.attempted >= 6

    def test_sc_exact_matches_the_sequence_enumeration(self, anchors: ModuleType) -> None:
        # Counts with ties split 1 / ties vs gsa_prompt.policies' enumeration of every answer sequence.
        for n in range(1, 7):
            assert anchors.sc_exact(0.6, 6, n) == pytest.approx(sc_accuracy(0.6, 6, n), abs=1e-12)

    def test_moa_read_expected_matches_a_simulation_of_the_policy(self, anchors: ModuleType) -> None:
        # Monte Carlo of the fake server's own table aggregator: critique from 3 answers, final from 4.
        world, question, trials, right = ArithmeticWorld(0.6, 6), "What is 51 + 29?", 20000, 0
        rng = stable_rng("moa-read")
        for _ in range(trials):
            keys = [world.draw(question, rng) for _ in range(3)]
            critique = aggregate_key(world, question, keys, AGGREGATE_TABLE, rng)
            right += world.is_correct(question, aggregate_key(world, question, [*keys, critique], AGGREGATE_TABLE, rng))
        expected = anchors.moa_read_expected(0.6)
        assert abs(right / trials - expected) < 3 * math.sqrt(expected * (1 - expected) / trials)
