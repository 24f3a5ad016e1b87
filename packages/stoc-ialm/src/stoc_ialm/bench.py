"""The benchmark of spec §6: every method tuned on a small grid at the same oracle budget, 3 seeds, vs SLSQP.

``stoc-ialm bench`` (and ``make bench PKG=stoc-ialm``) runs, for each workload (problem × data set), every
method on every point of its grid and every seed at one oracle-call budget and batch size, then keeps
per method the grid point with the smallest median (over seeds) final KKT residual, and reports at that
point the medians of the final objective ``F``, ``F − F*`` (``F*``: full-batch SLSQP,
:func:`~stoc_ialm.reference.slsqp_reference`), violation, stationarity and KKT residual, and the oracle
calls at which the full-data KKT residual first reaches ``kkt_target`` (1e-2) — plus the calls after which
it stays there, since a stochastic method can touch the target and leave it again. Metrics are the
methods' own full-data records (evaluation is free and does not count as oracle calls).

Workloads (:data:`WORKLOADS`): ``np-adult`` (B1), ``fairness-adult`` (B2), ``np-breast_cancer`` (B4).
Methods (:data:`METHODS`): Stoc-iALM, IPP-ConEx, fixed-penalty SGD, stochastic GDA, and cooper's
augmented Lagrangian with alternating updates when ``cooper-optim`` is installed. The grids
(:func:`grid`) are ours: each has 2-6 points, scaled by the data's smoothness estimate ``L``
(:func:`~stoc_ialm.commands.estimate_lipschitz`) where the method has a step ``∝ 1/L``.

Every finished run is written to ``<out>/<workload>-runs/<run id>.json`` at once, so an interrupted
bench resumes where it stopped (``fresh=True`` ignores them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from stoc_ialm._version import __version__

METHODS = ("stoc-ialm", "ipp-conex", "penalty-sgd", "gda", "cooper-alm")
"""Method names of the bench, in the spec's order (``cooper-alm`` needs the ``[cooper]`` extra)."""

KKT_TARGET = 1e-2
"""The KKT level of the spec's "oracle calls to reach KKT ≤ 1e-2"."""


@dataclasses.dataclass(frozen=True)
class Workload:
    """One problem instance of the bench."""

    name: str
    kind: str
    """``"np"`` or ``"fairness"``."""
    dataset: str
    budget: int
    """oracle calls per run."""
    settings: dict[str, Any]
    """problem settings (``alpha``/``kappa``, ``loss``, ``l1``)."""
    spec: str
    """what the spec calls it."""


WORKLOADS: dict[str, Workload] = {
    "np-adult": Workload("np-adult", "np", "adult", 3_000_000, {"alpha": 0.2, "loss": "sigmoid", "l1": 1e-3},
                         "B1 NP-Adult"),
    "fairness-adult": Workload("fairness-adult", "fairness", "adult", 3_000_000,
                               {"kappa": 0.05, "loss": "logistic", "l1": 0.0}, "B2 Fairness-Adult (sex)"),
    "np-breast_cancer": Workload("np-breast_cancer", "np", "breast_cancer", 500_000,
                                 {"alpha": 0.2, "loss": "sigmoid", "l1": 1e-3}, "B4 NP-breast_cancer"),
}  # fmt: skip
"""The spec's workloads B1, B2 and B4 (B3 COMPAS needs data we cannot ship)."""

QUICK = Workload("np-breast_cancer-quick", "np", "breast_cancer", 20_000, {"alpha": 0.2, "loss": "sigmoid", "l1": 1e-3},
                 "B4, smoke-test size")  # fmt: skip
"""The ``--quick`` workload (seconds; for the smoke test)."""

BATCH = 64
"""The minibatch of every method (spec §6)."""


