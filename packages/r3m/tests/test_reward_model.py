"""Tests of r3m.reward_model.SegmentRewardModel: shapes, (discounted) sums, masks, init and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from r3m.reward_model import SegmentRewardModel


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _x(b: int = 4, t: int = 5, d: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, t, d, generator=_gen(seed))


class TestForward:
    def test_shapes(self) -> None:
        model = SegmentRewardModel(3, generator=_gen())
        assert model(_x()).shape == (4,)
        assert model.step_rewards(_x()).shape == (4, 5)

    def test_score_is_a_sum_of_per_step_rewards(self) -> None:
        # Naive loop: the network applied to each (B, D) step slice separately, then summed over t.
        model = SegmentRewardModel(3, generator=_gen())
        x = _x()
        per_step = torch.stack([model.net(x[:, t]).squeeze(-1) for t in range(x.shape[1])], dim=1)
        torch.testing.assert_close(model.step_rewards(x), per_step)
        torch.testing.assert_close(model(x), per_step.sum(dim=1))

    def test_mask_drops_padded_steps(self) -> None:
        # Exact invariant: a segment padded with garbage and masked scores as the unpadded segment.
        model = SegmentRewardModel(3, generator=_gen())
        short = _x(b=2, t=3)
        padded = torch.cat([short, 100 * _x(b=2, t=2, seed=5)], dim=1)  # (2, 5, 3)
        mask = torch.tensor([[True] * 3 + [False] * 2] * 2)
        torch.testing.assert_close(model(padded, mask), model(short))

    def test_masked_steps_get_no_gradient(self) -> None:
        # d score / d x_t = 0 exactly on masked steps.
        model = SegmentRewardModel(3, generator=_gen())
        x = _x().requires_grad_(True)
        mask = torch.rand(4, 5, generator=_gen(2)) < 0.5
        model(x, mask).sum().backward()
        assert x.grad is not None
        assert torch.count_nonzero(x.grad[~mask]) == 0

    def test_gradcheck_float64(self) -> None:
        # torch.autograd.gradcheck: analytic vs finite-difference gradients of the masked score.
        model = SegmentRewardModel(3, hidden=(8,), activation="tanh", generator=_gen()).double()
        x = _x(b=2, t=3).double().requires_grad_(True)
        mask = torch.tensor([[True, False, True], [True, True, True]])
        assert torch.autograd.gradcheck(lambda inp: model(inp, mask), (x,))

    @pytest.mark.parametrize(("activation", "fn"), [("relu", lambda v: max(v, 0.0)), ("tanh", math.tanh)])
    def test_hand_built_network(self, activation: str, fn: object) -> None:
        # D = 2, one hidden unit: r(x) = 3·act(x1 − 2·x2 + 0.5) − 1, worked out with scalars.
        model = SegmentRewardModel(2, hidden=(1,), activation=activation)
        first, last = model.net[0], model.net[2]
        assert isinstance(first, nn.Linear)
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            first.weight.copy_(torch.tensor([[1.0, -2.0]]))
            first.bias.fill_(0.5)
            last.weight.fill_(3.0)
            last.bias.fill_(-1.0)
        x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # one segment, T = 2
        expected = sum(3 * fn(a - 2 * b + 0.5) - 1 for a, b in ((1.0, 0.0), (0.0, 1.0)))  # type: ignore[operator]
        assert float(model(x).detach()[0]) == pytest.approx(expected, abs=1e-6)

    def test_empty_hidden_is_linear(self) -> None:
        # hidden = (): score = Σ_t (x_t·w + b) = (Σ_t x_t)·w + T·b.
        model = SegmentRewardModel(3, hidden=(), generator=_gen())
        layer = model.net[0]
        assert isinstance(layer, nn.Linear)
        x = _x()
        expected = x.sum(dim=1) @ layer.weight[0] + 5 * layer.bias[0]
        torch.testing.assert_close(model(x), expected)


class TestDiscount:
    @pytest.mark.parametrize("gamma", [0.3, 0.9, 1.0])
    def test_discounted_score_matches_a_loop(self, gamma: float) -> None:
        # Σ_t γ^t r_φ(x_t), t = 0..T−1, by a Python loop over the steps of each segment (float64).
        model = SegmentRewardModel(3, discount=gamma, generator=_gen()).double()
        x = _x().double()
        with torch.no_grad():
            steps = model.step_rewards(x)
            expected = [sum(gamma**t * float(steps[b, t]) for t in range(5)) for b in range(4)]
            assert model(x).tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)

    def test_discount_with_a_mask_keeps_step_positions(self) -> None:
        # Masked steps drop out; the others keep their weight γ^t (a naive loop with an if).
        gamma = 0.5
        model = SegmentRewardModel(3, discount=gamma, generator=_gen()).double()
        x = _x().double()
        mask = torch.rand(4, 5, generator=_gen(3)) < 0.6
        with torch.no_grad():
            steps = model.step_rewards(x)
            expected = [sum(gamma**t * float(steps[b, t]) for t in range(5) if mask[b, t]) for b in range(4)]
            assert model(x, mask).tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)

    def test_discount_one_is_the_plain_sum(self) -> None:
        # γ = 1 must leave the score of a model with equal weights unchanged, bit for bit.
        plain = SegmentRewardModel(3, generator=_gen())
        ones = SegmentRewardModel(3, discount=1.0, generator=_gen())
        assert torch.equal(plain(_x()), ones(_x()))
        assert torch.equal(plain(_x()), plain.step_rewards(_x()).sum(-1))

    def test_gradcheck_float64(self) -> None:
        # torch.autograd.gradcheck of the discounted, masked score.
        model = SegmentRewardModel(3, hidden=(8,), activation="tanh", discount=0.7, generator=_gen()).double()
        x = _x(b=2, t=3).double().requires_grad_(True)
        mask = torch.tensor([[True, False, True], [True, True, True]])
        assert torch.autograd.gradcheck(lambda inp: model(inp, mask), (x,))

    def test_repr_shows_the_discount(self) -> None:
        assert "discount=0.9" in repr(SegmentRewardModel(2, discount=0.9))

    @pytest.mark.parametrize("value", [0.0, -0.5, 1.5, float("nan"), float("inf"), True, "0.9"])
    def test_bad_discount_raises_naming_it(self, value: object) -> None:
        with pytest.raises(ValueError, match=r"^discount must be a number in \(0, 1\], got "):
            SegmentRewardModel(3, discount=value)  # type: ignore[arg-type]


class TestActDim:
    def test_state_and_action_columns_form_one_step_input(self) -> None:
        # act_dim widens the first layer to obs_dim + act_dim: a model over [s_t, a_t] is the
        # act_dim=0 model of that width (same init from the same generator, same scores).
        split = SegmentRewardModel(3, 2, hidden=(8,), generator=_gen())
        joint = SegmentRewardModel(5, hidden=(8,), generator=_gen())
        assert (split.obs_dim, split.act_dim, split.in_dim) == (3, 2, 5)
        assert split.net[0].in_features == 5
        x = _x(d=5)
        torch.testing.assert_close(split(x), joint(x))
        assert "act_dim=2" in repr(split)
        assert "act_dim" not in repr(joint)

    def test_wrong_width_names_both_parts(self) -> None:
        model = SegmentRewardModel(3, act_dim=2)
        with pytest.raises(
            ValueError, match=r"x must have shape \(B, T, obs_dim \+ act_dim = 3 \+ 2 = 5\), got \(4, 5, 3\)"
        ):
            model(_x(d=3))


class TestInit:
    def test_paper_control_rm_parameter_count(self) -> None:
        # 2×64 MLP on D = 8: (8·64 + 64) + (64·64 + 64) + (64 + 1) = 4801 parameters.
        model = SegmentRewardModel(8)
        assert sum(p.numel() for p in model.parameters()) == 4801

    def test_generator_makes_init_reproducible(self) -> None:
        # Same seed, same weights; another seed, other weights.
        a, b, c = (SegmentRewardModel(8, generator=_gen(s)) for s in (3, 3, 4))
        for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
            assert torch.equal(pa, pb)
            assert not torch.equal(pa, pc)

    def test_generator_init_follows_the_linear_default_bounds(self) -> None:
        # U(−1/sqrt(fan_in), 1/sqrt(fan_in)): within the bound, variance within 4 s.e. of bound²/3.
        model = SegmentRewardModel(8, hidden=(256, 256), generator=_gen())
        layer = model.net[2]
        assert isinstance(layer, nn.Linear)
        w = layer.weight.detach().double()  # (256, 256), fan_in = 256
        bound = 1 / 16
        assert float(w.abs().max()) <= bound
        var, n = bound**2 / 3, w.numel()
        se = math.sqrt((bound**4 / 5 - var**2) / n)  # sd of the sample mean of w², E[w⁴] = bound⁴/5
        assert abs(float((w**2).mean()) - var) < 4 * se


class TestBadInput:
    @pytest.mark.parametrize(
        ("kwargs", "pattern"),
        [
            ({"obs_dim": 0}, r"obs_dim must be an int >= 1, got 0"),
            ({"obs_dim": 4, "hidden": (64, 0)}, r"hidden must be a tuple of ints >= 1, got \(64, 0\)"),
            ({"obs_dim": 4, "act_dim": -1}, r"act_dim must be an int >= 0, got -1$"),
            ({"obs_dim": 4, "act_dim": 2.0}, r"act_dim must be an int >= 0, got 2\.0$"),
            ({"obs_dim": 4, "act_dim": (64, 64)}, r"act_dim must be an int >= 0, got \(64, 64\) \(hidden comes third"),
            ({"obs_dim": 4, "activation": "sigmoid"}, r"activation must be one of .*got 'sigmoid'"),
        ],
    )
    def test_bad_constructor_arguments(self, kwargs: dict[str, object], pattern: str) -> None:
        with pytest.raises(ValueError, match=pattern):
            SegmentRewardModel(**kwargs)  # type: ignore[arg-type]

    @pytest.mark.parametrize("shape", [(4, 3), (4, 5, 2), (1, 4, 5, 3)])
    def test_wrong_input_shape_names_the_expected_one(self, shape: tuple[int, ...]) -> None:
        model = SegmentRewardModel(3)
        with pytest.raises(ValueError, match=rf"x must have shape \(B, T, obs_dim=3\), got {_re_shape(shape)}"):
            model(torch.zeros(shape))
        with pytest.raises(ValueError, match=r"x must have shape \(B, T, obs_dim=3\)"):
            model.step_rewards(torch.zeros(shape))

    @pytest.mark.parametrize(
        ("mask", "pattern"),
        [
            (
                torch.ones(4, 4, dtype=torch.bool),
                r"mask must be a bool tensor of shape \(B, T\)=\(4, 5\), got \(4, 4\)",
            ),
            (torch.ones(4, 5), r"mask must be a bool tensor .*torch.float32"),
        ],
    )
    def test_bad_mask(self, mask: torch.Tensor, pattern: str) -> None:
        with pytest.raises(ValueError, match=pattern):
            SegmentRewardModel(3)(_x(), mask)


def _re_shape(shape: tuple[int, ...]) -> str:
    """The regex of a shape tuple as Python prints it."""
    return str(shape).replace("(", r"\(").replace(")", r"\)")


def test_autocast_is_detected_on_torch_before_2_4(monkeypatch: pytest.MonkeyPatch) -> None:
    # torch < 2.4: is_autocast_enabled() takes no device type (a TypeError with one) and the CPU has its own flag
    from r3m.reward_model import _autocast_on

    def old_style(*args: object) -> bool:
        if args:
            raise TypeError("is_autocast_enabled() takes 0 positional arguments but 1 was given")
        return False

    monkeypatch.setattr(torch, "is_autocast_enabled", old_style)
    monkeypatch.setattr(torch, "is_autocast_cpu_enabled", lambda: True, raising=False)
    assert _autocast_on("cpu") is True
    monkeypatch.setattr(torch, "is_autocast_cpu_enabled", lambda: False, raising=False)
    assert _autocast_on("cpu") is False
