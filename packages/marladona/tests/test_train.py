"""Tests of the trainer: learning against a static opponent, checkpoints, bit-identical resume, logs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from marladona.checkpoint import load_checkpoint, load_policy, save_policy
from marladona.train import Trainer, config_from_dict, make_train_config, resume_or_start


def _small(num_envs: int = 32, steps: int = 8, **kw: object) -> object:
    cfg = make_train_config("cpu-idle", num_envs=num_envs, checkpoint_every=1000, **kw)
    ppo = dataclasses.replace(cfg.ppo, num_steps_per_env=steps, num_learning_epochs=2, num_mini_batches=2)
    return dataclasses.replace(cfg, ppo=ppo)


@pytest.mark.slow
def test_short_training_improves_shaping_return_against_an_idle_team(tmp_path: Path) -> None:
    # Spec test 14: 1v1 on the smallest field against an idle team; the per-step shaping reward of
    # the learner (moving to the ball, ball towards the goal, facing the ball) rises with training.
    torch.set_num_threads(1)
    cfg = _small(num_envs=128, steps=24)
    trainer = Trainer(cfg, tmp_path, progress=False)
    trainer.learn(iterations=60)
    keys = ("reward/vel_to_ball", "reward/ball_to_goal", "reward/ball_direction")
    shaping = [sum(row[k] for k in keys) for row in trainer.history]
    first, last = sum(shaping[:5]) / 5, sum(shaping[-15:]) / 15
    assert last > first + 5e-4, (first, last)


def test_learn_writes_logs_with_every_reward_term_and_a_checkpoint(tmp_path: Path) -> None:
    trainer = Trainer(_small(), tmp_path, progress=False)
    row = trainer.learn(iterations=2)
    assert row["iteration"] == 2
    assert row["env_steps"] == 2 * 32 * 8
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["iteration"] for x in lines] == [1, 2]
    header = (tmp_path / "log.csv").read_text().splitlines()[0].split(",")
    for term in ("score", "ball_out", "collision", "vel_to_ball", "ball_to_goal", "ball_direction"):
        assert f"reward/{term}" in header
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["iteration"] == 2
    assert config_from_dict(ckpt["config"]) == trainer.cfg


def test_resume_continues_bit_identically(tmp_path: Path) -> None:
    cfg = _small()
    straight = Trainer(cfg, tmp_path / "a", progress=False)
    straight.learn(iterations=4)
    first = Trainer(cfg, tmp_path / "b", progress=False)
    first.learn(iterations=2)
    resumed = resume_or_start(cfg, tmp_path / "b", resume=True, progress=False)
    assert resumed.iteration == 2
    resumed.learn(iterations=4)
    for (name, p), q in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert [r["reward/vel_to_ball"] for r in straight.history] == [r["reward/vel_to_ball"] for r in resumed.history]


def test_resume_refuses_a_missing_checkpoint_and_start_refuses_to_overwrite(tmp_path: Path) -> None:
    cfg = _small()
    with pytest.raises(ValueError, match="no checkpoint"):
        resume_or_start(cfg, tmp_path / "none", resume=True)
    Trainer(cfg, tmp_path / "run", progress=False).learn(iterations=1)
    with pytest.raises(ValueError, match="already holds a run"):
        resume_or_start(cfg, tmp_path / "run", resume=False)


def test_load_refuses_another_configuration(tmp_path: Path) -> None:
    Trainer(_small(), tmp_path, progress=False).learn(iterations=1)
    other = Trainer(_small(num_envs=16), tmp_path / "x", progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        other.load(tmp_path / "checkpoint.pt")


def test_policy_round_trip_and_resize(tmp_path: Path) -> None:
    trainer = Trainer(_small(), tmp_path, progress=False)
    path = save_policy(trainer.model, tmp_path / "p.pt", meta={"command": "test"})
    model = load_policy(path)
    ego, ent, mask = torch.randn(4, 18), torch.randn(4, 1, 8), torch.ones(4, 1, dtype=torch.bool)
    assert torch.equal(model.act_deterministic(ego, ent, mask), trainer.model.act_deterministic(ego, ent, mask))
    big = load_policy(path, max_team_size=5)  # the same weights with slots for 5 a side
    assert big.num_entities == 9
    ent9 = torch.zeros(4, 9, 8)
    mask9 = torch.zeros(4, 9, dtype=torch.bool)
    ent9[:, 4] = ent[:, 0]
    mask9[:, 4] = True  # the one opponent in the first opponent slot
    assert torch.allclose(big.act_deterministic(ego, ent9, mask9), model.act_deterministic(ego, ent, mask))


def test_learn_argument_errors(tmp_path: Path) -> None:
    trainer = Trainer(_small(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="iterations or minutes"):
        trainer.learn()
    with pytest.raises(ValueError, match="minutes"):
        trainer.learn(minutes=0)
    with pytest.raises(ValueError, match="preset"):
        make_train_config("nope")


def test_load_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        load_checkpoint(bad)
    torch.save({"x": 1}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a marladona checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
