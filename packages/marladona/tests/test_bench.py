"""Tests of the benchmark driver (``marladona.bench``, ``benchmarks/run.py``): arithmetic, targets, quick runs, resume."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from marladona import bench
from marladona.bench import (
    KICKOFF_SLOT,
    SIM_TARGET,
    _OursSim,
    _summarize_sim,
    _VmasSim,
    _warm_up,
    agent_steps,
    agent_steps_per_s,
    bench_sim,
    expand_parts,
    run_bench,
    sim_targets,
)
from marladona.bench_record import read_log, torch_threads
from marladona.bench_train import TRAIN_PARTS, TRAIN_RUNS, bench_train, train_config, train_targets

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
HAS_VMAS = importlib.util.find_spec("vmas") is not None
HAS_MPL = importlib.util.find_spec("matplotlib") is not None


def _strict_json(path: Path) -> Any:
    """The file parsed as strict JSON (NaN or Infinity would raise)."""

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON constant {token} in {path.name}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


class TestArithmetic:
    def test_agent_steps_count_every_player_by_hand(self) -> None:
        # 3v3: 6 players move per game step; 1v1: 2
        assert agent_steps(1000, 3) == 6000
        assert agent_steps(7, 1) == 14
        # 10 batched steps of 4096 3v3 games in 2 s: 10 * 4096 * 6 / 2
        assert agent_steps_per_s(10, 4096, 3, 2.0) == 122_880.0
        assert agent_steps_per_s(5, 1024, 1, 0.5) == 20_480.0

    def test_agent_steps_reject_bad_input(self) -> None:
        with pytest.raises(ValueError, match="seconds must be > 0"):
            agent_steps_per_s(1, 1, 1, 0.0)
        with pytest.raises(ValueError, match="team_size must be >= 1"):
            agent_steps(1, 0)

    def test_summarize_sim_medians_reset_share_and_goals_by_hand(self) -> None:
        windows = [
            {"steps": 10, "seconds": 2.0, "reset_s": 0.5, "goals": 3, "load": 1.0},
            {"steps": 20, "seconds": 2.0, "reset_s": 0.0, "goals": 1, "load": 1.5},
            {"steps": 30, "seconds": 2.0, "reset_s": 1.0, "goals": 2, "load": None},
        ]
        s = _summarize_sim(windows, num_envs=100, team_size=1)
        # rates: 10*100*2/2 = 1000, 2000, 3000 -> median 2000; env-steps/s = agent-steps / 2
        assert s["agent_steps_per_s"] == 2000.0
        assert (s["min"], s["max"]) == (1000.0, 3000.0)
        assert s["env_steps_per_s"] == 1000.0
        # without resets: 10*200/1.5 = 1333.3, 20*200/2 = 2000, 30*200/1 = 6000 -> median 2000
        assert s["agent_steps_per_s_excl_reset"] == pytest.approx(2000.0)
        assert s["reset_share"] == pytest.approx(1.5 / 6.0)
        assert s["goals_per_kstep"] == pytest.approx(1000 * 6 / (60 * 100))

    def test_read_log_keeps_the_last_row_of_a_repeated_iteration(self, tmp_path: Path) -> None:
        # a run killed after logging iterations 2-3 past its checkpoint at 1 logs them again on resume
        rows = [{"iteration": i, "env_steps": i * 10, "win_rate": w} for i, w in [(1, 0.1), (2, 0.2), (3, 0.3)]]
        rows += [
            {"iteration": 2, "env_steps": 20, "win_rate": 0.25},
            {"iteration": 3, "env_steps": 30, "win_rate": 0.35},
        ]
        path = tmp_path / "log.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        out = read_log(path)
        assert [r["iteration"] for r in out] == [1, 2, 3]
        assert [r["win_rate"] for r in out] == [0.1, 0.25, 0.35]
        assert read_log(tmp_path / "missing.jsonl") == []


def _row(threads: int, ours: float, heur: float, ratio: float | None, n: int = 4096, t: int = 3) -> dict[str, Any]:
    return {"team_size": t, "num_envs": n, "threads": threads, "load": [1.0, 1.2],
            "sims": {"ours_random": {"agent_steps_per_s": ours}, "ours_heuristic": {"agent_steps_per_s": heur}},
            "ratio_heuristic_vs_vmas": ratio, "ratio_random_vs_vmas": ratio}  # fmt: skip


class TestTargets:
    def test_sim_targets_take_the_best_thread_count_and_both_ratio_bounds(self) -> None:
        rows = [_row(1, 2.5e5, 2.0e5, 1.2), _row(2, 3.5e5, 2.9e5, 1.6), _row(1, 9e4, 8e4, 0.9, n=1024)]
        targets = sim_targets(rows, "1.5.2")
        met = {t["target"]: t["met"] for t in targets}
        assert met[f"3v3 @ 4096 games, random blue vs random red: >= {SIM_TARGET:.0e} agent-steps/s"] is True
        assert met[f"3v3 @ 4096 games, random blue vs heuristic red: >= {SIM_TARGET:.0e} agent-steps/s"] is False
        assert met["3v3 @ 4096, heuristic red / VMAS AI red >= 1.5x (issue #8), 1 thread(s)"] is False
        assert met["3v3 @ 4096, heuristic red / VMAS AI red >= 1.5x (issue #8), 2 thread(s)"] is True
        assert met["3v3 @ 4096, heuristic red / VMAS AI red >= 1.0x (spec 6.4), 1 thread(s)"] is True
        assert met["every cell, heuristic red / VMAS >= 1.0x (spec 6.4)"] is False  # the 1024 cell: 0.9x

    def test_sim_targets_without_vmas_or_the_cell_are_not_applicable(self) -> None:
        targets = sim_targets([_row(1, 4e5, 4e5, None)], None)
        ratio_rows = [t for t in targets if "VMAS" in t["target"]]
        assert ratio_rows
        assert all(t["met"] is None and "not installed" in t["measured"] for t in ratio_rows)
        assert all(t["met"] is None for t in sim_targets([_row(1, 4e5, 4e5, 2.0, n=64)], "1.5.2")[:4])

    def test_train_targets_by_hand(self) -> None:
        def res(wins: int, losses: int, n: int = 100) -> dict[str, Any]:
            from marladona.evaluate import wilson_interval

            draws = n - wins - losses
            return {"wins": wins, "losses": losses, "win_rate": wins / n, "loss_rate": losses / n,
                    "draw_rate": draws / n, "win_ci": list(wilson_interval(wins, n)),
                    "loss_ci": list(wilson_interval(losses, n)), "draw_ci": list(wilson_interval(draws, n))}  # fmt: skip

        runs = [
            {"name": "1v1-idle", "eval": {"idle": res(90, 0)}},
            {"name": "1v1-curriculum", "eval": {"heuristic:0.5": res(20, 50), "heuristic:0.25": res(30, 41)}},
            {"name": "3v3-idle", "eval": {"idle": res(10, 0)}, "baseline": {"idle": res(0, 0)}},
        ]
        assert [t["met"] for t in train_targets(runs)] == [True, True, False, True]  # 41 % losses > 40 %
        runs[2]["baseline"] = {"idle": res(6, 0)}  # a random team scoring 6 %: 10 % is not clearly better
        assert train_targets(runs)[-1]["met"] is False
        # a run still in training has no target yet; the 10-minute cap counts bench parts, not a whole run
        runs[2].update(status="training", part_wall_s={"train-3v3-idle-1of2": 590.0})
        runs[0]["part_wall_s"] = {"all": 2000.0}
        targets = train_targets(runs)
        assert targets[-1]["target"] == "each training part under 10 minutes (issue #8)"
        assert len(targets) == 4  # 1v1-idle, the two curriculum rows, the cap
        assert targets[-1]["met"] is True
        assert "1 parts, the longest train-3v3-idle-1of2 590 s" in targets[-1]["measured"]
        runs[1]["part_wall_s"] = {"train-1v1-curriculum-2of2": 600.5}
        assert train_targets(runs)[-1]["met"] is False

    def test_training_parts_split_each_budget_into_pieces_under_the_cap(self) -> None:
        assert list(TRAIN_PARTS) == ["train-1v1-idle", "train-1v1-curriculum-1of2", "train-1v1-curriculum-2of2",
                                     "train-3v3-idle-1of2", "train-3v3-idle-2of2"]  # fmt: skip
        assert ("sim", "sim-compiled", *TRAIN_PARTS) == bench.PARTS
        assert expand_parts(["sim", "train"]) == ["sim", *TRAIN_PARTS]
        for run in TRAIN_RUNS.values():  # at most 7.5 min of training per part leaves room for evaluating
            assert run.minutes / run.parts <= 7.5
        with pytest.raises(ValueError, match="parts must be a non-empty list from sim, sim-compiled, train-1v1-idle"):
            expand_parts(["train-3v3"])


def test_torch_threads_restores_the_count() -> None:
    import torch

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads must be >= 1"), torch_threads(0):
        pass


@pytest.mark.parametrize(
    "kind", ["ours", pytest.param("vmas", marks=pytest.mark.skipif(not HAS_VMAS, reason="needs vmas"))]
)
def test_warm_up_kicks_every_game_off_once_in_the_first_half_with_its_clock(kind: str) -> None:
    import torch

    n, steps, max_steps = 48, 40, 375
    base: Any = _OursSim if kind == "ours" else _VmasSim

    class Recorded(base):  # type: ignore[misc, valid-type]
        """The real simulator; ``restart`` also records when, which games and the clocks they got."""

        def __init__(self) -> None:
            if kind == "ours":
                super().__init__(1, n, "heuristic", 0)
            else:
                super().__init__(1, n, 0, max_steps)
            self.stepped, self.calls = 0, []

        def step(self) -> None:
            super().step()
            self.stepped += 1

        def restart(self, ids: list[int], clocks: Any) -> None:
            super().restart(ids, clocks)
            clock = self.env.state.step if kind == "ours" else self.env.steps
            assert clock[ids].long().tolist() == clocks.tolist()  # the clock each game was given
            self.calls.append((self.stepped, list(ids), clocks.clone()))

    sim = Recorded()
    _warm_up(sim, steps, n, max_steps, seed=3)
    assert sim.stepped == steps
    ids = sorted(i for _, got, _ in sim.calls for i in got)
    assert ids == list(range(n))  # every game once
    assert {at for at, _, _ in sim.calls} == {1, 1 + KICKOFF_SLOT}  # after the slot steps of the first half (20)
    clocks = torch.cat([c for _, _, c in sim.calls])
    assert 0 <= int(clocks.min()) <= int(clocks.max()) < max_steps
    assert len(set(clocks.tolist())) > n // 2  # drawn, not one shared value


@pytest.mark.parametrize(
    "vmas",
    [pytest.param("installed", marks=pytest.mark.skipif(not HAS_VMAS, reason="needs vmas")), "absent", "left out"],
)
def test_quick_sim_writes_json_and_markdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vmas: str) -> None:
    if vmas == "absent":  # what the isolated CI venv sees
        monkeypatch.setattr(bench, "vmas_version", lambda: None)
    use_vmas = vmas == "installed"
    report = bench_sim(tmp_path, quick=True, threads=(1,), num_envs=(32,), window_s=0.05, use_vmas=vmas != "left out",
                       progress=False, command="pytest")  # fmt: skip
    saved = _strict_json(tmp_path / "sim.json")
    assert saved["rows"] == json.loads(json.dumps(report["rows"]))
    for key in ("command", "date", "machine", "git_commit", "load_start", "load_end", "targets", "vmas"):
        assert key in saved
    assert set(saved["phase_s"]) == {"build", "warm_up", "warm_windows", "windows"}
    assert 0 < sum(saved["phase_s"].values()) <= saved["wall_s"]
    assert saved["vmas_skipped"] == {"installed": None, "absent": "not installed", "left out": "left out"}[vmas]
    assert [(r["setting"], r["num_envs"], r["threads"]) for r in saved["rows"]] == [("1v1", 32, 1), ("3v3", 32, 1)]
    for row in saved["rows"]:
        for name in ("ours_random", "ours_heuristic"):
            sim = row["sims"][name]
            assert sim["agent_steps_per_s"] > 0
            assert len(sim["windows"]) == 2
            assert all(w["steps"] >= 2 for w in sim["windows"])
        assert ("vmas" in row["sims"]) is use_vmas
        assert (row["ratio_heuristic_vs_vmas"] is not None) is use_vmas
    md = (tmp_path / "sim.md").read_text(encoding="utf-8")
    assert md.startswith("# marladona bench: simulator throughput")
    assert "| 3v3 | 32 | 1 |" in md
    assert "## Targets" in md
    assert "Command: `pytest`" in md
    assert "compiled / VMAS" not in md  # the compiled physics has a part of its own (sim-compiled)
    if not use_vmas:
        assert f"VMAS columns: {saved['vmas_skipped']}" in md


def test_quick_train_resumes_an_interrupted_run_and_does_not_retrain_a_finished_one(tmp_path: Path) -> None:
    from marladona.train import resume_or_start

    run = TRAIN_RUNS["1v1-idle"]
    run_dir = tmp_path / "runs" / run.name
    with torch_threads(1):  # an interrupted bench: one of the two quick iterations done
        resume_or_start(train_config(run, quick=True, seed=0), run_dir, resume=False, progress=False).learn(
            iterations=1
        )
    report = bench_train(tmp_path, quick=True, runs=[run.name], threads=1, progress=False, command="pytest")
    res = report["runs"][0]
    assert res["resumed"] is True
    assert res["cached"] is False
    assert res["iterations"] == 2
    assert [r["iteration"] for r in read_log(run_dir / "log.jsonl")] == [1, 2]
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 2  # iteration 1 not trained again
    saved = _strict_json(tmp_path / "train.json")
    for key in ("command", "date", "machine", "git_commit", "load_start", "targets", "runs"):
        assert key in saved
    e = saved["runs"][0]["eval"]["idle"]
    assert e["wins"] + e["draws"] + e["losses"] == e["episodes"] == 16
    assert saved["runs"][0]["baseline"]["idle"]["episodes"] == 16
    assert [t["met"] for t in saved["targets"]] == [e["win_rate"] >= 0.9]
    md = (tmp_path / "train.md").read_text(encoding="utf-8")
    assert md.startswith("# marladona bench: training at fixed CPU budgets")
    assert "| 1v1-idle | cpu-idle | 0.5 min | 2 |" in md
    if HAS_MPL:
        assert (tmp_path / "train_1v1-idle.png").read_bytes()[:4] == b"\x89PNG"
    # a finished run is reported from its record: no training, no new checkpoint
    ckpt = run_dir / "checkpoint.pt"
    stamp = ckpt.stat().st_mtime_ns
    again = bench_train(tmp_path, quick=True, runs=[run.name], threads=1, progress=False)["runs"][0]
    assert again["cached"] is True
    assert ckpt.stat().st_mtime_ns == stamp
    assert again["eval"] == saved["runs"][0]["eval"]
    # another configuration in the same folder is refused rather than silently resumed
    with pytest.raises(ValueError, match="another configuration"):
        bench_train(tmp_path, quick=True, runs=[run.name], threads=1, seed=1, progress=False)


def test_quick_3v3_run_plays_zero_shot_at_larger_sizes(tmp_path: Path) -> None:
    # the 3v3 policy plays 4v4 and 5v5 unchanged (entity pooling), each game counted once; cached after
    report = bench_train(tmp_path, quick=True, runs=["3v3-idle"], episodes=8, threads=1, progress=False)
    z = report["runs"][0]["zero_shot"]
    assert z["trained_sizes"] == [3, 3]
    assert z["cached"] is False
    assert set(z["policy"]) == set(z["random"]) == {"4v4", "5v5"}
    for table in (z["policy"], z["random"]):
        for e in table.values():
            assert e["wins"] + e["draws"] + e["losses"] == e["episodes"] == 8
    md = (tmp_path / "train.md").read_text(encoding="utf-8")
    assert "Zero-shot (trained for 3v3, never for these sizes), against idle" in md
    assert "| 5v5 |" in md
    again = bench_train(tmp_path, quick=True, runs=["3v3-idle"], episodes=8, threads=1, progress=False)
    assert again["runs"][0]["zero_shot"]["cached"] is True
    assert again["runs"][0]["zero_shot"]["policy"] == z["policy"]


def test_quick_training_parts_continue_one_run_and_merge_into_one_record(tmp_path: Path) -> None:
    from marladona.train import resume_or_start

    kw: dict[str, Any] = {"quick": True, "episodes": 8, "threads": 1, "progress": False, "command": "pytest"}
    run_dir = tmp_path / "runs" / "3v3-idle"
    # the second half cannot start before the first: no checkpoint, or one short of the first half
    with pytest.raises(ValueError, match="holds no checkpoint: run train-3v3-idle-1of2 first"):
        bench_train(tmp_path, runs=["3v3-idle"], stages={"3v3-idle": 2}, **kw)
    with torch_threads(1):
        resume_or_start(train_config(TRAIN_RUNS["3v3-idle"], quick=True, seed=0), run_dir, resume=False,
                        progress=False).learn(iterations=0)  # fmt: skip
    with pytest.raises(ValueError, match=r"has trained 0\.00 min: run train-3v3-idle-1of2 first"):
        bench_train(tmp_path, runs=["3v3-idle"], stages={"3v3-idle": 2}, **kw)
    with pytest.raises(ValueError, match="stages must map"):
        bench_train(tmp_path, runs=["3v3-idle"], stages={"3v3-idle": 3}, **kw)
    bench_train(tmp_path, runs=["1v1-idle"], **kw)  # a run trained whole, in no part
    legacy = _strict_json(tmp_path / "train.json")  # an entry written before entries had their own record
    del legacy["runs"][0]["record"], legacy["runs"][0]["part_wall_s"]
    (tmp_path / "train.json").write_text(json.dumps(legacy), encoding="utf-8")
    first = bench_train(tmp_path, runs=["3v3-idle"], stages={"3v3-idle": 1}, **kw)
    entry = first["runs"][1]
    assert [r["name"] for r in first["runs"]] == ["1v1-idle", "3v3-idle"]  # merged in TRAIN_RUNS order
    assert (entry["status"], entry["stage"], entry["iterations"]) == ("training", [1, 2], 1)  # half of 2
    assert "eval" not in entry
    assert "zero_shot" not in entry
    assert list(entry["part_wall_s"]) == ["train-3v3-idle-1of2"]
    assert [t["target"] for t in first["targets"]] == [
        "1v1, 5 min vs idle: >= 90 % wins vs idle", "each training part under 10 minutes (issue #8)"]  # fmt: skip
    assert "| 3v3-idle | cpu-3v3 | 0.5 min | 1 |" in (tmp_path / "train.md").read_text(encoding="utf-8")
    assert "in training:" in (tmp_path / "train.md").read_text(encoding="utf-8")
    second = bench_train(tmp_path, runs=["3v3-idle"], stages={"3v3-idle": 2}, **kw)
    entry = second["runs"][1]
    assert (entry["status"], entry["resumed"], entry["iterations"]) == ("finished", True, 2)
    assert [r["iteration"] for r in read_log(run_dir / "log.jsonl")] == [1, 2]
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 2  # the second part trained iteration 2 only
    assert list(entry["part_wall_s"]) == ["train-3v3-idle-1of2", "train-3v3-idle-2of2"]
    assert entry["eval"]["idle"]["episodes"] == 8
    assert "zero_shot" in entry
    assert entry["record"]["command"] == "pytest"
    saved = _strict_json(tmp_path / "train.json")
    assert [r["name"] for r in saved["runs"]] == ["1v1-idle", "3v3-idle"]
    assert saved["runs"][0]["eval"] == first["runs"][0]["eval"]  # the earlier run's entry kept as it was
    # a record of other settings is replaced, not merged
    other = bench_train(tmp_path, runs=["1v1-idle"], **{**kw, "episodes": 4})
    assert [r["name"] for r in other["runs"]] == ["1v1-idle"]
    assert [r["name"] for r in _strict_json(tmp_path / "train.json")["runs"]] == ["1v1-idle"]


def test_bench_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="parts must be"):
        run_bench(["gpu"], tmp_path)
    with pytest.raises(ValueError, match="runs must be"):
        bench_train(tmp_path, runs=["5v5"])
    with pytest.raises(ValueError, match="minutes must map"):
        bench_train(tmp_path, minutes={"1v1-idle": 0})
    with pytest.raises(ValueError, match="threads must be"):
        bench_sim(tmp_path, threads=(0,))
    assert not any(tmp_path.iterdir())


@pytest.mark.slow  # a subprocess running every part: ~10 s on 2 loaded cores
def test_benchmarks_run_py_quick(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(RUN), "--quick", "--threads", "1", "--out", str(tmp_path)],
                            capture_output=True, text=True, check=False, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / "sim-compiled.json").exists()  # a quick run leaves the minutes of compiling out
    for part in ("sim", "train"):
        report = _strict_json(tmp_path / f"{part}.json")
        assert report["command"].startswith("python benchmarks/run.py --quick")
        assert report["quick"] is True
        assert "# marladona bench" in result.stdout
    assert [r["name"] for r in _strict_json(tmp_path / "train.json")["runs"]] == list(TRAIN_RUNS)
    assert "| 3v3 | 64 | 1 |" in result.stdout


def test_benchmarks_run_py_bad_parts_exit_2(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(RUN), "--parts", "sim,gpu", "--out", str(tmp_path)],
                            capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert "--parts must be" in result.stderr
