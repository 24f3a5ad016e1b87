"""Tests of the team-frame observations: hand cases, a naive loop, and the two mirror symmetries."""

from __future__ import annotations

import math

import pytest
import torch

from marladona.config import SoccerConfig
from marladona.env import SoccerEnv
from marladona.observations import (
    EGO_DIM,
    EGO_MIRROR_DIMS,
    ENTITY_DIM,
    ENTITY_MIRROR_DIMS,
    POS_DIMS,
    VEL_DIMS,
    compute_obs,
    entity_slots,
    global_state,
    team_sign,
)
from marladona.sim import SoccerState, empty_state
from mirrors import point_mirror_swap, y_mirror


def _cfg(t: int, **kw: object) -> SoccerConfig:
    base: dict[str, object] = {"num_envs": 1, "max_team_size": t, "team_size_range": (1, t), "obs_noise": False}
    return SoccerConfig(**{**base, **kw})  # type: ignore[arg-type]


def _hand_state() -> SoccerState:
    """2v2 slots, blue 2 players, red 1 (red slot 1 absent); L = 5.4, g = 1.44, W = 3.6."""
    st = empty_state(1, 2)
    st.pos[0] = torch.tensor([[1.35, 0.9], [0.5, -0.5], [-1.35, -0.9], [0.0, -2.7]])
    st.yaw[0] = torch.tensor([math.pi / 2, 0.0, 0.0, 0.0])
    st.vel[0] = torch.tensor([[0.1, -0.2], [0.0, 0.0], [0.2, 0.1], [0.0, 0.0]])
    st.omega[0] = torch.tensor([0.5, 0.0, -0.3, 0.0])
    st.prev_pos.copy_(st.pos)
    st.prev_yaw.copy_(st.yaw)
    st.active[0] = torch.tensor([True, True, True, False])
    st.team_size[0] = torch.tensor([2, 1])
    st.ball_pos[0] = torch.tensor([-1.35, 0.45])
    st.ball_vel[0] = torch.tensor([0.3, 0.1])
    st.length.fill_(5.4)
    st.goal_width.fill_(1.44)
    return st


def test_ego_observation_hand_case() -> None:
    # blue sees the world as is; red sees it rotated by pi (positions, velocities negated, yaw + pi)
    obs = compute_obs(_hand_state(), _cfg(2))
    gw = 1.44 / 3.6
    blue0 = [0.1, -0.2, 0.5, 0.5, 0.5, 1.0, 0.0, 0.3, 0.1, -0.5, 0.25, gw, -gw, 1, -1, 1, 2, 1]
    red0 = [-0.2, -0.1, -0.3, 0.5, 0.5, 0.0, -1.0, -0.3, -0.1, 0.5, -0.25, gw, -gw, 1, -1, 1, 1, 2]
    torch.testing.assert_close(obs.ego[0, 0], torch.tensor(blue0), atol=1e-6, rtol=0)
    torch.testing.assert_close(obs.ego[0, 2], torch.tensor(red0), atol=1e-6, rtol=0)
    assert float(obs.ego[0, 3].abs().sum()) == 0.0  # absent player: zeros
    assert obs.active[0].tolist() == [True, True, True, False]
    torch.testing.assert_close(obs.critic_ego, obs.ego)


def test_paper_compat_negates_red_yaw_rate_only() -> None:
    # D1: the code multiplies red's (vx, vy, omega) by -1; omega is a pseudo-scalar under a rotation by pi
    st = _hand_state()
    fixed, compat = compute_obs(st, _cfg(2)), compute_obs(st, _cfg(2, paper_compat=True))
    assert float(compat.ego[0, 2, 2]) == pytest.approx(0.3)
    assert float(fixed.ego[0, 2, 2]) == pytest.approx(-0.3)
    torch.testing.assert_close(compat.ego[0, :2], fixed.ego[0, :2])
    torch.testing.assert_close(compat.ego[0, 2, 3:], fixed.ego[0, 2, 3:])


def _entity_features(st: SoccerState, g: int, j: int, red_view: bool, hl: float, hw: float) -> list[float]:
    """Entity j of game g as a viewer of that team sees it, written out by hand: x, y (normalised) and sin,
    cos of the heading, now and one step before, interleaved; red views the world rotated by pi."""
    s, dy = (-1.0, math.pi) if red_view else (1.0, 0.0)
    p, q = st.pos[g, j].tolist(), st.prev_pos[g, j].tolist()
    y, yp = float(st.yaw[g, j]) + dy, float(st.prev_yaw[g, j]) + dy
    return [
        s * p[0] / hl,
        s * q[0] / hl,
        s * p[1] / hw,
        s * q[1] / hw,
        math.sin(y),
        math.sin(yp),
        math.cos(y),
        math.cos(yp),
    ]


