"""Tests of the benchmark driver (``stoc-ialm bench``, ``benchmarks/run.py``): selection, medians, targets, resume."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stoc_ialm.bench import (
    KKT_TARGET,
    METHODS,
    QUICK,
    WORKLOADS,
    first_reach,
    grid,
    run_bench,
    run_one,
    stays_below,
    summarize,
    targets,
)
from stoc_ialm.cli import main
from stoc_ialm.commands import estimate_lipschitz
from stoc_ialm.datasets import load
from stoc_ialm.ialm import StocIALM, StocIALMConfig
from stoc_ialm.problems import NeymanPearson

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def _history(pairs: list[tuple[int, float]]) -> list[dict[str, Any]]:
    return [{"oracle_calls": c, "kkt": v} for c, v in pairs]


def test_first_reach_and_stays_below_by_hand() -> None:
    h = _history([(10, 0.5), (20, 0.009), (30, 0.011), (40, 0.01), (50, 0.002)])
    assert first_reach(h, 1e-2) == 20
    assert stays_below(h, 1e-2) == 40  # 0.01 <= 1e-2 counts as reached
    assert first_reach(_history([(1, 0.2)]), 1e-2) is None
    assert stays_below(_history([(1, 0.001), (2, 0.2)]), 1e-2) is None  # the last record is above
    assert first_reach([], 1e-2) is None
    assert stays_below([], 1e-2) is None


def _run(method: str, config: dict[str, Any], seed: int, kkt: float, objective: float, reach: int | None) -> dict:
    return {"method": method, "config": config, "seed": seed, "kkt": kkt, "objective": objective,
            "violation": kkt / 2, "stationarity": kkt, "wall_s": 1.0 + seed, "first_reach": reach,
            "stays_below": reach, "oracle_calls": 100, "history": []}  # fmt: skip


def test_summarize_selects_the_smallest_median_kkt_and_takes_medians() -> None:
    a, b = {"lr": 1.0}, {"lr": 2.0}
    runs = [
        # point a: KKT 0.001, 0.5, 0.4 -> median 0.4 (one lucky seed does not win)
        _run("gda", a, 0, 0.001, 0.30, 10), _run("gda", a, 1, 0.5, 0.31, None), _run("gda", a, 2, 0.4, 0.32, None),
        # point b: KKT 0.05, 0.02, 0.03 -> median 0.03
        _run("gda", b, 0, 0.05, 0.20, None), _run("gda", b, 1, 0.02, 0.26, 70), _run("gda", b, 2, 0.03, 0.23, 50),
    ]  # fmt: skip
    out = summarize(runs, F_star=0.25)["gda"]
    assert out["selected"] == b
    med = out["median"]
    assert med["kkt"] == pytest.approx(0.03)
    assert med["objective"] == pytest.approx(0.23)
    assert med["gap"] == pytest.approx(-0.02)
    assert med["abs_gap"] == pytest.approx(0.02)  # median of |−0.05|, |0.01|, |−0.02|
    assert med["first_reach"] == 70  # median of (inf, 70, 50): a seed that never reached counts as +inf
    assert med["reached"] == 2
    assert med["wall_s"] == pytest.approx(2.0)
    assert {json.dumps(g["config"]) for g in out["grid"]} == {json.dumps(a), json.dumps(b)}
    assert all("history" not in r for r in out["runs"])


def test_summarize_reports_none_when_most_seeds_never_reach() -> None:
    runs = [_run("ipp-conex", {}, s, 0.1, 0.3, r) for s, r in enumerate([None, None, 900])]
    med = summarize(runs, 0.25)["ipp-conex"]["median"]
    assert med["first_reach"] is None
    assert med["reached"] == 1


def _summary(ours: dict[str, Any], conex_reach: int | None) -> dict[str, Any]:
    base = {"violation": 0.0, "stationarity": 0.0, "abs_gap": 0.0, "first_reach": None}
    return {"stoc-ialm": {"median": {**base, **ours}}, "ipp-conex": {"median": {**base, "first_reach": conex_reach}}}


def test_targets_measure_the_spec_bounds_and_the_call_ratio() -> None:
    rows = targets(_summary({"violation": 0.02, "stationarity": 0.005, "abs_gap": 0.004, "first_reach": 400},
                            conex_reach=1000), budget=3000)  # fmt: skip
    assert [r["met"] for r in rows] == [False, True, True, True]  # ratio 0.4 <= 0.5
    assert "ratio 0.400" in rows[3]["measured"]
    rows = targets(_summary({"first_reach": 600}, conex_reach=1000), budget=3000)
    assert rows[3]["met"] is False  # ratio 0.6
    # IPP-ConEx never got there: its calls exceed the budget, so the ratio is below first_reach / budget
    rows = targets(_summary({"first_reach": 1200}, conex_reach=None), budget=3000)
    assert rows[3]["met"] is True
    assert "ratio < 0.400" in rows[3]["measured"]
    rows = targets(_summary({"first_reach": 2000}, conex_reach=None), budget=3000)
    assert rows[3]["met"] is False
    rows = targets(_summary({"first_reach": None}, conex_reach=None), budget=3000)
    assert rows[3]["met"] is False
    assert "did not reach" in rows[3]["measured"]
    assert targets({}, 10) == []


def test_targets_use_the_extended_ipp_conex_run_when_given() -> None:
    summary = _summary({"first_reach": 1200}, conex_reach=None)
    ext = {"budget": 30000, "first_reach": 6000, "reached": 2, "seeds": 3}
    row = targets(summary, 3000, ext)[3]
    assert row["met"] is True
    assert "ratio 0.200" in row["measured"]
    assert "rerun at 3e+04" in row["measured"]
    row = targets(summary, 3000, {**ext, "first_reach": None})[3]  # still not reached: bounded by the longer budget
    assert row["met"] is True
    assert "ratio < 0.040" in row["measured"]
    row = targets(_summary({"first_reach": 1200}, conex_reach=2000), 3000, ext)[3]  # reached: ext unused for ratio
    assert "ratio 0.600" in row["measured"]
    assert row["met"] is False


def test_every_method_has_a_small_grid_scaled_by_L() -> None:
    for method in METHODS:
        points = grid(method, 2.0)
        assert 2 <= len(points) <= 6
        assert len({json.dumps(p, sort_keys=True) for p in points}) == len(points)
    assert {p["lr"] for p in grid("gda", 2.0)} == {0.25, 1.0}
    assert {p["weak_convexity"] for p in grid("ipp-conex", 2.0)} == {0.2, 0.02, 0.002}
    with pytest.raises(ValueError, match="method must be one of"):
        grid("adam", 1.0)


def test_the_workloads_are_the_spec_ones() -> None:
    assert WORKLOADS["np-adult"].budget == 3_000_000
    assert WORKLOADS["np-adult"].settings == {"alpha": 0.2, "loss": "sigmoid", "l1": 1e-3}
    assert WORKLOADS["fairness-adult"].settings["kappa"] == 0.05
    assert WORKLOADS["np-breast_cancer"].dataset == "breast_cancer"


def test_run_one_is_the_solver_run_directly() -> None:
    # The bench adds no work of its own: the same config and seed give the same final point as StocIALM.
    config = grid("stoc-ialm", 1.0)[0]
    problem = NeymanPearson(load("breast_cancer"), **QUICK.settings)
    L = estimate_lipschitz(problem)
    record = run_one(QUICK, "stoc-ialm", config, 1, L)
    direct = StocIALM(problem, StocIALMConfig(lipschitz=L, batch=64, budget=QUICK.budget, seed=1, max_outer=10_000,
                                              **config)).solve()  # fmt: skip
    assert record["objective"] == direct.history[-1]["objective"]
    assert record["kkt"] == direct.history[-1]["kkt"]
    assert record["oracle_calls"] == direct.history[-1]["oracle_calls"] <= QUICK.budget  # the budget is a cap
    assert record["first_reach"] == first_reach(direct.history, KKT_TARGET)
    assert len(record["history"]) == len(direct.history)


def test_quick_bench_writes_reports_and_resumes_from_its_run_files(tmp_path: Path) -> None:
    methods = ["stoc-ialm", "gda"]
    reports = run_bench([QUICK], methods, [0, 1], tmp_path, quick=True, progress=False)
    report = reports[QUICK.name]
    for suffix in (".json", ".md"):
        assert (tmp_path / f"{QUICK.name}{suffix}").is_file()
    saved = json.loads((tmp_path / f"{QUICK.name}.json").read_text())
    assert set(saved["methods"]) == set(methods)
    for key in ("command", "date", "machine", "reference", "targets", "lipschitz", "git_commit"):
        assert key in saved
    assert math.isfinite(saved["reference"]["F"])
    md = (tmp_path / f"{QUICK.name}.md").read_text()
    assert md.startswith(f"# {QUICK.name}")
    assert "Command:" in md
    assert "Machine:" in md
    runs = sorted((tmp_path / f"{QUICK.name}-runs").glob("*-s*.json"))
    assert len(runs) == 4  # 2 methods x 1 grid point x 2 seeds
    stamps = {p: p.stat().st_mtime_ns for p in runs}
    again = run_bench([QUICK], methods, [0, 1], tmp_path, quick=True, progress=False)[QUICK.name]
    assert {p: p.stat().st_mtime_ns for p in runs} == stamps  # nothing re-run
    assert again["methods"]["stoc-ialm"]["median"] == report["methods"]["stoc-ialm"]["median"]


def test_bench_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="methods must be"):
        run_bench([QUICK], ["adam"], [0], tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        run_bench([QUICK], ["gda"], [], tmp_path)
    with pytest.raises(ValueError, match="jobs"):
        run_bench([QUICK], ["gda"], [0], tmp_path, jobs=0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workloads", "np-mnist"], "--workloads must be"),
        (["--methods", "adam"], "--methods must be"),
        (["--seeds", "0"], "--seeds must be"),
        (["--jobs", "0"], "--jobs must be"),
    ],
)
def test_cli_bench_bad_flags_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bench", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_bench_quick_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--methods", "penalty-sgd", "--jobs", "1", "--out", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    report = out[QUICK.name]
    assert list(report["methods"]) == ["penalty-sgd"]
    assert report["command"].startswith("stoc-ialm bench --quick")


def test_benchmarks_run_py_quick_in_two_worker_processes(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(RUN), "--quick", "--jobs", "2", "--out", str(tmp_path)],
                            capture_output=True, text=True, check=False, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / f"{QUICK.name}.json").read_text())
    assert report["jobs"] == 2
    assert {"stoc-ialm", "ipp-conex", "penalty-sgd", "gda"} <= set(report["methods"])
    assert report["command"].startswith("python benchmarks/run.py --quick")
