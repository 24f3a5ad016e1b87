"""Tests of :mod:`stoc_ialm.pstorm`: the pure functions, the reductions, variance reduction, the optimizer shell."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from stoc_ialm.prox import L1, Box, L2Ball, Regularizer
from stoc_ialm.pstorm import PStorm, constant_schedule, paper_schedule, prox_gradient_step, pstorm_direction

F64 = torch.float64


# -- a least-squares finite sum: f(x) = (1/2n) Σ (a_iᵀx + c − b_i)² ----------------------------------------
class LeastSquares:
    """Data ``(A, b)``; gradients by autograd through one expression, shared by optimizer and hand loops."""

    def __init__(self, n: int = 64, d: int = 5, noise: float = 0.5, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.A = torch.randn(n, d, dtype=F64, generator=gen)
        x_true = torch.randn(d, dtype=F64, generator=gen)
        self.b = self.A @ x_true + 1.0 + noise * torch.randn(n, dtype=F64, generator=gen)
        self.n, self.d = n, d

    def loss(self, w: Tensor, c: Tensor, idx: Tensor | None) -> Tensor:
        A, b = (self.A, self.b) if idx is None else (self.A[idx], self.b[idx])
        return 0.5 * (A @ w + c - b).square().mean()

    def grads(self, w: Tensor, c: Tensor, idx: Tensor | None) -> tuple[Tensor, Tensor]:
        """``(∂/∂w, ∂/∂c)`` at detached copies (the "hand" oracle)."""
        w_, c_ = w.detach().clone().requires_grad_(True), c.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            self.loss(w_, c_, idx).backward()
        assert w_.grad is not None
        assert c_.grad is not None
        return w_.grad, c_.grad

    def batches(self, steps: int, size: int, seed: int = 1) -> list[Tensor | None]:
        gen = torch.Generator().manual_seed(seed)
        return [torch.randint(0, self.n, (size,), generator=gen) for _ in range(steps)]


class Model(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.full((d,), 0.5, dtype=F64))
        self.c = nn.Parameter(torch.zeros(1, dtype=F64))


def _closure(
    prob: LeastSquares, model: Model, idx: Tensor | None, calls: list[int] | None = None
) -> Callable[[], float]:
    def closure() -> float:
        if calls is not None:
            calls.append(1)
        loss = prob.loss(model.w, model.c, idx)
        loss.backward()
        return loss.item()

    return closure


def _hand_pstorm(
    prob: LeastSquares,
    batches: list[Tensor | None],
    schedule: Callable[[int], tuple[float, float]],
    prox: Regularizer | None,
    d0: int,
) -> list[Tensor]:
    """The pure-function loop on the concatenation z = [w, c]; returns x_1..x_T."""
    z = torch.cat([torch.full((d0,), 0.5, dtype=F64), torch.zeros(1, dtype=F64)])
    prev: Tensor | None = None
    d: Tensor | None = None
    out = []
    for t, idx in enumerate(batches):
        eta, theta = schedule(t)
        g = torch.cat(prob.grads(z[:d0], z[d0:], idx))
        if d is None or prev is None:
            d = g.clone()
        else:
            g_prev = torch.cat(prob.grads(prev[:d0], prev[d0:], idx))
            d = pstorm_direction(g, g_prev, d, theta)
        prev = z
        z = prox_gradient_step(z, d, eta, prox)
        out.append(z)
    return out


def _flat(model: Model) -> Tensor:
    return torch.cat([model.w.detach(), model.c.detach()])


# -- pure functions --------------------------------------------------------------------------------------
class TestPureFunctions:
    def test_direction_hand_value(self) -> None:
        # By hand: 1 + (1 − 0.5)(0.7 − 0.5) = 1.1 and 2 + (1 − 0.5)(−1 − 3) = 0.
        d = pstorm_direction(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 3.0]), torch.tensor([0.7, -1.0]), 0.5)
        torch.testing.assert_close(d, torch.tensor([1.1, 0.0]))

    def test_direction_theta_one_is_the_gradient_exactly(self) -> None:
        g = torch.randn(7, dtype=F64, generator=torch.Generator().manual_seed(0))
        assert torch.equal(pstorm_direction(g, 5 * g + 1, -g, 1.0), g)

    def test_paper_schedule_hand_values(self) -> None:
        """η_0 = 4^{1/3}/(8L·4^{1/3}) = 1/(8L) and η_1 = (4/5)^{1/3}/(8L), so η_0 L = 1/8 and η_1/η_0 = (4/5)^{1/3}:

        θ_0 = (1 + 24/64 − (4/5)^{1/3}) / (1 + 4/64) = (16/17)(11/8 − 0.8^{1/3}) ≈ 0.420407;
        η_1 L = 0.8^{1/3}/8, so 24 η_1²L² = (3/8)·0.8^{2/3}, 4 η_1²L² = 0.8^{2/3}/16 and η_2/η_1 = (5/6)^{1/3}:
        θ_1 = (1 + (3/8)·0.8^{2/3} − (5/6)^{1/3}) / (1 + 0.8^{2/3}/16) ≈ 0.362599.
        θ does not depend on L; η scales like 1/L.
        """
        L = 2.0
        eta0, theta0 = paper_schedule(L, 0)
        eta1, theta1 = paper_schedule(L, 1)
        c = 0.8 ** (1 / 3)
        assert eta0 == pytest.approx(1 / 16, rel=1e-15)
        assert eta1 == pytest.approx(c / 16, rel=1e-15)
        assert theta0 == pytest.approx(16 / 17 * (11 / 8 - c), rel=1e-14)
        assert theta1 == pytest.approx((1 + 3 / 8 * c**2 - (5 / 6) ** (1 / 3)) / (1 + c**2 / 16), rel=1e-14)
        assert theta0 == pytest.approx(0.420407, abs=1e-6)
        assert theta1 == pytest.approx(0.362599, abs=1e-6)
        assert paper_schedule(1.0, 1)[1] == pytest.approx(theta1, rel=1e-14)

    def test_paper_schedule_theta_in_unit_interval_and_clipped(self) -> None:
        # θ_t ∈ (0, 1) along the unscaled schedule; scale 10 gives η_0 L = 1.25 and a raw θ_0 = 5.18... -> 1.
        for t in (0, 1, 10, 1000, 10**6):
            eta, theta = paper_schedule(3.0, t)
            assert 0.0 < theta < 1.0
            assert eta == pytest.approx(4 ** (1 / 3) / (8 * 3.0) / (t + 4) ** (1 / 3), rel=1e-14)
        eta, theta = paper_schedule(1.0, 0, scale=10.0)
        assert eta == pytest.approx(1.25, rel=1e-15)
        assert theta == 1.0

    def test_constant_schedule(self) -> None:
        assert constant_schedule(4.0, 0.5, 0.1) == (0.125, 0.1)

    def test_prox_gradient_step(self) -> None:
        # x − ηd = (1, 0.1) − 0.5 (−2, 0) = (2, 0.1); soft(·, 0.5) = (1.5, 0).
        out = prox_gradient_step(torch.tensor([1.0, 0.1]), torch.tensor([-2.0, 0.0]), 0.5, L1(1.0))
        assert torch.equal(out, torch.tensor([1.5, 0.0]))
        assert torch.equal(prox_gradient_step(torch.tensor([1.0]), torch.tensor([2.0]), 0.25), torch.tensor([0.5]))


# -- reductions -------------------------------------------------------------------------------------------
def test_theta_one_is_proximal_sgd_bit_identical() -> None:
    # momentum=1: x_{t+1} = prox_{ηh}(x_t − η G(x_t; B_t)) with the same oracle in a hand loop; closure once per step.
    prob = LeastSquares()
    model = Model(prob.d)
    prox = L1(0.05)
    opt = PStorm(model.parameters(), lr=0.05, momentum=1.0, prox=prox)
    batches = prob.batches(30, 4)
    calls: list[int] = []
    z = _flat(model)
    for idx in batches:
        g = torch.cat(prob.grads(z[:-1], z[-1:], idx))
        z = prox.prox(z - 0.05 * g, 0.05)
        opt.step(_closure(prob, model, idx, calls))
        assert torch.equal(_flat(model), z)
    assert len(calls) == 30


def test_full_batch_is_proximal_gradient_descent() -> None:
    # Deterministic oracle: G(x_{t−1}; B_t) = ∇f(x_{t−1}) = d_{t−1}, so d_t = ∇f(x_t) exactly and the iterates are
    # proximal gradient descent's (hand loop with the same autograd gradient).
    prob = LeastSquares()
    model = Model(prob.d)
    prox = L1(0.05)
    opt = PStorm(model.parameters(), lr=0.1, momentum=0.3, prox=prox)
    z = _flat(model)
    for _ in range(25):
        g = torch.cat(prob.grads(z[:-1], z[-1:], None))
        opt.step(_closure(prob, model, None))
        d = torch.cat([opt.state[model.w]["d"], opt.state[model.c]["d"]])
        assert torch.equal(d, g)
        z = prox.prox(z - 0.1 * g, 0.1)
        assert torch.equal(_flat(model), z)


def test_variance_reduction_is_real() -> None:
    # Noisy least squares, batch 4, fixed seed: over the last 200 of 600 steps the PStorm error ‖d_t − ∇f(x_t)‖²
    # is at most half the plain stochastic gradient's ‖G(x_t; B_t) − ∇f(x_t)‖², both at PStorm's iterates and for
    # SGD (momentum=1) run with the same step and batches.
    prob = LeastSquares(n=512, d=10, noise=1.0, seed=3)
    batches = prob.batches(600, 4, seed=4)

    def run(momentum: float) -> tuple[list[float], list[float]]:
        model = Model(prob.d)
        opt = PStorm(model.parameters(), lr=0.02, momentum=momentum)
        err_d, err_g = [], []
        for idx in batches:
            full = torch.cat(prob.grads(model.w, model.c, None))
            stoch = torch.cat(prob.grads(model.w, model.c, idx))
            opt.step(_closure(prob, model, idx))
            d = torch.cat([opt.state[model.w]["d"], opt.state[model.c]["d"]])
            err_d.append(float((d - full).square().sum()))
            err_g.append(float((stoch - full).square().sum()))
        return err_d[-200:], err_g[-200:]

    pstorm_d, pstorm_g = run(0.1)
    _, sgd_g = run(1.0)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert mean(pstorm_d) <= 0.5 * mean(pstorm_g)
    assert mean(pstorm_d) <= 0.5 * mean(sgd_g)


def test_lasso_decreases_and_matches_the_pure_function_loop() -> None:
    # Two params (w, c) in one group with L1 on their concatenation: iterates equal the pure-function loop on
    # z = [w, c] bit for bit, and F drops most of the way to F* (full-batch ISTA, 5000 steps).
    prob = LeastSquares(n=128, d=6, seed=5)
    prox = L1(0.1)
    batches = prob.batches(300, 8, seed=6)
    model = Model(prob.d)
    opt = PStorm(model.parameters(), lr=0.05, momentum=0.2, prox=prox)
    for idx in batches:
        opt.step(_closure(prob, model, idx))
    hand = _hand_pstorm(prob, batches, lambda t: (0.05, 0.2), prox, prob.d)
    assert torch.equal(_flat(model), hand[-1])

    def F(z: Tensor) -> float:
        return float(prob.loss(z[:-1], z[-1:], None)) + prox.value(z)

    z = torch.cat([torch.full((prob.d,), 0.5, dtype=F64), torch.zeros(1, dtype=F64)])
    F0 = F(z)
    for _ in range(5000):
        z = prox_gradient_step(z, torch.cat(prob.grads(z[:-1], z[-1:], None)), 0.1, prox)
    F_star = F(z)
    assert F(_flat(model)) - F_star <= 0.02 * (F0 - F_star)


def test_paper_momentum_matches_the_pure_function_loop() -> None:
    # momentum="paper", lr=0.5 a scale on η_t: the same iterates as the loop with paper_schedule(L, t, scale=0.5).
    prob = LeastSquares(seed=7)
    L = float(torch.linalg.matrix_norm(prob.A, ord=2)) ** 2  # a smoothness constant of the rows
    batches = prob.batches(20, 4, seed=8)
    model = Model(prob.d)
    opt = PStorm(model.parameters(), lr=0.5, momentum="paper", lipschitz=L, prox=L1(0.01))
    for idx in batches:
        opt.step(_closure(prob, model, idx))
    hand = _hand_pstorm(prob, batches, lambda t: paper_schedule(L, t, scale=0.5), L1(0.01), prob.d)
    assert torch.equal(_flat(model), hand[-1])
    assert opt.param_groups[0]["lr"] == 0.5
    assert PStorm(model.parameters(), momentum="paper", lipschitz=L).param_groups[0]["lr"] == 1.0


def test_param_groups_each_with_its_own_prox_and_lr() -> None:
    # Group 0: w with L1, lr 0.05; group 1: c, no prox, lr 0.2. Hand loop per group on the same oracle.
    prob = LeastSquares(seed=9)
    model = Model(prob.d)
    opt = PStorm(
        [{"params": [model.w], "prox": L1(0.1)}, {"params": [model.c], "lr": 0.2, "momentum": 0.5}],
        lr=0.05,
        momentum=0.3,
    )
    batches = prob.batches(15, 4, seed=10)
    w, c = model.w.detach().clone(), model.c.detach().clone()
    prev: tuple[Tensor, Tensor] | None = None
    dw = dc = torch.empty(0)
    for idx in batches:
        gw, gc = prob.grads(w, c, idx)
        if prev is None:
            dw, dc = gw, gc
        else:
            pw, pc = prob.grads(prev[0], prev[1], idx)
            dw, dc = pstorm_direction(gw, pw, dw, 0.3), pstorm_direction(gc, pc, dc, 0.5)
        prev = (w, c)
        w, c = prox_gradient_step(w, dw, 0.05, L1(0.1)), prox_gradient_step(c, dc, 0.2)
        opt.step(_closure(prob, model, idx))
        assert torch.equal(model.w.detach(), w)
        assert torch.equal(model.c.detach(), c)


def test_prox_acts_on_the_concatenation_of_a_group() -> None:
    # L2Ball(1) over [w, c]: the joint norm is <= 1 after a step (a per-param projection would allow √2).
    prob = LeastSquares(seed=11)
    model = Model(prob.d)
    with torch.no_grad():
        model.w.fill_(3.0)
        model.c.fill_(3.0)
    opt = PStorm(model.parameters(), lr=0.01, momentum=0.5, prox=L2Ball(1.0))
    opt.step(_closure(prob, model, None))
    assert float(_flat(model).norm()) == pytest.approx(1.0, rel=1e-12)


# -- the optimizer shell ----------------------------------------------------------------------------------
def test_closure_called_once_then_twice_per_step() -> None:
    prob = LeastSquares()
    model = Model(prob.d)
    opt = PStorm(model.parameters(), lr=0.05, momentum=0.5)
    calls: list[int] = []
    for idx in prob.batches(6, 4):
        opt.step(_closure(prob, model, idx, calls))
    assert len(calls) == 1 + 2 * 5


def test_grad_and_loss_after_step_are_those_at_the_current_point() -> None:
    # After step, p.grad = G(x_t; B_t) and the returned loss is f(x_t; B_t), at the pre-step point x_t.
    prob = LeastSquares()
    model = Model(prob.d)
    opt = PStorm(model.parameters(), lr=0.05, momentum=0.5)
    for idx in prob.batches(4, 4):
        gw, gc = prob.grads(model.w, model.c, idx)
        expected_loss = float(prob.loss(model.w.detach(), model.c.detach(), idx))
        loss = opt.step(_closure(prob, model, idx))
        assert loss == expected_loss
        assert model.w.grad is not None
        assert torch.equal(model.w.grad, gw)
        assert model.c.grad is not None
        assert torch.equal(model.c.grad, gc)


def test_state_dict_resume_is_bit_identical() -> None:
    # 12 straight steps == 6 steps, torch.save/torch.load(weights_only=True) of params and optimizer, 6 more.
    prob = LeastSquares(seed=12)
    batches = prob.batches(12, 4, seed=13)
    box = Box(torch.full((prob.d,), -0.3, dtype=F64), torch.full((prob.d,), 0.8, dtype=F64))

    def make() -> tuple[Model, PStorm]:
        model = Model(prob.d)
        groups: list[dict[str, Any]] = [
            {"params": [model.w], "prox": box},
            {"params": [model.c], "momentum": "paper", "lipschitz": 50.0, "lr": 2.0},
        ]
        return model, PStorm(groups, lr=0.05, momentum=0.25)

    model_a, opt_a = make()
    for idx in batches:
        opt_a.step(_closure(prob, model_a, idx))

    model_b, opt_b = make()
    for idx in batches[:6]:
        opt_b.step(_closure(prob, model_b, idx))
    buf = io.BytesIO()
    torch.save({"model": model_b.state_dict(), "opt": opt_b.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    assert saved["opt"]["param_groups"][0]["prox"] == repr(box)
    model_c, opt_c = make()
    model_c.load_state_dict(saved["model"])
    opt_c.load_state_dict(saved["opt"])
    assert opt_c.param_groups[0]["prox"] is box
    for idx in batches[6:]:
        opt_c.step(_closure(prob, model_c, idx))
    assert torch.equal(_flat(model_c), _flat(model_a))
    for p_a, p_c in zip(model_a.parameters(), model_c.parameters(), strict=True):
        assert opt_a.state[p_a]["step"] == opt_c.state[p_c]["step"] == 12
        assert torch.equal(opt_a.state[p_a]["d"], opt_c.state[p_c]["d"])
        assert torch.equal(opt_a.state[p_a]["prev"], opt_c.state[p_c]["prev"])


def test_rng_replay_gives_both_calls_the_same_dropout_mask() -> None:
    # A dropout-like mask from the global RNG: with replay both calls of a step see the same mask and the RNG
    # advances as if the closure ran once (compared with one draw per step from the same seed); without, they differ.
    w = nn.Parameter(torch.ones(8, dtype=F64))

    def run(replay: bool) -> list[Tensor]:
        with torch.no_grad():
            w.fill_(1.0)
        opt = PStorm([w], lr=0.1, momentum=0.5, replay_rng=replay)
        masks: list[Tensor] = []

        def closure() -> float:
            mask = (torch.rand(8) > 0.5).to(F64)
            masks.append(mask)
            loss = (w * mask).square().sum()
            loss.backward()
            return loss.item()

        torch.manual_seed(123)
        for _ in range(4):
            opt.step(closure)
        masks.append(torch.rand(8))  # the next draw after the run
        return masks

    with_replay = run(True)
    assert all(torch.equal(with_replay[1 + 2 * k], with_replay[2 + 2 * k]) for k in range(3))
    torch.manual_seed(123)
    reference = [(torch.rand(8) > 0.5).to(F64) for _ in range(4)]
    assert all(torch.equal(m, r) for m, r in zip([with_replay[0], *with_replay[1:7:2]], reference, strict=True))
    assert torch.equal(with_replay[-1], torch.rand(8))
    without = run(False)
    assert not all(torch.equal(without[1 + 2 * k], without[2 + 2 * k]) for k in range(3))


def test_params_without_grad_are_skipped() -> None:
    prob = LeastSquares()
    model = Model(prob.d)
    unused = nn.Parameter(torch.tensor([1.0, -2.0], dtype=F64))
    opt = PStorm([*model.parameters(), unused], lr=0.05, momentum=0.5, prox=L1(1.0))
    for idx in prob.batches(3, 4):
        opt.step(_closure(prob, model, idx))
    assert torch.equal(unused.detach(), torch.tensor([1.0, -2.0], dtype=F64))  # not even shrunk by the L1 prox
    assert unused.grad is None
    assert unused not in opt.state


def test_missing_gradient_at_the_previous_point_raises_and_changes_nothing() -> None:
    # c takes part in the first call of each step only: the second call leaves it without a gradient.
    prob = LeastSquares()
    model = Model(prob.d)
    opt = PStorm(model.parameters(), lr=0.05, momentum=0.5)
    calls: list[int] = []

    def closure() -> float:
        calls.append(1)
        at_current = len(calls) == 1 or len(calls) % 2 == 0  # calls 1 | 2, 3 | 4, 5 ...: current, then previous
        c = model.c if at_current else model.c.detach()
        loss = prob.loss(model.w, c, None)
        loss.backward()
        return loss.item()

    opt.step(closure)
    before = _flat(model).clone()
    state_step = opt.state[model.w]["step"]
    with pytest.raises(RuntimeError, match="same graph"):
        opt.step(closure)
    assert torch.equal(_flat(model), before)
    assert opt.state[model.w]["step"] == state_step
    assert model.c.grad is not None  # restored to the first call's gradient


def test_error_in_the_second_call_restores_params_and_grads() -> None:
    # The closure raises at the previous point: params are back at x_t, p.grad is G(x_t; B_t), no state changed.
    prob = LeastSquares()
    model = Model(prob.d)
    opt = PStorm(model.parameters(), lr=0.05, momentum=0.5)
    calls: list[int] = []

    def closure() -> float:
        calls.append(1)
        if len(calls) == 3:
            raise KeyError("boom")
        loss = prob.loss(model.w, model.c, None)
        loss.backward()
        return loss.item()

    opt.step(closure)
    before = _flat(model).clone()
    gw, _ = prob.grads(model.w, model.c, None)
    d_before = opt.state[model.w]["d"].clone()
    with pytest.raises(KeyError, match="boom"):
        opt.step(closure)
    assert torch.equal(_flat(model), before)
    assert model.w.grad is not None
    assert torch.equal(model.w.grad, gw)
    assert torch.equal(opt.state[model.w]["d"], d_before)
    assert opt.state[model.w]["step"] == 1


def test_float32_params() -> None:
    w = nn.Parameter(torch.tensor([1.0, -1.0]))
    opt = PStorm([w], lr=0.1, momentum=0.5, prox=L1(0.1))

    def closure() -> float:
        loss = (w - torch.tensor([2.0, 0.0])).square().sum()
        loss.backward()
        return loss.item()

    for _ in range(60):
        opt.step(closure)
    # Minimiser of (w₁ − 2)² + w₂² + 0.1‖w‖₁ by hand: w₁ = 2 − 0.05, w₂ = 0.
    torch.testing.assert_close(w.detach(), torch.tensor([1.95, 0.0]))
    assert opt.state[w]["d"].dtype == torch.float32


# -- bad inputs -------------------------------------------------------------------------------------------
def _param() -> list[nn.Parameter]:
    return [nn.Parameter(torch.zeros(2))]


BAD_OPTIMIZERS: list[tuple[str, Callable[[], object], str]] = [
    ("lr_missing", lambda: PStorm(_param()), "lr is required"),
    ("lr_zero", lambda: PStorm(_param(), lr=0.0), "lr must be > 0"),
    ("lr_negative", lambda: PStorm(_param(), lr=-1.0), "lr must be > 0"),
    ("lr_nan", lambda: PStorm(_param(), lr=float("nan")), "lr must be a finite number"),
    ("momentum_high", lambda: PStorm(_param(), lr=0.1, momentum=1.5), "momentum must be in"),
    ("momentum_negative", lambda: PStorm(_param(), lr=0.1, momentum=-0.1), "momentum must be in"),
    ("momentum_string", lambda: PStorm(_param(), lr=0.1, momentum="adam"), "momentum must be a number"),
    ("paper_no_lipschitz", lambda: PStorm(_param(), momentum="paper"), "lipschitz is required"),
    ("lipschitz_negative", lambda: PStorm(_param(), momentum="paper", lipschitz=-1.0), "lipschitz must be > 0"),
    ("prox_type", lambda: PStorm(_param(), lr=0.1, prox="l1"), "prox must be"),  # type: ignore[arg-type]
    ("int_param", lambda: PStorm([torch.zeros(2, dtype=torch.int64)], lr=0.1), "floating-point"),
    ("replay_rng", lambda: PStorm(_param(), lr=0.1, replay_rng=1), "replay_rng"),  # type: ignore[arg-type]
    ("group_lr", lambda: PStorm([{"params": _param(), "lr": -2.0}], lr=0.1), r"lr must be > 0.*param group 0"),
    ("theta", lambda: pstorm_direction(torch.ones(1), torch.ones(1), torch.ones(1), 1.5), "theta"),
    ("shapes", lambda: pstorm_direction(torch.ones(2), torch.ones(1), torch.ones(2), 0.5), "one shape"),
    ("eta", lambda: prox_gradient_step(torch.ones(1), torch.ones(1), 0.0), "eta must be > 0"),
    ("step_shape", lambda: prox_gradient_step(torch.ones(2), torch.ones(1), 0.1), "d must have the shape"),
    ("paper_L", lambda: paper_schedule(0.0, 0), "L must be > 0"),
    ("paper_t", lambda: paper_schedule(1.0, -1), "t must be an integer"),
    ("paper_t_float", lambda: paper_schedule(1.0, 1.5), "t must be an integer"),  # type: ignore[arg-type]
    ("paper_scale", lambda: paper_schedule(1.0, 0, scale=0.0), "scale must be > 0"),
    ("const_L", lambda: constant_schedule(-1.0, 1.0, 0.1), "L must be > 0"),
    ("const_lr_scale", lambda: constant_schedule(1.0, 0.0, 0.1), "lr_scale must be > 0"),
    ("const_theta", lambda: constant_schedule(1.0, 1.0, 2.0), "theta must be in"),
]


@pytest.mark.parametrize(("name", "make", "match"), BAD_OPTIMIZERS, ids=[c[0] for c in BAD_OPTIMIZERS])
def test_bad_inputs(name: str, make: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_step_without_closure_raises() -> None:
    opt = PStorm(_param(), lr=0.1)
    with pytest.raises(ValueError, match="closure is required"):
        opt.step()


def test_bad_added_group_is_not_kept() -> None:
    opt = PStorm(_param(), lr=0.1)
    with pytest.raises(ValueError, match="momentum"):
        opt.add_param_group({"params": _param(), "momentum": 2.0})
    assert len(opt.param_groups) == 1
    assert math.isclose(opt.param_groups[0]["momentum"], 0.1)
