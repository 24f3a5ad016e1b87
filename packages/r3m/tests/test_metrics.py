"""Tests of r3m.metrics against hand-worked cases, naive loops, brute force and scipy.stats."""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any

import numpy as np
import pytest
import torch
from scipy import stats

from r3m.metrics import (
    _rankdata,
    flag_precision,
    kendall_tau,
    outlier_auroc,
    outlier_precision_recall,
    pearson,
    preference_accuracy,
    reward_correlation,
    spearman,
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
        import r3m.metrics as metrics

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


class TestRewardCorrelation:
    def test_bad_input_is_named_pred_and_true(self) -> None:
        with pytest.raises(ValueError, match=r"^pred contains NaN or infinite values$"):
            reward_correlation(np.array([1.0, math.nan, 2.0]), np.arange(3.0))
        with pytest.raises(ValueError, match=r"^pred and true must have the same length, got 3 and 4$"):
            reward_correlation(np.ones(3), np.ones(4), kind="kendall")
        with pytest.raises(ValueError, match=r"^pred and true need at least 2 values, got 1$"):
            reward_correlation(np.ones(1), np.ones(1), kind="spearman")

    @pytest.mark.parametrize(
        ("kind", "reference"),
        [("pearson", stats.pearsonr), ("spearman", stats.spearmanr), ("kendall", stats.kendalltau)],
    )
    @pytest.mark.parametrize("case", range(3))
    def test_each_kind_matches_scipy(self, kind: Any, reference: Any, case: int) -> None:
        # scipy.stats' pearsonr / spearmanr / kendalltau (tau-b) on the same data.
        x, y = _cases()[case]
        assert reward_correlation(torch.from_numpy(x), y, kind=kind) == pytest.approx(reference(x, y)[0], abs=1e-12)

    def test_default_is_pearson(self) -> None:
        x, y = _cases()[0]
        assert reward_correlation(x, y) == pearson(x, y)

    def test_unknown_kind_raises(self) -> None:
        with pytest.raises(ValueError, match=r"kind must be 'pearson', 'spearman' or 'kendall', got 'cosine'"):
            reward_correlation(np.ones(3), np.arange(3.0), kind="cosine")  # type: ignore[arg-type]


class TestOutlierPrecisionRecall:
    def test_hand_case(self) -> None:
        # Flagged {0, 1, 2}, corrupted {0, 3}: TP = 1, precision 1/3, recall 1/2.
        flagged = torch.tensor([True, True, True, False, False, False])
        corrupted = np.array([True, False, False, True, False, False])
        precision, recall = outlier_precision_recall(flagged, corrupted)
        assert precision == pytest.approx(1 / 3)
        assert recall == 0.5

    def test_matches_a_counting_loop(self) -> None:
        # Random masks, TP / flagged / corrupted counted one pair at a time.
        rng = _rng(4)
        f, c = rng.random(500) < 0.3, rng.random(500) < 0.2
        tp = sum(1 for a, b in zip(f, c, strict=True) if a and b)
        assert outlier_precision_recall(f, c) == (tp / sum(f), tp / sum(c))

    def test_nothing_flagged_gives_nan_precision_and_a_warning(self, caplog: pytest.LogCaptureFixture) -> None:
        # Precision 0/0 is undefined; recall is 0/2 = 0.
        with caplog.at_level(logging.WARNING, logger="r3m.metrics"):
            precision, recall = outlier_precision_recall(np.zeros(4, dtype=bool), np.array([True, True, False, False]))
        assert math.isnan(precision)
        assert recall == 0.0
        assert "nothing is flagged" in caplog.text

    def test_nothing_corrupted_gives_nan_recall(self, caplog: pytest.LogCaptureFixture) -> None:
        # Recall 0/0 is undefined; precision is 0/1 = 0.
        with caplog.at_level(logging.WARNING, logger="r3m.metrics"):
            precision, recall = outlier_precision_recall(np.array([True, False]), np.zeros(2, dtype=bool))
        assert precision == 0.0
        assert math.isnan(recall)
        assert "nothing is corrupted" in caplog.text

    @pytest.mark.parametrize(
        ("flagged", "corrupted", "pattern"),
        [
            (
                torch.zeros(3),
                torch.zeros(3, dtype=torch.bool),
                r"flagged must be a bool tensor, got dtype torch.float32",
            ),
            (np.zeros(3, dtype=bool), np.zeros(3, dtype=int), r"corrupted must be a bool array, got dtype int"),
            (
                np.zeros(3, dtype=bool),
                np.zeros(2, dtype=bool),
                r"flagged and corrupted must have the same length, got 3 and 2",
            ),
            (np.zeros((2, 2), dtype=bool), np.zeros(4, dtype=bool), r"flagged must be 1-D"),
            (np.zeros(0, dtype=bool), np.zeros(0, dtype=bool), r"flagged is empty"),
            ([True], [True], r"flagged must be a torch.Tensor or numpy array, got list"),
        ],
    )
    def test_bad_input_names_the_argument(self, flagged: Any, corrupted: Any, pattern: str) -> None:
        with pytest.raises(ValueError, match=pattern):
            outlier_precision_recall(flagged, corrupted)


def _auroc_brute_force(scores: list[float], corrupted: list[bool]) -> float:
    """Σ over (corrupted, clean) pairs of 1[s_i > s_j] + ½·1[s_i = s_j], divided by their number."""
    pos = [s for s, c in zip(scores, corrupted, strict=True) if c]
    neg = [s for s, c in zip(scores, corrupted, strict=True) if not c]
    total = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return total / (len(pos) * len(neg))


class TestFlagPrecision:
    def test_hand_case(self) -> None:
        # 1000 pairs, 200 corrupted, 170 of them flagged (R = .85), 56 of 800 clean flagged (e = .07):
        # P = 170 / 226.
        assert flag_precision(0.2, 0.85, 0.07) == pytest.approx(170 / 226)

    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_equals_the_counted_precision_of_random_masks(self, seed: int) -> None:
        # ρ, R and e counted from random masks give back outlier_precision_recall's precision.
        rng = _rng(seed)
        f, c = rng.random(700) < 0.3, rng.random(700) < 0.25
        precision, recall = outlier_precision_recall(f, c)
        rho, e = float(c.mean()), float(f[~c].mean())
        assert flag_precision(rho, recall, e) == pytest.approx(precision, abs=1e-12)

    def test_recall_one_is_an_upper_bound(self) -> None:
        # P grows with R, so R = 1 bounds it: .2 / (.2 + .8 · .13) = .6579 at the B1 numbers.
        bound = flag_precision(0.2, 1.0, 0.13)
        assert bound == pytest.approx(0.2 / 0.304)
        assert all(flag_precision(0.2, r, 0.13) <= bound for r in np.linspace(0.01, 1.0, 50))

    def test_nothing_flagged_is_nan(self) -> None:
        assert math.isnan(flag_precision(0.0, 1.0, 0.0))

    @pytest.mark.parametrize("args", [(-0.1, 1.0, 0.1), (0.2, 1.5, 0.1), (0.2, 1.0, math.nan), (True, 1.0, 0.1)])
    def test_bad_input_raises(self, args: tuple[float, float, float]) -> None:
        with pytest.raises(ValueError, match="must be a number in \\[0, 1\\]"):
            flag_precision(*args)


class TestOutlierAuroc:
    def test_hand_case_with_a_tie(self) -> None:
        # Corrupted scores {0.9, 0.5}, clean {0.1, 0.5}: 1 + 1 + 1 + ½ of 4 pairs = 0.875.
        assert outlier_auroc(np.array([0.9, 0.1, 0.5, 0.5]), np.array([True, False, True, False])) == 0.875

    @pytest.mark.parametrize("tied", [False, True])
    def test_matches_a_brute_force_pair_count(self, tied: bool) -> None:
        # All n₊·n₋ pairs counted in pure Python, on continuous and on heavily tied scores.
        rng = _rng(5)
        corrupted = rng.random(300) < 0.2
        scores = rng.normal(size=300) + corrupted
        if tied:
            scores = np.round(scores)
        expected = _auroc_brute_force(scores.tolist(), corrupted.tolist())
        assert outlier_auroc(torch.from_numpy(scores), torch.from_numpy(corrupted)) == pytest.approx(
            expected, abs=1e-12
        )

    def test_matches_scipy_mann_whitney_u(self) -> None:
        # scipy.stats.mannwhitneyu's U of the corrupted sample, over n₊·n₋.
        rng = _rng(6)
        corrupted = rng.random(200) < 0.3
        scores = rng.integers(0, 6, size=200).astype(float)
        u = stats.mannwhitneyu(scores[corrupted], scores[~corrupted]).statistic
        assert outlier_auroc(scores, corrupted) == pytest.approx(u / (corrupted.sum() * (~corrupted).sum()), abs=1e-12)

    def test_extremes_and_symmetry(self) -> None:
        # Perfect ranking 1, reversed 0; negating the scores gives 1 − AUROC (ties stay ½).
        corrupted = np.array([True, True, False, False, False])
        assert outlier_auroc(np.array([5.0, 4.0, 1.0, 2.0, 3.0]), corrupted) == 1.0
        assert outlier_auroc(np.array([0.0, 1.0, 3.0, 2.0, 4.0]), corrupted) == 0.0
        s = np.round(_rng(7).normal(size=5))
        assert outlier_auroc(-s, corrupted) == pytest.approx(1 - outlier_auroc(s, corrupted), abs=1e-15)

    @pytest.mark.parametrize("value", [True, False])
    def test_one_class_gives_nan_and_a_warning(self, value: bool, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING, logger="r3m.metrics"):
            assert math.isnan(outlier_auroc(np.arange(4.0), np.full(4, value)))
        assert "only one class" in caplog.text

    def test_bad_input_names_the_argument(self) -> None:
        with pytest.raises(ValueError, match=r"scores and corrupted must have the same length, got 3 and 4"):
            outlier_auroc(np.ones(3), np.zeros(4, dtype=bool))
        with pytest.raises(ValueError, match=r"scores contains NaN"):
            outlier_auroc(np.array([1.0, math.nan]), np.array([True, False]))
        with pytest.raises(ValueError, match=r"corrupted must be a bool tensor"):
            outlier_auroc(torch.ones(2), torch.ones(2))