def test_entities_hand_case_sorted_masked_zero_filled() -> None:
    # 3v3 slots, red 2 players. Blue 0 at the origin: teammates at 1.0 (blue 1) and 0.5 (blue 2);
    # opponents at 2.0 (red 0), 0.5 (red 1), red 2 absent -> [blue 2, blue 1 | red 1, red 0, absent]
    st = empty_state(1, 3)
    st.pos[0] = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.5], [-2.0, 0.0], [0.3, 0.4], [0.9, -2.7]])
    st.yaw[0] = torch.tensor([0.0, 0.3, -1.0, 2.0, 0.5, 0.0])
    st.prev_pos[0] = st.pos[0] + 0.1
    st.prev_yaw[0] = st.yaw[0] - 0.2
    st.active[0] = torch.tensor([True, True, True, True, True, False])
    st.team_size[0] = torch.tensor([3, 2])
    st.length.fill_(5.4)
    obs = compute_obs(st, _cfg(3))
    hl, hw = 2.7, 1.8

    def feat(j: int, red_view: bool) -> list[float]:
        return _entity_features(st, 0, j, red_view, hl, hw)

    want = torch.tensor([feat(2, False), feat(1, False), feat(4, False), feat(3, False), [0.0] * 8])
    torch.testing.assert_close(obs.entities[0, 0], want, atol=1e-6, rtol=0)
    assert obs.entity_mask[0, 0].tolist() == [True, True, True, True, False]
    # red 0 at (-2, 0): teammate red 1 (red 2 absent); opponents blue 0 (2.0), blue 2 (2.06), blue 1 (3.0)
    want_r = torch.tensor([feat(4, True), [0.0] * 8, feat(0, True), feat(2, True), feat(1, True)])
    torch.testing.assert_close(obs.entities[0, 3], want_r, atol=1e-6, rtol=0)
    assert obs.entity_mask[0, 3].tolist() == [True, False, True, True, True]
    # the absent player sees nothing
    assert not bool(obs.entity_mask[0, 5].any())
    assert float(obs.entities[0, 5].abs().sum()) == 0.0


