"""Tests of r3m.teachers: the B-Pref teachers and R³M's corruption models, against hand cases and loops."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from r3m.teachers import Flip, Irrational, Mistake, Myopic, Oracle, Stochastic, Teacher, as_returns


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _within_4_sigma(hits: int, n: int, p: float) -> bool:
    return abs(hits - n * p) <= 4 * math.sqrt(n * p * (1 - p))


def _steps(n: int, t: int, seed: int) -> torch.Tensor:
    return torch.randn(n, t, generator=_gen(seed))


class TestOracle:
    def test_hand_case_on_returns(self) -> None:
        # a ≻ b iff R_a > R_b, worked by hand.
        labels = Oracle().label(torch.tensor([3.0, -1.0, 0.5]), torch.tensor([2.0, 0.0, 0.4]), _gen())
        assert labels.tolist() == [True, False, True]

    def test_hand_case_on_step_rewards_sums_over_t(self) -> None:
        # Per-step rewards: R_a = 1 + 2 = 3 > R_b = 0 + 2.5; R_a = −1 + 0 < R_b = 0 + 0.
        a = torch.tensor([[1.0, 2.0], [-1.0, 0.0]])
        b = torch.tensor([[0.0, 2.5], [0.0, 0.0]])
        assert Oracle().label(a, b, _gen()).tolist() == [True, False]

    def test_breaks_ties_with_a_fair_coin(self) -> None:
        # All 20000 pairs tied: the share labelled True is Binomial(n, 1/2), within 4σ.
        n = 20000
        hits = int(Oracle().label(torch.zeros(n), torch.zeros(n), _gen()).sum())
        assert _within_4_sigma(hits, n, 0.5)

    def test_as_returns_matches_a_loop(self) -> None:
        # Σ_t by a Python loop in float64; (N,) input is returned as float64 unchanged.
        x = _steps(5, 4, 1)
        expected = [sum(float(v) for v in row) for row in x]
        assert as_returns(x).tolist() == pytest.approx(expected, abs=1e-12)
        assert as_returns(x[:, 0]).dtype == torch.float64


class TestStochastic:
    def test_rate_is_bradley_terry(self) -> None:
        # R_a − R_b = 1 at temperature 2: P(a ≻ b) = σ(0.5) = 0.622459; binomial 4σ band.
        n = 20000
        hits = int(Stochastic(2.0).label(torch.ones(n), torch.zeros(n), _gen()).sum())
        assert _within_4_sigma(hits, n, 1 / (1 + math.exp(-0.5)))

    @pytest.mark.parametrize("shape", [(1000,), (1000, 6)])
    def test_zero_temperature_is_the_oracle(self, shape: tuple[int, ...]) -> None:
        # τ → 0 makes σ(Δ/τ) a step function: the same labels as Oracle on untied returns.
        ra, rb = torch.randn(shape, generator=_gen(1)), torch.randn(shape, generator=_gen(2))
        assert torch.equal(Stochastic(1e-12).label(ra, rb, _gen()), Oracle().label(ra, rb, _gen()))


class TestFlipAndMistake:
    def test_flip_rate_against_oracle(self) -> None:
        # Disagreements with the oracle ~ Binomial(n, eps), eps = 0.2; 4σ band.
        n = 20000
        ra, rb = torch.randn(n, generator=_gen(1)), torch.randn(n, generator=_gen(2))
        flips = int((Flip(0.2).label(ra, rb, _gen()) != (ra > rb)).sum())
        assert _within_4_sigma(flips, n, 0.2)

    def test_flip_zero_is_the_oracle(self) -> None:
        # eps = 0 never flips.
        ra, rb = torch.randn(500, generator=_gen(1)), torch.randn(500, generator=_gen(2))
        assert torch.equal(Flip(0.0).label(ra, rb, _gen()), ra > rb)

    def test_mistake_is_flip_under_the_b_pref_name(self) -> None:
        # Same eps and seed -> identical labels; the rate sits in the binomial 4σ band of eps = 0.3.
        n = 20000
        ra, rb = _steps(n, 3, 1), _steps(n, 3, 2)
        labels = Mistake(0.3).label(ra, rb, _gen(5))
        assert torch.equal(labels, Flip(0.3).label(ra, rb, _gen(5)))
        assert _within_4_sigma(int((labels != (ra.sum(1) > rb.sum(1))).sum()), n, 0.3)
        assert isinstance(Mistake(0.3), Flip)
        assert repr(Mistake(0.3)) == "Mistake(eps=0.3)"


class TestMyopic:
    def test_hand_case_where_the_label_flips(self) -> None:
        # T = 2, γ = 0.5: a = (4, 0), b = (0, 3). Returns 4 > 3, so Oracle prefers a;
        # myopic sums γ¹·4 + γ⁰·0 = 2 < γ¹·0 + γ⁰·3 = 3, so Myopic prefers b.
        a, b = torch.tensor([[4.0, 0.0]]), torch.tensor([[0.0, 3.0]])
        assert Oracle().label(a, b, _gen()).tolist() == [True]
        assert Myopic(0.5).label(a, b, _gen()).tolist() == [False]

    def test_matches_the_b_pref_in_place_loop(self) -> None:
        # B-Pref's loop: for index in range(T − 1): r[:, :index + 1] *= γ, then sum and compare.
        gamma, n, t = 0.7, 400, 6
        a, b = _steps(n, t, 1).double(), _steps(n, t, 2).double()
        wa, wb = a.clone(), b.clone()
        for index in range(t - 1):
            wa[:, : index + 1] *= gamma
            wb[:, : index + 1] *= gamma
        assert torch.equal(Myopic(gamma).label(a, b, _gen()), wa.sum(1) > wb.sum(1))

    def test_gamma_one_is_the_oracle(self) -> None:
        # All weights γ^k = 1: the comparison is the plain return order.
        a, b = _steps(300, 5, 3), _steps(300, 5, 4)
        assert torch.equal(Myopic(1.0).label(a, b, _gen()), Oracle().label(a, b, _gen()))

    def test_returns_only_raise(self) -> None:
        with pytest.raises(ValueError, match=r"Myopic needs per-step rewards of shape \(N, T\), got returns"):
            Myopic(0.5).label(torch.zeros(3), torch.zeros(3), _gen())


class TestIrrational:
    @pytest.mark.parametrize(("p", "k"), [(1 / 3, 4), (1 / 2, 8), (2 / 3, 16)])
    def test_flips_exactly_the_top_gap_pairs_of_each_block(self, p: float, k: int) -> None:
        # Per block of 64: exactly round(64^p) labels differ from the oracle, and they are the k
        # largest |ΔR| of the block, found by sorting in Python.
        n_blocks, b = 5, 64
        ra, rb = _steps(n_blocks * b, 4, 1), _steps(n_blocks * b, 4, 2)
        labels = Irrational(p, batch_size=b).label(ra, rb, _gen())
        gap = (ra.double().sum(1) - rb.double().sum(1)).abs().tolist()
        flipped = (labels != (ra.double().sum(1) > rb.double().sum(1))).tolist()
        for block in range(n_blocks):
            idx = range(block * b, (block + 1) * b)
            top = set(sorted(idx, key=lambda i: -gap[i])[:k])
            assert {i for i in idx if flipped[i]} == top
        assert Irrational(p).flips_per_batch == k
        assert sum(flipped) / len(flipped) == k / 64  # 6.25%, 12.5%, 25%

    def test_trailing_block_keeps_the_rate(self) -> None:
        # 2 full blocks of 64 and one of 32, p = 1/2 (k = 8): the short block flips round(32·8/64) = 4.
        ra, rb = torch.randn(160, generator=_gen(1)), torch.randn(160, generator=_gen(2))
        flipped = Irrational(0.5).label(ra, rb, _gen()) != (ra > rb)
        assert [int(flipped[s : s + 64].sum()) for s in (0, 64, 128)] == [8, 8, 4]

    def test_rate_depends_on_batch_size(self) -> None:
        # round(B^{1/3}): B = 8 -> 2 (25%), 64 -> 4 (6.25%), 512 -> 8 (1.6%); B = 1, p = 1 flips everything.
        assert [Irrational(1 / 3, batch_size=b).flips_per_batch for b in (8, 64, 512)] == [2, 4, 8]
        ra, rb = torch.randn(10, generator=_gen(1)), torch.randn(10, generator=_gen(2))
        assert torch.equal(Irrational(1.0, batch_size=1).label(ra, rb, _gen()), ra <= rb)

    def test_equal_gaps_are_ranked_by_position(self) -> None:
        # Four pairs with the same gap 1 in one block of 4, k = round(4^0.5) = 2: the first two flip.
        ra, rb = torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.tensor([0.0, 1.0, 0.0, 1.0])
        labels = Irrational(0.5, batch_size=4).label(ra, rb, _gen())
        assert labels.tolist() == [False, True, True, False]


class TestValidation:
    @pytest.mark.parametrize(
        ("build", "pattern"),
        [
            (lambda: Stochastic(0.0), r"^temperature must be a finite number > 0, got 0.0"),
            (lambda: Stochastic(-1.0), r"^temperature must be a finite number > 0"),
            (lambda: Stochastic(math.inf), r"^temperature must be a finite number > 0"),
            (lambda: Stochastic(True), r"^temperature must be a finite number > 0, got True"),
            (lambda: Flip(1.0), r"^eps must be in \[0, 1\), got 1.0"),
            (lambda: Flip(-0.1), r"^eps must be in \[0, 1\)"),
            (lambda: Mistake(math.nan), r"^eps must be in \[0, 1\), got nan"),
            (lambda: Myopic(0.0), r"^gamma must be in \(0, 1\], got 0.0"),
            (lambda: Myopic(1.5), r"^gamma must be in \(0, 1\]"),
            (lambda: Irrational(0.0), r"^p must be in \(0, 1\], got 0.0"),
            (lambda: Irrational(1.2), r"^p must be in \(0, 1\]"),
            (lambda: Irrational(0.5, batch_size=0), r"^batch_size must be an int >= 1, got 0"),
            (lambda: Irrational(0.5, batch_size=64.0), r"^batch_size must be an int >= 1, got 64.0"),  # type: ignore[arg-type]
        ],
    )
    def test_bad_parameters_raise_naming_them(self, build: Callable[[], object], pattern: str) -> None:
        with pytest.raises(ValueError, match=pattern):
            build()

    def test_numpy_and_int_parameters_are_stored_as_floats(self) -> None:
        # np.float32 (not a Python float) and an int are real numbers: accepted, kept as float, same labels
        ra, rb = torch.randn(200, generator=_gen(1)), torch.randn(200, generator=_gen(2))
        teacher = Stochastic(np.float32(2.0))
        assert type(teacher.temperature) is float
        assert teacher == Stochastic(2.0) == Stochastic(2)
        assert torch.equal(teacher.label(ra, rb, _gen(3)), Stochastic(2.0).label(ra, rb, _gen(3)))
        assert Flip(np.float32(0.25)) == Flip(0.25)
        assert Mistake(np.float64(0.25)) == Mistake(0.25)
        assert Myopic(np.float32(0.5)) == Myopic(0.5)
        assert Irrational(np.float32(0.5)) == Irrational(0.5)

    @pytest.mark.parametrize("teacher", [Oracle(), Stochastic(1.0), Flip(0.1), Myopic(0.5), Irrational(0.5)])
    def test_shape_mismatch_names_both_inputs(self, teacher: Teacher) -> None:
        with pytest.raises(
            ValueError, match=r"rewards_a and rewards_b must have the same shape, got \(3, 2\) and \(3, 4\)"
        ):
            teacher.label(torch.zeros(3, 2), torch.zeros(3, 4), _gen())

    @pytest.mark.parametrize("teacher", [Oracle(), Myopic(0.5), Irrational(0.5)])
    def test_bad_rank_or_dtype_raises(self, teacher: Teacher) -> None:
        with pytest.raises(ValueError, match=r"rewards_a must be \(N,\) returns or \(N, T\) per-step rewards"):
            teacher.label(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), _gen())
        with pytest.raises(ValueError, match=r"rewards_b must be a floating tensor, got torch.int64"):
            teacher.label(torch.zeros(3), torch.zeros(3, dtype=torch.long), _gen())
