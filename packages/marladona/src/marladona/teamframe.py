"""The team frame the scripted bots think in, and the inversion of the action map.

The bots of :mod:`marladona.heuristic` see the world as their team sees it when it attacks -x (red's
view is the point mirror of the world: positions and velocities negated, headings + pi), so one code
path serves both teams. Actions are body-frame commands, which a rotation by pi leaves unchanged: a bot
given the point-mirrored, team-swapped state returns the same actions for red as for blue.
Commands are inverted through the action map of :func:`marladona.sim.action_to_commands`: a
body-frame velocity ``(v_x, v_y)`` becomes ``disc_to_square(v_x / 0.35 | 0.25, v_y / 0.25)``, a yaw
rate ``omega`` becomes ``a_2 = omega / 2.5`` and a body-frame target ball velocity ``k`` becomes
``disc_to_square(2 k_x - 0.01, k_y)``. The geometry helpers broadcast over leading dims.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from marladona.config import SoccerConfig
from marladona.sim import SoccerState, disc_to_square
from marladona.vec2 import norm2, rot_inv, stack2

__all__ = ["TeamView", "check_team", "clamp_abs", "kick_action", "move_action", "perp", "team_view", "to_body", "unit"]


class TeamView(NamedTuple):
    """One team's view of ``E`` games in its team frame (it attacks -x, defends +x)."""

    pos: torch.Tensor
    """(E, T, 2) own positions."""
    heading: torch.Tensor
    """(E, T, 2) own headings as unit vectors (cos psi, sin psi)."""
    active: torch.Tensor
    """(E, T) bool: own slot holds a player."""
    opp_pos: torch.Tensor
    """(E, T, 2) opponent positions."""
    opp_active: torch.Tensor
    """(E, T) bool."""
    ball: torch.Tensor
    """(E, 2) ball position."""
    ball_vel: torch.Tensor
    """(E, 2) ball velocity."""
    half_length: torch.Tensor
    """(E,) L / 2: the opponent goal line is at x = -L/2, the own one at +L/2."""
    half_goal: torch.Tensor
    """(E,) g / 2."""
    team_size: torch.Tensor
    """(E,) long: own team size."""


def team_view(state: SoccerState, team: int) -> TeamView:
    """The state of ``E`` games seen by ``team`` (0 blue, 1 red: the point mirror of the world).

    Headings are mirrored as unit vectors (``-(cos psi, sin psi)`` for red) rather than as ``psi + pi``,
    so the view of a point-mirrored state equals the original view up to the rounding of cos and sin.
    """
    check_team(team)
    t = state.max_team_size
    own, opp = slice(team * t, (team + 1) * t), slice((1 - team) * t, (2 - team) * t)
    s = 1.0 - 2.0 * team
    yaw = state.yaw[:, own]
    return TeamView(
        pos=state.pos[:, own] * s,
        heading=stack2(torch.cos(yaw), torch.sin(yaw)) * s,
        active=state.active[:, own],
        opp_pos=state.pos[:, opp] * s,
        opp_active=state.active[:, opp],
        ball=state.ball_pos * s,
        ball_vel=state.ball_vel * s,
        half_length=state.length / 2,
        half_goal=state.goal_width / 2,
        team_size=state.team_size[:, team],
    )


def to_body(v: torch.Tensor, heading: torch.Tensor) -> torch.Tensor:
    """World (team-frame) vectors ``(..., 2)`` in the body frame of ``heading`` ``(..., 2)``."""
    c, s = heading[..., 0], heading[..., 1]
    return rot_inv(v, c, s)


def unit(v: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``v / |v|`` along the last dim (zero vectors stay zero)."""
    out: torch.Tensor = v / norm2(v, keepdim=True).clamp_min(eps)
    return out


def perp(v: torch.Tensor) -> torch.Tensor:
    """``v`` turned by +90 degrees."""
    return stack2(-v[..., 1], v[..., 0])


def move_action(v_body: torch.Tensor, cfg: SoccerConfig, cap: float) -> torch.Tensor:
    """Actions ``(a_0, a_1)`` commanding the body velocity ``v_body``; the disc radius is capped at ``cap``."""
    p = cfg.agent
    vx, vy = v_body[..., 0], v_body[..., 1]
    uv = stack2(torch.where(vx > 0, vx / p.max_vx_forward, vx / p.max_vx_backward), vy / p.max_vy)
    uv = uv * (cap / norm2(uv, keepdim=True).clamp_min(cap))
    return disc_to_square(uv)


def kick_action(k_body: torch.Tensor, cap: float) -> torch.Tensor:
    """Actions ``(a_3, a_4)`` whose kick target is the body-frame ball velocity ``k_body`` (x' = 2 k_x - 0.01)."""
    uv = stack2(2 * k_body[..., 0] - 0.01, k_body[..., 1])
    uv = uv * (cap / norm2(uv, keepdim=True).clamp_min(cap))
    return disc_to_square(uv)


def check_team(team: int) -> None:
    if team not in (0, 1) or isinstance(team, bool):
        raise ValueError(f"team must be 0 (blue) or 1 (red), got {team!r}")


def clamp_abs(x: torch.Tensor, lim: torch.Tensor | float) -> torch.Tensor:
    """``x`` clamped to ``[-lim, lim]`` (``lim`` a tensor broadcasting with ``x`` or a number)."""
    if isinstance(lim, torch.Tensor):
        return torch.maximum(torch.minimum(x, lim), -lim)
    return x.clamp(-lim, lim)
