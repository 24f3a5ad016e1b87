"""Tests of the baselines: hand-derived KKT points, ConEx against a naive loop and a closed form, exact oracle
counts, determinism and resume, bad configs, cooper against our GDA, and NP-wine against SLSQP."""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from stoc_ialm.baselines import (
    CooperConfig,
    CooperSolver,
    IPPConEx,
    IPPConExConfig,
    PenaltySGD,
    PenaltySGDConfig,
    StochasticGDA,
    StochasticGDAConfig,
    conex,
    conex_schedule,
)
from stoc_ialm.datasets import load
from stoc_ialm.ialm import DivergenceError
from stoc_ialm.problems import NeymanPearson
from stoc_ialm.prox import L1, Zero
from stoc_ialm.reference import slsqp_reference
from stoc_ialm.toy import QuadraticProblem

F64 = torch.float64
HAS_COOPER = importlib.util.find_spec("cooper") is not None
needs_cooper = pytest.mark.skipif(not HAS_COOPER, reason="cooper-optim is not installed")


def ineq_toy(**kw: Any) -> QuadraticProblem:
    """min (x − 2)² s.t. x ≤ 1: x* = 1, y* = 2 (2(x − 2) + y = 0)."""
    return QuadraticProblem(center=[2.0], a=[[1.0]], b=[1.0], kinds=["ineq"], **kw)


def eq_toy(**kw: Any) -> QuadraticProblem:
    """min x² s.t. x = 1: x* = 1, y* = −2 (2x + y = 0)."""
    return QuadraticProblem(center=[0.0], a=[[1.0]], b=[1.0], kinds=["eq"], **kw)


def two_constraints(**kw: Any) -> QuadraticProblem:
    """min ‖x‖² s.t. x1 = 1, x2 ≤ −1 (m = 2, one of each kind)."""
    return QuadraticProblem(center=[0.0, 0.0], a=[[1.0, 0.0], [0.0, 1.0]], b=[1.0, -1.0], kinds=["eq", "ineq"], **kw)


def noisy_toy() -> QuadraticProblem:
    return QuadraticProblem(center=[2.0, -1.0], a=[[1.0, 1.0]], b=[0.5], kinds=["ineq"], n=64, noise=0.3)


