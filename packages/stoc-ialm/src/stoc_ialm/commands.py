"""The work behind each ``stoc-ialm`` command (the argument parsing lives in :mod:`stoc_ialm.cli`).

Every command function takes the parsed ``argparse.Namespace``, prints a table (or one JSON object
with ``--json``) to stdout and returns the exit status. Bad input raises ``ValueError`` naming the
flag (the CLI turns it into a one-line usage error, exit 2), a missing data source raises
:class:`DataMissingError` (exit 3) and a non-finite augmented Lagrangian raises
:class:`~stoc_ialm.ialm.DivergenceError` (exit 4). Heavy modules are imported inside the functions,
so that ``stoc-ialm plot`` and ``stoc-ialm datasets`` do not pay for what they do not use.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stoc_ialm._version import __version__
from stoc_ialm.cli import DATASETS, FAIRNESS_DATASETS, PROBLEM_FLAGS, SOLVER_FLAGS, parse_settings

if TYPE_CHECKING:
    from stoc_ialm.datasets import Dataset
    from stoc_ialm.ialm import SolveResult, StocIALMConfig
    from stoc_ialm.problems import FairnessDP, NeymanPearson

CHECKPOINT = "checkpoint.pt"
"""The checkpoint file of a run folder (written atomically after every outer step)."""

LOSS_CURVATURE: dict[str, float] = {"sigmoid": 0.1, "logistic": 0.25}
"""An upper bound on ``|ℓ''(z)|`` per surrogate loss: ``max|σ''| = 1/(6√3) ≈ 0.0962`` and ``max σ' = 1/4``."""

PROBLEM_DEFAULTS: dict[str, dict[str, Any]] = {
    "np": {"alpha": 0.2, "loss": "sigmoid", "l1": 1e-3},
    "fairness": {"kappa": 0.05, "loss": "logistic", "l1": 0.0},
}
"""Problem settings a run starts from (the defaults of :class:`~stoc_ialm.problems.NeymanPearson` and
:class:`~stoc_ialm.problems.FairnessDP`, i.e. the spec's workloads B1 and B2)."""

DEFAULT_BATCH = 64
"""``--batch`` when not given: 64 (the spec's proposal), or the smallest sample count of the problem when smaller."""

DEMO: dict[str, Any] = {
    "alpha": 0.05, "loss": "sigmoid", "l1": 1e-3,
    "batch": 16, "sigma": 1.2, "gamma0": 1e2, "lr_scale": 3.5, "max_outer": 14,
}  # fmt: skip
"""The demo's problem and solver settings (tuned by hand on breast_cancer; L is estimated from the data)."""

TABLE_HEADER = ["k", "oracle calls", "data passes", "objective", "violation", "stationarity", "KKT", "β"]


class DataMissingError(Exception):
    """A data file does not exist, or a data set's optional source is not installed (exit status 3)."""


