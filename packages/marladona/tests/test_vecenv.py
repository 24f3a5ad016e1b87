"""Tests of the rsl_rl-style learner view."""

from __future__ import annotations

import pytest
import torch

from marladona.config import SoccerConfig
from marladona.env import SoccerEnv
from marladona.vecenv import LearnerVecEnv, flat_obs, split_flat_obs


def _groups(obs: object) -> dict[str, torch.Tensor]:
    return {k: obs[k] for k in ("policy", "critic")}  # type: ignore[index]


def test_rows_are_blue_slots_and_match_the_soccer_env() -> None:
    cfg = SoccerConfig(num_envs=3, max_team_size=2, team_size_range=(1, 2), obs_noise=False)
    venv = LearnerVecEnv(cfg, opponent="idle")
    assert venv.num_envs == 6
    g = _groups(venv.get_observations())
    assert g["policy"].shape == (6, 18 + 9 * 3)
    ego, ent, mask = split_flat_obs(g["policy"], 3)
    full = venv.env.obs
    assert torch.equal(ego.reshape(3, 2, 18), full.ego[:, :2])
    assert torch.equal(ent.reshape(3, 2, 3, 8), full.entities[:, :2])
    assert torch.equal(mask.reshape(3, 2, 3), full.entity_mask[:, :2])
    assert torch.equal(g["critic"], flat_obs(full, 0, critic=True))


def test_step_returns_blue_rewards_dones_and_time_outs() -> None:
    cfg = SoccerConfig(num_envs=4, max_team_size=1, team_size_range=(1, 1), episode_length_s=0.16)
    venv = LearnerVecEnv(cfg, opponent="heuristic")
    _, rew, dones, extras = venv.step(torch.zeros(4, 5))
    assert rew.shape == (4,)
    assert not dones.any()
    _, rew, dones, extras = venv.step(torch.zeros(4, 5))  # 2 steps = the shortened time-out
    assert (dones == (extras["time_outs"] | (extras["episode"]["goal"].numel() > 0))).all()
    assert extras["time_outs"].any()
    assert set(extras["log"]) == {
        f"Episode_Reward/{k}"
        for k in ("score", "ball_out", "collision", "vel_to_ball", "ball_to_goal", "ball_direction")
    }
    assert extras["active"].all()


def test_episode_length_buf_writes_through_to_the_games() -> None:
    # rsl_rl's init_at_random_ep_len assigns this attribute; the games' clocks must follow
    cfg = SoccerConfig(num_envs=3, max_team_size=2, team_size_range=(2, 2))
    venv = LearnerVecEnv(cfg, opponent="idle")
    venv.episode_length_buf = torch.tensor([5, 5, 9, 9, 370, 370])
    assert venv.env.state.step.tolist() == [5, 9, 370]
    assert venv.episode_length_buf.tolist() == [5, 5, 9, 9, 370, 370]
    for _ in range(5):
        _, _, _dones, extras = venv.step(torch.zeros(6, 5))
    assert extras["time_outs"].tolist() == [False, False, False, False, True, True]


def test_log_averages_over_the_players_of_the_step_not_those_after_the_reset() -> None:
    # Every game times out on this step and redraws its team sizes (1-3). The log must average each term over
    # the blue players that took part, recomputed here by stepping an identical env directly.
    cfg = SoccerConfig(num_envs=64, max_team_size=3, team_size_range=(1, 3), seed=5)
    venv, twin = LearnerVecEnv(cfg, opponent="idle"), SoccerEnv(cfg, final_obs=False)
    twin.reset()
    for env in (venv.env, twin):
        env.state.step.fill_(cfg.max_episode_steps - 1)
    before = twin.state.active[:, :3].clone()
    _, _, term, trunc, info = twin.step(torch.zeros(64, 6, 5))
    assert bool((term | trunc).all())
    assert not torch.equal(twin.state.active[:, :3], before)  # the reset redrew some team sizes
    _, _, _, extras = venv.step(torch.zeros(64 * 3, 5))
    for name, value in info["terms"].items():
        expected = value[:, :3][before].sum() / before.sum()
        torch.testing.assert_close(extras["log"][f"Episode_Reward/{name}"], expected)


def test_bad_actions_are_refused() -> None:
    venv = LearnerVecEnv(SoccerConfig(num_envs=2, max_team_size=1, team_size_range=(1, 1)), opponent="idle")
    with pytest.raises(ValueError, match=r"shape \(num_envs=2, 5\)"):
        venv.step(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="x must have shape"):
        split_flat_obs(torch.zeros(2, 5), 1)


def test_rsl_rl_on_policy_runner_runs_two_iterations(tmp_path: object) -> None:
    rsl = pytest.importorskip("rsl_rl.runners", reason="rsl-rl-lib is an optional extra ([rsl])")
    venv = LearnerVecEnv(SoccerConfig(num_envs=8, max_team_size=1, team_size_range=(1, 1)), opponent="idle")
    cfg = {
        "num_steps_per_env": 8, "save_interval": 100, "obs_groups": {"actor": ["policy"], "critic": ["critic"]},
        "algorithm": {"class_name": "PPO"},
        "actor": {"class_name": "MLPModel", "hidden_dims": [32], "distribution_cfg": {"class_name": "BetaDistribution"}},
        "critic": {"class_name": "MLPModel", "hidden_dims": [32]},
    }  # fmt: skip
    runner = rsl.OnPolicyRunner(venv, cfg, str(tmp_path), device="cpu")
    runner.learn(2)