def grid(method: str, lipschitz: float) -> list[dict[str, Any]]:
    """The grid of ``method`` (configuration keyword arguments), ``lipschitz`` being the data's ``L``.

    - ``stoc-ialm``: ``β₀ ∈ {1, 3, 10}`` × ``lr_scale ∈ {1, 4}``, with ``σ = 1.5``, ``γ₀ = 1000``, ``T₀ = 500``,
      ``θ = 0.1`` and full-data dual and postprocessing batches (the spec's tuned prototype; the dual
      estimate's noise is multiplied by ``β_k`` in ``ȳ``, so a 1024 batch leaves a stationarity floor near 1e-2);
    - ``ipp-conex``: ``ρ ∈ {L/10, L/100, L/1000}`` × output ``{average, last}``, ``T = 50`` (``ρ = L`` is far
      too conservative: the proximal step ``1/(2ρ)`` is then tiny);
    - ``penalty-sgd``: ``β ∈ {10, 30, 100}`` × ``lr_scale ∈ {1, 4}``;
    - ``gda``: ``η ∈ {0.5/L, 2/L}`` × ``η_y ∈ {0.02, 0.1, 0.5}`` (the spec's prototype: ``η = 0.5``, ``η_y = 0.05``);
    - ``cooper-alm``: cooper ``AugmentedLagrangian`` + alternating updates, ``η = 1/L``, ``η_y ∈ {0.05, 0.5}``.

    Raises:
        ValueError: an unknown method.
    """
    L = lipschitz
    if method == "stoc-ialm":
        base = {"sigma": 1.5, "gamma0": 1e3, "inner_iters0": 500, "dual_batch": None, "post_batch": None}
        return [{**base, "beta0": b, "lr_scale": s} for b in (1.0, 3.0, 10.0) for s in (1.0, 4.0)]
    if method == "ipp-conex":
        return [{"weak_convexity": L / f, "inner_iters": 50, "inner_output": o}
                for f in (10.0, 100.0, 1000.0) for o in ("average", "last")]  # fmt: skip
    if method == "penalty-sgd":
        return [{"beta": b, "lr_scale": s} for b in (10.0, 30.0, 100.0) for s in (1.0, 4.0)]
    if method == "gda":
        return [{"lr": c / L, "dual_lr": d} for c in (0.5, 2.0) for d in (0.02, 0.1, 0.5)]
    if method == "cooper-alm":
        return [{"formulation": "augmented_lagrangian", "alternating": True, "lr": 1.0 / L, "dual_lr": d}
                for d in (0.05, 0.5)]  # fmt: skip
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def cooper_available() -> bool:
    """Whether ``cooper`` (the ``[cooper]`` extra) imports."""
    import importlib.util

    return importlib.util.find_spec("cooper") is not None


# -- one run --------------------------------------------------------------------------------------
def _problem(workload: Workload) -> Any:
    from stoc_ialm.datasets import load
    from stoc_ialm.problems import FairnessDP, NeymanPearson

    data = load(workload.dataset)
    if workload.kind == "np":
        return NeymanPearson(data, **workload.settings)
    return FairnessDP(data, **workload.settings)


def _solver(method: str, problem: Any, config: dict[str, Any], lipschitz: float, budget: int, seed: int) -> Any:
    from stoc_ialm import baselines as B
    from stoc_ialm.ialm import StocIALM, StocIALMConfig

    loop: dict[str, Any] = {"batch": BATCH, "budget": budget, "seed": seed}
    if method == "stoc-ialm":
        return StocIALM(problem, StocIALMConfig(lipschitz=lipschitz, max_outer=10_000, **loop, **config))
    if method == "ipp-conex":
        return B.IPPConEx(problem, B.IPPConExConfig(lipschitz=lipschitz, max_outer=10**6, **loop, **config))
    if method == "penalty-sgd":
        return B.PenaltySGD(problem, B.PenaltySGDConfig(lipschitz=lipschitz, max_outer=10**6, **loop, **config))
    if method == "gda":
        return B.StochasticGDA(problem, B.StochasticGDAConfig(max_outer=10**6, **loop, **config))
    if method == "cooper-alm":
        return B.CooperSolver(problem, B.CooperConfig(max_outer=10**6, **loop, **config))
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def first_reach(history: Sequence[dict[str, Any]], level: float) -> int | None:
    """Oracle calls of the first record with ``kkt <= level`` (None: never)."""
    return next((int(r["oracle_calls"]) for r in history if r["kkt"] <= level), None)


