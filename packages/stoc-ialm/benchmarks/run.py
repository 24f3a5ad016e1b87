#!/usr/bin/env python3
"""Benchmarks of stoc-ialm against the baselines of its spec (``make bench PKG=stoc-ialm``).

Spec §6: NP-Adult (B1), fairness-Adult (B2) and NP-breast_cancer (B4); Stoc-iALM, IPP-ConEx, fixed-penalty
SGD, stochastic GDA and cooper's augmented Lagrangian (when installed), each tuned on a small grid at the
same oracle budget and batch, 3 seeds, against the full-batch SLSQP optimum. The work is
:func:`stoc_ialm.bench.run_bench` (the same as ``stoc-ialm bench``); this script writes
``results/<workload>.json``, ``.md`` and ``.png`` with the command, machine and date. Per-run files go to
``results/<workload>-runs/`` (not committed), so an interrupted run resumes where it stopped.

Usage: python benchmarks/run.py [--quick] [--only NAME] [--out DIR] [--jobs N] [--fresh]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stoc_ialm.bench import METHODS, QUICK, WORKLOADS, cooper_available, run_bench

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smallest settings, for the smoke test")
    parser.add_argument("--only", choices=sorted(WORKLOADS), help="run one workload")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and Markdown results")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes of one thread (default 2)")
    parser.add_argument("--fresh", action="store_true", help="ignore per-run files of an interrupted run")
    args = parser.parse_args(argv)
    methods = [m for m in METHODS if m != "cooper-alm" or cooper_available()]
    if args.quick:
        workloads, seeds = [QUICK], [0]
    else:
        workloads = [WORKLOADS[args.only]] if args.only else list(WORKLOADS.values())
        seeds = [0, 1, 2]
    command = " ".join(["python benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    reports = run_bench(workloads, methods, seeds, args.out, jobs=args.jobs, quick=args.quick, fresh=args.fresh,
                        command=command)  # fmt: skip
    for name in reports:
        print((args.out / f"{name}.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
