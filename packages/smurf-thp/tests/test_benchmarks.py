"""Smoke test of the benchmark, so that it cannot rot (``benchmarks/run.py --quick``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def test_quick_benchmark_writes_its_record(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(RUN), "--quick", "--jobs", "1", "--out", str(tmp_path)],
                            capture_output=True, text=True, check=False, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "quick.json").read_text())
    assert set(report["table"]["hawkes3"]) == {"smurf", "smurf-semi", "flexible-mle", "thp-mle", "oracle"}
    assert len(report["targets"]) == 5
    oracle = report["table"]["hawkes3"]["oracle"]
    assert oracle["oracle_cs"][0] < 0.05  # the truth's own samples are calibrated against the truth
    md = (tmp_path / "quick.md").read_text()
    assert "Command:" in md
    assert "Machine:" in md


def test_gpu_check_script_runs_on_the_cpu(tmp_path: Path) -> None:
    script = RUN.parent / "gpu_check.py"
    result = subprocess.run([sys.executable, str(script), "--quick", "--device", "cpu", "--out", str(tmp_path)],
                            capture_output=True, text=True, check=False, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((tmp_path / "gpu_check.json").read_text())["rows"]
    assert [r["preset"] for r in rows] == ["cpu-small", "retweet"]
    assert all(r["langevin_evals_per_s"] > 0 for r in rows)
