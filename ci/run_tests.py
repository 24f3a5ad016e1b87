#!/usr/bin/env python3
"""Run each package's tests in its own pytest process (stdlib only).

One process per package (cwd = the package folder, so its ``pyproject.toml`` configures pytest);
never one process over all packages, whose test file names collide. Junit XML goes to
``build/junit/<pkg>.xml``. Prints ``[pkg] passed failed skipped seconds`` per package and a
final ``N passed, N failed, N skipped`` line; exits 1 if any package fails or runs no test.

Usage: python ci/run_tests.py [--pkg NAMES] [--python PY] [-m MARKEXPR] [--no-ci] [-- PYTEST ARGS]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from matrix import ROOT, format_summary, read_packages, select
from suites import SuiteResult, run_pytest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pkg", default="", help="comma/space separated pip names (default: all)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with the packages installed")
    parser.add_argument("-m", dest="markexpr", default=None, help="pytest -m expression, e.g. 'not slow'")
    parser.add_argument("--junit-dir", type=Path, default=ROOT / "build" / "junit")
    parser.add_argument("--no-ci", action="store_true", help="skip the tests of the ci/ scripts themselves")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for every pytest process (after --)")
    args = parser.parse_args(argv)

    packages = select(read_packages(), args.pkg)
    extra = list(args.pytest_args)
    if args.markexpr:
        extra = ["-m", args.markexpr, *extra]

    results: list[SuiteResult] = []
    for pkg in packages:
        results.append(run_pytest(pkg.name, args.python, pkg.path(), args.junit_dir / f"{pkg.name}.xml", extra))
    if not args.pkg and not args.no_ci:
        results.append(run_pytest("ci", args.python, ROOT / "ci", args.junit_dir / "ci.xml", extra))

    lines, final, _ = format_summary(r.row() for r in results)
    print()
    for line in lines:
        print(line)
    bad = [r.name for r in results if not r.ok]
    for r in results:
        if r.passed == 0 and r.failed == 0:
            print(f"[{r.name}] ran no test (pytest exit {r.returncode})")
    if bad:
        print(f"failing suites: {', '.join(bad)}")
    print(final, flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