# -- small helpers ---------------------------------------------------------------------------------
def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (temporary file in the same folder, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (floats to 4 significant digits, None as ``-``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def history_row(record: dict[str, Any]) -> list[Any]:
    """One row of the per-outer-step table (:data:`TABLE_HEADER`) from a history record."""
    return [record["k"], record["oracle_calls"], round(record["data_passes"], 2), f"{record['objective']:.6g}",
            f"{record['violation']:.3e}", f"{record['stationarity']:.3e}", f"{record['kkt']:.3e}",
            f"{record['beta']:.4g}"]  # fmt: skip


def _print_row(line: str) -> None:
    # tqdm.write keeps a progress bar on stderr intact while the table grows on stdout.
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stdout)


def _row_printer() -> Callable[[dict[str, Any]], None]:
    """A solve callback that prints each history record as a row of the table."""

    def show(record: dict[str, Any]) -> None:
        _print_row(format_table(TABLE_HEADER, [history_row(record)]).splitlines()[-1])

    return show


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _named(exc: ValueError) -> ValueError:
    """Prefix a validation message ``"beta0 must be ..."`` with its flag (``--beta0: beta0 must be ...``)."""
    text = str(exc)
    key = text.split(" ", 1)[0]
    names = set(SOLVER_FLAGS) | {k for flags in PROBLEM_FLAGS.values() for k in flags} - {"data", "dataset"}
    return ValueError(f"{_flag(key)}: {text}") if key in names else exc


# -- the Lipschitz estimate ------------------------------------------------------------------------
def estimate_lipschitz(problem: NeymanPearson | FairnessDP) -> float:
    """A data-driven smoothness constant ``L`` of a linear Neyman-Pearson or fairness problem (``--lipschitz``).

    For a finite sum of a per-sample loss of linear scores, ``g(x) = (1/n) Σ_j ℓ(a_j^T x)``,

    .. math::
        \\nabla^2 g(x) = \\tfrac{1}{n} A^T \\operatorname{diag}(\\ell''(Ax)) A \\preceq
        \\max|\\ell''| \\cdot \\tfrac{1}{n} A^T A, \\qquad\\text{so}\\qquad L_g \\le \\max|\\ell''| \\,\\lVert A\\rVert_2^2 / n

    with ``max|ℓ''| ≤ 0.1`` for the sigmoid loss (``1/(6√3) ≈ 0.0962``) and ``1/4`` for the logistic loss
    (:data:`LOSS_CURVATURE`). The estimate is the largest bound over the problem's finite sums:
    Neyman-Pearson takes the positives (objective) and the negatives (constraint); demographic parity
    takes all samples (objective) and, for ``c = mean_{G₁} σ − mean_{G₀} σ``, ``0.1 (‖A_{G₁}‖₂²/n₁ + ‖A_{G₀}‖₂²/n₀)``.

    Args:
        problem: a :class:`~stoc_ialm.problems.NeymanPearson` or :class:`~stoc_ialm.problems.FairnessDP`.

    Returns:
        ``L > 0``, a float (the solver uses ``L_k = L (1 + ‖y^k‖ + β_k)``).

    Raises:
        ValueError: another kind of problem (pass ``--lipschitz`` / ``StocIALMConfig.lipschitz`` yourself).

    Note:
        This is an upper bound on the smoothness of ``f`` and of each ``c_i``, not the ``L_k`` of the
        paper's subproblem (that adds ``β_k(L_J B_c + B_J²)``; :mod:`stoc_ialm.ialm` scales ``L`` by
        ``1 + ‖y‖ + β`` instead). It is our choice, not the paper's.

    Example:
        >>> from stoc_ialm.datasets import load
        >>> from stoc_ialm.problems import NeymanPearson
        >>> round(estimate_lipschitz(NeymanPearson(load("wine"), alpha=0.2)), 4)
        0.8072
    """
    import torch

    from stoc_ialm.problems import FairnessDP, NeymanPearson

    def spread(a: torch.Tensor) -> float:
        return float(torch.linalg.matrix_norm(a, ord=2)) ** 2 / a.shape[0]

    if isinstance(problem, NeymanPearson):
        X, y = problem.data.X, problem.data.y
        return LOSS_CURVATURE[problem.loss] * max(spread(X[y == 1]), spread(X[y == 0]))
    if isinstance(problem, FairnessDP):
        X, group = problem.data.X, problem.data.group
        assert group is not None  # FairnessDP checks it
        gap = LOSS_CURVATURE["sigmoid"] * (spread(X[group == 1]) + spread(X[group == 0]))
        return max(LOSS_CURVATURE[problem.loss] * spread(X), gap)
    raise ValueError(f"estimate_lipschitz needs a NeymanPearson or FairnessDP problem, got {type(problem).__name__}")


# -- data and problems -----------------------------------------------------------------------------
def load_data(kind: str, settings: dict[str, Any]) -> Dataset:
    """The data set of a run: ``--dataset NAME`` or (``np`` only) ``--data FILE``.

    Raises:
        ValueError: neither or both given, an unknown name, or a malformed file.
        DataMissingError: the file does not exist, or the data set's source is not installed.
    """
    from stoc_ialm.datasets import load, load_svmlight

    name, path = settings.get("dataset"), settings.get("data")
    if kind == "np" and (name is None) == (path is None):
        raise ValueError("run np needs exactly one of --dataset NAME or --data FILE")
    if kind == "fairness" and name is None:
        raise ValueError(f"--dataset is required: one of {', '.join(FAIRNESS_DATASETS)}")
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise DataMissingError(f"--data: no such file {file}")
        try:
            return load_svmlight(file)
        except ValueError as exc:
            raise ValueError(f"--data: {str(exc).removeprefix('path: ')}") from None
    names = DATASETS if kind == "np" else FAIRNESS_DATASETS
    if name not in names:
        raise ValueError(f"--dataset must be one of {', '.join(names)}, got {name!r}")
    try:
        return load(str(name))
    except (ImportError, FileNotFoundError) as exc:
        raise DataMissingError(f"--dataset {name}: {exc}") from None


def build_problem(kind: str, data: Dataset, settings: dict[str, Any]) -> NeymanPearson | FairnessDP:
    """``NeymanPearson(data, alpha, loss, l1)`` or ``FairnessDP(data, kappa, loss, l1)`` (errors name the flag)."""
    from stoc_ialm.problems import FairnessDP, NeymanPearson

    try:
        if kind == "np":
            return NeymanPearson(data, alpha=settings["alpha"], loss=settings["loss"], l1=settings["l1"])
        return FairnessDP(data, kappa=settings["kappa"], loss=settings["loss"], l1=settings["l1"])
    except ValueError as exc:
        raise _named(exc) from None


def solver_config(settings: dict[str, Any]) -> StocIALMConfig:
    """A :class:`~stoc_ialm.ialm.StocIALMConfig` from the solver keys of ``settings`` (errors name the flag)."""
    from stoc_ialm.ialm import StocIALMConfig

    try:
        return StocIALMConfig(**{k: settings[k] for k in SOLVER_FLAGS if k in settings})
    except ValueError as exc:
        raise _named(exc) from None


def check_step(config: StocIALMConfig) -> None:
    """Reject settings whose first step ``η_0 = lr_scale / (L (1 + β_0))`` is not a positive finite number.

    Raises:
        ValueError: naming ``--lr-scale`` and ``--lipschitz`` (e.g. ``1e308`` and ``1e-1`` overflow to ``inf``).
    """
    eta0 = config.lr_scale / (config.lipschitz * (1.0 + config.beta0))
    if not (math.isfinite(eta0) and eta0 > 0):
        raise ValueError(f"--lr-scale / --lipschitz: the first step lr_scale / (L (1 + beta0)) = {eta0!r} is not a "
                         f"positive finite number (lr_scale {config.lr_scale:g}, lipschitz {config.lipschitz:g})")  # fmt: skip


def _solver_defaults() -> dict[str, Any]:
    """StocIALMConfig's defaults, less ``lipschitz`` and ``batch`` (resolved from the data)."""
    from stoc_ialm.ialm import StocIALMConfig

    fields = {f.name: f.default for f in dataclasses.fields(StocIALMConfig)}
    return {k: v for k, v in fields.items() if k in SOLVER_FLAGS and k not in ("lipschitz", "batch")}


def _data_label(settings: dict[str, Any]) -> str:
    if settings.get("data"):
        return Path(str(settings["data"])).stem
    return str(settings.get("dataset") or "data")


def _saved_settings(out: Path, kind: str) -> dict[str, Any]:
    config, ckpt = out / "config.json", out / CHECKPOINT
    if not config.is_file() or not ckpt.is_file():
        raise ValueError(f"--resume: no run to resume in {out} (needs config.json and {CHECKPOINT})")
    try:
        record = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"--resume: cannot read {config}: {exc}") from None
    if not isinstance(record, dict) or record.get("problem") != kind or not isinstance(record.get("settings"), dict):
        raise ValueError(f"--resume: {config} is not a 'run {kind}' configuration")
    return parse_settings(kind, record["settings"], str(config))


