"""The prepared GPU script (benchmarks/gpu_check.py) runs end to end in its quick CPU mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_gpu_check_quick_on_cpu(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--quick", "--device", "cpu"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    assert len(record["agreement"]) == 4
    assert all(r["ratio to bt"] > 0 for r in record["reward_steps"])
    assert next(r["loss"] for r in record["dpo"]["rows"]) == "sigmoid"
    # on the same device and dtype the loss is deterministic: CPU against CPU agrees exactly
    assert all(v == 0 for r in record["agreement"] for k, v in r.items() if k.endswith("vs CPU same dtype"))
    assert "agreement with a float64 CPU reference" in (tmp_path / "gpu_check.md").read_text()
    trainer = record["trainer"]  # TRL's loop: measured where TRL imports (the dev environment), else said why not
    if "skipped" in trainer:
        assert "TRL is not importable" in trainer["skipped"]
    else:
        assert [r["trainer"] for r in trainer["rows"]] == ["sigmoid", "ada"]
        assert trainer["rows"][0]["ratio to DPOTrainer (median)"] == 1.0
        assert all(r["median step ms"] > 0 for r in trainer["rows"])
