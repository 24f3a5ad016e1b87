"""Tests of smurf_thp.normalize: the three modes by hand, round trips in numpy and torch, clamping, checkpoints."""

from __future__ import annotations

import doctest
import json
import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch

from smurf_thp import normalize
from smurf_thp.normalize import MODES, TimeNormalizer

E = math.e


class TestFitByHand:
    def test_log_mode_stats(self) -> None:
        # log gaps are [0, 1, 2]: mean 1, population std sqrt(2/3).
        norm = TimeNormalizer("log").fit(np.array([1.0, E, E**2]))
        assert norm.mean == pytest.approx(1.0, abs=1e-15)
        assert norm.std == pytest.approx(math.sqrt(2 / 3), rel=1e-15)
        u = norm.transform(np.array([1.0, E, E**2]))
        np.testing.assert_allclose(u, [-math.sqrt(1.5), 0.0, math.sqrt(1.5)], atol=1e-14)
        assert (norm.n_fit, norm.n_clamped) == (3, 0)
        assert norm.gap_mean == pytest.approx((1 + E + E**2) / 3)

    def test_mean_mode_stats(self) -> None:
        norm = TimeNormalizer("mean").fit(torch.tensor([1.0, 2.0, 6.0]))
        assert norm.mean == 3.0
        assert norm.transform(np.array([3.0, 6.0])).tolist() == [1.0, 2.0]
        assert norm.inverse(np.array([0.5])).tolist() == [1.5]

    def test_none_mode_is_identity(self) -> None:
        norm = TimeNormalizer("none").fit([0.5, 2.0])
        x = np.array([0.0, 0.25, 7.0])
        assert norm.transform(x).tolist() == x.tolist()
        assert norm.inverse(x).tolist() == x.tolist()
        assert norm.density_factor(x).tolist() == [1.0, 1.0, 1.0]

    def test_quantiles_of_transformed_train_gaps(self) -> None:
        gaps = np.arange(1.0, 102.0)  # 1..101: numpy's linear quantiles at 5% and 95% are 6 and 96
        norm = TimeNormalizer("mean").fit(gaps)
        assert norm.quantiles == pytest.approx((6.0 / 51.0, 96.0 / 51.0))
        log_norm = TimeNormalizer("log").fit(gaps)
        lo, hi = log_norm.quantiles
        assert lo == pytest.approx((math.log(6.0) - log_norm.mean) / log_norm.std)
        assert hi == pytest.approx((math.log(96.0) - log_norm.mean) / log_norm.std)

    def test_fit_uses_only_what_it_is_given(self) -> None:
        # The train statistics do not move when dev/test gaps are transformed afterwards.
        norm = TimeNormalizer("log").fit([1.0, E, E**2])
        state = norm.state_dict()
        norm.transform(np.array([1e6, 1e-3]))
        assert norm.state_dict() == state


class TestRoundTrips:
    @pytest.mark.parametrize("mode", MODES)
    def test_numpy_round_trip(self, mode: str) -> None:
        rng = np.random.default_rng(0)
        tau = rng.exponential(size=200) + 1e-3
        norm = TimeNormalizer(mode).fit(tau)
        u = norm.transform(tau)
        assert isinstance(u, np.ndarray)
        assert u.dtype == np.float64
        np.testing.assert_allclose(norm.inverse(u), tau, rtol=1e-12)

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_torch_round_trip_keeps_dtype(self, mode: str, dtype: torch.dtype) -> None:
        tau = torch.rand(4, 5, generator=torch.Generator().manual_seed(0), dtype=dtype) + 0.01
        norm = TimeNormalizer(mode).fit(tau)
        u = norm.transform(tau)
        assert isinstance(u, torch.Tensor)
        assert (u.dtype, u.shape) == (dtype, tau.shape)
        torch.testing.assert_close(norm.inverse(u), tau, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=0)

    def test_numpy_and_torch_agree(self) -> None:
        tau = np.array([0.1, 0.5, 2.0, 9.0])
        norm = TimeNormalizer("log").fit(tau)
        np.testing.assert_allclose(norm.transform(torch.from_numpy(tau)).numpy(), norm.transform(tau), rtol=1e-15)

    def test_integer_input_becomes_float(self) -> None:
        norm = TimeNormalizer("log").fit([1.0, 2.0, 4.0])
        assert norm.transform(np.array([1, 2])).dtype == np.float64
        assert norm.transform(torch.tensor([1, 2])).dtype == torch.float64

    def test_transform_is_differentiable_in_torch(self) -> None:
        norm = TimeNormalizer("log").fit([1.0, 2.0, 4.0])
        tau = torch.tensor([1.5], dtype=torch.float64, requires_grad=True)
        (du,) = torch.autograd.grad(norm.transform(tau).sum(), tau)
        assert du.item() == pytest.approx(norm.density_factor(tau.detach()).item(), rel=1e-12)


