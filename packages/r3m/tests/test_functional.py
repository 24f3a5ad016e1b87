"""Tests of r3m.functional: the δ-step, the eliminated loss and R³M-DPO against independent computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar

from r3m.functional import r3m_delta, r3m_dpo_loss, r3m_loss, r3m_threshold

LAMS = (0.1, 0.3, 0.5, 0.75, 0.85)
D_GRID = torch.linspace(-5.0, 5.0, 41, dtype=torch.float64)


def _objective(delta: float, d: float, lam: float) -> float:
    # −logσ(d + δ) + λ|δ| written with math only.
    x = d + delta
    return math.log1p(math.exp(-x)) + lam * abs(delta) if x > -30 else -x + lam * abs(delta)


class TestDeltaStep:
    @pytest.mark.parametrize("lam", LAMS)
    def test_equals_brute_force_minimiser(self, lam: float) -> None:
        # scipy's bounded 1-D minimisation over δ ∈ [−20, 20] (no sign constraint given to it).
        got = r3m_delta(D_GRID, lam)
        for d, delta in zip(D_GRID.tolist(), got.tolist(), strict=True):
            res = minimize_scalar(lambda x, d=d: _objective(x, d, lam), bounds=(-20, 20), method="bounded",
                                  options={"xatol": 1e-10})  # fmt: skip
            best = min((res.x, 0.0), key=lambda x, d=d: _objective(x, d, lam))
            assert delta == pytest.approx(best, abs=1e-6)

    @pytest.mark.parametrize("lam", LAMS)
    def test_nonnegative_and_positive_exactly_below_the_threshold(self, lam: float) -> None:
        delta = r3m_delta(D_GRID, lam)
        assert bool((delta >= 0).all())
        assert torch.equal(delta > 0, math.log(1 / lam - 1) > D_GRID)

    def test_thresholds_of_the_papers_lambdas(self) -> None:
        # t = log(1/λ − 1): the spec's table.
        for lam, t in ((0.1, 2.197), (0.5, 0.0), (0.65, -0.619), (0.75, -1.099), (0.8, -1.386), (0.85, -1.735)):
            assert r3m_threshold(lam) == pytest.approx(t, abs=1e-3)


class TestLoss:
    def test_hand_cases(self) -> None:
        # Spec §5 item 2, worked by hand.
        cases = [(0.5, -1.0, 1.0, math.log(2) + 0.5), (0.5, 2.0, 0.0, 0.126928), (0.75, -2.0, 0.901388, 2.062335)]
        for lam, d, delta, loss in cases:
            out = r3m_loss(torch.tensor([d], dtype=torch.float64), torch.zeros(1, dtype=torch.float64), lam=lam)
            assert out.delta.item() == pytest.approx(delta, abs=1e-6)
            assert out.loss.item() == pytest.approx(loss, abs=1e-6)

    @pytest.mark.parametrize("lam", LAMS)
    def test_equals_the_closed_form_and_the_minimised_objective(self, lam: float) -> None:
        t = math.log(1 / lam - 1)
        out = r3m_loss(D_GRID, torch.zeros_like(D_GRID), lam=lam, reduction="none")
        for d, value, delta in zip(D_GRID.tolist(), out.per_pair_loss.tolist(), out.delta.tolist(), strict=True):
            closed = math.log1p(math.exp(-d)) if d >= t else math.log1p(math.exp(-t)) + lam * (t - d)
            assert value == pytest.approx(closed, abs=1e-12)
            assert value == pytest.approx(_objective(delta, d, lam), abs=1e-12)

    @pytest.mark.parametrize("lam", [0.3, 0.5, 0.8])
    def test_gradient_is_bt_weight_capped_at_lambda(self, lam: float) -> None:
        # ∂ℓ/∂d = −min(1 − σ(d), λ); gradcheck of the eliminated loss (δ moves with d) in float64.
        d = torch.tensor([-4.0, -1.3, -0.2, 0.05, 0.9, 3.0], dtype=torch.float64, requires_grad=True)
        out = r3m_loss(d, torch.zeros_like(d), lam=lam, reduction="sum")
        (grad,) = torch.autograd.grad(out.loss, d)
        assert torch.allclose(
            grad, -torch.minimum(1 - torch.sigmoid(d.detach()), torch.tensor(lam, dtype=torch.float64))
        )
        assert torch.autograd.gradcheck(lambda x: r3m_loss(x, torch.zeros_like(x), lam=lam, reduction="sum").loss, (d,))

    def test_gradient_with_delta_detached_is_the_same(self) -> None:
        # The alternating update (δ fixed, then a step on r) has the same gradient as the eliminated loss.
        d = torch.tensor([-2.0, -0.4, 0.3, 2.5], dtype=torch.float64, requires_grad=True)
        delta = r3m_delta(d, 0.6)
        alt = (-F.logsigmoid(d + delta) + 0.6 * delta).sum()
        (g_alt,) = torch.autograd.grad(alt, d)
        (g_elim,) = torch.autograd.grad(r3m_loss(d, torch.zeros_like(d), lam=0.6, reduction="sum").loss, d)
        assert torch.allclose(g_alt, g_elim, atol=1e-12)

    def test_gradient_through_the_exact_delta_is_the_same(self) -> None:
        # Envelope theorem: back-propagating through δ(d) = clamp(t − d, 0) (not detached) gives −min(1 − σ(d), λ).
        d = torch.tensor([-2.0, -0.4, 0.3, 2.5], dtype=torch.float64, requires_grad=True)
        t = math.log(1 / 0.6 - 1)
        delta = (t - d).clamp_min(0.0)
        (g,) = torch.autograd.grad((-F.logsigmoid(d + delta) + 0.6 * delta).sum(), d)
        assert torch.allclose(g, -torch.minimum(1 - torch.sigmoid(d.detach()), torch.tensor(0.6, dtype=torch.float64)))

    @pytest.mark.parametrize("lam", [0.1, 0.5, 0.85])
    def test_float32_extremes_and_the_threshold_itself(self, lam: float) -> None:
        # Margins of 1e6 .. 1e30 and d = float32(t_λ): δ is r3m_delta bit for bit, the loss is finite and
        # the gradient is −min(1 − σ(d), λ) (λ exactly below t_λ), with no rounding of d + (t_λ − d).
        t32 = torch.tensor(math.log(1 / lam - 1), dtype=torch.float32)
        d = torch.tensor([-1e30, -1e6, -37.5, 0.0, 1e6, 1e30], dtype=torch.float32)
        d = torch.cat([d, t32.reshape(1)]).requires_grad_()
        out = r3m_loss(d, torch.zeros_like(d), lam=lam, reduction="sum")
        (grad,) = torch.autograd.grad(out.loss, d)
        assert torch.equal(out.delta, r3m_delta(d, lam))
        assert bool(torch.isfinite(out.per_pair_loss).all())
        d64 = d.detach().double()
        expected = -torch.minimum(torch.sigmoid(-d64), torch.tensor(lam, dtype=torch.float64))
        torch.testing.assert_close(grad.double(), expected, atol=1e-7, rtol=1e-6)
        assert out.per_pair_loss[1].item() == pytest.approx(
            math.log1p(math.exp(-float(t32))) + lam * (float(t32) + 1e6)
        )

    def test_second_derivative_is_that_of_the_fixed_delta_step(self) -> None:
        # As documented: d²ℓ/dd² = σ(m)σ(−m) at m = max(d, t_λ), flagged pairs included (δ held fixed).
        lam = 0.7
        d = torch.tensor([-3.0, -1.0, 0.2, 2.0], dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(
            r3m_loss(d, torch.zeros_like(d), lam=lam, reduction="sum").loss, d, create_graph=True
        )
        (h,) = torch.autograd.grad(g.sum(), d)
        m = d.detach().clamp_min(math.log(1 / lam - 1))
        assert torch.allclose(h, torch.sigmoid(m) * torch.sigmoid(-m), atol=1e-12)

    def test_lambda_near_one_is_bradley_terry(self) -> None:
        out = r3m_loss(D_GRID, torch.zeros_like(D_GRID), lam=1 - 1e-9, reduction="none")
        assert torch.allclose(out.per_pair_loss, -F.logsigmoid(D_GRID), atol=1e-6)
        assert int((out.delta > 0).sum()) == 0

    def test_permutation_equivariance_and_batch_invariance(self) -> None:
        g = torch.Generator().manual_seed(0)
        c, r = torch.randn(64, generator=g), torch.randn(64, generator=g)
        full = r3m_loss(c, r, reduction="none").per_pair_loss
        perm = torch.randperm(64, generator=g)
        assert torch.allclose(r3m_loss(c[perm], r[perm], reduction="none").per_pair_loss, full[perm])
        halves = torch.stack([r3m_loss(c[:32], r[:32]).loss, r3m_loss(c[32:], r[32:]).loss]).mean()
        assert halves.item() == pytest.approx(r3m_loss(c, r).loss.item(), rel=1e-6)

    def test_bfloat16_gives_the_float32_delta(self) -> None:
        c = torch.randn(16, generator=torch.Generator().manual_seed(1))
        bf = r3m_loss(c.bfloat16(), torch.zeros(16, dtype=torch.bfloat16))
        fp = r3m_loss(c, torch.zeros(16))  # the original float32 values
        assert bf.loss.dtype == torch.float32
        assert torch.allclose(bf.delta, fp.delta, atol=1e-2)

    def test_sample_weight(self) -> None:
        c, r = torch.tensor([1.0, -1.0, 0.5]), torch.zeros(3)
        w = torch.tensor([1.0, 0.0, 3.0])
        per = r3m_loss(c, r, reduction="none").per_pair_loss
        assert r3m_loss(c, r, sample_weight=w).loss.item() == pytest.approx(((per * w).sum() / 4).item())
        assert r3m_loss(c, r, sample_weight=w, reduction="sum").loss.item() == pytest.approx((per * w).sum().item())
        assert torch.allclose(r3m_loss(c, r, sample_weight=w, reduction="none").loss, per * w)


class TestDPO:
    def test_zero_delta_equals_trl_sigmoid_formula(self) -> None:
        # λ → 1: δ ≡ 0 and the loss is TRL's sigmoid DPO −logσ(β·h), written independently.
        g = torch.Generator().manual_seed(2)
        pc, pr, rc, rr = (torch.randn(8, generator=g) * 3 for _ in range(4))
        out = r3m_dpo_loss(pc, pr, rc, rr, beta=0.3, lam=1 - 1e-9)
        h = (pc - rc) - (pr - rr)
        assert torch.allclose(out.losses, -F.logsigmoid(0.3 * h), atol=1e-6)
        assert torch.allclose(out.chosen_rewards, 0.3 * (pc - rc))
        assert torch.allclose(out.rejected_rewards, 0.3 * (pr - rr))

    def test_delta_enters_the_beta_scaled_logit(self) -> None:
        pc, pr, z0 = torch.tensor([-1.0]), torch.tensor([-5.0]), torch.zeros(1)
        out = r3m_dpo_loss(pc, pr, z0, z0, beta=0.1, lam=0.75)  # z = 0.4 ≥ t = −1.0986: no outlier
        assert out.delta.item() == 0.0
        out = r3m_dpo_loss(pr, pc, z0, z0, beta=0.1, lam=0.75)  # z = −0.4 ≥ t as well
        assert out.delta.item() == 0.0
        out = r3m_dpo_loss(pr, pc, z0, z0, beta=1.0, lam=0.75)  # z = −4 < t: δ = t − z
        assert out.delta.item() == pytest.approx(math.log(1 / 3) + 4.0, abs=1e-6)

    @pytest.mark.parametrize("lam", [0.25, 0.5, 0.8])
    def test_gradient_is_beta_times_the_capped_bt_weight(self, lam: float) -> None:
        # ∂ℓ/∂log π(y_w) = −β·min(1 − σ(z), λ) = −∂ℓ/∂log π(y_l) = −∂ℓ/∂log π_ref(y_w); gradcheck in float64,
        # z kept away from t_λ, where the eliminated loss has a kink.
        g = torch.Generator().manual_seed(5)
        beta = 0.3
        t = math.log(1 / lam - 1)
        z = torch.linspace(-6.0, 6.0, 25, dtype=torch.float64)
        z = z[(z - t).abs() > 0.05]
        pc = (z / beta + torch.randn(len(z), generator=g, dtype=torch.float64)).requires_grad_()
        rc = torch.zeros_like(z, requires_grad=True)
        pr = (pc.detach() - z / beta).requires_grad_()  # h = pc − pr = z / β
        rr = torch.zeros_like(z, requires_grad=True)
        out = r3m_dpo_loss(pc, pr, rc, rr, beta=beta, lam=lam)
        out.losses.sum().backward()
        expected = -beta * torch.minimum(1 - torch.sigmoid(z), torch.tensor(lam, dtype=torch.float64))
        assert torch.allclose(pc.grad, expected, atol=1e-12)  # type: ignore[arg-type]
        assert torch.allclose(pr.grad, -expected, atol=1e-12)  # type: ignore[arg-type]
        assert torch.allclose(rc.grad, -expected, atol=1e-12)  # type: ignore[arg-type]
        assert torch.allclose(rr.grad, expected, atol=1e-12)  # type: ignore[arg-type]
        inputs = tuple(x.detach().clone().requires_grad_() for x in (pc, pr, rc, rr))
        assert torch.autograd.gradcheck(lambda *a: r3m_dpo_loss(*a, beta=beta, lam=lam).losses, inputs)


class TestBadInput:
    def test_integer_or_non_tensor_rewards_are_named_with_their_type(self) -> None:
        with pytest.raises(
            ValueError, match=r"^chosen_rewards must be a floating-point tensor, got dtype torch.int64$"
        ):
            r3m_loss(torch.tensor([1, 2]), torch.zeros(2))
        with pytest.raises(ValueError, match=r"^rejected_rewards must be a floating-point tensor, got list$"):
            r3m_loss(torch.zeros(2), [0.0, 1.0])  # type: ignore[arg-type]

    @pytest.mark.parametrize("lam", [0.0, 1.0, 1.5, -0.2])
    def test_lambda_outside_the_open_interval(self, lam: float) -> None:
        with pytest.raises(ValueError, match="per-sample"):
            r3m_loss(torch.zeros(2), torch.zeros(2), lam=lam)

    def test_shapes_and_emptiness(self) -> None:
        with pytest.raises(ValueError, match="same shape"):
            r3m_loss(torch.zeros(2), torch.zeros(3))
        with pytest.raises(ValueError, match=r"1-D"):
            r3m_loss(torch.zeros(2, 2), torch.zeros(2, 2))
        with pytest.raises(ValueError, match="empty"):
            r3m_loss(torch.zeros(0), torch.zeros(0))

    def test_non_finite_margins(self) -> None:
        with pytest.raises(ValueError, match="finite"):
            r3m_loss(torch.tensor([math.nan]), torch.zeros(1))

    def test_finite_check_policy(self) -> None:
        # True and the default check CPU tensors; False lets NaN through as a NaN loss
        z = torch.zeros(1)
        with pytest.raises(ValueError, match="finite"):
            r3m_dpo_loss(torch.tensor([math.nan]), z, z, z, check_finite=True)
        assert math.isnan(r3m_loss(torch.tensor([math.nan]), z, check_finite=False).loss.item())
        with pytest.raises(ValueError, match="non-negative"):
            r3m_loss(torch.zeros(2), torch.zeros(2), sample_weight=torch.tensor([1.0, -1.0]))
        with pytest.raises(ValueError, match=r"^sample_weight must be a finite, non-negative tensor of shape \(2,\)"):
            r3m_loss(torch.zeros(2), torch.zeros(2), sample_weight=torch.tensor([1.0, math.inf]))
        with pytest.raises(ValueError, match=r"got list$"):
            r3m_loss(torch.zeros(2), torch.zeros(2), sample_weight=[1.0, 1.0])  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", ["0.5", True, None, 1.0])
    def test_bad_lambda_message_shows_the_value_passed(self, bad: object) -> None:
        with pytest.raises(ValueError, match=rf"^lam must be a number in the open interval \(0, 1\), got {bad!r}\."):
            r3m_threshold(bad)  # type: ignore[arg-type]

    def test_delta_of_bf16_margins_is_computed_in_float32(self) -> None:
        # t_λ at λ = .75 is −1.0986 (float32) but −1.1016 in bf16: a margin of −1.1 lies between the two, so a
        # bf16 δ-step would not flag it; in float32 it is flagged with δ = t − d, the same as r3m_loss's δ.
        d = torch.tensor([-1.1, 0.5, -3.0], dtype=torch.bfloat16)
        delta = r3m_delta(d, 0.75)
        assert delta.dtype == torch.float32
        expected = (r3m_threshold(0.75) - d.float()).clamp_min(0.0)
        assert torch.equal(delta, expected)
        assert float(delta[0]) > 0.0
        assert torch.equal(delta, r3m_loss(d, torch.zeros(3, dtype=torch.bfloat16), lam=0.75).delta)
        with pytest.raises(ValueError, match=r"^margins must be a floating tensor"):
            r3m_delta([0.0], 0.5)  # type: ignore[arg-type]

    def test_check_finite_must_be_none_or_a_bool(self) -> None:
        from r3m.nn import R3MDPOLoss, R3MLoss

        with pytest.raises(ValueError, match="check_finite"):
            r3m_loss(torch.zeros(2), torch.zeros(2), check_finite="no")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="check_finite"):
            R3MLoss(check_finite=1)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="finite"):  # the module passes it on
            R3MDPOLoss(check_finite=True)(torch.tensor([math.nan]), torch.zeros(1), torch.zeros(1), torch.zeros(1))

    def test_default_skips_the_check_off_the_cpu(self) -> None:
        # the default never reads a value back from a non-CPU device (it would sync a GPU):
        # on the meta device, where no value can be read, the losses still build their graph
        m = torch.zeros(4, device="meta", requires_grad=True)
        out = r3m_loss(m, torch.zeros(4, device="meta"), sample_weight=torch.ones(4, device="meta"))
        out.loss.backward()
        assert out.delta.device.type == "meta"
        dpo = r3m_dpo_loss(m, m, m, m)
        assert dpo.losses.shape == (4,)
        with pytest.raises(RuntimeError, match="meta"):  # asking for the check means reading the values
            r3m_loss(m, m, check_finite=True)

    def test_mixed_dtypes(self) -> None:
        with pytest.raises(ValueError, match="same dtype"):
            r3m_loss(torch.zeros(2), torch.zeros(2, dtype=torch.float64))

    def test_numpy_scalar_lambda_is_accepted(self) -> None:
        import numpy as np

        assert r3m_threshold(np.float32(0.5)) == 0.0

    def test_bad_beta(self) -> None:
        z = torch.zeros(1)
        with pytest.raises(ValueError, match="beta"):
            r3m_dpo_loss(z, z, z, z, beta=-1.0)


# Mutation audit: each test below failed to catch a deliberate change to the code it names.


def test_sample_weight_of_another_shape_is_refused_not_broadcast() -> None:
    c, r = torch.tensor([1.0, -1.0]), torch.zeros(2)
    for bad in (torch.ones(1), torch.ones(2, 1), torch.ones(3)):
        with pytest.raises(ValueError, match=r"sample_weight must be a finite, non-negative tensor of shape \(2,\)"):
            r3m_loss(c, r, sample_weight=bad)


def test_all_zero_weights_give_a_zero_mean_not_nan() -> None:
    # the weighted mean Σwℓ / Σw with Σw = 0 is 0 / tiny = 0 (no pair counts), and its gradient is 0
    c = torch.tensor([1.0, -1.0], requires_grad=True)
    out = r3m_loss(c, torch.zeros(2), sample_weight=torch.zeros(2))
    assert out.loss.item() == 0.0
    out.loss.backward()
    assert c.grad is not None
    assert c.grad.tolist() == [0.0, 0.0]


def test_dpo_bf16_logps_are_computed_in_float32() -> None:
    # z = β(h_w − h_l) from bf16 log-probs: upcast first, as in the reward form (bf16 keeps 8 significant bits:
    # a difference of two log-probs near −100 would be rounded to 1/2 and shift δ across t_λ)
    pc = torch.tensor([-10.0625, -3.0], dtype=torch.bfloat16)
    pr = torch.tensor([-10.0, -2.5], dtype=torch.bfloat16)
    rc = torch.tensor([-10.0, -2.75], dtype=torch.bfloat16)
    rr = torch.tensor([-10.0625, -2.0], dtype=torch.bfloat16)
    out = r3m_dpo_loss(pc, pr, rc, rr, beta=1.0, lam=0.5)
    ref = r3m_dpo_loss(pc.float(), pr.float(), rc.float(), rr.float(), beta=1.0, lam=0.5)
    assert out.losses.dtype == torch.float32
    assert out.delta.dtype == torch.float32
    torch.testing.assert_close(out.losses, ref.losses, rtol=0, atol=0)
    # by hand: z = (−10.0625 + 10) − (−10 + 10.0625) = −0.125; z = (−3 + 2.75) − (−2.5 + 2) = 0.25
    assert out.delta.tolist() == [0.125, 0.0]
    # near −100 a bf16 difference is rounded to a multiple of 1/2: h_w = −100.5 − (−2⁻⁸) would be −100.5, z = 0,
    # below t_λ = 2⁻⁹ (flagged); in float32 z = 2⁻⁸ > t_λ (not flagged)
    near = torch.tensor([-100.5], dtype=torch.bfloat16)
    tiny = torch.tensor([-(2.0**-8)], dtype=torch.bfloat16)
    lam = 1.0 / (1.0 + math.exp(2.0**-9))
    assert r3m_dpo_loss(near, near, tiny, torch.zeros(1, dtype=torch.bfloat16), beta=1.0, lam=lam).delta.item() == 0.0


def test_dpo_reference_free_ignores_the_reference() -> None:
    pc, pr = torch.tensor([-1.0, -4.0]), torch.tensor([-2.0, -1.0])
    far = torch.tensor([-50.0, 7.0])
    free = r3m_dpo_loss(pc, pr, far, -far, beta=0.5, reference_free=True)
    zero = r3m_dpo_loss(pc, pr, torch.zeros(2), torch.zeros(2), beta=0.5)
    torch.testing.assert_close(free.losses, zero.losses, rtol=0, atol=0)
    assert free.delta.tolist() == [0.0, 1.5]  # z = 0.5·(−1 + 2) = 0.5 ≥ 0; z = 0.5·(−4 + 1) = −1.5 → δ = 1.5


def test_dpo_reference_of_another_shape_is_refused() -> None:
    p = torch.zeros(3)
    with pytest.raises(ValueError, match=r"ref_chosen_logps must have the shape of policy_chosen_logps \(3,\)"):
        r3m_dpo_loss(p, p, torch.zeros(2), torch.zeros(2))


def test_small_lam_warning_starts_below_the_documented_bound() -> None:
    import warnings

    from r3m.functional import SMALL_LAM, check_lam

    assert SMALL_LAM == 0.05  # the documented bound: the paper's experiments use 0.1..0.9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_lam(0.05)  # at the bound: no warning
    with pytest.warns(UserWarning, match="flags every pair"):
        check_lam(0.0499)
