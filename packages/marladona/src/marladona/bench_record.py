"""The records of the benchmark's reports: machine, commit and load, strict JSON, and the Markdown pieces both parts share.

Every report of :mod:`marladona.bench` and :mod:`marladona.bench_train` starts with :func:`report_header`
(command line, date, machine, git commit, load average), is written by :func:`write_json` (strict JSON:
non-finite numbers become null) and ends its Markdown with :func:`record_markdown`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def median_or_none(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def read_log(path: Path) -> list[dict[str, Any]]:
    """The rows of a run's ``log.jsonl``, one per iteration (the last of repeats) in iteration order.

    A run interrupted after its last checkpoint logs iterations that the resumed run logs again; the
    later row is the one the checkpoint's training continued from.
    """
    if not path.is_file():
        return []
    rows: dict[int, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows[int(row["iteration"])] = row
    return [rows[i] for i in sorted(rows)]


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def git_state() -> dict[str, Any]:
    """The commit of the source tree the package runs from and whether it has changes (None outside git)."""
    here = Path(__file__).parent

    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = run("rev-parse", "--short", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no", ".") if commit else None
    return {"git_commit": commit or None, "git_dirty": None if status is None else bool(status)}


def strict_json_value(obj: Any) -> Any:
    """``obj`` with non-finite floats as None, tuples as lists (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): strict_json_value(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json_value(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(strict_json_value(obj), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def report_header(part: str, command: str, quick: bool) -> dict[str, Any]:
    from marladona.environment import collect

    return {
        "part": part, "quick": quick, "command": command, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": collect(), **git_state(), "load_start": load_average(),
    }  # fmt: skip


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """``torch.set_num_threads(n)`` inside the block, the previous count restored after it."""
    import torch

    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def progress_bar(total: int, desc: str, progress: bool | None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=True if progress is False else None, file=sys.stderr)


def fmt_k(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.0f}k" if v >= 1e4 else f"{v / 1e3:.1f}k"


def load_text(load: Sequence[float | None] | None) -> str:
    vals = [v for v in (load or []) if v is not None]
    if not vals:
        return "-"
    lo, hi = min(vals), max(vals)
    return f"{lo:.1f}" if lo == hi else f"{lo:.1f}-{hi:.1f}"


def fmt_ratio(x: float | None) -> str:
    return f"{x:.2f}x" if x is not None else "n/a"


def fmt_met(m: bool | None) -> str:
    return "n/a" if m is None else ("met" if m else "not met")


def md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def targets_markdown(targets: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["## Targets", "", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {md_cell(t['target'])} | {md_cell(str(t['measured']))} | {fmt_met(t['met'])} |" for t in targets]
    return [*lines, ""]


def commit_text(record: dict[str, Any]) -> str:
    """``record``'s git commit, marked when the tree had uncommitted changes ("-" outside git)."""
    return (record.get("git_commit") or "-") + (" (with uncommitted changes)" if record.get("git_dirty") else "")


def record_markdown(report: dict[str, Any]) -> list[str]:
    m = report["machine"]
    commit = commit_text(report)
    return [
        f"Command: `{report['command']}`  ", f"Date: {report['date']}  ",
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs, python {m['python']}, torch {m['torch']}  ",
        f"marladona {m['version']}, commit {commit}; load average (1 min) {report['load_start']} at the start, "
        f"{report['load_end']} at the end; {report['wall_s']:.0f} s"
        + ("" if not report.get("phase_s") else " (" + ", ".join(f"{k.replace('_', ' ')} {v:.0f} s"
                                                                  for k, v in report["phase_s"].items()) + ")"),
        "",
    ]  # fmt: skip
