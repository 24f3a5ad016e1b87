"""CUDA checks (marker ``gpu``; skipped without a CUDA device; run by ``make gpu-check``)."""

from __future__ import annotations

import pytest
import torch

from marladona.config import SoccerConfig
from marladona.env import SoccerEnv
from marladona.models import GEEActorCritic

pytestmark = pytest.mark.gpu


def test_cuda_physics_follows_the_cpu_physics() -> None:
    cfg = SoccerConfig(num_envs=64, max_team_size=3, team_size_range=(1, 3), obs_noise=False)
    cpu, gpu = SoccerEnv(cfg), SoccerEnv(cfg.replace(device="cuda"))
    cpu.reset(seed=0)
    gpu.reset(seed=0)
    gpu.set_state(cpu.state)  # the same start (the generators differ between devices)
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        a = torch.rand(64, 6, 5, generator=g) * 2 - 1
        _, r1, t1, u1, _ = cpu.step(a)
        _, r2, t2, u2, _ = gpu.step(a.cuda())
        assert torch.equal(t1, t2.cpu())
        assert torch.equal(u1, u2.cpu())
        torch.testing.assert_close(r2.cpu(), r1, rtol=1e-4, atol=1e-5)
        if bool((t1 | u1).any()):  # resets draw from device-specific generators: resynchronise
            gpu.set_state(cpu.state)


def test_model_forward_on_cuda_equals_cpu() -> None:
    torch.manual_seed(0)
    model = GEEActorCritic()
    ego, ent, mask = torch.randn(32, 18), torch.randn(32, 5, 8), torch.rand(32, 5) > 0.3
    a1, _b1, v1 = model(ego, ent, mask)
    a2, _b2, v2 = model.cuda()(ego.cuda(), ent.cuda(), mask.cuda())
    torch.testing.assert_close(a2.cpu(), a1, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(v2.cpu(), v1, rtol=1e-4, atol=1e-5)


def test_trainer_iterates_on_cuda(tmp_path: object) -> None:
    from marladona.train import Trainer, make_train_config

    cfg = make_train_config("cpu-3v3", num_envs=64, device="cuda", checkpoint_every=1000)
    row = Trainer(cfg, str(tmp_path), progress=False).learn(iterations=2)
    assert row["iteration"] == 2
