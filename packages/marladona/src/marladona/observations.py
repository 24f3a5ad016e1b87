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
from marladona.vec2 import constant_cache

EGO_DIM = 18
ENTITY_DIM = 8
VEL_DIMS = (0, 1, 2, 7, 8)
"""Ego dims that get the +-0.005 velocity noise (the code's ``base_own_vel`` and ``ball_vel_w`` terms)."""
POS_DIMS = (3, 4, 5, 6, 9, 10)
"""Ego dims that get the +-0.002 position noise (the code's ``base_own_pose_w`` term, sin and cos included,
and ``ball_pos_w``)."""
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
    """``(A,)`` +1 for blue slots, -1 for red slots (cached per size and device: do not modify it in place)."""
    return _team_sign(max_team_size, torch.device(device))


def entity_slots(max_team_size: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Static slot indices: teammates ``(A, T-1)`` (own team minus self) and opponents ``(A, T)``.

    Example:
        >>> mates, opps = entity_slots(2, "cpu")
        >>> mates.tolist(), opps.tolist()
        ([[1], [0], [3], [2]], [[2, 3], [2, 3], [0, 1], [0, 1]])
    """
    mate_idx, opp_idx, _ = _entity_slots(max_team_size, torch.device(device))
    return mate_idx.clone(), opp_idx.clone()


@constant_cache
def _team_sign(t: int, device: torch.device) -> torch.Tensor:
    return torch.tensor([1.0] * t + [-1.0] * t, device=device)


@constant_cache
def _entity_slots(t: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    a = 2 * t
    mates = [[j for j in range(a) if j // t == i // t and j != i] for i in range(a)]
    opps = [[j for j in range(a) if j // t != i // t] for i in range(a)]
    mate_idx = torch.tensor(mates, dtype=torch.long, device=device).reshape(a, t - 1)
    opp_idx = torch.tensor(opps, dtype=torch.long, device=device).reshape(a, t)
    return mate_idx, opp_idx, torch.cat((mate_idx, opp_idx), dim=1)


@constant_cache
def _noise_scale(device: torch.device) -> torch.Tensor:
    scale = [0.0] * EGO_DIM
    for i in VEL_DIMS:
        scale[i] = 0.005
    for i in POS_DIMS:
        scale[i] = 0.002
    return torch.tensor(scale, device=device)


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
    sign = _team_sign(t, dev)  # [A]
    hl = (state.length / 2)[:, None]  # [E, 1]
    hw = cfg.field_width / 2
    # the team frame of red is the world rotated by pi: positions, velocities, sin and cos of the heading
    # (sin(psi + pi) = -sin psi) all change sign; the yaw rate does not (D1 with paper_compat)
    sin_yaw, cos_yaw = torch.sin(state.yaw), torch.cos(state.yaw)  # [E, A]
    sgn = sign[None, :]  # [1, A]
    vel = state.vel * sgn[..., None]
    omega = state.omega * sgn if cfg.paper_compat else state.omega
    pos = state.pos * sgn[..., None]
    ball_v = state.ball_vel[:, None, :] * sgn[..., None]
    ball_p = state.ball_pos[:, None, :] * sgn[..., None]
    blue_size = state.team_size[:, 0:1].to(pos.dtype).expand(e, t)
    red_size = state.team_size[:, 1:2].to(pos.dtype).expand(e, t)
    own = torch.cat((blue_size, red_size), 1)
    opp = torch.cat((red_size, blue_size), 1)
    gw = (state.goal_width / cfg.field_width)[:, None].expand(e, a)
    ones = torch.ones_like(gw)
    ego = torch.stack(
        (
            vel[..., 0], vel[..., 1], omega,
            pos[..., 0] / hl, pos[..., 1] / hw, sin_yaw * sgn, cos_yaw * sgn,
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
        u = torch.rand(ego.shape, generator=generator, device=dev) * 2 - 1
        ego = ego + u * _noise_scale(dev) * act[..., None].to(ego.dtype)
    entities, mask = _entities(state, cfg, sign, sin_yaw, cos_yaw)
    return Obs(ego, critic_ego, entities, mask, act)


def _entities(
    state: SoccerState, cfg: SoccerConfig, sign: torch.Tensor, sin_yaw: torch.Tensor, cos_yaw: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    e, a, _ = state.pos.shape
    t = a // 2
    idx = _entity_slots(t, state.pos.device)[2]  # [A, K]: teammates then opponents
    k = idx.shape[1]
    hl = (state.length / 2)[:, None]  # [E, 1]
    hw = cfg.field_width / 2
    # every agent's features in the world frame, current and previous step interleaved per feature
    now = torch.stack((state.pos[..., 0] / hl, state.pos[..., 1] / hw, sin_yaw, cos_yaw), dim=-1)
    prev = torch.stack(
        (
            state.prev_pos[..., 0] / hl,
            state.prev_pos[..., 1] / hw,
            torch.sin(state.prev_yaw),
            torch.cos(state.prev_yaw),
        ),
        dim=-1,
    )
    feats = torch.stack((now, prev), dim=-1).reshape(e, a, ENTITY_DIM)  # x_t, x_t-1, y_t, y_t-1, ...
    # each viewer's teammates and opponents, each group sorted by distance, absent ones last
    flat_idx = idx.reshape(-1)
    present = state.active.index_select(1, flat_idx).reshape(e, a, k) & state.active[:, :, None]  # [E, A, K]
    rel = state.pos.index_select(1, flat_idx).reshape(e, a, k, 2) - state.pos[:, :, None, :]
    dist = torch.hypot(rel[..., 0], rel[..., 1])
    key = torch.where(present, dist, torch.full_like(dist, math.inf))
    order_m = torch.argsort(key[..., : t - 1], dim=-1, stable=True)
    order_o = torch.argsort(key[..., t - 1 :], dim=-1, stable=True) + (t - 1)
    order = torch.cat((order_m, order_o), dim=-1)  # [E, A, K]
    who = torch.gather(idx.expand(e, a, k), 2, order)  # [E, A, K]: the agent in each entity slot
    mask = torch.gather(present, 2, order)
    offset = torch.arange(e, device=who.device)[:, None, None] * a
    ent = feats.reshape(e * a, ENTITY_DIM).index_select(0, (who + offset).reshape(-1)).reshape(e, a, k, ENTITY_DIM)
    # red viewers see every feature negated (the rotation by pi); absent slots are zero
    ent = ent * (mask.to(ent.dtype) * sign[None, :, None])[..., None]
    return ent, mask


def flatten_obs(obs: Obs, critic: bool = False) -> torch.Tensor:
    """``(E, A, 18 + 9K)`` one flat row per slot: ego (``critic_ego`` when ``critic``), the K entities, the K
    mask bits as 0/1 (the layout of the PettingZoo observation and of the rsl_rl groups)."""
    first = obs.critic_ego if critic else obs.ego
    return torch.cat((first, obs.entities.flatten(2), obs.entity_mask.to(first.dtype)), dim=-1)


def global_state(state: SoccerState, cfg: SoccerConfig) -> torch.Tensor:
    """``(E, 3A + 4)`` the world state: (x/(L/2), y/(W/2), yaw/pi) per slot (zeros when absent), ball (x, y, vx, vy)."""
    hl = (state.length / 2)[:, None]
    hw = cfg.field_width / 2
    act = state.active.to(state.pos.dtype)
    agents = torch.stack((state.pos[..., 0] / hl, state.pos[..., 1] / hw, state.yaw / math.pi), -1) * act[..., None]
    ball = torch.cat((state.ball_pos[:, 0:1] / hl, state.ball_pos[:, 1:2] / hw, state.ball_vel), -1)
    return torch.cat((agents.flatten(1), ball), -1)
