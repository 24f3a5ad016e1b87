"""Smoke tests of the benchmarks, so that they cannot rot (``benchmarks/run.py --quick``)."""

from __future__ import annotations

import json
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
