"""The benchmark of spec §6 and issue #8: simulator throughput beside VMAS football, and training at fixed CPU budgets.

Parts (:data:`PARTS`), each writing ``<out_dir>/<part>.json`` and ``<out_dir>/<part>.md`` (command line,
machine, date, git commit, load average, the table and a "targets" section):

- ``sim`` (:func:`bench_sim`): agent-steps per second (env-steps x all ``2T`` players) of our batched
  simulator for 1v1 and 3v3 at 1024/4096/16384 games, with 1 and 2 torch threads, random blue against a
  random red and against the heuristic red (:class:`marladona.heuristic.RoleBot`); VMAS football
  (``vmas==1.5.2``) with its red AI and random blue in the same process, interleaved window by window
  (ours random, ours heuristic, VMAS, ours random, ...) after a warm-up; the median of the windows and
  the median of the per-window ratios. Without ``vmas`` installed the VMAS columns say so.
- ``train`` (:func:`bench_train`): the runs of :data:`TRAIN_RUNS` (1v1 vs idle 5 min, 1v1 with the
  opponent curriculum 15 min, 3v3 vs idle 15 min of training time), each in ``<out_dir>/runs/<name>``
  and resumed from its checkpoint when interrupted, then evaluated (W/D/L with Wilson 95 % intervals,
  level 0) against its opponents, beside a random team against the same opponents; the training curve
  of each run (win/loss rate and reward terms vs env steps) as ``train_<name>.png``.

Note:
    VMAS 1.5.2 has no batched reset: ``Environment.reset_at(index)`` resets one game per call. The VMAS
    loop resets each finished game with ``reset_at(i, return_observations=False)`` after every step, and
    the time it spends there is measured and reported (``reset share``; the rate without it is in the
    JSON). Ours resets every finished game in one batched pass inside ``step``. Both start with their
    episode clocks staggered uniformly over the 375-step time-out (30 s at ours' 0.08 s; the same step
    count for VMAS), so that time-out resets run at their steady rate from the first window instead of
    all at once after 375 steps; goals come at whatever rate the play gives. The physics differ
    (VMAS: 0.1 s policy step, 2 substeps, holonomic discs; ours: 0.08 s, 4 substeps, the paper's robot
    and kick zone), so only the in-run ratios of a step of each are compared, never the dynamics.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PARTS = ("sim", "train")
"""The parts of the bench, in the order they run."""

SIM_TARGET = 3e5
"""Agent-steps/s our simulator should reach in 3v3 at 4096 games on 2 CPU cores (issue #8, spec 6.4)."""
VMAS_RATIO_ISSUE = 1.5
"""Our matched throughput over VMAS football's that issue #8 asks for."""
VMAS_RATIO_SPEC = 1.0
"""The same ratio as the spec (6.4) states it."""
VMAS_VERSION = "1.5.2"
"""The VMAS release the bench was written against (``pip install vmas==1.5.2``)."""


@dataclasses.dataclass(frozen=True)
class TrainRun:
    """One training run of the ``train`` part."""

    name: str
    preset: str
    """Train preset (:data:`marladona.train.TRAIN_PRESETS`)."""
    minutes: float
    """Training-time budget (rollout + learning, excluding evaluation) in minutes."""
    opponents: tuple[str, ...]
    """Evaluation opponents (player names), the target's first."""
    spec: str
    """What the issue asks of it."""


TRAIN_RUNS: dict[str, TrainRun] = {
    "1v1-idle": TrainRun("1v1-idle", "cpu-idle", 5.0, ("idle",), "1v1 vs idle, 5 min: >= 90 % wins vs idle"),
    "1v1-curriculum": TrainRun(
        "1v1-curriculum", "cpu-small", 15.0, ("heuristic:0.5", "heuristic:0.25", "idle"),
        "1v1, idle -> heuristic 0.25 -> 0.5, 15 min: >= 20 % wins, <= 50 % losses vs heuristic 0.5",
    ),
    "3v3-idle": TrainRun("3v3-idle", "cpu-3v3", 15.0, ("idle",), "3v3 vs idle, 15 min: learns to score"),
}  # fmt: skip
"""The runs of the ``train`` part (issue #8's budgets)."""


# -- pure arithmetic ----------------------------------------------------------------------------------
def agent_steps(env_steps: int, team_size: int) -> int:
    """Agent-steps of ``env_steps`` game steps of ``team_size`` a side: every one of the ``2 T`` players moves.

    Example:
        >>> agent_steps(1000, 3)
        6000
    """
    if team_size < 1:
        raise ValueError(f"team_size must be >= 1, got {team_size}")
    if env_steps < 0:
        raise ValueError(f"env_steps must be >= 0, got {env_steps}")
    return env_steps * 2 * team_size


def agent_steps_per_s(policy_steps: int, num_envs: int, team_size: int, seconds: float) -> float:
    """Throughput of ``policy_steps`` batched steps of ``num_envs`` games in ``seconds``: ``steps E 2T / s``.

    Example:
        >>> agent_steps_per_s(10, 4096, 3, 2.0)
        122880.0
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    return agent_steps(policy_steps * num_envs, team_size) / seconds


def _median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def read_log(path: Path) -> list[dict[str, Any]]:
    """The rows of a run's ``log.jsonl``, one per iteration (the last of repeats) in iteration order.

    A run interrupted after its last checkpoint logs iterations that the resumed run logs again; the
    later row is the one the checkpoint's training continued from.
    """
    if not path.is_file():
        return []
    rows: dict[int, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows[int(row["iteration"])] = row
    return [rows[i] for i in sorted(rows)]


# -- records ------------------------------------------------------------------------------------------
def _load() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _git() -> dict[str, Any]:
    """The commit of the source tree the package runs from and whether it has changes (None outside git)."""
    here = Path(__file__).parent

    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = run("rev-parse", "--short", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no", ".") if commit else None
    return {"git_commit": commit or None, "git_dirty": None if status is None else bool(status)}


def _clean(obj: Any) -> Any:
    """``obj`` with non-finite floats as None, tuples as lists (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_clean(obj), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _header(part: str, command: str, quick: bool) -> dict[str, Any]:
    from marladona.environment import collect

    return {
        "part": part, "quick": quick, "command": command, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": collect(), **_git(), "load_start": _load(),
    }  # fmt: skip


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """``torch.set_num_threads(n)`` inside the block, the previous count restored after it."""
    import torch

    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _bar(total: int, desc: str, progress: bool | None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=True if progress is False else None, file=sys.stderr)


# -- sim ----------------------------------------------------------------------------------------------
def vmas_version() -> str | None:
    """The installed VMAS version, None when ``vmas`` is not importable."""
    import importlib.util

    if importlib.util.find_spec("vmas") is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vmas")
    except PackageNotFoundError:  # pragma: no cover - importable but not installed as a distribution
        return "unknown"


class _OursSim:
    """Our env, random blue against ``red`` (``"random"`` or ``"heuristic"``), as the evaluation loop steps it."""

    def __init__(self, team_size: int, num_envs: int, red: str, seed: int, compile: bool = False) -> None:
        import torch

        from marladona.config import preset
        from marladona.env import SoccerEnv
        from marladona.players import make_player

        self.cfg = preset("cpu-1v1" if team_size == 1 else "cpu-3v3", num_envs=num_envs, max_team_size=team_size,
                          team_size_range=(team_size, team_size), seed=seed)  # fmt: skip
        self.env = SoccerEnv(self.cfg, final_obs=False, compile=compile)
        self.obs = self.env.reset(seed=seed)
        g = torch.Generator().manual_seed(seed)
        # staggered episode clocks: time-out resets run at their steady rate from the first window
        self.env.stagger_episode_clocks(g)
        self.blue, self.red = make_player("random", generator=g), make_player(red, generator=g)
        everything = torch.ones(num_envs, dtype=torch.bool)
        self.blue.reset(everything)
        self.red.reset(everything)
        self.goals = 0
        self.reset_s = 0.0  # batched inside step()

    def step(self) -> None:
        import torch

        from marladona.players import act_team

        st, cfg = self.env.state, self.cfg
        actions = torch.cat((act_team(self.blue, st, cfg, 0, self.obs), act_team(self.red, st, cfg, 1, self.obs)), 1)
        self.obs, _, term, trunc, _ = self.env.step(actions)
        done = term | trunc
        self.blue.reset(done)
        self.red.reset(done)
        self.goals += int(term.sum())


class _VmasSim:
    """VMAS football, its red AI on, random blue; finished games reset one by one with ``reset_at``."""

    def __init__(self, team_size: int, num_envs: int, seed: int, max_steps: int) -> None:
        import importlib

        import torch

        vmas = importlib.import_module("vmas")  # optional, untyped: pip install vmas==1.5.2
        kwargs: dict[str, Any] = {"n_blue_agents": team_size, "n_red_agents": team_size, "ai_red_agents": True}
        if team_size == 1:
            kwargs["observe_teammates"] = False  # VMAS's observation needs a teammate otherwise
        self.env = vmas.make_env("football", num_envs=num_envs, device="cpu", continuous_actions=True,
                                 max_steps=max_steps, seed=seed, terminated_truncated=True, **kwargs)  # fmt: skip
        self.num_envs = num_envs
        self.g = torch.Generator().manual_seed(seed)
        self.env.steps.copy_(torch.randint(0, max_steps, (num_envs,), generator=self.g))  # staggered, as ours
        self.ranges = [a.action.u_range_tensor for a in self.env.agents]  # the blue (policy) agents
        self.goals = 0
        self.reset_s = 0.0

    def step(self) -> None:
        import torch

        actions = [(torch.rand((self.num_envs, len(u)), generator=self.g) * 2 - 1) * u for u in self.ranges]
        _, _, term, trunc, _ = self.env.step(actions)
        self.goals += int(term.sum())
        t0 = time.perf_counter()
        for i in (term | trunc).nonzero().reshape(-1).tolist():
            self.env.reset_at(i, return_observations=False)
        self.reset_s += time.perf_counter() - t0


def _window(sim: Any, seconds: float, min_steps: int) -> dict[str, Any]:
    """Step ``sim`` for ``seconds`` (at least ``min_steps`` steps); steps, time, reset time, goals, load."""
    load = _load()
    goals0, reset0 = sim.goals, sim.reset_s
    steps, t0 = 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - t0 < seconds:
        sim.step()
        steps += 1
    return {"steps": steps, "seconds": time.perf_counter() - t0, "reset_s": sim.reset_s - reset0,
            "goals": sim.goals - goals0, "load": load}  # fmt: skip


def _summarize_sim(windows: list[dict[str, Any]], num_envs: int, team_size: int) -> dict[str, Any]:
    rates = [agent_steps_per_s(w["steps"], num_envs, team_size, w["seconds"]) for w in windows]
    no_reset = [agent_steps_per_s(w["steps"], num_envs, team_size, max(w["seconds"] - w["reset_s"], 1e-9))
                for w in windows]  # fmt: skip
    steps = sum(w["steps"] for w in windows)
    secs = sum(w["seconds"] for w in windows)
    for w, r in zip(windows, rates, strict=True):
        w["agent_steps_per_s"] = r
    return {
        "agent_steps_per_s": _median(rates), "min": min(rates), "max": max(rates),
        "env_steps_per_s": _median([r / (2 * team_size) for r in rates]),
        "agent_steps_per_s_excl_reset": _median(no_reset),
        "reset_share": sum(w["reset_s"] for w in windows) / secs,
        "goals_per_kstep": 1000 * sum(w["goals"] for w in windows) / (steps * num_envs), "windows": windows,
    }  # fmt: skip


def bench_sim(
    out_dir: str | Path,
    *,
    quick: bool = False,
    threads: Sequence[int] = (1, 2),
    team_sizes: Sequence[int] = (1, 3),
    num_envs: Sequence[int] | None = None,
    window_s: float | None = None,
    repeats: int | None = None,
    use_vmas: bool = True,
    compile: bool = False,
    seed: int = 0,
    progress: bool | None = None,
    command: str = "marladona bench --parts sim",
) -> dict[str, Any]:
    """Simulator throughput beside VMAS football; writes ``out_dir/sim.json`` and ``sim.md``.

    Args:
        out_dir: results folder.
        quick: 64 games, 0.15 s windows, 2 repetitions (a smoke test, not a measurement).
        threads: torch thread counts, each set around its cells and restored after.
        team_sizes: players a side (1..3).
        num_envs: games per batch (default 1024, 4096, 16384; quick: 64).
        window_s: seconds per timed window (default 3; quick 0.15); each window takes at least 2 steps.
        repeats: interleaved windows per simulator and cell (default 3; quick 2).
        use_vmas: run VMAS when it is installed (False: leave it out).
        compile: also time our env with ``SoccerEnv(compile=True)`` (heuristic red): torch.compile'd physics.
        seed: seed of every simulator and action draw.
        progress: a tqdm bar over the windows (None: when stderr is a terminal).
        command: the command line recorded in the report.

    Returns:
        The report written to ``sim.json``: ``rows`` (one per team size, games and threads, each with
        ``sims`` -> ``ours_random``, ``ours_heuristic``, ``vmas`` -> median ``agent_steps_per_s`` and
        the windows) and ``targets``.
    """
    num_envs = tuple(num_envs or ((64,) if quick else (1024, 4096, 16384)))
    window_s = window_s if window_s is not None else (0.15 if quick else 3.0)
    repeats = repeats if repeats is not None else (2 if quick else 3)
    if not threads or any(k < 1 for k in threads):
        raise ValueError(f"threads must be a non-empty list of integers >= 1, got {list(threads)}")
    if not team_sizes or any(not 1 <= t <= 3 for t in team_sizes):
        raise ValueError(f"team_sizes must be a non-empty list from 1, 2, 3, got {list(team_sizes)}")
    if any(n < 1 for n in num_envs):
        raise ValueError(f"num_envs must be integers >= 1, got {list(num_envs)}")
    if window_s <= 0 or repeats < 1:
        raise ValueError(f"window_s must be > 0 and repeats >= 1, got {window_s} and {repeats}")
    out_dir = Path(out_dir)
    report = _header("sim", command, quick)
    vmas = vmas_version() if use_vmas else None
    report.update({"vmas": vmas, "vmas_skipped": "not installed" if use_vmas and vmas is None else
                   (None if use_vmas else "left out"), "window_s": window_s, "repeats": repeats, "seed": seed})  # fmt: skip
    from marladona.config import SoccerConfig

    max_steps = SoccerConfig().max_episode_steps
    names = ["ours_random", "ours_heuristic"] + (["ours_compiled"] if compile else []) + (["vmas"] if vmas else [])
    cells = [(k, t, n) for k in threads for t in team_sizes for n in num_envs]
    bar = _bar(len(cells) * len(names) * (repeats + 1), "bench sim", progress)
    rows = []
    started = time.time()
    for k, t, n in cells:
        with torch_threads(k):
            sims: dict[str, Any] = {"ours_random": _OursSim(t, n, "random", seed),
                                    "ours_heuristic": _OursSim(t, n, "heuristic", seed)}  # fmt: skip
            if compile:
                sims["ours_compiled"] = _OursSim(t, n, "heuristic", seed, compile=True)
            if vmas:
                sims["vmas"] = _VmasSim(t, n, seed, max_steps)
            for sim in sims.values():  # warm-up: allocator, first-call paths
                _window(sim, window_s / 2, 2)
                bar.update(1)
            windows: dict[str, list[dict[str, Any]]] = {name: [] for name in sims}
            for _ in range(repeats):
                for name, sim in sims.items():
                    windows[name].append(_window(sim, window_s, 2))
                    bar.update(1)
            del sims
        row: dict[str, Any] = {"setting": f"{t}v{t}", "team_size": t, "num_envs": n, "threads": k,
                               "sims": {name: _summarize_sim(w, n, t) for name, w in windows.items()}}  # fmt: skip
        for ours in ("random", "heuristic", "compiled"):
            if f"ours_{ours}" not in windows:
                row[f"ratio_{ours}_vs_vmas"] = None
                continue
            ratios = [a["agent_steps_per_s"] / b["agent_steps_per_s"]
                      for a, b in zip(windows[f"ours_{ours}"], windows["vmas"], strict=True)] if vmas else []  # fmt: skip
            row[f"ratio_{ours}_vs_vmas"] = _median(ratios)
        loads = [w["load"] for ws in windows.values() for w in ws if w["load"] is not None]
        row["load"] = [min(loads), max(loads)] if loads else None
        rows.append(row)
    bar.close()
    report.update({"rows": rows, "targets": sim_targets(rows, vmas), "load_end": _load(),
                   "wall_s": time.time() - started})  # fmt: skip
    _write_json(out_dir / "sim.json", report)
    (out_dir / "sim.md").write_text(markdown_sim(report), encoding="utf-8")
    return report


def sim_targets(rows: Sequence[dict[str, Any]], vmas: str | None) -> list[dict[str, Any]]:
    """The throughput targets on the 3v3 @ 4096 cells: >= :data:`SIM_TARGET` agent-steps/s (each red), and
    heuristic-red / VMAS >= :data:`VMAS_RATIO_ISSUE` (issue) and >= :data:`VMAS_RATIO_SPEC` (spec), per thread count.

    ``met`` is None when the cell was not measured (a quick run, or VMAS absent for the ratios).
    """
    cells = [r for r in rows if r["team_size"] == 3 and r["num_envs"] == 4096]
    out: list[dict[str, Any]] = []
    for red in ("random", "heuristic"):
        what = f"3v3 @ 4096 games, random blue vs {red} red: >= {SIM_TARGET:.0e} agent-steps/s"
        if not cells:
            out.append({"target": what, "measured": "not measured (no 3v3 @ 4096 cell in this run)", "met": None})
            continue
        best = max(cells, key=lambda r: r["sims"][f"ours_{red}"]["agent_steps_per_s"])
        text = "; ".join(f"{r['threads']} thread(s): {_k(r['sims'][f'ours_{red}']['agent_steps_per_s'])} "
                         f"(load {_load_text(r['load'])})" for r in cells)  # fmt: skip
        out.append({"target": what, "measured": text,
                    "met": best["sims"][f"ours_{red}"]["agent_steps_per_s"] >= SIM_TARGET})  # fmt: skip
    for bound, source in ((VMAS_RATIO_ISSUE, "issue #8"), (VMAS_RATIO_SPEC, "spec 6.4")):
        what = f"3v3 @ 4096, heuristic red / VMAS AI red >= {bound:.1f}x ({source})"
        if not cells:
            out.append({"target": what, "measured": "not measured (no 3v3 @ 4096 cell in this run)", "met": None})
            continue
        for r in cells:
            ratio = r["ratio_heuristic_vs_vmas"]
            if ratio is None:
                out.append({"target": f"{what}, {r['threads']} thread(s)",
                            "measured": "not measured (vmas not installed)" if vmas is None else "-", "met": None})  # fmt: skip
            else:
                out.append({"target": f"{what}, {r['threads']} thread(s)",
                            "measured": f"{ratio:.2f}x (load {_load_text(r['load'])})", "met": ratio >= bound})  # fmt: skip
    for r in cells:
        ratio = r.get("ratio_compiled_vs_vmas")
        if ratio is not None:
            out.append({"target": f"3v3 @ 4096, compiled physics (SoccerEnv(compile=True)), heuristic red / VMAS "
                        f">= {VMAS_RATIO_ISSUE:.1f}x (issue #8), {r['threads']} thread(s)",
                        "measured": f"{ratio:.2f}x, {_k(r['sims']['ours_compiled']['agent_steps_per_s'])} agent-steps/s "
                        f"(load {_load_text(r['load'])})", "met": ratio >= VMAS_RATIO_ISSUE})  # fmt: skip
    matched = [r["ratio_heuristic_vs_vmas"] for r in rows if r["ratio_heuristic_vs_vmas"] is not None]
    if matched:
        out.append({"target": f"every cell, heuristic red / VMAS >= {VMAS_RATIO_SPEC:.1f}x (spec 6.4)",
                    "measured": f"{min(matched):.2f}x to {max(matched):.2f}x over {len(matched)} cells",
                    "met": min(matched) >= VMAS_RATIO_SPEC})  # fmt: skip
    return out


# -- train --------------------------------------------------------------------------------------------
def train_config(run: TrainRun, quick: bool, seed: int) -> Any:
    """The TrainConfig of ``run`` (quick: 16 games, 16 steps per iteration)."""
    from marladona.train import make_train_config

    if quick:
        cfg = make_train_config(run.preset, num_envs=16, seed=seed, checkpoint_every=1)
        return dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, num_steps_per_env=16))
    return make_train_config(run.preset, seed=seed, checkpoint_every=10)


