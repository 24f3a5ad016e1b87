"""The training parts of the benchmark (issue #8): training runs at fixed CPU budgets, evaluated with Wilson intervals.

The runs of :data:`TRAIN_RUNS` (1v1 vs idle 5 min, 1v1 with the opponent curriculum 15 min, 3v3 vs idle
15 min of training time) each train in ``<out_dir>/runs/<name>``, resumed from their checkpoint when
interrupted, then play W/D/L games (level 0) against their opponents beside a random team against the
same opponents; the training curve of each run is drawn as ``train_<name>.png``.

The issue caps each bench part at 10 minutes but trains two of its runs for 15, so a run's budget is
split over :attr:`TrainRun.parts` bench parts (:data:`TRAIN_PARTS`: ``train-1v1-idle``,
``train-1v1-curriculum-1of2``, ``train-1v1-curriculum-2of2``, ...): part ``k`` of ``n`` resumes the
run's checkpoint and trains it to ``k/n`` of its budget, and the last part evaluates it. Every part
merges its run into the one training record, ``train.json`` / ``train.md``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from marladona.bench_record import (
    commit_text,
    load_average,
    md_cell,
    progress_bar,
    read_log,
    record_markdown,
    report_header,
    strict_json_value,
    targets_markdown,
    torch_threads,
    write_json,
)

logger = logging.getLogger(__name__)


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
    parts: int = 1
    """Bench parts the budget is split over, each resuming the last one's checkpoint (each part must stay
    under the issue's 10 minutes, evaluation included)."""


TRAIN_RUNS: dict[str, TrainRun] = {
    "1v1-idle": TrainRun("1v1-idle", "cpu-idle", 5.0, ("idle",), "1v1 vs idle, 5 min: >= 90 % wins vs idle"),
    "1v1-curriculum": TrainRun(
        "1v1-curriculum", "cpu-small", 15.0, ("heuristic:0.5", "heuristic:0.25", "idle"),
        "1v1, idle -> heuristic 0.25 -> 0.5, 15 min: >= 20 % wins, <= 50 % losses vs heuristic 0.5", parts=2,
    ),
    "3v3-idle": TrainRun("3v3-idle", "cpu-3v3", 15.0, ("idle",), "3v3 vs idle, 15 min: learns to score", parts=2),
}  # fmt: skip
"""The training runs of the bench (issue #8's budgets)."""


def part_name(run: TrainRun, k: int) -> str:
    """The bench part that trains ``run`` through its ``k``-th share of the budget."""
    return f"train-{run.name}" if run.parts == 1 else f"train-{run.name}-{k}of{run.parts}"


TRAIN_PARTS: dict[str, tuple[str, int]] = {
    part_name(run, k): (run.name, k) for run in TRAIN_RUNS.values() for k in range(1, run.parts + 1)
}
"""The training parts of the bench in the order they run: ``{part: (run name, k)}``; part ``k`` of a run's
``parts`` trains it to ``k/parts`` of its budget, the last one evaluates it."""

ZERO_SHOT: dict[str, tuple[int, ...]] = {"3v3-idle": (4, 5)}
"""Team sizes a run's policy also plays without training for them (the paper's zero-shot 4v4 and 5v5),
against the run's first opponent, on the same field."""


def train_config(run: TrainRun, quick: bool, seed: int) -> Any:
    """The TrainConfig of ``run`` (quick: 16 games, 16 steps per iteration)."""
    from marladona.train import make_train_config

    if quick:
        cfg = make_train_config(run.preset, num_envs=16, seed=seed, checkpoint_every=1)
        return dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, num_steps_per_env=16))
    return make_train_config(run.preset, seed=seed, checkpoint_every=10)


def _run_key(run: TrainRun, cfg: Any, minutes: float, iterations: int | None, episodes: int, quick: bool) -> Any:
    from marladona._version import __version__

    return strict_json_value({"run": dataclasses.asdict(run), "minutes": minutes, "iterations": iterations, "quick": quick,
                   "episodes": episodes, "config": cfg.to_dict(), "version": __version__})  # fmt: skip


def _share(total: float | int | None, k: int, n: int) -> Any:
    """``k/n`` of a budget: minutes as a float, iterations rounded up (None stays None)."""
    if total is None:
        return None
    return math.ceil(total * k / n) if isinstance(total, int) else total * k / n


