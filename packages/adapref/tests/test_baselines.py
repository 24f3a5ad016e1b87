"""Tests of adapref.baselines: each loss against its formula worked by hand."""

from __future__ import annotations

import math

import pytest
import torch

from adapref.baselines import (
    bt_loss,
    conservative_dpo_loss,
    hinge_dpo_loss,
    hinge_loss,
    ipo_dpo_loss,
    ipo_loss,
    margin_bt_loss,
    robust_dpo_loss,
    sigmoid_dpo_loss,
)
from adapref.functional import adaptive_preference_loss
from adapref.scaling import LOG2

C = torch.tensor([1.0, 0.0, -2.0], dtype=torch.float64)
R = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)


def test_bt_loss_hand_values() -> None:
    # d = (1, 0, −3): −logσ(d) = log(1 + e^{−d}).
    assert bt_loss(C, R).tolist() == pytest.approx([math.log1p(math.exp(-1)), LOG2, math.log1p(math.exp(3))])


def test_bt_loss_at_temperature_equals_adaptive_loss_with_fixed_tau() -> None:
    # Fixed-temperature BT = adaptive loss with τ0 = τ_max = T, minus the constant (ρ0 − log 2)T.
    ada = adaptive_preference_loss(C, R, rho0=0.1, tau0=2.5, tau_max=2.5, reduction="none").per_pair_loss
    assert torch.allclose(bt_loss(C, R, temperature=2.5), ada - (0.1 - LOG2) * 2.5, atol=1e-12)


def test_hinge_and_ipo_hand_values() -> None:
    assert hinge_loss(C, R, beta=0.5).tolist() == pytest.approx([0.5, 1.0, 2.5])
    assert ipo_loss(C, R, beta=0.25).tolist() == pytest.approx([1.0, 4.0, 25.0])  # (d − 2)²


def test_dpo_forms_hand_values() -> None:
    pc, pr = torch.tensor([-1.0]), torch.tensor([-4.0])
    rc, rr = torch.tensor([-2.0]), torch.tensor([-2.0])  # h = (−1 + 2) − (−4 + 2) = 3
    losses, chosen, rejected = sigmoid_dpo_loss(pc, pr, rc, rr, beta=0.5)
    assert losses.item() == pytest.approx(math.log1p(math.exp(-1.5)), abs=1e-6)
    assert (chosen.item(), rejected.item()) == pytest.approx((0.5, -1.0))
    assert hinge_dpo_loss(pc, pr, rc, rr, beta=0.5)[0].item() == pytest.approx(0.0)
    assert ipo_dpo_loss(pc, pr, rc, rr, beta=0.5)[0].item() == pytest.approx(4.0)  # (3 − 1)²


@pytest.mark.parametrize("fn", [bt_loss, hinge_loss, ipo_loss])
def test_bad_scale_is_named(fn: object) -> None:
    name = "temperature" if fn is bt_loss else "beta"
    with pytest.raises(ValueError, match=name):
        fn(C, R, **{name: -1.0})  # type: ignore[operator]


def test_margin_bt_hand_values() -> None:
    # d = (1, 0, −3), m = (1, −1, 0.5): −logσ(d − m) = log(1 + e^{m − d}).
    m = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    want = [LOG2, math.log1p(math.exp(-1.0)), math.log1p(math.exp(3.5))]
    assert margin_bt_loss(C, R, m).tolist() == pytest.approx(want)
    with pytest.raises(ValueError, match="margin must be a tensor of shape"):
        margin_bt_loss(C, R, torch.zeros(2))


def test_cdpo_and_rdpo_hand_values() -> None:
    # h = 3, β = 0.5: z = 1.5; s⁺ = −logσ(1.5) = log(1 + e^{−1.5}), s⁻ = −logσ(−1.5) = log(1 + e^{1.5}).
    pc, pr = torch.tensor([-1.0]), torch.tensor([-4.0])
    rc, rr = torch.tensor([-2.0]), torch.tensor([-2.0])
    sp, sm = math.log1p(math.exp(-1.5)), math.log1p(math.exp(1.5))
    eps = 0.2
    cdpo = conservative_dpo_loss(pc, pr, rc, rr, beta=0.5, label_smoothing=eps)[0].item()
    assert cdpo == pytest.approx((1 - eps) * sp + eps * sm, abs=1e-6)
    rdpo = robust_dpo_loss(pc, pr, rc, rr, beta=0.5, label_smoothing=eps)[0].item()
    assert rdpo == pytest.approx(((1 - eps) * sp - eps * sm) / (1 - 2 * eps), abs=1e-6)
    dpo = sigmoid_dpo_loss(pc, pr, rc, rr, beta=0.5)[0]
    for fn in (conservative_dpo_loss, robust_dpo_loss):  # ε = 0 is DPO
        assert torch.equal(fn(pc, pr, rc, rr, beta=0.5, label_smoothing=0.0)[0], dpo)
    with pytest.raises(ValueError, match=r"label_smoothing must be a number in \[0, 0\.5\)"):
        robust_dpo_loss(pc, pr, rc, rr, label_smoothing=0.5)


# Mutation audit: each test below failed to catch a deliberate change to the code it names.


def test_dpo_hinge_is_on_the_beta_scaled_margin() -> None:
    # h = (−1 − 0) − (−1.5 − 0) = 0.5, β = 0.1: relu(1 − βh) = 0.95 (relu(1 − h) would be 0.5)
    z = torch.zeros(1)
    losses, _, _ = hinge_dpo_loss(torch.tensor([-1.0]), torch.tensor([-1.5]), z, z, beta=0.1)
    assert losses.item() == pytest.approx(0.95, abs=1e-7)


def test_cdpo_smoothing_above_one_half_is_the_formula_and_one_is_refused() -> None:
    # ε ∈ [0, 1): ε > .5 weighs the reversed label more (a label-flip prior above one half), as TRL allowed
    z = torch.zeros(1)
    losses, _, _ = conservative_dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]), z, z, beta=0.5,
                                         label_smoothing=0.7)  # fmt: skip
    expected = -0.3 * math.log(1 / (1 + math.exp(-1.0))) - 0.7 * math.log(1 / (1 + math.exp(1.0)))  # βh = 1
    assert losses.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="label_smoothing"):
        conservative_dpo_loss(z, z, z, z, label_smoothing=1.0)


def test_dpo_reference_of_another_shape_is_refused() -> None:
    p = torch.zeros(3)
    with pytest.raises(ValueError, match=r"reference log-probs must have shape \(3,\), got \(2,\)"):
        sigmoid_dpo_loss(p, p, torch.zeros(2), torch.zeros(2))
