"""Tests of adapref.baselines: each loss against its formula worked by hand."""

from __future__ import annotations

import math

import pytest
import torch

from adapref.baselines import bt_loss, hinge_dpo_loss, hinge_loss, ipo_dpo_loss, ipo_loss, sigmoid_dpo_loss
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
