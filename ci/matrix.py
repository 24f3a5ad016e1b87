"""The package matrix, read from ``ci/packages.txt`` (stdlib only; shared by the ci/ scripts).

``ci/packages.txt`` holds one package per line: ``<pip-name> <import-name> [flag ...]``. The only
flag today is ``no-torch``: the package must not depend on torch, and ``ci/test_isolated.py``
proves torch is absent from its isolated environment.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KNOWN_FLAGS = frozenset({"no-torch"})


@dataclasses.dataclass(frozen=True)
class Package:
    """One row of ``ci/packages.txt``."""

    name: str
    """pip name, folder name under ``packages/`` and console script."""
    import_name: str
    """import name: ``name`` with ``-`` replaced by ``_``."""
    flags: frozenset[str] = frozenset()
    """extra rules for this package (``no-torch``)."""

    def path(self, root: Path = ROOT) -> Path:
        return root / "packages" / self.name


def read_packages(root: Path = ROOT) -> list[Package]:
    """Parse ``ci/packages.txt`` under ``root``; raise ``ValueError`` naming the bad line."""
    path = root / "ci" / "packages.txt"
    packages: list[Package] = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) < 2:
            raise ValueError(f"{path}:{lineno}: expected '<pip-name> <import-name> [flags]', got {raw!r}")
        flags = frozenset(fields[2:])
        unknown = flags - KNOWN_FLAGS
        if unknown:
            raise ValueError(f"{path}:{lineno}: unknown flag(s) {sorted(unknown)}; known: {sorted(KNOWN_FLAGS)}")
        packages.append(Package(fields[0], fields[1], flags))
    return packages


def select(packages: list[Package], spec: str | None) -> list[Package]:
    """Packages named in ``spec`` (comma- or space-separated pip names); all when ``spec`` is empty."""
    if not spec or not spec.strip():
        return packages
    wanted = [s for s in re.split(r"[,\s]+", spec.strip()) if s]
    by_name = {p.name: p for p in packages}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        raise SystemExit(f"error: PKG names unknown package(s) {unknown}; known: {sorted(by_name)}")
    return [by_name[w] for w in dict.fromkeys(wanted)]


def venv_bin(venv: Path, exe: str) -> Path:
    """Path of an executable inside a virtual environment (POSIX and Windows layouts)."""
    sub = "Scripts" if os.name == "nt" else "bin"
    return venv / sub / exe


def say(msg: str) -> None:
    """Progress line on stderr, flushed at once so that CI logs interleave correctly."""
    print(msg, file=sys.stderr, flush=True)


class Stopwatch:
    """Wall-clock seconds since construction."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.t0


def format_summary(rows: Iterable[tuple[str, int, int, int, float]]) -> tuple[list[str], str, tuple[int, int, int]]:
    """Per-package lines ``[pkg] passed failed skipped seconds`` and the final count line."""
    lines = []
    tot = [0, 0, 0]
    for name, passed, failed, skipped, seconds in rows:
        lines.append(f"[{name}] {passed} passed {failed} failed {skipped} skipped {seconds:.1f}s")
        tot[0] += passed
        tot[1] += failed
        tot[2] += skipped
    final = f"{tot[0]} passed, {tot[1]} failed, {tot[2]} skipped"
    return lines, final, (tot[0], tot[1], tot[2])