class TestDensityFactor:
    @pytest.mark.parametrize("mode", MODES)
    def test_matches_finite_difference(self, mode: str) -> None:
        norm = TimeNormalizer(mode).fit([0.3, 1.0, 2.5, 4.0])
        tau, h = np.array([0.2, 1.0, 3.0]), 1e-6
        fd = (norm.transform(tau + h) - norm.transform(tau - h)) / (2 * h)
        np.testing.assert_allclose(norm.density_factor(tau), fd, rtol=1e-7)

    def test_converts_a_density(self) -> None:
        # Exp(1) gaps: p_u(u) = p_tau(tau(u)) dtau/du integrates to 1 over u (trapezoid on a wide grid).
        norm = TimeNormalizer("log").fit([0.5, 1.0, 2.0])
        u = np.linspace(-40.0, 10.0, 200_001)
        tau = norm.inverse(u)
        p_u = np.exp(-tau) / norm.density_factor(tau)
        assert float(np.sum((p_u[1:] + p_u[:-1]) / 2 * np.diff(u))) == pytest.approx(1.0, abs=1e-8)
        assert norm.density_factor(np.array([0.0])).tolist() == [math.inf]  # unclamped: du/dtau = 1/(s tau)


class TestClamping:
    def test_zero_gaps_clamped_with_one_counted_warning(self) -> None:
        with pytest.warns(UserWarning, match="2 of 5 gaps are below eps=1e-06") as record:
            norm = TimeNormalizer("log").fit([0.0, 0.0, 1.0, E, E**2])
        assert len(record) == 1
        assert norm.n_clamped == 2
        logs = np.log([1e-6, 1e-6, 1.0, E, E**2])
        assert norm.mean == pytest.approx(logs.mean())
        assert norm.std == pytest.approx(logs.std())
        assert np.isfinite(norm.transform(np.zeros(3))).all()  # padded zeros: silent and finite
        assert norm.count_clamped(np.array([0.0, 5e-7, 1.0])) == 2

    def test_transform_clamps_silently(self) -> None:
        norm = TimeNormalizer("log").fit([1.0, 2.0])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            u = norm.transform(torch.zeros(2))
        assert torch.isfinite(u).all()
        assert u[0].item() == pytest.approx((math.log(1e-6) - norm.mean) / norm.std)

    def test_mean_mode_never_clamps(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            norm = TimeNormalizer("mean").fit([0.0, 2.0])
        assert norm.transform(np.array([0.0])).tolist() == [0.0]
        assert norm.count_clamped([0.0]) == 0

    def test_constant_log_gaps_warn_and_use_unit_std(self) -> None:
        with pytest.warns(UserWarning, match="all train gaps are equal"):
            norm = TimeNormalizer("log").fit([2.0, 2.0])
        assert norm.std == 1.0


class TestState:
    @pytest.mark.parametrize("mode", MODES)
    def test_state_dict_round_trip_through_json(self, mode: str) -> None:
        norm = TimeNormalizer(mode, eps=1e-4).fit([0.0, 0.3, 1.0, 2.5] if mode != "log" else [0.3, 1.0, 2.5])
        state = json.loads(json.dumps(norm.state_dict()))
        back = TimeNormalizer.from_state(state)
        assert back.state_dict() == norm.state_dict()
        x = np.array([0.1, 1.0, 10.0])
        assert back.transform(x).tolist() == norm.transform(x).tolist()  # bit for bit
        assert back.quantiles == norm.quantiles
        assert back.fitted

    def test_from_state_bad(self) -> None:
        state = TimeNormalizer("log").fit([1.0, 2.0]).state_dict()
        with pytest.raises(ValueError, match="missing key 'std'"):
            TimeNormalizer.from_state({k: v for k, v in state.items() if k != "std"})
        with pytest.raises(ValueError, match=r"state\['mean'\] must be finite"):
            TimeNormalizer.from_state({**state, "mean": float("nan")})
        with pytest.raises(ValueError, match="degenerate scale"):
            TimeNormalizer.from_state({**state, "std": 0.0})
        with pytest.raises(ValueError, match="mode must be one of"):
            TimeNormalizer.from_state({**state, "mode": "sqrt"})


class TestBadInput:
    @pytest.mark.parametrize(
        ("kw", "match"),
        [
            ({"mode": "normal"}, "mode must be one of"),
            ({"eps": 0.0}, "eps must be a finite number > 0"),
            ({"eps": -1.0}, "eps must be"),
            ({"eps": float("inf")}, "eps must be"),
            ({"eps": True}, "eps must be"),
        ],
    )
    def test_bad_args(self, kw: dict[str, Any], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            TimeNormalizer(**kw)

    @pytest.mark.parametrize(
        ("mode", "gaps", "match"),
        [
            ("log", [], "must not be empty"),
            ("log", [1.0, float("nan")], r"gaps\[1\] is nan"),
            ("mean", [1.0, -0.5], r"gaps must be >= 0; gaps\[1\]"),
            ("mean", [0.0, 0.0], "must not all be 0"),
        ],
    )
    def test_bad_gaps(self, mode: str, gaps: list[float], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            TimeNormalizer(mode).fit(gaps)

    def test_unfitted_use_is_an_error(self) -> None:
        norm = TimeNormalizer()
        assert not norm.fitted
        assert "unfitted" in repr(norm)
        for call in (
            lambda: norm.transform(np.ones(2)),
            lambda: norm.inverse(np.ones(2)),
            lambda: norm.density_factor(np.ones(2)),
            lambda: norm.quantiles,
            norm.state_dict,
        ):
            with pytest.raises(RuntimeError, match=r"not fitted: call \.fit"):
                call()


def test_docstring_examples() -> None:
    result = doctest.testmod(normalize)
    assert result.failed == 0
    assert result.attempted > 0