def stays_below(history: Sequence[dict[str, Any]], level: float) -> int | None:
    """Oracle calls of the first record from which every later record has ``kkt <= level`` (None: the last is above).

    Example:
        >>> h = [{"oracle_calls": c, "kkt": v} for c, v in [(1, 0.5), (2, 0.005), (3, 0.02), (4, 0.009), (5, 0.001)]]
        >>> first_reach(h, 1e-2), stays_below(h, 1e-2)
        (2, 4)
    """
    calls = None
    for r in history:
        calls = (int(r["oracle_calls"]) if calls is None else calls) if r["kkt"] <= level else None
    return calls


def run_id(workload: Workload, method: str, config: dict[str, Any], seed: int) -> str:
    """A file-name-safe id of one run: method, a hash of (workload, config, budget, version) and the seed."""
    key = json.dumps([dataclasses.asdict(workload), method, config, BATCH, __version__], sort_keys=True, default=str)
    return f"{method}-{hashlib.sha1(key.encode()).hexdigest()[:10]}-s{seed}"


def run_one(workload: Workload, method: str, config: dict[str, Any], seed: int, lipschitz: float) -> dict[str, Any]:
    """Solve ``workload`` with one method, config and seed; the final metrics, the history and the wall time."""
    import torch

    torch.set_num_threads(1)
    problem = _problem(workload)
    solver = _solver(method, problem, config, lipschitz, workload.budget, seed)
    t0 = time.perf_counter()
    result = solver.solve()
    wall = time.perf_counter() - t0
    keep = ("k", "oracle_calls", "objective", "violation", "stationarity", "complementarity", "kkt")
    history = [{k: r[k] for k in keep} for r in result.history]
    final = history[-1]
    return {
        "workload": workload.name, "method": method, "config": config, "seed": seed, "status": result.status,
        "oracle_calls": final["oracle_calls"], "objective": final["objective"], "violation": final["violation"],
        "stationarity": final["stationarity"], "kkt": final["kkt"], "first_reach": first_reach(history, KKT_TARGET),
        "stays_below": stays_below(history, KKT_TARGET), "wall_s": wall, "history": history,
    }  # fmt: skip


def _task(args: tuple[Workload, str, dict[str, Any], int, float, str]) -> dict[str, Any]:
    workload, method, config, seed, lipschitz, path = args
    from stoc_ialm.ialm import DivergenceError

    try:
        record = run_one(workload, method, config, seed, lipschitz)
    except DivergenceError as exc:  # a diverging grid point is a result, not a crash
        record = {"workload": workload.name, "method": method, "config": config, "seed": seed, "status": "diverged",
                  "error": str(exc), "oracle_calls": None, "objective": math.nan, "violation": math.nan,
                  "stationarity": math.nan, "kkt": math.inf, "first_reach": None, "stays_below": None,
                  "wall_s": None, "history": []}  # fmt: skip
    _write_json(Path(path), record)
    return record


def _git_commit() -> str | None:
    """The short commit of the source tree the package runs from (None outside a git checkout)."""
    import subprocess

    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=10, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# -- the reference and the summary ----------------------------------------------------------------
