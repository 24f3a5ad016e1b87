"""Tests of adapref.nn: OpenRLHF call signatures and agreement with the functional losses."""

from __future__ import annotations

import warnings

import pytest
import torch

from adapref.config import TrainConfig
from adapref.functional import ada_dpo_loss, adaptive_preference_loss
from adapref.nn import AdaDPOLoss, AdaptivePreferenceLoss


def test_pairwise_loss_signature_and_margin() -> None:
    # OpenRLHF's RM trainer calls loss_fn(chosen_reward, reject_reward, margin); margin shifts the gap.
    loss_fn = AdaptivePreferenceLoss(rho0=0.3, tau_max=3.0)
    c, r, m = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 0.0]), torch.tensor([0.5, 0.25])
    loss = loss_fn(c, r, m)
    ref = adaptive_preference_loss(c - m, r, rho0=0.3, tau_max=3.0)
    assert loss.item() == pytest.approx(ref.loss.item())
    assert loss_fn.last_tau is not None
    assert torch.equal(loss_fn.last_tau, ref.tau)
    assert loss_fn(c, r).item() == pytest.approx(adaptive_preference_loss(c, r, rho0=0.3, tau_max=3.0).loss.item())


def test_dpo_loss_signature_returns_a_triple() -> None:
    # OpenRLHF's DPO trainer: loss, chosen_reward, reject_reward = self.loss_fn(pc, pr, rc, rr).
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (torch.randn(4, generator=g) for _ in range(4))
    loss, chosen, rejected = AdaDPOLoss(beta=0.2)(pc, pr, rc, rr)
    ref = ada_dpo_loss(pc, pr, rc, rr, beta=0.2)
    assert loss.item() == pytest.approx(ref.losses.mean().item())
    assert torch.equal(chosen, ref.chosen_rewards)
    assert torch.equal(rejected, ref.rejected_rewards)


def test_modules_validate_at_construction() -> None:
    with pytest.raises(ValueError, match="tau_max"):
        AdaptivePreferenceLoss(tau0=1.0, tau_max=0.5)
    with pytest.raises(ValueError, match="beta"):
        AdaDPOLoss(beta=-0.1)


def test_log2_warning_only_for_the_linear_penalty() -> None:
    # ρ0 ≥ log 2 makes every τ equal τ0 with the linear penalty (warned), not with the quadratic one, whose
    # penalty ρ0τ² keeps interior minimisers (Prop. 3.2): no warning there.
    with pytest.warns(UserWarning, match="Bradley-Terry at temperature tau0"):
        AdaptivePreferenceLoss(rho0=0.8)
    with pytest.warns(UserWarning, match="Bradley-Terry at temperature tau0"):
        TrainConfig(loss="ada", rho0=0.8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quad = AdaptivePreferenceLoss(rho0=0.8, quadratic=True)
        AdaDPOLoss(rho0=0.8, quadratic=True)
        TrainConfig(loss="ada-quad", rho0=0.8)
    quad(torch.tensor([0.5, 5.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    assert quad.last_tau is not None
    assert bool((quad.last_tau > 0.1).all())  # interior, not τ0