def _resolve_data_path(settings: dict[str, Any]) -> None:
    if settings.get("data"):
        settings["data"] = str(Path(str(settings["data"])).expanduser().resolve())


# -- run -------------------------------------------------------------------------------------------
def run_command(args: argparse.Namespace) -> int:
    """``stoc-ialm run np|fairness``: solve with Stoc-iALM; write config.json, checkpoint.pt, result.json in --out."""

    from stoc_ialm.ialm import _RESUME_FREE, DivergenceError, StocIALM, load_checkpoint

    kind: str = args.problem
    chosen: dict[str, Any] = {**args.file_settings, **args.flag_settings}
    _resolve_data_path(chosen)
    out: Path = args.out if args.out is not None else Path("runs") / f"{kind}-{_data_label(chosen)}"
    saved = _saved_settings(out, kind) if args.resume else {}
    settings: dict[str, Any] = {**PROBLEM_DEFAULTS[kind], **_solver_defaults(), **saved, **chosen}
    if saved:
        keys = (set(saved) | set(settings)) - set(_RESUME_FREE)
        diff = sorted(k for k in keys if settings.get(k) != saved.get(k))
        if diff:
            flags = ", ".join(_flag(k) for k in diff)
            raise ValueError(f"--resume: the run in {out} was made with other settings (differs in {flags}); resume "
                             "with the same settings (only --max-outer, --budget and --tol may change) or use "
                             "another --out")  # fmt: skip
    data = load_data(kind, settings)
    problem = build_problem(kind, data, settings)
    if "lipschitz" not in settings:
        settings["lipschitz"] = estimate_lipschitz(problem)
        estimated = True
    else:
        estimated = _was_estimated(out) if saved and "lipschitz" not in chosen else False
    if "batch" not in settings:
        settings["batch"] = min(DEFAULT_BATCH, problem.n_f, *problem.n_c)
    config = solver_config(settings)
    check_step(config)
    try:
        solver = StocIALM(problem, config)
    except ValueError as exc:
        raise _named(exc) from None

    ckpt = out / CHECKPOINT
    if not args.resume:  # a fresh run: files of an earlier run in this folder must not outlive it
        for stale in (ckpt, out / "result.json", out / "reference.json"):
            stale.unlink(missing_ok=True)
    record = {
        "package": "stoc-ialm", "version": __version__, "command": f"run {kind}", "problem": kind,
        "settings": {k: settings[k] for k in [*PROBLEM_FLAGS[kind], *SOLVER_FLAGS] if k in settings},
        "lipschitz_estimated": estimated,
        "solver": "StocIALM", "solver_config": dataclasses.asdict(config), "data": _data_record(data),
        "files": {"checkpoint": CHECKPOINT, "result": "result.json"},
    }  # fmt: skip
    write_json(out / "config.json", record)

    show = not args.json
    if show:
        print(_describe(kind, data, settings, estimated))
        print(f"Stoc-iALM: {_describe_solver(config)}; run folder {out}\n")
        print(format_table(TABLE_HEADER, []))
        if args.resume:
            previous = load_checkpoint(ckpt).get("history", [])
            for rec in previous:
                print(format_table(TABLE_HEADER, [history_row(rec)]).splitlines()[-1])
            print(f"(resumed after outer step {len(previous) - 1})")
    callback = _row_printer() if show else None
    try:
        result = solver.solve(problem.initial_point(), checkpoint=ckpt, resume=args.resume, progress=show,
                              callback=callback)  # fmt: skip
    except DivergenceError as exc:
        where = f"{ckpt} holds the last finite outer step" if ckpt.is_file() else "no outer step finished"
        raise DivergenceError(
            f"{exc} (hint: lower --lr-scale (now {config.lr_scale:g}) or --sigma (now {config.sigma:g}), or raise "
            f"--lipschitz (now {config.lipschitz:g}); {where})"
        ) from None
    result.to_json(out / "result.json")
    summary = _summary(kind, data, problem, result, out)
    if args.reference:
        summary["reference"] = _reference(problem, result, out)
    if args.json:
        print(json.dumps(summary, default=float))
        return 0
    print()
    rows = [[k, v] for k, v in summary.items() if k not in ("reference", "multipliers")]
    rows.append(["multipliers ȳ", ", ".join(f"{v:.4g}" for v in summary["multipliers"])])
    if "reference" in summary:
        ref = summary["reference"]
        rows += [["SLSQP F*", ref["F"]], ["F − F*", ref["gap"]], ["SLSQP violation", ref["violation"]],
                 ["SLSQP stationarity", ref["stationarity"]]]  # fmt: skip
    print(format_table(["metric", "value"], rows))
    return 0


