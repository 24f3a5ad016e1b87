#!/usr/bin/env python3
"""Build every selected wheel, install them away from the source tree, import them, run --help.

All wheels go into one fresh venv (with their dependencies, torch through the constraints file).
From a folder outside the repository each package is imported (and must come from the venv),
its console script answers ``--version`` with the wheel's version and ``--help`` in under half a
second (median of three cold starts), and the wheel's contents are checked (py.typed, CLI
modules, LICENSE, entry point). Exits 1 on any problem.

Usage: python ci/wheel_check.py --build-python .venv/bin/python [--pkg NAMES]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from matrix import ROOT, read_packages, say, select, venv_bin
from wheels import build_wheel, fresh_venv, pip_install, run, wheel_problems

HELP_BUDGET_S = 0.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-python", required=True, help="interpreter whose setuptools builds the wheels")
    parser.add_argument("--pkg", default="", help="comma/space separated pip names (default: all)")
    args = parser.parse_args(argv)

    packages = select(read_packages(), args.pkg)
    out = ROOT / "build" / "wheels"
    wheels = {pkg.name: build_wheel(pkg, args.build_python, out) for pkg in packages}
    problems = [p for pkg in packages for p in wheel_problems(pkg, wheels[pkg.name])]

    scratch = Path(tempfile.mkdtemp(prefix="wheel-check-"))
    try:
        python = fresh_venv(scratch / "venv", sys.executable)
        pip_install(python, *map(str, wheels.values()))
        for pkg in packages:
            version = wheels[pkg.name].name.split("-")[1]
            origin = run([str(python), "-c", f"import {pkg.import_name} as m; print(m.__file__)"], cwd=scratch)
            if str(scratch / "venv") not in origin:
                problems.append(f"{pkg.name}: imported from {origin.strip()}, not from the wheel")
            script = str(venv_bin(scratch / "venv", pkg.name))
            shown = run([script, "--version"], cwd=scratch).strip()
            if shown != f"{pkg.name} {version}":
                problems.append(f"{pkg.name}: --version printed {shown!r}, expected '{pkg.name} {version}'")
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                res = subprocess.run([script, "--help"], cwd=scratch, capture_output=True, text=True, check=False)
                times.append(time.perf_counter() - t0)
                if res.returncode != 0 or not res.stdout.startswith(f"usage: {pkg.name}"):
                    problems.append(f"{pkg.name}: --help failed (exit {res.returncode}): {res.stderr.strip()[:200]}")
                    break
            median = statistics.median(times)
            print(f"[{pkg.name}] wheel {wheels[pkg.name].name}  --help {median * 1000:.0f} ms")
            if median > HELP_BUDGET_S:
                problems.append(f"{pkg.name}: --help took {median:.2f}s (median of 3), over {HELP_BUDGET_S}s")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    for p in problems:
        print(p)
    say(f"wheels in {out}")
    print(f"wheel-check: {len(packages)} package(s), {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
