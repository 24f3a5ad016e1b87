"""Reporting helpers of the benchmarks: tables, JSON records, machine description, plots, Markdown pages."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from cosmos_optim.train import TrainResult

Table = dict[str, Any]
"""A benchmark's result: ``title``, ``setup``, ``targets``, ``config``, ``rows`` (and ``figures``)."""


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN when undefined; NaN values propagate)."""
    if not values:
        return math.nan, math.nan
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else math.nan


def fmt_pm(values: Sequence[float], digits: int = 4) -> str:
    """``mean ± std (n=k)``."""
    m, s = mean_std(values)
    if math.isnan(s):
        return f"{m:.{digits}f} (n={len(values)})"
    return f"{m:.{digits}f} ± {s:.{digits}f} (n={len(values)})"


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (floats to 4 significant digits, None as ``-``)."""

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (NaN written as ``NaN``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def machine() -> dict[str, Any]:
    """CPU model (``lscpu``), usable cores, torch threads and version, CUDA device."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def git_describe() -> str | None:
    """``git describe --always --dirty`` of the source tree (None outside a checkout)."""
    try:
        res = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                             check=False, cwd=Path(__file__).parent)  # fmt: skip
    except OSError:
        return None
    return res.stdout.strip() or None


def target(text: str, value: str, met: bool | None) -> dict[str, Any]:
    """One row of a benchmark's targets: what is claimed, what was measured, whether it holds (None: n/a)."""
    return {"target": text, "measured": value, "met": met}


def plot_curves(
    runs: dict[str, list[TrainResult]],
    *,
    steps_png: Path | None = None,
    seconds_png: Path | None = None,
    title: str = "",
    equal_seconds: float | None = None,
) -> None:
    """Validation loss against steps (mean over runs, min-max band) and against training seconds (each run).

    Raises:
        ImportError: matplotlib is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError('plots need matplotlib: pip install "matplotlib>=3.7"') from exc
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if steps_png is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        for i, (label, results) in enumerate(runs.items()):
            ok = [r for r in results if not r.diverged and r.val_loss]
            if not ok:
                continue
            steps = ok[0].val_steps
            curves = [r.val_loss for r in ok if r.val_steps == steps]
            mean = [statistics.fmean(c[j] for c in curves) for j in range(len(steps))]
            ax.plot(steps, mean, marker="o", ms=3, color=colors[i % len(colors)], label=label)
            if len(curves) > 1:
                lo = [min(c[j] for c in curves) for j in range(len(steps))]
                hi = [max(c[j] for c in curves) for j in range(len(steps))]
                ax.fill_between(steps, lo, hi, color=colors[i % len(colors)], alpha=0.2)
        ax.set_xlabel("step")
        ax.set_ylabel("validation loss (nats/char)")
        ax.set_title(title or "validation loss vs step")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(steps_png, dpi=120)
        plt.close(fig)
    if seconds_png is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        for i, (label, results) in enumerate(runs.items()):
            for k, r in enumerate(r for r in results if not r.diverged and r.val_loss):
                ax.plot(r.val_seconds, r.val_loss, marker="o", ms=2, lw=1, color=colors[i % len(colors)],
                        label=label if k == 0 else None)  # fmt: skip
        if equal_seconds is not None:
            ax.axvline(equal_seconds, color="grey", ls="--", lw=1, label=f"equal wall-clock {equal_seconds:.1f} s")
        ax.set_xlabel("training seconds (evaluation excluded)")
        ax.set_ylabel("validation loss (nats/char)")
        ax.set_title(title or "validation loss vs wall-clock")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(seconds_png, dpi=120)
        plt.close(fig)


def render_markdown(table: Table, record: dict[str, Any]) -> str:
    """The Markdown page of one benchmark: title, setup, targets, table, figures, command, machine, date."""
    rows = table["rows"]
    header = list(rows[0].keys()) if rows else []
    md = [f"# {table['title']}", "", f"Setup: {table['setup']}.", ""]
    if table.get("targets"):
        md += ["Targets:", ""]
        md.append(format_table(["target", "measured", "met"],
                               [[t["target"], t["measured"], {True: "yes", False: "**no**", None: "n/a"}[t["met"]]]
                                for t in table["targets"]]))  # fmt: skip
        md.append("")
    md.append(format_table(header, [[row[h] for h in header] for row in rows]))
    for name, file in table.get("figures", {}).items():
        md += ["", f"![{name}]({file})"]
    m = record["machine"]
    md += ["", f"Command: `{record['command']}`  ", f"Date: {record['date']}  ",
           f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({record['threads']} threads), "
           f"CUDA: {m['cuda'] or 'none'}  ", f"cosmos-optim {record['version']}, commit {record['git_sha']}, "
           f"{record['seconds']:.0f} s", ""]  # fmt: skip
    return "\n".join(md)
