"""Tests of the batched physics (marladona.sim): every number is worked by hand or in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from marladona.config import BallParams, SoccerConfig
from marladona.env import SoccerEnv
from marladona.sim import (
    SoccerState,
    action_to_commands,
    ball_in_body,
    collide_agents,
    collide_ball_agents,
    collide_posts,
    collide_walls,
    controllable,
    disc_to_square,
    empty_state,
    goal_and_out,
    rotate,
    rotate_inv,
    square_to_disc,
    substep,
    wall_half_extents,
)
from mirrors import point_mirror_swap, y_mirror

DT = 0.02


def _cfg(t: int = 1, **kw: object) -> SoccerConfig:
    base: dict[str, object] = {
        "num_envs": 1,
        "max_team_size": t,
        "team_size_range": (1, t),
        "init_level_range": (0, 0),
        "obs_noise": False,
    }
    return SoccerConfig(**{**base, **kw})  # type: ignore[arg-type]


def _state(
    cfg: SoccerConfig,
    pos: list[tuple[float, float]],
    yaw: list[float] | None = None,
    active: list[bool] | None = None,
    ball: tuple[float, float] = (2.0, 1.5),
    ball_vel: tuple[float, float] = (0.0, 0.0),
    length: float = 5.4,
    goal_width: float = 1.44,
    roll_rate: float = 0.0,
) -> SoccerState:
    """One game with the agents at ``pos`` (all slots), everything at rest."""
    a = cfg.num_agents
    assert len(pos) == a
    st = empty_state(1, cfg.max_team_size)
    st.pos[0] = torch.tensor(pos)
    st.prev_pos.copy_(st.pos)
    st.yaw[0] = torch.tensor(yaw if yaw is not None else [0.0] * a)
    st.prev_yaw.copy_(st.yaw)
    st.active[0] = torch.tensor(active if active is not None else [True] * a)
    t = cfg.max_team_size
    st.team_size[0] = torch.tensor([int(st.active[0, :t].sum()), int(st.active[0, t:].sum())])
    st.ball_pos[0] = torch.tensor(ball)
    st.ball_vel[0] = torch.tensor(ball_vel)
    st.length.fill_(length)
    st.goal_width.fill_(goal_width)
    st.roll_rate.fill_(roll_rate)
    return st


def _no_cmd(st: SoccerState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    e, a = st.pos.shape[:2]
    return torch.zeros(e, a, 2), torch.zeros(e, a), torch.zeros(e, a, 2)


# ----------------------------------------------------------------------------------------------
class TestActionMaps:
    @pytest.mark.parametrize(
        ("xy", "want"),
        [
            ((1.0, 1.0), (math.sqrt(0.5), math.sqrt(0.5))),
            ((1.0, 0.0), (1.0, 0.0)),
            ((0.0, -1.0), (0.0, -1.0)),
            ((0.5, 0.5), (0.5 * math.sqrt(1 - 0.125), 0.5 * math.sqrt(1 - 0.125))),
            ((-1.0, 0.5), (-math.sqrt(1 - 0.125), 0.5 * math.sqrt(0.5))),
        ],
    )
    def test_square_to_disc_hand_values(self, xy: tuple[float, float], want: tuple[float, float]) -> None:
        # x' = x sqrt(1 - y^2/2), y' = y sqrt(1 - x^2/2) evaluated by hand
        got = square_to_disc(torch.tensor(xy, dtype=torch.float64))
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))

    def test_square_to_disc_lands_in_the_disc_and_square_boundary_on_the_circle(self) -> None:
        g = torch.linspace(-1, 1, 41, dtype=torch.float64)
        xy = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        r = square_to_disc(xy).norm(dim=-1)
        assert bool((r <= 1 + 1e-12).all())
        on_edge = xy.abs().max(dim=-1).values == 1
        torch.testing.assert_close(r[on_edge], torch.ones_like(r[on_edge]))

    def test_disc_to_square_inverts_square_to_disc(self) -> None:
        # round trip over a grid of the square (float64; the inverse is exact up to rounding)
        g = torch.linspace(-1, 1, 33, dtype=torch.float64)
        xy = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        back = disc_to_square(square_to_disc(xy))
        torch.testing.assert_close(back, xy, atol=1e-6, rtol=0)

    def test_disc_to_square_scales_points_outside_the_disc_onto_it(self) -> None:
        got = disc_to_square(torch.tensor([[2.0, 0.0], [0.0, -3.0]], dtype=torch.float64))
        torch.testing.assert_close(got, torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.float64))

    def test_action_to_commands_speed_scaling_by_hand(self) -> None:
        # forward 0.35, backward 0.25, sideways 0.25, yaw 2.5; kick k = ((x' + 0.01)/2, y')
        cfg = _cfg()
        a = torch.tensor(
            [
                [1.0, 0.0, 1.0, 1.0, 0.0],
                [-1.0, 0.0, -1.0, -1.0, 0.0],
                [0.0, 1.0, 0.4, 0.0, 1.0],
                [0.0, -1.0, 0.0, 0.0, 0.0],
                [1.0, 1.0, 0.0, 1.0, 1.0],
                [3.0, 0.0, -7.0, 0.0, -2.0],  # clipped to [-1, 1] first
            ]
        )[None]
        v, w, k = action_to_commands(a, cfg)
        s = math.sqrt(0.5)
        want_v = [[0.35, 0.0], [-0.25, 0.0], [0.0, 0.25], [0.0, -0.25], [0.35 * s, 0.25 * s], [0.35, 0.0]]
        want_w = [2.5, -2.5, 1.0, 0.0, 0.0, -2.5]
        want_k = [[0.505, 0.0], [-0.495, 0.0], [0.005, 1.0], [0.005, 0.0], [(s + 0.01) / 2, s], [0.005, -1.0]]
        torch.testing.assert_close(v[0], torch.tensor(want_v))
        torch.testing.assert_close(w[0], torch.tensor(want_w))
        torch.testing.assert_close(k[0], torch.tensor(want_k))

    def test_rotate_and_rotate_inv_by_hand(self) -> None:
        v = torch.tensor([1.0, 0.0])
        torch.testing.assert_close(rotate(v, torch.tensor(math.pi / 2)), torch.tensor([0.0, 1.0]))
        torch.testing.assert_close(rotate_inv(v, torch.tensor(math.pi / 2)), torch.tensor([0.0, -1.0]))


# ----------------------------------------------------------------------------------------------
class TestDrive:
    def test_velocity_lag_matches_semi_implicit_euler_closed_form(self) -> None:
        # v_n = R(psi) v_cmd (1 - (1 - k dt/m)^n); p_n = p_0 + dt sum_k v_k (positions use the new velocity)
        cfg = _cfg()
        psi = 0.7
        st = _state(cfg, [(-1.0, 0.3), (1.5, -1.0)], yaw=[psi, 0.0], active=[True, False])
        v_cmd, w_cmd, kick = action_to_commands(torch.tensor([[[1.0, 0.5, 0.0, 0.0, 0.0]] * 2]), cfg)
        vb = torch.tensor([0.35 * math.sqrt(1 - 0.125), 0.25 * 0.5 * math.sqrt(0.5)], dtype=torch.float64)
        vw = torch.tensor(
            [math.cos(psi) * vb[0] - math.sin(psi) * vb[1], math.sin(psi) * vb[0] + math.cos(psi) * vb[1]]
        )
        a = 10.0 * DT / 5.48
        for n in range(1, 41):
            substep(st, v_cmd, w_cmd, kick, cfg)
            want_v = vw * (1 - (1 - a) ** n)
            want_p = torch.tensor([-1.0, 0.3], dtype=torch.float64) + vw * DT * (n - (1 - a) * (1 - (1 - a) ** n) / a)
            torch.testing.assert_close(st.vel[0, 0].double(), want_v, rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(st.pos[0, 0].double(), want_p, rtol=0, atol=2e-6)
        assert float(st.yaw[0, 0]) == pytest.approx(psi, abs=1e-7)  # no torque without a yaw command

    def test_yaw_rate_lag_closed_form(self) -> None:
        # omega_n = omega_cmd (1 - (1 - k_tau dt / I)^n), psi_n = psi_0 + dt sum_k omega_k
        cfg = _cfg()
        st = _state(cfg, [(0.0, 0.0), (1.5, -1.0)], active=[True, False])
        v_cmd, w_cmd, kick = action_to_commands(torch.tensor([[[0.0, 0.0, 0.8, 0.0, 0.0]] * 2]), cfg)
        b = 0.2 * DT / 0.0101
        psi = 0.0
        for n in range(1, 16):
            substep(st, v_cmd, w_cmd, kick, cfg)
            want = 2.0 * (1 - (1 - b) ** n)
            psi += DT * want
            assert float(st.omega[0, 0]) == pytest.approx(want, rel=1e-5)
            assert float(st.yaw[0, 0]) == pytest.approx(psi, rel=1e-5)
        assert st.vel[0, 0].abs().max().item() == 0.0

    def test_absent_agent_never_moves_even_when_overlapped(self) -> None:
        cfg = _cfg()
        st = _state(cfg, [(0.0, 0.0), (0.05, 0.0)], yaw=[0.0, 1.0], active=[True, False], ball=(0.1, 0.0))
        before = st.clone()
        v_cmd, w_cmd, kick = action_to_commands(torch.ones(1, 2, 5), cfg)
        for _ in range(20):
            substep(st, v_cmd, w_cmd, kick, cfg)
        assert torch.equal(st.pos[0, 1], before.pos[0, 1])
        assert torch.equal(st.yaw[0, 1], before.yaw[0, 1])
        assert st.vel[0, 1].abs().max().item() == 0.0
        assert st.omega[0, 1].item() == 0.0


# ----------------------------------------------------------------------------------------------
class TestBallRoll:
    def test_free_ball_speed_decays_geometrically(self) -> None:
        # v_n = v_0 d^n, d = exp(-rate dt); the direction does not change
        cfg = _cfg()
        rate = 0.4
        st = _state(cfg, [(0.0, -1.5), (0.5, -1.5)], active=[False, False], ball=(-1.0, 0.0), ball_vel=(0.5, 0.2))
        st.roll_rate.fill_(rate)
        v0 = torch.tensor([0.5, 0.2], dtype=torch.float64)
        d = math.exp(-rate * DT)
        for n in range(1, 101):
            substep(st, *_no_cmd(st), cfg)
            torch.testing.assert_close(st.ball_vel[0].double(), v0 * d**n, rtol=2e-5, atol=1e-8)

    def test_ball_stops_at_the_geometric_series_distance(self) -> None:
        # x_n = x_0 + dt v_0 sum_{k=1..n} d^k -> x_0 + dt v_0 d / (1 - d) (the rolling decay acts before Euler)
        cfg = _cfg()
        rate, v0, x0 = 1.0, 0.5, -1.5
        st = _state(cfg, [(0.0, -1.5), (0.5, -1.5)], active=[False, False], ball=(x0, 0.0), ball_vel=(v0, 0.0))
        st.roll_rate.fill_(rate)
        d = math.exp(-rate * DT)
        for n in range(1, 701):
            substep(st, *_no_cmd(st), cfg)
            if n == 50:
                assert float(st.ball_pos[0, 0]) == pytest.approx(x0 + DT * v0 * d * (1 - d**n) / (1 - d), abs=1e-5)
        stop = DT * v0 * d / (1 - d)  # 0.4950 m
        assert stop == pytest.approx(0.49501, abs=1e-4)
        assert float(st.ball_pos[0, 0]) - x0 == pytest.approx(stop, abs=1e-4)
        assert float(st.ball_vel[0].norm()) < 1e-5
        assert float(st.ball_pos[0, 1]) == 0.0

    def test_decay_rate_range_from_the_friction_constants(self) -> None:
        # rate = c / (m r^2 + I) = c / (0.044 * 0.05^2 + 1e-4) = c / 2.1e-4
        lo, hi = BallParams().decay_rates
        assert lo == pytest.approx(6e-5 / 2.1e-4)
        assert hi == pytest.approx(1e-4 / 2.1e-4)


# ----------------------------------------------------------------------------------------------
class TestKickZone:
    @pytest.mark.parametrize(
        ("body", "want"),
        [
            ((0.15, 0.0), True),
            ((0.17, 0.09), True),  # |p| = 0.192 < 0.2, |y| < 0.1
            ((0.15, 0.12), False),  # |y| > 0.1
            ((-0.15, 0.0), False),  # behind
            ((0.21, 0.0), False),  # too far
            ((0.19, 0.08), False),  # |p| = 0.206 > 0.2
        ],
    )
    def test_controllable_hand_cases(self, body: tuple[float, float], want: bool) -> None:
        cfg = _cfg()
        p, psi = (1.0, -0.5), 2.0
        ball = (
            p[0] + math.cos(psi) * body[0] - math.sin(psi) * body[1],
            p[1] + math.sin(psi) * body[0] + math.cos(psi) * body[1],
        )
        st = _state(cfg, [p, (-1.0, 1.0)], yaw=[psi, 0.0], ball=ball)
        torch.testing.assert_close(ball_in_body(st)[0, 0], torch.tensor(body), atol=1e-6, rtol=0)
        assert controllable(st, cfg).tolist() == [[want, False]]

    def test_absent_agent_cannot_control(self) -> None:
        cfg = _cfg()
        st = _state(cfg, [(0.0, 0.0), (1.0, 1.0)], active=[False, True], ball=(0.15, 0.0))
        assert controllable(st, cfg).tolist() == [[False, False]]

    def test_kick_force_closed_form_and_two_controllers_add(self) -> None:
        # v_1 = v_0 + dt/m_b * sum_i k_b (R(psi_i) k_i - v_0) over the controllers; no roll decay, no contact
        cfg = _cfg()
        v0 = (0.1, -0.05)
        acts = torch.tensor([[[0.0, 0.0, 0.0, 0.6, 0.3], [0.0, 0.0, 0.0, -0.2, 0.5]]])
        _, _, kick = action_to_commands(acts, cfg)

        def run(active: list[bool]) -> torch.Tensor:
            st = _state(
                cfg, [(-0.17, 0.0), (0.17, 0.0)], yaw=[0.0, math.pi], active=active, ball=(0.0, 0.0), ball_vel=v0
            )
            assert controllable(st, cfg).tolist() == [active]
            v_cmd, w_cmd, _ = _no_cmd(st)
            substep(st, v_cmd, w_cmd, kick, cfg)
            return st.ball_vel[0].double()

        both, only_a, only_b = run([True, True]), run([True, False]), run([False, True])
        v = torch.tensor(v0, dtype=torch.float64)
        ka = torch.tensor([(0.6 * math.sqrt(1 - 0.045) + 0.01) / 2, 0.3 * math.sqrt(1 - 0.18)], dtype=torch.float64)
        kb = torch.tensor([(-0.2 * math.sqrt(1 - 0.125) + 0.01) / 2, 0.5 * math.sqrt(1 - 0.02)], dtype=torch.float64)
        kb_w = -kb  # agent b faces -x: R(pi) = -I
        gain = DT / 0.044 * 0.5
        torch.testing.assert_close(only_a, v + gain * (ka - v), rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(only_b, v + gain * (kb_w - v), rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(both, v + gain * (ka - v) + gain * (kb_w - v), rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(both - v, (only_a - v) + (only_b - v), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------------------------
class TestContacts:
    def test_elastic_wall_bounce_keeps_the_ball_speed(self) -> None:
        # restitution 1: mirror the penetration, reverse the normal velocity, keep the tangential
        cfg = _cfg(ball=BallParams(restitution=1.0))
        st = _state(cfg, [(0.0, 0.0), (1.0, 0.0)])
        hx, hy = wall_half_extents(st, cfg)
        lim_y = hy - 0.05
        st.ball_pos[0] = torch.tensor([0.5, lim_y + 0.01])
        st.ball_vel[0] = torch.tensor([0.3, 0.8])
        collide_walls(st, cfg)
        torch.testing.assert_close(st.ball_pos[0], torch.tensor([0.5, lim_y - 0.01]))
        torch.testing.assert_close(st.ball_vel[0], torch.tensor([0.3, -0.8]))
        lim_x = float(hx[0]) - 0.05  # 5.4 / 9 * 10.4 / 2 - r
        assert lim_x == pytest.approx(3.12 - 0.05, abs=1e-5)
        st.ball_pos[0] = torch.tensor([-lim_x - 0.02, 0.0])
        st.ball_vel[0] = torch.tensor([-1.2, 0.5])
        speed = float(st.ball_vel[0].norm())
        collide_walls(st, cfg)
        torch.testing.assert_close(st.ball_pos[0], torch.tensor([-lim_x + 0.02, 0.0]))
        assert float(st.ball_vel[0].norm()) == pytest.approx(speed)
        torch.testing.assert_close(st.ball_vel[0], torch.tensor([1.2, 0.5]))

    def test_default_ball_does_not_bounce_off_walls(self) -> None:
        # the code's ball restitution is 0: the normal velocity vanishes, the ball rests on the wall
        cfg = _cfg()
        assert cfg.ball.restitution == 0.0
        st = _state(cfg, [(0.0, 0.0), (1.0, 0.0)])
        lim_y = wall_half_extents(st, cfg)[1] - 0.05
        st.ball_pos[0] = torch.tensor([0.5, -lim_y - 0.01])
        st.ball_vel[0] = torch.tensor([0.3, -0.8])
        collide_walls(st, cfg)
        torch.testing.assert_close(st.ball_pos[0], torch.tensor([0.5, -lim_y]))
        torch.testing.assert_close(st.ball_vel[0], torch.tensor([0.3, 0.0]))

    def test_elastic_post_bounce_reverses_the_normal_velocity(self) -> None:
        cfg = _cfg(ball=BallParams(restitution=1.0))
        st = _state(cfg, [(0.0, 0.0), (1.0, 0.0)], length=5.4, goal_width=1.44)
        post = torch.tensor([-2.7, 0.72])
        n = torch.tensor([0.6, -0.8])  # unit, pointing from the post into the field
        t = torch.tensor([0.8, 0.6])
        st.ball_pos[0] = post + n * 0.09  # inside post radius + ball radius = 0.099
        st.ball_vel[0] = -0.5 * n + 0.2 * t
        collide_posts(st, cfg)
        torch.testing.assert_close(st.ball_pos[0], post + n * 0.099)
        torch.testing.assert_close(st.ball_vel[0], 0.5 * n + 0.2 * t)

    @pytest.mark.parametrize(("e", "want_vx"), [(0.0, 0.3), (1.0, 0.6)])
    def test_ball_agent_contact_reflects_the_relative_velocity(self, e: float, want_vx: float) -> None:
        # agent (immovable in the contact) moves at 0.3 into a resting ball: v_b' = v_b - (1 + e)(u.n) n
        cfg = _cfg(ball=BallParams(restitution=e))
        st = _state(cfg, [(0.0, 0.0), (1.0, 1.0)], ball=(0.14, 0.0))
        st.vel[0, 0] = torch.tensor([0.3, 0.0])
        collide_ball_agents(st, cfg)
        torch.testing.assert_close(st.ball_pos[0], torch.tensor([0.15, 0.0]))
        torch.testing.assert_close(st.ball_vel[0], torch.tensor([want_vx, 0.0]))
        torch.testing.assert_close(st.vel[0, 0], torch.tensor([0.3, 0.0]))

    def test_agent_contact_separates_and_conserves_momentum(self) -> None:
        # equal masses: each moves half the overlap; the approaching normal velocity is removed
        cfg = _cfg()
        st = _state(cfg, [(0.0, 0.0), (0.16, 0.0)])
        st.vel[0] = torch.tensor([[0.3, 0.1], [-0.1, 0.0]])
        momentum = st.vel[0].sum(0).clone()
        collide_agents(st, cfg)
        torch.testing.assert_close(st.pos[0], torch.tensor([[-0.02, 0.0], [0.18, 0.0]]))
        torch.testing.assert_close(st.vel[0], torch.tensor([[0.1, 0.1], [0.1, 0.0]]))
        torch.testing.assert_close(st.vel[0].sum(0), momentum)

    def test_coincident_bodies_separate_without_nan(self) -> None:
        cfg = _cfg(2)
        st = _state(cfg, [(0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (1.0, 0.0)], ball=(0.0, 0.0))
        v_cmd, w_cmd, kick = action_to_commands(torch.zeros(1, 4, 5), cfg)
        for _ in range(8):
            substep(st, v_cmd, w_cmd, kick, cfg)
        for value in st.tensors().values():
            assert bool(torch.isfinite(value.double()).all())
        d = (st.pos[0, :3, None] - st.pos[0, None, :3]).norm(dim=-1) + torch.eye(3)
        assert float(d.min()) > 0.15

    def test_agents_stay_inside_walls_and_do_not_overlap_under_random_actions(self) -> None:
        # drive forward with random turns for 120 policy steps: everyone reaches a wall or another agent
        cfg = SoccerConfig(
            num_envs=24, max_team_size=3, team_size_range=(1, 3), init_level_range=(0, 3), obs_noise=False
        )
        env = SoccerEnv(cfg, final_obs=False)
        env.reset(seed=3)
        g = torch.Generator().manual_seed(0)
        worst_overlap, touched_wall = 0.0, False
        for _ in range(120):
            a = torch.rand(24, 6, 5, generator=g) * 2 - 1
            a[..., 0] = 1.0
            a[..., 2] *= 0.3
            env.step(a)
            st = env.state
            hx, hy = wall_half_extents(st, cfg)
            x, y = st.pos[..., 0].abs(), st.pos[..., 1].abs()
            lim_x = (hx - 0.1)[:, None]
            assert bool(((x <= lim_x + 1e-5) & (y <= hy - 0.1 + 1e-5) | ~st.active).all())
            touched_wall |= bool((((x > lim_x - 1e-3) | (y > hy - 0.1 - 1e-3)) & st.active).any())
            pair = st.active[:, :, None] & st.active[:, None, :] & ~torch.eye(6, dtype=torch.bool)
            d = (st.pos[:, :, None] - st.pos[:, None]).norm(dim=-1)
            worst_overlap = max(worst_overlap, float((0.2 - d)[pair].max()))
            # the ball is back inside after every out (goals reset the game)
            assert bool((st.ball_pos[:, 0].abs() <= st.length / 2).all())
            assert bool((st.ball_pos[:, 1].abs() <= 1.8).all())
        assert touched_wall
        assert worst_overlap < 0.01  # one projection pass per substep: jams against a wall keep < 1 cm

    def test_absent_players_stay_parked(self) -> None:
        cfg = SoccerConfig(num_envs=4, max_team_size=3, team_size_range=(1, 2), obs_noise=False)
        env = SoccerEnv(cfg, final_obs=False)
        env.reset(seed=1)
        parked = env.state.pos.clone()
        absent = ~env.state.active
        assert bool(absent.any())
        assert bool((parked[..., 1][absent] == -2.7).all())  # outside the walls (2.22)
        g = torch.Generator().manual_seed(2)
        for _ in range(30):
            env.step(torch.rand(4, 6, 5, generator=g) * 2 - 1)
            still = ~env.state.active & absent
            assert torch.equal(env.state.pos[still], parked[still])
            assert float(env.state.vel[still].abs().sum()) == 0.0


# ----------------------------------------------------------------------------------------------
def test_goal_and_out_rules_at_the_lines() -> None:
    # per game: (ball position) -> (blue goal, red goal, out, position afterwards)
    cfg = _cfg()
    e = 7
    st = empty_state(e, 1)
    st.length.fill_(5.4)
    st.goal_width.fill_(1.44)
    hl, hg, hw, eps = 2.7, 0.72, 1.8, 1e-3
    st.ball_pos[:] = torch.tensor(
        [
            [-hl - eps, 0.0],  # blue scores (past -L/2 inside the mouth)
            [hl + eps, 0.5],  # red scores
            [-hl - eps, hg + 0.2],  # past the line outside the mouth: out
            [0.3, hw + eps],  # past the touch line: out
            [-hl + eps, 0.0],  # still inside
            [-hl, 0.0],  # on the line: not yet a goal
            [hl + 0.3, -hw - 0.1],  # corner: out, clipped on both axes
        ]
    )
    st.ball_vel[:] = torch.tensor([-0.5, 0.4])
    blue, red, out = goal_and_out(st, cfg)
    assert blue.tolist() == [True, False, False, False, False, False, False]
    assert red.tolist() == [False, True, False, False, False, False, False]
    assert out.tolist() == [False, False, True, True, False, False, True]
    tol = 0.005
    torch.testing.assert_close(st.ball_pos[2], torch.tensor([-hl + tol, hg + 0.2]))
    torch.testing.assert_close(st.ball_pos[3], torch.tensor([0.3, hw - tol]))
    torch.testing.assert_close(st.ball_pos[6], torch.tensor([hl - tol, -hw + tol]))
    assert float(st.ball_vel[out].abs().sum()) == 0.0
    torch.testing.assert_close(st.ball_vel[~out], torch.tensor([[-0.5, 0.4]] * 4))


# ----------------------------------------------------------------------------------------------
def _played_state(seed: int, e: int = 8) -> tuple[SoccerConfig, SoccerState]:
    """A 3v3 batch after some random play (velocities, contacts, mixed team sizes)."""
    cfg = SoccerConfig(num_envs=e, max_team_size=3, team_size_range=(1, 3), obs_noise=False)
    env = SoccerEnv(cfg, final_obs=False)
    env.reset(seed=seed)
    g = torch.Generator().manual_seed(seed)
    for _ in range(15):
        env.step(torch.rand(e, 6, 5, generator=g) * 2 - 1)
    st = env.state.clone()
    # the ball in blue 0's kick zone in every game, so that the kick actions matter
    st.ball_pos.copy_(st.pos[:, 0] + rotate(torch.tensor([0.16, 0.03]), st.yaw[:, 0, None]).reshape(-1, 2))
    st.ball_vel.zero_()
    assert bool(controllable(st, cfg)[:, 0].all())
    return cfg, st


def _physics_step(st: SoccerState, actions: torch.Tensor, cfg: SoccerConfig) -> None:
    v_cmd, w_cmd, kick = action_to_commands(actions * st.active[..., None], cfg)
    for _ in range(cfg.decimation):
        substep(st, v_cmd, w_cmd, kick, cfg)


def _assert_same_pose(a: SoccerState, b: SoccerState) -> None:
    for name in ("pos", "vel", "omega", "ball_pos", "ball_vel"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=2e-5, rtol=0, msg=name)
    torch.testing.assert_close(torch.sin(a.yaw), torch.sin(b.yaw), atol=2e-5, rtol=0)
    torch.testing.assert_close(torch.cos(a.yaw), torch.cos(b.yaw), atol=2e-5, rtol=0)


def test_y_mirror_of_the_state_and_actions_gives_the_mirrored_next_state() -> None:
    # (x, y, psi, vx, vy, omega) -> (x, -y, -psi, vx, -vy, -omega), actions dims 1, 2, 4 negated
    cfg, st = _played_state(0)
    g = torch.Generator().manual_seed(9)
    acts = torch.rand(8, 6, 5, generator=g) * 2 - 1
    sm = y_mirror(st)
    am = acts.clone()
    am[..., [1, 2, 4]] *= -1
    for _ in range(6):
        _physics_step(st, acts, cfg)
        _physics_step(sm, am, cfg)
        _assert_same_pose(y_mirror(st), sm)


def test_point_mirror_with_teams_swapped_gives_the_mirrored_next_state() -> None:
    # rotating the world by pi and swapping the team slots commutes with the physics
    cfg, st = _played_state(1)
    g = torch.Generator().manual_seed(4)
    acts = torch.rand(8, 6, 5, generator=g) * 2 - 1
    swap = torch.tensor([3, 4, 5, 0, 1, 2])
    sm = point_mirror_swap(st)
    for _ in range(6):
        _physics_step(st, acts, cfg)
        _physics_step(sm, acts[:, swap], cfg)
        _assert_same_pose(point_mirror_swap(st), sm)