def _was_estimated(out: Path) -> bool:
    try:
        return bool(json.loads((out / "config.json").read_text(encoding="utf-8")).get("lipschitz_estimated", False))
    except (OSError, json.JSONDecodeError):
        return False


def _data_record(data: Dataset) -> dict[str, Any]:
    record: dict[str, Any] = {"name": data.name, "n": data.n, "d": data.d, "positives": data.n_pos,
                              "source": data.source}  # fmt: skip
    if data.group is not None:
        record["group"] = {"meaning": data.group_name, "count": int(data.group.sum())}
    return record


def _describe(kind: str, data: Dataset, settings: dict[str, Any], estimated: bool) -> str:
    if kind == "np":
        what = (f"Neyman-Pearson on {data.summary()}: min E_pos[{settings['loss']}] + {settings['l1']:g}‖x‖₁ "
                f"s.t. E_neg[loss] <= α = {settings['alpha']:g}")  # fmt: skip
    else:
        what = (f"demographic parity on {data.summary()}: min E[{settings['loss']}] + {settings['l1']:g}‖x‖₁ "
                f"s.t. |DP gap of σ(aᵀx)| <= κ = {settings['kappa']:g}")  # fmt: skip
    how = "estimated from the data" if estimated else "given"
    return f"{what}\nL = {settings['lipschitz']:.4g} ({how})"


