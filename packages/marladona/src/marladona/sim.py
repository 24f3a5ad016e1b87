"""The batched torch physics of the soccer game: pure functions over a struct of tensors.

One policy step is ``decimation`` physics substeps of (spec section 4, the code's ``Agents.step`` and
``SoccerBall``): drive force and torque (velocity servo) -> ball-control force (kick zone) ->
rolling decay -> semi-implicit Euler -> agent-agent disc projection -> agent-ball push-out with a
reflection of the relative velocity -> posts -> walls -> goal/out rules. Every function works on all
games at once (no Python loop over games or agents, no host synchronisation), on CPU or CUDA.

Conventions: ``E`` games, ``A = 2 T`` agent slots (blue ``0..T-1``, red ``T..2T-1``); positions in
metres in the world frame, the field centred at the origin; blue defends +x and attacks -x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from marladona.config import SoccerConfig
from marladona.vec2 import constant_cache, dot2, norm2, rot, rot_inv, select, stack2, sum2

_SQRT2 = math.sqrt(2.0)


@dataclass
class SoccerState:
    """Everything the simulator knows about ``E`` games (struct of tensors, all on one device)."""

    pos: torch.Tensor
    """[E, A, 2] agent positions."""
    yaw: torch.Tensor
    """[E, A] agent headings in rad."""
    vel: torch.Tensor
    """[E, A, 2] agent velocities, world frame."""
    omega: torch.Tensor
    """[E, A] agent yaw rates."""
    prev_pos: torch.Tensor
    """[E, A, 2] positions at the previous policy step (entity history)."""
    prev_yaw: torch.Tensor
    """[E, A] headings at the previous policy step."""
    ball_pos: torch.Tensor
    """[E, 2] ball position."""
    ball_vel: torch.Tensor
    """[E, 2] ball velocity."""
    active: torch.Tensor
    """[E, A] bool: the slot holds a player of the current game."""
    team_size: torch.Tensor
    """[E, 2] long: blue and red team sizes."""
    level: torch.Tensor
    """[E] long: field curriculum level."""
    length: torch.Tensor
    """[E] field length L."""
    goal_width: torch.Tensor
    """[E] goal width g."""
    roll_rate: torch.Tensor
    """[E] exponential speed-decay rate of the rolling ball, 1/s."""
    step: torch.Tensor
    """[E] long: policy steps since the last reset."""

    @property
    def num_envs(self) -> int:
        return int(self.pos.shape[0])

    @property
    def max_team_size(self) -> int:
        return int(self.pos.shape[1]) // 2

    def clone(self) -> SoccerState:
        """A deep copy."""
        return SoccerState(**{f.name: getattr(self, f.name).clone() for f in fields(self)})

    def index(self, env_ids: torch.Tensor) -> SoccerState:
        """The games ``env_ids`` (a copy)."""
        return SoccerState(**{f.name: getattr(self, f.name)[env_ids] for f in fields(self)})

    def tensors(self) -> dict[str, torch.Tensor]:
        """The fields by name (for checkpoints and comparisons)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def empty_state(num_envs: int, max_team_size: int, device: torch.device | str = "cpu") -> SoccerState:
    """A state of zeros with every slot inactive (filled by the environment's reset)."""
    e, a = num_envs, 2 * max_team_size

    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(shape, device=device, dtype=torch.float32)

    return SoccerState(
        pos=zeros(e, a, 2),
        yaw=zeros(e, a),
        vel=zeros(e, a, 2),
        omega=zeros(e, a),
        prev_pos=zeros(e, a, 2),
        prev_yaw=zeros(e, a),
        ball_pos=zeros(e, 2),
        ball_vel=zeros(e, 2),
        active=torch.zeros(e, a, dtype=torch.bool, device=device),
        team_size=torch.ones(e, 2, dtype=torch.long, device=device),
        level=torch.zeros(e, dtype=torch.long, device=device),
        length=zeros(e) + 5.4,
        goal_width=zeros(e) + 0.96,
        roll_rate=zeros(e),
        step=torch.zeros(e, dtype=torch.long, device=device),
    )


# ----------------------------------------------------------------------------------------------
# action maps