def _run_key(run: TrainRun, cfg: Any, minutes: float, iterations: int | None, episodes: int, quick: bool) -> Any:
    from marladona._version import __version__

    return _clean({"run": dataclasses.asdict(run), "minutes": minutes, "iterations": iterations, "quick": quick,
                   "episodes": episodes, "config": cfg.to_dict(), "version": __version__})  # fmt: skip


def _train_one(run: TrainRun, out_dir: Path, *, minutes: float, quick: bool, episodes: int, seed: int,
               fresh: bool, progress: bool | None) -> dict[str, Any]:  # fmt: skip
    """Train (or resume) one run, evaluate it; cached in ``runs/<name>/bench_result.json``."""
    import torch

    from marladona.checkpoint import load_checkpoint
    from marladona.evaluate import evaluate
    from marladona.train import resume_or_start

    run_dir = out_dir / "runs" / run.name
    cfg = train_config(run, quick, seed)
    iterations = 2 if quick else None
    key = _run_key(run, cfg, minutes, iterations, episodes, quick)
    cache = run_dir / "bench_result.json"
    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    if cache.is_file():
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            return {**saved["result"], "cached": True}
    ckpt = run_dir / "checkpoint.pt"
    resumed = ckpt.is_file()
    if resumed:
        saved_cfg = load_checkpoint(ckpt)["config"]
        mine = cfg.to_dict()
        diff = sorted(k for k in mine if k != "checkpoint_every" and saved_cfg.get(k) != mine[k])
        if diff:
            raise ValueError(f"{str(run_dir)!r} holds a run of another configuration (differs in {diff}): "
                             "pass fresh=True (--fresh) or remove the folder")  # fmt: skip
    load0, t0 = _load(), time.time()
    trainer = resume_or_start(cfg, run_dir, resume=resumed, progress=progress)
    last = trainer.learn(iterations=iterations, minutes=minutes)
    t = cfg.env.max_team_size
    eval_cfg = cfg.env.replace(episode_length_s=2.0) if quick else cfg.env
    evals: dict[str, Any] = {}
    baseline: dict[str, Any] = {}
    for opp in run.opponents:
        for who, table in ((str(ckpt), evals), ("random", baseline)):
            res = evaluate(who, opp, team_sizes=((t, t),), episodes=episodes, level=0, seed=seed + 1, cfg=eval_cfg,
                           progress=bool(progress))  # fmt: skip
            table[opp] = res["per_size"][f"{t}v{t}"]
    result = {
        "name": run.name, "preset": run.preset, "spec": run.spec, "minutes": minutes, "team_size": t,
        "num_envs": cfg.env.num_envs, "iterations": trainer.iteration, "env_steps": trainer.env_steps,
        "train_s": trainer.elapsed, "final_opponent": trainer.opponent.name,
        "promotions": list(trainer.opponent.promotions), "last_row": last, "eval": evals, "baseline": baseline,
        "episodes": episodes, "threads": torch.get_num_threads(), "resumed": resumed,
        "load": [load0, _load()], "wall_s": time.time() - t0,
    }  # fmt: skip
    _write_json(cache, {"key": key, "result": result})
    return {**_clean(result), "cached": False}