def _describe_solver(config: StocIALMConfig) -> str:
    shown = ("beta0", "sigma", "gamma0", "lr_scale", "momentum", "inner_iters0", "batch", "post_batch", "dual_batch",
             "max_outer", "budget", "tol", "seed")  # fmt: skip
    return ", ".join(f"{k}={_cell(getattr(config, k))}" for k in shown)


def _summary(kind: str, data: Dataset, problem: Any, result: SolveResult, out: Path | None) -> dict[str, Any]:
    final = result.history[-1] if result.history else {}
    summary: dict[str, Any] = {"problem": kind, "data": data.name, "status": result.status,
                               "outer_steps": len(result.history)}  # fmt: skip
    for key in ("oracle_calls", "data_passes", "objective", "violation", "stationarity", "complementarity", "kkt",
                "beta", "wall_s"):  # fmt: skip
        summary[key] = final.get(key)
    summary.update(problem.metrics(result.x))
    summary["multipliers"] = [float(v) for v in result.multipliers]
    if out is not None:
        summary["out"] = str(out)
    return summary


def _reference(problem: Any, result: SolveResult, out: Path | None) -> dict[str, Any]:
    from stoc_ialm.reference import slsqp_reference

    ref = slsqp_reference(problem)
    F = result.history[-1]["objective"] if result.history else math.nan
    info = {k: v for k, v in ref.info.items() if k != "message"}
    summary = {"F": ref.F, "gap": F - ref.F, "violation": ref.info["violation"],
               "stationarity": ref.info["stationarity"], "success": ref.info["success"], "nfev": ref.info["nfev"],
               "time_s": ref.info["time_s"]}  # fmt: skip
    if out is not None:
        write_json(out / "reference.json", {"F": ref.F, "x": ref.x.tolist(), "multipliers": ref.multipliers.tolist(),
                                            "info": {**info, "message": ref.info["message"]}})  # fmt: skip
    return summary


