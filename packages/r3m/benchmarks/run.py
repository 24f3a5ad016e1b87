#!/usr/bin/env python3
"""Benchmarks of r3m against the baselines of its spec (``make bench PKG=r3m``).

The benchmark code ships with the package (:mod:`r3m.bench`, also ``r3m bench``); this
script runs it and writes ``results/<name>.json`` and ``results/<name>.md`` next to itself.

Usage: python benchmarks/run.py [--quick] [--only NAME] [--seeds N] [--out DIR] [--fresh]

An interrupted run keeps its finished seeds in DIR/<name>.partial.json; the same command again
resumes from them (--fresh starts over).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from r3m.bench import BENCHMARKS, check_run_args, run

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smallest settings, one seed (the smoke test)")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), help="run one benchmark")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per setting (default 5; --quick 1)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and Markdown results")
    parser.add_argument("--fresh", action="store_true", help="start over: ignore an interrupted run's finished seeds")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    command = shlex.join(["python", os.path.relpath(Path(__file__).resolve(), REPO), *argv])  # from the repo root
    try:  # a bad --seeds / --out: argparse's one-line error, not a traceback (a ValueError from a run stays one)
        check_run_args(only=args.only, quick=args.quick, seeds=args.seeds, out=args.out)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        return run(only=args.only, quick=args.quick, seeds=args.seeds, out=args.out, fresh=args.fresh, command=command)
    except KeyboardInterrupt:
        print("interrupted; the same command again resumes from the finished seeds kept in --out", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
