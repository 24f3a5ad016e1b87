"""``torch.nn.Module`` shells over the R³M losses, with OpenRLHF's loss signatures.

OpenRLHF keeps its loss in ``trainer.loss_fn``; assigning one of these modules there swaps the loss:

- :class:`R3MLoss`: the reward-model ``PairWiseLoss`` signature,
  ``forward(chosen_reward, reject_reward, margin=None) -> loss``.
- :class:`R3MDPOLoss`: the ``DPOLoss`` signature, ``forward(policy_chosen_logps,
  policy_rejected_logps, reference_chosen_logps, reference_rejected_logps) -> (loss,
  chosen_rewards, rejected_rewards)``.

Both keep the δ of the last call in ``last_delta`` (for logging the outlier fraction).
"""

from __future__ import annotations

import torch
from torch import nn

from r3m.functional import check_beta, check_finite_arg, check_lam, check_pair, r3m_dpo_loss, r3m_loss


class R3MLoss(nn.Module):
    """R³M reward-model loss (eqs. 3.4–3.5), OpenRLHF ``PairWiseLoss`` signature.

    Args:
        lam: per-sample λ ∈ (0, 1).
        check_finite: see :func:`r3m.functional.r3m_loss`.

    Example:
        >>> round(R3MLoss(lam=0.5)(torch.tensor([2.0]), torch.tensor([0.0])).item(), 6)
        0.126928
    """

    def __init__(self, lam: float = 0.5, check_finite: bool | None = None) -> None:
        super().__init__()
        check_lam(lam)  # validates; warns for a λ that looks like 1/n
        self.lam = lam
        self.check_finite = check_finite_arg(check_finite)
        self.last_delta: torch.Tensor | None = None

    def forward(
        self, chosen_reward: torch.Tensor, reject_reward: torch.Tensor, margin: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean loss; ``margin`` (as in OpenRLHF) is subtracted from the reward gap: d = (r_w − r_l) − m.

        The gap is taken in float32 at least (bf16 rewards are promoted before the subtraction, so the
        flags are those of :func:`r3m.functional.r3m_loss` on the same rewards).
        """
        check_pair("chosen_reward", chosen_reward, "reject_reward", reject_reward)
        # the gap in float32 at least, as r3m_loss takes it: a bf16 gap would round t_λ's neighbours and flag
        # other pairs than r3m_loss on the same rewards
        dtype = torch.promote_types(chosen_reward.dtype, torch.float32)
        d = chosen_reward.to(dtype) - reject_reward.to(dtype)
        if margin is not None:
            if margin.shape != d.shape:
                raise ValueError(f"margin must have shape {tuple(d.shape)}, got {tuple(margin.shape)}")
            d = d - margin
        out = r3m_loss(d, torch.zeros_like(d), lam=self.lam, check_finite=self.check_finite)
        self.last_delta = out.delta
        return out.loss

    def extra_repr(self) -> str:
        return f"lam={self.lam}"


class R3MDPOLoss(nn.Module):
    """R³M-DPO loss (§3.4), OpenRLHF ``DPOLoss`` signature.

    Args:
        beta: DPO's β > 0.
        lam: per-sample λ ∈ (0, 1), applied to the β-scaled logit.
        reference_free: uniform reference policy.
        check_finite: see :func:`r3m.functional.r3m_dpo_loss`.

    Example:
        >>> zero = torch.zeros(1)
        >>> loss, chosen, rejected = R3MDPOLoss(beta=1.0)(torch.tensor([-3.0]), torch.tensor([-1.0]), zero, zero)
        >>> round(loss.item(), 5)
        1.69315
    """

    def __init__(
        self, beta: float = 0.1, lam: float = 0.5, reference_free: bool = False, check_finite: bool | None = None
    ) -> None:
        super().__init__()
        self.check_finite = check_finite_arg(check_finite)
        check_beta(beta)
        check_lam(lam)
        self.beta, self.lam, self.reference_free = beta, lam, reference_free
        self.last_delta: torch.Tensor | None = None

    def forward(
        self,
        policy_chosen_logps: torch.Tensor,
        policy_rejected_logps: torch.Tensor,
        reference_chosen_logps: torch.Tensor,
        reference_rejected_logps: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mean loss, chosen_rewards, rejected_rewards)`` as OpenRLHF's ``DPOLoss`` returns."""
        out = r3m_dpo_loss(
            policy_chosen_logps,
            policy_rejected_logps,
            reference_chosen_logps,
            reference_rejected_logps,
            beta=self.beta,
            lam=self.lam,
            reference_free=self.reference_free,
            check_finite=self.check_finite,
        )
        self.last_delta = out.delta
        return out.losses.mean(), out.chosen_rewards, out.rejected_rewards

    def extra_repr(self) -> str:
        return f"beta={self.beta}, lam={self.lam}"
