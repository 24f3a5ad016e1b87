"""Tests of r3m.integrations.openrlhf: use_r3m on stand-ins for OpenRLHF's trainers.

OpenRLHF cannot be installed here (it needs CUDA builds of DeepSpeed, vLLM, flash-attn), so the
stand-ins below copy the call signatures and the loss arithmetic of OpenRLHF 0.11.2
(``openrlhf/models/loss.py``: ``PairWiseLoss``, ``DPOLoss``) and the call sites of its trainers
(``rm_trainer.py``: ``self.loss_fn(chosen_reward, reject_reward, margin)``; ``dpo_trainer.py``:
``loss, chosen_reward, reject_reward = self.loss_fn(chosen_logps, rejected_logps, ref_chosen_logps,
ref_rejected_logps)``), all positional, as OpenRLHF calls them.
"""

from __future__ import annotations

import doctest
import inspect
import logging
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import r3m.integrations.openrlhf as r3m_openrlhf
from r3m.functional import r3m_dpo_loss
from r3m.integrations.openrlhf import OPENRLHF_VERSION, use_r3m
from r3m.nn import R3MDPOLoss, R3MLoss

LAM_BT = 1.0 - 1e-9  # t_λ ≈ −20.7: δ ≡ 0, R³M is the plain Bradley-Terry / DPO loss


class PairWiseLoss(nn.Module):
    """OpenRLHF 0.11.2 ``PairWiseLoss``, copied (signature and arithmetic)."""

    def forward(
        self, chosen_reward: torch.Tensor, reject_reward: torch.Tensor, margin: torch.Tensor | None = None
    ) -> torch.Tensor:
        if margin is not None:
            loss = -F.logsigmoid(chosen_reward - reject_reward - margin)
        else:
            loss = -F.logsigmoid(chosen_reward - reject_reward)
        return loss.mean()


