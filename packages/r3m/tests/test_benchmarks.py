"""Smoke tests of the benchmarks, so that they cannot rot (``benchmarks/run.py --quick``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUN), "--quick", "--out", str(tmp_path), *args],
                          capture_output=True, text=True, check=False, timeout=900)  # fmt: skip


def test_quick_dpo_benchmark_writes_its_record(tmp_path: Path) -> None:
    result = _run(tmp_path, "--only", "dpo")
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "dpo-quick.json").read_text())
    for key in ("package", "version", "git_sha", "command", "date", "machine", "setup", "targets", "rows"):
        assert key in record
    assert [row["flipped labels"] for row in record["rows"]] == ["0%", "20%", "40%"]
    win, implicit = (section["rows"] for section in record["sections"])  # the spec's other two B2 metrics
    for section in (win, implicit):
        assert [row["flipped labels"] for row in section] == ["0%", "20%", "40%"]
        for row in section:
            for method in ("dpo (sigmoid)", "rdpo ε=.1", "r3m-dpo λ=.5"):
                assert 0.0 <= float(row[method].split()[0]) <= 1.0
    assert float(win[0]["dpo (sigmoid)"].split()[0]) > 0.5  # clean labels: better than π_ref
    assert (tmp_path / "dpo-quick.md").read_text().startswith("# B2")


@pytest.mark.slow
def test_every_quick_benchmark_runs(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("synthetic", "dpo", "control", "overhead"):
        assert json.loads((tmp_path / f"{name}-quick.json").read_text())["rows"]
    # B1's second full table (saturated truth) has the main table's corruptions; the side table the six
    # settings (truth × training) at 20 % flips, each with the precision bound.
    record = json.loads((tmp_path / "synthetic-quick.json").read_text())
    saturated, variants = (section["rows"] for section in record["sections"])
    assert [row["corruption"] for row in saturated] == [row["corruption"] for row in record["rows"]]
    assert {(row["truth"], row["training"]) for row in variants} == {
        (truth, training)
        for truth in ("smooth tanh-MLP", "saturated tanh-MLP", "linear")
        for training in ("≤ 5 ep., early stop", "10 ep., no early stop")
    }
    assert all(row["corruption"] == "flip 20%" and "λ=.5 P bound (bt / r3m λ=.5)" in row for row in variants)
    assert "## B1 variants" in (tmp_path / "synthetic-quick.md").read_text()
    for row in record["rows"]:  # the detection baseline (BT's own flags), rank correlation, δ-AUROC, λ choices
        for key in ("bt's flags d < 0: P / R", "spearman r̂ vs r* (bt / r3m)", "δ AUROC (r3m λ=.5)", "λ by val (seeds)"):
            assert key in row
        assert sum(int(part.split("×")[1]) for part in row["λ by val (seeds)"].split(", ")) == 1  # one seed


def test_record_is_dirty_only_when_the_package_code_differs(tmp_path: Path) -> None:
    # a result file written by an earlier benchmark, or a change outside the package, keeps the commit clean
    import shutil

    from r3m.bench import _git_sha

    if shutil.which("git") is None:
        pytest.skip("needs git")
    root = tmp_path / "packages" / "p"
    for rel in ("src/p/a.py", "benchmarks/run.py", "benchmarks/results/x.md", "pyproject.toml"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("0\n")
    (tmp_path / "other.txt").write_text("0\n")

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    sha = _git_sha(root)
    assert sha is not None
    assert not sha.endswith("-dirty")
    (root / "benchmarks/results/x.md").write_text("1\n")
    (tmp_path / "other.txt").write_text("1\n")
    assert _git_sha(root) == sha
    (root / "src/p/a.py").write_text("1\n")
    assert _git_sha(root) == f"{sha}-dirty"


def test_feature_scale_counts_only_the_real_steps() -> None:
    import torch

    from r3m.bench import _feature_scale
    from r3m.data import PreferenceData

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 3, 2, generator=g)
    masks = torch.tensor([[[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0], [1, 1, 1]],
                          [[1, 0, 0], [1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 0, 0]]], dtype=torch.bool)  # fmt: skip
    data = PreferenceData(x[0], x[1], [f"p{i}" for i in range(5)], chosen_mask=masks[0], rejected_mask=masks[1])
    steps = [x[s, i, t] for s in range(2) for i in range(5) for t in range(3) if masks[s, i, t]]
    mu, sd = _feature_scale(data)
    assert torch.allclose(mu, torch.stack(steps).mean(0))
    assert torch.allclose(sd, torch.stack(steps).std(0))
    full_mu, _ = _feature_scale(PreferenceData(x[0], x[1], data.ids))
    assert torch.allclose(full_mu, x.reshape(-1, 2).mean(0))


def test_bad_seeds_and_out_get_one_line_naming_the_flag(tmp_path: Path) -> None:
    # run.py (make bench's path) answers a bad --seeds or an --out that is a file with argparse's
    # one-line error, not a traceback; nothing is run or written.
    a_file = tmp_path / "afile"
    a_file.write_text("x", encoding="utf-8")
    for args, flag in ((["--seeds", "0", "--out", str(tmp_path / "r")], "--seeds"), (["--out", str(a_file)], "--out")):
        proc = subprocess.run([sys.executable, str(RUN), "--only", "overhead", *args], capture_output=True, text=True,
                              check=False, timeout=120)  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert f"error: {flag} must be" in proc.stderr
    assert not (tmp_path / "r").exists()


class _InterruptAfter:
    """Raises KeyboardInterrupt (what Ctrl-C raises) when the store is asked to compute cell number ``n + 1``."""

    def __init__(self, n: int) -> None:
        self.left = n

    def __call__(self, compute):
        def wrapped():
            if self.left == 0:
                raise KeyboardInterrupt
            self.left -= 1
            return compute()

        return wrapped


def test_an_interrupted_benchmark_resumes_to_the_same_record(tmp_path: Path) -> None:
    # B2 (quick, 2 seeds: 6 cells) interrupted after 4 finished cells, then run again by `run`: it reuses the 4,
    # computes the other 2, and writes the rows and per-seed values of an uninterrupted run; the partial file goes.
    from r3m import __version__
    from r3m.bench import CellStore, _git_sha, bench_dpo, run

    whole = bench_dpo(2, True)
    assert [len(v) for v in whole["per_seed"][0].values() if isinstance(v, list)] == [2] * 15  # 3 metrics × 5 methods

    meta = {"benchmark": "dpo", "package": "r3m", "version": __version__, "git_sha": _git_sha(), "quick": True}
    partial = tmp_path / "dpo-quick.partial.json"
    store = CellStore(partial, meta)
    interrupt = _InterruptAfter(4)
    get = store.get
    store.get = lambda key, compute: get(key, interrupt(compute))  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        bench_dpo(2, True, store)
    assert len(json.loads(partial.read_text())["cells"]) == 4

    assert run(only="dpo", quick=True, seeds=2, out=tmp_path, command="resume test") == 0
    record = json.loads((tmp_path / "dpo-quick.json").read_text())
    assert record["resumed_cells"] == 4
    assert record["command"] == "resume test"
    assert record["rows"] == whole["rows"]
    assert record["per_seed"] == whole["per_seed"]
    assert [s["rows"] for s in record["sections"]] == [s["rows"] for s in whole["sections"]]
    assert not partial.exists()
    assert "4 seed cell(s) resumed" in (tmp_path / "dpo-quick.md").read_text()


def test_cells_of_another_run_are_set_aside_not_mixed_in(tmp_path: Path) -> None:
    from r3m.bench import CellStore

    path = tmp_path / "x.partial.json"
    first = CellStore(path, {"version": "1", "quick": True})
    assert first.get("a/seed 0", lambda: {"acc": 0.5}) == {"acc": 0.5}
    assert first.get("a/seed 1", lambda: {"acc": float("nan")})["acc"] != 0.0  # NaN survives the file (as null)
    same = CellStore(path, {"version": "1", "quick": True})
    assert same.get("a/seed 0", lambda: {"acc": 0.9}) == {"acc": 0.5}  # reused, not recomputed
    import math

    assert math.isnan(same.get("a/seed 1", lambda: {"acc": 0.9})["acc"])
    assert same.reused == 2
    other = CellStore(path, {"version": "2", "quick": True})  # another version: starts over
    assert other.get("a/seed 0", lambda: {"acc": 0.9}) == {"acc": 0.9}
    assert (tmp_path / "x.partial.stale").exists()
    fresh = CellStore(path, {"version": "2", "quick": True}, fresh=True)
    assert fresh.get("a/seed 0", lambda: {"acc": 0.7}) == {"acc": 0.7}
    path.write_text("{not json", encoding="utf-8")
    assert CellStore(path, {"version": "2", "quick": True}).cells == {}  # unreadable: set aside, not a traceback


def test_recorded_command_is_the_one_typed(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(RUN), "--quick", "--only", "overhead", "--out", str(tmp_path)],
                          capture_output=True, text=True, check=False, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    command = json.loads((tmp_path / "overhead-quick.json").read_text())["command"]
    # from the repository root in a checkout (the isolated-install run copies benchmarks/ elsewhere)
    where = os.path.relpath(RUN.resolve(), RUN.resolve().parents[3])
    assert command == f"python {where} --quick --only overhead --out {tmp_path}"
    assert where.endswith("benchmarks/run.py")


def test_a_metrics_warning_repeated_for_every_seed_is_logged_once() -> None:
    # review nit: the "none" row logged the same "AUROC is undefined" warning once per seed
    import logging

    from r3m.bench import _Once

    once = _Once()

    def record(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("r3m.metrics", logging.WARNING, __file__, 1, msg, args, None)

    assert once.filter(record("outlier_auroc: only one class (%d of %d)", 0, 1350))
    assert not once.filter(record("outlier_auroc: only one class (%d of %d)", 0, 1350))
    assert once.filter(record("outlier_auroc: only one class (%d of %d)", 0, 500))  # another message: through
