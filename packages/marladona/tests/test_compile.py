"""The compiled physics (SoccerEnv(compile=True)) gives the eager trajectory."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch

from marladona.checkpoint import load_checkpoint
from marladona.config import SoccerConfig
from marladona.env import SoccerEnv
from marladona.train import make_train_config, resume_or_start


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


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="torch.compile on CPU needs a C++ compiler"
)
def test_trainer_with_compiled_physics_follows_the_eager_trainer(tmp_path: Path) -> None:
    # `marladona train --compile`: the same run (seed, config) with compiled physics gives the eager
    # run's first iteration up to float rounding, and the option is not part of the saved config
    cfg = make_train_config("cpu-idle", num_envs=16, checkpoint_every=1000)
    cfg = dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, num_steps_per_env=8, num_learning_epochs=1,
                                                           num_mini_batches=1))  # fmt: skip
    rows = []
    for compile in (False, True):
        trainer = resume_or_start(cfg, tmp_path / str(compile), resume=False, progress=False, compile=compile)
        rows.append(trainer.learn(iterations=1))
    for key in ("reward/vel_to_ball", "reward/ball_to_goal", "value_loss"):
        assert rows[1][key] == pytest.approx(rows[0][key], rel=1e-3, abs=1e-6), key
    # a run-time choice: both runs saved the same configuration
    assert (
        load_checkpoint(tmp_path / "True" / "checkpoint.pt")["config"]
        == load_checkpoint(tmp_path / "False" / "checkpoint.pt")["config"]
    )
