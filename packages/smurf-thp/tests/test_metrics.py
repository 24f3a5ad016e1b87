"""Tests of :mod:`smurf_thp.metrics` and :mod:`smurf_thp.oracle_metrics` (re-exported by metrics).

Closed forms, brute force, hand-worked cases, exact-law calibration, errors.
"""

from __future__ import annotations

import doctest
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from scipy import stats

from smurf_thp import metrics, oracle_metrics
from smurf_thp.metrics import (
    calibration_score,
    coverage,
    crps,
    flatten_events,
    interval_length,
    oracle_calibration,
    oracle_coverage,
    oracle_gap,
    pit,
    pit_histogram,
    quantile_levels,
    rmse,
    sample_quantiles,
    summarize,
    type_accuracy,
)

F64 = torch.float64
LEVELS = quantile_levels(0.05)


def exp_draws(rate: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """``(len(rate), n)`` draws of Exp(rate_i) by inversion."""
    return -torch.log1p(-torch.rand(rate.shape[0], n, generator=gen, dtype=F64)) / rate[:, None]


@pytest.fixture(scope="module")
def exp_law() -> dict[str, Any]:
    """5000 events with rates e^U(-1,1): true gaps y_i and 100 samples from the same law."""
    gen = torch.Generator().manual_seed(0)
    rate = torch.exp(2 * torch.rand(5000, generator=gen, dtype=F64) - 1)
    y = exp_draws(rate, 1, gen)[:, 0]
    samples = exp_draws(rate, 100, gen)

    def cdf(v: np.ndarray[Any, Any]) -> Any:
        return 1.0 - np.exp(-rate.numpy()[:, None] * np.clip(v, 0.0, None))

    return {"rate": rate, "y": y, "samples": samples, "cdf": cdf}


def brute_crps(x: torch.Tensor, y: torch.Tensor, fair: bool) -> torch.Tensor:
    """O(S^2) double loop over pairs."""
    out = []
    for row, yi in zip(x.tolist(), y.tolist(), strict=True):
        s = len(row)
        pairs = sum(abs(a - b) for a in row for b in row)
        out.append(sum(abs(a - yi) for a in row) / s - pairs / (2 * s * (s - 1) if fair else 2 * s * s))
    return torch.tensor(out, dtype=F64)


class TestLevelsAndQuantiles:
    def test_quantile_levels_exact_values(self) -> None:
        # Literal decimals: k/20 rounds to the same double as the literal (no cumulative-sum drift).
        assert quantile_levels() == (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
                                     0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)  # fmt: skip
        assert quantile_levels(0.25) == (0.25, 0.5, 0.75)
        assert len(quantile_levels(0.01)) == 99
        assert quantile_levels(0.01)[49] == 0.5

    def test_sample_quantiles_match_torch_quantile(self) -> None:
        # torch.quantile's default (linear) is the documented definition.
        x = torch.randn(30, 17, generator=torch.Generator().manual_seed(1), dtype=F64)
        q = torch.tensor(LEVELS, dtype=F64)
        torch.testing.assert_close(sample_quantiles(x, q), torch.quantile(x, q, dim=1).T, rtol=0, atol=1e-12)

    def test_flatten_events_keeps_masked_rows(self) -> None:
        s = torch.arange(12.0).reshape(2, 2, 3)
        y = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        xs, ys = flatten_events(s, y, np.array([[True, False], [False, True]]))
        assert xs.tolist() == [[0.0, 1.0, 2.0], [9.0, 10.0, 11.0]]
        assert ys.tolist() == [1.0, 4.0]


class TestCoverageByHand:
    S = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0], [10.0, 11.0, 12.0, 13.0, 14.0]])

    def test_upper_strict_inequality(self) -> None:
        # Q_0.5 = (2, 12): 2 < 2 is False, 15 < 12 False -> 0; Q_0.9 = (3.6, 13.6): 2 < 3.6 only -> 0.5.
        cov = coverage(self.S, [2.0, 15.0], [0.5, 0.9])
        assert cov.tolist() == [0.0, 0.5]
        assert coverage(self.S, [1.999, 11.0], 0.5) == 1.0

    def test_central_closed_interval(self) -> None:
        # q = 0.5: [Q_.25, Q_.75] = [1, 3] and [11, 13]; y = 1 (on the edge) and 13 (on the edge) are inside.
        assert coverage(self.S, [1.0, 13.0], 0.5, "central") == 1.0
        # q = 0.8: [0.4, 3.6] and [10.4, 13.6]: 0.3 outside, 13.6 inside.
        assert coverage(self.S, [0.3, 13.6], [0.8], "central").tolist() == [0.5]

    def test_numpy_input_equals_torch(self) -> None:
        q = [0.2, 0.5, 0.8]
        a = coverage(self.S.numpy(), np.array([2.5, 10.5]), q, "central")
        assert torch.equal(a, coverage(self.S, torch.tensor([2.5, 10.5]), q, "central"))

    def test_calibration_score_by_hand(self) -> None:
        # cov - q = (0.2, 0.1, 0.1): upper keeps q >= 0.5 -> sqrt(0.01); all -> sqrt(0.06 / 3).
        cov, q = [0.5, 0.6, 0.9], [0.3, 0.5, 0.8]
        assert calibration_score(cov, q) == pytest.approx(0.1, abs=1e-15)
        assert calibration_score(cov, q, "all") == pytest.approx(math.sqrt(0.02), abs=1e-15)

    def test_interval_length_by_hand(self) -> None:
        # Q_0.5 = (-2, 2) -> clamp -> (0, 2) -> mean 1; central q=0.5 widths Q_.75 - Q_.25 = 2 each.
        s = torch.tensor([[-4.0, -3.0, -2.0, -1.0, 0.0], [0.0, 1.0, 2.0, 3.0, 4.0]])
        assert interval_length(s, 0.5) == 1.0
        assert interval_length(s, 0.5, "central") == 2.0
        # Q_0.9 = (-0.4, 3.6) -> (0, 3.6) -> 1.8; central q=0.9: Q_.95 - Q_.05 = 3.6 per row.
        torch.testing.assert_close(interval_length(s, [0.9]), torch.tensor([1.8], dtype=F64))
        torch.testing.assert_close(interval_length(s, [0.9], "central"), torch.tensor([3.6], dtype=F64))