def _train_one(run: TrainRun, out_dir: Path, *, minutes: float, quick: bool, episodes: int, seed: int,
               fresh: bool, progress: bool | None, stage: int | None = None,
               record: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Train (or resume) one run and evaluate it; a finished run is cached in ``runs/<name>/bench_result.json``.

    ``stage`` ``k`` (of ``run.parts``) trains only to ``k/parts`` of the budget (minutes, or the quick
    mode's iterations), continuing where stage ``k - 1`` stopped (refused when it has not run), and
    evaluates the run only at the last stage; None trains the whole budget. ``fresh`` is honoured by a
    first stage (or None) only: a later one continues the run. ``record``: command, date and commit of
    the call, kept in the result.
    """
    import torch

    from marladona.checkpoint import load_checkpoint
    from marladona.train import resume_or_start

    n = run.parts
    k = n if stage is None else stage  # in 1..n, checked by bench_train
    run_dir = out_dir / "runs" / run.name
    cfg = train_config(run, quick, seed)
    iterations = 2 if quick else None
    key = _run_key(run, cfg, minutes, iterations, episodes, quick)
    cache = run_dir / "bench_result.json"
    if fresh and run_dir.exists() and (stage is None or stage == 1):
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
    elif stage is not None and k > 1:
        raise ValueError(f"bench part {part_name(run, k)} continues the run that {part_name(run, k - 1)} trains, "
                         f"but {str(run_dir)!r} holds no checkpoint: run {part_name(run, k - 1)} first")  # fmt: skip
    load0, t0 = load_average(), time.time()
    trainer = resume_or_start(cfg, run_dir, resume=resumed, progress=progress)
    if stage is not None and k > 1:
        done_it, done_min = _share(iterations, k - 1, n), _share(minutes, k - 1, n)
        if not ((done_it is not None and trainer.iteration >= done_it) or trainer.elapsed >= done_min * 60):
            raise ValueError(f"bench part {part_name(run, k)} continues where {part_name(run, k - 1)} stops "
                             f"({done_min:g} min of training), but the run in {str(run_dir)!r} has trained "
                             f"{trainer.elapsed / 60:.2f} min: run {part_name(run, k - 1)} first")  # fmt: skip
    last = trainer.learn(iterations=_share(iterations, k, n), minutes=_share(minutes, k, n))
    result: dict[str, Any] = {
        "name": run.name, "preset": run.preset, "spec": run.spec, "minutes": minutes,
        "team_size": cfg.env.max_team_size, "num_envs": cfg.env.num_envs, "iterations": trainer.iteration,
        "env_steps": trainer.env_steps, "train_s": trainer.elapsed, "final_opponent": trainer.opponent.name,
        "promotions": list(trainer.opponent.promotions), "last_row": last, "episodes": episodes,
        "threads": torch.get_num_threads(), "resumed": resumed, "stage": [k, n], "record": record or {},
    }  # fmt: skip
    if k < n:
        result.update({"status": "training", "load": [load0, load_average()], "wall_s": time.time() - t0})
        return {**strict_json_value(result), "cached": False}
    t = cfg.env.max_team_size
    evals: dict[str, Any] = {}
    baseline: dict[str, Any] = {}
    for opp in run.opponents:
        mine, rand = _policy_and_random(ckpt, opp, ((t, t),), cfg=cfg.env, quick=quick, episodes=episodes, seed=seed,
                                        progress=progress)  # fmt: skip
        evals[opp], baseline[opp] = mine[f"{t}v{t}"], rand[f"{t}v{t}"]
    result.update({"status": "finished", "eval": evals, "baseline": baseline, "load": [load0, load_average()],
                   "wall_s": time.time() - t0})  # fmt: skip
    write_json(cache, {"key": key, "result": result})
    return {**strict_json_value(result), "cached": False}


def _policy_and_random(ckpt: Path, opponent: str, teams: tuple[tuple[int, int], ...], *, cfg: Any, quick: bool,
                       episodes: int, seed: int, progress: bool | None) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """W/D/L per team size of the checkpoint's policy and of a random team against ``opponent`` (level 0, seed
    ``seed + 1``; the quick mode plays 2 s games)."""
    from marladona.evaluate import evaluate

    eval_cfg = cfg.replace(episode_length_s=2.0) if quick else cfg
    mine, rand = (evaluate(who, opponent, team_sizes=teams, episodes=episodes, level=0, seed=seed + 1, cfg=eval_cfg,
                           progress=bool(progress))["per_size"] for who in (str(ckpt), "random"))  # fmt: skip
    return mine, rand


def zero_shot(run: TrainRun, out_dir: Path, sizes: Sequence[int], *, quick: bool, episodes: int, seed: int,
              progress: bool | None) -> dict[str, Any]:  # fmt: skip
    """W/D/L of ``run``'s trained policy at team sizes it never trained for, beside a random team.

    The policy's entity encoders pool over any number of players, so the checkpoint plays ``TvT`` for
    each ``T`` in ``sizes`` unchanged (:class:`marladona.players.PolicyPlayer` resizes its slots)
    against the run's first opponent at level 0, seed ``seed + 1`` as in the run's own evaluation.
    Cached in ``runs/<name>/zero_shot.json`` for the same checkpoint iteration and settings.
    """
    from marladona.checkpoint import load_checkpoint

    run_dir = out_dir / "runs" / run.name
    ckpt = run_dir / "checkpoint.pt"
    opponent = run.opponents[0]
    from marladona._version import __version__

    cfg = train_config(run, quick, seed).env
    key = {"iteration": int(load_checkpoint(ckpt)["iteration"]), "sizes": list(sizes), "episodes": episodes,
           "seed": seed, "opponent": opponent, "quick": quick, "version": __version__,
           "env": strict_json_value(dataclasses.asdict(cfg))}  # fmt: skip
    cache = run_dir / "zero_shot.json"
    if cache.is_file():
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            return {**saved["result"], "cached": True}
    mine, rand = _policy_and_random(ckpt, opponent, tuple((t, t) for t in sizes), cfg=cfg, quick=quick,
                                    episodes=episodes, seed=seed, progress=progress)  # fmt: skip
    result = {"opponent": opponent, "trained_sizes": list(cfg.team_size_range), "policy": mine, "random": rand}
    write_json(cache, {"key": key, "result": result})
    return {**strict_json_value(result), "cached": False}


PART_CAP_S = 600.0
"""The issue's cap on the wall time of one bench part (10 minutes), a target of the training record."""


def bench_train(
    out_dir: str | Path,
    *,
    quick: bool = False,
    runs: Sequence[str] | None = None,
    stages: dict[str, int] | None = None,
    minutes: dict[str, float] | None = None,
    episodes: int | None = None,
    threads: int = 2,
    seed: int = 0,
    fresh: bool = False,
    progress: bool | None = None,
    command: str = "python benchmarks/run.py --parts train",
) -> dict[str, Any]:
    """Train the runs of :data:`TRAIN_RUNS` at fixed CPU budgets and evaluate them; writes ``train.json``/``.md``.

    Each run trains in ``out_dir/runs/<name>`` with :func:`marladona.train.resume_or_start` (resuming
    from its checkpoint when one exists), for ``minutes`` of training time counted by the trainer
    (evaluation excluded); then :func:`marladona.evaluate.evaluate` plays ``episodes`` games at level 0
    against each of its opponents, and a random team plays the same games as a baseline. A finished
    run (``runs/<name>/bench_result.json`` of the same settings) is reported without retraining.

    With ``stages`` a run trains only through one of its bench parts (:data:`TRAIN_PARTS`): stage ``k``
    of :attr:`TrainRun.parts` trains to ``k/parts`` of the budget from where stage ``k - 1`` stopped, and
    only the last stage evaluates. The runs of this call replace their entries in an existing
    ``train.json`` of the same settings (quick, seed, episodes, threads); the other runs' entries stay,
    each with the command, date and commit that wrote it. The wall time of each part a run took is
    kept in ``runs/<name>/parts.json`` and reported against the issue's 10 minutes.

    Args:
        out_dir: results folder.
        quick: 16 games, 2 iterations of 16 steps, 16 evaluation games of 2 s (a smoke test).
        runs: names from :data:`TRAIN_RUNS` (default all).
        stages: ``{run name: k}``, the bench part (1..parts) each of those runs trains through (default:
            the whole budget in this call).
        minutes: budget per run name (default the issue's: 5, 15, 15; quick: 0.5 at most).
        episodes: evaluation games per opponent (default 1024; quick 16).
        threads: torch threads for training and evaluation (the issue's budgets are on 2 cores).
        seed: training seed (evaluation uses ``seed + 1``).
        fresh: delete the runs' folders first (a stage after the first continues its run instead).
        progress: tqdm bars (None: when stderr is a terminal).
        command: the command line recorded in the report.

    Returns:
        The report written to ``train.json``: ``runs`` (per run: ``status`` "finished" or "training",
        iterations, env steps, ``eval`` and ``baseline`` W/D/L per opponent with Wilson intervals,
        ``curve`` PNG name, ``part_wall_s``) and ``targets`` (of the finished runs).
    """
    names = list(runs) if runs is not None else list(TRAIN_RUNS)
    unknown = [n for n in names if n not in TRAIN_RUNS]
    if unknown or not names:
        raise ValueError(f"runs must be a non-empty list from {', '.join(TRAIN_RUNS)}, got {names}")
    stages = dict(stages or {})
    for n, k in stages.items():
        if n not in names or isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= TRAIN_RUNS[n].parts:
            raise ValueError(f"stages must map names of the runs to their part 1..parts, got {n!r}: {k!r}")
    budgets = {n: (0.5 if quick else TRAIN_RUNS[n].minutes) for n in names}
    for n, m in (minutes or {}).items():
        if n not in TRAIN_RUNS or not (isinstance(m, (int, float)) and m > 0):
            raise ValueError(f"minutes must map run names to numbers > 0, got {n!r}: {m!r}")
        budgets[n] = float(m)
    episodes = episodes if episodes is not None else (16 if quick else 1024)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    out_dir = Path(out_dir)
    report = report_header("train", command, quick)
    report.update({"threads": threads, "seed": seed, "episodes": episodes, "level": 0})
    record = {k: report.get(k) for k in ("command", "date", "git_commit", "git_dirty")}
    started = time.time()
    results: dict[str, dict[str, Any]] = {}
    bar = progress_bar(len(names), "bench train", progress)
    with torch_threads(threads):
        for n in names:
            bar.set_postfix_str(n)
            run, run_dir, t_run = TRAIN_RUNS[n], out_dir / "runs" / n, time.time()
            res = _train_one(run, out_dir, minutes=budgets[n], quick=quick, episodes=episodes, seed=seed, fresh=fresh,
                             progress=progress, stage=stages.get(n), record=record)  # fmt: skip
            res["curve"] = plot_curve(read_log(run_dir / "log.jsonl"), out_dir / f"train_{n}.png", n)
            if n in ZERO_SHOT and _finished(res):
                res["zero_shot"] = zero_shot(run, out_dir, ZERO_SHOT[n], quick=quick, episodes=episodes, seed=seed,
                                             progress=progress)  # fmt: skip
            res["part_wall_s"] = _part_walls(run_dir, part_name(run, stages[n]) if n in stages else "all",
                                             None if res["cached"] else time.time() - t_run)  # fmt: skip
            results[n] = res
            bar.update(1)
    bar.close()
    merged = {**_earlier_runs(out_dir / "train.json", report), **results}
    entries = [merged[n] for n in TRAIN_RUNS if n in merged]
    report.update({"runs": entries, "targets": train_targets(entries), "load_end": load_average(),
                   "wall_s": time.time() - started})  # fmt: skip
    write_json(out_dir / "train.json", report)
    (out_dir / "train.md").write_text(markdown_train(report), encoding="utf-8")
    return report


def _finished(entry: dict[str, Any]) -> bool:
    """The run of a training-record entry is trained and evaluated (entries older than ``status`` are)."""
    return bool(entry.get("status", "finished") == "finished")


def _part_walls(run_dir: Path, label: str, seconds: float | None) -> dict[str, float]:
    """The wall time of each bench part a run took (``runs/<name>/parts.json``), with ``label``'s ``seconds``
    added when not None (a run reported from its finished record took no new part)."""
    path = run_dir / "parts.json"
    walls = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if seconds is not None:
        walls[label] = seconds
        write_json(path, walls)
    return walls


def _earlier_runs(path: Path, report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The entries of an existing ``train.json`` written with the same settings as ``report`` (quick, seed,
    episodes, threads, level), by run name; none when it is absent, unreadable or of other settings."""
    if not path.is_file():
        return {}
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        entries = {r["name"]: r for r in old["runs"] if r["name"] in TRAIN_RUNS}
    except (OSError, ValueError, KeyError, TypeError) as err:
        logger.warning("%s is not a training record (%s): it is replaced", path, err)
        return {}
    if any(old.get(k) != report[k] for k in ("quick", "seed", "episodes", "threads", "level")):
        logger.info("%s holds runs of other settings: it is replaced", path)
        return {}
    return entries


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
    """The issue's (and spec 6.4's) training targets, measured on the finished runs present, and the issue's
    10 minutes per bench part over the parts the runs took (a run trained whole in one call is no part)."""
    by = {r["name"]: r for r in results if _finished(r)}
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
    walls = {p: w for r in results for p, w in (r.get("part_wall_s") or {}).items() if p in TRAIN_PARTS}
    if walls:
        worst = max(walls, key=walls.__getitem__)
        out.append({"target": f"each training part under {PART_CAP_S / 60:g} minutes (issue #8)",
                    "measured": f"{len(walls)} parts, the longest {worst} {walls[worst]:.0f} s",
                    "met": walls[worst] < PART_CAP_S})  # fmt: skip
    return out


def markdown_train(report: dict[str, Any]) -> str:
    """The Markdown report of the training parts: W/D/L per run and opponent, the targets, the curves, the record."""
    lines = ["# marladona bench: training at fixed CPU budgets", ""]
    if report["quick"]:
        lines += ["**Quick smoke run: a few iterations on tiny batches; these numbers are not a measurement.**", ""]
    lines += [
        f"Each run trains for its budget of training time (rollout + PPO, {report['threads']} torch thread(s)), "
        f"then plays {report['episodes']} games per opponent at field level 0 (deterministic policy, each game's "
        "first episode; a win = scored first within 30 s, a draw = time-out); Wilson 95 % intervals. "
        "'random' is a team of uniformly random actions against the same opponent. A 15-minute budget is "
        "split over two bench parts (the issue caps a part at 10 minutes): the second resumes the first's "
        "checkpoint and evaluates.", "",
    ]  # fmt: skip
    header = ["run", "preset", "budget", "iterations", "env steps", "final opponent", "vs", "win", "draw", "loss",
              "random team: win / loss"]  # fmt: skip
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in report["runs"]:
        if not _finished(r):
            k, n = r["stage"]
            cells = [r["name"], r["preset"], f"{r['minutes']:g} min", str(r["iterations"]), f"{r['env_steps']:.3g}",
                     r["final_opponent"], "-", f"in training: {r['train_s']:.0f} s of {r['minutes'] * 60:.0f} s "
                     f"after part {k} of {n}", "", "", ""]  # fmt: skip
            lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
            continue
        for i, (opp, e) in enumerate(r["eval"].items()):
            b = r["baseline"][opp]
            head = ([r["name"], r["preset"], f"{r['minutes']:g} min", str(r["iterations"]), f"{r['env_steps']:.3g}",
                     r["final_opponent"]] if i == 0 else [""] * 6)  # fmt: skip
            cells = [*head, opp, _rate(e, "win"), _rate(e, "draw"), _rate(e, "loss"),
                     f"{b['win_rate']:.1%} / {b['loss_rate']:.1%}"]  # fmt: skip
            lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    lines.append("")
    lines += targets_markdown(report["targets"])
    for r in report["runs"]:
        flags = ", ".join(f for f, on in (("resumed", r.get("resumed")), ("reported from its finished run",
                                                                          r.get("cached"))) if on)  # fmt: skip
        walls = ", ".join(f"{p} {w:.0f} s" for p, w in (r.get("part_wall_s") or {}).items())
        rec = r.get("record") or {}
        commit = f"commit {commit_text(rec)}" if rec.get("git_commit") else ""
        written = ", ".join(x for x in (commit, rec.get("date") or "") if x)
        lines.append(f"- **{r['name']}** ({r['spec']}): {r['train_s']:.0f} s of training"
                     + (f", {flags}" if flags else "") + (f"; wall time per part: {walls}" if walls else "")
                     + (f"; {written}" if written else "") + ".")  # fmt: skip
        if r.get("promotions"):
            lines.append("  Promotions: " + "; ".join(f"iteration {p['iteration']} from {p['from']}"
                                                      for p in r["promotions"]) + ".")  # fmt: skip
        if r.get("curve"):
            lines += ["", f"  ![{r['name']}]({r['curve']})"]
        if r.get("zero_shot"):
            z = r["zero_shot"]
            lo, hi = z["trained_sizes"]
            lines += ["", f"  Zero-shot (trained for {lo}v{lo}" + (f" to {hi}v{hi}" if hi != lo else "")
                      + f", never for these sizes), against {z['opponent']} on the same field:", "",
                      "  | size | win | draw | loss | random team: win / loss |", "  |---|---|---|---|---|"]  # fmt: skip
            for size, e in z["policy"].items():
                b = z["random"][size]
                lines.append(f"  | {size} | {_rate(e, 'win')} | {_rate(e, 'draw')} | {_rate(e, 'loss')} | "
                             f"{b['win_rate']:.1%} / {b['loss_rate']:.1%} |")  # fmt: skip
    lines += ["", *record_markdown(report)]
    return "\n".join(lines)
