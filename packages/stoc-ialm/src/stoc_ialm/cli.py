"""Command line interface of stoc-ialm: ``stoc-ialm COMMAND`` (also ``python -m stoc_ialm``).

Only the standard library is imported at module level, so ``stoc-ialm --help`` and
``stoc-ialm --version`` answer in well under half a second; each command imports what it needs
(:mod:`stoc_ialm.commands` holds the work). Tables go to stdout, logs and progress bars to stderr.

Exit status: 0 ok, 2 bad argument (one line from ``parser.error``), 3 data missing (a data file or a
data set whose optional source is absent), 4 diverged (a non-finite augmented Lagrangian).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from stoc_ialm._version import __version__

EXIT_OK = 0
EXIT_USAGE = 2
"""A bad argument, flag, config file or result file (``parser.error``)."""
EXIT_DATA_MISSING = 3
"""A data file that does not exist, or a data set whose optional source is not installed."""
EXIT_DIVERGED = 4
"""The augmented Lagrangian became non-finite (:class:`stoc_ialm.ialm.DivergenceError`)."""

DATASETS = ("breast_cancer", "digits", "wine", "adult", "synthetic")
"""Names :func:`stoc_ialm.datasets.load` knows (kept here so ``--help`` needs no import; a test checks them)."""
FAIRNESS_DATASETS = ("adult", "synthetic")
"""The data sets with a sensitive attribute."""
LOSSES = ("sigmoid", "logistic")


def _int_or_full(text: Any) -> int | None:
    """A batch size: an integer, or ``full`` / ``None`` for the whole data (deterministic)."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("full", "none")):
        return None
    return _integer(text)


def _int_or_none(text: Any) -> int | None:
    """An integer, or ``none`` / ``None`` for no limit."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "none"):
        return None
    return _integer(text)


def _integer(text: Any) -> int:
    """An integer, also written as ``3e6`` or ``3000000.0``."""
    if isinstance(text, bool):
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}")
    if isinstance(text, int):
        return text
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}")
    return int(value)


def _number(text: Any) -> float:
    """A real number (``1e-3``, ``0.5``)."""
    if isinstance(text, bool):
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}")
    try:
        return float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def _momentum(text: Any) -> float | str:
    """PStorm's θ: a number in (0, 1] or ``paper``."""
    if isinstance(text, str) and text.strip() == "paper":
        return "paper"
    try:
        return _number(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1] or 'paper', got {text!r}") from None


def _text(text: Any) -> str:
    if not isinstance(text, str):
        raise argparse.ArgumentTypeError(f"must be a string, got {text!r}")
    return text


SOLVER_FLAGS: dict[str, tuple[Any, str]] = {
    "beta0": (_number, "initial penalty β₀ > 0 (default 1)"),
    "sigma": (_number, "penalty growth σ > 1, β_{k+1} = σ β_k (default 1.5)"),
    "gamma0": (_number, "scale γ₀ > 0 of the summable dual-step bound (default 1000)"),
    "lipschitz": (_number, "smoothness scale L in L_k = L (1 + ‖y‖ + β_k) (default: estimated from the data, "
                           "0.1·‖A‖₂²/n for the sigmoid, 0.25·‖A‖₂²/n for the logistic loss, largest over the "
                           "finite sums; stoc_ialm.commands.estimate_lipschitz)"),
    "lr_scale": (_number, "PStorm step η_k = lr_scale / L_k (default 1)"),
    "momentum": (_momentum, "PStorm θ in (0, 1], or 'paper' for Xu & Xu's schedule (default 0.1)"),
    "inner_iters0": (_integer, "T₀, PStorm iterations of the first subproblem; T_k = ⌈T₀ σ^{k/2}⌉ (default 500)"),
    "max_inner_iters": (_integer, "cap on T_k (default 20000)"),
    "batch": (_int_or_full, "minibatch of f, J_c and c, or 'full' (default 64, or the smallest sample count "
                            "when that is smaller)"),
    "post_batch": (_int_or_full, "batch of the postprocessing prox step; 'full', or 0 for none (default full)"),
    "dual_batch": (_int_or_full, "batch of the constraint estimate of the dual step, or 'full' (default full)"),
    "output": (_text, "inner output: 'last' or 'random' iterate (default last)"),
    "max_outer": (_integer, "outer iterations at most (default 20; may change on --resume)"),
    "budget": (_int_or_none, "oracle-call budget, e.g. 3e6, or 'none' (default none; may change on --resume)"),
    "tol": (_number, "stop at full-data KKT residual <= tol (default 0; may change on --resume)"),
    "seed": (_integer, "seed of the minibatch sampler (default 0)"),
}  # fmt: skip
"""Every :class:`~stoc_ialm.ialm.StocIALMConfig` field as a flag (``--lr-scale`` for ``lr_scale``): parser, help."""