class TestCRPS:
    def test_matches_brute_force(self) -> None:
        # Sorted O(S log S) against the O(S^2) pair loop, with ties (rounded values) and S = 2.
        gen = torch.Generator().manual_seed(2)
        for s in (2, 3, 7, 20):
            x = torch.round(torch.randn(5, s, generator=gen, dtype=F64) * 4) / 4
            y = torch.randn(5, generator=gen, dtype=F64)
            for fair in (True, False):
                got = crps(x, y, fair=fair, per_event=True)
                torch.testing.assert_close(got, brute_crps(x, y, fair), rtol=0, atol=1e-10)

    def test_exponential_closed_form(self) -> None:
        # CRPS(Exp(lam), y) = y - 2(1 - e^{-lam y})/lam + 1/(2 lam); 4000 samples per event.
        lam, s = 2.0, 4000
        y = torch.linspace(0.05, 3.0, 50, dtype=F64)
        x = exp_draws(torch.full((50,), lam, dtype=F64), s, torch.Generator().manual_seed(3))
        exact = y - 2 * (1 - torch.exp(-lam * y)) / lam + 1 / (2 * lam)
        fair = crps(x, y, per_event=True)
        assert abs(float(fair.mean()) / float(exact.mean()) - 1) < 0.02
        assert abs(float(fair[-1]) / float(exact[-1]) - 1) < 0.02
        # V-statistic: its spread term drops the S zero diagonal pairs, so the score is higher by exactly U/(2S),
        # U the mean pairwise distance ~ E|X - X'| = 1/lam.
        gap = crps(x, y, fair=False, per_event=True) - fair
        assert bool((gap > 0).all())
        assert float(gap.mean()) == pytest.approx(1 / (2 * lam * s), rel=0.02)

    def test_v_gap_is_u_over_2s_exactly(self) -> None:
        x = torch.tensor([[0.0, 1.0, 3.0]], dtype=F64)
        u = (2 * (1 + 3 + 2)) / (3 * 2)  # sum over ordered pairs / (S(S-1))
        gap = crps(x, [0.5], fair=False) - crps(x, [0.5])
        assert gap == pytest.approx(u / (2 * 3), abs=1e-15)