# -- demo ------------------------------------------------------------------------------------------
def demo(args: argparse.Namespace) -> int:
    """Stoc-iALM against the full-batch SLSQP optimum on Neyman-Pearson breast_cancer (a few seconds)."""
    from stoc_ialm.ialm import StocIALM
    from stoc_ialm.reference import slsqp_reference

    settings = {**DEMO, "seed": args.seed}
    if args.max_outer is not None:
        settings["max_outer"] = args.max_outer
    data = load_data("np", {"dataset": args.dataset})
    problem = build_problem("np", data, settings)
    settings["lipschitz"] = estimate_lipschitz(problem)
    settings["batch"] = min(settings["batch"], problem.n_f, *problem.n_c)
    config = solver_config(settings)
    show = not args.json
    if show:
        print(f"stoc-ialm demo: {_describe('np', data, settings, True)}")
        print(f"Stoc-iALM: {_describe_solver(config)}\n")
        print(format_table(TABLE_HEADER, []))
    callback = _row_printer() if show else None
    result = StocIALM(problem, config).solve(problem.initial_point(), progress=show, callback=callback)
    ref = slsqp_reference(problem)
    final = result.history[-1]
    ours = _summary("np", data, problem, result, None)
    theirs = {"objective": ref.F, "violation": ref.info["violation"], "stationarity": ref.info["stationarity"],
              "complementarity": ref.info["complementarity"], "nfev": ref.info["nfev"], "wall_s": ref.info["time_s"],
              "success": ref.info["success"], **problem.metrics(ref.x)}  # fmt: skip
    theirs["kkt"] = max(theirs["violation"], theirs["stationarity"], theirs["complementarity"])
    gap = final["objective"] - ref.F
    if args.json:
        print(json.dumps({"stoc_ialm": ours, "slsqp": theirs, "gap": gap}, default=float))
        return 0
    header = ["method", "F", "F − F*", "violation", "stationarity", "KKT", "oracle calls", "data passes", "fpr",
              "fnr", "seconds"]  # fmt: skip
    rows = [
        ["Stoc-iALM", final["objective"], gap, final["violation"], final["stationarity"], final["kkt"],
         final["oracle_calls"], round(final["data_passes"], 1), ours["fpr"], ours["fnr"], final["wall_s"]],
        ["SLSQP (full batch)", ref.F, 0.0, theirs["violation"], theirs["stationarity"], theirs["kkt"], None,
         f"{ref.info['nfev']} full evaluations", theirs["fpr"], theirs["fnr"], ref.info["time_s"]],
    ]  # fmt: skip
    print()
    print(format_table(header, rows))
    print(f"\nStoc-iALM ends {abs(gap):.2e} {'above' if gap >= 0 else 'below'} the SLSQP optimum F* = {ref.F:.6f} "
          f"with violation {final['violation']:.1e} after {final['data_passes']:.0f} passes over the data (one seed; "
          "fpr/fnr are the 0/1 rates of z > 0, the constraint bounds their sigmoid surrogate).")  # fmt: skip
    return 0


