#!/usr/bin/env python3
"""Benchmarks of r3m against the baselines of its spec (``make bench PKG=r3m``).

Each benchmark is a function registered in ``BENCHMARKS``; it runs our method and the spec's
baselines in the same loop (same seeds, same thread count) and writes
``results/<name>.json`` and ``results/<name>.md`` (command, machine, date, config, rows, ratios).

Usage: python benchmarks/run.py [--quick] [--only NAME] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

BENCHMARKS: dict[str, Callable[[argparse.Namespace], int]] = {}
"""Benchmark name -> function; filled as the method lands (issue #6)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smallest settings, for the smoke test")
    parser.add_argument("--only", choices=sorted(BENCHMARKS) or None, help="run one benchmark")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and Markdown results")
    args = parser.parse_args(argv)
    if not BENCHMARKS:
        print("r3m: no benchmark exists yet; they land with the method (issue #6).", file=sys.stderr)
        return 3
    names = [args.only] if args.only else sorted(BENCHMARKS)
    return max(BENCHMARKS[n](args) for n in names)


if __name__ == "__main__":
    raise SystemExit(main())
