"""Tests of adapref.scaling: u*, the closed form, the safeguarded and the official Newton solves."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest
import torch
from scipy.optimize import brentq, minimize_scalar

from adapref.functional import adaptive_preference_loss
from adapref.scaling import LOG2, dual_f, optimal_u, solve_tau, tau_gradient, tau_hessian

RHO0S = (0.05, 0.1, 0.3, 0.5)
BOUNDS = ((0.1, 1.0), (0.1, 4.0), (0.1, 3.0))
D_GRID = torch.linspace(-10.0, 10.0, 81, dtype=torch.float64)  # includes d = 0


def _loss(d: float, tau: float, rho0: float, quadratic: bool = False) -> float:
    # ℓ(τ) written out in float64 with math only: −τ logσ(d/τ) + penalty.
    u = d / tau
    logsig = -math.log1p(math.exp(-u)) if u > -30 else u
    penalty = rho0 * tau * tau - LOG2 * tau if quadratic else (rho0 - LOG2) * tau
    return -tau * logsig + penalty


def _brute_force(d: float, rho0: float, lo: float, hi: float, quadratic: bool = False) -> float:
    res = minimize_scalar(
        lambda t: _loss(d, t, rho0, quadratic), bounds=(lo, hi), method="bounded", options={"xatol": 1e-11}
    )
    # The bounded method never returns the bound itself: snap to a bound that is at least as good.
    best = min((res.x, lo, hi), key=lambda t: _loss(d, t, rho0, quadratic))
    return float(best)


def _root_of_derivative(d: float, rho0: float, lo: float, hi: float, quadratic: bool) -> float:
    # The minimiser over [lo, hi] from the sign of ∂τℓ = −log(2σ(u)) + (1 − σ(u))u + ρ0 (+ ρ0τ for the quadratic
    # penalty: 2ρ0τ − log 2 replaces ρ0 − log 2), u = |d|/τ, written with math only; brentq to 1e-15.
    def g(t: float) -> float:
        u = abs(d) / t
        log_2sig = math.log(2.0) - math.log1p(math.exp(-u))
        return -log_2sig + u / (1.0 + math.exp(u)) + (2.0 * rho0 * t if quadratic else rho0)

    if g(lo) >= 0:
        return lo
    if g(hi) <= 0:
        return hi
    return float(brentq(g, lo, hi, xtol=1e-15, rtol=1e-15, maxiter=500))


class TestOptimalU:
    def test_matches_independent_root_finding(self) -> None:
        # scipy's brentq on f(u) + ρ0 written with math, and the spec's published values.
        for rho0, published in ((0.1, 0.943443), (0.3, 1.869617), (0.5, 2.983241)):
            root = brentq(lambda u, r=rho0: _loss_derivative_f(u) + r, 1e-9, 50.0, xtol=1e-14)
            assert optimal_u(rho0) == pytest.approx(root, abs=1e-10)
            assert optimal_u(rho0) == pytest.approx(published, abs=1e-6)

    def test_f_is_even_zero_at_zero_and_tends_to_minus_log2(self) -> None:
        u = torch.linspace(-20, 20, 201, dtype=torch.float64)
        assert torch.allclose(dual_f(u), dual_f(-u), atol=1e-14)
        assert dual_f(torch.tensor(0.0, dtype=torch.float64)).item() == 0.0
        assert dual_f(torch.tensor(50.0, dtype=torch.float64)).item() == pytest.approx(-LOG2, abs=1e-12)

    @pytest.mark.parametrize("rho0", [1e-300, 1e-16, 1e-12, 1e-8])
    def test_small_rho0_is_as_exact_as_a_large_one(self, rho0: float) -> None:
        # f(u) = −u²/8 + u⁴/64 − … so u*² = 8ρ0(1 + ρ0) + O(ρ0³): the closed form to 1e-12 here. The direct
        # formula cancelled (2.2e-5 relative error at 1e-12, 2.7 % at 1e-16) and bisection from [0, 1] could
        # not reach u* ≈ 3e-150 in 200 halvings (it returned 4e-16 at 1e-300).
        assert optimal_u(rho0) == pytest.approx(math.sqrt(8 * rho0 * (1 + rho0)), rel=1e-12)

    def test_infinite_when_rho0_reaches_log2(self) -> None:
        assert math.isinf(optimal_u(LOG2))
        assert math.isinf(optimal_u(1.0))

    @pytest.mark.parametrize("bad", [0.0, -0.1, math.nan, math.inf])
    def test_rejects_bad_rho0(self, bad: float) -> None:
        with pytest.raises(ValueError, match="rho0"):
            optimal_u(bad)


def _loss_derivative_f(u: float) -> float:
    # f(u) = −log(2σ(u)) + (1 − σ(u))u, directly from the definition.
    s = 1.0 / (1.0 + math.exp(-u))
    return -math.log(2.0 * s) + (1.0 - s) * u


class TestExactSolver:
    @pytest.mark.parametrize("rho0", RHO0S)
    @pytest.mark.parametrize(("tau0", "tau_max"), BOUNDS)
    def test_equals_brute_force_minimisation(self, rho0: float, tau0: float, tau_max: float) -> None:
        # scipy's bounded scalar minimiser of ℓ(τ), pair by pair, including d = 0 (τ* = τ0).
        ref = torch.tensor([_brute_force(d, rho0, tau0, tau_max) for d in D_GRID.tolist()], dtype=torch.float64)
        got = solve_tau(D_GRID, rho0=rho0, tau0=tau0, tau_max=tau_max)
        assert torch.allclose(got, ref, atol=1e-6)
        assert got[D_GRID == 0].item() == tau0

    def test_hand_case(self) -> None:
        # τ* = |d|/u*(0.1) = 2/0.9434431 = 2.119895 (spec's hand check).
        tau = solve_tau(torch.tensor([2.0, -2.0], dtype=torch.float64), rho0=0.1, tau0=0.1, tau_max=4.0)
        assert tau.tolist() == pytest.approx([2.119895, 2.119895], abs=1e-6)

    def test_degenerates_to_tau0_when_rho0_reaches_log2(self) -> None:
        with pytest.warns(UserWarning, match="Bradley-Terry at temperature tau0"):
            tau = solve_tau(D_GRID, rho0=0.7, tau0=0.2, tau_max=3.0)
        assert bool((tau == 0.2).all())

    def test_result_is_detached_and_keeps_float64(self) -> None:
        d = D_GRID.clone().requires_grad_(True)
        tau = solve_tau(d)
        assert not tau.requires_grad
        assert tau.dtype == torch.float64
        assert solve_tau(torch.tensor([1.0], dtype=torch.bfloat16)).dtype == torch.float32


class TestSafeguardedNewton:
    @pytest.mark.parametrize("rho0", RHO0S)
    @pytest.mark.parametrize(("tau0", "tau_max"), BOUNDS)
    def test_converges_to_the_brute_force_minimiser(self, rho0: float, tau0: float, tau_max: float) -> None:
        ref = torch.tensor([_brute_force(d, rho0, tau0, tau_max) for d in D_GRID.tolist()], dtype=torch.float64)
        got = solve_tau(D_GRID, rho0=rho0, tau0=tau0, tau_max=tau_max, solver="newton", n_iter=40)
        assert torch.allclose(got, ref, atol=1e-6)

    def test_does_not_cycle_in_the_halfcheetah_setting(self) -> None:
        # ρ0 = 0.5, τ_max = 3, d = 1.5: the official iteration cycles; the safeguarded one converges.
        d = torch.tensor([1.45, 1.5, -1.55], dtype=torch.float64)
        exact = solve_tau(d, rho0=0.5, tau0=0.1, tau_max=3.0)
        got = solve_tau(d, rho0=0.5, tau0=0.1, tau_max=3.0, solver="newton", n_iter=25)
        assert torch.allclose(got, exact, atol=1e-8)
        ref = _brute_force(1.5, 0.5, 0.1, 3.0)
        assert got[1].item() == pytest.approx(ref, abs=1e-6)

    def test_reaches_tau0_in_one_step_where_it_is_the_minimiser(self) -> None:
        # |d| ≤ τ0·u*(ρ0) puts the minimiser on τ0 (the closed form clips there). From τ = 1 the derivative is
        # positive, the Newton step projects onto τ0, a bound not yet excluded, and is accepted; τ0 is then
        # kept. Before the bound rule the rtsafe half-step test refused it and d = 0 gave 0.55, 0.325,
        # 0.2125, 0.1 for K = 1..4 (review finding).
        u = optimal_u(0.1)
        d = torch.tensor([0.0, 0.05, -0.08, 0.1 * u * 0.999], dtype=torch.float64)
        assert bool((solve_tau(d, rho0=0.1, tau0=0.1, tau_max=1.0) == 0.1).all())
        for k in (1, 2, 3):
            assert solve_tau(d, rho0=0.1, tau0=0.1, tau_max=1.0, solver="newton", n_iter=k).tolist() == [0.1] * 4

    @pytest.mark.parametrize(
        ("rho0", "tau_max", "quadratic"),
        [(0.1, 1.0, False), (0.05, 5.0, False), (0.1, 5.0, True)],
        ids=["control", "dialogue", "dpo-quadratic"],
    )
    @pytest.mark.parametrize("k", [3, 5])
    def test_few_steps_are_no_worse_than_the_official_iteration_where_it_does_not_cycle(
        self, rho0: float, tau_max: float, quadratic: bool, k: int
    ) -> None:
        # The README control setting and the authors' dialogue and (clamped quadratic) DPO settings, where the
        # official Algorithm 1 does not cycle, over d ~ N(0, 3²): the worst relative error to the minimiser equals the
        # official iteration's to 0.1 % of it (they differ in the 5th digit; before the converged-step fix and the
        # derivative rule it was 0.79 against 0.023 at K = 5 in the dialogue setting, 1.9 against 0.001 in DPO).
        d = 3.0 * torch.randn(2_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        kw = {"rho0": rho0, "tau0": 0.1, "tau_max": tau_max, "quadratic": quadratic, "clamp_tau_max": True}
        ref = torch.tensor([_root_of_derivative(x, rho0, 0.1, tau_max, quadratic) for x in d.tolist()],
                           dtype=torch.float64)  # fmt: skip
        ours = float(((solve_tau(d, solver="newton", n_iter=k, **kw) - ref).abs() / ref).max())
        official = float(((solve_tau(d, solver="newton-official", n_iter=k, **kw) - ref).abs() / ref).max())
        assert ours <= official * 1.001 + 1e-12

    def test_a_converged_iterate_stays_put(self) -> None:
        # Quadratic penalty, ρ0 = .1, d = 1.55 (review finding): the converged Newton step landed on the bracket end
        # just moved to τ, was taken for a step out of the bracket and bisected away: K = 4 gave the minimiser,
        # K = 5 gave 2.26 and K = 20 was still 3e-5 off.
        d = torch.tensor([1.55, 0.25, 1.45], dtype=torch.float64)
        ref = [_root_of_derivative(x, 0.1, 0.1, LOG2 / 0.2, True) for x in d.tolist()]
        for k in range(8, 31):
            got = solve_tau(d, rho0=0.1, tau0=0.1, tau_max=1.0, quadratic=True, solver="newton", n_iter=k).tolist()
            assert got == pytest.approx(ref, rel=1e-12), k

    @pytest.mark.parametrize(("rho0", "quadratic"), [(0.05, False), (0.1, True), (0.5, True)])
    def test_ten_steps_reach_the_minimiser(self, rho0: float, quadratic: bool) -> None:
        # τmax = 5 (clamped for the quadratic penalty, as the authors' DPO trainer does), d ~ N(0, 3²): relative error
        # ≤ 1e-9 at K = 10 (before the converged-step fix: 0.64 for the quadratic penalty at ρ0 = .1).
        d = 3.0 * torch.randn(3_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        ref = torch.tensor([_root_of_derivative(x, rho0, 0.1, 5.0, quadratic) for x in d.tolist()], dtype=torch.float64)
        got = solve_tau(d, rho0=rho0, tau0=0.1, tau_max=5.0, quadratic=quadratic, clamp_tau_max=True, solver="newton",
                        n_iter=10)  # fmt: skip
        assert float(((got - ref).abs() / ref).max()) <= 1e-9

    @pytest.mark.parametrize("rho0", RHO0S)
    @pytest.mark.parametrize("tau_max", [1.0, 3.0, 5.0])
    def test_converges_as_k_grows(self, rho0: float, tau_max: float) -> None:
        # Relative error to the closed form over d ∈ [−10, 10]: ≤ 1e-5 at K = 10, machine precision at K = 20.
        d = torch.linspace(-10, 10, 801, dtype=torch.float64)
        exact = solve_tau(d, rho0=rho0, tau0=0.1, tau_max=tau_max)
        err = {k: float(((solve_tau(d, rho0=rho0, tau0=0.1, tau_max=tau_max, solver="newton", n_iter=k) - exact).abs()
                          / exact).max()) for k in (10, 20)}  # fmt: skip
        assert err[10] <= 1e-5
        assert err[20] <= 1e-12

    def test_no_stall_where_plain_bracketing_bounced(self) -> None:
        # ρ0 = .5, τmax = 3, d = 0.78798: an unguarded bracketed Newton bounced between 0.118 and 0.504
        # for six iterations (review finding); the rtsafe step-length rule settles by K = 8.
        d = torch.tensor([0.78798], dtype=torch.float64)
        exact = solve_tau(d, rho0=0.5, tau0=0.1, tau_max=3.0).item()
        got = solve_tau(d, rho0=0.5, tau0=0.1, tau_max=3.0, solver="newton", n_iter=8).item()
        assert got == pytest.approx(exact, rel=1e-9)

    def test_never_leaves_the_feasible_interval(self) -> None:
        d = torch.randn(500, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 5
        for k in (1, 2, 3, 5):
            tau = solve_tau(d, rho0=0.3, tau0=0.1, tau_max=3.0, solver="newton", n_iter=k)
            assert bool(((tau >= 0.1) & (tau <= 3.0)).all())


class TestOfficialNewton:
    def test_two_step_hand_trace(self) -> None:
        # The authors' update written out: g = −log(2σ(u)+1e-8) + (1−σ(u))u + ρ0, h = max(d²/τ³ σ(1−σ), 1e-8).
        d, rho0, tau0, tau_max, tau = 2.0, 0.1, 0.1, 4.0, 1.0
        for _ in range(2):
            u = d / tau
            s = 1.0 / (1.0 + math.exp(-u))
            g = -math.log(2.0 * s + 1e-8) + (1.0 - s) * u + rho0
            h = max(d * d / tau**3 * s * (1.0 - s), 1e-8)
            tau = min(max(tau - g / h, tau0), tau_max)
        got = solve_tau(torch.tensor([d], dtype=torch.float64), rho0=rho0, tau0=tau0, tau_max=tau_max,
                        solver="newton-official", n_iter=2)  # fmt: skip
        assert got.item() == pytest.approx(tau, abs=1e-12)

    def test_converges_with_many_iterations_at_rho0_0_1(self) -> None:
        exact = solve_tau(D_GRID, rho0=0.1, tau0=0.1, tau_max=1.0)
        got = solve_tau(D_GRID, rho0=0.1, tau0=0.1, tau_max=1.0, solver="newton-official", n_iter=20)
        assert torch.allclose(got, exact, atol=1e-6)

    def test_cycles_between_the_bounds_in_the_halfcheetah_setting(self) -> None:
        # Regression test documenting the official defect: τ alternates τ_max (even K) and τ0 (odd K).
        d = torch.tensor([1.5], dtype=torch.float64)
        ends = [
            solve_tau(d, rho0=0.5, tau0=0.1, tau_max=3.0, solver="newton-official", n_iter=k).item()
            for k in range(2, 9)
        ]
        assert ends == [3.0, 0.1, 3.0, 0.1, 3.0, 0.1, 3.0]


class TestQuadratic:
    @pytest.mark.parametrize("rho0", RHO0S)
    def test_exact_equals_brute_force(self, rho0: float) -> None:
        # No upper bound (Prop. 3.2): search a wide interval, independently of the code's own bound.
        hi = 50.0
        ref = torch.tensor(
            [_brute_force(d, rho0, 0.1, hi, quadratic=True) for d in D_GRID.tolist()], dtype=torch.float64
        )
        got = solve_tau(D_GRID, rho0=rho0, tau0=0.1, quadratic=True)
        assert torch.allclose(got, ref, atol=1e-6)
        newton = solve_tau(D_GRID, rho0=rho0, tau0=0.1, quadratic=True, solver="newton", n_iter=40)
        assert torch.allclose(newton, ref, atol=1e-6)

    def test_clamp_tau_max_mimics_the_dpo_code(self) -> None:
        d = torch.tensor([30.0], dtype=torch.float64)
        free = solve_tau(d, rho0=0.05, tau0=0.1, tau_max=2.0, quadratic=True)
        clamped = solve_tau(d, rho0=0.05, tau0=0.1, tau_max=2.0, quadratic=True, clamp_tau_max=True)
        assert free.item() > 2.0
        assert clamped.item() == 2.0


class TestDerivatives:
    def test_gradient_and_hessian_match_autograd(self) -> None:
        # Closed-form ∂τℓ and ∂²τℓ against autograd of ℓ(τ) in float64, both penalties.
        d = torch.tensor([-3.0, -0.5, 0.7, 4.0], dtype=torch.float64)
        for quadratic in (False, True):
            tau = torch.tensor([0.3, 1.2, 0.8, 2.5], dtype=torch.float64, requires_grad=True)
            pen = 0.2 * tau.square() - LOG2 * tau if quadratic else (0.2 - LOG2) * tau
            loss = (-tau * torch.nn.functional.logsigmoid(d / tau) + pen).sum()
            (g,) = torch.autograd.grad(loss, tau, create_graph=True)
            (h,) = torch.autograd.grad(g.sum(), tau)
            assert torch.allclose(tau_gradient(d, tau.detach(), 0.2, quadratic), g.detach(), atol=1e-12)
            assert torch.allclose(tau_hessian(d, tau.detach(), 0.2, quadratic), h, atol=1e-12)

    def test_convexity_by_second_differences_written_with_math(self) -> None:
        # Independent of the package: ℓ(τ) = τ·softplus(−d/τ) + ρτ (ρ = ρ0 − log 2) or + ρ0τ² − (log 2)τ, in
        # Python floats; the central second difference (ℓ(τ+h) − 2ℓ(τ) + ℓ(τ−h))/h² is > 0 for d ≠ 0, 0 at d = 0
        # for the linear penalty (ℓ = (log 2 + ρ)τ there), > 0 everywhere for the quadratic one, and agrees
        # with tau_hessian.
        def softplus(x: float) -> float:
            return max(x, 0.0) + math.log1p(math.exp(-abs(x)))

        def loss(d: float, tau: float, rho0: float, quadratic: bool) -> float:
            base = tau * softplus(-d / tau)
            return base + (rho0 * tau * tau - LOG2 * tau if quadratic else (rho0 - LOG2) * tau)

        h, rho0 = 1e-3, 0.2
        for quadratic in (False, True):
            for d in (-6.0, -1.0, -0.05, 0.0, 0.05, 1.0, 6.0):
                for tau in (0.2, 0.5, 1.0, 2.0, 4.0):
                    second = (loss(d, tau + h, rho0, quadratic) - 2 * loss(d, tau, rho0, quadratic)
                              + loss(d, tau - h, rho0, quadratic)) / h**2  # fmt: skip
                    exact = float(tau_hessian(torch.tensor(d, dtype=torch.float64),
                                              torch.tensor(tau, dtype=torch.float64), rho0, quadratic))  # fmt: skip
                    assert second == pytest.approx(exact, rel=1e-4, abs=1e-5)
                    if quadratic or d != 0.0:
                        assert second > 0.0
                    else:
                        assert abs(second) < 1e-5

    def test_strictly_convex_except_at_zero_margin(self) -> None:
        # The paper claims strict convexity; numerically ∂²τℓ > 0 for d ≠ 0 but it vanishes at d = 0.
        tau = torch.linspace(0.1, 5.0, 50, dtype=torch.float64)
        for d in (-4.0, -0.3, 0.2, 6.0):
            assert bool((tau_hessian(torch.full_like(tau, d), tau, 0.1) > 0).all())
        assert bool((tau_hessian(torch.zeros_like(tau), tau, 0.1) == 0).all())


class TestBadInput:
    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"rho0": 0.0}, "rho0"),
            ({"tau0": 0.0}, "tau0"),
            ({"tau0": 0.5, "tau_max": 0.4}, "tau_max"),
            ({"solver": "lbfgs"}, "solver"),
            ({"solver": "newton", "n_iter": 0}, "n_iter"),
            ({"tau_init": -1.0}, "tau_init"),
            ({"tau_max": math.inf}, "tau_max"),
            ({"rho0": "0.1"}, "rho0"),
            ({"tau0": 1e-46}, "tau0"),  # rounds to 0 in float32: the loss was 0/0 = NaN
            ({"tau_max": 1e40}, "tau_max"),  # beyond float32: clamp raised RuntimeError
        ],
    )
    def test_bad_hyperparameter_is_named(self, kwargs: dict[str, object], name: str) -> None:
        with pytest.raises(ValueError, match=name):
            solve_tau(torch.tensor([1.0]), **kwargs)  # type: ignore[arg-type]

    def test_non_finite_margins(self) -> None:
        with pytest.raises(ValueError, match="margins must be finite"):
            solve_tau(torch.tensor([1.0, math.nan]))

    def test_integer_margins(self) -> None:
        with pytest.raises(ValueError, match="floating-point"):
            solve_tau(torch.tensor([1, 2]))


def test_proposition_3_2_population_optimum_of_the_quadratic_variant() -> None:
    # Prop. 3.2: at the optimal Δr the expected loss is τ(H(p) − log 2) + ρ0τ², minimised at
    # τ* = max(τ0, (p log p + (1 − p) log(1 − p) + log 2)/(2ρ0)). Checked by a joint grid search.
    rho0, tau0 = 0.2, 0.1
    # the grid's per-pair loss is the package's quadratic loss at τ held at T (τ0 = τ_max = T, clamped)
    d = torch.linspace(-12, 12, 97, dtype=torch.float64)
    for t in (0.1, 0.7, 1.9, 3.0):
        got = adaptive_preference_loss(d, torch.zeros_like(d), rho0=rho0, tau0=t, tau_max=t, quadratic=True,
                                       clamp_tau_max=True, reduction="none").per_pair_loss  # fmt: skip
        want = -t * torch.nn.functional.logsigmoid(d / t) + rho0 * t * t - LOG2 * t
        assert torch.allclose(got, want, atol=1e-12)
    taus = torch.linspace(tau0, 3.0, 2901, dtype=torch.float64)
    deltas = torch.linspace(-12, 12, 2401, dtype=torch.float64)
    for p in (0.6, 0.8, 0.95):
        T, D = torch.meshgrid(taus, deltas, indexing="ij")
        logsig = torch.nn.functional.logsigmoid
        expected = -T * (p * logsig(D / T) + (1 - p) * logsig(-D / T)) + rho0 * T.square() - LOG2 * T
        i = int(torch.argmin(expected))
        closed = max(tau0, (p * math.log(p) + (1 - p) * math.log(1 - p) + LOG2) / (2 * rho0))
        assert T.flatten()[i].item() == pytest.approx(closed, abs=2e-3)


def test_quadratic_penalty_warns_that_a_binding_tau_max_is_ignored() -> None:
    # Spec §4: quadratic=True with tau_max → a warning that it is ignored (as in the paper), naming clamp_tau_max.
    from adapref.config import TrainConfig
    from adapref.nn import AdaDPOLoss, AdaptivePreferenceLoss

    makers: list[Any] = [
        lambda **kw: AdaptivePreferenceLoss(**kw),
        lambda **kw: AdaDPOLoss(**kw),
        lambda quadratic=False, **kw: TrainConfig(loss="ada-quad" if quadratic else "ada", **kw),
    ]
    try:  # the TRL config where the [trl] extra is installed
        from adapref.integrations.trl import AdaDPOConfig

        makers.append(lambda **kw: AdaDPOConfig(**kw))
    except ImportError:
        pass
    for make in makers:
        with pytest.warns(
            UserWarning, match=r"tau_max = 1\.0 is ignored by the quadratic penalty.*clamp_tau_max"
        ) as rec:
            make(rho0=0.1, tau_max=1.0, quadratic=True)
        assert rec[0].filename == __file__  # at the caller's line (the lambda above), not in a generated __init__
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            make(rho0=0.1, tau_max=1.0, quadratic=True, clamp_tau_max=True)  # clamped: it binds, no warning
            make(rho0=0.1, tau_max=4.0, quadratic=True)  # above log 2 / (2ρ0) = 3.47: it could not bind
            make(rho0=0.1, tau_max=1.0)  # linear penalty


# Mutation audit: each test below failed to catch a deliberate change to the code it names.


def _f_mp(u: Any) -> Any:
    """f(u) = −log 2 − logσ(u) + u·σ(−u) in mpmath at 60 digits (an independent, cancellation-free evaluation)."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(60):
        u = mpmath.mpf(u)
        return -mpmath.log(2) + mpmath.log1p(mpmath.exp(-u)) + u / (1 + mpmath.exp(u))


