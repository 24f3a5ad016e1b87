"""The named reward terms of the released environment (``tasks/soccer/mdp/rewards.py``).

Each term is a per-agent value in ``(E, A)``; the reward is ``sum_k w_k r_k`` times the policy step
0.08 s when ``RewardWeights.scale_by_dt`` (Isaac Lab's RewardManager does so: a goal is worth +-8).
Absent players get 0 in every term. The code's shaping decay (weights of the last three terms set to
0 once the mean score difference exceeds 1.5) is not ported: episodes end at the first goal, so the
difference per episode never exceeds 1 and the decay never fires (defect D2).
"""

from __future__ import annotations

import math

import torch

from marladona.config import SoccerConfig
from marladona.observations import team_sign
from marladona.sim import SoccerState, active_pairs, ball_in_body, pair_differences, pairs_per_agent
from marladona.vec2 import norm2, stack2

TERMS = ("score", "ball_out", "collision", "vel_to_ball", "ball_to_goal", "ball_direction")
"""Names of the reward terms, in logging order."""


def _ball_distances(state: SoccerState) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E, A)`` distance of each agent to the ball (inf for absent players) and ``(E, 1)`` the index of
    the closest present agent."""
    dist = norm2(state.ball_pos[:, None, :] - state.pos)
    dist = torch.where(state.active, dist, torch.full_like(dist, math.inf))
    return dist, dist.argmin(dim=1, keepdim=True)


def ball_owner(state: SoccerState, cfg: SoccerConfig) -> torch.Tensor:
    """``(E, A)`` bool: the agent owns the ball — the closest present agent within the ownership radius
    (0.25 m) while no opponent of it is within that radius."""
    a = state.pos.shape[1]
    t = a // 2
    dist, nearest = _ball_distances(state)
    near = dist < cfg.ball.ownership_radius
    closest = torch.zeros_like(near)
    closest.scatter_(1, nearest, True)
    blue_near = near[:, :t].any(dim=1, keepdim=True)
    red_near = near[:, t:].any(dim=1, keepdim=True)
    opp_near = torch.cat((red_near.expand(-1, t), blue_near.expand(-1, t)), dim=1)
    return closest & near & ~opp_near


def reward_terms(
    state: SoccerState, cfg: SoccerConfig, blue_goal: torch.Tensor, red_goal: torch.Tensor, ball_out: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The unweighted terms, each ``(E, A)`` (see :class:`~marladona.config.RewardWeights`).

    .. math::
        r^{score}_i = \\pm 1, \\quad r^{out}_i = -1[\\text{out}], \\quad
        r^{col}_i = -1[\\min_j |p_i - p_j| < 2r + \\epsilon] - 1[\\text{off field} \\lor \\text{at a post}],

        r^{v2b}_i = v_i \\cdot \\frac{b - p_i}{|b - p_i|} \\;(0 \\text{ for the owner}), \\quad
        r^{b2g}_i = v_b \\cdot \\frac{G_i - b}{|G_i - b|}, \\quad
        r^{dir}_i = 0.05\\, e^{-(\\operatorname{atan2}(y^b_i, x^b_i)/0.4)^2}

    with ``G_i`` the centre of the goal agent i attacks and ``(x^b_i, y^b_i)`` the ball in its body frame.

    Args:
        state: the games after the physics of the step.
        cfg: weights are not applied here; ``ball.ownership_radius``, ``agent.radius``,
            ``contact_tolerance`` and ``paper_compat`` are read.
        blue_goal, red_goal, ball_out: ``(E,)`` bool events of the step.

    Returns:
        The six terms of :data:`TERMS`, each ``(E, A)``, zero for absent players.

    Note:
        Departures from the code, each on purpose: agents count as touching below ``2 r +
        contact_tolerance`` (0.205 m) instead of 0.2 m, because our contact projection leaves touching
        discs at exactly 0.2 m, where a strict ``< 0.2`` would flip on rounding; the off-field y-bound is
        ``W/2 + 0.3`` (the code's 3.3 m lies outside the walls and never fires, D6; ``paper_compat``
        restores it). The code's ``vel_ball_2_goal`` multiplies red's direction to its goal by the
        negated ball velocity, so red is rewarded for the ball moving away from the goal it attacks
        (harmless there: red is never trained); we give red the mirror of blue's term, and
        ``paper_compat`` negates it as the code does. Its ``until_close`` mask indexes team ``-1`` (red)
        when nobody owns the ball, with the in-team index of the agent closest to the ball, so one red
        player (the counterpart of the closest agent) goes unpaid; we zero the term only for the owner,
        and ``paper_compat`` also zeroes that red player (among present agents: the code also counts
        parked absent ones, which are never closest in practice). On the step a goal is scored the terms
        are computed after the physics (as Isaac Lab's reward manager does), with the ball already behind
        the goal line, where the
        direction to the goal centre points back into the field: the code then charges the scoring
        team for the ball entering the goal (about 1 % of the goal reward). We set ``ball_to_goal`` to
        0 on goal steps; ``paper_compat`` keeps the code's value.
    """
    e, a, _ = state.pos.shape
    t = a // 2
    dev = state.pos.device
    sign = team_sign(t, dev)[None, :]  # blue +1
    act = state.active.to(state.pos.dtype)
    scored = blue_goal.to(act.dtype)[:, None] - red_goal.to(act.dtype)[:, None]  # +1 blue scored
    score = scored * sign * act
    out = -ball_out.to(act.dtype)[:, None] * act
    # collisions with other present agents
    d = pair_differences(state.pos)  # [E, 2, P], the pairs of sim.collide_agents
    close = active_pairs(state.active, act.dtype) & (
        torch.hypot(d[:, 0], d[:, 1]) < 2 * cfg.agent.radius + cfg.contact_tolerance
    )
    touching = pairs_per_agent(close, a)
    hl = (state.length / 2)[:, None]
    y_bound = 3.3 if cfg.paper_compat else cfg.field_width / 2 + 0.3
    off = (state.pos[..., 0].abs() > hl + 0.3) | (state.pos[..., 1].abs() > y_bound)
    posts_y = (state.goal_width / 2)[:, None]
    at_post = torch.zeros_like(off)
    for px in (1.0, -1.0):
        for py in (1.0, -1.0):
            dx = state.pos[..., 0] - px * hl
            dy = state.pos[..., 1] - py * posts_y
            at_post |= (dx * dx + dy * dy) < 0.17**2
    collision = -(touching.to(act.dtype) + (off | at_post).to(act.dtype)) * act
    # shaping
    to_ball = state.ball_pos[:, None, :] - state.pos
    u = to_ball / norm2(to_ball, keepdim=True).clamp_min(1e-6)
    owner = ball_owner(state, cfg)
    unpaid = owner
    if cfg.paper_compat:  # the code's mask when nobody owns the ball: team -1 (red), the closest agent's index
        closest = _ball_distances(state)[1]
        red_slot = torch.zeros_like(owner).scatter_(1, t + closest % t, True)
        unpaid = owner | (red_slot & ~owner.any(dim=1, keepdim=True))
    vel_to_ball = (state.vel * u).sum(-1) * (~unpaid).to(act.dtype) * act
    goal_x = -sign * hl  # blue attacks -x
    to_goal = stack2(goal_x - state.ball_pos[:, 0:1], -state.ball_pos[:, 1:2].expand(e, a))
    ug = to_goal / norm2(to_goal, keepdim=True).clamp_min(1e-6)
    ball_to_goal = (state.ball_vel[:, None, :] * ug).sum(-1) * act
    if cfg.paper_compat:  # the code multiplies red's direction by the negated ball velocity
        ball_to_goal = ball_to_goal * sign
    else:  # on a goal step the ball is behind the line: the direction to G_i points back
        ball_to_goal = ball_to_goal * (~(blue_goal | red_goal)).to(act.dtype)[:, None]
    b = ball_in_body(state)
    ball_direction = 0.05 * torch.exp(-((torch.atan2(b[..., 1], b[..., 0]) / 0.4) ** 2)) * act
    return {
        "score": score,
        "ball_out": out,
        "collision": collision,
        "vel_to_ball": vel_to_ball,
        "ball_to_goal": ball_to_goal,
        "ball_direction": ball_direction,
    }


def weighted_terms(terms: dict[str, torch.Tensor], cfg: SoccerConfig) -> dict[str, torch.Tensor]:
    """Each term times its weight (and the policy step when ``scale_by_dt``)."""
    w = cfg.rewards.as_dict()
    scale = cfg.step_dt if cfg.rewards.scale_by_dt else 1.0
    return {name: value * (w[name] * scale) for name, value in terms.items()}