class TestCalibrationOfExactSamples:
    def test_coverage_within_order_statistic_bounds(self, exp_law: dict[str, Any]) -> None:
        # With S exact samples, P(y < X_(k)) = k/(S+1); Q_q lies between X_(k) and X_(k+1), k = floor((S-1)q) + 1.
        n, s = exp_law["samples"].shape
        cov_u = coverage(exp_law["samples"], exp_law["y"], LEVELS)
        cov_c = coverage(exp_law["samples"], exp_law["y"], LEVELS, "central")
        for i, q in enumerate(LEVELS):
            sigma = 3 * math.sqrt(q * (1 - q) / n)
            k = math.floor((s - 1) * q) + 1
            assert k / (s + 1) - sigma <= float(cov_u[i]) <= (k + 1) / (s + 1) + sigma
            la, lb = math.floor((s - 1) * (1 - q) / 2), math.floor((s - 1) * (1 + q) / 2)
            assert (lb - la - 1) / (s + 1) - sigma <= float(cov_c[i]) <= (lb - la + 1) / (s + 1) + sigma
        assert calibration_score(cov_u, LEVELS) <= 0.02
        assert calibration_score(cov_u, LEVELS, "all") <= 0.02
        assert calibration_score(cov_c, LEVELS, "all") <= 0.02

    def test_scaled_law_is_miscalibrated(self, exp_law: dict[str, Any]) -> None:
        # Samples of 2X: P(y < 2 Q_q) = 1 - (1 - q)^2, e.g. 0.75 at q = 0.5.
        cov = coverage(2 * exp_law["samples"], exp_law["y"], LEVELS)
        assert calibration_score(cov, LEVELS) > 0.1

    def test_oracle_calibration(self, exp_law: dict[str, Any]) -> None:
        # E F(X_(k)) = k/(S+1) exactly; the mean over 5000 events has sd < 0.001.
        s = exp_law["samples"].shape[1]
        oc = oracle_coverage(exp_law["samples"], exp_law["cdf"], LEVELS)
        for i, q in enumerate(LEVELS):
            k = math.floor((s - 1) * q) + 1
            assert k / (s + 1) - 0.004 <= float(oc[i]) <= (k + 1) / (s + 1) + 0.004
        assert oracle_calibration(exp_law["samples"], exp_law["cdf"], LEVELS) < 0.02
        assert oracle_calibration(2 * exp_law["samples"], exp_law["cdf"], LEVELS) > 0.1

    def test_oracle_gap(self, exp_law: dict[str, Any]) -> None:
        q = torch.tensor(LEVELS, dtype=F64)
        true_q = -torch.log1p(-q)[None, :] / exp_law["rate"][:, None]  # Exp quantiles
        exact = oracle_gap(exp_law["samples"], true_q, LEVELS)
        scaled = oracle_gap(2 * exp_law["samples"], true_q, LEVELS)
        assert bool((exact < 0.5 * scaled).all())
        # By hand: Q_0.5 of (0, 1, 2) = 1, Q_0.75 = 1.5.
        assert oracle_gap([[0.0, 1.0, 2.0]], [[0.0, 2.0]], [0.5, 0.75]).tolist() == [1.0, 0.5]

    def test_randomized_pit_is_uniform(self, exp_law: dict[str, Any]) -> None:
        u = pit(exp_law["samples"], exp_law["y"], randomized=True, generator=torch.Generator().manual_seed(4))
        assert stats.kstest(u.numpy(), "uniform").pvalue > 0.01
        density, edges = pit_histogram(u, bins=10)
        assert edges.tolist() == pytest.approx([i / 10 for i in range(11)])
        assert float(density.mean()) == pytest.approx(1.0)
        assert float((density - 1).abs().max()) < 0.2