@pytest.mark.parametrize("rho0", [1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.3, 0.6])
def test_optimal_u_to_1e_13_against_a_60_digit_root(rho0: float) -> None:
    # u* < 0.25 (the Taylor branch of _f_scalar) up to ρ0 ≈ 7.7e-3, the closed form above; the cached
    # float64 bisection against mpmath's root of f(u) + ρ0 (pytest's approx needs abs=0: u* is ~3e-4 here)
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(60):
        root = mpmath.findroot(lambda u: _f_mp(u) + mpmath.mpf(rho0), math.sqrt(8 * rho0))
    assert optimal_u(rho0) == pytest.approx(float(root), rel=1e-13, abs=0)


def test_the_closed_form_below_1e_30_is_the_series_limit() -> None:
    for rho0 in (1e-300, 1e-40):
        assert optimal_u(rho0) == pytest.approx(math.sqrt(8 * rho0), rel=1e-15, abs=0)


def test_official_quadratic_without_clamp_is_the_authors_control_update() -> None:
    # The authors' control code with the quadratic penalty: τ ← max(τ0, τ − g/h), no upper bound and no
    # Hessian clamp, written here with math from their update (g = −log(2σ(u) + eps) + (1 − σ(u))u + 2ρ0τ).
    def authors(d: float, rho0: float, tau0: float, k: int, eps: float = 1e-8) -> float:
        tau = 1.0
        for _ in range(k):
            u = d / tau
            s = 1.0 / (1.0 + math.exp(-u))
            g = -math.log(2.0 * s + eps) + (1.0 - s) * u + 2.0 * rho0 * tau
            h = d * d / tau**3 * (1.0 - s) * s + 2.0 * rho0
            tau = max(tau0, tau - g / h)
        return tau

    for d, rho0, k in ((30.0, 1e-4, 1), (30.0, 1e-4, 2), (0.7, 0.05, 4), (-5.0, 0.01, 3)):
        got = solve_tau(torch.tensor([d], dtype=torch.float64), rho0=rho0, tau0=0.1, tau_max=1.0, quadratic=True,
                        solver="newton-official", n_iter=k).item()  # fmt: skip
        assert got == pytest.approx(authors(d, rho0, 0.1, k), rel=1e-12), (d, rho0, k)
    # one step from τ = 1 at d = 30, ρ0 = 1e-4 lands near 1 + log 2 / 2e-4 ≈ 3467: far past tau_max
    assert solve_tau(torch.tensor([30.0], dtype=torch.float64), rho0=1e-4, quadratic=True,
                     solver="newton-official", n_iter=1).item() > 3000  # fmt: skip


def test_quadratic_penalty_whose_own_bound_is_below_tau0_gives_tau0() -> None:
    # ρ0 = 5 > log 2 / (2τ0): the derivative f + 2ρ0τ ≥ −log 2 + 2·5·0.1 > 0 on [τ0, ∞), so τ* = τ0 for every d
    for solver in ("exact", "newton"):
        tau = solve_tau(D_GRID, rho0=5.0, tau0=0.1, quadratic=True, solver=solver)  # type: ignore[arg-type]
        assert torch.all(tau == 0.1), solver


def test_bad_tau_init_and_the_log2_boundary() -> None:
    with pytest.raises(ValueError, match="tau_init must be a finite number > 0"):
        solve_tau(torch.tensor([1.0]), solver="newton", tau_init=0.0)
    with pytest.warns(UserWarning, match=r"rho0 = 0.69314718\d* >= log 2"):  # at log 2 exactly: τ ≡ τ0 already
        tau = solve_tau(torch.tensor([3.0, -1.0]), rho0=LOG2, tau0=0.2, tau_max=2.0)
    assert tau.tolist() == pytest.approx([0.2, 0.2])