def _naive_entities(st: SoccerState, cfg: SoccerConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Per game, per viewer: teammates then opponents, each sorted by distance, absent ones last."""
    e, a = st.pos.shape[:2]
    t = a // 2
    ent = torch.zeros(e, a, a - 1, ENTITY_DIM)
    mask = torch.zeros(e, a, a - 1, dtype=torch.bool)
    for g in range(e):
        hl, hw = float(st.length[g]) / 2, cfg.field_width / 2
        for i in range(a):
            if not st.active[g, i]:
                continue
            red = i >= t
            mates = [j for j in range(a) if (j >= t) == red and j != i]
            opps = [j for j in range(a) if (j >= t) != red]
            k = 0
            for group in (mates, opps):
                present = [j for j in group if st.active[g, j]]
                present.sort(key=lambda j: float((st.pos[g, j] - st.pos[g, i]).norm()))
                for slot, j in enumerate(present):
                    ent[g, i, k + slot] = torch.tensor(_entity_features(st, g, j, red, hl, hw))
                    mask[g, i, k + slot] = True
                k += len(group)
    return ent, mask


def test_entities_equal_a_naive_loop_and_history_holds_the_previous_step() -> None:
    cfg = SoccerConfig(num_envs=6, max_team_size=3, team_size_range=(1, 3), init_level_range=(0, 3), obs_noise=False)
    env = SoccerEnv(cfg, final_obs=False)
    env.reset(seed=2)
    g = torch.Generator().manual_seed(3)
    for _ in range(5):
        before = env.state.clone()
        obs, *_ = env.step(torch.rand(6, 6, 5, generator=g) * 2 - 1)
        ongoing = env.state.step > 0
        # the history slot is the pose before this step (for games that did not just restart)
        torch.testing.assert_close(env.state.prev_pos[ongoing], before.pos[ongoing])
        ent, mask = _naive_entities(env.state, cfg)
        assert torch.equal(obs.entity_mask, mask)
        torch.testing.assert_close(obs.entities, ent, atol=1e-6, rtol=0)
    assert float((env.state.prev_pos - env.state.pos).abs().max()) > 0  # the history is not trivial


def _played(seed: int, paper_compat: bool = False) -> tuple[SoccerConfig, SoccerState]:
    cfg = SoccerConfig(num_envs=8, max_team_size=3, team_size_range=(1, 3), obs_noise=False, paper_compat=paper_compat)
    env = SoccerEnv(cfg, final_obs=False)
    env.reset(seed=seed)
    g = torch.Generator().manual_seed(seed)
    for _ in range(10):
        env.step(torch.rand(8, 6, 5, generator=g) * 2 - 1)
    st = env.state.clone()
    st.ball_vel.copy_(torch.randn(8, 2, generator=g) * 0.3)  # random play rarely touches the ball
    return cfg, st


def test_team_mirror_gives_red_i_the_observation_of_blue_i() -> None:
    # obs_blue_i(mirror(s)) == obs_red_i(s): one shared policy sees the same game from both sides
    cfg, st = _played(0)
    a, t = st.pos.shape[1], st.pos.shape[1] // 2
    swap = torch.cat((torch.arange(t, a), torch.arange(t)))
    o, om = compute_obs(st, cfg), compute_obs(point_mirror_swap(st), cfg)
    assert float(st.omega.abs().max()) > 0.01
    torch.testing.assert_close(om.ego, o.ego[:, swap], atol=1e-5, rtol=0)
    torch.testing.assert_close(om.entities, o.entities[:, swap], atol=1e-5, rtol=0)
    assert torch.equal(om.entity_mask, o.entity_mask[:, swap])
    assert torch.equal(om.active, o.active[:, swap])


def test_team_mirror_breaks_on_the_yaw_rate_with_paper_compat() -> None:
    # D1 reproduced: everything but omega still matches, omega flips sign for moving agents
    cfg, st = _played(0, paper_compat=True)
    a, t = st.pos.shape[1], st.pos.shape[1] // 2
    swap = torch.cat((torch.arange(t, a), torch.arange(t)))
    o, om = compute_obs(st, cfg), compute_obs(point_mirror_swap(st), cfg)
    others = [d for d in range(EGO_DIM) if d != 2]
    torch.testing.assert_close(om.ego[..., others], o.ego[:, swap][..., others], atol=1e-5, rtol=0)
    torch.testing.assert_close(om.ego[..., 2], -o.ego[:, swap][..., 2], atol=1e-5, rtol=0)
    assert float((om.ego[..., 2] - o.ego[:, swap][..., 2]).abs().max()) > 0.01


@pytest.mark.parametrize("paper_compat", [False, True])
def test_y_mirror_negates_exactly_the_documented_dims(paper_compat: bool) -> None:
    # the learner's symmetry augmentation negates EGO_MIRROR_DIMS and ENTITY_MIRROR_DIMS, nothing else
    cfg, st = _played(1, paper_compat)
    o, om = compute_obs(st, cfg), compute_obs(y_mirror(st), cfg)
    ego_sign = torch.ones(EGO_DIM)
    ego_sign[list(EGO_MIRROR_DIMS)] = -1
    ent_sign = torch.ones(ENTITY_DIM)
    ent_sign[list(ENTITY_MIRROR_DIMS)] = -1
    torch.testing.assert_close(om.ego, o.ego * ego_sign, atol=1e-5, rtol=0)
    torch.testing.assert_close(om.entities, o.entities * ent_sign, atol=1e-5, rtol=0)
    assert torch.equal(om.entity_mask, o.entity_mask)
    # each documented dim really changes somewhere (the list is not too long)
    for d in EGO_MIRROR_DIMS:
        assert float(o.ego[..., d].abs().max()) > 1e-3, d
    for d in ENTITY_MIRROR_DIMS:
        assert float(o.entities[..., d].abs().max()) > 1e-3, d


def test_noise_is_bounded_and_only_on_velocity_and_pose_dims() -> None:
    # U(+-0.005) on velocities, U(+-0.002) on positions and heading (the code's base_own_pose_w term)
    cfg = SoccerConfig(num_envs=64, max_team_size=2, team_size_range=(1, 2), obs_noise=True)
    env = SoccerEnv(cfg, final_obs=False)
    obs = env.reset(seed=0)
    diff = (obs.ego - obs.critic_ego).abs()
    bound = torch.zeros(EGO_DIM)
    bound[list(VEL_DIMS)] = 0.005
    bound[list(POS_DIMS)] = 0.002
    assert set(VEL_DIMS) | set(POS_DIMS) == {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
    assert bool((diff <= bound + 1e-7).all())
    act = obs.active
    for d in range(EGO_DIM):
        hi = float(diff[..., d][act].max())
        if bound[d] > 0:
            assert hi > 0.5 * float(bound[d]), d  # the full range is used
        else:
            assert hi == 0.0, d
    assert float(diff[~act].sum()) == 0.0


def test_global_state_hand_case() -> None:
    st = _hand_state()
    gs = global_state(st, _cfg(2))
    assert gs.shape == (1, 3 * 4 + 4)
    want = [0.5, 0.5, 0.5, 0.5 / 2.7, -0.5 / 1.8, 0.0, -0.5, -0.5, 0.0, 0.0, 0.0, 0.0, -0.5, 0.25, 0.3, 0.1]
    torch.testing.assert_close(gs[0], torch.tensor(want), atol=1e-6, rtol=0)


def test_team_sign_and_entity_slots_by_hand() -> None:
    assert team_sign(2, "cpu").tolist() == [1.0, 1.0, -1.0, -1.0]
    mates, opps = entity_slots(3, "cpu")
    assert mates.tolist() == [[1, 2], [0, 2], [0, 1], [4, 5], [3, 5], [3, 4]]
    assert opps.tolist() == [[3, 4, 5]] * 3 + [[0, 1, 2]] * 3
    mates.fill_(0)  # a copy: the cached indices are not changed
    assert entity_slots(3, "cpu")[0].tolist()[0] == [1, 2]
    m1, o1 = entity_slots(1, "cpu")
    assert m1.shape == (2, 0)
    assert o1.tolist() == [[1], [0]]
