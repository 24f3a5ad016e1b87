"""Build wheels and make fresh virtual environments for the isolation checks (stdlib only)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from matrix import ROOT, Package, say, venv_bin

CONSTRAINTS = ROOT / "ci" / "constraints.txt"


def run(cmd: list[str], cwd: Path | None = None) -> str:
    """Run a command, echoing it; return its stdout, or raise ``SystemExit`` with its output."""
    say("$ " + " ".join("<script>" if "\n" in c else c for c in cmd))
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"command failed with exit {result.returncode}: {' '.join(cmd)}")
    return result.stdout


def build_wheel(pkg: Package, build_python: str, out_dir: Path) -> Path:
    """Build ``pkg``'s wheel with the development venv's setuptools (no build isolation).

    The build runs from a copy of the package folder so that no ``build/`` or ``*.egg-info``
    is left in the source tree.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(f"{pkg.import_name}-*.whl"):
        old.unlink()
    scratch = out_dir / f"src-{pkg.name}"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(
        pkg.path(),
        scratch,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache", "results"),
    )
    run(
        [build_python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-c", str(CONSTRAINTS), "-w", str(out_dir), str(scratch)]
    )  # fmt: skip
    shutil.rmtree(scratch, ignore_errors=True)
    wheels = sorted(out_dir.glob(f"{pkg.import_name}-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one wheel for {pkg.name} in {out_dir}, found {[w.name for w in wheels]}")
    return wheels[0]


def wheel_problems(pkg: Package, wheel: Path) -> list[str]:
    """What a wheel of ``pkg`` lacks: typing marker, CLI modules, licence, console script."""
    names = set(zipfile.ZipFile(wheel).namelist())
    problems = []
    for f in ("__init__.py", "_version.py", "py.typed", "cli.py", "__main__.py"):
        if f"{pkg.import_name}/{f}" not in names:
            problems.append(f"{wheel.name}: lacks {pkg.import_name}/{f}")
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        problems.append(f"{wheel.name}: lacks the LICENSE file in its dist-info")
    entry = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
    text = zipfile.ZipFile(wheel).read(entry).decode() if entry else ""
    if f"{pkg.name} = {pkg.import_name}.cli:main" not in text:
        problems.append(f"{wheel.name}: no console script '{pkg.name} = {pkg.import_name}.cli:main'")
    if any(n.startswith(("tests/", "benchmarks/")) for n in names):
        problems.append(f"{wheel.name}: ships tests/ or benchmarks/ as top-level packages")
    return problems


def fresh_venv(path: Path, base_python: str) -> Path:
    """A new, empty virtual environment at ``path``; returns its interpreter."""
    shutil.rmtree(path, ignore_errors=True)
    run([base_python, "-m", "venv", str(path)])
    return venv_bin(path, "python")


def pip_install(python: Path, *requirements: str) -> None:
    """``pip install`` into the venv of ``python``, always with the constraints file."""
    run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
         "-c", str(CONSTRAINTS), *requirements]
    )  # fmt: skip
