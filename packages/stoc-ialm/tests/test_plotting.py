"""Tests of :mod:`stoc_ialm.plotting`: the three panels, their scales, result files and the optional import."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from stoc_ialm.ialm import SolveResult
from stoc_ialm.plotting import PLOT_HINT, load_history, plot_history


def _history(calls: list[int], violation: list[float]) -> list[dict[str, Any]]:
    return [
        {"k": k, "oracle_calls": c, "objective": 1.0 / (k + 1), "violation": v, "kkt": 0.5 ** (k + 1) + v}
        for k, (c, v) in enumerate(zip(calls, violation, strict=True))
    ]


def _result(history: list[dict[str, Any]]) -> SolveResult:
    return SolveResult(x=torch.zeros(2, dtype=torch.float64), multipliers=torch.zeros(1, dtype=torch.float64),
                       history=history, status="max_outer")  # fmt: skip


class TestPlotHistory:
    def test_one_labelled_line_per_run_on_each_panel(self, tmp_path: Path) -> None:
        pytest.importorskip("matplotlib")
        a = _history([100, 300, 900], [0.1, 0.01, 0.0])
        b = _history([200, 400], [0.2, 0.05])
        png = tmp_path / "out" / "conv.png"
        fig = plot_history({"stoc-ialm": _result(a), "baseline": b}, png, title="t")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert [p.name for p in png.parent.iterdir()] == ["conv.png"]  # the temporary file was renamed
        axes = fig.axes
        assert len(axes) == 3
        for ax, key in zip(axes, ("objective", "violation", "kkt"), strict=True):
            lines = ax.get_lines()
            assert [line.get_label() for line in lines] == ["stoc-ialm", "baseline"]
            # The plotted points are exactly the records' values (x: oracle calls).
            for line, history in zip(lines, (a, b), strict=True):
                assert np.asarray(line.get_xdata()).tolist() == [r["oracle_calls"] for r in history]
                assert np.asarray(line.get_ydata()).tolist() == [r[key] for r in history]
            assert ax.get_xlabel() == "oracle calls"

    def test_scales_log_where_positive_symlog_with_zeros(self, tmp_path: Path) -> None:
        pytest.importorskip("matplotlib")
        fig = plot_history({"a": _history([10, 100, 1000], [0.1, 0.0, 0.001])}, tmp_path / "s.png")
        objective, violation, kkt = fig.axes
        assert [ax.get_xscale() for ax in fig.axes] == ["log"] * 3
        assert objective.get_yscale() == "linear"
        assert violation.get_yscale() == "symlog"  # a feasible iterate (violation 0) stays visible
        assert (
            getattr(violation.yaxis.get_transform(), "linthresh", None) == 0.001
        )  # linear below the smallest positive value
        assert kkt.get_yscale() == "log"

    def test_other_formats_follow_the_suffix(self, tmp_path: Path) -> None:
        pytest.importorskip("matplotlib")
        svg = tmp_path / "c.svg"
        plot_history({"a": _history([1, 2], [0.1, 0.2])}, svg)
        assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")
        with pytest.raises(ValueError, match="not supported"):
            plot_history({"a": _history([1, 2], [0.1, 0.2])}, tmp_path / "c.nope")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["c.svg"]

    @pytest.mark.parametrize(
        ("results", "message"),
        [({}, "at least one run"), ({"a": []}, "a: the history is empty"),
         ({"a": [{"oracle_calls": 1, "objective": 1.0}]}, r"a: history record 0 lacks \['violation', 'kkt'\]")],
    )  # fmt: skip
    def test_bad_results_raise_value_error(self, tmp_path: Path, results: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            plot_history(results, tmp_path / "x.png")

    def test_missing_matplotlib_names_the_extra(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
            monkeypatch.setitem(sys.modules, name, None)
        with pytest.raises(ImportError) as exc:
            plot_history({"a": _history([1, 2], [0.1, 0.2])}, tmp_path / "x.png")
        assert PLOT_HINT in str(exc.value)
        assert PLOT_HINT == "pip install 'stoc-ialm[plot]'"
        assert not (tmp_path / "x.png").exists()


class TestLoadHistory:
    def test_reads_what_solve_result_writes(self, tmp_path: Path) -> None:
        history = _history([5, 50], [0.5, 0.0])
        _result(history).to_json(tmp_path / "result.json")
        assert load_history(tmp_path / "result.json") == history
        (tmp_path / "bare.json").write_text(json.dumps(history))
        assert load_history(tmp_path / "bare.json") == history

    @pytest.mark.parametrize(
        ("content", "message"),
        [(None, "cannot read the result file"), ("{oops", "is not valid JSON"),
         ('{"x": [1]}', "holds no 'history' list"), ('{"history": []}', "the history is empty"),
         ('{"history": [1]}', "history record 0 is not a JSON object")],
    )  # fmt: skip
    def test_bad_files_name_the_file(self, tmp_path: Path, content: str | None, message: str) -> None:
        path = tmp_path / "r.json"
        if content is not None:
            path.write_text(content)
        with pytest.raises(ValueError, match=message) as exc:
            load_history(path)
        assert str(path) in str(exc.value)
