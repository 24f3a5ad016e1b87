"""Calibration report of sampled predictions: reliability diagram, PIT histogram and a metrics table.

Input: one or more ``.npz`` files written by ``smurf-thp sample`` (``tau (N, S)``, ``y (N,)``, ``types``,
``y_types``). The reliability diagram plots the one-sided coverage ``mean_i 1[y_i < Q_q,i]`` against ``q``
(the official definition; the diagonal is perfect calibration) and the central-interval coverage; the PIT
histogram shows the randomised probability integral transform ``(#{X < y} + V (#{X = y} + 1)) / (S + 1)``,
flat for a calibrated model. Plots need matplotlib (``pip install 'smurf-thp[plot]'``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from smurf_thp.metrics import coverage, pit, pit_histogram, quantile_levels, summarize

__all__ = ["load_samples", "write_report"]

PLOT_HINT = "pip install 'smurf-thp[plot]'"


def load_samples(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays of a ``smurf-thp sample`` file.

    Raises:
        ValueError: the file is missing a key or is not a ``.npz`` archive.
    """
    try:
        with np.load(Path(path)) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a samples .npz file ({exc})") from None
    missing = sorted({"tau", "y"} - set(arrays))
    if missing:
        raise ValueError(f"{path}: missing array(s) {missing} (write it with `smurf-thp sample`)")
    return arrays


def write_report(paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                 labels: Sequence[str] | None = None, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Write ``reliability.png``, ``pit_hist.png`` and ``report.md`` for the sample files into ``out``.

    Returns:
        ``{label: metrics}``.

    Raises:
        ValueError: no files, or labels that do not match the files.
        ImportError: matplotlib is missing (the message names the extra).
    """
    if not paths:
        raise ValueError("paths must name at least one samples .npz file")
    names = list(labels) if labels is not None else [Path(p).stem for p in paths]
    if len(names) != len(paths) or len(set(names)) != len(names):
        raise ValueError(f"labels must give {len(paths)} distinct names, got {names}")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"the report's plots need matplotlib: {PLOT_HINT}") from exc
    q = quantile_levels(0.05)
    import torch

    gen = torch.Generator().manual_seed(seed)
    results: dict[str, Any] = {}
    fig_rel = Figure(figsize=(5, 5), layout="constrained")
    FigureCanvasAgg(fig_rel)
    ax = fig_rel.subplots()
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="perfect")
    fig_pit = Figure(figsize=(5, 3.5), layout="constrained")
    FigureCanvasAgg(fig_pit)
    ax_pit = fig_pit.subplots()
    for name, path in zip(names, paths, strict=True):
        arrays = load_samples(path)
        tau, y = arrays["tau"], arrays["y"]
        types, y_types = arrays.get("types"), arrays.get("y_types")
        metrics = summarize(tau, y, types_sampled=types, types_true=y_types, quantiles=q)
        results[name] = metrics
        upper = np.asarray(coverage(tau, y, q, kind="upper"))
        ax.plot(q, upper, marker="o", markersize=3, label=f"{name} (CS {metrics['cs']:.3f})")
        values = pit(tau, y, randomized=True, generator=gen)
        density, edges = pit_histogram(values, bins=10)
        ax_pit.stairs(np.asarray(density), np.asarray(edges), label=name)
    ax.set_xlabel("quantile level q")
    ax.set_ylabel("coverage: fraction of events with y < Q_q")
    ax.set_title("reliability (one-sided intervals)")
    ax.legend(fontsize="small")
    ax_pit.axhline(1.0, color="0.6", linestyle="--")
    ax_pit.set_xlabel("PIT")
    ax_pit.set_ylabel("density")
    ax_pit.legend(fontsize="small")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    fig_rel.savefig(folder / "reliability.png", dpi=120)
    fig_pit.savefig(folder / "pit_hist.png", dpi=120)
    header = "| run | events | CS (q≥.5) | CS all | CRPS | IL (median) | RMSE (median) | accuracy | negative |"
    lines = ["# smurf-thp report", "", header, "|---|---|---|---|---|---|---|---|---|"]
    for name, m in results.items():
        acc = m.get("accuracy")
        lines.append(f"| {name} | {m['n_events']} | {m['cs']:.4f} | {m['cs_all']:.4f} | {m['crps']:.4f} | "
                     f"{m['il']:.4f} | {m['rmse_median']:.4f} | {'-' if acc is None else f'{acc:.4f}'} | "
                     f"{m['frac_negative']:.4f} |")  # fmt: skip
    lines += ["", "![reliability](reliability.png)", "", "![PIT](pit_hist.png)", ""]
    (folder / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return results
