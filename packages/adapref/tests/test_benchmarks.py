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
                          capture_output=True, text=True, check=False, timeout=600)  # fmt: skip


def test_quick_synthetic_benchmark_writes_its_record(tmp_path: Path) -> None:
    result = _run(tmp_path, "--only", "synthetic")
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "synthetic-quick.json").read_text())
    for key in ("package", "version", "git_sha", "command", "date", "machine", "setup", "targets", "rows"):
        assert key in record
    assert record["package"] == "adapref"
    assert {row["reward"] for row in record["rows"]} == {
        "linear", "smooth-mlp", "saturated mlp", "linear, teacher T=2", "linear, linear RM lr 0.01",
        "linear, linear RM lr 0.003",
    }  # fmt: skip
    for row in record["rows"]:  # the ceiling bounds the measured Spearman in every adaptive row
        if row["spearman_tau_strength"] != "-":
            rho, ceiling = (float(row[k].split()[0]) for k in ("spearman_tau_strength", "spearman_ceiling"))
            assert rho <= ceiling + 1e-4
            means = [float(v.split()[0]) for v in row["mean_tau_by_quintile"].split(" / ")]
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

    # s.e. = sample s.d. / sqrt(2): |0.2 - 0.4| / 2 = 0.1 for the first three quintiles, 0 for the last two
    assert (
        _quintile_means([[0.2, 0.4, 1.0, 1.0, 1.0], [0.4, 0.6, 0.8, 1.0, 1.0]])
        == "0.300 ± 0.100 / 0.500 ± 0.100 / 0.900 ± 0.100 / 1.000 ± 0.000 / 1.000 ± 0.000"
    )
    assert _quintile_means([[0.2, float("nan")]]) == "0.200 / nan"  # one seed: no spread
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


def test_dpo_tau_diagnostic_is_the_clipped_margin_against_the_true_gap() -> None:
    # A3's τ columns: on a hand-built toy, τ_i = clip(|z_i| / u*, τ0, τmax) with z_i = β·h_i (the closed form of
    # the exact solve, u* from the spec's table), and the strength is |r*(a_w) − r*(a_l)| of each pair.
    import itertools
    import types

    import numpy as np
    import torch

    from adapref.bench import _dpo_tau_vs_strength
    from adapref.metrics import spearman

    g = torch.Generator().manual_seed(0)
    n_ctx, k, n = 6, 4, 40
    problem = types.SimpleNamespace(
        pair_contexts=torch.randint(0, n_ctx, (n,), generator=g),
        chosen=torch.randint(0, k, (n,), generator=g),
        ref_logps=torch.log_softmax(torch.randn(n_ctx, k, generator=g), dim=-1),
        true_rewards=torch.randn(n_ctx, k, generator=g),
    )
    problem.rejected = (problem.chosen + torch.randint(1, k, (n,), generator=g)) % k
    log_probs = torch.log_softmax(torch.randn(n_ctx, k, generator=g) * 8, dim=-1)
    beta, u_star = 0.1, 0.943443  # u*(ρ0 = 0.1)
    out = _dpo_tau_vs_strength(problem, log_probs, beta, {"rho0": 0.1, "tau_max": 1.0})
    c, w, lo = problem.pair_contexts, problem.chosen, problem.rejected
    h = (log_probs[c, w] - problem.ref_logps[c, w]) - (log_probs[c, lo] - problem.ref_logps[c, lo])
    tau = np.clip(np.abs(beta * h.double().numpy()) / u_star, 0.1, 1.0)
    strength = (problem.true_rewards[c, w] - problem.true_rewards[c, lo]).abs().double().numpy()
    assert out["rho"] == pytest.approx(spearman(tau, strength), abs=1e-9)
    assert out["f0"] == pytest.approx(float(np.mean(tau <= 0.1 * (1 + 1e-6))))
    assert out["fmax"] == pytest.approx(float(np.mean(tau >= 1.0 * (1 - 1e-6))))
    assert 0.0 < out["f0"] < 1.0
    assert 0.0 < out["fmax"] < 1.0  # both bounds and the interior are exercised
    assert out["rho"] <= out["ceil"] + 1e-12
    assert out["rho_z"] == pytest.approx(spearman(np.abs(beta * h.double().numpy()), strength), abs=1e-9)
    # quintile means by hand: edges at the strength's 0, .2, …, 1 quantiles, bins lo <= s < hi (the last closed)
    edges = np.quantile(strength, np.linspace(0, 1, 6))
    bins = [(strength >= lo) & ((strength < hi) if k < 4 else (strength <= hi))
            for k, (lo, hi) in enumerate(itertools.pairwise(edges))]  # fmt: skip
    assert out["means"] == pytest.approx([tau[b].mean() for b in bins], abs=1e-6)  # τ is float32 in the loss
    assert out["mono"] == float(all(a <= b + 1e-9 for a, b in itertools.pairwise(out["means"])))


