"""CUDA checks of the R³M losses (``make gpu-check``; skipped without a CUDA device)."""

from __future__ import annotations

import pytest
import torch

from r3m.functional import r3m_delta, r3m_dpo_loss, r3m_loss

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("lam", [0.1, 0.5, 0.9])
def test_delta_on_cuda_equals_cpu(lam: float) -> None:
    margins = torch.randn(2048, generator=torch.Generator().manual_seed(0)) * 4
    cuda = r3m_delta(margins.cuda(), lam)
    assert cuda.device.type == "cuda"
    torch.testing.assert_close(cuda.cpu(), r3m_delta(margins, lam), atol=1e-6, rtol=1e-6)


def test_bf16_rewards_are_perturbed_in_float32() -> None:
    # bf16 rewards are promoted before the δ-step: the result equals float32 on the rounded values
    gen = torch.Generator().manual_seed(1)
    c, r = (
        (torch.randn(512, generator=gen) * 3).bfloat16().cuda(),
        (torch.randn(512, generator=gen) * 3).bfloat16().cuda(),
    )
    out = r3m_loss(c, r, lam=0.5)
    ref = r3m_loss(c.float().cpu(), r.float().cpu(), lam=0.5)
    assert out.delta.dtype == torch.float32
    assert out.loss.dtype == torch.float32
    torch.testing.assert_close(out.delta.cpu(), ref.delta, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out.per_pair_loss.cpu(), ref.per_pair_loss, atol=1e-5, rtol=1e-5)


def test_dpo_gradient_on_cuda_equals_cpu() -> None:
    gen = torch.Generator().manual_seed(2)
    logps = [torch.randn(256, generator=gen) * 5 - 40 for _ in range(4)]
    grads = []
    for device in ("cpu", "cuda"):
        pc = logps[0].clone().to(device).requires_grad_()  # a leaf on each device
        pr = logps[1].clone().to(device).requires_grad_()
        r3m_dpo_loss(pc, pr, logps[2].to(device), logps[3].to(device), beta=0.1, lam=0.5).losses.sum().backward()
        assert pc.grad is not None
        assert pr.grad is not None
        grads.append(torch.cat([pc.grad, pr.grad]).cpu())
    torch.testing.assert_close(grads[1], grads[0], atol=1e-6, rtol=1e-5)


def test_dpo_loss_does_not_sync_the_host() -> None:
    # by default (check_finite=None) the loss never waits for the device: forward and backward
    # run under torch's sync debug mode set to raise on any synchronising call
    gen = torch.Generator().manual_seed(3)
    pc, pr, rc, rr = (torch.randn(64, generator=gen).cuda() for _ in range(4))
    pc.requires_grad_()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        r3m_dpo_loss(pc, pr, rc, rr, beta=0.1, lam=0.5).losses.mean().backward()
        r3m_loss(pc, pr, lam=0.5).loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert pc.grad is not None
    with pytest.raises(ValueError, match="finite"):
        r3m_dpo_loss(pc * float("nan"), pr, rc, rr, check_finite=True)
