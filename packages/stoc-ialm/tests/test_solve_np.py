"""Stoc-iALM on Neyman-Pearson classification of real data (wine, scikit-learn's bundled copy) against SLSQP."""

from __future__ import annotations

import pytest
import torch

from stoc_ialm.datasets import load
from stoc_ialm.ialm import StocIALM, StocIALMConfig
from stoc_ialm.kkt import kkt_residual
from stoc_ialm.problems import NeymanPearson
from stoc_ialm.reference import slsqp_reference


@pytest.fixture(scope="module")
def wine() -> tuple[NeymanPearson, float, float]:
    data = load("wine")
    prob = NeymanPearson(data, alpha=0.05)
    ref = slsqp_reference(prob)
    # KKT of the reference itself, with SLSQP's recovered multiplier: ~0 (a second, independent solver).
    assert kkt_residual(prob, ref.x, ref.multipliers).kkt < 1e-7
    lipschitz = 0.1 * float(torch.linalg.matrix_norm(data.X, 2) ** 2 / data.X.shape[0])  # ≥ max |σ''| ‖A‖²/n
    return prob, ref.F, lipschitz


def _config(lipschitz: float, **kw: object) -> StocIALMConfig:
    return StocIALMConfig(lipschitz=lipschitz, gamma0=1e2, sigma=1.2, lr_scale=2.0, inner_iters0=300,
                          max_inner_iters=2000, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_full_batch_solve_matches_slsqp(wine: tuple[NeymanPearson, float, float]) -> None:
    prob, F_ref, lipschitz = wine
    res = StocIALM(prob, _config(lipschitz, batch=None, post_batch=None, dual_batch=None, max_outer=20)).solve()
    final = res.final
    assert abs(final["objective"] - F_ref) <= 1e-4
    assert final["violation"] <= 1e-6
    assert final["stationarity"] <= 1e-4


def test_stochastic_solve_gets_close_to_slsqp(wine: tuple[NeymanPearson, float, float]) -> None:
    prob, F_ref, lipschitz = wine
    res = StocIALM(prob, _config(lipschitz, batch=16, post_batch=None, dual_batch=None, max_outer=14, seed=1)).solve()
    final = res.final
    assert abs(final["objective"] - F_ref) <= 2e-3
    assert final["violation"] <= 1e-2
    assert final["stationarity"] <= 1e-2
    # Oracle calls are what the history says they are, and grow monotonically.
    calls = [r["oracle_calls"] for r in res.history]
    assert calls == sorted(calls)
    assert calls[-1] == prob.counter.total
