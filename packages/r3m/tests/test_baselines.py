"""Tests of r3m.baselines and r3m.nn against formulas worked by hand."""

from __future__ import annotations

import math

import pytest
import torch

from r3m.baselines import bt_loss, conservative_loss, dpo_baseline, hinge_loss, ipo_loss, unbiased_loss
from r3m.functional import r3m_dpo_loss, r3m_loss
from r3m.nn import R3MDPOLoss, R3MLoss

C = torch.tensor([1.0, 0.0, -2.0], dtype=torch.float64)
R = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)


def _sp(x: float) -> float:
    return math.log1p(math.exp(x))  # softplus(x) = −logσ(−x)


def test_reward_model_baselines_hand_values() -> None:
    d = [1.0, 0.0, -3.0]
    assert bt_loss(C, R).tolist() == pytest.approx([_sp(-x) for x in d])
    assert conservative_loss(C, R, eps=0.1).tolist() == pytest.approx([0.9 * _sp(-x) + 0.1 * _sp(x) for x in d])
    assert unbiased_loss(C, R, eps=0.1).tolist() == pytest.approx([(0.9 * _sp(-x) - 0.1 * _sp(x)) / 0.8 for x in d])
    assert ipo_loss(C, R, beta=0.25).tolist() == pytest.approx([(x - 2) ** 2 for x in d])
    assert hinge_loss(C, R, beta=0.5).tolist() == pytest.approx([max(0.0, 1 - 0.5 * x) for x in d])


def test_dpo_baselines_hand_values() -> None:
    pc, pr, rc, rr = torch.tensor([-1.0]), torch.tensor([-4.0]), torch.tensor([-2.0]), torch.tensor([-2.0])  # h = 3
    expect = {"sigmoid": _sp(-1.5), "conservative": 0.9 * _sp(-1.5) + 0.1 * _sp(1.5),
              "robust": (0.9 * _sp(-1.5) - 0.1 * _sp(1.5)) / 0.8, "ipo": 4.0, "hinge": 0.0}  # fmt: skip
    for kind, value in expect.items():
        losses, chosen, rejected = dpo_baseline(kind, pc, pr, rc, rr, beta=0.5, eps=0.1)
        assert losses.item() == pytest.approx(value, abs=1e-6), kind
        assert (chosen.item(), rejected.item()) == pytest.approx((0.5, -1.0))


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="eps"):
        conservative_loss(C, R, eps=0.5)
    with pytest.raises(ValueError, match="beta"):
        ipo_loss(C, R, beta=0.0)
    z = torch.zeros(1)
    with pytest.raises(ValueError, match="unknown DPO baseline"):
        dpo_baseline("kto", z, z, z, z)


def test_openrlhf_pairwise_signature() -> None:
    # OpenRLHF's RM trainer: loss_fn(chosen_reward, reject_reward, margin).
    c, r, m = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 0.0]), torch.tensor([0.5, 0.25])
    loss_fn = R3MLoss(lam=0.4)
    assert loss_fn(c, r, m).item() == pytest.approx(r3m_loss(c - m, r, lam=0.4).loss.item())
    assert loss_fn.last_delta is not None
    assert torch.equal(loss_fn.last_delta, r3m_loss(c - m, r, lam=0.4).delta)


def test_openrlhf_dpo_signature() -> None:
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (torch.randn(4, generator=g) for _ in range(4))
    loss, chosen, rejected = R3MDPOLoss(beta=0.2, lam=0.6)(pc, pr, rc, rr)
    ref = r3m_dpo_loss(pc, pr, rc, rr, beta=0.2, lam=0.6)
    assert loss.item() == pytest.approx(ref.losses.mean().item())
    assert torch.equal(chosen, ref.chosen_rewards)
    assert torch.equal(rejected, ref.rejected_rewards)
    with pytest.raises(ValueError, match="lam"):
        R3MDPOLoss(lam=1.0)


def test_openrlhf_loss_flags_bf16_rewards_as_r3m_loss_does() -> None:
    # bf16 rewards whose gap lies near t_λ = −1.0986 (λ = .75): the module takes the gap in float32 like r3m_loss,
    # so the flags agree; a bf16 subtraction rounded −1.0980 to −1.1016 and flagged other pairs (review finding).
    gen = torch.Generator().manual_seed(0)
    chosen = (torch.rand(20_000, generator=gen) * 8 - 4).bfloat16()
    reject = (chosen.float() + 1.0986 + (torch.rand(20_000, generator=gen) - 0.5) * 0.05).bfloat16()
    module = R3MLoss(lam=0.75)
    module(chosen, reject)
    assert module.last_delta is not None
    expected = r3m_loss(chosen, reject, lam=0.75).delta
    assert torch.equal(module.last_delta > 0, expected > 0)
    assert torch.equal(module.last_delta, expected)


# Mutation audit: each test below failed to catch a deliberate change to the code it names.


def test_dpo_hinge_is_on_the_beta_scaled_margin() -> None:
    # h = (−1 − 0) − (−1.5 − 0) = 0.5, β = 0.1: relu(1 − βh) = 0.95 (relu(1 − h) would be 0.5)
    z = torch.zeros(1)
    losses, _, _ = dpo_baseline("hinge", torch.tensor([-1.0]), torch.tensor([-1.5]), z, z, beta=0.1)
    assert losses.item() == pytest.approx(0.95, abs=1e-7)


def test_eps_zero_is_plain_bradley_terry() -> None:
    c, r = torch.tensor([2.0, -1.0, 0.3]), torch.tensor([0.0, 1.0, 0.0])
    bt = bt_loss(c, r)
    torch.testing.assert_close(conservative_loss(c, r, eps=0.0), bt)
    torch.testing.assert_close(unbiased_loss(c, r, eps=0.0), bt)
    for bad in (-0.01, 0.5):
        with pytest.raises(ValueError, match=r"eps must lie in \[0, 0.5\)"):
            conservative_loss(c, r, eps=bad)