class TestPointAndTypes:
    def test_pit_by_hand(self) -> None:
        # Fraction strictly below y: 2/4 and (tie at 1) 1/4.
        assert pit([[0.0, 1.0, 2.0, 3.0]] * 2, [1.5, 1.0]).tolist() == [0.5, 0.25]
        # All tied: (0 + V (3 + 1)) / 4 = V, inside (0, 1).
        u = pit(torch.ones(200, 3), torch.ones(200), randomized=True, generator=torch.Generator().manual_seed(5))
        assert bool(((u > 0) & (u < 1)).all())

    def test_pit_histogram_by_hand(self) -> None:
        # bins of width 1/4: {0, 0.05} -> bin 0, 0.5 -> bin 2, 1.0 -> last bin; density = count * 4 / 4.
        density, _ = pit_histogram(np.array([0.0, 0.05, 0.5, 1.0]), bins=4)
        assert density.tolist() == [2.0, 0.0, 1.0, 1.0]

    def test_rmse_by_hand(self) -> None:
        # Medians (2.5, 0) [interpolated, not torch.median's 2], means (2.5, 2.5); y = (0, 2.5).
        s = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 10.0]])
        assert rmse(s, [0.0, 2.5]) == pytest.approx(2.5, abs=1e-15)
        assert rmse(s, [0.0, 2.5], "mean") == pytest.approx(math.sqrt(6.25 / 2), abs=1e-15)

    def test_type_accuracy_ties_go_to_smallest(self) -> None:
        # Row 0: types 2 and 1 tie (2 votes) -> 1; row 1: 1 and 2 tie -> 1.
        sampled = torch.tensor([[2, 2, 1, 1, 0], [0, 1, 1, 2, 2]])
        assert type_accuracy(sampled, [1, 2]) == 0.5
        assert type_accuracy(sampled, [1, 1]) == 1.0
        assert type_accuracy(np.array([[3, 3, 3]]), np.array([3])) == 1.0
        probs = torch.tensor([[0.4, 0.4, 0.2], [0.1, 0.2, 0.7]])
        assert type_accuracy(probs, [1, 2], rule="argmax") == 0.5
        assert type_accuracy(probs, [0, 2], rule="argmax") == 1.0


class TestSummarize:
    def test_agrees_with_single_metrics(self, exp_law: dict[str, Any]) -> None:
        x, y = exp_law["samples"][:500] - 0.1, exp_law["y"][:500]
        rate = exp_law["rate"][:500].numpy()

        def cdf(v: np.ndarray[Any, Any]) -> Any:
            return 1.0 - np.exp(-rate[:, None] * np.clip(v, 0.0, None))

        ts = torch.randint(0, 3, (500, 100), generator=torch.Generator().manual_seed(6))
        tt = torch.randint(0, 3, (500,), generator=torch.Generator().manual_seed(7))
        out = summarize(x, y, ts, tt, true_cdf=cdf)
        cov_u, cov_c = coverage(x, y, LEVELS), coverage(x, y, LEVELS, "central")
        assert out["quantiles"] == list(LEVELS)
        assert (out["n_events"], out["n_samples"]) == (500, 100)
        assert out["coverage_upper"] == cov_u.tolist()
        assert out["coverage_central"] == cov_c.tolist()
        assert out["cs"] == calibration_score(cov_u, LEVELS)
        assert out["cs_all"] == calibration_score(cov_u, LEVELS, "all")
        assert out["cs_central"] == calibration_score(cov_c, LEVELS, "all")
        assert out["il"] == pytest.approx(interval_length(x, 0.5), abs=1e-14)
        assert out["il_upper"] == pytest.approx(interval_length(x, LEVELS).tolist(), abs=1e-14)
        assert out["il_central"] == pytest.approx(interval_length(x, LEVELS, "central").tolist(), abs=1e-14)
        assert out["crps"] == pytest.approx(crps(x, y), abs=1e-14)
        assert out["crps_official"] == pytest.approx(crps(x, y, fair=False), abs=1e-14)
        assert out["rmse_median"] == pytest.approx(rmse(x, y), abs=1e-14)
        assert out["rmse_mean"] == pytest.approx(rmse(x, y, "mean"), abs=1e-14)
        assert out["frac_negative"] == pytest.approx(float((x < 0).double().mean()))
        assert out["accuracy"] == type_accuracy(ts, tt)
        assert out["oracle_cs"] == pytest.approx(oracle_calibration(x, cdf, LEVELS), abs=1e-14)
        assert out["oracle_cs_all"] == pytest.approx(oracle_calibration(x, cdf, LEVELS, "all"), abs=1e-14)

    def test_optional_keys_absent(self) -> None:
        out = summarize([[0.0, 1.0, 2.0]], [1.0], quantiles=[0.25, 0.75])
        assert "accuracy" not in out
        assert "oracle_cs" not in out
        assert math.isnan(summarize([[0.0, 1.0]], [1.0], quantiles=[0.25])["cs"])


