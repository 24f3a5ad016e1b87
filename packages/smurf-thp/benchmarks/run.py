#!/usr/bin/env python3
"""Benchmark of smurf-thp against the baselines of its issue (``make bench PKG=smurf-thp``).

SMURF-THP (exact and semi-gradient DSM), the SMURF head by maximum likelihood, THP's intensity head by maximum
likelihood and the true process, side by side on the spec's synthetic processes (3 seeds each); the work is :func:`smurf_thp.bench.run_bench`. Writes ``results/<suite>.json`` and ``.md`` with the
command, machine and date; per-run files go to ``results/<suite>-runs/`` (not committed) so an interrupted run
resumes.

With ``--anchors`` (extra ``[easytpp]``) the suite is ``anchors``: EasyTPP's THP, SAHP, NHP and IntensityFree beside
SMURF-THP, the two MLE heads and the true process, written to ``results/anchors.{json,md}``.

Usage: python benchmarks/run.py [--quick] [--anchors] [--out DIR] [--jobs N] [--fresh]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from smurf_thp.bench import markdown, run_bench
from smurf_thp.commands import bench_suite

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one tiny cell, for the smoke test")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and Markdown results")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes of one thread (default 2)")
    parser.add_argument("--fresh", action="store_true", help="ignore per-run files of an interrupted run")
    parser.add_argument("--anchors", action="store_true", help="the EasyTPP anchors' suite (extra [easytpp])")
    args = parser.parse_args(argv)
    command = " ".join(["python benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    report = run_bench(bench_suite(args.quick, args.anchors), args.out, jobs=args.jobs, fresh=args.fresh,
                       command=command)  # fmt: skip
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
