#!/usr/bin/env python3
"""Benchmarks of cosmos-optim against AdamW, Muon and SOAP (``make bench PKG=cosmos-optim``).

The benchmark code ships with the package (:mod:`cosmos_optim.bench`, also ``cosmos-optim bench``);
this script runs it and writes ``results/<name>.json``, ``results/<name>.md`` (and the ``lm`` plots)
next to itself. ``lm`` keeps each finished run under ``results/lm-runs/``, so ``--resume`` after an
interruption goes on with the next unfinished run.

Usage: python benchmarks/run.py [--quick] [--only NAME] [--resume] [--threads N] [--steps N] [--seeds N]
       [--optimizers adamw,muon,soap,cosmos] [--out DIR]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cosmos_optim.bench import BENCHMARKS, run

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smallest settings (the smoke test, seconds)")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), help="run one benchmark")
    parser.add_argument("--resume", action="store_true", help="lm: reuse the finished runs found in --out")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for every benchmark (default 2)")
    parser.add_argument("--steps", type=int, default=None, help="lm steps per run (default 200; --quick 6)")
    parser.add_argument("--seeds", type=int, default=None, help="lm seeds at the chosen lr (default 3; --quick 2)")
    parser.add_argument("--optimizers", default=None, help="comma list (default adamw,muon,soap,cosmos)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON, Markdown and PNG results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    optimizers = [s.strip() for s in args.optimizers.split(",") if s.strip()] if args.optimizers else None
    try:
        return run(only=args.only, quick=args.quick, out=args.out, resume=args.resume, threads=args.threads,
                   steps=args.steps, seeds=args.seeds, optimizers=optimizers)  # fmt: skip
    except ValueError as exc:
        parser.error(str(exc))


if __name__ == "__main__":
    raise SystemExit(main())
