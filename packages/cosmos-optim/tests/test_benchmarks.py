"""Smoke tests of the benchmarks, so that they cannot rot (``benchmarks/run.py --quick``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cosmos_optim.bench import LLAMA, llama_shapes, run

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
RECORD_KEYS = ("benchmark", "package", "version", "git_sha", "command", "date", "machine", "threads", "setup",
               "targets", "config", "rows")  # fmt: skip


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUN), "--quick", "--out", str(tmp_path), *args],
                          capture_output=True, text=True, check=False, timeout=600)  # fmt: skip


def _record(tmp_path: Path, name: str) -> dict[str, object]:
    record = json.loads((tmp_path / f"{name}-quick.json").read_text())
    for key in RECORD_KEYS:
        assert key in record, key
    assert record["package"] == "cosmos-optim"
    assert record["threads"] == 1
    md = (tmp_path / f"{name}-quick.md").read_text()
    assert md.startswith(f"# {name}:")
    for line in ("Command:", "Machine:", "Date:"):
        assert line in md
    assert isinstance(record, dict)
    return record


def test_quick_memory_benchmark_matches_the_closed_form(tmp_path: Path) -> None:
    result = _run(tmp_path, "--only", "memory")
    assert result.returncode == 0, result.stderr[-2000:]
    record = _record(tmp_path, "memory")
    detail = record["config"]["sizes"]["60M"]  # type: ignore[index]
    # By hand for LLaMA-60M (d 512, 8 layers, ffn 1376, vocab 32000, untied): AdamW keeps 2 entries per weight.
    n_params = 2 * 32000 * 512 + 8 * (4 * 512 * 512 + 3 * 512 * 1376 + 2 * 512) + 512
    assert detail["params"] == n_params
    assert detail["total_bytes"]["adamw"] == 4 * 2 * n_params
    mats, rest = llama_shapes(*LLAMA["60M"][:3])
    assert len(mats) == 8 * 7
    assert sum(s[0] for s in rest if len(s) == 1) == 17 * 512
    assert all(t["met"] in (True, False) for t in record["targets"])  # type: ignore[attr-defined]


def test_quick_steptime_benchmark_runs(tmp_path: Path) -> None:
    result = _run(tmp_path, "--only", "steptime")
    assert result.returncode == 0, result.stderr[-2000:]
    record = _record(tmp_path, "steptime")
    rows = record["rows"]
    assert isinstance(rows, list)
    assert [r["optimizer"] for r in rows] == ["adamw", "muon", "soap", "cosmos"]
    assert rows[0]["median × AdamW"] == 1.0
    assert record["targets"][0]["met"] is None  # type: ignore[index]  # quick runs below width 512


def test_quick_lm_benchmark_writes_record_and_plots(tmp_path: Path) -> None:
    result = _run(tmp_path, "--only", "lm")
    assert result.returncode == 0, result.stderr[-2000:]
    record = _record(tmp_path, "lm")
    rows = record["rows"]
    assert isinstance(rows, list)
    assert [r["optimizer"] for r in rows] == ["adamw", "muon", "soap", "cosmos"]
    runs = record["runs"]
    assert isinstance(runs, dict)
    for name, kept in runs.items():
        assert [r["seed"] for r in kept] == [0, 1], name
        grid = {g["lr"]: g["final_val_loss"] for g in record["grid"][name]}  # type: ignore[index]
        assert kept[0]["lr"] == min(grid, key=grid.__getitem__)  # the chosen lr is the grid's best on seed 0
    assert len(record["targets"]) == 2  # type: ignore[arg-type]
    for png in ("lm-quick-loss-vs-step.png", "lm-quick-loss-vs-seconds.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    assert not list((tmp_path / "lm-quick-runs").glob("*/checkpoint.pt"))  # finished runs keep only their result


def test_interrupted_lm_benchmark_resumes_at_the_unfinished_run(tmp_path: Path) -> None:
    kwargs = {"only": "lm", "quick": True, "out": tmp_path, "optimizers": ["adamw", "cosmos"], "progress": False}
    assert run(**kwargs) == 0  # type: ignore[arg-type]
    first = json.loads((tmp_path / "lm-quick.json").read_text())
    runs_dir = tmp_path / "lm-quick-runs"
    finished = runs_dir / "adamw-lr0.006-seed0" / "result.json"
    before = finished.stat().st_mtime_ns
    seed1 = runs_dir / f"cosmos-lr{first['runs']['cosmos'][1]['lr']:g}-seed1" / "result.json"
    seed1.unlink()  # as if the bench stopped during this run
    assert run(**kwargs, resume=True) == 0  # type: ignore[arg-type]
    assert finished.stat().st_mtime_ns == before  # reused, not rerun
    again = json.loads((tmp_path / "lm-quick.json").read_text())
    assert seed1.is_file()
    # The rerun is deterministic: the same losses as the first time; the reused runs keep their timings too.
    assert again["runs"]["cosmos"][1]["final_val_loss"] == first["runs"]["cosmos"][1]["final_val_loss"]
    assert again["runs"]["adamw"] == first["runs"]["adamw"]


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    result = _run(tmp_path, "--optimizers", "adamw,sgd")
    assert result.returncode == 2
    assert "--optimizers must be a non-empty subset" in result.stderr


def test_gpu_check_script_runs_on_cpu_in_quick_mode(tmp_path: Path) -> None:
    # benchmarks/gpu_check.py is what `make gpu-check` runs on a lent GPU; keep it runnable here.
    script = RUN.parent / "gpu_check.py"
    result = subprocess.run([sys.executable, str(script), "--quick", "--device", "cpu", "--out", str(tmp_path)],
                            capture_output=True, text=True, check=False, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [row["optimizer"] for row in record["gpt"]] == ["adamw", "muon", "soap", "cosmos"]
    assert record["optimizer_step"][0]["d"] == 64
    # The measured state of the AdamW run is two float32 copies of every parameter of the GPT.
    from cosmos_optim.model import GPT, GPTConfig

    n_params = sum(
        p.numel() for p in GPT(GPTConfig(vocab_size=97, block_size=32, n_layer=2, n_head=2, d_model=64)).parameters()
    )
    assert record["gpt"][0]["state MiB"] == round(8 * n_params / 2**20, 1)


def test_quick_ablation_reuses_the_lm_reference_run(tmp_path: Path) -> None:
    assert _run(tmp_path, "--only", "lm", "--optimizers", "cosmos", "--seeds", "1").returncode == 0
    result = _run(tmp_path, "--only", "ablation")
    assert result.returncode == 0, result.stderr[-2000:]
    record = _record(tmp_path, "ablation")
    lm = json.loads((tmp_path / "lm-quick.json").read_text())
    rows = record["rows"]
    assert isinstance(rows, list)
    # The reference row is lm's seed-0 COSMOS run itself (same final loss), the others are new runs.
    assert rows[0]["role"] == "reference (lm)"
    assert rows[0]["final val loss"] == round(lm["runs"]["cosmos"][0]["final_val_loss"], 4)
    auto = f"{lm['runs']['cosmos'][0]['lr'] / 2e-3:g} (η/η0)"
    assert {(r["rank"], r["γ"]) for r in rows[1:]} == {(0, auto), (8, "0.5"), (8, "1")}
    assert rows[1]["role"] == "normalised Muon"
