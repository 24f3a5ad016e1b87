"""The compiled physics (SoccerEnv(compile=True)) gives the eager trajectory."""

from __future__ import annotations

import shutil

import pytest
import torch

from marladona.config import SoccerConfig
from marladona.env import SoccerEnv


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="torch.compile on CPU needs a C++ compiler"
)
def test_compiled_env_follows_the_eager_env() -> None:
    cfg = SoccerConfig(num_envs=32, max_team_size=2, team_size_range=(1, 2))
    eager, compiled = SoccerEnv(cfg), SoccerEnv(cfg, compile=True)
    eager.reset(seed=3)
    compiled.reset(seed=3)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        a = torch.rand(32, 4, 5, generator=g) * 2 - 1
        o1, r1, t1, u1, _ = eager.step(a)
        o2, r2, t2, u2, _ = compiled.step(a)
        assert torch.equal(t1, t2)
        assert torch.equal(u1, u2)
        torch.testing.assert_close(r2, r1, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(compiled.state.pos, eager.state.pos, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(o2.ego, o1.ego, rtol=1e-4, atol=1e-5)
