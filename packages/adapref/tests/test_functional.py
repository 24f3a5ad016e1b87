"""Tests of adapref.functional: the reward-model loss and Ada-DPO against independent computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from adapref.functional import ada_dpo_loss, adaptive_preference_loss
from adapref.scaling import LOG2, optimal_u


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class TestRewardModelLoss:
    def test_hand_case(self) -> None:
        # Spec's hand check: ρ0 = 0.1, d = 2, τ_max = 4: τ* = 2.119895, ℓ = −0.560411 = −(1 − σ(u*))·2.
        out = adaptive_preference_loss(torch.tensor([2.0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64),
                                       rho0=0.1, tau0=0.1, tau_max=4.0)  # fmt: skip
        assert out.tau.item() == pytest.approx(2.119895, abs=1e-6)
        assert out.loss.item() == pytest.approx(-0.560411, abs=1e-6)
        assert out.loss.item() == pytest.approx(-(1 - _sig(optimal_u(0.1))) * 2.0, abs=1e-12)

    def test_envelope_is_linear_in_the_interior(self) -> None:
        # Closed form of the spec: for τ0u* ≤ |d| ≤ τ_max u*, ℓ* = −(1−σ(u*))d (d > 0) and −σ(u*)d (d < 0).
        u = optimal_u(0.1)
        d = torch.tensor([-3.0, -1.0, -0.2, 0.2, 1.0, 3.0], dtype=torch.float64)
        out = adaptive_preference_loss(d, torch.zeros_like(d), rho0=0.1, tau0=0.1, tau_max=4.0, reduction="none")
        expected = [(-(1 - _sig(u)) * x if x > 0 else -_sig(u) * x) for x in d.tolist()]
        assert out.per_pair_loss.tolist() == pytest.approx(expected, abs=1e-12)

    def test_gradient_is_one_minus_sigmoid_of_scaled_margin(self) -> None:
        # ∂ℓ/∂d = −(1 − σ(d/τ*)) with τ* detached; by the envelope theorem this is also the derivative
        # of the minimised loss, so finite differences (gradcheck) agree although τ* moves with d.
        def envelope(chosen: torch.Tensor) -> torch.Tensor:
            return adaptive_preference_loss(chosen, torch.zeros_like(chosen), rho0=0.3, tau0=0.1, tau_max=3.0,
                                            reduction="sum").loss  # fmt: skip

        chosen = torch.tensor([-7.0, -1.3, -0.05, 0.01, 0.4, 2.5, 9.0], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(envelope, (chosen,), eps=1e-7, atol=1e-6)
        out = adaptive_preference_loss(
            chosen, torch.zeros_like(chosen), rho0=0.3, tau0=0.1, tau_max=3.0, reduction="sum"
        )
        (grad,) = torch.autograd.grad(out.loss, chosen)
        assert torch.allclose(grad, -(1 - torch.sigmoid(chosen.detach() / out.tau)), atol=1e-12)

    def test_reduces_to_bradley_terry_when_tau_is_fixed_at_one(self) -> None:
        # τ0 = τ_max = 1: ℓ = −logσ(d) + (ρ0 − log 2), BT cross-entropy up to a constant.
        d = torch.linspace(-6, 6, 25, dtype=torch.float64)
        out = adaptive_preference_loss(d, torch.zeros_like(d), rho0=0.1, tau0=1.0, tau_max=1.0, reduction="none")
        assert torch.allclose(out.per_pair_loss - (0.1 - LOG2), -F.logsigmoid(d), atol=1e-12)

    def test_quadratic_penalty_value(self) -> None:
        d = torch.tensor([1.7], dtype=torch.float64)
        out = adaptive_preference_loss(d, torch.zeros_like(d), rho0=0.2, quadratic=True)
        t = out.tau.item()
        expected = -t * math.log(_sig(1.7 / t)) + 0.2 * t * t - LOG2 * t
        assert out.loss.item() == pytest.approx(expected, abs=1e-12)

    def test_reductions_and_permutation_equivariance(self) -> None:
        g = torch.Generator().manual_seed(0)
        c, r = torch.randn(32, generator=g), torch.randn(32, generator=g)
        none = adaptive_preference_loss(c, r, reduction="none").loss
        perm = torch.randperm(32, generator=g)
        assert torch.allclose(adaptive_preference_loss(c[perm], r[perm], reduction="none").loss, none[perm])
        assert adaptive_preference_loss(c, r, reduction="sum").loss.item() == pytest.approx(none.sum().item(), rel=1e-6)
        assert adaptive_preference_loss(c, r).loss.item() == pytest.approx(none.mean().item(), rel=1e-6)

    def test_bfloat16_inputs_are_computed_in_float32(self) -> None:
        c = torch.tensor([1.5, -0.5], dtype=torch.bfloat16)
        out = adaptive_preference_loss(c, torch.zeros_like(c))
        ref = adaptive_preference_loss(c.float(), torch.zeros(2))
        assert out.loss.dtype == torch.float32
        assert out.loss.item() == pytest.approx(ref.loss.item(), abs=1e-6)


class TestPopulationOptimum:
    def test_proposition_3_1_on_a_grid(self) -> None:
        # Prop. 3.1: with true preference probability p*, the expected loss τ(H(p*) + ρ) at the optimal
        # Δr = τ·logit(p*) is linear in τ, so τ* = τ0 if H(p*) + ρ > 0 else τ_max. Checked by grid search.
        rho0, tau0, tau_max = 0.3, 0.1, 3.0
        taus = torch.linspace(tau0, tau_max, 59, dtype=torch.float64)
        deltas = torch.linspace(-15, 15, 3001, dtype=torch.float64)
        T, D = torch.meshgrid(taus, deltas, indexing="ij")
        zero = torch.zeros_like(deltas)
        # the package's per-pair loss at τ held at T (τ0 = τ_max = T), for the preferred and the other label
        win, lose = (
            torch.stack([adaptive_preference_loss(sign * deltas, zero, rho0=rho0, tau0=t, tau_max=t,
                                                  reduction="none").per_pair_loss for t in taus.tolist()])
            for sign in (1.0, -1.0)
        )  # fmt: skip
        assert torch.allclose(win, -T * F.logsigmoid(D / T) + (rho0 - LOG2) * T, atol=1e-12)
        for p in (0.55, 0.7, 0.9, 0.97):
            expected = p * win + (1 - p) * lose
            i = int(torch.argmin(expected))
            tau_star, delta_star = T.flatten()[i].item(), D.flatten()[i].item()
            entropy = -(p * math.log(p) + (1 - p) * math.log(1 - p))
            assert tau_star == (tau0 if entropy + rho0 - LOG2 > 0 else tau_max)
            assert delta_star == pytest.approx(tau_star * math.log(p / (1 - p)), abs=0.02)


class TestAdaDPO:
    def test_equals_the_official_form(self) -> None:
        # ℓ = −τ logσ(βh/τ), τ = clip(|βh|/u*, τ0, τ_max) from the detached βh (computed here by hand).
        g = torch.Generator().manual_seed(1)
        pc, pr, rc, rr = (torch.randn(16, generator=g, dtype=torch.float64) * 20 for _ in range(4))
        out = ada_dpo_loss(pc, pr, rc, rr, beta=0.1)
        z = 0.1 * ((pc - rc) - (pr - rr))
        tau = (z.abs() / optimal_u(0.1)).clamp(0.1, 5.0)
        assert torch.allclose(out.tau, tau, atol=1e-12)
        assert torch.allclose(out.losses, -tau * F.logsigmoid(z / tau), atol=1e-12)
        assert torch.allclose(out.chosen_rewards, 0.1 * (pc - rc))
        assert torch.allclose(out.rejected_rewards, 0.1 * (pr - rr))

    @pytest.mark.parametrize("quadratic", [False, True])
    @pytest.mark.parametrize("n_iter", [3, 5])
    def test_newton_official_is_the_authors_dpo_iteration(self, quadratic: bool, n_iter: int) -> None:
        # The authors' DPO trainer (loss types "aps" and "quadratic"), written out here from its update: z = β·h
        # detached, τ ← 1, then K times g = −log(2σ(z/τ) + 1e-6) + (1 − σ(z/τ))·z/τ + (ρ0 | 2ρ0τ),
        # H = max(z²/τ³·σ(1 − σ) (+ 2ρ0), 1e-6), τ ← clip(τ − g/H, τ0, τmax): the quadratic penalty clamped
        # at τmax too, which is clamp_tau_max=True here. float64, margins across the regimes (tiny, both bounds).
        g = torch.Generator().manual_seed(6)
        pc, pr, rc, rr = (torch.randn(64, generator=g, dtype=torch.float64) * 15 for _ in range(4))
        pc[:4] = rc[:4] + pr[:4] - rr[:4] + torch.tensor([0.0, 1e-3, -1e-3, 40.0], dtype=torch.float64)
        beta, rho0, tau0 = 0.1, 0.1, 0.1
        tau_max = 2.0 if quadratic else 5.0  # below the quadratic penalty's own bound log 2 / (2ρ0) = 3.47: it binds
        out = ada_dpo_loss(pc, pr, rc, rr, beta=beta, rho0=rho0, tau0=tau0, tau_max=tau_max, solver="newton-official",
                           n_iter=n_iter, quadratic=quadratic, clamp_tau_max=quadratic)  # fmt: skip
        z = beta * ((pc - pr) - (rc - rr))  # the trainer's order: policy log-ratio minus the reference's
        tau = torch.ones_like(z)
        for _ in range(n_iter):
            s = torch.sigmoid(z / tau)
            grad = -torch.log(2 * s + 1e-6) + (1 - s) * (z / tau) + (2 * rho0 * tau if quadratic else rho0)
            hess = (z.square() / tau.pow(3) * (1 - s) * s + (2 * rho0 if quadratic else 0.0)).clamp(min=1e-6)
            tau = (tau - grad / hess).clamp(min=tau0, max=tau_max)
        assert torch.allclose(out.tau, tau, rtol=1e-10, atol=1e-12)
        assert bool(((out.tau == tau0) | (out.tau == tau_max)).any())  # the bounds are reached and kept

    def test_equals_sigmoid_dpo_at_unit_tau(self) -> None:
        # τ0 = τ_max = 1: Ada-DPO is TRL's "sigmoid" loss −logσ(β·h), written independently here.
        g = torch.Generator().manual_seed(2)
        pc, pr, rc, rr = (torch.randn(8, generator=g) for _ in range(4))
        out = ada_dpo_loss(pc, pr, rc, rr, beta=0.5, tau0=1.0, tau_max=1.0)
        h = (pc - rc) - (pr - rr)
        assert torch.allclose(out.losses, -F.logsigmoid(0.5 * h), atol=1e-6)

    def test_gradient_scale_matches_trl(self) -> None:
        # d loss / d policy_chosen_logps = −β(1 − σ(z/τ)): TRL's scale β(1 − σ(z)) at τ = 1.
        pc = torch.tensor([0.3, -2.0, 5.0], dtype=torch.float64, requires_grad=True)
        zero = torch.zeros(3, dtype=torch.float64)
        out = ada_dpo_loss(pc, zero, zero, zero, beta=0.2)
        (grad,) = torch.autograd.grad(out.losses.sum(), pc)
        z = 0.2 * pc.detach()
        assert torch.allclose(grad, -0.2 * (1 - torch.sigmoid(z / out.tau)), atol=1e-12)

    def test_reference_free(self) -> None:
        pc, pr = torch.tensor([-1.0]), torch.tensor([-2.0])
        nan = torch.tensor([math.nan])
        out = ada_dpo_loss(pc, pr, nan, nan, beta=1.0, reference_free=True)
        ref = ada_dpo_loss(pc, pr, torch.zeros(1), torch.zeros(1), beta=1.0)
        assert out.losses.item() == pytest.approx(ref.losses.item())


class TestBadInput:
    def test_integer_or_non_tensor_rewards_are_named_with_their_type(self) -> None:
        with pytest.raises(
            ValueError, match=r"^chosen_rewards must be a floating-point tensor, got dtype torch.int64$"
        ):
            adaptive_preference_loss(torch.tensor([1, 2]), torch.zeros(2))
        with pytest.raises(ValueError, match=r"^rejected_rewards must be a floating-point tensor, got list$"):
            adaptive_preference_loss(torch.zeros(2), [0.0, 1.0])  # type: ignore[arg-type]

    def test_shapes_must_match(self) -> None:
        with pytest.raises(ValueError, match="same shape"):
            adaptive_preference_loss(torch.zeros(3), torch.zeros(4))

    def test_must_be_one_dimensional(self) -> None:
        with pytest.raises(ValueError, match=r"1-D with shape \(B,\)"):
            adaptive_preference_loss(torch.zeros(3, 1), torch.zeros(3, 1))

    def test_empty_batch(self) -> None:
        with pytest.raises(ValueError, match="empty"):
            adaptive_preference_loss(torch.zeros(0), torch.zeros(0))

    def test_non_finite_rewards(self) -> None:
        with pytest.raises(ValueError, match="finite"):
            adaptive_preference_loss(torch.tensor([math.inf]), torch.zeros(1))

    def test_finite_check_policy(self) -> None:
        # True and the default check CPU tensors; False lets NaN through as a NaN τ and loss
        z = torch.zeros(1)
        with pytest.raises(ValueError, match="finite"):
            ada_dpo_loss(torch.tensor([math.nan]), z, z, z, check_finite=True)
        out = adaptive_preference_loss(torch.tensor([math.nan]), z, check_finite=False)
        assert math.isnan(out.loss.item())

    def test_check_finite_must_be_none_or_a_bool(self) -> None:
        from adapref.nn import AdaDPOLoss, AdaptivePreferenceLoss

        with pytest.raises(ValueError, match="check_finite"):
            adaptive_preference_loss(torch.zeros(2), torch.zeros(2), check_finite="no")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="check_finite"):
            AdaptivePreferenceLoss(check_finite=1)  # type: ignore[arg-type]
        z = torch.zeros(1)
        with pytest.raises(ValueError, match="finite"):  # the module passes it on
            AdaDPOLoss(check_finite=True)(torch.tensor([math.nan]), z, z, z)

    @pytest.mark.parametrize("solver", ["exact", "newton", "newton-official"])
    def test_default_skips_the_check_off_the_cpu(self, solver: str) -> None:
        # the default never reads a value back from a non-CPU device (it would sync a GPU):
        # on the meta device, where no value can be read, the losses still build their graph
        m = torch.zeros(4, device="meta", requires_grad=True)
        out = adaptive_preference_loss(m, torch.zeros(4, device="meta"), solver=solver)  # type: ignore[arg-type]
        out.loss.backward()
        assert out.tau.device.type == "meta"
        assert ada_dpo_loss(m, m, m, m, solver=solver).losses.shape == (4,)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="meta"):  # asking for the check means reading the values
            adaptive_preference_loss(m, m, check_finite=True)

    def test_unknown_reduction(self) -> None:
        with pytest.raises(ValueError, match="reduction"):
            adaptive_preference_loss(torch.zeros(2), torch.zeros(2), reduction="max")

    def test_bad_beta(self) -> None:
        z = torch.zeros(2)
        with pytest.raises(ValueError, match="beta"):
            ada_dpo_loss(z, z, z, z, beta=0.0)

    def test_reference_shape_mismatch(self) -> None:
        z = torch.zeros(2)
        with pytest.raises(ValueError, match="ref_chosen_logps"):
            ada_dpo_loss(z, z, torch.zeros(3), torch.zeros(3))


def test_mixed_precision_inputs_compute_in_the_widest_dtype() -> None:
    # A float64 rejected (or reference) tensor beside a float32 chosen one is not cast down to float32: the
    # result equals the all-float64 computation (review finding: the dtype came from the first tensor only).
    from adapref.baselines import bt_loss, sigmoid_dpo_loss

    gen = torch.Generator().manual_seed(0)
    c32 = torch.randn(64, generator=gen)
    r64 = torch.randn(64, generator=gen, dtype=torch.float64) + 1e-9  # below float32 resolution near 1
    c64 = c32.double()
    ada = adaptive_preference_loss(c32, r64, reduction="none")
    assert ada.per_pair_loss.dtype == torch.float64
    assert torch.equal(ada.per_pair_loss, adaptive_preference_loss(c64, r64, reduction="none").per_pair_loss)
    assert torch.equal(bt_loss(c32, r64), bt_loss(c64, r64))
    z32 = torch.zeros(64)
    dpo = ada_dpo_loss(c32, z32, r64, r64.clone())
    assert dpo.losses.dtype == torch.float64
    assert torch.equal(dpo.losses, ada_dpo_loss(c64, z32.double(), r64, r64.clone()).losses)
    assert torch.equal(sigmoid_dpo_loss(c32, z32, r64, r64)[0], sigmoid_dpo_loss(c64, z32.double(), r64, r64)[0])


@pytest.mark.parametrize("bad", ["0.1", None, True])
def test_non_numeric_beta_and_temperature_are_named(bad: object) -> None:
    from adapref.baselines import bt_loss, sigmoid_dpo_loss

    x = torch.zeros(2)
    with pytest.raises(ValueError, match="beta"):
        ada_dpo_loss(x, x, x, x, beta=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="beta"):
        sigmoid_dpo_loss(x, x, x, x, beta=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="temperature"):
        bt_loss(x, x, temperature=bad)  # type: ignore[arg-type]


# Mutation audit: each test below failed to catch a deliberate change to the code it names.


def test_quadratic_reward_loss_with_clamp_tau_max_clamps() -> None:
    # ρ0 = .05: the quadratic penalty's own bound is log 2 / (2ρ0) = 6.93; d = 30 wants τ above tau_max = 2
    c, r = torch.tensor([30.0, 0.5]), torch.zeros(2)
    free = adaptive_preference_loss(c, r, rho0=0.05, tau_max=2.0, quadratic=True)
    clamped = adaptive_preference_loss(c, r, rho0=0.05, tau_max=2.0, quadratic=True, clamp_tau_max=True)
    assert free.tau[0].item() > 2.0
    assert clamped.tau[0].item() == 2.0
    assert clamped.tau[1].item() == pytest.approx(free.tau[1].item())  # below the clamp: unchanged
    # the per-pair loss at the clamped τ, eq. 12 written out: τ(ρ0τ − log 2 − logσ(d/τ))
    assert clamped.per_pair_loss[0].item() == pytest.approx(
        2.0 * (0.05 * 2.0 - LOG2 - F.logsigmoid(torch.tensor(15.0)).item())
    )


def test_bf16_rewards_are_computed_in_float32() -> None:
    # bf16 keeps 8 significant bits: 100.5 − 100.0 is exact, but d/τ and logσ in bf16 would round; the loss is
    # that of the same values in float32
    c = torch.tensor([100.5, -3.25, 0.75], dtype=torch.bfloat16)
    r = torch.tensor([100.0, -1.0, 0.0], dtype=torch.bfloat16)
    out = adaptive_preference_loss(c, r, tau_max=4.0)
    ref = adaptive_preference_loss(c.float(), r.float(), tau_max=4.0)
    assert out.per_pair_loss.dtype == torch.float32
    assert out.tau.dtype == torch.float32
    torch.testing.assert_close(out.per_pair_loss, ref.per_pair_loss, rtol=0, atol=0)
    z = torch.zeros(3, dtype=torch.bfloat16)
    dpo = ada_dpo_loss(c, r, z, z, beta=1.0, tau_max=4.0)
    dpo_ref = ada_dpo_loss(c.float(), r.float(), z.float(), z.float(), beta=1.0, tau_max=4.0)
    assert dpo.losses.dtype == torch.float32
    torch.testing.assert_close(dpo.losses, dpo_ref.losses, rtol=0, atol=0)
