"""Smoke test of the benchmarks, so that they cannot rot (``benchmarks/run.py --quick``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


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