PROBLEM_FLAGS: dict[str, dict[str, tuple[Any, str]]] = {
    "np": {
        "dataset": (_text, f"built-in data set: {', '.join(DATASETS)} (or --data)"),
        "data": (_text, "a LIBSVM/svmlight file instead of --dataset (the larger of two labels is y = 1)"),
        "alpha": (_number, "bound α in (0, 1) on the surrogate false-positive rate (default 0.2)"),
        "loss": (_text, "sigmoid (nonconvex, default) or logistic"),
        "l1": (_number, "λ₁ >= 0 of the L1 regularizer, bias included (default 1e-3)"),
    },
    "fairness": {
        "dataset": (_text, f"data set with a sensitive attribute: {', '.join(FAIRNESS_DATASETS)}"),
        "kappa": (_number, "bound κ >= 0 on |DP gap| of the sigmoid scores (default 0.05)"),
        "loss": (_text, "logistic (default) or sigmoid"),
        "l1": (_number, "λ₁ >= 0 of the L1 regularizer (default 0)"),
    },
}
"""The problem settings of ``run np`` and ``run fairness``: parser, help."""

_CHOICES: dict[str, tuple[str, ...]] = {"loss": LOSSES, "output": ("last", "random")}


def _add_run_flags(p: argparse.ArgumentParser, problem: str) -> None:
    g = p.add_argument_group("problem (flags override --config, which overrides the defaults)")
    for name, (kind, text) in PROBLEM_FLAGS[problem].items():
        metavar = "FILE" if name == "data" else ("NAME" if name == "dataset" else None)
        g.add_argument(f"--{name}", dest=name, type=kind, default=None, choices=_CHOICES.get(name),
                       metavar=metavar, help=text)  # fmt: skip
    s = p.add_argument_group("solver (StocIALMConfig; flags override --config)")
    for name, (kind, text) in SOLVER_FLAGS.items():
        s.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None, choices=_CHOICES.get(name),
                       help=text)  # fmt: skip
    r = p.add_argument_group("run")
    r.add_argument("--config", type=Path, default=None, metavar="FILE", help="TOML or JSON table of the settings above")
    r.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="folder for config.json, checkpoint.pt, result.json (default runs/<problem>-<data>)")  # fmt: skip
    r.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    r.add_argument("--reference", action="store_true", help="also solve with full-batch SLSQP and report F − F*")
    r.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``stoc-ialm``, one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="stoc-ialm",
        description="Stochastic inexact augmented Lagrangian solver for expectation-constrained problems.",
        epilog='Paper: Li, Chen, Liu, Lu, Xu, "Stochastic inexact augmented Lagrangian method for nonconvex '
        'expectation constrained optimization", Computational Optimization and Applications 87 (2024), '
        "arXiv:2212.09513. Exit status: 0 ok, 2 bad argument, 3 data missing, 4 diverged.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = sub.add_parser("info", help="print package, python and dependency versions, threads and CUDA")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    demo = sub.add_parser("demo", help="Stoc-iALM vs the SLSQP optimum on Neyman-Pearson breast_cancer (seconds)")
    demo.add_argument("--dataset", choices=("breast_cancer", "wine"), default="breast_cancer",
                      help="data set (default breast_cancer)")  # fmt: skip
    demo.add_argument("--seed", type=_integer, default=0, help="seed of the minibatches (default 0)")
    demo.add_argument("--max-outer", type=_integer, default=None, help="outer iterations (default 14)")
    demo.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")

    run = sub.add_parser("run", help="solve a constrained classification problem with Stoc-iALM; checkpoints, --resume")
    problems = run.add_subparsers(dest="problem", metavar="PROBLEM", required=True)
    np_ = problems.add_parser("np", help="Neyman-Pearson: min miss rate s.t. false-alarm rate <= alpha")
    _add_run_flags(np_, "np")
    fair = problems.add_parser("fairness", help="classification s.t. |demographic-parity gap| <= kappa")
    _add_run_flags(fair, "fairness")

    bench = sub.add_parser(
        "bench", help="every method tuned on a small grid at one oracle budget, 3 seeds, vs SLSQP (spec §6; minutes)"
    )
    bench.add_argument(
        "--workloads",
        default="np-adult,fairness-adult,np-breast_cancer",
        help="comma list of np-adult, fairness-adult, np-breast_cancer (default: all three)",
    )
    bench.add_argument(
        "--methods",
        default=None,
        help="comma list of stoc-ialm, ipp-conex, penalty-sgd, gda, cooper-alm (default: all; "
        "cooper-alm only when cooper is installed)",
    )
    bench.add_argument("--seeds", type=_integer, default=3, help="seeds 0..N-1 per grid point (default 3)")
    bench.add_argument("--jobs", type=_integer, default=None, help="worker processes (default: min(2, CPUs))")
    bench.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results"),
        metavar="DIR",
        help="folder for <workload>.json/.md/.png and the per-run files (default bench-results)",
    )
    bench.add_argument(
        "--quick", action="store_true", help="smoke-test size: NP-breast_cancer at 2e4 calls, one grid point per method"
    )
    bench.add_argument("--fresh", action="store_true", help="ignore per-run files of an interrupted bench")
    bench.add_argument("--json", action="store_true", help="print the reports as one JSON object")

    datasets = sub.add_parser("datasets", help="the data sets available offline and their sizes")
    datasets.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    plot = sub.add_parser("plot", help="objective, violation and KKT residual vs oracle calls (PNG; needs [plot])")
    plot.add_argument("results", nargs="+", type=Path, metavar="RESULT.json", help="result.json files of runs")
    plot.add_argument("--out", type=Path, required=True, metavar="FILE", help="image to write (.png, .pdf, .svg)")
    plot.add_argument("--labels", default=None, help="comma list, one per file (default: the run folder names)")
    plot.add_argument("--title", default=None, help="figure title")
    return parser


