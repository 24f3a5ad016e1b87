"""Tests of :mod:`stoc_ialm.prox`: closed forms, optimality, brute-force minimisation, stationarity, errors."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import optimize

from stoc_ialm.prox import L1, Box, ElasticNet, GroupL1, L2Ball, L2Sq, NonNeg, Regularizer, Sum, Zero

F64 = torch.float64


def vec(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# -- closed forms against hand tables ---------------------------------------------------------------
class TestClosedForms:
    def test_l1_soft_threshold_hand_table(self) -> None:
        # By hand, tλ = 0.5 * 2 = 1: v -> sign(v) max(|v| - 1, 0).
        v = vec(3.0, 1.0, 0.5, 0.0, -0.999, -1.0, -2.5)
        expected = vec(2.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.5)
        assert torch.equal(L1(2.0).prox(v, 0.5), expected)

    def test_l1_lam_zero_is_identity(self) -> None:
        v = torch.randn(6, dtype=F64, generator=torch.Generator().manual_seed(0))
        assert torch.equal(L1(0.0).prox(v, 3.0), v)

    def test_group_l1_block_shrink_by_hand(self) -> None:
        # Group {0,1}: ‖(3,4)‖ = 5 > tλ = 1, scale 1 - 1/5 = 0.8 -> (2.4, 3.2); group {2,3}: ‖(0.6,0.8)‖ = 1 <= 1 -> 0;
        # coordinate 4 is in no group and passes through.
        v = vec(3.0, 4.0, 0.6, 0.8, 5.0)
        p = GroupL1(1.0, [[0, 1], range(2, 4)]).prox(v, 1.0)
        torch.testing.assert_close(p, vec(2.4, 3.2, 0.0, 0.0, 5.0), rtol=0, atol=1e-15)

    def test_group_l1_weights_and_tensor_groups(self) -> None:
        # Weight 2 on group {1,3}: tλw = 0.5*1*2 = 1; ‖(0, 2)‖ = 2 -> scale 1/2; group {0} w=1: |−3| − 0.5 = 2.5.
        v = vec(-3.0, 0.0, 7.0, 2.0)
        h = GroupL1(1.0, [torch.tensor([0]), torch.tensor([1, 3])], weights=[1.0, 2.0])
        torch.testing.assert_close(h.prox(v, 0.5), vec(-2.5, 0.0, 7.0, 1.0), rtol=0, atol=1e-15)
        assert h.value(vec(-3.0, 0.0, 7.0, 2.0)) == pytest.approx(1.0 * 3.0 + 2.0 * 2.0)

    def test_box_projection(self) -> None:
        # Clipping by hand, with tensor bounds and an infinite one.
        v = vec(-5.0, 0.5, 5.0, -5.0)
        lo, hi = vec(-1.0, 0.0, 0.0, -math.inf), vec(1.0, 1.0, 2.0, 0.0)
        assert torch.equal(Box(lo, hi).prox(v, 7.0), vec(-1.0, 0.5, 2.0, -5.0))
        assert torch.equal(Box(-1.0, 1.0).prox(v, 0.1), vec(-1.0, 0.5, 1.0, -1.0))

    def test_nonneg_projection(self) -> None:
        assert torch.equal(NonNeg().prox(vec(-2.0, 0.0, 3.0), 1.0), vec(0.0, 0.0, 3.0))

    def test_l2sq_shrink(self) -> None:
        # h = λ‖x‖² with λ = 0.75, t = 2: prox = v / (1 + 2tλ) = v / 4.
        v = vec(4.0, -8.0, 1.0)
        assert torch.equal(L2Sq(0.75).prox(v, 2.0), v / 4.0)

    def test_l2_ball_projection(self) -> None:
        # ‖(3, 4)‖ = 5 > R = 2.5 -> (1.5, 2); a point inside is unchanged.
        torch.testing.assert_close(L2Ball(2.5).prox(vec(3.0, 4.0), 1.0), vec(1.5, 2.0), rtol=0, atol=1e-15)
        assert torch.equal(L2Ball(2.5).prox(vec(1.0, 1.0), 1.0), vec(1.0, 1.0))

    def test_elastic_net_closed_form(self) -> None:
        # t = 1, λ₁ = 1, λ₂ = 0.5: soft(v, 1) / (1 + 1) by hand.
        v = vec(3.0, -0.5, -5.0)
        assert torch.equal(ElasticNet(1.0, 0.5).prox(v, 1.0), vec(1.0, 0.0, -2.0))

    def test_zero_is_identity_and_a_copy(self) -> None:
        v = vec(1.0, -2.0)
        p = Zero().prox(v, 1.0)
        assert torch.equal(p, v)
        assert p.data_ptr() != v.data_ptr()

    def test_sum_with_nonneg_on_a_block(self) -> None:
        # x_ext = [x, s]: L1(1) on x (coordinates 0..2), NonNeg on the slack s (3..4), by hand.
        h = Sum([(slice(0, 3), L1(1.0)), (torch.tensor([3, 4]), NonNeg())])
        v = vec(3.0, -0.5, -2.0, -1.0, 2.0)
        assert torch.equal(h.prox(v, 1.0), vec(2.0, 0.0, -1.0, 0.0, 2.0))
        assert h.value(vec(2.0, 0.0, -1.0, 0.0, 2.0)) == 3.0
        assert h.value(vec(2.0, 0.0, -1.0, -0.1, 2.0)) == math.inf

    def test_sum_leaves_uncovered_coordinates_free(self) -> None:
        h = Sum([([1], L1(1.0))])
        assert torch.equal(h.prox(vec(-5.0, 3.0, 7.0), 1.0), vec(-5.0, 2.0, 7.0))

    def test_moreau_decomposition_l1(self) -> None:
        # v = prox_{t λ‖·‖₁}(v) + t proj_{‖·‖∞ ≤ λ}(v / t) (Moreau, with the dual ball as a Box projection).
        gen = torch.Generator().manual_seed(1)
        v = 3.0 * torch.randn(50, dtype=F64, generator=gen)
        lam, t = 0.7, 1.3
        recon = L1(lam).prox(v, t) + t * torch.clamp(v / t, -lam, lam)
        torch.testing.assert_close(recon, v, rtol=0, atol=1e-14)
        recon_box = L1(lam).prox(v, t) + t * Box(-lam, lam).prox(v / t, 1.0)
        torch.testing.assert_close(recon_box, v, rtol=0, atol=1e-14)


# -- optimality: (v − p)/t ∈ ∂h(p), checked coordinatewise by hand-written subdifferentials --------------
TOL = 1e-12


def _in_l1_subdiff(p: torch.Tensor, s: torch.Tensor, lam: float) -> bool:
    nz = p != 0
    ok_nz = (s[nz] - lam * torch.sign(p[nz])).abs() <= TOL
    ok_z = s[~nz].abs() <= lam + TOL
    return bool(ok_nz.all() and ok_z.all())


def _in_box_normal_cone(p: torch.Tensor, s: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> bool:
    inside = bool(((p >= lo) & (p <= hi)).all())
    interior = (p > lo) & (p < hi)
    at_lo_only = (p == lo) & (p < hi)
    at_hi_only = (p == hi) & (p > lo)
    return (
        inside
        and bool((s[interior].abs() <= TOL).all())
        and bool((s[at_lo_only] <= TOL).all())
        and bool((s[at_hi_only] >= -TOL).all())
    )


def _subdiff_check(h: Regularizer, p: torch.Tensor, s: torch.Tensor) -> bool:
    """Whether ``s ∈ ∂h(p)``, written out per class from the textbook subdifferentials."""
    if isinstance(h, Zero):
        return bool((s.abs() <= TOL).all())
    if isinstance(h, L1):
        return _in_l1_subdiff(p, s, h.lam)
    if isinstance(h, L2Sq):
        return bool(((s - 2 * h.lam * p).abs() <= TOL).all())
    if isinstance(h, ElasticNet):
        return _in_l1_subdiff(p, s - 2 * h.l2 * p, h.l1)
    if isinstance(h, GroupL1):
        covered = torch.zeros(p.numel(), dtype=torch.bool)
        for grp, w in zip(h.groups, h.weights, strict=True):
            covered[grp] = True
            pg, sg = p[grp], s[grp]
            n = float(pg.norm())
            if n > 0:
                if not bool(((sg - h.lam * w * pg / n).abs() <= TOL).all()):
                    return False
            elif float(sg.norm()) > h.lam * w + TOL:
                return False
        return bool((s[~covered].abs() <= TOL).all())
    if isinstance(h, Box):
        lo = h.lower if isinstance(h.lower, torch.Tensor) else torch.full_like(p, h.lower)
        hi = h.upper if isinstance(h.upper, torch.Tensor) else torch.full_like(p, h.upper)
        return _in_box_normal_cone(p, s, lo.to(p), hi.to(p))
    if isinstance(h, L2Ball):
        n = float(p.norm())
        if n < h.radius * (1 - 1e-12):
            return bool((s.abs() <= TOL).all())
        alpha = float(s @ p) / n**2  # s must be α p with α >= 0
        return alpha >= -TOL and bool(((s - alpha * p).abs() <= 1e-10).all())
    if isinstance(h, Sum):
        covered = torch.zeros(p.numel(), dtype=torch.bool)
        for idx, reg in h.blocks:
            covered[idx] = True
            if not _subdiff_check(reg, p[idx], s[idx]):
                return False
        return bool((s[~covered].abs() <= TOL).all())
    raise AssertionError(f"no subdifferential written for {h!r}")


CASES: list[tuple[str, Regularizer]] = [
    ("zero", Zero()),
    ("l1", L1(0.8)),
    ("l2sq", L2Sq(0.6)),
    ("elastic_net", ElasticNet(0.5, 0.3)),
    ("group_l1", GroupL1(1.1, [[0, 1], [2, 3, 4]], weights=[1.0, 0.5])),
    ("box", Box(vec(-1.0, -0.5, 0.0, -2.0, -math.inf, 0.2), vec(1.0, 0.5, 0.0, 0.3, 0.4, 5.0))),
    ("nonneg", NonNeg()),
    ("l2ball", L2Ball(1.5)),
    ("sum", Sum([(slice(0, 2), NonNeg()), ([2, 3, 4], L1(0.9)), ([5], L2Sq(0.4))])),
]


def _points(seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    pts = [1.5 * torch.randn(6, dtype=F64, generator=gen) for _ in range(6)]
    pts.append(0.05 * torch.randn(6, dtype=F64, generator=gen))  # small: many coordinates thresholded to 0
    return pts


@pytest.mark.parametrize(("name", "h"), CASES, ids=[c[0] for c in CASES])
def test_prox_optimality_condition(name: str, h: Regularizer) -> None:
    # (v − p)/t ∈ ∂h(p), coordinatewise from the hand-written subdifferential; the stationarity measure of
    # the prox objective's smooth part, g = (p − v)/t, is then 0 too.
    for t in (0.3, 1.0, 2.5):
        for v in _points(7):
            p = h.prox(v, t)
            s = (v - p) / t
            assert _subdiff_check(h, p, s), (name, t, v, p)
            assert h.stationarity(p, -s) <= 1e-12


# -- brute force: scipy on the prox objective, reformulated smoothly per class -------------------------
def _brute_force(h: Regularizer, v: np.ndarray, t: float) -> np.ndarray:
    """``argmin_u h(u) + ‖u − v‖²/(2t)`` by scipy, from smooth reformulations (split, epigraph, bounds)."""
    n = v.size
    opts = {"ftol": 1e-15, "gtol": 1e-13, "maxiter": 10_000}

    def quad(u: np.ndarray) -> tuple[float, np.ndarray]:
        return float(((u - v) ** 2).sum() / (2 * t)), (u - v) / t

    if isinstance(h, (Zero, L2Sq)):
        lam = h.lam if isinstance(h, L2Sq) else 0.0

        def fun(u: np.ndarray) -> tuple[float, np.ndarray]:
            q, dq = quad(u)
            return q + lam * float(u @ u), dq + 2 * lam * u

        return np.asarray(optimize.minimize(fun, np.zeros(n), jac=True, method="BFGS", options={"gtol": 1e-12}).x)
    if isinstance(h, (L1, ElasticNet)):
        l1, l2 = (h.lam, 0.0) if isinstance(h, L1) else (h.l1, h.l2)

        def split(z: np.ndarray) -> tuple[float, np.ndarray]:  # u = a − b, a, b >= 0
            a, b = z[:n], z[n:]
            u = a - b
            q, dq = quad(u)
            du = dq + 2 * l2 * u
            return q + l1 * float(a.sum() + b.sum()) + l2 * float(u @ u), np.concatenate([du + l1, -du + l1])

        res = optimize.minimize(
            split, np.ones(2 * n), jac=True, method="L-BFGS-B", bounds=[(0, None)] * (2 * n), options=opts
        )
        return np.asarray(res.x[:n] - res.x[n:])
    if isinstance(h, GroupL1):
        groups = [g.numpy() for g in h.groups]
        k = len(groups)

        def epi(z: np.ndarray) -> float:  # variables (u, s), s_g >= ‖u_g‖
            return quad(z[:n])[0] + h.lam * float(np.dot(h.weights, z[n:]))

        cons = [
            {"type": "ineq", "fun": (lambda z, g=g, i=i: z[n + i] ** 2 - float((z[g] ** 2).sum()))}
            for i, g in enumerate(groups)
        ]
        z0 = np.concatenate([v, [np.linalg.norm(v[g]) + 1 for g in groups]])
        bounds = [(None, None)] * n + [(0, None)] * k
        res = optimize.minimize(
            epi, z0, method="SLSQP", bounds=bounds, constraints=cons, options={"ftol": 1e-15, "maxiter": 1000}
        )
        return np.asarray(res.x[:n])
    if isinstance(h, Box):
        lo = h.lower.numpy() if isinstance(h.lower, torch.Tensor) else np.full(n, h.lower)
        hi = h.upper.numpy() if isinstance(h.upper, torch.Tensor) else np.full(n, h.upper)
        bounds = [(None if math.isinf(a) else a, None if math.isinf(b) else b) for a, b in zip(lo, hi, strict=True)]
        x0 = np.clip(np.zeros(n), lo, hi)
        return np.asarray(optimize.minimize(quad, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=opts).x)
    if isinstance(h, L2Ball):
        con = {"type": "ineq", "fun": lambda u: h.radius**2 - float(u @ u), "jac": lambda u: -2 * u}
        res = optimize.minimize(quad, np.zeros(n), jac=True, method="SLSQP", constraints=[con], options={"ftol": 1e-15})
        return np.asarray(res.x)
    if isinstance(h, Sum):
        out = v.copy()  # free coordinates: u_j = v_j
        for idx, reg in h.blocks:  # the prox objective separates over the blocks by construction
            out[idx.numpy()] = _brute_force(reg, v[idx.numpy()], t)
        return out
    raise AssertionError(f"no brute force for {h!r}")


def _prox_objective(h: Regularizer, u: torch.Tensor, v: torch.Tensor, t: float) -> float:
    return h.value(u) + float(((u - v) ** 2).sum()) / (2 * t)


@pytest.mark.parametrize(("name", "h"), CASES, ids=[c[0] for c in CASES])
def test_prox_matches_brute_force_minimisation(name: str, h: Regularizer) -> None:
    # scipy's minimiser of the same objective: ours is no worse in value and within 1e-5 (strong convexity:
    # ‖u − p‖² ≤ 2t (Φ(u) − Φ(p))).
    for t in (0.4, 1.7):
        for v in _points(11)[:4]:
            p = h.prox(v, t)
            u = torch.from_numpy(_brute_force(h, v.numpy(), t))
            phi_u = _prox_objective(h, u, v, t)
            assert _prox_objective(h, p, v, t) <= phi_u + 1e-10, name
            assert float((p - u).norm()) <= 1e-5, (name, p, u)


def test_l2_ball_projection_counts_as_inside_despite_rounding() -> None:
    # A projected float32 vector of a million entries is on the sphere up to rounding; value 0, finite stationarity.
    gen = torch.Generator().manual_seed(3)
    v = 10.0 * torch.randn(1_000_000, generator=gen)
    p = L2Ball(1.0).prox(v, 1.0)
    assert L2Ball(1.0).value(p) == 0.0
    assert math.isfinite(L2Ball(1.0).stationarity(p, v))


# -- stationarity: 0 at known minimisers, hand values elsewhere -----------------------------------------
class TestStationarity:
    def test_zero_at_minimiser_of_shifted_quadratic_l1(self) -> None:
        # min ½‖x − c‖² + ‖x‖₁ with c = (3, 0.5, −2): x* = (2, 0, −1) by hand; g = x* − c.
        c, x = vec(3.0, 0.5, -2.0), vec(2.0, 0.0, -1.0)
        assert L1(1.0).stationarity(x, x - c) == 0.0

    def test_l1_hand_value_at_perturbed_point(self) -> None:
        # λ = 1: coordinate by coordinate |0.5 + 1| = 1.5, max(0.3 − 1, 0) = 0, max(2 − 1, 0) = 1, |1 − 1| = 0.
        x, g = vec(1.0, 0.0, 0.0, -2.0), vec(0.5, 0.3, -2.0, 1.0)
        assert L1(1.0).stationarity(x, g) == pytest.approx(math.sqrt(1.5**2 + 1.0))

    def test_zero_is_gradient_norm(self) -> None:
        assert Zero().stationarity(vec(5.0, 6.0), vec(3.0, 4.0)) == 5.0

    def test_l2sq(self) -> None:
        # λ = 0.5: ‖g + 2λx‖ = ‖(1, 1) + (2, −1)‖ = ‖(3, 0)‖; at x = −g/(2λ) it is 0.
        assert L2Sq(0.5).stationarity(vec(2.0, -1.0), vec(1.0, 1.0)) == 3.0
        assert L2Sq(0.5).stationarity(vec(-1.0, -1.0), vec(1.0, 1.0)) == 0.0

    def test_elastic_net(self) -> None:
        # l1 = 1, l2 = 0.5: g' = g + x = (1.5, 0.3) at x = (1, 0): |1.5 + 1| = 2.5, max(0.3 − 1, 0) = 0.
        assert ElasticNet(1.0, 0.5).stationarity(vec(1.0, 0.0), vec(0.5, 0.3)) == 2.5

    def test_group_l1(self) -> None:
        # λ = 1; group {0,1} at x = (3, 4): g + x/5 = (0.6, 0.8) + (0.6, 0.8) -> norm 2;
        # group {2,3} at 0 with ‖g‖ = ‖(3, 4)‖ = 5 -> 5 − 1 = 4; free coordinate 4: |g| = 1. Total √(4 + 16 + 1).
        h = GroupL1(1.0, [[0, 1], [2, 3]])
        x, g = vec(3.0, 4.0, 0.0, 0.0, 9.0), vec(0.6, 0.8, 3.0, 4.0, -1.0)
        assert h.stationarity(x, g) == pytest.approx(math.sqrt(21.0))
        # Known minimiser: g = −λ x_G/‖x_G‖ on the nonzero group, ‖g_G‖ ≤ λ on the zero one, 0 elsewhere.
        assert h.stationarity(x, vec(-0.6, -0.8, 0.3, -0.4, 0.0)) == pytest.approx(0.0, abs=1e-15)

    def test_box_and_nonneg(self) -> None:
        # Box [0, 1], x = (0, 1, 0.5, 0): at the lower bound N = (−∞, 0], g = −2 -> 2; at the upper bound
        # N = [0, ∞), g = −1 -> 0; interior g = 0.5 -> 0.5; at the lower bound g = 3 -> 0. Total √(4 + 0.25).
        h = Box(0.0, 1.0)
        x, g = vec(0.0, 1.0, 0.5, 0.0), vec(-2.0, -1.0, 0.5, 3.0)
        assert h.stationarity(x, g) == pytest.approx(math.sqrt(4.25))
        assert h.stationarity(vec(0.0, 1.0), vec(1.0, -1.0)) == 0.0  # min of x₁ − x₂ on the box: (0, 1)
        assert h.stationarity(vec(1.5, 0.0), vec(0.0, 0.0)) == math.inf  # outside
        assert NonNeg().stationarity(vec(0.0, 2.0), vec(-1.0, 0.5)) == pytest.approx(math.sqrt(1.25))
        assert Box(vec(0.0), vec(0.0)).stationarity(vec(0.0), vec(7.0)) == 0.0  # l = u: N = R

    def test_l2_ball(self) -> None:
        # R = 5, x = (3, 4) on the sphere, g = (−3, 1): α = max(0, −gᵀx/25) = 5/25 = 0.2,
        # g + αx = (−2.4, 1.8) -> 3. Interior: ‖g‖. At the minimiser of −(3,4)ᵀx on the ball, x = (3,4): 0.
        h = L2Ball(5.0)
        assert h.stationarity(vec(3.0, 4.0), vec(-3.0, 1.0)) == pytest.approx(3.0)
        assert h.stationarity(vec(0.3, 0.4), vec(-3.0, 1.0)) == pytest.approx(math.sqrt(10.0))
        assert h.stationarity(vec(3.0, 4.0), vec(-3.0, -4.0)) == pytest.approx(0.0, abs=1e-15)
        assert h.stationarity(vec(30.0, 40.0), vec(0.0, 0.0)) == math.inf

    def test_sum_with_nonneg_slack(self) -> None:
        # L1(1) on x = (1,), NonNeg on s = (0, 2): |0.5 + 1| = 1.5; s₀ = 0 with g = −1 -> 1; s₁ > 0 with g = 0 -> 0;
        # free coordinate 3 with g = 2 -> 2. Total √(2.25 + 1 + 4).
        h = Sum([([0], L1(1.0)), ([1, 2], NonNeg())])
        x, g = vec(1.0, 0.0, 2.0, 9.0), vec(0.5, -1.0, 0.0, 2.0)
        assert h.stationarity(x, g) == pytest.approx(math.sqrt(7.25))
        assert h.exact_stationarity

    def test_gradient_mapping_fallback_for_a_user_subclass(self) -> None:
        # A subclass with only _prox/_value (here L1's) gets ‖x − prox_h(x − g)‖, by hand: x = (1, 0), g = (0.5, 3),
        # x − g = (0.5, −3) -> soft(·, 1) = (0, −2) -> ‖(1, 2)‖ = √5; the exact distance would be √(1.5² + 2²).
        class MyL1(Regularizer):
            def _prox(self, v: torch.Tensor, t: float) -> torch.Tensor:
                return L1(1.0).prox(v, t)

            def _value(self, x: torch.Tensor) -> float:
                return float(x.abs().sum())

        h = MyL1()
        assert not h.exact_stationarity
        assert h.stationarity(vec(1.0, 0.0), vec(0.5, 3.0)) == pytest.approx(math.sqrt(5.0))
        assert not Sum([([0, 1], h)]).exact_stationarity

    def test_values(self) -> None:
        # Hand values of h.
        x = vec(3.0, -4.0)
        assert L1(0.5).value(x) == 3.5
        assert L2Sq(0.5).value(x) == 12.5
        assert ElasticNet(1.0, 2.0).value(x) == 7.0 + 50.0
        assert GroupL1(2.0, [[0, 1]]).value(x) == 10.0
        assert L2Ball(5.0).value(x) == 0.0
        assert L2Ball(4.9).value(x) == math.inf
        assert Box(-4.0, 3.0).value(x) == 0.0
        assert NonNeg().value(x) == math.inf
        assert Zero().value(x) == 0.0


# -- bad inputs -------------------------------------------------------------------------------------------
BAD_CONSTRUCTORS: list[tuple[str, Callable[[], object], str]] = [
    ("l1_negative", lambda: L1(-0.1), "lam"),
    ("l1_nan", lambda: L1(float("nan")), "lam"),
    ("l1_bool", lambda: L1(True), "lam"),
    ("l2sq_negative", lambda: L2Sq(-1.0), "lam"),
    ("enet_l1", lambda: ElasticNet(-1.0, 0.0), "l1"),
    ("enet_l2", lambda: ElasticNet(0.0, -1.0), "l2"),
    ("group_lam", lambda: GroupL1(-1.0, [[0]]), "lam"),
    ("group_empty_list", lambda: GroupL1(1.0, []), "groups"),
    ("group_empty_group", lambda: GroupL1(1.0, [[0], []]), r"groups\[1\]"),
    ("group_overlap", lambda: GroupL1(1.0, [[0, 1], [1, 2]]), "disjoint"),
    ("group_repeat", lambda: GroupL1(1.0, [[0, 0]]), "repeats"),
    ("group_negative", lambda: GroupL1(1.0, [[-1]]), "non-negative"),
    ("group_float_tensor", lambda: GroupL1(1.0, [torch.tensor([0.0])]), "integer tensor"),
    ("group_open_slice", lambda: GroupL1(1.0, [slice(2, None)]), "stop"),
    ("group_weights_len", lambda: GroupL1(1.0, [[0], [1]], weights=[1.0]), "weights"),
    ("group_weights_neg", lambda: GroupL1(1.0, [[0]], weights=[-1.0]), r"weights\[0\]"),
    ("box_order", lambda: Box(1.0, 0.0), "lower must be <= upper"),
    ("box_order_tensor", lambda: Box(vec(0.0, 2.0), vec(1.0, 1.0)), "lower must be <= upper"),
    ("box_shapes", lambda: Box(vec(0.0, 0.0), vec(1.0, 1.0, 1.0)), "same shape"),
    ("box_nan", lambda: Box(float("nan"), 1.0), "lower"),
    ("box_lower_inf", lambda: Box(math.inf, math.inf), "lower must be < \\+inf"),
    ("box_2d", lambda: Box(torch.zeros(2, 2, dtype=F64), 1.0), "lower"),
    ("ball_zero", lambda: L2Ball(0.0), "radius"),
    ("ball_negative", lambda: L2Ball(-1.0), "radius"),
    ("sum_empty", lambda: Sum([]), "blocks"),
    ("sum_not_pair", lambda: Sum([(slice(0, 1),)]), r"blocks\[0\]"),  # type: ignore[list-item]
    ("sum_not_regularizer", lambda: Sum([(slice(0, 1), "l1")]), r"blocks\[0\]\[1\]"),  # type: ignore[list-item]
    ("sum_overlap", lambda: Sum([(slice(0, 2), L1(1.0)), ([1], NonNeg())]), "disjoint"),
]


@pytest.mark.parametrize(("name", "make", "match"), BAD_CONSTRUCTORS, ids=[c[0] for c in BAD_CONSTRUCTORS])
def test_bad_constructor_arguments(name: str, make: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("t", [0.0, -1.0, float("inf"), float("nan")])
def test_prox_bad_step(t: float) -> None:
    with pytest.raises(ValueError, match="t must be"):
        L1(1.0).prox(vec(1.0), t)


def test_bad_vectors() -> None:
    with pytest.raises(ValueError, match="v must be a 1-D floating-point tensor"):
        L1(1.0).prox(torch.ones(2, 2, dtype=F64), 1.0)
    with pytest.raises(ValueError, match="v must be a 1-D floating-point tensor"):
        L1(1.0).prox(torch.tensor([1, 2]), 1.0)
    with pytest.raises(ValueError, match=r"v must be a torch\.Tensor"):
        L1(1.0).prox([1.0, 2.0], 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="g must have the shape of x"):
        L1(1.0).stationarity(vec(1.0, 2.0), vec(1.0))
    with pytest.raises(ValueError, match="groups index coordinate 3"):
        GroupL1(1.0, [[0, 3]]).prox(vec(1.0, 2.0), 1.0)
    with pytest.raises(ValueError, match="lower has length 2"):
        Box(vec(0.0, 0.0), 1.0).prox(vec(1.0, 2.0, 3.0), 1.0)
    with pytest.raises(ValueError, match=r"blocks\[0\]: lower has length 2"):
        Sum([([0, 1, 2], Box(vec(0.0, 0.0), 1.0))]).prox(vec(1.0, 2.0, 3.0), 1.0)
    with pytest.raises(ValueError, match="blocks index coordinate 4"):
        Sum([([4], L1(1.0))]).value(vec(1.0, 2.0))


def test_float32_and_repr() -> None:
    # dtype is kept; reprs name the hyperparameters (the optimizer stores them in its state_dict).
    v = torch.tensor([3.0, -0.5], dtype=torch.float32)
    assert L1(1.0).prox(v, 1.0).dtype == torch.float32
    assert Box(vec(0.0, 0.0), vec(1.0, 1.0)).prox(v, 1.0).dtype == torch.float32
    assert repr(L1(0.5)) == "L1(lam=0.5)"
    assert repr(Sum([(slice(0, 2), NonNeg())])) == "Sum([([0, 1], NonNeg())])"
    assert repr(Box(0.0, vec(1.0, 2.0))) == "Box(lower=0.0, upper=[1.0, 2.0])"
