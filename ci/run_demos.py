#!/usr/bin/env python3
"""Run each package's ``demo`` verb in turn and report which packages are not ready (``make demo``).

A demo is a short real run on built-in data. Exit status 3 from a demo means "the method has not
landed yet"; any other non-zero status is a failure. Exits 1 unless every demo succeeded.

Usage: python ci/run_demos.py --venv .venv [--pkg NAMES] [--timeout 600]
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from matrix import Stopwatch, read_packages, select, venv_bin

NOT_READY = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, default=Path(".venv"), help="venv holding the console scripts")
    parser.add_argument("--pkg", default="", help="comma/space separated pip names (default: all)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for each demo")
    args = parser.parse_args(argv)

    rows = []
    for pkg in select(read_packages(), args.pkg):
        print(f"== {pkg.name} demo", flush=True)
        watch = Stopwatch()
        try:
            rc = subprocess.run(
                [str(venv_bin(args.venv, pkg.name)), "demo"], check=False, timeout=args.timeout
            ).returncode
        except subprocess.TimeoutExpired:
            rc = 124
        state = "ok" if rc == 0 else "not ready" if rc == NOT_READY else f"FAILED (exit {rc})"
        rows.append((pkg.name, state, watch.seconds()))

    print()
    width = max(len(name) for name, _, _ in rows)
    for name, state, seconds in rows:
        print(f"{name:<{width}}  {state:<16} {seconds:6.1f}s")
    not_ready = [name for name, state, _ in rows if state == "not ready"]
    failed = [name for name, state, _ in rows if state.startswith("FAILED")]
    if not_ready:
        print(f"not ready: {', '.join(not_ready)}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if not_ready or failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