def bench_train(
    out_dir: str | Path,
    *,
    quick: bool = False,
    runs: Sequence[str] | None = None,
    minutes: dict[str, float] | None = None,
    episodes: int | None = None,
    threads: int = 2,
    seed: int = 0,
    fresh: bool = False,
    progress: bool | None = None,
    command: str = "marladona bench --parts train",
) -> dict[str, Any]:
    """Train the runs of :data:`TRAIN_RUNS` at fixed CPU budgets and evaluate them; writes ``train.json``/``.md``.

    Each run trains in ``out_dir/runs/<name>`` with :func:`marladona.train.resume_or_start` (resuming
    from its checkpoint when one exists), for ``minutes`` of training time counted by the trainer
    (evaluation excluded); then :func:`marladona.evaluate.evaluate` plays ``episodes`` games at level 0
    against each of its opponents, and a random team plays the same games as a baseline. A finished
    run (``runs/<name>/bench_result.json`` of the same settings) is reported without retraining.

    Args:
        out_dir: results folder.
        quick: 16 games, 2 iterations of 16 steps, 16 evaluation games of 2 s (a smoke test).
        runs: names from :data:`TRAIN_RUNS` (default all).
        minutes: budget per run name (default the issue's: 5, 15, 15; quick: 0.5 at most).
        episodes: evaluation games per opponent (default 1024; quick 16).
        threads: torch threads for training and evaluation (the issue's budgets are on 2 cores).
        seed: training seed (evaluation uses ``seed + 1``).
        fresh: delete the runs' folders first.
        progress: tqdm bars (None: when stderr is a terminal).
        command: the command line recorded in the report.

    Returns:
        The report written to ``train.json``: ``runs`` (per run: iterations, env steps, ``eval`` and
        ``baseline`` W/D/L per opponent with Wilson intervals, ``curve`` PNG name) and ``targets``.
    """
    names = list(runs) if runs is not None else list(TRAIN_RUNS)
    unknown = [n for n in names if n not in TRAIN_RUNS]
    if unknown or not names:
        raise ValueError(f"runs must be a non-empty list from {', '.join(TRAIN_RUNS)}, got {names}")
    budgets = {n: (0.5 if quick else TRAIN_RUNS[n].minutes) for n in names}
    for n, m in (minutes or {}).items():
        if n not in TRAIN_RUNS or not (isinstance(m, (int, float)) and m > 0):
            raise ValueError(f"minutes must map run names to numbers > 0, got {n!r}: {m!r}")
        budgets[n] = float(m)
    episodes = episodes if episodes is not None else (16 if quick else 1024)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    out_dir = Path(out_dir)
    report = _header("train", command, quick)
    report.update({"threads": threads, "seed": seed, "episodes": episodes, "level": 0})
    started = time.time()
    results = []
    bar = _bar(len(names), "bench train", progress)
    with torch_threads(threads):
        for n in names:
            bar.set_postfix_str(n)
            res = _train_one(TRAIN_RUNS[n], out_dir, minutes=budgets[n], quick=quick, episodes=episodes, seed=seed,
                             fresh=fresh, progress=progress)  # fmt: skip
            res["curve"] = plot_curve(read_log(out_dir / "runs" / n / "log.jsonl"), out_dir / f"train_{n}.png", n)
            results.append(res)
            bar.update(1)
    bar.close()
    report.update({"runs": results, "targets": train_targets(results), "load_end": _load(),
                   "wall_s": time.time() - started})  # fmt: skip
    _write_json(out_dir / "train.json", report)
    (out_dir / "train.md").write_text(markdown_train(report), encoding="utf-8")
    return report


