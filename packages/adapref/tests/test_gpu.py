"""CUDA checks of the adaptive loss (``make gpu-check``; skipped without a CUDA device)."""

from __future__ import annotations

import pytest
import torch

from adapref.functional import ada_dpo_loss, adaptive_preference_loss
from adapref.scaling import solve_tau

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("solver", ["exact", "newton", "newton-official"])
def test_tau_on_cuda_equals_cpu(solver: str) -> None:
    margins = torch.randn(2048, generator=torch.Generator().manual_seed(0)) * 4
    # the safeguarded Newton is compared converged: after K=5 an ulp of difference between the
    # devices' sigmoid can flip one bisection decision (seen on an H100: 1.6e-4 apart at K=5)
    n_iter = 5 if solver == "newton-official" else 60
    cpu = solve_tau(margins, tau_max=4.0, solver=solver, n_iter=n_iter)
    cuda = solve_tau(margins.cuda(), tau_max=4.0, solver=solver, n_iter=n_iter)
    assert cuda.device.type == "cuda"
    assert cuda.dtype == torch.float32
    torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-5, rtol=1e-5)


def test_bf16_rewards_are_solved_in_float32() -> None:
    # bf16 rewards are promoted before τ is solved: the result equals float32 on the rounded values
    gen = torch.Generator().manual_seed(1)
    c, r = (
        (torch.randn(512, generator=gen) * 3).bfloat16().cuda(),
        (torch.randn(512, generator=gen) * 3).bfloat16().cuda(),
    )
    out = adaptive_preference_loss(c, r, tau_max=4.0)
    ref = adaptive_preference_loss(c.float().cpu(), r.float().cpu(), tau_max=4.0)
    assert out.tau.dtype == torch.float32
    assert out.loss.dtype == torch.float32
    torch.testing.assert_close(out.tau.cpu(), ref.tau, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out.per_pair_loss.cpu(), ref.per_pair_loss, atol=1e-5, rtol=1e-5)


def test_dpo_gradient_on_cuda_equals_cpu() -> None:
    gen = torch.Generator().manual_seed(2)
    logps = [torch.randn(256, generator=gen) * 5 - 40 for _ in range(4)]
    grads = []
    for device in ("cpu", "cuda"):
        pc = logps[0].clone().to(device).requires_grad_()  # a leaf on each device
        pr = logps[1].clone().to(device).requires_grad_()
        ada_dpo_loss(pc, pr, logps[2].to(device), logps[3].to(device), beta=0.1).losses.sum().backward()
        assert pc.grad is not None
        assert pr.grad is not None
        grads.append(torch.cat([pc.grad, pr.grad]).cpu())
    torch.testing.assert_close(grads[1], grads[0], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("solver", ["exact", "newton"])
def test_dpo_loss_does_not_sync_the_host(solver: str) -> None:
    # by default (check_finite=None) the loss never waits for the device: forward and backward
    # run under torch's sync debug mode set to raise on any synchronising call
    gen = torch.Generator().manual_seed(3)
    pc, pr, rc, rr = (torch.randn(64, generator=gen).cuda() for _ in range(4))
    pc.requires_grad_()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        ada_dpo_loss(pc, pr, rc, rr, beta=0.1, solver=solver).losses.mean().backward()  # type: ignore[arg-type]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert pc.grad is not None
    with pytest.raises(ValueError, match="finite"):
        ada_dpo_loss(pc * float("nan"), pr, rc, rr, check_finite=True)