def test_feature_scale_counts_only_the_real_steps() -> None:
    import torch

    from adapref.bench import _feature_scale
    from adapref.data import PreferenceData

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


def test_a3_selection_breaks_accuracy_ties_by_grid_order_not_true_reward() -> None:
    from adapref.bench import _selected_reward

    assert _selected_reward([(0.8, 0.9), (0.9, 0.5), (0.9, 0.7)]) == 0.5  # tie at 0.9: the first, not the higher
    assert _selected_reward([(0.9, 0.2), (0.8, 0.9)]) == 0.2


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
    # A5 (quick, 2 seeds: 3 settings × 2 rates × 2 seeds = 12 cells) interrupted after 7 finished cells, then run
    # again by `run`: it reuses the 7, computes the other 5, and writes the rows and per-seed values of an
    # uninterrupted run; the partial file goes.
    from adapref import __version__
    from adapref.bench import CellStore, _git_sha, bench_flips, run

    whole = bench_flips(2, True)
    assert all(len(v) == 2 for row in whole["per_seed"] for k, v in row.items() if k != "setting")

    meta = {"benchmark": "flips", "package": "adapref", "version": __version__, "git_sha": _git_sha(), "quick": True}
    partial = tmp_path / "flips-quick.partial.json"
    store = CellStore(partial, meta)
    interrupt = _InterruptAfter(7)
    get = store.get
    store.get = lambda key, compute: get(key, interrupt(compute))  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        bench_flips(2, True, store)
    assert len(json.loads(partial.read_text())["cells"]) == 7

    assert run(only="flips", quick=True, seeds=2, out=tmp_path, command="resume test") == 0
    record = json.loads((tmp_path / "flips-quick.json").read_text())
    assert record["resumed_cells"] == 7
    assert record["command"] == "resume test"
    assert record["rows"] == whole["rows"]
    assert record["per_seed"] == whole["per_seed"]
    assert not partial.exists()
    assert "7 seed cell(s) resumed" in (tmp_path / "flips-quick.md").read_text()


def test_cells_of_another_run_are_set_aside_not_mixed_in(tmp_path: Path) -> None:
    import math

    from adapref.bench import CellStore

    path = tmp_path / "x.partial.json"
    first = CellStore(path, {"version": "1", "quick": True})
    assert first.get("a/seed 0", lambda: {"acc": 0.5}) == {"acc": 0.5}
    first.get("a/seed 1", lambda: {"acc": float("nan")})
    same = CellStore(path, {"version": "1", "quick": True})
    assert same.get("a/seed 0", lambda: {"acc": 0.9}) == {"acc": 0.5}  # reused, not recomputed
    assert math.isnan(same.get("a/seed 1", lambda: {"acc": 0.9})["acc"])  # NaN survives the file (as null)
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


def test_label_smoothing_baseline_is_cbt() -> None:
    # cBT at ε: −(1 − ε)logσ(d) − ε logσ(−d), d = c − r; by hand at d = 1, ε = .1 with log σ(x) = −log(1 + e^−x)
    import math

    import torch

    from adapref.bench import SMOOTHING, _cbt_loss

    loss, tau = _cbt_loss(torch.tensor([2.0, 0.5]), torch.tensor([1.0, 0.5]))
    eps = SMOOTHING
    by_hand = [(1 - eps) * math.log1p(math.exp(-d)) + eps * math.log1p(math.exp(d)) for d in (1.0, 0.0)]
    assert tau is None
    assert float(loss) == pytest.approx(sum(by_hand) / 2, rel=1e-6)


def test_linear_reward_model_trains(tmp_path: Path) -> None:
    # TrainConfig(hidden=()) is a linear reward (A5's reward model); it had been refused as an empty tuple
    import torch

    from adapref.config import TrainConfig
    from adapref.synthetic import make_preference_data
    from adapref.trainer import RewardTrainer

    data, _ = make_preference_data(200, reward="linear", generator=torch.Generator().manual_seed(0))
    trainer = RewardTrainer(TrainConfig(loss="bt", hidden=(), epochs=2))
    trainer.fit(data, progress=False)
    assert sum(p.numel() for p in trainer.model.parameters()) == 8 + 1  # x·w + b over D = 8
    with pytest.raises(ValueError, match="hidden must be a tuple of positive integers"):
        TrainConfig(hidden=(0,))


def test_a_metrics_warning_repeated_for_every_seed_is_logged_once() -> None:
    # review nit: the "none" row logged the same "AUROC is undefined" warning once per seed
    import logging

    from adapref.bench import _Once

    once = _Once()

    def record(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("adapref.metrics", logging.WARNING, __file__, 1, msg, args, None)

    assert once.filter(record("outlier_auroc: only one class (%d of %d)", 0, 1350))
    assert not once.filter(record("outlier_auroc: only one class (%d of %d)", 0, 1350))
    assert once.filter(record("outlier_auroc: only one class (%d of %d)", 0, 500))  # another message: through