def load_config_file(path: Path) -> dict[str, Any]:
    """The table of a TOML (``.toml``) or JSON file; unreadable or malformed files raise ``ValueError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"--config: cannot read {path}: {exc.strerror or exc}") from exc
    if path.suffix == ".toml":
        try:
            tomllib = importlib.import_module("tomllib")
        except ModuleNotFoundError as exc:  # Python 3.10
            raise ValueError("--config: TOML needs Python >= 3.11; use a JSON file") from exc
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"--config: {path} is not valid TOML: {exc}") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--config: {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"--config: {path} must hold one table/object of settings")
    return data


def parse_settings(problem: str, values: dict[str, Any], where: str) -> dict[str, Any]:
    """Check the keys of a settings table (a config file, a saved run) and parse each value like its flag.

    Raises:
        ValueError: an unknown key or a value its flag would reject (the message names ``where`` and the key).
    """
    known = {**PROBLEM_FLAGS[problem], **SOLVER_FLAGS}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown} for run {problem}; known: {', '.join(known)}")
    out: dict[str, Any] = {}
    for key, value in values.items():
        try:
            out[key] = known[key][0](value)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"{where}: {key} {exc}") from None
        choices = _CHOICES.get(key)
        if choices is not None and out[key] not in choices:
            raise ValueError(f"{where}: {key} must be one of {', '.join(choices)}, got {out[key]!r}")
    return out


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = [*PROBLEM_FLAGS[args.problem], *SOLVER_FLAGS]
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _fail(parser: argparse.ArgumentParser, command: str, message: str, status: int) -> int:
    print(f"{parser.prog} {command}: error: {' '.join(message.split())}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """Run ``stoc-ialm`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.command == "info":
        from stoc_ialm.environment import collect, format_table

        report = collect()
        print(json.dumps(report, indent=2) if args.json else format_table(report))
        return EXIT_OK
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from stoc_ialm import commands

    command = args.command if args.command != "run" else f"run {args.problem}"
    try:
        if args.command == "run":
            from_file = load_config_file(args.config) if args.config is not None else {}
            args.file_settings = parse_settings(args.problem, from_file, "--config")
            args.flag_settings = _flags(args)
            return commands.run_command(args)
        handlers = {
            "demo": commands.demo,
            "bench": commands.bench_command,
            "datasets": commands.datasets_command,
            "plot": commands.plot_command,
        }
        return handlers[args.command](args)
    except commands.DataMissingError as exc:
        return _fail(parser, command, str(exc), EXIT_DATA_MISSING)
    except FloatingPointError as exc:  # stoc_ialm.ialm.DivergenceError
        return _fail(parser, command, f"diverged: {exc}", EXIT_DIVERGED)
    except BrokenPipeError:  # stdout closed early (``| head``): stop quietly, as a filter should
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, ImportError, OSError) as exc:
        parser.error(f"{command}: {' '.join(str(exc).split())}")
