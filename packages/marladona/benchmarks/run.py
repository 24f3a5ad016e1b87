#!/usr/bin/env python3
"""Benchmarks of marladona against the baselines of its spec (``make bench PKG=marladona``).

Spec §6 / issue #8, three parts (the work is :func:`marladona.bench.run_bench`):

- ``sim``: simulator throughput in agent-steps/s for 1v1 and 3v3 at 1024/4096/16384 games, 1 and 2
  torch threads, our env (random red, heuristic red) interleaved with VMAS football (its red AI on;
  ``pip install vmas==1.5.2``, left out with a note when absent), ratios in the same run;
- ``sim-compiled``: the same at 4096 games with ``SoccerEnv(compile=True)`` beside (a cold compile takes
  about 3 minutes; a ``--quick`` run leaves this part out);
- ``train-1v1-idle``, ``train-1v1-curriculum-1of2``, ``train-1v1-curriculum-2of2``, ``train-3v3-idle-1of2``,
  ``train-3v3-idle-2of2`` (``train`` names them all): 1v1 vs idle (5 min), 1v1 with the opponent
  curriculum (15 min), 3v3 vs idle (15 min) of training time, then W/D/L with Wilson 95 % intervals
  and the training curves. The issue caps a part at 10 minutes, so a 15-minute run trains half its
  budget in its ``1of2`` part and the rest in its ``2of2`` part, which resumes the checkpoint and
  evaluates. Runs are kept in ``results/runs/<name>`` (not committed), so an interrupted bench resumes
  them; a finished run is reported again without retraining (``--fresh`` starts over).

The sim parts write ``results/<part>.json`` and ``results/<part>.md`` (command, machine, date, git commit,
load average, the table, the targets); every training part merges its run into ``results/train.json``
and ``results/train.md``. The Markdown is printed at the end.

Usage: python benchmarks/run.py [--quick] [--parts sim,sim-compiled,train] [--out DIR] [--threads 1,2] [--fresh]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from marladona.bench import ALIASES, PARTS, expand_parts, run_bench
from marladona.bench_train import TRAIN_RUNS

RESULTS = Path(__file__).resolve().parent / "results"


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"must be comma-separated integers >= 1, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smallest settings, for the smoke test (seconds)")
    names = (*PARTS, *ALIASES)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated parts from {', '.join(names)}")
    parser.add_argument("--only", choices=names, help="run one part (same as --parts NAME)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and Markdown results")
    parser.add_argument("--threads", type=_ints, default=[1, 2], help="torch threads of the sim part (default 1,2)")
    parser.add_argument(
        "--train-threads", type=int, default=None, help="torch threads of the train part (default 2; --quick: 1)"
    )
    for name, run in TRAIN_RUNS.items():
        parser.add_argument(f"--minutes-{name}", type=float, default=None, metavar="MIN",
                            help=f"training budget of {name} (default {run.minutes:g})")  # fmt: skip
    parser.add_argument("--episodes", type=int, default=None, help="evaluation games per opponent (default 1024)")
    parser.add_argument("--no-vmas", action="store_true", help="leave VMAS football out of the sim part")
    parser.add_argument("--fresh", action="store_true", help="retrain the runs instead of resuming them")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    parts = [args.only] if args.only else [p.strip() for p in args.parts.split(",") if p.strip()]
    try:
        expand_parts(parts)
    except ValueError:
        parser.error(f"--parts must be comma-separated names from {', '.join(names)}, got {args.parts!r}")
    if args.train_threads is not None and args.train_threads < 1:
        parser.error(f"--train-threads must be >= 1, got {args.train_threads}")
    if args.episodes is not None and args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    minutes = {}
    for name in TRAIN_RUNS:
        value = getattr(args, f"minutes_{name.replace('-', '_')}")
        if value is not None:
            if value <= 0:
                parser.error(f"--minutes-{name} must be > 0, got {value}")
            minutes[name] = value
    command = " ".join(["python benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    reports = run_bench(parts, args.out, args.quick, args.threads, train_threads=args.train_threads,
                        minutes=minutes or None, episodes=args.episodes, use_vmas=not args.no_vmas, seed=args.seed,
                        fresh=args.fresh, command=command)  # fmt: skip
    for record in dict.fromkeys(report["part"] for report in reports.values()):  # the training parts share one
        print((args.out / f"{record}.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
