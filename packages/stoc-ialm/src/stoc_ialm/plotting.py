"""Convergence plots against oracle calls (the paper's x-axis): objective, constraint violation, KKT residual.

matplotlib is an optional dependency (``pip install 'stoc-ialm[plot]'``), imported inside
:func:`plot_history` only; the figure is drawn on matplotlib's object API (``Figure`` with the Agg
canvas), so no global pyplot state or backend is touched.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from stoc_ialm.ialm import SolveResult

PLOT_HINT = "pip install 'stoc-ialm[plot]'"
"""The install line named when matplotlib is missing."""

REQUIRED_KEYS = ("oracle_calls", "objective", "violation", "kkt")
"""Keys every history record must have to be plotted."""

PANELS = (("objective", "objective F(x)"), ("violation", "constraint violation ‖[c(x)]‖"),
          ("kkt", "KKT residual (max of the three)"))  # fmt: skip
"""``(history key, y-axis label)`` of the three panels, left to right."""


def load_history(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The per-outer-step history stored in a ``result.json`` (:meth:`SolveResult.to_json`) or a bare JSON list.

    Raises:
        ValueError: the file cannot be read, is not JSON, holds no history, or a record lacks a key of
            :data:`REQUIRED_KEYS` (the message names the file).
    """
    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read the result file {p}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"the result file {p} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    history = obj.get("history") if isinstance(obj, dict) else obj
    if not isinstance(history, list):
        raise ValueError(f"the result file {p} holds no 'history' list (write it with SolveResult.to_json)")
    return check_history(history, str(p))


def check_history(history: Sequence[Any], name: str) -> list[dict[str, Any]]:
    """``history`` as a list of records, each with the keys of :data:`REQUIRED_KEYS` (else ``ValueError`` naming ``name``)."""
    if not history:
        raise ValueError(f"{name}: the history is empty (no outer step finished)")
    records: list[dict[str, Any]] = []
    for i, record in enumerate(history):
        if not isinstance(record, Mapping):
            raise ValueError(f"{name}: history record {i} is not a JSON object")
        missing = [k for k in REQUIRED_KEYS if k not in record]
        if missing:
            raise ValueError(f"{name}: history record {i} lacks {missing}")
        records.append(dict(record))
    return records


def _records(result: Any) -> Sequence[Any]:
    """The history of a :class:`SolveResult` (or of anything with ``.history``), else ``result`` itself."""
    history = getattr(result, "history", None)
    return result if history is None else history  # type: ignore[no-any-return]


SPARSE = 60
"""A history with at most this many records is drawn with point markers (denser ones as plain lines)."""


def _set_scale(ax: Axes, values: Sequence[float], axis: str) -> None:
    """Log scale when every value is > 0; symlog (linear below the smallest positive value) with zeros; else linear."""
    finite = [v for v in values if math.isfinite(v)]
    setter = ax.set_xscale if axis == "x" else ax.set_yscale
    if finite and min(finite) > 0:
        setter("log")
    elif finite and min(finite) >= 0 and max(finite) > 0:
        setter("symlog", linthresh=min(v for v in finite if v > 0))
        (ax.set_xlim if axis == "x" else ax.set_ylim)(0, None)  # no empty negative half


def plot_history(
    results: Mapping[str, SolveResult | Sequence[Mapping[str, Any]]],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    dpi: int = 120,
) -> Figure:
    """Plot objective, violation and KKT residual against oracle calls, one labelled line per run; save to ``path``.

    Args:
        results: label -> a :class:`~stoc_ialm.ialm.SolveResult` (its ``history``) or a list of history
            records (dicts with ``oracle_calls``, ``objective``, ``violation``, ``kkt``), e.g. from
            :func:`load_history`. At least one.
        path: the image file; its suffix picks the format (``.png``, ``.pdf``, ``.svg``). Written atomically.
        title: figure title (optional).
        dpi: resolution of raster formats (>= 10).

    Returns:
        The matplotlib ``Figure`` (three axes: objective, violation, KKT residual).

    Raises:
        ImportError: matplotlib is not installed (the message names ``pip install 'stoc-ialm[plot]'``).
        ValueError: no results, an empty history or a record without a needed key.

    Note:
        The x-axis (oracle calls) and the violation and KKT panels are on a log scale when every value is
        positive; a panel with zeros (a feasible iterate has violation 0) uses a symlog scale that is linear
        below the smallest positive value, so the zeros stay visible. The objective panel is linear.
        The first run is drawn on top, thicker (put your method first); histories of more than
        :data:`SPARSE` records are drawn without markers.
    """
    if not results:
        raise ValueError("results must hold at least one run")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi < 10:
        raise ValueError(f"dpi must be an integer >= 10, got {dpi!r}")
    histories = {label: check_history(_records(r), label) for label, r in results.items()}
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"plotting needs matplotlib: {PLOT_HINT}") from exc

    fig = Figure(figsize=(15, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    calls = [float(r["oracle_calls"]) for h in histories.values() for r in h]
    for ax, (key, label) in zip(axes, PANELS, strict=True):
        for rank, (name, history) in enumerate(histories.items()):
            x = [float(r["oracle_calls"]) for r in history]
            y = [float(r[key]) for r in history]
            sparse = len(history) <= SPARSE
            ax.plot(x, y, marker="o" if sparse else None, markersize=4 if rank == 0 else 3,
                    linewidth=2.2 if rank == 0 else 1.0, alpha=1.0 if rank == 0 else 0.75,
                    zorder=3 if rank == 0 else 2, label=name)  # fmt: skip
        _set_scale(ax, calls, "x")
        if key != "objective":
            _set_scale(ax, [float(r[key]) for h in histories.values() for r in h], "y")
        ax.set_xlabel("oracle calls")
        ax.set_ylabel(label)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lstrip(".").lower() or "png"
    tmp = out.with_name(f".{out.stem}.tmp.{suffix}")
    try:
        fig.savefig(tmp, format=suffix, dpi=dpi)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return fig
