"""``torch.nn.Module`` shells over the adaptive losses, with OpenRLHF's loss signatures.

OpenRLHF keeps its loss in ``trainer.loss_fn``; assigning one of these modules there swaps the
loss without touching the trainer:

- :class:`AdaptivePreferenceLoss` has the signature of OpenRLHF's reward-model ``PairWiseLoss``:
  ``forward(chosen_reward, reject_reward, margin=None) -> loss``.
- :class:`AdaDPOLoss` has the signature of OpenRLHF's ``DPOLoss``:
  ``forward(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
  reference_rejected_logps) -> (loss, chosen_rewards, rejected_rewards)``.

Both keep the τ of the last call in ``last_tau`` for logging.
"""

from __future__ import annotations

import torch
from torch import nn

from adapref.functional import _positive_number, ada_dpo_loss, adaptive_preference_loss
from adapref.scaling import Solver, check_finite_arg, check_scaling_args, warn_if_tau_max_ignored


class AdaptivePreferenceLoss(nn.Module):
    """Adaptive preference loss for reward models (eq. 6), OpenRLHF ``PairWiseLoss`` signature.

    Args:
        rho0, tau0, tau_max, solver, n_iter, tau_init, quadratic, clamp_tau_max, check_finite: see
            :func:`adapref.scaling.solve_tau` (defaults: the paper's control setting).

    Example:
        >>> loss_fn = AdaptivePreferenceLoss(tau_max=4.0)
        >>> round(loss_fn(torch.tensor([2.0]), torch.tensor([0.0])).item(), 6)
        -0.560411
    """

    def __init__(
        self,
        rho0: float = 0.1,
        tau0: float = 0.1,
        tau_max: float = 1.0,
        solver: Solver = "exact",
        n_iter: int = 3,
        tau_init: float = 1.0,
        quadratic: bool = False,
        clamp_tau_max: bool = False,
        check_finite: bool | None = None,
    ) -> None:
        super().__init__()
        check_scaling_args(rho0, tau0, tau_max, solver, n_iter, tau_init, quadratic)
        warn_if_tau_max_ignored(tau_max, rho0, quadratic, clamp_tau_max)
        self.check_finite = check_finite_arg(check_finite)
        self.rho0, self.tau0, self.tau_max = rho0, tau0, tau_max
        self.solver: Solver = solver
        self.n_iter, self.tau_init = n_iter, tau_init
        self.quadratic, self.clamp_tau_max = quadratic, clamp_tau_max
        self.last_tau: torch.Tensor | None = None

    def forward(
        self, chosen_reward: torch.Tensor, reject_reward: torch.Tensor, margin: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean loss over the batch; ``margin`` (as in OpenRLHF) is subtracted from the reward gap."""
        chosen = chosen_reward if margin is None else chosen_reward - margin
        out = adaptive_preference_loss(
            chosen,
            reject_reward,
            rho0=self.rho0,
            tau0=self.tau0,
            tau_max=self.tau_max,
            solver=self.solver,
            n_iter=self.n_iter,
            tau_init=self.tau_init,
            quadratic=self.quadratic,
            clamp_tau_max=self.clamp_tau_max,
            check_finite=self.check_finite,
        )
        self.last_tau = out.tau
        return out.loss

    def extra_repr(self) -> str:
        return f"rho0={self.rho0}, tau0={self.tau0}, tau_max={self.tau_max}, solver={self.solver!r}"


class AdaDPOLoss(nn.Module):
    """Ada-DPO loss (§3.5, the authors' β-keeping form), OpenRLHF ``DPOLoss`` signature.

    Args:
        beta: DPO's β > 0.
        rho0, tau0, tau_max, solver, n_iter, tau_init, quadratic, clamp_tau_max, check_finite: see
            :func:`adapref.functional.ada_dpo_loss` (defaults: the authors' DPO setting).
        reference_free: uniform reference policy.

    Example:
        >>> loss_fn = AdaDPOLoss(beta=1.0)
        >>> zero = torch.tensor([0.0])
        >>> loss, chosen, rejected = loss_fn(torch.tensor([-1.0]), torch.tensor([-3.0]), zero, zero)
        >>> round(loss_fn.last_tau.item(), 6)
        2.119895
    """

    def __init__(
        self,
        beta: float = 0.1,
        rho0: float = 0.1,
        tau0: float = 0.1,
        tau_max: float = 5.0,
        solver: Solver = "exact",
        n_iter: int = 5,
        tau_init: float = 1.0,
        quadratic: bool = False,
        clamp_tau_max: bool = False,
        reference_free: bool = False,
        check_finite: bool | None = None,
    ) -> None:
        super().__init__()
        self.check_finite = check_finite_arg(check_finite)
        if not _positive_number(beta):
            raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
        check_scaling_args(rho0, tau0, tau_max, solver, n_iter, tau_init, quadratic)
        warn_if_tau_max_ignored(tau_max, rho0, quadratic, clamp_tau_max)
        self.beta, self.rho0, self.tau0, self.tau_max = beta, rho0, tau0, tau_max
        self.solver: Solver = solver
        self.n_iter, self.tau_init = n_iter, tau_init
        self.quadratic, self.clamp_tau_max, self.reference_free = quadratic, clamp_tau_max, reference_free
        self.last_tau: torch.Tensor | None = None

    def forward(
        self,
        policy_chosen_logps: torch.Tensor,
        policy_rejected_logps: torch.Tensor,
        reference_chosen_logps: torch.Tensor,
        reference_rejected_logps: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mean loss, chosen_rewards, rejected_rewards)`` as OpenRLHF's ``DPOLoss`` returns."""
        out = ada_dpo_loss(
            policy_chosen_logps,
            policy_rejected_logps,
            reference_chosen_logps,
            reference_rejected_logps,
            beta=self.beta,
            rho0=self.rho0,
            tau0=self.tau0,
            tau_max=self.tau_max,
            solver=self.solver,
            n_iter=self.n_iter,
            tau_init=self.tau_init,
            quadratic=self.quadratic,
            clamp_tau_max=self.clamp_tau_max,
            reference_free=self.reference_free,
            check_finite=self.check_finite,
        )
        self.last_tau = out.tau
        return out.losses.mean(), out.chosen_rewards, out.rejected_rewards

    def extra_repr(self) -> str:
        return f"beta={self.beta}, rho0={self.rho0}, tau0={self.tau0}, tau_max={self.tau_max}, solver={self.solver!r}"