# -- bench ---------------------------------------------------------------------------------------
def bench_command(args: argparse.Namespace) -> int:
    """``stoc-ialm bench``: :func:`stoc_ialm.bench.run_bench` over the chosen workloads and methods."""
    from stoc_ialm.bench import METHODS, QUICK, WORKLOADS, cooper_available, run_bench
    from stoc_ialm.environment import collect

    if args.quick:
        workloads = [QUICK]
    else:
        names = [s.strip() for s in str(args.workloads).split(",") if s.strip()]
        bad = [n for n in names if n not in WORKLOADS]
        if bad or not names:
            raise ValueError(f"--workloads must be a comma list of {', '.join(WORKLOADS)}, got {args.workloads!r}")
        workloads = [WORKLOADS[n] for n in names]
    if args.methods is None:
        methods = [m for m in METHODS if m != "cooper-alm" or cooper_available()]
    else:
        methods = [s.strip() for s in str(args.methods).split(",") if s.strip()]
        bad = [m for m in methods if m not in METHODS]
        if bad or not methods:
            raise ValueError(f"--methods must be a comma list of {', '.join(METHODS)}, got {args.methods!r}")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    jobs = args.jobs if args.jobs is not None else min(2, int(collect()["cpu_count"]))
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    for w in workloads:
        if w.dataset == "adult":
            load_data(w.kind, {"dataset": "adult"})  # DataMissingError (exit 3) before any work
    seeds = [0] if args.quick else list(range(args.seeds))
    reports = run_bench(workloads, methods, seeds, args.out, jobs=jobs, quick=args.quick, fresh=args.fresh,
                        progress=not args.json, command=" ".join(["stoc-ialm", *args.argv]))  # fmt: skip
    if args.json:
        print(json.dumps({name: {k: v for k, v in r.items() if k != "machine"} for name, r in reports.items()},
                         default=str))  # fmt: skip
        return 0
    for name, _report in reports.items():
        print((args.out / f"{name}.md").read_text(encoding="utf-8"))
    print(f"wrote {', '.join(str(args.out / (n + '.json')) for n in reports)} (+ .md, .png)")
    return 0


# -- datasets --------------------------------------------------------------------------------------
def datasets_command(args: argparse.Namespace) -> int:
    """The data sets available offline: name, status, which problems take it, size and source."""
    from stoc_ialm.datasets import adult_path, available

    rows = []
    for name, text in available().items():
        missing = "[missing:" in text
        if name == "adult" and not adult_path().is_file():
            missing, text = True, f"{text} [missing: {adult_path()}]"
        problems = "np, fairness" if name in FAIRNESS_DATASETS else "np"
        rows.append({"name": name, "available": not missing, "problems": problems, "description": text})
    if args.json:
        print(json.dumps(rows))
        return 0
    print(format_table(["name", "available", "run", "size and source"],
                       [[r["name"], "yes" if r["available"] else "no", r["problems"], r["description"]]
                        for r in rows]))  # fmt: skip
    print("\nAny LIBSVM/svmlight file works too: stoc-ialm run np --data FILE.svm")
    return 0


# -- plot ------------------------------------------------------------------------------------------
def plot_command(args: argparse.Namespace) -> int:
    """Three panels (objective, violation, KKT residual vs oracle calls) of one or more result.json files."""
    from stoc_ialm.plotting import load_history, plot_history

    paths: list[Path] = list(args.results)
    if args.labels is not None:
        labels = [s.strip() for s in args.labels.split(",")]
        if len(labels) != len(paths) or not all(labels) or len(set(labels)) != len(labels):
            raise ValueError(f"--labels must give {len(paths)} distinct non-empty names, one per file, "
                             f"got {args.labels!r}")  # fmt: skip
    else:
        labels = default_labels(paths)
    histories = {label: load_history(path) for label, path in zip(labels, paths, strict=True)}
    out: Path = args.out
    plot_history(histories, out, title=args.title)
    print(f"wrote {out} ({len(paths)} run{'s' if len(paths) > 1 else ''}: {', '.join(labels)})")
    return 0


def default_labels(paths: Sequence[Path]) -> list[str]:
    """A label per result file: the folder name for ``…/NAME/result.json``, else the file stem; made distinct."""
    labels = [p.parent.name if p.stem == "result" and p.parent.name else p.stem for p in paths]
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({i + 1})" for i, label in enumerate(labels)]
    return labels
