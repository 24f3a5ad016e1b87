"""Per-agent observations in the team frame (the code's ``tasks/soccer/mdp/observations.py``).

Every agent sees the game as if it were blue, attacking -x: red's view is the point mirror of the
world (positions and velocities negated, headings + pi). The yaw rate is a pseudo-scalar and is the
same under a rotation by pi, so it is *not* negated (the released code negates it for red: defect D1,
reproduced with ``SoccerConfig(paper_compat=True)``).

Layout of ``ego`` (18): 0-2 own velocity (vx, vy, omega) | 3-6 own pose (x/(L/2), y/(W/2), sin psi,
cos psi) | 7-8 ball velocity | 9-10 ball position (x/(L/2), y/(W/2)) | 11-17 field info (g/W, -g/W, 1,
-1, 1, own team size, opponent team size). Layout of an entity (8): (x, y normalised, sin, cos) at the
current and previous policy step, interleaved per feature: x_t, x_t-1, y_t, y_t-1, sin_t, sin_t-1,
cos_t, cos_t-1. Entity slots: the ``T - 1`` teammates, then the ``T`` opponents, each group sorted by
distance with the absent players last; ``entity_mask`` is False for absent players, whose features are
zero (never NaN, unlike the code's NaN sentinels).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from marladona.config import SoccerConfig
from marladona.sim import SoccerState

EGO_DIM = 18
ENTITY_DIM = 8
VEL_DIMS = (0, 1, 2, 7, 8)
"""Ego dims that get the +-0.005 velocity noise."""
POS_DIMS = (3, 4, 9, 10)
"""Ego dims that get the +-0.002 position noise."""
EGO_MIRROR_DIMS = (1, 2, 4, 5, 8, 10)
"""Ego dims negated by the y-mirror symmetry (vy, omega, y, sin psi, ball vy, ball y)."""
ENTITY_MIRROR_DIMS = (2, 3, 4, 5)
"""Entity dims negated by the y-mirror (y and sin psi, both history steps)."""
ACTION_MIRROR_DIMS = (1, 2, 4)
"""Action dims negated by the y-mirror (vy, omega, kick y)."""


class Obs(NamedTuple):
    """Observations of every agent slot of ``E`` games (``A = 2 T`` slots, ``K = 2 T - 1`` entities)."""

    ego: torch.Tensor
    """(E, A, 18) the policy observation, with noise."""
    critic_ego: torch.Tensor
    """(E, A, 18) the same without noise (the critic's input; the code's critic group)."""
    entities: torch.Tensor
    """(E, A, K, 8) teammates then opponents, sorted by distance."""
    entity_mask: torch.Tensor
    """(E, A, K) bool: the slot holds a present player."""
    active: torch.Tensor
    """(E, A) bool: the agent itself is present."""


def team_sign(max_team_size: int, device: torch.device | str) -> torch.Tensor:
    """``(A,)`` +1 for blue slots, -1 for red slots."""
    t = max_team_size
    return torch.cat((torch.ones(t, device=device), -torch.ones(t, device=device)))


def entity_slots(max_team_size: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Static slot indices: teammates ``(A, T-1)`` (own team minus self) and opponents ``(A, T)``."""
    t, a = max_team_size, 2 * max_team_size
    team = torch.arange(a, device=device) // t
    mates = [[j for j in range(a) if team[j] == team[i] and j != i] for i in range(a)]
    opps = [[j for j in range(a) if team[j] != team[i]] for i in range(a)]
    mate_idx = torch.tensor(mates, dtype=torch.long, device=device).reshape(a, t - 1)
    opp_idx = torch.tensor(opps, dtype=torch.long, device=device).reshape(a, t)
    return mate_idx, opp_idx