class DPOLoss(nn.Module):
    """OpenRLHF 0.11.2 ``DPOLoss``, copied (signature and arithmetic)."""

    def __init__(self, beta: float, label_smoothing: float = 0.0, ipo: bool = False) -> None:
        super().__init__()
        self.beta, self.label_smoothing, self.ipo = beta, label_smoothing, ipo

    def forward(
        self,
        policy_chosen_logps: torch.Tensor,
        policy_rejected_logps: torch.Tensor,
        reference_chosen_logps: torch.Tensor,
        reference_rejected_logps: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = (policy_chosen_logps - policy_rejected_logps) - (reference_chosen_logps - reference_rejected_logps)
        if self.ipo:
            losses = (logits - 1 / (2 * self.beta)) ** 2
        else:
            losses = (
                -F.logsigmoid(self.beta * logits) * (1 - self.label_smoothing)
                - F.logsigmoid(-self.beta * logits) * self.label_smoothing
            )
        chosen_rewards = self.beta * (policy_chosen_logps - reference_chosen_logps).detach()
        rejected_rewards = self.beta * (policy_rejected_logps - reference_rejected_logps).detach()
        return losses.mean(), chosen_rewards, rejected_rewards


class RewardModelTrainer:
    """Stand-in for OpenRLHF's ``RewardModelTrainer``: the loss in ``loss_fn``, called as in ``fit``."""

    def __init__(self) -> None:
        self.loss_fn: nn.Module = PairWiseLoss()

    def preference_loss(
        self, chosen_reward: torch.Tensor, reject_reward: torch.Tensor, margin: torch.Tensor | None
    ) -> torch.Tensor:
        return self.loss_fn(chosen_reward, reject_reward, margin)


class DPOTrainer:
    """Stand-in for OpenRLHF's ``DPOTrainer``: ``loss_fn = DPOLoss(beta, label_smoothing, ipo)``, called as in ``fit``."""

    def __init__(self, beta: float, label_smoothing: float = 0.0, ipo: bool = False) -> None:
        self.beta = beta
        self.loss_fn: nn.Module = DPOLoss(beta, label_smoothing, ipo)

    def preference_loss(
        self,
        chosen_logps: torch.Tensor,
        rejected_logps: torch.Tensor,
        ref_chosen: torch.Tensor,
        ref_rejected: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        preference_loss, chosen_reward, reject_reward = self.loss_fn(
            chosen_logps, rejected_logps, ref_chosen, ref_rejected
        )
        return preference_loss, chosen_reward, reject_reward


def _params(fn: object) -> list[str]:
    return [name for name in inspect.signature(fn).parameters if name != "self"]


def test_docstring_examples() -> None:
    result = doctest.testmod(r3m_openrlhf)
    assert result.failed == 0
    assert result.attempted > 0
    assert OPENRLHF_VERSION == "0.11.2"


class TestRewardModel:
    def test_installs_r3m_loss_with_pairwise_signature(self) -> None:
        trainer = RewardModelTrainer()
        module = use_r3m(trainer, lam=0.5)
        assert isinstance(module, R3MLoss)
        assert trainer.loss_fn is module
        assert _params(module.forward) == _params(PairWiseLoss.forward)  # same names, same order

    def test_hand_worked_loss_in_openrlhf_argument_order(self) -> None:
        # r_w = (2, 0), r_l = (0, 1), m = (0.5, 0): d = (1.5, −1), t_0.5 = 0.
        # Pair 1 is inside: softplus(−1.5); pair 2 is flagged, δ = 1: softplus(0) + 0.5·1 = log 2 + 0.5.
        trainer = RewardModelTrainer()
        use_r3m(trainer, lam=0.5)
        loss = trainer.preference_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([0.5, 0.0]))
        expected = (math.log1p(math.exp(-1.5)) + math.log(2.0) + 0.5) / 2
        assert loss.ndim == 0  # a scalar, as PairWiseLoss returns
        assert loss.item() == pytest.approx(expected, abs=1e-6)
        assert trainer.loss_fn.last_delta.tolist() == pytest.approx([0.0, 1.0])
        # swapping the first two arguments would give another loss, so the order is what OpenRLHF passes
        swapped = trainer.preference_loss(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 0.0]), torch.tensor([0.5, 0.0]))
        assert abs(swapped.item() - expected) > 0.1

    @pytest.mark.parametrize("with_margin", [False, True])
    def test_lam_near_one_equals_pairwise_loss(self, with_margin: bool) -> None:
        # Exact invariant: δ ≡ 0 at λ → 1, so R³M is OpenRLHF's PairWiseLoss, value and gradient.
        gen = torch.Generator().manual_seed(0)
        chosen = torch.randn(8, generator=gen, requires_grad=True)
        reject = torch.randn(8, generator=gen)
        margin = torch.rand(8, generator=gen) if with_margin else None
        stock = PairWiseLoss()(chosen, reject, margin)
        (grad_stock,) = torch.autograd.grad(stock, chosen)
        trainer = RewardModelTrainer()
        use_r3m(trainer, lam=LAM_BT)
        ours = trainer.preference_loss(chosen, reject, margin)
        (grad_ours,) = torch.autograd.grad(ours, chosen)
        assert ours.item() == pytest.approx(stock.item(), abs=1e-6)
        torch.testing.assert_close(grad_ours, grad_stock, rtol=1e-5, atol=1e-7)

    def test_bf16_rewards_with_fp32_margin(self) -> None:
        # OpenRLHF's --margin_loss without --compute_fp32_loss: bf16 rewards, float32 margin (torch.tensor of
        # a list). PairWiseLoss promotes to float32; so must R³M (same value at λ → 1).
        chosen = torch.tensor([0.5, -1.0, 2.0], dtype=torch.bfloat16)
        reject = torch.tensor([0.0, 0.25, 1.0], dtype=torch.bfloat16)
        margin = torch.tensor([0.1, 0.0, 0.3])
        trainer = RewardModelTrainer()
        use_r3m(trainer, lam=LAM_BT)
        loss = trainer.preference_loss(chosen, reject, margin)
        assert loss.dtype == torch.float32
        assert loss.item() == pytest.approx(PairWiseLoss()(chosen, reject, margin).item(), abs=1e-6)

    def test_beta_ignored_with_warning(self, caplog: pytest.LogCaptureFixture) -> None:
        trainer = RewardModelTrainer()
        with caplog.at_level(logging.WARNING, logger="r3m.integrations.openrlhf"):
            module = use_r3m(trainer, lam=0.75, beta=0.1)
        assert isinstance(module, R3MLoss)
        assert module.lam == 0.75
        assert "beta=0.1 is ignored" in caplog.text


