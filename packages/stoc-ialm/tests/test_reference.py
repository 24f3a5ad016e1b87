"""Tests of stoc_ialm.reference: SLSQP on hand-solved problems, NP-breast_cancer from two starts, multipliers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stoc_ialm.datasets import load, synthetic
from stoc_ialm.problems import FairnessDP, NeymanPearson
from stoc_ialm.prox import L1, ElasticNet, GroupL1, L2Sq, NonNeg, Sum
from stoc_ialm.reference import recover_multipliers, separable, slsqp_reference
from stoc_ialm.toy import QuadraticProblem

F64 = torch.float64


class TestHandSolved:
    def test_inequality_active(self) -> None:
        # min (x−2)² s.t. x ≤ 1: x* = 1, F* = 1, and 2(x* − 2) + y = 0 gives y* = 2.
        x, F, y, info = slsqp_reference(QuadraticProblem(center=[2.0], a=[[1.0]], b=[1.0], kinds=["ineq"]))
        assert float(x[0]) == pytest.approx(1.0, abs=1e-9)
        assert pytest.approx(1.0, abs=1e-9) == F
        assert float(y[0]) == pytest.approx(2.0, abs=1e-7)
        assert info["success"]
        assert info["active"] == [True]
        assert info["stationarity"] < 1e-7

    def test_inequality_inactive_has_zero_multiplier(self) -> None:
        # min (x−2)² s.t. x ≤ 3: the constraint is slack, x* = 2, y* = 0.
        x, F, y, info = slsqp_reference(QuadraticProblem(center=[2.0], a=[[1.0]], b=[3.0], kinds=["ineq"]))
        assert float(x[0]) == pytest.approx(2.0, abs=1e-8)
        assert pytest.approx(0.0, abs=1e-12) == F
        assert float(y[0]) == 0.0
        assert info["active"] == [False]

    def test_equality_multiplier_is_negative(self) -> None:
        # min x² s.t. x − 1 = 0: x* = 1, 2x* + y = 0 gives y* = −2 (an equality multiplier has no sign).
        x, F, y, _ = slsqp_reference(QuadraticProblem(center=[0.0], a=[[1.0]], b=[1.0], kinds=["eq"]))
        assert float(x[0]) == pytest.approx(1.0, abs=1e-9)
        assert pytest.approx(1.0, abs=1e-9) == F
        assert float(y[0]) == pytest.approx(-2.0, abs=1e-7)

    def test_l1_split_two_dimensional(self) -> None:
        # min (x1−2)² + (x2+1)² + ½(|x1| + |x2|) s.t. x1 ≤ 1. By hand: x2* = −1 + ¼ = −0.75 (soft threshold);
        # x1 would be 2 − ¼ = 1.75 > 1, so x1* = 1 with 2(1 − 2) + ½ + y = 0, y* = 1.5;
        # F* = 1 + 1/16 + ½(1 + 0.75) = 1.9375.
        prob = QuadraticProblem(center=[2.0, -1.0], a=[[1.0, 0.0]], b=[1.0], kinds=["ineq"], regularizer=L1(0.5))
        x, F, y, info = slsqp_reference(prob)
        torch.testing.assert_close(x, torch.tensor([1.0, -0.75], dtype=F64), rtol=0, atol=1e-8)
        assert pytest.approx(1.9375, abs=1e-9) == F
        assert float(y[0]) == pytest.approx(1.5, abs=1e-6)
        assert info["l1_split"]
        assert info["stationarity"] < 1e-6

    def test_l1_kink_and_nonneg_bound(self) -> None:
        # min (x1 − 0.2)² + (x2 + 1)² + (x3 − 3)² + h, h = L1(1) on x1 and NonNeg on x2, s.t. x3 ≤ 2.
        # x1 = soft-threshold(0.2, ½) = 0 exactly; x2 = max(−1, 0) = 0; x3 = 2 with y = 2.
        reg = Sum([([0], L1(1.0)), ([1], NonNeg())])
        prob = QuadraticProblem(center=[0.2, -1.0, 3.0], a=[[0.0, 0.0, 1.0]], b=[2.0], kinds=["ineq"], regularizer=reg)
        x, F, y, info = slsqp_reference(prob, x0=torch.tensor([1.0, 1.0, 0.0], dtype=F64))
        assert x.tolist()[:2] == [0.0, 0.0]  # on the kink and on the bound exactly
        assert float(x[2]) == pytest.approx(2.0, abs=1e-9)
        assert pytest.approx(0.04 + 1.0 + 1.0, abs=1e-9) == F
        assert float(y[0]) == pytest.approx(2.0, abs=1e-6)
        assert info["stationarity"] < 1e-6

    def test_l2sq_and_elastic_net_are_smooth_terms(self) -> None:
        # min (x − 3)² + x² (L2Sq(1)): 2(x − 3) + 2x = 0, x* = 3/2, F* = (3/2)² + (3/2)² = 4.5; x ≤ 10 is slack.
        prob = QuadraticProblem(center=[3.0], a=[[1.0]], b=[10.0], kinds=["ineq"], regularizer=L2Sq(1.0))
        x, F, _, _ = slsqp_reference(prob)
        assert float(x[0]) == pytest.approx(1.5, abs=1e-8)
        assert pytest.approx(4.5, abs=1e-9) == F
        # ElasticNet(1, 1): 2(x − 3) + 1 + 2x = 0 -> x* = 5/4; F* = (7/4)² + 5/4 + (5/4)² = 49/16 + 20/16 + 25/16.
        prob = QuadraticProblem(center=[3.0], a=[[1.0]], b=[10.0], kinds=["ineq"], regularizer=ElasticNet(1.0, 1.0))
        x, F, _, _ = slsqp_reference(prob)
        assert float(x[0]) == pytest.approx(1.25, abs=1e-8)
        assert pytest.approx(94 / 16, abs=1e-9) == F


class TestNeymanPearsonReference:
    def test_np_breast_cancer_two_starts_agree(self) -> None:
        # Two starts (0 and a random point) reach the same F to 1e-5, feasible, with a KKT residual near 0.
        prob = NeymanPearson(load("breast_cancer"), alpha=0.05)
        first = slsqp_reference(prob)
        second = slsqp_reference(
            prob, x0=0.5 * torch.randn(prob.dim, generator=torch.Generator().manual_seed(1), dtype=F64)
        )
        assert first.info["success"]
        assert second.info["success"]
        assert abs(first.F - second.F) < 1e-5
        for res in (first, second):
            assert res.info["violation"] < 1e-9
            assert res.info["stationarity"] < 1e-5
            assert res.info["active"] == [True]
            assert float(res.multipliers[0]) > 0
        assert pytest.approx(0.0416455, abs=1e-6) == first.F  # measured once: regression guard

    def test_recovered_multiplier_equals_slsqp_own(self) -> None:
        # scipy >= 1.16 reports SLSQP's multipliers: the least-squares recovery must find the same number.
        prob = NeymanPearson(load("wine"), alpha=0.05)
        res = slsqp_reference(prob)
        if "slsqp_multipliers" not in res.info:
            pytest.skip("this scipy does not report SLSQP multipliers")
        assert float(res.multipliers[0]) == pytest.approx(res.info["slsqp_multipliers"][0], rel=1e-5)

    def test_np_adult_reproduces_the_spec_reference(self) -> None:
        # The spec's measured reference (§6, B1): F* = 0.224587 for α = 0.2, λ₁ = 1e-3, sigmoid loss.
        res = slsqp_reference(NeymanPearson(load("adult"), alpha=0.2, l1=1e-3))
        assert pytest.approx(0.224587, abs=1e-6) == res.F
        assert res.info["violation"] < 1e-9
        assert res.info["stationarity"] < 1e-5

    def test_fairness_constraint_binds_at_kappa(self) -> None:
        # Without the constraint the logistic fit has a DP gap above κ; with it, SLSQP sits on |gap| = κ.
        data = synthetic(n=600, d=4, seed=1)
        free = slsqp_reference(FairnessDP(data, kappa=10.0))  # κ large: constraints slack
        prob = FairnessDP(data, kappa=0.05)
        assert abs(prob.metrics(free.x)["dp_gap_score"]) > 0.05
        res = slsqp_reference(prob)
        assert abs(prob.metrics(res.x)["dp_gap_score"]) == pytest.approx(0.05, abs=1e-8)
        assert res.F > free.F
        assert sum(res.info["active"]) == 1
        assert res.info["stationarity"] < 1e-5


class TestMultipliers:
    def test_recover_multipliers_at_a_hand_point(self) -> None:
        # min (x1−2)² + (x2−2)² s.t. x1 + x2 ≤ 2 and x1 − x2 = 0: x* = (1, 1), 2(x* − 2) + y1(1, 1) + y2(1, −1) = 0
        # gives y1 = 2, y2 = 0.
        prob = QuadraticProblem(center=[2.0, 2.0], a=[[1.0, 1.0], [1.0, -1.0]], b=[2.0, 0.0], kinds=["ineq", "eq"])
        y = recover_multipliers(prob, torch.tensor([1.0, 1.0], dtype=F64))
        torch.testing.assert_close(y, torch.tensor([2.0, 0.0], dtype=F64), rtol=0, atol=1e-9)

    def test_separable_reads_a_sum(self) -> None:
        h = separable(Sum([(slice(0, 2), L1(0.5)), ([3], NonNeg())]), 4)
        assert h.l1.tolist() == [0.5, 0.5, 0.0, 0.0]
        assert h.lower.tolist() == [-np.inf, -np.inf, -np.inf, 0.0]


class TestBadArguments:
    def _prob(self) -> QuadraticProblem:
        return QuadraticProblem(center=[2.0], a=[[1.0]], b=[1.0], kinds=["ineq"])

    @pytest.mark.parametrize(
        ("kwargs", "name"), [({"maxiter": 0}, "maxiter"), ({"ftol": 0.0}, "ftol"), ({"active_tol": -1.0}, "active_tol")]
    )
    def test_bad_options(self, kwargs: dict[str, float], name: str) -> None:
        with pytest.raises(ValueError, match=name):
            slsqp_reference(self._prob(), **kwargs)  # type: ignore[arg-type]

    def test_bad_x0_and_regularizer(self) -> None:
        with pytest.raises(ValueError, match="x0 must have shape"):
            slsqp_reference(self._prob(), x0=torch.zeros(2, dtype=F64))
        prob = QuadraticProblem(
            center=[2.0, 1.0], a=[[1.0, 0.0]], b=[1.0], kinds=["ineq"], regularizer=GroupL1(1.0, [[0, 1]])
        )
        with pytest.raises(ValueError, match="regularizer must be coordinate-separable"):
            slsqp_reference(prob)
