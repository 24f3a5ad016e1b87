"""Tests of the player factory and the policy player."""

from __future__ import annotations

import pytest
import torch

from marladona.config import SoccerConfig
from marladona.env import SoccerEnv
from marladona.models import GEEActorCritic
from marladona.players import PolicyPlayer, make_player


def test_make_player_names_and_errors() -> None:
    assert type(make_player("heuristic:0.25")).__name__ == "RoleBot"
    assert type(make_player("idle")).__name__ == "IdleBot"
    with pytest.raises(ValueError, match="strength"):
        make_player("heuristic:abc")
    with pytest.raises(ValueError, match="does not exist"):
        make_player("runs/none/checkpoint.pt", what="checkpoint")
    with pytest.raises(ValueError, match="opponent must be"):
        make_player("nobody")
    with pytest.raises(ValueError, match="act"):
        make_player(3)


def test_policy_player_plays_bigger_games_with_the_same_live_weights() -> None:
    torch.manual_seed(0)
    model = GEEActorCritic(max_teammates=0, max_opponents=1)  # trained 1v1
    player = PolicyPlayer(model)
    env = SoccerEnv(SoccerConfig(num_envs=4, max_team_size=3, team_size_range=(1, 3), obs_noise=False))
    obs = env.reset(seed=0)
    before = player.act(env.state, env.cfg, 0, obs)
    assert before.shape == (4, 3, 5)
    assert torch.isfinite(before).all()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)  # training goes on: the resized view must follow
    after = player.act(env.state, env.cfg, 0, obs)
    assert not torch.equal(before, after)
