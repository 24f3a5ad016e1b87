"""The prepared GPU script (benchmarks/gpu_check.py) runs end to end in its quick CPU mode."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="torch.compile needs a C++ compiler"
)
def test_gpu_check_quick_on_cpu(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--quick", "--device", "cpu"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    assert {(r["num_envs"], r["compile"]) for r in record["throughput"]} >= {(256, False), (256, True)}
    assert all(r["agent_steps_per_s"] > 0 for r in record["throughput"])
    per = record["paper_run"]["eval"]["per_size"]
    assert set(per) == {"3v3", "1v1"}
    assert per["3v3"]["wins"] + per["3v3"]["draws"] + per["3v3"]["losses"] == 32
    assert "paper preset" in (tmp_path / "gpu_check.md").read_text()