def square_to_disc(xy: torch.Tensor) -> torch.Tensor:
    """Map the square [-1, 1]^2 onto the unit disc (the code's ``ma_action_manager``).

    .. math:: x' = x \\sqrt{1 - y^2 / 2}, \\qquad y' = y \\sqrt{1 - x^2 / 2}

    Args:
        xy: ``(..., 2)`` points in the square.

    Returns:
        ``(..., 2)`` points in the disc.

    Example:
        >>> square_to_disc(torch.tensor([1.0, 1.0])).tolist()  # doctest: +ELLIPSIS
        [0.7071..., 0.7071...]
    """
    x, y = xy[..., 0], xy[..., 1]
    return stack2(x * torch.sqrt(1 - y * y / 2), y * torch.sqrt(1 - x * x / 2))


def disc_to_square(uv: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`square_to_disc` (the elliptical grid mapping), for scripted players.

    .. math:: x = \\tfrac12\\sqrt{2 + u^2 - v^2 + 2\\sqrt2 u} - \\tfrac12\\sqrt{2 + u^2 - v^2 - 2\\sqrt2 u}

    and the same with u and v swapped for y. Points outside the disc are first scaled onto it.
    """
    norm = norm2(uv, keepdim=True).clamp_min(1.0)
    uv = uv / norm
    u, v = uv[..., 0], uv[..., 1]
    uu_vv = u * u - v * v
    x = 0.5 * (
        torch.sqrt((2 + uu_vv + 2 * _SQRT2 * u).clamp_min(0)) - torch.sqrt((2 + uu_vv - 2 * _SQRT2 * u).clamp_min(0))
    )
    y = 0.5 * (
        torch.sqrt((2 - uu_vv + 2 * _SQRT2 * v).clamp_min(0)) - torch.sqrt((2 - uu_vv - 2 * _SQRT2 * v).clamp_min(0))
    )
    return stack2(x, y).clamp(-1.0, 1.0)


def action_to_commands(actions: torch.Tensor, cfg: SoccerConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Body-frame velocity command, yaw-rate command and kick target from actions in [-1, 1].

    Move: ``(x', y') = disc(a_0, a_1)``; ``v_x = 0.35 x'`` if ``x' > 0`` else ``0.25 x'``,
    ``v_y = 0.25 y'``, ``omega = 2.5 a_2``. Kick: ``(x', y') = disc(a_3, a_4)``, target ball velocity
    in the body frame ``k = ((x' + 0.01) / 2, y')`` (the code's offset and halving).

    Args:
        actions: ``(E, A, 5)`` in [-1, 1]; values outside are clipped first (the code clips too).

    Returns:
        ``v_cmd (E, A, 2)``, ``omega_cmd (E, A)``, ``kick_body (E, A, 2)``.

    Example:
        >>> cfg = SoccerConfig(num_envs=1, max_team_size=1, team_size_range=(1, 1), init_level_range=(0, 0))
        >>> v, w, k = action_to_commands(torch.tensor([[[1.0, 0.0, -1.0, 0.0, 0.0]]]), cfg)
        >>> [round(x, 4) for x in (v[0, 0, 0].item(), w[0, 0].item(), k[0, 0, 0].item())]
        [0.35, -2.5, 0.005]
    """
    p = cfg.agent
    actions = actions.clamp(-1.0, 1.0)
    move = square_to_disc(actions[..., 0:2])
    vx = select(move[..., 0] > 0, move[..., 0] * p.max_vx_forward, move[..., 0] * p.max_vx_backward)
    v_cmd = stack2(vx, move[..., 1] * p.max_vy)
    omega_cmd = actions[..., 2] * p.max_omega
    kick = square_to_disc(actions[..., 3:5])
    kick_body = stack2((kick[..., 0] + 0.01) / 2, kick[..., 1])
    return v_cmd, omega_cmd, kick_body


# ----------------------------------------------------------------------------------------------
# frames


def rotate(v: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Rotate ``(..., 2)`` vectors by ``yaw`` (body -> world)."""
    return rot(v, torch.cos(yaw), torch.sin(yaw))


def rotate_inv(v: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Rotate ``(..., 2)`` vectors by ``-yaw`` (world -> body)."""
    return rot_inv(v, torch.cos(yaw), torch.sin(yaw))


def ball_in_body(state: SoccerState) -> torch.Tensor:
    """``(E, A, 2)`` the ball's position in every agent's body frame."""
    return rotate_inv(state.ball_pos[:, None, :] - state.pos, state.yaw)


def controllable(state: SoccerState, cfg: SoccerConfig) -> torch.Tensor:
    """``(E, A)`` bool: the ball is in the agent's kick zone (|p| < 0.2, p.x > 0, |p.y| < 0.1) and it is active."""
    return _in_zone(ball_in_body(state), cfg) & state.active


def _in_zone(b: torch.Tensor, cfg: SoccerConfig) -> torch.Tensor:
    """``b (..., 2)`` body-frame ball positions -> bool ``(...)``: |b| < 0.2, b.x > 0, |b.y| < 0.1."""
    r2 = cfg.ball.control_radius**2
    zone: torch.Tensor = (dot2(b, b) < r2) & (b[..., 0] > 0) & (b[..., 1].abs() < cfg.ball.control_half_width)
    return zone


# ----------------------------------------------------------------------------------------------
# one physics substep


def substep(
    state: SoccerState, v_cmd: torch.Tensor, omega_cmd: torch.Tensor, kick_body: torch.Tensor, cfg: SoccerConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Advance every game by ``cfg.sim_dt`` in place; return which games saw a goal or the ball out.

    Agents (semi-implicit Euler, body-frame servo of the code):

    .. math:: F = k_F\\, R(\\psi)(v^{cmd} - R(\\psi)^T v), \\quad \\tau = k_\\tau(\\omega^{cmd} - \\omega), \\quad
              v \\leftarrow v + F\\,dt/m, \\quad \\omega \\leftarrow \\omega + \\tau\\,dt/I, \\quad p \\leftarrow p + v\\,dt

    Ball: force :math:`\\sum_{i \\in C} k_b (R(\\psi_i) k_i - v_b)` over the agents ``C`` controlling it,
    then the rolling decay :math:`v_b \\leftarrow v_b e^{-c\\,dt/(m r^2 + I)}`, then Euler.

    Args:
        state: the games, modified in place.
        v_cmd: ``(E, A, 2)`` body-frame velocity commands (:func:`action_to_commands`).
        omega_cmd: ``(E, A)`` yaw-rate commands.
        kick_body: ``(E, A, 2)`` body-frame target ball velocities.
        cfg: constants (``agent``, ``ball``, ``sim_dt``, walls, posts).

    Returns:
        ``blue_goal (E,)``, ``red_goal (E,)`` (bool: the ball crossed the line inside the mouth this
        substep; blue scores at ``x < -L/2``) and ``out (E,)`` (the ball left the field elsewhere and was
        put back at its clipped position with zero velocity, ``reset_type="no_speed"``).

    Note:
        The code checks the goal at the start of every substep but then also teleports the ball back
        to the line (its border reset fires for goals too), and the termination and the score term read
        only the last substep's check, so a goal is lost unless the ball crosses in the third of the four
        substeps. We follow the intent stated in the spec (a goal is a terminal event whenever the ball
        crosses inside the mouth). The ball is a 2-D disc on the ground: the code's ball is dropped from
        0.3 m at every reset and cannot be controlled above z = 0.08 m (about 0.2 s); that fall is not
        modelled. The kick force acts on the ball's mass alone (time constant m / k_b = 88 ms, as the
        spec states), not on the rolling ball's effective mass m + I / r^2.
    """
    p, b, dt = cfg.agent, cfg.ball, cfg.sim_dt
    act = state.active
    actf = act.to(state.pos.dtype)
    c, s = torch.cos(state.yaw), torch.sin(state.yaw)  # [E, A], shared by the three frame changes
    # drive: velocity servo in the body frame, applied in the world frame
    v_body = rot_inv(state.vel, c, s)
    force = rot(p.force_gain * (v_cmd - v_body), c, s) * actf[..., None]
    torque = p.torque_gain * (omega_cmd - state.omega) * actf
    # ball control: every agent whose kick zone holds the ball servos its velocity
    ctrl = (_in_zone(rot_inv(state.ball_pos[:, None, :] - state.pos, c, s), cfg) & act).to(state.pos.dtype)
    kick_w = rot(kick_body, c, s)
    ball_force = sum2(b.kick_gain * (kick_w - state.ball_vel[:, None, :]) * ctrl[..., None], 1)
    # integrate
    state.vel.add_(force * (dt / p.mass))
    state.omega.add_(torque * (dt / p.inertia))
    state.pos.add_(state.vel * dt * actf[..., None])
    state.yaw.add_(state.omega * dt * actf)
    # wrap to [-pi, pi) only where needed: (psi + pi) - pi would round every heading on every substep
    yaw = state.yaw
    state.yaw.copy_(select(yaw.abs() > math.pi, torch.remainder(yaw + math.pi, 2 * math.pi) - math.pi, yaw))
    state.ball_vel.add_(ball_force * (dt / b.mass))
    state.ball_vel.mul_(torch.exp(-state.roll_rate * dt)[:, None])
    state.ball_pos.add_(state.ball_vel * dt)
    # contacts
    collide_agents(state, cfg)
    collide_ball_agents(state, cfg)
    collide_posts(state, cfg)
    collide_walls(state, cfg)
    return goal_and_out(state, cfg)


def collide_agents(state: SoccerState, cfg: SoccerConfig) -> None:
    """Separate overlapping active agents (discs of radius r) half each, and stop their approach.

    The normal component of the relative velocity is removed when the two approach (a perfectly
    inelastic contact between equal masses, momentum conserved). Coincident centres are separated
    along x, the lower slot index to -x. Each unordered pair is computed once (:func:`pair_differences`);
    the corrections are gathered per agent by one small matrix product with the pair incidence matrix.
    """
    r2 = 2 * cfg.agent.radius
    e, a, _ = state.pos.shape
    if a < 2:
        return
    ops = _pair_operators(a, state.pos.device, state.pos.dtype)
    d = pair_differences(state.pos)  # [E, 2, P]: p_i - p_j, i < j, x row then y row
    dx, dy = d[:, 0], d[:, 1]
    dist = (dx * dx + dy * dy).sqrt()  # [E, P]
    overlap = (active_pairs(state.active, state.pos.dtype) & (dist < r2)).to(d.dtype)
    n = select((dist < 1e-6)[:, None], ops.tie_n, d / dist.clamp_min(1e-6)[:, None])
    push = ((r2 - dist) * overlap * 0.5)[:, None] * n  # +push to i, -push to j
    dvel = pair_differences(state.vel)
    vn = dvel[:, 0] * n[:, 0] + dvel[:, 1] * n[:, 1]  # normal relative velocity
    dv = (vn.clamp(max=0.0) * overlap * 0.5)[:, None] * n  # -dv to i, +dv to j
    state.pos.add_((push.reshape(e, -1) @ ops.scatter).view(e, a, 2))
    state.vel.sub_((dv.reshape(e, -1) @ ops.scatter).view(e, a, 2))


@dataclass(frozen=True)
class _PairOperators:
    """Constant matrices over the ``P = A(A-1)/2`` agent pairs i < j (``torch.triu_indices`` order)."""

    ii: torch.Tensor
    """``(P,)`` the first agent of each pair."""
    jj: torch.Tensor
    """``(P,)`` the second agent of each pair (``ii < jj``)."""
    gather: torch.Tensor
    """``(2A, 2P)``: interleaved ``(x_0, y_0, x_1, …)`` -> planar ``(x_i - x_j …, y_i - y_j …)``."""
    scatter: torch.Tensor
    """``(2P, 2A)``: planar per-pair vectors -> interleaved per-agent sums, ``+`` at i and ``-`` at j."""
    member: torch.Tensor
    """``(A, P)``: 1 where the agent is one of the pair."""
    tie_n: torch.Tensor
    """``(2, 1)``: the direction of p_i - p_j for coincident centres, -x (i is the lower slot)."""


@constant_cache
def _pair_operators(a: int, device: torch.device, dtype: torch.dtype) -> _PairOperators:
    ii, jj = torch.triu_indices(a, a, offset=1, device=device)
    p = ii.numel()
    incidence = torch.zeros(a, p, dtype=dtype, device=device)
    cols = torch.arange(p, device=device)
    incidence[ii, cols] = 1.0
    incidence[jj, cols] = -1.0
    gather = torch.zeros(2 * a, 2 * p, dtype=dtype, device=device)
    gather[0::2, :p] = incidence
    gather[1::2, p:] = incidence
    tie_n = torch.tensor([[-1.0], [0.0]], dtype=dtype, device=device)
    return _PairOperators(ii, jj, gather, gather.t().contiguous(), incidence.abs(), tie_n)


def pair_differences(x: torch.Tensor) -> torch.Tensor:
    """``x (E, A, 2)`` -> ``(E, 2, P)``: ``x_i - x_j`` for the ``P = A(A-1)/2`` pairs i < j, x row then y row.

    On the CPU: one matrix product with a 0/+-1 matrix, a fraction of the cost of gathering both ends
    of every pair there; each entry is the exact difference (the other terms are exact zeros) as long
    as the product runs in the input's precision (no autocast). Elsewhere, where TF32 or autocast may
    round matrix products, both ends are gathered and subtracted.
    """
    e, a, _ = x.shape
    ops = _pair_operators(a, x.device, x.dtype)
    if x.device.type != "cpu":
        return (x.index_select(1, ops.ii) - x.index_select(1, ops.jj)).transpose(1, 2)
    return (x.reshape(e, 2 * a) @ ops.gather).view(e, 2, ops.ii.numel())


def active_pairs(active: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``active (E, A)`` bool -> ``(E, P)`` bool: both agents of the pair are active (pairs as :func:`pair_differences`)."""
    ops = _pair_operators(active.shape[1], active.device, dtype)
    both: torch.Tensor = (active.to(dtype) @ ops.member) > 1.5
    return both


def pairs_per_agent(flags: torch.Tensor, a: int) -> torch.Tensor:
    """``flags (E, P)`` bool over the pairs of ``a`` agents -> ``(E, A)`` bool: the agent is in at least one flagged pair."""
    ops = _pair_operators(a, flags.device, torch.float32)
    if flags.shape[1] != ops.ii.numel():
        raise ValueError(f"flags must have {ops.ii.numel()} pair columns for {a} agents, got {flags.shape[1]}")
    hit: torch.Tensor = (flags.to(torch.float32) @ ops.member.t()) > 0.5
    return hit


def collide_ball_agents(state: SoccerState, cfg: SoccerConfig) -> None:
    """Push the ball out of every active agent's disc and reflect its velocity relative to the agent.

    With contact normal n (agent -> ball) and relative velocity u = v_b - v_i approaching
    (u.n < 0), the ball's velocity becomes v_b - (1 + e) (u.n) n (the agent is ~125x heavier: it is
    treated as immovable in the contact), e the ball's restitution.
    """
    rmin = cfg.agent.radius + cfg.ball.radius
    d = state.ball_pos[:, None, :] - state.pos  # [E, A, 2]
    dist = norm2(d)
    hit = state.active & (dist < rmin)
    n = d / dist.clamp_min(1e-6)[..., None]
    tie = dist < 1e-6  # a ball at an agent's centre is pushed along +x
    n = stack2(select(tie, 1.0, n[..., 0]), select(tie, 0.0, n[..., 1]))
    hitf = hit.to(d.dtype)
    state.ball_pos.add_(sum2(((rmin - dist) * hitf)[..., None] * n, 1))
    un = dot2(state.ball_vel[:, None, :] - state.vel, n)
    refl = hitf * (un < 0).to(d.dtype) * (1 + cfg.ball.restitution) * un
    state.ball_vel.sub_(sum2(refl[..., None] * n, 1))


def _nearest_post(pos: torch.Tensor, half_length: torch.Tensor, half_goal: torch.Tensor) -> torch.Tensor:
    """The post nearest to each point of ``pos (E, ..., 2)``: (sign(x) L/2, sign(y) g/2), posts at (+-L/2, +-g/2).

    Posts are at least 0.96 m apart while a contact needs a centre within 0.15 m, so only the
    nearest post can touch anything.
    """
    shape = (-1,) + (1,) * (pos.dim() - 2)
    hl, hg = half_length.reshape(shape), half_goal.reshape(shape)
    px = hl * ((pos[..., 0] >= 0).to(pos.dtype) * 2 - 1)  # exact: a product by +-1
    py = hg * ((pos[..., 1] >= 0).to(pos.dtype) * 2 - 1)
    return stack2(px, py)


def collide_posts(state: SoccerState, cfg: SoccerConfig) -> None:
    """Ball and agents against the post cylinders: push out, reflect the ball (restitution e), stop agents."""
    hl, hg = state.length / 2, state.goal_width / 2
    # ball
    rmin = cfg.post_radius + cfg.ball.radius
    d = state.ball_pos - _nearest_post(state.ball_pos, hl, hg)  # [E, 2]
    dist = norm2(d)
    hit = (dist < rmin).to(d.dtype)
    n = d / dist.clamp_min(1e-6)[..., None]
    state.ball_pos.add_(((rmin - dist) * hit)[..., None] * n)
    vn = dot2(state.ball_vel, n)
    state.ball_vel.sub_((hit * (vn < 0).to(d.dtype) * (1 + cfg.ball.restitution) * vn)[..., None] * n)
    # agents
    rmin = cfg.post_radius + cfg.agent.radius
    d = state.pos - _nearest_post(state.pos, hl, hg)  # [E, A, 2]
    dist = norm2(d)
    hit = ((dist < rmin) & state.active).to(d.dtype)
    n = d / dist.clamp_min(1e-6)[..., None]
    state.pos.add_(((rmin - dist) * hit)[..., None] * n)
    vn = dot2(state.vel, n)
    state.vel.sub_((hit * (vn < 0).to(d.dtype) * vn)[..., None] * n)


def wall_half_extents(state: SoccerState, cfg: SoccerConfig) -> tuple[torch.Tensor, float]:
    """Half-length ``(E,)`` (L / 9 * 10.4 / 2) and half-width of the border box."""
    return state.length / 9 * 10.4 / 2, cfg.wall_half_width


def collide_walls(state: SoccerState, cfg: SoccerConfig) -> None:
    """Keep active agents and the ball inside the border box; reflect the normal velocity.

    The ball bounces with its restitution e (default 0, as the code's ball material; e = 1 is an elastic bounce that keeps the speed); agents
    lose the normal component of their velocity.
    """
    hx, hy = wall_half_extents(state, cfg)
    for pos, vel, radius, e, mask in (
        (state.pos, state.vel, cfg.agent.radius, 0.0, state.active),
        (state.ball_pos, state.ball_vel, cfg.ball.radius, cfg.ball.restitution, None),
    ):
        lim_x = (hx - radius).reshape(-1, *([1] * (pos.dim() - 2)))
        lim_y = hy - radius
        for axis, lim in ((0, lim_x), (1, lim_y)):
            c = pos[..., axis]
            over = c > lim
            under = c < -lim
            if mask is not None:
                over, under = over & mask, under & mask
            v = vel[..., axis]
            v.copy_(torch.where(over & (v > 0), -e * v, torch.where(under & (v < 0), -e * v, v)))
            c.copy_(
                torch.where(
                    over,
                    2 * lim - c if e > 0 else lim * torch.ones_like(c),
                    torch.where(under, -2 * lim - c if e > 0 else -lim * torch.ones_like(c), c),
                )
            )


def goal_and_out(state: SoccerState, cfg: SoccerConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Goal and out-of-field rules (the code's ``SoccerBall``): see :func:`substep`'s Returns.

    A goal: the ball centre past a goal line (``|x| > L/2``) with ``|y| < g/2``. Out: the ball centre
    past a touch line (``|y| > W/2``) or past a goal line outside the mouth; it is then put back at
    its position clipped to the field (5 mm inside) with zero velocity — no throw-in, no stoppage.
    """
    hl = state.length / 2
    hw = cfg.field_width / 2
    x, y = state.ball_pos[:, 0], state.ball_pos[:, 1]
    in_mouth = y.abs() < state.goal_width / 2
    blue_goal = (x < -hl) & in_mouth
    red_goal = (x > hl) & in_mouth
    out = (y.abs() > hw) | ((x.abs() > hl) & ~in_mouth)
    tol = 0.005
    clipped = stack2(torch.maximum(torch.minimum(x, hl - tol), -(hl - tol)), y.clamp(-(hw - tol), hw - tol))
    state.ball_pos.copy_(torch.where(out[:, None], clipped, state.ball_pos))
    state.ball_vel.mul_((~out).to(state.ball_vel.dtype)[:, None])
    return blue_goal, red_goal, out
