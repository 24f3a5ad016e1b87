"""Tests of adapref.synthetic: the true reward, segment sampling, teachers and pairing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from adapref.synthetic import (
    Flip,
    Oracle,
    Stochastic,
    TrueReward,
    block_pairs,
    make_preference_data,
    pair_segments,
    sample_segments,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _within_4_sigma(hits: int, n: int, p: float) -> bool:
    return abs(hits - n * p) <= 4 * math.sqrt(n * p * (1 - p))


class TestTrueReward:
    def test_linear_matches_a_dot_product_loop(self) -> None:
        # Naive loop Σ_k x_k w_k against the vectorised call.
        r = TrueReward(4, "linear", _gen())
        x = torch.randn(3, 4, generator=_gen(1))
        w = r.params["w"]
        expected = torch.tensor([sum(float(x[i, k]) * float(w[k]) for k in range(4)) for i in range(3)])
        torch.testing.assert_close(r(x), expected)

    def test_linear_weights_have_variance_one_over_d(self) -> None:
        # w ~ N(0, I/D): the pooled sample variance of 16000 entries lies within 4 s.e. of 1/D.
        d, n = 8, 2000
        w = torch.stack([TrueReward(d, "linear", _gen(s)).params["w"] for s in range(n)]).flatten().double()
        var = float((w**2).mean())
        se = math.sqrt(2.0 / w.numel()) / d  # s.e. of the variance of a normal with variance 1/D
        assert abs(var - 1.0 / d) < 4 * se

    @pytest.mark.parametrize("kind", ["mlp", "smooth-mlp"])
    def test_mlp_matches_a_scalar_loop(self, kind: str) -> None:
        # The tanh MLP written out neuron by neuron with math.tanh.
        r = TrueReward(3, kind, _gen())  # type: ignore[arg-type]
        x = torch.randn(2, 3, generator=_gen(2), dtype=torch.float64)
        p = {k: v.double() for k, v in r.params.items()}
        for i in range(2):
            h0 = [
                math.tanh(sum(float(x[i, k] * p["w0"][k, j]) for k in range(3)) + float(p["b0"][j])) for j in range(32)
            ]
            h1 = [
                math.tanh(sum(h0[k] * float(p["w1"][k, j]) for k in range(32)) + float(p["b1"][j])) for j in range(32)
            ]
            expected = sum(h1[k] * float(p["w_out"][k]) for k in range(32))
            assert float(r(x[i])) == pytest.approx(expected, rel=1e-12, abs=1e-12)

    def test_smooth_mlp_draws_nn_linear_init_and_has_unit_variance(self) -> None:
        # Hidden weights and biases: uniform on ±1/√fan_in (torch.nn.Linear's default), so they stay inside the
        # bound, reach near it, and have mean square bound²/3 (4 s.e. band, Var w² = 4·bound⁴/45 for a uniform).
        rewards = [TrueReward(8, "smooth-mlp", _gen(seed)) for seed in range(30)]
        for name, fan_in in (("w0", 8), ("b0", 8), ("w1", 32), ("b1", 32)):
            values = torch.cat([r.params[name].flatten() for r in rewards]).double()
            bound = fan_in**-0.5
            assert bound * 0.97 < float(values.abs().max()) <= bound
            se = math.sqrt(4 * bound**4 / 45 / values.numel())
            assert abs(float(values.square().mean()) - bound**2 / 3) < 4 * se
        # The output scale makes Var r*(x) = 1 up to the probe's sampling error (s.e. of a 4096-draw s.d. ≈ 1.1 %).
        x = torch.randn(100_000, 8, generator=_gen(99))
        stds = torch.stack([r(x).std() for r in rewards[:8]])
        assert float((stds - 1).abs().max()) < 0.05

    @pytest.mark.parametrize("kind", ["linear", "mlp", "smooth-mlp"])
    def test_returns_sum_per_step_rewards(self, kind: str) -> None:
        # Σ_t r*(x_t) by an explicit loop over t.
        r = TrueReward(5, kind, _gen())  # type: ignore[arg-type]
        seg = torch.randn(4, 6, 5, generator=_gen(3))
        expected = sum(r(seg[:, t]) for t in range(6))
        assert isinstance(expected, torch.Tensor)
        torch.testing.assert_close(r.returns(seg), expected)

    @pytest.mark.parametrize("kind", ["linear", "mlp", "smooth-mlp"])
    def test_state_dict_round_trip_through_torch_save(self, tmp_path: Path, kind: str) -> None:
        # Saved and rebuilt rewards give identical outputs on fresh inputs.
        r = TrueReward(6, kind, _gen())  # type: ignore[arg-type]
        torch.save(r.state_dict(), tmp_path / "truth.pt")
        back = TrueReward.from_state_dict(torch.load(tmp_path / "truth.pt"))
        x = torch.randn(10, 6, generator=_gen(4))
        assert torch.equal(back(x), r(x))
        assert (back.dim, back.kind) == (6, kind)

    def test_same_generator_seed_same_reward(self) -> None:
        # Determinism: weights depend only on the generator's seed.
        x = torch.randn(5, 8, generator=_gen(9))
        assert torch.equal(TrueReward(8, "mlp", _gen(1))(x), TrueReward(8, "mlp", _gen(1))(x))
        assert not torch.equal(TrueReward(8, "mlp", _gen(1))(x), TrueReward(8, "mlp", _gen(2))(x))

    def test_from_state_dict_rejects_wrong_shapes(self) -> None:
        state = TrueReward(4, "linear", _gen()).state_dict()
        state["params"]["w"] = torch.zeros(5)
        with pytest.raises(ValueError, match=r"state\['params'\]\['w'\] must have shape \(4,\), got \(5,\)"):
            TrueReward.from_state_dict(state)

    @pytest.mark.parametrize(
        ("args", "pattern"),
        [
            ((0, "linear", torch.Generator()), r"dim must be an int >= 1, got 0"),
            ((4, "cubic", torch.Generator()), r"kind must be one of \('linear', 'mlp', 'smooth-mlp'\), got 'cubic'"),
            ((4, "linear", None), r"generator is required"),
        ],
    )
    def test_bad_arguments_raise(self, args: tuple[object, ...], pattern: str) -> None:
        with pytest.raises(ValueError, match=pattern):
            TrueReward(*args)  # type: ignore[arg-type]

    def test_wrong_feature_size_raises(self) -> None:
        r = TrueReward(4, "linear", _gen())
        with pytest.raises(ValueError, match=r"x must be a floating tensor of shape \(\.\.\., D=4\), got \(2, 3\)"):
            r(torch.zeros(2, 3))
        with pytest.raises(
            ValueError, match=r"^segments must be a floating tensor of shape \(N, T, D=4\), got \(2, 4\) torch.float32$"
        ):
            r.returns(torch.zeros(2, 4))
        # the wrong feature size or an integer tensor is named as segments, not as the per-step x
        with pytest.raises(
            ValueError,
            match=r"^segments must be a floating tensor of shape \(N, T, D=4\), got \(2, 5, 3\) torch.float32$",
        ):
            r.returns(torch.zeros(2, 5, 3))
        with pytest.raises(ValueError, match=r"^segments must be .*, got \(2, 5, 4\) torch.int64$"):
            r.returns(torch.zeros(2, 5, 4, dtype=torch.long))


class TestSampleSegments:
    def test_standard_normal_moments(self) -> None:
        # 40000 N(0,1) draws: mean within 4/sqrt(n), variance within 4·sqrt(2/n) of 1.
        x = sample_segments(500, 10, 8, _gen()).double()
        assert x.shape == (500, 10, 8)
        n = x.numel()
        assert abs(float(x.mean())) < 4 / math.sqrt(n)
        assert abs(float(x.var()) - 1.0) < 4 * math.sqrt(2.0 / n)

    @pytest.mark.parametrize(("sizes", "name"), [((0, 2, 2), "n"), ((2, 0, 2), "T"), ((2, 2, -1), "D")])
    def test_bad_size_names_it(self, sizes: tuple[int, int, int], name: str) -> None:
        with pytest.raises(ValueError, match=rf"^{name} must be an int >= 1"):
            sample_segments(*sizes, generator=_gen())


class TestTeachers:
    def test_oracle_hand_case(self) -> None:
        # a ≻ b iff R_a > R_b, worked by hand.
        labels = Oracle().label(torch.tensor([3.0, -1.0, 0.5]), torch.tensor([2.0, 0.0, 0.4]), _gen())
        assert labels.tolist() == [True, False, True]

    def test_oracle_breaks_ties_with_a_fair_coin(self) -> None:
        # All 20000 pairs tied: the share labelled True is Binomial(n, 1/2), within 4σ.
        n = 20000
        hits = int(Oracle().label(torch.zeros(n), torch.zeros(n), _gen()).sum())
        assert _within_4_sigma(hits, n, 0.5)

    def test_stochastic_rate_is_bradley_terry(self) -> None:
        # R_a − R_b = 1 at temperature 2: P(a ≻ b) = σ(0.5) = 0.622459; binomial 4σ band.
        n = 20000
        hits = int(Stochastic(2.0).label(torch.ones(n), torch.zeros(n), _gen()).sum())
        assert _within_4_sigma(hits, n, 1 / (1 + math.exp(-0.5)))

    def test_stochastic_at_zero_temperature_is_the_oracle(self) -> None:
        # temperature → 0 makes σ(Δ/temperature) a step function: same labels as Oracle on untied returns.
        ra, rb = torch.randn(1000, generator=_gen(1)), torch.randn(1000, generator=_gen(2))
        assert torch.equal(Stochastic(1e-12).label(ra, rb, _gen()), Oracle().label(ra, rb, _gen()))

    def test_flip_rate_against_oracle(self) -> None:
        # Disagreements with the oracle ~ Binomial(n, eps) with eps = 0.2; 4σ band.
        n = 20000
        ra, rb = torch.randn(n, generator=_gen(1)), torch.randn(n, generator=_gen(2))
        flips = int((Flip(0.2).label(ra, rb, _gen()) != (ra > rb)).sum())
        assert _within_4_sigma(flips, n, 0.2)

    def test_flip_zero_is_the_oracle(self) -> None:
        # eps = 0 never flips.
        ra, rb = torch.randn(500, generator=_gen(1)), torch.randn(500, generator=_gen(2))
        assert torch.equal(Flip(0.0).label(ra, rb, _gen()), ra > rb)

    @pytest.mark.parametrize(
        ("build", "pattern"),
        [
            (lambda: Stochastic(0.0), r"temperature must be a finite number > 0, got 0.0"),
            (lambda: Stochastic(-1.0), r"temperature must be a finite number > 0"),
            (lambda: Stochastic(math.inf), r"temperature must be a finite number > 0"),
            (lambda: Stochastic(True), r"^temperature must be a finite number > 0, got True$"),  # a bool is not one
            (lambda: Stochastic("1"), r"^temperature must be a finite number > 0, got '1'$"),
            (lambda: Flip(1.0), r"eps must be in \[0, 1\), got 1.0"),
            (lambda: Flip(-0.1), r"eps must be in \[0, 1\)"),
            (lambda: Flip(False), r"^eps must be in \[0, 1\), got False$"),
        ],
    )
    def test_bad_parameters_raise_naming_them(self, build: object, pattern: str) -> None:
        with pytest.raises(ValueError, match=pattern):
            build()  # type: ignore[operator]

    def test_numpy_and_int_parameters_are_stored_as_floats(self) -> None:
        # np.float32 (not a Python float) and an int are real numbers: accepted, kept as float, same labels
        ra, rb = torch.randn(200, generator=_gen(1)), torch.randn(200, generator=_gen(2))
        teacher = Stochastic(np.float32(2.0))
        assert type(teacher.temperature) is float
        assert teacher == Stochastic(2.0) == Stochastic(2)
        assert torch.equal(teacher.label(ra, rb, _gen(3)), Stochastic(2.0).label(ra, rb, _gen(3)))
        assert type(Flip(np.float64(0.25)).eps) is float
        assert Flip(np.float32(0.25)) == Flip(0.25)

    @pytest.mark.parametrize("teacher", [Oracle(), Stochastic(1.0), Flip(0.1)])
    def test_shape_mismatch_names_both_returns(self, teacher: Oracle | Stochastic | Flip) -> None:
        with pytest.raises(ValueError, match=r"return_a and return_b must have the same shape, got \(3,\) and \(2,\)"):
            teacher.label(torch.zeros(3), torch.zeros(2), _gen())


class TestPairSegments:
    def _pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        segments = torch.randn(50, 4, 3, generator=_gen(5))
        return segments, segments.sum(dim=(1, 2))

    def test_pairs_are_consistent_with_the_pool(self) -> None:
        # Each id names (chosen, rejected) pool indices: rows, strength and the flag are recomputed from them.
        segments, returns = self._pool()
        data = pair_segments(segments, returns, 300, Flip(0.3), _gen())
        for k, pair_id in enumerate(data.ids):
            c, r = (int(s) for s in pair_id.split("-")[1:])
            assert c != r
            assert torch.equal(data.chosen[k], segments[c])
            assert torch.equal(data.rejected[k], segments[r])
            assert data.strength is not None
            assert data.corrupted is not None
            assert float(data.strength[k]) == pytest.approx(abs(float(returns[c] - returns[r])))
            assert bool(data.corrupted[k]) == bool(returns[c] < returns[r])

    def test_oracle_pairs_are_never_corrupted(self) -> None:
        # With the oracle every chosen return exceeds its rejected one (no ties among continuous returns).
        segments, returns = self._pool()
        data = pair_segments(segments, returns, 500, Oracle(), _gen())
        assert data.corrupted is not None
        assert not bool(data.corrupted.any())
        assert bool((data.chosen.sum(dim=(1, 2)) > data.rejected.sum(dim=(1, 2))).all())

    def test_flip_corruption_rate(self) -> None:
        # Corrupted share ~ Binomial(n, eps) with eps = 0.25; 4σ band.
        segments, returns = self._pool()
        n = 5000
        data = pair_segments(segments, returns, n, Flip(0.25), _gen())
        assert data.corrupted is not None
        assert _within_4_sigma(int(data.corrupted.sum()), n, 0.25)

    def test_pair_indices_are_uniform_over_distinct_pairs(self) -> None:
        # M = 3 pool: the 6 ordered (i, j), i ≠ j, each drawn with p = 1/6 before orientation; check unordered counts (1/3 each).
        segments = torch.randn(3, 1, 1, generator=_gen())
        data = pair_segments(segments, segments.flatten(), 6000, Oracle(), _gen(1))
        counts: dict[frozenset[str], int] = {}
        for pair_id in data.ids:
            key = frozenset(pair_id.split("-")[1:])
            counts[key] = counts.get(key, 0) + 1
        assert len(counts) == 3
        assert all(_within_4_sigma(c, 6000, 1 / 3) for c in counts.values())

    @pytest.mark.parametrize(
        ("segments", "returns", "n_pairs", "pattern"),
        [
            (torch.zeros(1, 2, 2), torch.zeros(1), 3, r"M >= 2 segments"),
            (
                torch.zeros(4, 2),
                torch.zeros(4),
                3,
                r"segments must be a floating tensor of shape \(M, T, D\), got \(4, 2\)",
            ),
            (
                torch.zeros(4, 2, 2),
                torch.zeros(5),
                3,
                r"returns must be a floating tensor of shape \(M,\)=\(4,\), got \(5,\)",
            ),
            (torch.zeros(4, 2, 2), torch.tensor([0.0, 1.0, math.nan, 2.0]), 3, r"returns contains NaN"),
            (torch.zeros(4, 2, 2), torch.zeros(4), 0, r"n_pairs must be an int >= 1, got 0"),
        ],
    )
    def test_bad_input_raises(self, segments: torch.Tensor, returns: torch.Tensor, n_pairs: int, pattern: str) -> None:
        with pytest.raises(ValueError, match=pattern):
            pair_segments(segments, returns, n_pairs, Oracle(), _gen())


class TestBlockPairs:
    def test_every_pair_of_each_block_once_oriented_by_the_oracle(self) -> None:
        # 200 segments with distinct returns, blocks of 64: 3 blocks (8 left out), 3 · 2016 pairs; within a
        # block each unordered pair of segments appears exactly once, chosen = the larger return.
        m, bs = 200, 64
        returns = torch.randperm(m).double()
        segments = returns.view(m, 1, 1).float().expand(m, 1, 2).clone()  # a segment's features name it
        data = block_pairs(segments, returns, Oracle(), torch.Generator().manual_seed(3), block_size=bs)
        assert len(data) == 3 * bs * (bs - 1) // 2 == 6048
        c = data.chosen[:, 0, 0].long()
        r = data.rejected[:, 0, 0].long()
        assert bool((c > r).all())  # the oracle: features equal the returns
        assert torch.equal(data.strength, (c - r).abs().float())
        assert not bool(data.corrupted.any())
        for b in range(3):
            sl = slice(b * 2016, (b + 1) * 2016)
            members = set(c[sl].tolist()) | set(r[sl].tolist())
            assert len(members) == bs
            pairs = {(min(x, y), max(x, y)) for x, y in zip(c[sl].tolist(), r[sl].tolist(), strict=True)}
            assert len(pairs) == 2016  # all C(64, 2), none twice
        used = set(c.tolist()) | set(r.tolist())
        assert len(used) == 3 * bs  # disjoint blocks; the remainder left out

    def test_bad_arguments_are_named(self) -> None:
        seg, ret, gen = torch.randn(10, 1, 2), torch.randn(10), torch.Generator()
        with pytest.raises(ValueError, match="block_size must be an int >= 2"):
            block_pairs(seg, ret, Oracle(), gen, block_size=1)
        with pytest.raises(ValueError, match="at least block_size=64"):
            block_pairs(seg, ret, Oracle(), gen)
        with pytest.raises(ValueError, match="returns must be a floating tensor"):
            block_pairs(seg, ret[:5], Oracle(), gen, block_size=4)


class TestMakePreferenceData:
    @pytest.mark.parametrize("reward", ["linear", "mlp", "smooth-mlp"])
    def test_defaults_and_strength_match_the_truth(self, reward: str) -> None:
        # A1 defaults T = 10, D = 8; strength is |R*(chosen) − R*(rejected)| recomputed with the returned reward.
        data, truth = make_preference_data(200, reward=reward, generator=_gen())  # type: ignore[arg-type]
        assert data.chosen.shape == (200, 10, 8)
        assert truth.kind == reward
        gap = truth.returns(data.chosen) - truth.returns(data.rejected)
        assert data.strength is not None
        assert data.corrupted is not None
        torch.testing.assert_close(data.strength, gap.abs(), rtol=1e-5, atol=1e-5)
        assert torch.equal(data.corrupted, gap < 0)

    def test_default_teacher_is_bradley_terry_at_temperature_one(self) -> None:
        # Given the strengths s_i, corruptions are independent Bernoulli(σ(−s_i)); the count lies within 4σ of Σσ(−s_i).
        data, _ = make_preference_data(4000, generator=_gen(3))
        assert data.strength is not None
        assert data.corrupted is not None
        p = torch.sigmoid(-data.strength.double())
        mean, sd = float(p.sum()), float((p * (1 - p)).sum().sqrt())
        assert abs(int(data.corrupted.sum()) - mean) < 4 * sd

    def test_same_seed_same_data(self) -> None:
        # Determinism: everything is drawn from the one generator.
        a, _ = make_preference_data(50, generator=_gen(11))
        b, _ = make_preference_data(50, generator=_gen(11))
        assert torch.equal(a.chosen, b.chosen)
        assert a.ids == b.ids

    def test_bad_pool_size_raises(self) -> None:
        with pytest.raises(ValueError, match=r"pool_size must be an int >= 2, got 1"):
            make_preference_data(10, pool_size=1, generator=_gen())

    def test_a_teacher_name_is_refused_with_the_objects_to_use(self) -> None:
        # "flip" is the CLI's name; the API takes a teacher object (it failed with AttributeError in label)
        with pytest.raises(ValueError, match=r"^teacher must be a teacher object such as Flip\(0.2\).*, got 'flip'$"):
            make_preference_data(10, teacher="flip", generator=_gen())  # type: ignore[arg-type]

    def test_bad_size_and_reward_are_named_as_passed(self) -> None:
        # D and reward, not TrueReward's dim and kind
        with pytest.raises(ValueError, match=r"^D must be an int >= 1, got 0$"):
            make_preference_data(10, D=0, generator=_gen())
        with pytest.raises(ValueError, match=r"^reward must be one of \('linear', 'mlp', 'smooth-mlp'\), got 'quad'$"):
            make_preference_data(10, reward="quad", generator=_gen())  # type: ignore[arg-type]