def reference(workload: Workload, runs_dir: Path) -> dict[str, Any]:
    """Full-batch SLSQP on the workload (cached in ``runs_dir/reference.json``)."""
    from stoc_ialm.reference import slsqp_reference

    path = runs_dir / "reference.json"
    key = dataclasses.asdict(workload)
    if path.is_file():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("workload") == key:
            return dict(cached)
    ref = slsqp_reference(_problem(workload))
    record = {"workload": key, "F": ref.F, "violation": ref.info["violation"],
              "stationarity": ref.info["stationarity"], "success": ref.info["success"], "nfev": ref.info["nfev"],
              "time_s": ref.info["time_s"], "multipliers": ref.multipliers.tolist()}  # fmt: skip
    _write_json(path, record)
    return record


def _median(values: Sequence[float | None]) -> float | None:
    """The median of the numbers; None counts as +inf (a run that never got there); None when most are None."""
    vals = sorted(math.inf if v is None else float(v) for v in values)
    m = statistics.median(vals) if vals else math.inf
    return None if math.isinf(m) else m


def summarize(runs: Sequence[dict[str, Any]], F_star: float) -> dict[str, Any]:
    """Per method: every grid point's median final KKT, the selected point and its medians over seeds.

    The selected point has the smallest median final KKT residual (ties: the smaller median calls to first
    reach :data:`KKT_TARGET`, then grid order).
    """
    by_method: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in runs:
        key = json.dumps(r["config"], sort_keys=True)
        by_method.setdefault(r["method"], {}).setdefault(key, []).append(r)
    out: dict[str, Any] = {}
    order = {m: i for i, m in enumerate(METHODS)}
    for method, points in sorted(by_method.items(), key=lambda item: order.get(item[0], len(order))):
        table = []
        for key, rs in points.items():
            kkt = _median([r["kkt"] for r in rs])
            reach = _median([r["first_reach"] for r in rs])
            table.append({"config": json.loads(key), "median_kkt": kkt, "median_first_reach": reach,
                          "seeds": sorted(r["seed"] for r in rs)})  # fmt: skip
        best_i = min(range(len(table)), key=lambda i: (
            math.inf if table[i]["median_kkt"] is None else table[i]["median_kkt"],
            math.inf if table[i]["median_first_reach"] is None else table[i]["median_first_reach"], i))  # fmt: skip
        best = table[best_i]
        rs = sorted(points[json.dumps(best["config"], sort_keys=True)], key=lambda r: r["seed"])
        med = {k: _median([r[k] for r in rs]) for k in ("objective", "violation", "stationarity", "kkt", "wall_s",
                                                         "first_reach", "stays_below", "oracle_calls")}  # fmt: skip
        med["gap"] = None if med["objective"] is None else med["objective"] - F_star
        med["abs_gap"] = _median([abs(r["objective"] - F_star) for r in rs])
        med["reached"] = sum(r["first_reach"] is not None for r in rs)
        configs = [g["config"] for g in table]
        fixed = {k: v for k, v in configs[0].items() if all(c.get(k) == v for c in configs)} if len(configs) > 1 else {}
        out[method] = {"grid": table, "selected": best["config"], "fixed": fixed, "median": med, "seeds": len(rs),
                       "runs": [{k: v for k, v in r.items() if k != "history"} for r in rs]}  # fmt: skip
    return out


