"""Run one pytest process for one package and read its counts back from junit XML (stdlib only)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from matrix import Stopwatch, say


@dataclasses.dataclass(frozen=True)
class SuiteResult:
    """Counts of one pytest run, as its junit XML reports them."""

    name: str
    passed: int
    failed: int
    """failures plus errors (collection errors included)."""
    skipped: int
    seconds: float
    returncode: int

    @property
    def ok(self) -> bool:
        """Green: pytest exited 0, nothing failed and at least one test passed."""
        return self.returncode == 0 and self.failed == 0 and self.passed > 0

    def row(self) -> tuple[str, int, int, int, float]:
        return (self.name, self.passed, self.failed, self.skipped, self.seconds)


def read_junit(path: Path) -> tuple[int, int, int]:
    """``(passed, failed, skipped)`` summed over every ``<testsuite>`` of a junit XML file.

    pytest writes ``tests`` (all), ``failures``, ``errors`` and ``skipped`` per suite;
    passed = tests - failures - errors - skipped.
    """
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = failures = errors = skipped = 0
    for s in suites:
        tests += int(s.get("tests", 0))
        failures += int(s.get("failures", 0))
        errors += int(s.get("errors", 0))
        skipped += int(s.get("skipped", 0))
    return tests - failures - errors - skipped, failures + errors, skipped


def run_pytest(
    name: str,
    python: Path | str,
    cwd: Path,
    junit: Path,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout_s: float = 1800.0,
) -> SuiteResult:
    """Run ``python -m pytest`` in ``cwd`` and return its counts.

    A missing or unreadable junit file (pytest crashed before writing it) counts as one failure,
    and so does a time-out of the whole process.
    """
    junit.parent.mkdir(parents=True, exist_ok=True)
    junit.unlink(missing_ok=True)
    exe = os.path.abspath(python) if os.sep in str(python) else str(python)  # cwd changes; keep venv symlinks
    cmd = [exe, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}", *args]
    say(f"[{name}] $ (cd {cwd} && {' '.join(cmd)})")
    watch = Stopwatch()
    full_env = dict(os.environ if env is None else env)
    full_env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    try:
        rc = subprocess.run(cmd, cwd=cwd, env=full_env, timeout=timeout_s, check=False).returncode
    except subprocess.TimeoutExpired:
        say(f"[{name}] pytest ran past {timeout_s:.0f}s and was killed")
        rc = 124
    seconds = watch.seconds()
    try:
        passed, failed, skipped = read_junit(junit)
    except (OSError, ET.ParseError):
        passed, failed, skipped = 0, 0, 0
    if rc not in (0, 5) and failed == 0:
        failed = 1  # pytest itself failed (crash, time-out, usage error) without reporting a test
    return SuiteResult(name, passed, failed, skipped, seconds, rc)
