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
                          capture_output=True, text=True, check=False, timeout=600)  # fmt: skip


def test_quick_synthetic_benchmark_writes_its_record(tmp_path: Path) -> None:
    result = _run(tmp_path, "--only", "synthetic")
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "synthetic-quick.json").read_text())
    for key in ("package", "version", "git_sha", "command", "date", "machine", "setup", "targets", "rows"):
        assert key in record
    assert record["package"] == "adapref"
    assert {row["reward"] for row in record["rows"]} == {"linear", "smooth-mlp", "saturated mlp", "linear, teacher T=2"}
    for row in record["rows"]:  # the ceiling bounds the measured Spearman in every adaptive row
        if row["spearman_tau_strength"] != "-":
            rho, ceiling = (float(row[k].split()[0]) for k in ("spearman_tau_strength", "spearman_ceiling"))
            assert rho <= ceiling + 1e-4
            means = [float(v) for v in row["mean_tau_by_quintile"].split(" / ")]
            assert len(means) == 5
            assert all(0.1 - 1e-6 <= m <= 4.0 + 1e-6 for m in means)
            shares = (float(row[k].split()[0]) for k in ("share_tau0", "share_tau_max"))
            assert sum(shares) <= 1.0 + 1e-9
    md = (tmp_path / "synthetic-quick.md").read_text()
    assert md.startswith("# A1 + A2")
    assert "Command:" in md
    assert "Machine:" in md


@pytest.mark.slow
def test_every_quick_benchmark_runs(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("synthetic", "dpo", "control", "flips", "overhead"):
        assert json.loads((tmp_path / f"{name}-quick.json").read_text())["rows"]


def test_quintile_means_average_each_quintile_over_the_seeds() -> None:
    from adapref.bench import _quintile_means

    assert (
        _quintile_means([[0.2, 0.4, 1.0, 1.0, 1.0], [0.4, 0.6, 0.8, 1.0, 1.0]])
        == "0.300 / 0.500 / 0.900 / 1.000 / 1.000"
    )
    assert _quintile_means([[0.2, float("nan")]]) == "0.200 / nan"
    assert _quintile_means([]) == "-"


def test_record_is_dirty_only_when_the_package_code_differs(tmp_path: Path) -> None:
    # a result file written by an earlier benchmark, or a change outside the package, keeps the commit clean
    import shutil

    from adapref.bench import _git_sha

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
