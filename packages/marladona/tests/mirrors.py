"""State mirrors shared by the symmetry tests (imported by test_observations.py and test_sim.py)."""

from __future__ import annotations

import math

import torch

from marladona.sim import SoccerState


def point_mirror_swap(s: SoccerState) -> SoccerState:
    """The world rotated by pi with the blue and red slots swapped."""
    t = s.pos.shape[1] // 2
    swap = torch.cat((torch.arange(t, 2 * t), torch.arange(t)))
    m = s.clone()
    for name in ("pos", "vel", "prev_pos", "yaw", "omega", "prev_yaw", "active"):
        getattr(m, name).copy_(getattr(s, name)[:, swap])
    for name in ("pos", "vel", "prev_pos", "ball_pos", "ball_vel"):
        getattr(m, name).mul_(-1)
    m.yaw.add_(math.pi)
    m.prev_yaw.add_(math.pi)
    m.team_size.copy_(s.team_size.flip(1))
    return m


def y_mirror(s: SoccerState) -> SoccerState:
    """The world reflected in the x axis: (x, y, psi, vx, vy, omega) -> (x, -y, -psi, vx, -vy, -omega)."""
    m = s.clone()
    for name in ("pos", "vel", "prev_pos", "ball_pos", "ball_vel"):
        getattr(m, name)[..., 1] *= -1
    for name in ("yaw", "omega", "prev_yaw"):
        getattr(m, name).mul_(-1)
    return m