def plot_curve(rows: Sequence[dict[str, Any]], path: Path, title: str) -> str | None:
    """Win/loss rate and the reward terms vs env steps as a PNG (matplotlib, Agg); its file name, or None
    without matplotlib (``pip install 'marladona[bench]'``) or without rows."""
    if not rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("no training curve: matplotlib is missing (pip install 'marladona[bench]')")
        return None
    x = [r["env_steps"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for key, label in (("win_rate", "wins"), ("loss_rate", "losses")):
        ax1.plot(x, [r.get(key) if r.get(key) is not None else float("nan") for r in rows], label=label)
    for r in rows:
        if r.get("promoted"):
            ax1.axvline(r["env_steps"], color="grey", lw=0.8, ls="--")
            ax1.text(r["env_steps"], 1.02, str(r.get("opponent", "")), fontsize=7, rotation=90, va="bottom")
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_ylabel("rate (training episodes)")
    ax1.legend(loc="center right")
    for key in sorted(k for k in rows[-1] if k.startswith("reward/")):
        ax2.plot(x, [r.get(key, float("nan")) for r in rows], label=key.split("/", 1)[1])
    ax2.set_ylabel("reward per agent-step")
    ax2.set_xlabel("env steps")
    ax2.legend(fontsize=7, ncol=2)
    fig.suptitle(f"{title}: opponent {rows[-1].get('opponent', '-')} at the end")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def _rate(r: dict[str, Any], key: str) -> str:
    lo, hi = r[f"{key}_ci"]
    return f"{r[f'{key}_rate']:.1%} [{lo:.1%}, {hi:.1%}]"


def train_targets(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's (and spec 6.4's) training targets, measured on the runs present."""
    by = {r["name"]: r for r in results}
    out: list[dict[str, Any]] = []
    r = by.get("1v1-idle")
    if r:
        e = r["eval"]["idle"]
        out.append({"target": "1v1, 5 min vs idle: >= 90 % wins vs idle", "measured": _rate(e, "win"),
                    "met": e["win_rate"] >= 0.9})  # fmt: skip
    r = by.get("1v1-curriculum")
    if r:
        for opp, win, loss, source in (
            ("heuristic:0.5", 0.2, 0.5, "issue #8"),
            ("heuristic:0.25", 0.3, 0.4, "spec 6.4"),
        ):
            e = r["eval"].get(opp)
            if e is None:
                continue
            out.append({"target": f"1v1 curriculum, 15 min: >= {win:.0%} wins, <= {loss:.0%} losses vs {opp} ({source})",
                        "measured": f"wins {_rate(e, 'win')}, losses {_rate(e, 'loss')}",
                        "met": e["win_rate"] >= win and e["loss_rate"] <= loss})  # fmt: skip
    r = by.get("3v3-idle")
    if r:
        e, b = r["eval"]["idle"], r["baseline"]["idle"]
        out.append({"target": "3v3, 15 min vs idle: learns to score (wins' lower bound above a random team's upper)",
                    "measured": f"wins {_rate(e, 'win')} vs random team {_rate(b, 'win')}",
                    "met": e["wins"] > 0 and e["win_ci"][0] > b["win_ci"][1]})  # fmt: skip
    return out


# -- driver -------------------------------------------------------------------------------------------
def run_bench(
    parts: Sequence[str] = PARTS,
    out_dir: str | Path = "results",
    quick: bool = False,
    threads: Sequence[int] = (1, 2),
    *,
    train_threads: int | None = None,
    minutes: dict[str, float] | None = None,
    episodes: int | None = None,
    use_vmas: bool = True,
    seed: int = 0,
    fresh: bool = False,
    progress: bool | None = None,
    command: str = "marladona bench",
) -> dict[str, dict[str, Any]]:
    """Run the ``parts`` (:data:`PARTS`) of the bench into ``out_dir``; ``{part: its report}``.

    ``threads`` are the sim part's thread counts, ``train_threads`` the train part's (default 2, quick 1:
    tiny batches on two threads of a loaded machine crawl); the other arguments are those of
    :func:`bench_sim` and :func:`bench_train`.

    Raises:
        ValueError: an unknown part (and the parts' own argument checks).
    """
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ValueError(f"parts must be a non-empty list from {', '.join(PARTS)}, got {list(parts)}")
    reports: dict[str, dict[str, Any]] = {}
    for part in PARTS:
        if part not in parts:
            continue
        if part == "sim":
            reports[part] = bench_sim(out_dir, quick=quick, threads=threads, use_vmas=use_vmas, compile=not quick, seed=seed,
                                      progress=progress, command=command)  # fmt: skip
        else:
            reports[part] = bench_train(out_dir, quick=quick, minutes=minutes, episodes=episodes,
                                        threads=train_threads or (1 if quick else 2),
                                        seed=seed, fresh=fresh, progress=progress, command=command)  # fmt: skip
    return reports


# -- Markdown -----------------------------------------------------------------------------------------
def _k(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.0f}k" if v >= 1e4 else f"{v / 1e3:.1f}k"


def _load_text(load: Sequence[float | None] | None) -> str:
    vals = [v for v in (load or []) if v is not None]
    if not vals:
        return "-"
    lo, hi = min(vals), max(vals)
    return f"{lo:.1f}" if lo == hi else f"{lo:.1f}-{hi:.1f}"


def _ratio(x: float | None) -> str:
    return f"{x:.2f}x" if x is not None else "n/a"


def _met(m: bool | None) -> str:
    return "n/a" if m is None else ("met" if m else "not met")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _targets_md(targets: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["## Targets", "", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {_cell(t['target'])} | {_cell(str(t['measured']))} | {_met(t['met'])} |" for t in targets]
    return [*lines, ""]


def _record_md(report: dict[str, Any]) -> list[str]:
    m = report["machine"]
    commit = report.get("git_commit") or "-"
    if report.get("git_dirty"):
        commit += " (with uncommitted changes)"
    return [
        f"Command: `{report['command']}`  ", f"Date: {report['date']}  ",
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs, python {m['python']}, torch {m['torch']}  ",
        f"marladona {m['version']}, commit {commit}; load average (1 min) {report['load_start']} at the start, "
        f"{report['load_end']} at the end; {report['wall_s']:.0f} s", "",
    ]  # fmt: skip


def markdown_sim(report: dict[str, Any]) -> str:
    """The Markdown report of the sim part: the side-by-side table, the targets, the record."""
    lines = ["# marladona bench: simulator throughput beside VMAS football", ""]
    if report["quick"]:
        lines += ["**Quick smoke run: tiny batches and windows; these numbers are not a measurement.**", ""]
    vmas = report["vmas"]
    lines += [
        "Agent-steps per second (env-steps x all 2T players), median of "
        f"{report['repeats']} interleaved windows of {report['window_s']:g} s after a warm-up; ratios are the "
        "median of the per-window ratios (same process, back to back). Blue plays random actions everywhere; "
        "'ours, heuristic red' against VMAS's red AI is the matched pair. VMAS "
        + (f"{vmas}: finished games reset one by one (`reset_at`), time included; 'reset share' is the part of "
           "its time spent there." if vmas else f"columns: {report['vmas_skipped']} (`pip install vmas=={VMAS_VERSION}`)."),
        "",
    ]  # fmt: skip
    header = ["setting", "games", "threads", "ours, random red", "ours, heuristic red", "VMAS, AI red",
              "VMAS excl. resets", "VMAS reset share", "heuristic / VMAS", "random / VMAS",
              "ours compiled, heuristic red", "compiled / VMAS",
              "goals/1k steps (ours h / VMAS)", "load (1 min)"]  # fmt: skip
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in report["rows"]:
        s = r["sims"]
        v = s.get("vmas")
        na = "n/a"
        goals = f"{s['ours_heuristic']['goals_per_kstep']:.1f} / " + (f"{v['goals_per_kstep']:.1f}" if v else na)
        cells = [r["setting"], str(r["num_envs"]), str(r["threads"]), _k(s["ours_random"]["agent_steps_per_s"]),
                 _k(s["ours_heuristic"]["agent_steps_per_s"]), _k(v["agent_steps_per_s"]) if v else na,
                 _k(v["agent_steps_per_s_excl_reset"]) if v else na, f"{v['reset_share']:.0%}" if v else na,
                 _ratio(r["ratio_heuristic_vs_vmas"]), _ratio(r["ratio_random_vs_vmas"]),
                 _k(s["ours_compiled"]["agent_steps_per_s"]) if "ours_compiled" in s else na,
                 _ratio(r.get("ratio_compiled_vs_vmas")), goals, _load_text(r["load"])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *_targets_md(report["targets"]), *_record_md(report)]
    return "\n".join(lines)


def markdown_train(report: dict[str, Any]) -> str:
    """The Markdown report of the train part: W/D/L per run and opponent, the targets, the curves, the record."""
    lines = ["# marladona bench: training at fixed CPU budgets", ""]
    if report["quick"]:
        lines += ["**Quick smoke run: a few iterations on tiny batches; these numbers are not a measurement.**", ""]
    lines += [
        f"Each run trains for its budget of training time (rollout + PPO, {report['threads']} torch thread(s)), "
        f"then plays {report['episodes']} games per opponent at field level 0 (deterministic policy, each game's "
        "first episode; a win = scored first within 30 s, a draw = time-out); Wilson 95 % intervals. "
        "'random' is a team of uniformly random actions against the same opponent.", "",
    ]  # fmt: skip
    header = ["run", "preset", "budget", "iterations", "env steps", "final opponent", "vs", "win", "draw", "loss",
              "random team: win / loss"]  # fmt: skip
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in report["runs"]:
        for i, (opp, e) in enumerate(r["eval"].items()):
            b = r["baseline"][opp]
            head = ([r["name"], r["preset"], f"{r['minutes']:g} min", str(r["iterations"]), f"{r['env_steps']:.3g}",
                     r["final_opponent"]] if i == 0 else [""] * 6)  # fmt: skip
            cells = [*head, opp, _rate(e, "win"), _rate(e, "draw"), _rate(e, "loss"),
                     f"{b['win_rate']:.1%} / {b['loss_rate']:.1%}"]  # fmt: skip
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append("")
    lines += _targets_md(report["targets"])
    for r in report["runs"]:
        flags = ", ".join(f for f, on in (("resumed", r.get("resumed")), ("reported from its finished run",
                                                                          r.get("cached"))) if on)  # fmt: skip
        lines.append(f"- **{r['name']}** ({r['spec']}): {r['train_s']:.0f} s of training"
                     + (f", {flags}" if flags else "") + ".")  # fmt: skip
        if r.get("promotions"):
            lines.append("  Promotions: " + "; ".join(f"iteration {p['iteration']} from {p['from']}"
                                                      for p in r["promotions"]) + ".")  # fmt: skip
        if r.get("curve"):
            lines += ["", f"  ![{r['name']}]({r['curve']})"]
    lines += ["", *_record_md(report)]
    return "\n".join(lines)