def _cdf_wrong_shape(v: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return v[:, :1]


S2 = [[0.0, 1.0], [2.0, 3.0]]
Y2 = [0.5, 2.5]
BAD: list[tuple[str, Callable[[], object]]] = [
    ("samples", lambda: coverage([0.0, 1.0], [0.5], 0.5)),
    ("samples", lambda: coverage([[0.0], [1.0]], Y2, 0.5)),
    ("samples", lambda: crps([[0.0, math.nan]], [0.5])),
    ("samples", lambda: coverage(np.array([["a", "b"]]), [0.5], 0.5)),
    ("y", lambda: coverage(S2, [0.5], 0.5)),
    ("y", lambda: rmse(S2, [0.5, math.inf])),
    ("q", lambda: coverage(S2, Y2, 0.0)),
    ("q", lambda: coverage(S2, Y2, [0.5, 1.0])),
    ("q", lambda: interval_length(S2, [])),
    ("q", lambda: sample_quantiles(S2, [1.5])),
    ("kind", lambda: coverage(S2, Y2, 0.5, "both")),
    ("kind", lambda: interval_length(S2, 0.5, "lower")),
    ("cov", lambda: calibration_score([0.5], [0.5, 0.6])),
    ("cov", lambda: calibration_score([1.5], [0.5])),
    ("q", lambda: calibration_score([0.1], [0.2])),
    ("subset", lambda: calibration_score([0.5], [0.5], "some")),
    ("point", lambda: rmse(S2, Y2, "mode")),
    ("predicted", lambda: type_accuracy([[0.0, 1.0]], [0])),
    ("true_types", lambda: type_accuracy([[0, 1]], [-1])),
    ("true_types", lambda: type_accuracy([[0, 1]], [0, 1])),
    ("rule", lambda: type_accuracy([[0, 1]], [0], "vote")),
    ("bins", lambda: pit_histogram([0.5], bins=0)),
    ("pit_values", lambda: pit_histogram([1.5])),
    ("true_cdf_at", lambda: oracle_coverage(S2, _cdf_wrong_shape, [0.5, 0.6])),
    ("true_cdf_at", lambda: oracle_coverage(S2, lambda v: v + 2.0, [0.5])),
    ("true_quantiles", lambda: oracle_gap(S2, [[1.0]], [0.5, 0.6])),
    ("step", lambda: quantile_levels(0.03)),
    ("step", lambda: quantile_levels(0.0)),
    ("step", lambda: quantile_levels(0.7)),
    ("mask", lambda: flatten_events(torch.ones(2, 3), torch.ones(2), torch.ones(2))),
    ("samples", lambda: flatten_events(torch.ones(2, 3), torch.ones(2), torch.ones(3) > 0)),
    ("types_sampled", lambda: summarize(S2, Y2, types_sampled=[[0, 1], [1, 1]])),
    ("quantiles", lambda: summarize(S2, Y2, quantiles=[0.0, 0.5])),
]


@pytest.mark.parametrize(("name", "call"), BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_bad_input_raises_value_error_naming_argument(name: str, call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("module", [metrics, oracle_metrics])
def test_docstring_examples(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0


def test_pit_ks_hand_cases() -> None:
    from smurf_thp.metrics import pit_ks

    # sorted midpoints (i - 0.5) / n: both one-sided distances are 1 / (2n)
    assert pit_ks(torch.tensor([0.875, 0.125, 0.625, 0.375])) == pytest.approx(0.125)
    assert pit_ks(torch.zeros(5)) == pytest.approx(1.0)  # all mass at 0: the ECDF jumps to 1 at once
    assert pit_ks(torch.tensor([0.5])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="pit_values"):
        pit_ks(torch.tensor([1.5]))