def compute_obs(
    state: SoccerState, cfg: SoccerConfig, generator: torch.Generator | None = None, noise: bool | None = None
) -> Obs:
    """Observations of every agent of every game (see the module docstring for the layout).

    Args:
        state: the games.
        cfg: their configuration (field width, noise, paper_compat).
        generator: source of the observation noise.
        noise: add the uniform noise to ``ego`` (default ``cfg.obs_noise``).

    Returns:
        An :class:`Obs`; ``critic_ego`` is ``ego`` without noise.
    """
    e, a, _ = state.pos.shape
    t = a // 2
    dev = state.pos.device
    sign = team_sign(t, dev)  # [A]
    hl = (state.length / 2)[:, None]  # [E, 1]
    hw = cfg.field_width / 2
    red = sign < 0
    yaw_t = state.yaw + math.pi * red.to(state.yaw.dtype)
    vel = state.vel * sign[None, :, None]
    omega = state.omega * sign if cfg.paper_compat else state.omega
    pos = state.pos * sign[None, :, None]
    ball_v = state.ball_vel[:, None, :] * sign[None, :, None]
    ball_p = state.ball_pos[:, None, :] * sign[None, :, None]
    blue_size = state.team_size[:, 0:1].to(pos.dtype).expand(e, t)
    red_size = state.team_size[:, 1:2].to(pos.dtype).expand(e, t)
    own = torch.cat((blue_size, red_size), 1)
    opp = torch.cat((red_size, blue_size), 1)
    gw = (state.goal_width / cfg.field_width)[:, None].expand(e, a)
    ones = torch.ones_like(gw)
    ego = torch.stack(
        (
            vel[..., 0], vel[..., 1], omega,
            pos[..., 0] / hl, pos[..., 1] / hw, torch.sin(yaw_t), torch.cos(yaw_t),
            ball_v[..., 0], ball_v[..., 1],
            ball_p[..., 0] / hl, ball_p[..., 1] / hw,
            gw, -gw, ones, -ones, ones, own, opp,
        ),
        dim=-1,
    )  # fmt: skip
    act = state.active
    ego = ego * act[..., None].to(ego.dtype)
    critic_ego = ego
    if cfg.obs_noise if noise is None else noise:
        scale = torch.zeros(EGO_DIM, device=dev)
        scale[list(VEL_DIMS)] = 0.005
        scale[list(POS_DIMS)] = 0.002
        u = torch.rand(ego.shape, generator=generator, device=dev) * 2 - 1
        ego = ego + u * scale * act[..., None].to(ego.dtype)
    entities, mask = _entities(state, cfg, sign)
    return Obs(ego, critic_ego, entities, mask, act)


def _entities(state: SoccerState, cfg: SoccerConfig, sign: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    e, a, _ = state.pos.shape
    t = a // 2
    dev = state.pos.device
    mate_idx, opp_idx = entity_slots(t, dev)
    idx = torch.cat((mate_idx, opp_idx), dim=1)  # [A, K]
    k = idx.shape[1]
    hl = (state.length / 2)[:, None, None]
    hw = cfg.field_width / 2
    # every agent's features in every viewer's team frame: viewer sign s_i, entity j
    s = sign[None, :, None]  # [1, A, 1]
    red_view = (sign < 0).to(state.yaw.dtype)[None, :, None]

    def feats(pos: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
        pj = pos[:, idx]  # [E, A, K, 2]
        yj = yaw[:, idx] + math.pi * red_view  # [E, A, K]
        return torch.stack((pj[..., 0] * s / hl, pj[..., 1] * s / hw, torch.sin(yj), torch.cos(yj)), dim=-1)

    now = feats(state.pos, state.yaw)
    prev = feats(state.prev_pos, state.prev_yaw)
    ent = torch.stack((now, prev), dim=-1).reshape(e, a, k, ENTITY_DIM)  # interleave per feature
    present = state.active[:, idx] & state.active[:, :, None]  # [E, A, K]
    dist = (state.pos[:, idx] - state.pos[:, :, None, :]).norm(dim=-1)
    key = torch.where(present, dist, torch.full_like(dist, math.inf))
    # sort each group separately: teammates (first T-1 slots), opponents (last T)
    order_m = torch.argsort(key[..., : t - 1], dim=-1, stable=True)
    order_o = torch.argsort(key[..., t - 1 :], dim=-1, stable=True) + (t - 1)
    order = torch.cat((order_m, order_o), dim=-1)
    ent = torch.gather(ent, 2, order[..., None].expand(e, a, k, ENTITY_DIM))
    mask = torch.gather(present, 2, order)
    ent = ent * mask[..., None].to(ent.dtype)
    return ent, mask


def global_state(state: SoccerState, cfg: SoccerConfig) -> torch.Tensor:
    """``(E, 3A + 4)`` the world state: (x/(L/2), y/(W/2), yaw/pi) per slot (zeros when absent), ball (x, y, vx, vy)."""
    hl = (state.length / 2)[:, None]
    hw = cfg.field_width / 2
    act = state.active.to(state.pos.dtype)
    agents = torch.stack((state.pos[..., 0] / hl, state.pos[..., 1] / hw, state.yaw / math.pi), -1) * act[..., None]
    ball = torch.cat((state.ball_pos[:, 0:1] / hl, state.ball_pos[:, 1:2] / hw, state.ball_vel), -1)
    return torch.cat((agents.flatten(1), ball), -1)
