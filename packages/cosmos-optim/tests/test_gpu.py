"""CUDA checks of COSMOS (``make gpu-check``; skipped without a CUDA device)."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from cosmos_optim import COSMOS, cosmos_param_groups
from cosmos_optim.model import GPT, GPTConfig

pytestmark = pytest.mark.gpu


def _grads(shape: tuple[int, int], steps: int, seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen), [torch.randn(*shape, generator=gen) for _ in range(steps)]


@pytest.mark.parametrize("shape", [(96, 64), (64, 96)])
def test_cuda_update_matches_cpu_in_float32(shape: tuple[int, int]) -> None:
    # Same gradients on both devices and float32 Newton-Schulz: agreement to float32 rounding
    # (eigh/QR differ between MKL and cuSOLVER only inside that rounding when the spectrum is gapped).
    W, grads = _grads(shape, 5, 0)
    scale = torch.linspace(3.0, 0.1, shape[1])
    results = []
    for device in ("cpu", "cuda"):
        p = nn.Parameter(W.clone().to(device))
        opt = COSMOS([p], lr=1e-2, rank=8, ns_dtype=torch.float32)
        for G in grads:
            p.grad = (G * scale).to(device)  # a gapped column spectrum keeps the rank-8 subspace well defined
            opt.step()
        results.append(p.detach().cpu())
    torch.testing.assert_close(results[1], results[0], atol=2e-4, rtol=1e-3)


def test_cuda_bf16_ns_update_direction_matches_cpu() -> None:
    # The authors' setting (bf16 Newton-Schulz): the per-step directions agree to bf16 accuracy.
    W, grads = _grads((128, 96), 3, 1)
    deltas = []
    for device in ("cpu", "cuda"):
        p = nn.Parameter(W.clone().to(device))
        opt = COSMOS([p], lr=1e-2, rank=16)
        before = p.detach().clone()
        for G in grads:
            p.grad = G.to(device)
            opt.step()
        deltas.append((p.detach() - before).cpu().flatten())
    assert nn.functional.cosine_similarity(deltas[0], deltas[1], dim=0).item() > 0.99


def test_bf16_gpt_trains_on_cuda_and_resumes_on_cpu() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=32, n_layer=2, n_head=4, d_model=64)).cuda().bfloat16()
    opt = COSMOS(cosmos_param_groups(model, lr=2e-3, rank=8), lr_ratio=1.0)
    gen = torch.Generator(device="cuda").manual_seed(0)
    idx = torch.randint(0, 64, (8, 33), device="cuda", generator=gen)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        _, loss = model(idx[:, :-1], idx[:, 1:])
        assert loss is not None
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    state = next(iter(opt.state.values()))
    assert all(v.dtype == torch.float32 for v in state.values() if isinstance(v, torch.Tensor) and v.ndim)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    cpu_model = GPT(GPTConfig(vocab_size=64, block_size=32, n_layer=2, n_head=4, d_model=64)).bfloat16()
    cpu_opt = COSMOS(cosmos_param_groups(cpu_model, lr=2e-3, rank=8), lr_ratio=1.0)
    cpu_opt.load_state_dict(torch.load(buf, map_location="cpu", weights_only=True))
    for st in cpu_opt.state.values():
        for v in st.values():
            if isinstance(v, torch.Tensor):
                assert v.device.type == "cpu"
