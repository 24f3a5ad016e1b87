#!/usr/bin/env python3
"""The CI matrix proper: each package alone, from its wheel, in a fresh virtual environment.

For each selected package: build its wheel, check what the wheel ships, create a new venv, install
the wheel with its ``[test]`` extra only (torch through ``ci/constraints.txt``), prove that the
package is imported from that venv and, for ``no-torch`` packages, that torch is absent, then copy
``tests/``, ``benchmarks/`` (for their smoke tests), ``scripts/`` (when present) and ``pyproject.toml`` (pytest's
configuration) to a folder outside the source tree
and run the tests not marked ``slow`` there. Prints ``[pkg] passed failed skipped seconds`` per
package and a final ``N passed, N failed, N skipped`` line; exits 1 if any package fails.

Usage: python ci/test_isolated.py --build-python .venv/bin/python [--pkg NAMES] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from matrix import ROOT, Package, Stopwatch, format_summary, read_packages, say, select
from suites import SuiteResult, run_pytest
from wheels import build_wheel, fresh_venv, pip_install, run, wheel_problems

PROBE = """
import importlib, importlib.util, pathlib, sys
mod = importlib.import_module({imp!r})
origin = pathlib.Path(mod.__file__).resolve()
prefix = pathlib.Path(sys.prefix).resolve()
print("origin", origin)
print("inside-venv", prefix in origin.parents)
print("torch-present", importlib.util.find_spec("torch") is not None)
"""


def isolate(pkg: Package, build_python: str, scratch: Path, junit_dir: Path) -> SuiteResult:
    """Install ``pkg`` alone from its wheel into a fresh venv and run its non-slow tests there."""
    watch = Stopwatch()
    say(f"== [{pkg.name}] isolated install")
    wheel = build_wheel(pkg, build_python, ROOT / "build" / "wheels")
    problems = wheel_problems(pkg, wheel)
    venv_python = fresh_venv(scratch / "venv", sys.executable)
    pip_install(venv_python, f"{wheel}[test]")
    work = scratch / "work"
    work.mkdir()
    probe = run([str(venv_python), "-c", PROBE.format(imp=pkg.import_name)], cwd=work)
    facts = dict(line.split(" ", 1) for line in probe.strip().splitlines())
    say(f"[{pkg.name}] imported from {facts['origin']}")
    if facts["inside-venv"] != "True":
        problems.append(f"{pkg.name} was imported from {facts['origin']}, not from its isolated venv")
    if "no-torch" in pkg.flags and facts["torch-present"] != "False":
        problems.append(f"{pkg.name} must not depend on torch, but torch is installed in its isolated venv")
    elif "no-torch" in pkg.flags:
        say(f"[{pkg.name}] torch is absent from its isolated venv, as required")
    shutil.copytree(pkg.path() / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        pkg.path() / "benchmarks", work / "benchmarks", ignore=shutil.ignore_patterns("__pycache__", "results")
    )
    if (pkg.path() / "scripts").is_dir():  # the package's data-building scripts, which its tests exercise
        shutil.copytree(pkg.path() / "scripts", work / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(pkg.path() / "pyproject.toml", work / "pyproject.toml")
    result = run_pytest(pkg.name, venv_python, work, junit_dir / f"{pkg.name}.xml", ["-m", "not slow"])
    for p in problems:
        print(f"[{pkg.name}] {p}")
    if problems:
        return SuiteResult(pkg.name, result.passed, result.failed + len(problems), result.skipped,
                           watch.seconds(), result.returncode or 1)  # fmt: skip
    return SuiteResult(pkg.name, result.passed, result.failed, result.skipped, watch.seconds(), result.returncode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-python", required=True, help="interpreter whose setuptools builds the wheels")
    parser.add_argument("--pkg", default="", help="comma/space separated pip names (default: all)")
    parser.add_argument("--junit-dir", type=Path, default=ROOT / "build" / "junit-isolated")
    parser.add_argument("--keep", action="store_true", help="keep the venvs (their folder is printed)")
    args = parser.parse_args(argv)

    watch = Stopwatch()
    results = []
    for pkg in select(read_packages(), args.pkg):
        scratch = Path(tempfile.mkdtemp(prefix=f"isolated-{pkg.name}-"))
        try:
            results.append(isolate(pkg, args.build_python, scratch, args.junit_dir))
        finally:
            if args.keep:
                say(f"[{pkg.name}] kept {scratch}")
            else:
                shutil.rmtree(scratch, ignore_errors=True)

    lines, final, _ = format_summary(r.row() for r in results)
    print()
    for line in lines:
        print(line)
    bad = [r.name for r in results if not r.ok]
    if bad:
        print(f"failing packages: {', '.join(bad)}")
    print(f"isolated matrix: {len(results)} package(s) in {watch.seconds():.0f}s")
    print(final, flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
