"""Tests of r3m.synthetic: the true reward, segment sampling, pairing with teachers, and the generator."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from r3m.synthetic import (
    Flip,
    Irrational,
    Myopic,
    Oracle,
    Stochastic,
    TrueReward,
    make_preference_data,
    pair_segments,
    sample_segments,
)
from r3m.teachers import Teacher


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
        # The tanh MLP written out neuron by neuron with math.tanh (both initialisations share the forward).
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

    def test_smooth_mlp_is_nn_linear_default_init_scaled_to_unit_variance(self) -> None:
        # The weights and biases of the two hidden layers lie within torch.nn.Linear's default bound
        # 1/√fan_in and spread over it (uniform: sample variance ≈ bound²/3), and the output's standard
        # deviation on fresh standard-normal inputs is ≈ 1 (the forward pass: test_mlp_matches_a_scalar_loop).
        r = TrueReward(8, "smooth-mlp", _gen())
        for name, fan_in in (("w0", 8), ("b0", 8), ("w1", 32), ("b1", 32)):
            bound = 1 / math.sqrt(fan_in)
            values = r.params[name].double()
            assert float(values.abs().max()) <= bound
            assert float(values.abs().max()) > 0.9 * bound
        w = torch.cat([r.params["w1"].flatten(), *(TrueReward(8, "smooth-mlp", _gen(s)).params["w1"].flatten()
                                                     for s in range(1, 20))]).double()  # fmt: skip
        # U(±b) with b² = 1/32: E w² = b²/3 = 1/96 and Var w² = b⁴/5 − b⁴/9 = 4b⁴/45.
        se = (1 / 32) * math.sqrt(4 / 45 / w.numel())
        assert abs(float((w**2).mean()) - 1 / 96) < 4 * se
        fresh = torch.randn(200_000, 8, generator=_gen(5))
        for seed in range(5):
            # 4096 probe draws set the scale: the s.d. of a sample s.d. of 4096 is ≈ 1.1 %; 5 % is > 4 s.e.
            assert float(TrueReward(8, "smooth-mlp", _gen(seed))(fresh).std()) == pytest.approx(1.0, abs=0.05)

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

    @pytest.mark.parametrize("teacher", [Oracle(), Flip(0.3), Stochastic(2.0), Irrational(0.5)])
    def test_step_rewards_and_returns_give_the_same_pairs(self, teacher: Teacher) -> None:
        # Exact invariant: return-based teachers see Σ_t r_t either way, so (M, T) per-step rewards and
        # their float64 row sums (M,) give identical ids, flags and strengths from the same seed.
        segments = torch.randn(40, 5, 2, generator=_gen(6))
        steps = segments.sum(-1)  # (M, T) per-step "rewards"
        a = pair_segments(segments, steps, 300, teacher, _gen(7))
        b = pair_segments(segments, steps.double().sum(-1), 300, teacher, _gen(7))
        assert a.ids == b.ids
        assert a.corrupted is not None
        assert b.corrupted is not None
        assert torch.equal(a.corrupted, b.corrupted)
        assert a.strength is not None
        assert b.strength is not None
        assert torch.equal(a.strength, b.strength)

    def test_myopic_needs_step_rewards(self) -> None:
        # Returns (M,) carry no per-step information: a clear error, not a silent oracle.
        segments, returns = self._pool()
        with pytest.raises(ValueError, match=r"Myopic needs per-step rewards .*pass the \(M, T\) per-step rewards"):
            pair_segments(segments, returns, 10, Myopic(0.5), _gen())

    def test_bad_teacher_output_raises(self) -> None:
        class Bad:
            def label(self, a: torch.Tensor, b: torch.Tensor, g: torch.Generator) -> torch.Tensor:
                return (a - b).float()

        segments, returns = self._pool()
        with pytest.raises(ValueError, match=r"teacher must return a bool tensor of shape \(10,\), got torch.float32"):
            pair_segments(segments, returns, 10, Bad(), _gen())

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
                r"rewards must be a floating tensor of shape \(M,\)=\(4,\) \(returns\) or "
                r"\(M, T\)=\(4, 2\) \(per-step rewards\), got \(5,\)",
            ),
            (torch.zeros(4, 2, 2), torch.zeros(4, 3), 3, r"rewards must be .*got \(4, 3\)"),
            (torch.zeros(4, 2, 2), torch.zeros(4, dtype=torch.long), 3, r"rewards must be a floating tensor"),
            (torch.zeros(4, 2, 2), torch.tensor([0.0, 1.0, math.nan, 2.0]), 3, r"rewards contains NaN"),
            (torch.zeros(4, 2, 2), torch.zeros(4), 0, r"n_pairs must be an int >= 1, got 0"),
        ],
    )
    def test_bad_input_raises(self, segments: torch.Tensor, returns: torch.Tensor, n_pairs: int, pattern: str) -> None:
        with pytest.raises(ValueError, match=pattern):
            pair_segments(segments, returns, n_pairs, Oracle(), _gen())


class TestMakePreferenceData:
    @pytest.mark.parametrize("reward", ["linear", "mlp", "smooth-mlp"])
    def test_defaults_and_strength_match_the_truth(self, reward: str) -> None:
        # B1 sizes T = 10, D = 8; strength |R*(chosen) − R*(rejected)| and the flag recomputed with the returned reward.
        data, truth = make_preference_data(200, reward=reward, teacher=Flip(0.3), generator=_gen())  # type: ignore[arg-type]
        assert data.chosen.shape == (200, 10, 8)
        assert truth.kind == reward
        gap = truth.returns(data.chosen) - truth.returns(data.rejected)
        assert data.strength is not None
        assert data.corrupted is not None
        torch.testing.assert_close(data.strength, gap.abs(), rtol=1e-5, atol=1e-5)
        assert torch.equal(data.corrupted, gap < 0)
        assert bool(data.corrupted.any())

    def test_default_teacher_is_the_oracle(self) -> None:
        # Clean labels by default: no pair against the true return order (continuous returns, no ties).
        data, truth = make_preference_data(2000, generator=_gen(3))
        assert data.corrupted is not None
        assert not bool(data.corrupted.any())
        assert bool((truth.returns(data.chosen) > truth.returns(data.rejected)).all())

    def test_myopic_labels_match_a_loop_over_the_true_steps(self) -> None:
        # Each pair's label recomputed from r*(x_t) with weights γ^{T−1−t} (t = 0..T−1) by a Python loop:
        # chosen must have the larger myopic sum, and corrupted = return order disagrees.
        gamma = 0.5
        data, truth = make_preference_data(300, T=4, D=3, reward="mlp", teacher=Myopic(gamma), generator=_gen(4))
        rc, rr = truth(data.chosen).double(), truth(data.rejected).double()  # (N, T)
        assert data.corrupted is not None
        for k in range(300):
            mc = sum(gamma ** (3 - t) * float(rc[k, t]) for t in range(4))
            mr = sum(gamma ** (3 - t) * float(rr[k, t]) for t in range(4))
            assert mc > mr
            assert bool(data.corrupted[k]) == (float(rc[k].sum()) < float(rr[k].sum()))
        assert 0 < int(data.corrupted.sum()) < 300  # the myopic order does disagree sometimes

    def test_irrational_corrupts_exactly_the_top_strength_pairs(self) -> None:
        # Blocks are consecutive pair ids; in each block of 64 the corrupted pairs are the 8 largest strengths.
        data, _ = make_preference_data(256, teacher=Irrational(0.5), generator=_gen(5))
        assert data.strength is not None
        assert data.corrupted is not None
        for start in range(0, 256, 64):
            strength = data.strength[start : start + 64]
            top = set(torch.topk(strength, 8).indices.tolist())
            assert set(torch.nonzero(data.corrupted[start : start + 64]).flatten().tolist()) == top

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
