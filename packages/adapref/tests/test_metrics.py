"""Tests of adapref.metrics against hand-worked cases, naive loops and scipy.stats."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
import torch
from scipy import stats

from adapref.metrics import (
    _rankdata,
    kendall_tau,
    pearson,
    preference_accuracy,
    spearman,
    spearman_ceiling,
    strength_quantile_table,
    tau_histogram,
)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _cases() -> list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """Continuous, heavily tied, and anti-correlated inputs."""
    rng = _rng()
    x = rng.normal(size=200)
    return [
        (x, x + rng.normal(size=200)),
        (rng.integers(0, 4, size=150).astype(float), rng.integers(0, 3, size=150).astype(float)),
        (x, -(x**3)),
    ]


class TestPreferenceAccuracy:
    def test_hand_case_with_a_tie(self) -> None:
        # (2>1) + 0.5·(1=1) + (0>3 false) + (5>4) = 2.5 of 4.
        assert preference_accuracy(torch.tensor([2.0, 1.0, 0.0, 5.0]), np.array([1.0, 1.0, 3.0, 4.0])) == 0.625

    def test_returns_a_python_float(self) -> None:
        assert type(preference_accuracy(torch.ones(3), torch.zeros(3))) is float

    @pytest.mark.parametrize(
        ("a", "b", "pattern"),
        [
            (
                torch.zeros(3),
                torch.zeros(2),
                r"chosen_scores and rejected_scores must have the same length, got 3 and 2",
            ),
            (torch.zeros(2, 2), torch.zeros(2, 2), r"chosen_scores must be 1-D, got shape \(2, 2\)"),
            (torch.zeros(0), torch.zeros(0), r"chosen_scores is empty"),
            (torch.zeros(2), torch.tensor([0.0, math.nan]), r"rejected_scores contains NaN"),
            ([1.0], [0.0], r"chosen_scores must be a torch.Tensor or numpy array, got list"),
        ],
    )
    def test_bad_input_names_the_argument(self, a: Any, b: Any, pattern: str) -> None:
        with pytest.raises(ValueError, match=pattern):
            preference_accuracy(a, b)


class TestCorrelations:
    @pytest.mark.parametrize("case", range(3))
    def test_pearson_matches_scipy(self, case: int) -> None:
        # scipy.stats.pearsonr on the same data.
        x, y = _cases()[case]
        assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)

    @pytest.mark.parametrize("case", range(3))
    def test_spearman_matches_scipy(self, case: int) -> None:
        # scipy.stats.spearmanr (average ranks for ties).
        x, y = _cases()[case]
        assert spearman(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)

    @pytest.mark.parametrize("case", range(3))
    def test_kendall_tau_b_matches_scipy(self, case: int) -> None:
        # scipy.stats.kendalltau defaults to tau-b.
        x, y = _cases()[case]
        assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y)[0], abs=1e-12)

    def test_kendall_tau_b_matches_a_naive_pair_loop(self) -> None:
        # The tau-b formula evaluated pair by pair in pure Python, on tied data.
        x = [1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 0.0]
        y = [2.0, 1.0, 1.0, 4.0, 4.0, 6.0, 0.0]
        nc = nd = tx = ty = 0
        for i, j in itertools.combinations(range(len(x)), 2):
            sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
            nc += int(sx * sy > 0)
            nd += int(sx * sy < 0)
            tx += int(sx == 0)
            ty += int(sy == 0)
        n0 = len(x) * (len(x) - 1) / 2
        expected = (nc - nd) / math.sqrt((n0 - tx) * (n0 - ty))
        assert kendall_tau(np.array(x), np.array(y)) == pytest.approx(expected, abs=1e-15)

    def test_kendall_tau_blocks_agree_with_one_block(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Block size 1 row (forced) gives the same sum as the default single block.
        import adapref.metrics as metrics

        x, y = _cases()[1]
        whole = kendall_tau(x, y)
        monkeypatch.setattr(metrics, "_KENDALL_BLOCK", 1)
        assert kendall_tau(x, y) == pytest.approx(whole, abs=1e-15)

    def test_rankdata_matches_scipy_average(self) -> None:
        # scipy.stats.rankdata(method="average") on data with ties.
        x = _rng(1).integers(0, 5, size=40).astype(float)
        np.testing.assert_array_equal(_rankdata(x), stats.rankdata(x))

    def test_hand_cases(self) -> None:
        # Monotone cubic: Spearman = Kendall = 1; one swap of 3: Kendall = (2 − 1)/3.
        x = np.array([1.0, 2.0, 3.0, 4.0])
        assert spearman(x, x**3) == pytest.approx(1.0)
        assert kendall_tau(x, -x) == pytest.approx(-1.0)
        assert kendall_tau(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])) == pytest.approx(1 / 3)

    @pytest.mark.parametrize("fn", [pearson, spearman, kendall_tau])
    def test_constant_input_gives_nan(self, fn: Any) -> None:
        # scipy also returns nan here (the correlation is undefined).
        assert math.isnan(fn(np.ones(5), np.arange(5.0)))
        # a constant that the mean does not reproduce exactly (0.1 − mean = ±1.4e-17): still nan, not ±1e-17
        assert math.isnan(fn(np.full(3, 0.1), np.array([1.0, 2.0, 3.0])))
        assert math.isnan(fn(np.array([1.0, 2.0, 3.0]), np.full(3, 0.3)))

    def test_pearson_of_huge_values(self) -> None:
        # the sums of squares of 1e200s overflowed to inf and the correlation read 0.0
        x, y = np.array([1e200, -1e200, 0.0, 3e199]), np.array([1.0, -1.0, 0.0, 0.2])
        assert pearson(x, y) == pytest.approx(stats.pearsonr(x / 1e200, y)[0], abs=1e-12)
        assert pearson(x, y) > 0.99

    @pytest.mark.parametrize("fn", [pearson, spearman, kendall_tau])
    def test_complex_input_is_refused(self, fn: Any) -> None:
        # numpy's cast to float would drop the imaginary part with only a warning
        with pytest.raises(ValueError, match=r"^x must hold real numbers, got dtype complex128$"):
            fn(np.array([1 + 5j, 2, 3]), np.arange(3.0))
        with pytest.raises(ValueError, match=r"^y must hold real numbers, got dtype torch.complex64$"):
            fn(np.arange(3.0), torch.ones(3, dtype=torch.complex64))

    @pytest.mark.parametrize("fn", [pearson, spearman, kendall_tau])
    def test_single_value_raises(self, fn: Any) -> None:
        with pytest.raises(ValueError, match=r"at least 2 values, got 1"):
            fn(np.ones(1), np.ones(1))

    @pytest.mark.parametrize("fn", [pearson, spearman, kendall_tau])
    def test_length_mismatch_names_x_and_y(self, fn: Any) -> None:
        with pytest.raises(ValueError, match=r"x and y must have the same length, got 3 and 4"):
            fn(np.ones(3), np.ones(4))


class TestSpearmanCeiling:
    def test_hand_case(self) -> None:
        # One pair at tau0, two at tau_max: the best tau ranks the pairs by strength as (1, 2, 3.5, 3.5),
        # whose Pearson with (1, 2, 3, 4) is 4.5 / sqrt(4.5 * 5) = 3 / sqrt(10).
        tau = torch.tensor([0.1, 0.5, 1.0, 1.0])
        strength = torch.tensor([4.0, 1.0, 2.0, 3.0])
        assert spearman_ceiling(tau, strength, 0.1, 1.0) == pytest.approx(3 / math.sqrt(10), abs=1e-12)

    def test_a_single_pair_names_tau_and_strength(self) -> None:
        with pytest.raises(ValueError, match=r"^tau and strength need at least 2 values, got 1$"):
            spearman_ceiling(torch.tensor([0.5]), torch.tensor([1.0]), 0.1, 1.0)

    def test_without_ties_the_ceiling_is_one(self) -> None:
        rng = _rng(1)
        tau = rng.uniform(0.2, 0.9, size=50)
        assert spearman_ceiling(tau, rng.normal(size=50), 0.1, 1.0) == pytest.approx(1.0, abs=1e-12)

    def test_a_monotone_clip_of_the_strength_reaches_it(self) -> None:
        # tau = clip(strength / u, tau0, tau_max) orders the pairs as the strength does: Spearman == ceiling.
        rng = _rng(2)
        strength = np.abs(rng.normal(0.0, 3.0, size=400))
        tau = np.clip(strength / 0.94, 0.1, 1.0)
        assert spearman_ceiling(tau, strength, 0.1, 1.0) == pytest.approx(stats.spearmanr(tau, strength)[0], abs=1e-12)

    @pytest.mark.parametrize("seed", range(5))
    def test_no_tau_with_the_same_bound_shares_beats_it(self, seed: int) -> None:
        # Noisy tau clipped at both bounds: the measured Spearman stays at or below the ceiling.
        rng = _rng(seed)
        strength = np.abs(rng.normal(0.0, 3.0, size=300))
        tau = np.clip((strength + rng.normal(0.0, 1.5, size=300)) / 0.94, 0.1, 1.0)
        assert stats.spearmanr(tau, strength)[0] <= spearman_ceiling(tau, strength, 0.1, 1.0) + 1e-12

    def test_only_the_upper_block(self) -> None:
        # No pair at tau0, the two strongest at tau_max: ranks (1, 2, 3.5, 3.5) again, 3 / sqrt(10).
        tau = torch.tensor([0.3, 1.0, 0.2, 1.0])
        strength = torch.tensor([2.0, 3.0, 1.0, 4.0])
        assert spearman_ceiling(tau, strength, 0.1, 1.0) == pytest.approx(3 / math.sqrt(10), abs=1e-12)

    def test_one_bound_for_all_pairs_is_undefined(self) -> None:
        # tau0 == tau_max: every pair is tied, no rank information (the BT limit): nan.
        tau = torch.ones(5)
        assert math.isnan(spearman_ceiling(tau, torch.arange(5.0), 1.0, 1.0))

    def test_an_unbounded_tau_max_and_bad_bounds(self) -> None:
        tau = torch.tensor([0.1, 0.3, 2.0, 5.0])
        assert spearman_ceiling(tau, torch.tensor([1.0, 2.0, 3.0, 4.0]), 0.1, math.inf) == pytest.approx(1.0)
        with pytest.raises(ValueError, match="tau_max >= tau0"):
            spearman_ceiling(tau, tau, 1.0, 0.5)
        with pytest.raises(ValueError, match="tau0 > 0"):
            spearman_ceiling(tau, tau, 0.0, 1.0)


class TestStrengthQuantileTable:
    def test_hand_case_quintiles(self) -> None:
        # strength 1..10 → quintile edges 1, 2.8, 4.6, 6.4, 8.2, 10; two values per bin; τ = 10·strength.
        s = np.arange(1.0, 11.0)
        table = strength_quantile_table(torch.tensor(10 * s), torch.tensor(s), q=5)
        assert [row["n"] for row in table] == [2] * 5
        assert [row["mean_tau"] for row in table] == pytest.approx([15.0, 35.0, 55.0, 75.0, 95.0])
        assert [row["lo"] for row in table] == pytest.approx([1.0, 2.8, 4.6, 6.4, 8.2])
        assert table[-1]["hi"] == 10.0

    def test_matches_a_naive_loop(self) -> None:
        # Each value assigned by explicit comparisons with np.quantile's edges ([lo, hi), last bin closed).
        rng = _rng(2)
        s, tau = rng.exponential(size=503), rng.uniform(0.1, 1.0, size=503)
        q = 7
        edges = np.quantile(s, np.linspace(0, 1, q + 1))
        table = strength_quantile_table(tau, s, q=q)
        for k, row in enumerate(table):
            members = [
                t
                for t, v in zip(tau, s, strict=True)
                if edges[k] <= v < edges[k + 1] or (k == q - 1 and v == edges[-1])
            ]
            assert row["n"] == len(members)
            assert row["mean_tau"] == pytest.approx(float(np.mean(members)), abs=1e-12)
        assert sum(int(row["n"]) for row in table) == 503

    def test_tied_strengths_leave_empty_bins(self) -> None:
        # 8 zeros and 2 ones: the lower quintile edges all equal 0, so their bins are empty (n = 0, nan).
        s = np.array([0.0] * 8 + [1.0, 1.0])
        table = strength_quantile_table(np.arange(10.0), s, q=5)
        assert sum(int(row["n"]) for row in table) == 10
        assert any(row["n"] == 0 and math.isnan(row["mean_tau"]) for row in table)

    def test_bad_q_raises(self) -> None:
        with pytest.raises(ValueError, match=r"q must be an int >= 1, got 0"):
            strength_quantile_table(np.ones(3), np.ones(3), q=0)


class TestTauHistogram:
    def test_hand_case(self) -> None:
        # Bins of width 0.3 on [0.1, 1.0]: 0.1, 0.1 | 0.5 | 1.0; 2/4 at τ0 and 1/4 at τmax.
        h = tau_histogram(np.array([0.1, 0.1, 0.5, 1.0]), 0.1, 1.0, bins=3)
        assert h["counts"] == [2, 1, 1]
        assert h["edges"] == pytest.approx([0.1, 0.4, 0.7, 1.0])
        assert (h["frac_at_tau0"], h["frac_at_tau_max"], h["n"], h["n_outside"]) == (0.5, 0.25, 4, 0)

    def test_float32_bounds_count_as_at_the_bound(self) -> None:
        # float32(0.1) = 0.10000000149 and float32(1.0 + 1e-7) are within 1e-6 relative of the bounds.
        tau = torch.tensor([0.1, 1.0 + 1e-7, 0.55], dtype=torch.float32)
        h = tau_histogram(tau, 0.1, 1.0, bins=2)
        assert (h["frac_at_tau0"], h["frac_at_tau_max"]) == pytest.approx((1 / 3, 1 / 3))
        assert h["counts"] == [1, 2]
        assert h["n_outside"] == 0

    def test_tolerance_is_relative(self) -> None:
        # 1e-6 relative of τ0 = 0.1 is 1e-7: 0.1 + 5e-8 counts, 0.1 + 5e-7 does not.
        h = tau_histogram(np.array([0.1 + 5e-8, 0.1 + 5e-7]), 0.1, 1.0)
        assert h["frac_at_tau0"] == 0.5

    def test_counts_match_numpy_histogram(self) -> None:
        # np.histogram over the same range on values inside it.
        tau = _rng(3).uniform(0.1, 4.0, size=1000)
        h = tau_histogram(tau, 0.1, 4.0, bins=12)
        assert h["counts"] == np.histogram(tau, bins=12, range=(0.1, 4.0))[0].tolist()

    def test_values_outside_the_range_are_counted_apart(self) -> None:
        h = tau_histogram(np.array([0.05, 0.5, 2.0]), 0.1, 1.0, bins=2)
        assert h["n_outside"] == 2
        assert sum(h["counts"]) == 1

    @pytest.mark.parametrize(
        ("tau0", "tau_max", "bins", "pattern"),
        [
            (0.0, 1.0, 10, r"tau0 must be a finite number > 0, got 0.0"),
            (0.5, 0.4, 10, r"tau_max must be a finite number >= tau0=0.5, got 0.4"),
            (0.1, 1.0, 0, r"bins must be an int >= 1, got 0"),
        ],
    )
    def test_bad_arguments_raise_naming_them(self, tau0: float, tau_max: float, bins: int, pattern: str) -> None:
        with pytest.raises(ValueError, match=pattern):
            tau_histogram(np.ones(3), tau0, tau_max, bins=bins)


def test_tau_histogram_with_fixed_tau_has_one_bin() -> None:
    # τ0 = τmax (Bradley-Terry at temperature τ0): every τ is at both bounds, in one degenerate bin.
    h = tau_histogram(torch.ones(7), 1.0, 1.0)
    assert h["counts"] == [7]
    assert h["edges"] == [1.0, 1.0]
    assert h["frac_at_tau0"] == h["frac_at_tau_max"] == 1.0