def targets(summary: dict[str, Any], budget: int, extended: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The spec's B1 targets, measured on Stoc-iALM's selected point (median of seeds).

    Args:
        summary: :func:`summarize`'s output.
        budget: the workload's oracle budget.
        extended: IPP-ConEx's selected point rerun at a larger budget when it did not reach the KKT target
            within ``budget`` (``{"budget", "first_reach", "reached", "seeds"}``), so that the call ratio is
            measured rather than bounded by ``budget``.
    """
    ours = summary.get("stoc-ialm")
    if ours is None:
        return []
    med = ours["median"]
    rows = []
    for what, key, bound in (("violation ≤ 1e-2", "violation", 1e-2), ("stationarity ≤ 1e-2", "stationarity", 1e-2),
                             ("|F − F*| ≤ 5e-3", "abs_gap", 5e-3)):  # fmt: skip
        value = med[key]
        rows.append({"target": what, "measured": value, "met": value is not None and value <= bound})
    conex = summary.get("ipp-conex")
    if conex is not None:
        a, b = med["first_reach"], conex["median"]["first_reach"]
        limit = budget
        if b is None and extended is not None:
            b, limit = extended["first_reach"], extended["budget"]
        if a is None:
            text, met = f"Stoc-iALM did not reach KKT ≤ 1e-2 in {budget:.3g} calls (median)", False
        elif b is None:
            ratio = a / limit
            text = f"{a:.4g} calls vs IPP-ConEx not within {limit:.3g} calls (median): ratio < {ratio:.3f}"
            met = ratio <= 0.5
        else:
            ratio = a / b
            text, met = f"{a:.4g} vs {b:.4g} calls (median): ratio {ratio:.3f}", ratio <= 0.5
        if extended is not None:
            text += f" (IPP-ConEx's selected point rerun at {extended['budget']:.3g} calls)"
        rows.append({"target": "calls to KKT ≤ 1e-2 ≤ 0.5 × IPP-ConEx's", "measured": text, "met": met})
    return rows


# -- the driver -----------------------------------------------------------------------------------
def run_bench(
    workloads: Sequence[Workload],
    methods: Sequence[str],
    seeds: Sequence[int],
    out: Path,
    *,
    jobs: int = 1,
    quick: bool = False,
    fresh: bool = False,
    progress: bool = True,
    command: str = "stoc-ialm bench",
) -> dict[str, Any]:
    """Run the grid × seeds of every method on every workload; write JSON, Markdown and PNG per workload.

    Args:
        workloads: what to solve (:data:`WORKLOADS` values or :data:`QUICK`).
        methods: names from :data:`METHODS`.
        seeds: minibatch seeds (the spec: 3).
        out: results folder; per-run files go to ``out/<workload>-runs/``.
        jobs: worker processes (each single-threaded); 1 runs in this process.
        quick: only the first grid point of each method (the smoke test).
        fresh: ignore per-run files of an earlier, interrupted bench.
        progress: a tqdm bar over runs.
        command: the command line recorded in the reports.

    Returns:
        ``{workload name: its report}`` (the content of ``out/<workload>.json``).

    Raises:
        ValueError: an unknown method, no seeds, or ``jobs < 1``.
        ImportError: ``cooper-alm`` asked for without cooper installed.
    """
    from tqdm.auto import tqdm

    from stoc_ialm.commands import estimate_lipschitz
    from stoc_ialm.environment import collect

    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty list from {', '.join(METHODS)}, got {list(methods)}")
    if not seeds:
        raise ValueError("seeds must not be empty")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if "cooper-alm" in methods and not cooper_available():
        raise ImportError("method cooper-alm needs cooper: pip install 'stoc-ialm[cooper]'")
    reports: dict[str, Any] = {}
    for workload in workloads:
        started = time.time()
        runs_dir = out / f"{workload.name}-runs"
        problem = _problem(workload)
        L = estimate_lipschitz(problem)
        ref = reference(workload, runs_dir)
        tasks, done = [], []
        for method in methods:
            points = grid(method, L)[:1] if quick else grid(method, L)
            for config in points:
                for seed in seeds:
                    path = runs_dir / f"{run_id(workload, method, config, seed)}.json"
                    if path.is_file() and not fresh:
                        done.append(json.loads(path.read_text(encoding="utf-8")))
                    else:
                        tasks.append((workload, method, config, seed, L, str(path)))
        bar = tqdm(total=len(tasks) + len(done), initial=len(done), desc=f"bench {workload.name}", disable=None,
                   file=sys.stderr) if progress else None  # fmt: skip
        done += _execute(tasks, jobs, bar)
        if bar is not None:
            bar.close()
        summary = summarize(done, ref["F"])
        extended = None
        has_targets = workload.kind == "np" and workload.dataset == "adult"
        if (
            has_targets
            and not quick
            and "ipp-conex" in summary
            and summary["ipp-conex"]["median"]["first_reach"] is None
        ):
            extended = _extend(workload, summary["ipp-conex"]["selected"], seeds, L, runs_dir, jobs, fresh)
        report = {
            "workload": dataclasses.asdict(workload), "lipschitz": L, "batch": BATCH, "seeds": list(seeds),
            "kkt_target": KKT_TARGET, "reference": ref, "methods": summary,
            "targets": targets(summary, workload.budget, extended) if has_targets else [],
            "ipp_conex_extended": extended,
            "command": command,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": collect(), "jobs": jobs,
            "git_commit": _git_commit(),
            "wall_s": time.time() - started,
        }  # fmt: skip
        _write_json(out / f"{workload.name}.json", report)
        (out / f"{workload.name}.md").write_text(markdown(report), encoding="utf-8")
        _plot(report, done, out / f"{workload.name}.png")
        reports[workload.name] = report
    return reports


def _execute(tasks: list[tuple[Any, ...]], jobs: int, bar: Any) -> list[dict[str, Any]]:
    """Run the tasks in this process (``jobs == 1``) or in ``jobs`` spawned single-threaded workers."""
    done = []
    if jobs == 1:
        for task in tasks:
            done.append(_task(task))
            if bar is not None:
                bar.update(1)
        return done
    import multiprocessing

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for record in pool.map(_task, tasks):
            done.append(record)
            if bar is not None:
                bar.update(1)
    return done


EXTEND = 10
"""IPP-ConEx's selected point is rerun at ``EXTEND ×`` the budget when it misses the KKT target within it."""


def _extend(workload: Workload, config: dict[str, Any], seeds: Sequence[int], lipschitz: float, runs_dir: Path,
            jobs: int, fresh: bool) -> dict[str, Any]:  # fmt: skip
    """IPP-ConEx at ``EXTEND ×`` the budget (per-run files cached like the grid's): calls to reach the target."""
    longer = dataclasses.replace(workload, budget=EXTEND * workload.budget)
    tasks, done = [], []
    for seed in seeds:
        path = runs_dir / f"{run_id(longer, 'ipp-conex', config, seed)}.json"
        if path.is_file() and not fresh:
            done.append(json.loads(path.read_text(encoding="utf-8")))
        else:
            tasks.append((longer, "ipp-conex", config, seed, lipschitz, str(path)))
    done += _execute(tasks, jobs, None)
    return {"budget": longer.budget, "config": config, "first_reach": _median([r["first_reach"] for r in done]),
            "reached": sum(r["first_reach"] is not None for r in done), "seeds": len(done),
            "final_kkt": _median([r["kkt"] for r in done])}  # fmt: skip


def _plot(report: dict[str, Any], runs: Sequence[dict[str, Any]], path: Path) -> None:
    """Objective, violation and KKT vs oracle calls of each method's selected point, seed of the median KKT."""
    try:
        from stoc_ialm.plotting import plot_history
    except ImportError:  # pragma: no cover - matplotlib is in the [plot] extra
        return
    histories = {}
    for method, info in report["methods"].items():
        rs = [r for r in runs if r["method"] == method and r["config"] == info["selected"] and r["history"]]
        if not rs:
            continue
        rs.sort(key=lambda r: r["kkt"])
        histories[method] = rs[len(rs) // 2]["history"]
    if histories:
        try:
            plot_history(histories, path, title=f"{report['workload']['spec']}: selected point, median seed")
        except ImportError:
            return


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (``|`` escaped)."""
    return text.replace("|", "\\|")


def _config_text(config: dict[str, Any], skip: dict[str, Any] | None = None) -> str:
    def value(v: Any) -> str:
        return "full" if v is None else (f"{v:.3g}" if isinstance(v, float) else _fmt(v))

    return ", ".join(f"{k}={value(v)}" for k, v in config.items() if k not in (skip or {})) or "-"


def markdown(report: dict[str, Any]) -> str:
    """The Markdown report of one workload: targets, the side-by-side table, every grid point, the record."""
    w, ref = report["workload"], report["reference"]
    lines = [f"# {w['name']}: {w['spec']}, every method at {w['budget']:.3g} oracle calls", ""]
    lines.append(
        f"Setup: {w['kind']} on {w['dataset']} ({_config_text(w['settings'])}); batch {report['batch']} for every "
        f"method; L = {report['lipschitz']:.4g} (estimated from the data); seeds {report['seeds']}; each method's "
        "grid point chosen by the smallest median final KKT residual (full data, at the method's own multiplier); "
        f"medians over seeds. F* = {ref['F']:.8g} (full-batch SLSQP, violation {ref['violation']:.1e}, "
        f"stationarity {ref['stationarity']:.1e}). 'first ≤ 1e-2': oracle calls when the KKT residual first "
        "reaches 1e-2; 'stays ≤ 1e-2': calls after which it never leaves; '-' = not within the budget. Stoc-iALM "
        "is measured once per outer step (its KKT residual needs the step's multiplier ȳ; a handful of records "
        "per run), IPP-ConEx every 50 and the other methods every 100 iterations, so Stoc-iALM's call counts are "
        "the coarsest."
    )
    lines.append("")
    fixed = [f"{m}: {_config_text(info['fixed'])}" for m, info in report["methods"].items() if info.get("fixed")]
    if fixed:
        lines += ["Settings shared by every grid point of a method: " + "; ".join(fixed) + ".", ""]
    if report["targets"]:
        lines += ["Targets (spec §6, B1):", "", "| target | measured | met |", "|---|---|---|"]
        lines += [
            f"| {_cell(t['target'])} | {_cell(_fmt(t['measured']))} | {_fmt(t['met'])} |" for t in report["targets"]
        ]
        lines.append("")
    ext = report.get("ipp_conex_extended")
    if ext:
        lines += [f"IPP-ConEx did not reach KKT ≤ 1e-2 within the budget, so its selected point was rerun at "
                  f"{ext['budget']:.3g} calls: median calls to first reach {_fmt(ext['first_reach'])} "
                  f"({ext['reached']} of {ext['seeds']} seeds reached), median final KKT {_fmt(ext['final_kkt'])}.",
                  ""]  # fmt: skip
    header = ["method", "selected point", "F", "F − F*", "violation", "stationarity", "KKT", "first ≤ 1e-2",
              "stays ≤ 1e-2", "seeds reaching", "wall s"]  # fmt: skip
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, info in report["methods"].items():
        m = info["median"]
        row = [method, _config_text(info["selected"], info.get("fixed")), m["objective"], m["gap"], m["violation"], m["stationarity"],
               m["kkt"], m["first_reach"], m["stays_below"], f"{m['reached']}/{info['seeds']}", m["wall_s"]]  # fmt: skip
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    lines += ["", f"![{w['name']}]({w['name']}.png)", "", "Every grid point (median over seeds):", "",
              "| method | point | median KKT | median first ≤ 1e-2 |", "|---|---|---|---|"]  # fmt: skip
    for method, info in report["methods"].items():
        for g in info["grid"]:
            lines.append(f"| {method} | {_config_text(g['config'], info.get('fixed'))} | {_fmt(g['median_kkt'])} | "
                         f"{_fmt(g['median_first_reach'])} |")  # fmt: skip
    mach = report["machine"]
    lines += ["", f"Command: `{report['command']}`  ", f"Date: {report['date']}  ",
              f"Machine: {mach['platform']}, {mach['cpu_count']} CPUs, torch {mach['torch']}, {report['jobs']} "
              f"worker process(es) of 1 thread  ",
              f"stoc-ialm {mach['version']}, commit {report['git_commit'] or '-'}, {report['wall_s']:.0f} s", ""]  # fmt: skip
    return "\n".join(lines)
