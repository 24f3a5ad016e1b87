"""Tests of the opponent curriculum and the self-play pool."""

from __future__ import annotations

import pytest
import torch

from marladona.config import SoccerConfig
from marladona.env import SoccerEnv
from marladona.models import GEEActorCritic
from marladona.players import PolicyPlayer
from marladona.selfplay import CurriculumConfig, OpponentCurriculum, PolicyPool


def _model(t: int = 1) -> GEEActorCritic:
    torch.manual_seed(0)
    return GEEActorCritic(max_teammates=t - 1, max_opponents=t)


def test_promotion_needs_a_full_window_the_score_and_min_iters() -> None:
    cfg = CurriculumConfig(stages=("idle", "heuristic:0.25", "heuristic:0.5"), window=4, min_iters=3)
    cur = OpponentCurriculum(cfg, _model(), torch.device("cpu"))
    cur.record(torch.tensor([1, 1, 1]))
    assert not cur.maybe_promote(10)  # window not full
    cur.record(torch.tensor([0]))
    assert cur.score_diff == 0.75
    assert not cur.maybe_promote(10)
    cur.record(torch.tensor([1]))  # window now [1, 1, 0, 1]... deque of 4: [1, 1, 0, 1]
    assert cur.score_diff == 0.75
    cur.record(torch.tensor([1]))  # [1, 0, 1, 1] -> still 0.75
    cur.record(torch.tensor([1, 1]))  # [1, 1, 1, 1]
    assert not cur.maybe_promote(2)  # fewer than min_iters since the start
    assert cur.maybe_promote(3)
    assert cur.name == "heuristic:0.25"
    cur.record(torch.ones(4, dtype=torch.long))
    assert not cur.maybe_promote(5)  # min_iters since the last promotion
    assert cur.maybe_promote(6)
    assert cur.name == "heuristic:0.5"
    cur.record(torch.ones(4, dtype=torch.long))
    assert not cur.maybe_promote(20)  # the last scripted stage stays
    assert [p["from"] for p in cur.promotions] == ["idle", "heuristic:0.25"]


def test_selfplay_pool_grows_up_to_max_levels_and_round_trips() -> None:
    model = _model()
    cfg = CurriculumConfig(stages=("selfplay",), window=1, min_iters=1, max_levels=2)
    cur = OpponentCurriculum(cfg, model, torch.device("cpu"))
    assert len(cur.pool) == 1  # seeded with a copy of the initial policy
    for it in (1, 2, 3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * it)  # training moves on between promotions
        cur.record(torch.tensor([1]))
        assert cur.maybe_promote(it)
    assert len(cur.pool) == 2
    state = cur.state_dict()
    torch.manual_seed(123)
    other = OpponentCurriculum(cfg, GEEActorCritic(max_teammates=0, max_opponents=1), torch.device("cpu"))
    other.load_state_dict(state)
    assert other.promotions == cur.promotions
    for a, b in zip(cur.pool.models, other.pool.models, strict=True):
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            assert torch.equal(p, q)
    first, second = (next(iter(m.parameters())) for m in other.pool.models)
    assert not torch.equal(first, second)  # two different snapshots, both restored


def test_pool_members_are_frozen_copies_and_split_games_in_chunks() -> None:
    model = _model()
    pool = PolicyPool(max_levels=2)
    pool.add(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)  # training goes on; the frozen copy must not follow
    pool.add(model)
    assert all(not p.requires_grad for m in pool.models for p in m.parameters())
    env = SoccerEnv(SoccerConfig(num_envs=6, max_team_size=1, team_size_range=(1, 1), obs_noise=False))
    obs = env.reset(seed=0)
    acts = pool.act(env.state, env.cfg, 1, obs)
    first = PolicyPlayer(pool.models[0]).act(env.state, env.cfg, 1, obs)
    second = PolicyPlayer(pool.models[1]).act(env.state, env.cfg, 1, obs)
    assert torch.equal(acts[:3], first[:3])
    assert torch.equal(acts[3:], second[3:])
    assert not torch.equal(first, second)


def test_curriculum_config_errors() -> None:
    with pytest.raises(ValueError, match="stages"):
        CurriculumConfig(stages=())
    with pytest.raises(ValueError, match="selfplay"):
        CurriculumConfig(stages=("selfplay", "idle"))
    with pytest.raises(ValueError, match="window"):
        CurriculumConfig(window=0)