# -- ConEx ----------------------------------------------------------------------------------------
class TestConEx:
    def test_schedule_hand_values_and_conditions(self) -> None:
        # t = 0, t0 = 3, μ_sc = 2, M = 1: γ = 4, θ = 3/4, η = 2·3/2 = 3, τ = 4/(2·3) = 2/3.
        assert conex_schedule(0, 3, 2.0, 1.0) == pytest.approx((4.0, 0.75, 3.0, 2 / 3), abs=1e-15)
        mu = 0.7
        for t in range(1, 50):
            g1, th1, e1, tau1 = conex_schedule(t, 5, mu, 2.0)
            g0, _, e0, tau0 = conex_schedule(t - 1, 5, mu, 2.0)
            assert g1 * th1 == pytest.approx(g0, rel=1e-14)  # γ_t θ_t = γ_{t−1}
            assert g1 * e1 == pytest.approx(g0 * (e0 + mu), rel=1e-14)  # γ_t η_t = γ_{t−1}(η_{t−1} + μ)
            assert g1 * tau1 <= g0 * tau0  # γ_t τ_t non-increasing

    @staticmethod
    def naive_conex(T: int, M: float) -> tuple[float, float]:
        """ConEx written out in scalars for min (x − 2)² + x² s.t. x − 1 + x² ≤ 0 (centre 0, μ = μ_c = 1).

        ψ_0' = 2(x − 2) + 2x, ψ = x − 1 + x², ψ' = 1 + 2x; μ_sc = 2μ − ρ = 2, L_0 = L + 2μ = 4,
        L_c = L + 2μ_c = 4, t0 = ⌈4 L_0/μ_sc⌉ = 8, B = 10.
        """
        t0, mu_sc, B = 8, 2.0, 10.0
        x, y = 0.0, 0.0
        v, dv, g = x - 1 + x * x, 1 + 2 * x, 2 * (x - 2) + 2 * x
        ell_prev = ell = v
        gs = xs = ys = 0.0
        for t in range(T):
            a = t + t0
            gamma, theta, eta, tau = a + 1.0, a / (a + 1.0), mu_sc * a / 2, 4 * M * M / (mu_sc * a)
            y = min(max(y + ((1 + theta) * ell - theta * ell_prev) / tau, 0.0), B)
            eta = max(eta, 2 * (4.0 + y * 4.0))
            x_new = x - (g + dv * y) / eta
            gs, xs, ys = gs + gamma, xs + gamma * x_new, ys + gamma * y
            ell_prev, ell = ell, v + dv * (x_new - x)
            x = x_new
            v, dv, g = x - 1 + x * x, 1 + 2 * x, 2 * (x - 2) + 2 * x
        return xs / gs, ys / gs

    @staticmethod
    def one_outer_step(T: int, output: str = "average", jac_bound: float | None = 3.0) -> tuple[float, float]:
        cfg = IPPConExConfig(batch=None, lipschitz=2.0, weak_convexity=0.0, mu=1.0, mu_c=1.0, jac_bound=jac_bound,
                             inner_iters=T, inner_output=output, max_outer=1)  # type: ignore[arg-type]  # fmt: skip
        res = IPPConEx(ineq_toy(), cfg).solve()
        return float(res.x[0]), float(res.multipliers[0])

    def test_single_outer_step_is_conex_on_the_subproblem(self) -> None:
        # The vectorised solver against the scalar loop above: the same recursion to round-off.
        for T in (1, 2, 40):
            x, y = self.one_outer_step(T)
            x_ref, y_ref = self.naive_conex(T, 3.0)
            assert x == pytest.approx(x_ref, abs=1e-12)
            assert y == pytest.approx(y_ref, abs=1e-12)

    def test_single_outer_step_reaches_the_closed_form_subproblem_solution(self) -> None:
        # Subproblem min (x−2)² + x² s.t. x − 1 + x² ≤ 0: the unconstrained minimiser 1 is infeasible, so the
        # constraint is active, x* = (√5 − 1)/2, and 2(x−2) + 2x + y(1 + 2x) = 0 gives y* = 4(1 − x*)/√5 = 6/√5 − 2.
        x_star, y_star = (math.sqrt(5) - 1) / 2, 6 / math.sqrt(5) - 2
        # Weighted average: error measured ≈ T^-1.9 (1.5e-4 at T = 100, 1.8e-6 / 2.1e-5 at T = 1000); 5x margin.
        x, y = self.one_outer_step(1000, jac_bound=None)
        assert abs(x - x_star) <= 1e-5
        assert abs(y - y_star) <= 1e-4
        # Last iterate: linear convergence on this deterministic problem, to round-off.
        x, y = self.one_outer_step(300, output="last", jac_bound=None)
        assert abs(x - x_star) <= 1e-10
        assert abs(y - y_star) <= 1e-10

    def test_conex_rejects_a_bad_argument(self) -> None:
        def oracle(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            return x, x, torch.ones(1, 1, dtype=F64)

        x0 = torch.zeros(1, dtype=F64)
        with pytest.raises(ValueError, match="iters must be an integer >= 1"):
            conex(oracle, Zero(), x0, x0, torch.tensor([True]), strong_convexity=1.0, smoothness=1.0,
                  constraint_smoothness=1.0, iters=0)  # fmt: skip
        with pytest.raises(ValueError, match="strong_convexity must be a finite number > 0"):
            conex(oracle, Zero(), x0, x0, torch.tensor([True]), strong_convexity=0.0, smoothness=1.0,
                  constraint_smoothness=1.0, iters=1)  # fmt: skip


# -- convergence to hand-derived KKT points (deterministic, full batch) ----------------------------
# The KKT point is a fixed point of each deterministic update, and each iteration contracts on these 1-D
# strongly convex problems (GDA with η = 0.2, η_y = 0.5: the linear map [[0.6, −0.2], [0.5, 1]] has spectral
# radius √0.7 on both toys). Measured errors are ~1e-15; 1e-8 leaves room for round-off in the KKT metrics.
SOLVERS: dict[str, Callable[[QuadraticProblem], IPPConEx | StochasticGDA]] = {
    "ipp-conex": lambda p: IPPConEx(p, IPPConExConfig(batch=None, lipschitz=2.0, inner_iters=100, max_outer=40)),
    "gda": lambda p: StochasticGDA(p, StochasticGDAConfig(batch=None, lr=0.2, dual_lr=0.5, max_outer=5)),
}


@pytest.mark.parametrize("name", sorted(SOLVERS))
@pytest.mark.parametrize(("make", "y_star"), [(ineq_toy, 2.0), (eq_toy, -2.0)], ids=["ineq", "eq"])
def test_deterministic_solve_reaches_the_kkt_point(name: str, make: Any, y_star: float) -> None:
    res = SOLVERS[name](make()).solve()
    assert float(res.x[0]) == pytest.approx(1.0, abs=1e-8)
    assert float(res.multipliers[0]) == pytest.approx(y_star, abs=1e-8)
    assert res.final["kkt"] <= 1e-8


class TestPenaltySGD:
    # The fixed-penalty minimiser by hand. ineq: (x−2)² + (β/2)max(x−1, 0)² → 2(x−2) + β(x−1) = 0, x_β = (4+β)/(2+β);
    # eq: x² + (β/2)(x−1)² → x_β = β/(2+β). Both violate by 2/(2+β), with y = β[c] = ±2β/(2+β), and stationarity
    # is exactly 0 at that y, so the KKT residual is the violation 2/(2+β) = 0.02 for β = 98.
    beta = 98.0

    @pytest.mark.parametrize("inequality", ["max", "slack"])
    def test_inequality_converges_to_the_penalty_minimiser(self, inequality: str) -> None:
        b = self.beta
        cfg = PenaltySGDConfig(batch=None, beta=b, lipschitz=2.0, max_outer=40, inequality=inequality)  # type: ignore[arg-type]
        res = PenaltySGD(ineq_toy(), cfg).solve()
        assert float(res.x[0]) == pytest.approx((4 + b) / (2 + b), abs=1e-10)
        assert float(res.multipliers[0]) == pytest.approx(2 * b / (2 + b), abs=1e-8)
        assert res.final["violation"] == pytest.approx(2 / (2 + b), abs=1e-10)
        assert res.final["stationarity"] <= 1e-8

    def test_equality_converges_to_the_penalty_minimiser(self) -> None:
        b = self.beta
        res = PenaltySGD(eq_toy(), PenaltySGDConfig(batch=None, beta=b, lipschitz=2.0, max_outer=10)).solve()
        assert float(res.x[0]) == pytest.approx(b / (2 + b), abs=1e-10)
        assert float(res.multipliers[0]) == pytest.approx(-2 * b / (2 + b), abs=1e-8)
        assert res.final["kkt"] == pytest.approx(2 / (2 + b), abs=1e-10)

    @pytest.mark.parametrize("inequality", ["max", "slack"])
    def test_satisfied_inequality_is_not_penalised(self, inequality: str) -> None:
        # min (x − 0.5)² s.t. x ≤ 1: inactive, so x = 0.5 exactly and β[c]_+ = 0 (a penalty on a satisfied
        # constraint, as ½β c² would be, would pull x toward 1).
        prob = QuadraticProblem(center=[0.5], a=[[1.0]], b=[1.0], kinds=["ineq"])
        cfg = PenaltySGDConfig(batch=None, beta=self.beta, lipschitz=2.0, max_outer=40, inequality=inequality)  # type: ignore[arg-type]
        res = PenaltySGD(prob, cfg).solve()
        assert float(res.x[0]) == pytest.approx(0.5, abs=1e-8)
        assert float(res.multipliers[0]) == 0.0


# -- oracle accounting ------------------------------------------------------------------------------
def _one_step(solver: Any) -> QuadraticProblem:
    prob = two_constraints(n=50)
    res = solver(prob).solve()
    assert res.final["oracle_calls"] == prob.counter.total
    assert res.final["inner_iters"] == 7
    return prob


@pytest.mark.parametrize(
    ("name", "c_value"),
    [("ipp", 0), ("penalty", 28), ("gda", 0), pytest.param("cooper", 0, marks=needs_cooper),
     pytest.param("cooper-alt", 28, marks=needs_cooper)],
)  # fmt: skip
def test_one_outer_step_costs_exactly_the_counted_batches(name: str, c_value: int) -> None:
    # 7 inner iterations, batch 4, m = 2: every method draws one f batch and one Jacobian batch per constraint
    # per iteration (4·7 = 28 each); penalty-SGD adds an independent value batch (B_c), cooper's alternating
    # optimizer the constraint values at the new point. IPP-ConEx's linearisation reuses the Jacobian batch.
    common = {"batch": 4, "inner_iters": 7, "max_outer": 1}
    solvers = {
        "ipp": lambda p: IPPConEx(p, IPPConExConfig(**common)),  # type: ignore[arg-type]
        "penalty": lambda p: PenaltySGD(p, PenaltySGDConfig(**common)),  # type: ignore[arg-type]
        "gda": lambda p: StochasticGDA(p, StochasticGDAConfig(**common)),
        "cooper": lambda p: CooperSolver(p, CooperConfig(**common)),  # type: ignore[arg-type]
        "cooper-alt": lambda p: CooperSolver(p, CooperConfig(**common, alternating=True)),  # type: ignore[arg-type]
    }
    prob = _one_step(solvers[name])
    assert prob.counter.f_grad == 28
    assert prob.counter.c_grad == [28, 28]
    assert prob.counter.c_value == [c_value, c_value]


@pytest.mark.parametrize("method", ["ipp", "gda"])
def test_budget_stops_at_the_first_iteration_that_reaches_it(method: str) -> None:
    # 12 calls per iteration (batch 4: f + 2 Jacobian rows): a budget of 50 stops after 5 iterations = 60 calls.
    prob = two_constraints(n=50)
    common = {"batch": 4, "inner_iters": 100, "max_outer": 10, "budget": 50}
    solver = (IPPConEx(prob, IPPConExConfig(**common)) if method == "ipp"  # type: ignore[arg-type]
              else StochasticGDA(prob, StochasticGDAConfig(**common)))  # fmt: skip
    res = solver.solve()
    assert res.status == "budget"
    assert prob.counter.total == 60
    assert [r["inner_iters"] for r in res.history] == [5]


# -- determinism and resume -----------------------------------------------------------------------
FACTORIES: dict[str, Any] = {
    "ipp": lambda p, **kw: IPPConEx(p, IPPConExConfig(batch=8, lipschitz=2.0, inner_iters=20, **kw)),
    "penalty": lambda p, **kw: PenaltySGD(p, PenaltySGDConfig(batch=8, lipschitz=2.0, inner_iters=20, **kw)),
    "gda": lambda p, **kw: StochasticGDA(p, StochasticGDAConfig(batch=8, lr=0.2, dual_lr=0.5, inner_iters=20, **kw)),
    "cooper": lambda p, **kw: CooperSolver(p, CooperConfig(batch=8, lr=0.2, dual_lr=0.5, inner_iters=20, **kw)),
}
METHODS = ["ipp", "penalty", "gda", pytest.param("cooper", marks=needs_cooper)]


def _strip(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in history]


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_history_and_resume_is_bit_identical(method: str, tmp_path: Path) -> None:
    make = FACTORIES[method]
    a = make(noisy_toy(), max_outer=4).solve()
    b = make(noisy_toy(), max_outer=4).solve()
    assert _strip(a.history) == _strip(b.history)
    assert torch.equal(a.x, b.x)
    other = make(noisy_toy(), max_outer=4, seed=1).solve()
    assert not torch.equal(other.x, a.x)
    ckpt = tmp_path / "ckpt.pt"
    assert len(make(noisy_toy(), max_outer=2).solve(checkpoint=ckpt).history) == 2
    resumed = make(noisy_toy(), max_outer=4).solve(checkpoint=ckpt, resume=True)
    assert torch.equal(resumed.x, a.x)
    assert torch.equal(resumed.multipliers, a.multipliers)
    assert [r["oracle_calls"] for r in resumed.history] == [r["oracle_calls"] for r in a.history]


@pytest.mark.parametrize("method", METHODS)
def test_resume_after_a_budget_stop_equals_a_solve_with_the_larger_budget(method: str, tmp_path: Path) -> None:
    # the twin of StocIALM's: the step the budget ended is not checkpointed, so a resume redoes it in full
    make = FACTORIES[method]
    whole = make(noisy_toy(), max_outer=4).solve()
    calls = [r["oracle_calls"] for r in whole.history]
    ckpt = tmp_path / "ckpt.pt"
    cut = make(noisy_toy(), max_outer=4, budget=(calls[1] + calls[2]) // 2).solve(checkpoint=ckpt)
    assert cut.status == "budget"
    assert cut.history[-1]["oracle_calls"] < calls[2]  # step 2 was cut short
    resumed = make(noisy_toy(), max_outer=4).solve(checkpoint=ckpt, resume=True)
    assert torch.equal(resumed.x, whole.x)
    assert [r["oracle_calls"] for r in resumed.history] == calls


def test_resume_refuses_another_method(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt.pt"
    FACTORIES["gda"](noisy_toy(), max_outer=1).solve(checkpoint=ckpt)
    with pytest.raises(ValueError, match="another method, problem or config"):
        FACTORIES["penalty"](noisy_toy(), max_outer=2).solve(checkpoint=ckpt, resume=True)


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (IPPConExConfig, {"lipschitz": math.nan}, "lipschitz must be a finite number > 0"),
        (IPPConExConfig, {"lipschitz": 1.0, "mu": 0.4}, r"mu must be > weak_convexity / 2"),
        (IPPConExConfig, {"weak_convexity": 0.0}, "mu must be given when weak_convexity is 0"),
        (IPPConExConfig, {"weak_convexity": -1.0}, "weak_convexity must be a finite number >= 0"),
        (IPPConExConfig, {"mu_c": 0.1}, r"mu_c must be >= weak_convexity / 2"),
        (IPPConExConfig, {"dual_bound": 0.0}, "dual_bound must be a number > 0"),
        (IPPConExConfig, {"jac_bound": -1.0}, "jac_bound must be a finite number > 0"),
        (IPPConExConfig, {"inner_output": "best"}, "inner_output must be one of"),
        (PenaltySGDConfig, {"beta": 0.0}, "beta must be a finite number > 0"),
        (PenaltySGDConfig, {"lr_scale": -1.0}, "lr_scale must be a finite number > 0"),
        (PenaltySGDConfig, {"inequality": "abs"}, "inequality must be one of"),
        (StochasticGDAConfig, {"lr": 0.0}, "lr must be a finite number > 0"),
        (StochasticGDAConfig, {"dual_lr": math.inf}, "dual_lr must be a finite number > 0"),
        (StochasticGDAConfig, {"batch": 0}, "batch must be None or an integer >= 1"),
        (StochasticGDAConfig, {"inner_iters": 0}, "inner_iters must be an integer >= 1"),
        (StochasticGDAConfig, {"max_outer": 1.5}, "max_outer must be an integer >= 1"),
        (StochasticGDAConfig, {"budget": 0}, "budget must be None or an integer >= 1"),
        (StochasticGDAConfig, {"tol": -1.0}, "tol must be a finite number >= 0"),
        (StochasticGDAConfig, {"seed": -1}, "seed must be an integer >= 0"),
        (CooperConfig, {"formulation": "penalty"}, "formulation must be one of"),
        (CooperConfig, {"alternating": 1}, "alternating must be True or False"),
        (CooperConfig, {"penalty": 0.0}, "penalty must be a finite number > 0"),
    ],
)
def test_bad_config_names_the_field(cls: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_batch_larger_than_the_data_and_a_bad_x0_are_rejected() -> None:
    with pytest.raises(ValueError, match="batch must be <= the smallest data set"):
        StochasticGDA(eq_toy(n=8), StochasticGDAConfig(batch=64))
    with pytest.raises(ValueError, match=r"x0 must have shape \(1,\)"):
        PenaltySGD(eq_toy(), PenaltySGDConfig(batch=None)).solve(torch.zeros(2, dtype=F64))


def test_divergence_is_reported_with_a_hint() -> None:
    # η = 10 on (x − 2)²: x − 2 is multiplied by 1 − 20 = −19 per step and overflows within 300 steps.
    with pytest.raises(DivergenceError, match="lower the step"):
        StochasticGDA(eq_toy(), StochasticGDAConfig(batch=None, lr=10.0, max_outer=3)).solve()


# -- cooper ---------------------------------------------------------------------------------------
@needs_cooper
def test_cooper_lagrangian_reproduces_stochastic_gda() -> None:
    # cooper's Lagrangian + SimultaneousOptimizer with SGD is GDA; same seed, same batches, L1 prox: the iterates
    # of the two implementations agree to round-off (cooper sums J^T λ by autograd, we by a matrix product).
    def make() -> QuadraticProblem:
        return two_constraints(n=40, noise=0.5, regularizer=L1(0.05))

    kw: dict[str, Any] = {"batch": 6, "lr": 0.1, "dual_lr": 0.3, "inner_iters": 30, "max_outer": 3}
    ours = StochasticGDA(make(), StochasticGDAConfig(**kw)).solve()
    theirs = CooperSolver(make(), CooperConfig(**kw)).solve()
    assert torch.allclose(theirs.x, ours.x, atol=1e-12, rtol=0)
    assert torch.allclose(theirs.multipliers, ours.multipliers, atol=1e-12, rtol=0)
    assert [r["oracle_calls"] for r in theirs.history] == [r["oracle_calls"] for r in ours.history]


@needs_cooper
def test_cooper_augmented_lagrangian_reaches_the_kkt_point() -> None:
    # Alternating primal-dual steps on the augmented Lagrangian (spec: cooper-alm), deterministic: x* = 1, y* = 2.
    cfg = CooperConfig(batch=None, lr=0.2, dual_lr=0.5, max_outer=5, formulation="augmented_lagrangian",
                       alternating=True, penalty=0.5)  # fmt: skip
    res = CooperSolver(ineq_toy(), cfg).solve()
    assert float(res.x[0]) == pytest.approx(1.0, abs=1e-8)
    assert float(res.multipliers[0]) == pytest.approx(2.0, abs=1e-8)


def test_cooper_solver_without_cooper_names_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cooper", None)  # makes `import cooper` fail
    with pytest.raises(ImportError, match="pip install"):
        CooperSolver(eq_toy(), CooperConfig(batch=None)).solve()


# -- NP-wine against SLSQP ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wine() -> tuple[NeymanPearson, float, float, float]:
    data = load("wine")
    prob = NeymanPearson(data, alpha=0.05)
    ref = slsqp_reference(prob)
    lipschitz = 0.1 * float(torch.linalg.matrix_norm(data.X, 2) ** 2 / data.X.shape[0])  # ≥ max |σ''| ‖A‖²/n
    return prob, ref.F, float(ref.multipliers[0]), lipschitz


def test_ipp_conex_matches_slsqp_on_wine(wine: tuple[NeymanPearson, float, float, float]) -> None:
    # Full batch: IPP-ConEx converges to a KKT point, so the tolerances are Stoc-iALM's full-batch ones
    # (test_solve_np). The Hessians of f and c at x* have smallest eigenvalues 1e-6 and −6e-4, so ρ = L/30
    # (0.016) bounds the weak convexity near the path; μ = ρ keeps each proximal step long (μ = L needs ~30x
    # the outer steps). Measured: |F − F*| = 5e-6, stationarity 1e-4.
    prob, F_ref, _, L = wine
    cfg = IPPConExConfig(batch=None, lipschitz=L, weak_convexity=L / 30, inner_iters=50, max_outer=150)
    final = IPPConEx(prob, cfg).solve().final
    assert abs(final["objective"] - F_ref) <= 1e-4
    assert final["violation"] <= 1e-6
    assert final["stationarity"] <= 1e-3


def test_stochastic_gda_matches_slsqp_on_wine(wine: tuple[NeymanPearson, float, float, float]) -> None:
    # Full-batch GDA converges to the KKT point (measured |F − F*| = 6e-7, stationarity 2e-5).
    prob, F_ref, _, _ = wine
    final = StochasticGDA(prob, StochasticGDAConfig(batch=None, lr=1.0, dual_lr=1.0, max_outer=50)).solve().final
    assert abs(final["objective"] - F_ref) <= 1e-5
    assert final["violation"] <= 1e-6
    assert final["stationarity"] <= 1e-4


def test_penalty_sgd_is_within_its_penalty_bias_of_slsqp_on_wine(
    wine: tuple[NeymanPearson, float, float, float],
) -> None:
    # A fixed β does not converge to x*: to first order in 1/β the penalty minimiser violates by c ≈ y*/β
    # (its multiplier βc → y*) and F(x_β) ≈ F* − y*·c = F* − y*²/β (here 2.1e-4 for β = 30). The tolerances are
    # that bias, doubled, and a 25% band around y*/β. Measured: F − F* = −1.8e-4, violation 2.4e-3 (y*/β = 2.6e-3).
    prob, F_ref, y_ref, L = wine
    beta = 30.0
    cfg = PenaltySGDConfig(batch=None, beta=beta, lipschitz=L, lr_scale=10.0, max_outer=100)
    final = PenaltySGD(prob, cfg).solve().final
    assert abs(final["objective"] - F_ref) <= 2 * y_ref**2 / beta
    assert final["violation"] == pytest.approx(y_ref / beta, rel=0.25)
    assert final["stationarity"] <= 1e-4