class TestDPO:
    def test_installs_r3m_dpo_loss_with_dpo_signature_and_beta(self) -> None:
        trainer = DPOTrainer(beta=0.2)
        module = use_r3m(trainer, lam=0.6)
        assert isinstance(module, R3MDPOLoss)
        assert trainer.loss_fn is module
        assert (module.beta, module.lam) == (0.2, 0.6)
        assert _params(module.forward) == _params(DPOLoss.forward)  # same names, same order
        assert use_r3m(DPOTrainer(beta=0.2), beta=0.5).beta == 0.5  # an explicit beta wins

    def test_returns_openrlhf_triple_equal_to_r3m_dpo_loss(self) -> None:
        # The (loss, chosen_rewards, rejected_rewards) triple, each compared with r3m_dpo_loss on the same
        # tensors given by keyword (so a positional mix-up in the module would show).
        gen = torch.Generator().manual_seed(1)
        pc, pr, rc, rr = (torch.randn(6, generator=gen) * 3 for _ in range(4))
        trainer = DPOTrainer(beta=0.5)
        use_r3m(trainer, lam=0.5)
        loss, chosen_rewards, rejected_rewards = trainer.preference_loss(pc, pr, rc, rr)
        expected = r3m_dpo_loss(
            policy_chosen_logps=pc,
            policy_rejected_logps=pr,
            ref_chosen_logps=rc,
            ref_rejected_logps=rr,
            beta=0.5,
            lam=0.5,
        )
        assert loss.ndim == 0
        assert chosen_rewards.shape == rejected_rewards.shape == (6,)
        assert loss.item() == pytest.approx(expected.losses.mean().item(), abs=1e-6)
        torch.testing.assert_close(chosen_rewards, 0.5 * (pc - rc))  # OpenRLHF's β(log π − log π_ref)
        torch.testing.assert_close(rejected_rewards, 0.5 * (pr - rr))
        z = 0.5 * ((pc - rc) - (pr - rr))
        assert 0 < int((z < 0).sum()) < 6  # some pairs flagged, some not
        torch.testing.assert_close(trainer.loss_fn.last_delta, (-z).clamp_min(0.0))

    def test_lam_near_one_equals_openrlhf_dpo_loss(self) -> None:
        # Exact invariant: δ ≡ 0 at λ → 1, so R³M-DPO is OpenRLHF's DPOLoss(label_smoothing=0, ipo=False).
        gen = torch.Generator().manual_seed(2)
        pc, pr, rc, rr = (torch.randn(6, generator=gen) for _ in range(4))
        pc.requires_grad_(True)
        stock = DPOLoss(0.1)(pc, pr, rc, rr)
        (grad_stock,) = torch.autograd.grad(stock[0], pc)
        trainer = DPOTrainer(beta=0.1)
        use_r3m(trainer, lam=LAM_BT)
        ours = trainer.preference_loss(pc, pr, rc, rr)
        (grad_ours,) = torch.autograd.grad(ours[0], pc)
        assert ours[0].item() == pytest.approx(stock[0].item(), abs=1e-6)
        torch.testing.assert_close(grad_ours, grad_stock, rtol=1e-5, atol=1e-8)
        for a, b in zip(ours[1:], stock[1:], strict=True):
            torch.testing.assert_close(a, b)

    def test_detected_by_class_name_without_beta(self) -> None:
        class DPOLoss(nn.Module):  # a DPOLoss that keeps β elsewhere: recognised by name
            def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
                raise AssertionError("replaced")

        trainer = RewardModelTrainer()
        trainer.loss_fn = DPOLoss()
        assert isinstance(use_r3m(trainer, beta=0.3), R3MDPOLoss)
        trainer.loss_fn = DPOLoss()
        with pytest.raises(ValueError, match=r"^beta must be given"):
            use_r3m(trainer)

    def test_dropped_cdpo_and_ipo_settings_warn(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING, logger="r3m.integrations.openrlhf"):
            use_r3m(DPOTrainer(beta=0.1, label_smoothing=0.1))
        assert "label_smoothing" in caplog.text


class TestErrors:
    def test_trainer_without_loss_fn(self) -> None:
        class Trainer:
            pass

        with pytest.raises(TypeError, match=r"Trainer has no loss_fn"):
            use_r3m(Trainer())

    def test_loss_fn_none(self) -> None:
        trainer = RewardModelTrainer()
        trainer.loss_fn = None  # type: ignore[assignment]
        with pytest.raises(TypeError, match=r"loss_fn"):
            use_r3m(trainer)

    @pytest.mark.parametrize("lam", [0.0, 1.0, 1.5])
    def test_bad_lam_leaves_trainer_untouched(self, lam: float) -> None:
        trainer = RewardModelTrainer()
        before = trainer.loss_fn
        with pytest.raises(ValueError, match=r"^lam must"):
            use_r3m(trainer, lam=lam)
        assert trainer.loss_fn is before

    def test_bad_beta(self) -> None:
        trainer = DPOTrainer(beta=0.1)
        with pytest.raises(ValueError, match=r"^beta must"):
            use_r3m(trainer, beta=-1.0)
        assert isinstance(trainer.loss_fn, DPOLoss)
