"""Tests of the named reward terms: hand cases for each term and the team-swap symmetry."""

from __future__ import annotations

import math

import pytest
import torch

from marladona.config import RewardWeights, SoccerConfig
from marladona.rewards import TERMS, ball_owner, reward_terms, weighted_terms
from marladona.sim import SoccerState, empty_state

NO = torch.zeros(1, dtype=torch.bool)
YES = torch.ones(1, dtype=torch.bool)


def _cfg(t: int = 2, **kw: object) -> SoccerConfig:
    base: dict[str, object] = {"num_envs": 1, "max_team_size": t, "team_size_range": (1, t), "obs_noise": False}
    return SoccerConfig(**{**base, **kw})  # type: ignore[arg-type]


def _state(
    pos: list[tuple[float, float]],
    active: list[bool] | None = None,
    yaw: list[float] | None = None,
    vel: list[tuple[float, float]] | None = None,
    ball: tuple[float, float] = (0.0, 0.0),
    ball_vel: tuple[float, float] = (0.0, 0.0),
) -> SoccerState:
    a = len(pos)
    st = empty_state(1, a // 2)
    st.pos[0] = torch.tensor(pos)
    st.yaw[0] = torch.tensor(yaw or [0.0] * a)
    st.vel[0] = torch.tensor(vel or [(0.0, 0.0)] * a)
    st.active[0] = torch.tensor(active or [True] * a)
    st.ball_pos[0] = torch.tensor(ball)
    st.ball_vel[0] = torch.tensor(ball_vel)
    st.length.fill_(5.4)
    st.goal_width.fill_(1.44)
    return st


FAR = [(-1.0, 1.5), (1.0, 1.5), (-1.0, -1.5), (1.0, -1.5)]


def _terms(
    st: SoccerState,
    cfg: SoccerConfig | None = None,
    blue: torch.Tensor = NO,
    red: torch.Tensor = NO,
    out: torch.Tensor = NO,
) -> dict[str, torch.Tensor]:
    return reward_terms(st, cfg or _cfg(st.pos.shape[1] // 2), blue, red, out)


class TestOwnership:
    @pytest.mark.parametrize(
        ("pos", "active", "want"),
        [
            # blue 0 at 0.2 from the ball, nobody else near: blue 0 owns it
            ([(0.2, 0.0), FAR[1], FAR[2], FAR[3]], None, [True, False, False, False]),
            # an opponent (red 0) within 0.25: nobody owns it
            ([(0.2, 0.0), FAR[1], (-0.24, 0.0), FAR[3]], None, [False, False, False, False]),
            # a closer teammate: the closest (blue 1) owns it
            ([(0.2, 0.0), (0.0, 0.1), FAR[2], FAR[3]], None, [False, True, False, False]),
            # everyone beyond 0.25: nobody
            ([(0.3, 0.0), FAR[1], FAR[2], FAR[3]], None, [False, False, False, False]),
            # an absent opponent on the ball does not count
            ([(0.2, 0.0), FAR[1], (0.0, 0.05), FAR[3]], [True, True, False, True], [True, False, False, False]),
            # red owns it the same way
            ([FAR[0], FAR[1], FAR[2], (0.0, -0.2)], None, [False, False, False, True]),
        ],
    )
    def test_ball_owner_hand_cases(
        self, pos: list[tuple[float, float]], active: list[bool] | None, want: list[bool]
    ) -> None:
        assert ball_owner(_state(pos, active), _cfg()).tolist() == [want]


class TestShaping:
    def test_vel_to_ball_is_the_velocity_towards_the_ball(self) -> None:
        # blue 0 at the origin moving (0.3, 0), ball at (1, 1): 0.3 / sqrt(2); red 0 moving away: -0.2
        st = _state(
            [(0.0, 0.0), FAR[1], (2.0, 1.0), FAR[3]], vel=[(0.3, 0.0), (0, 0), (0.2, 0.0), (0, 0)], ball=(1.0, 1.0)
        )
        r = _terms(st)["vel_to_ball"][0]
        assert r.tolist() == pytest.approx([0.3 / math.sqrt(2), 0.0, -0.2, 0.0], abs=1e-6)

    def test_vel_to_ball_is_zero_for_the_owner(self) -> None:
        st = _state([(-0.2, 0.0), FAR[1], FAR[2], FAR[3]], vel=[(0.3, 0.0), (0, 0), (0, 0), (0, 0)])
        assert _terms(st)["vel_to_ball"][0, 0].item() == 0.0
        st.pos[0, 2] = torch.tensor([0.2, 0.0])  # an opponent contests it: nobody owns it, the term returns
        assert _terms(st)["vel_to_ball"][0, 0].item() == pytest.approx(0.3)

    def test_paper_compat_leaves_the_code_s_red_player_unpaid_when_nobody_owns_the_ball(self) -> None:
        # The code's until_close mask: with nobody owning the ball it indexes team -1 (red) and the in-team
        # index of the agent closest to the ball. All four move (0.3, 0); ball at the origin.
        vel = [(0.3, 0.0)] * 4
        red0 = 0.3 * 1.0 / math.hypot(1.0, 1.5)  # red 0 at (-1, -1.5): u = (1, 1.5)/|.|
        for blue0, blue1, unpaid in (
            ((-0.2, 0.0), FAR[1], None),  # blue 0 owns the ball: only it is unpaid, in both modes
            ((-0.6, 0.0), FAR[1], 2),  # nobody owns; blue 0 (index 0) is closest: red 0 goes unpaid
            ((-0.6, 0.0), (0.4, 0.0), 3),  # nobody owns; blue 1 (index 1) is closest: red 1 goes unpaid
        ):
            st = _state([blue0, blue1, FAR[2], FAR[3]], vel=vel)
            fixed = _terms(st)["vel_to_ball"][0].tolist()
            compat = _terms(st, _cfg(paper_compat=True))["vel_to_ball"][0].tolist()
            want = [0.0 if unpaid is None else 0.3, 0.3 * (-blue1[0]) / math.hypot(*blue1), red0, -red0]
            assert fixed == pytest.approx(want, abs=1e-6)
            if unpaid is not None:
                want[unpaid] = 0.0
            assert compat == pytest.approx(want, abs=1e-6)

    @pytest.mark.parametrize(
        ("ball", "ball_vel", "blue", "red"),
        [
            # towards -x: blue attacks the goal at (-L/2, 0), red the goal at (+L/2, 0)
            ((0.0, 0.0), (-1.0, 0.0), 1.0, -1.0),
            ((0.0, 0.0), (0.0, 1.0), 0.0, 0.0),
            # ball (1, 1) moving (0, -1): blue (-3.7, -1)/|.| -> 1/3.8328; red (1.7, -1)/|.| -> 1/1.9723
            ((1.0, 1.0), (0.0, -1.0), 1 / math.hypot(3.7, 1.0), 1 / math.hypot(1.7, 1.0)),
        ],
    )
    def test_ball_to_goal_sign_for_each_team(
        self, ball: tuple[float, float], ball_vel: tuple[float, float], blue: float, red: float
    ) -> None:
        st = _state(FAR, ball=ball, ball_vel=ball_vel)
        r = _terms(st)["ball_to_goal"][0]
        assert r.tolist() == pytest.approx([blue, blue, red, red], abs=1e-6)
        # the code multiplies red's direction to the goal it attacks by the negated ball velocity
        compat = _terms(st, _cfg(paper_compat=True))["ball_to_goal"][0]
        assert compat.tolist() == pytest.approx([blue, blue, -red, -red], abs=1e-6)

    def test_ball_to_goal_is_zero_on_a_goal_step(self) -> None:
        # Blue scores: the ball is 1 cm behind the line x = -2.7, moving (-0.5, 0) into the goal. The direction
        # from the ball to the goal centre (-2.7, 0) is +x, so the code's term gives -0.5 to blue (and red's
        # mirror, towards (2.7, 0), also -0.5); fixed, the term is 0 on goal steps, for either team's goal.
        st = _state(FAR, ball=(-2.71, 0.0), ball_vel=(-0.5, 0.0))
        assert _terms(st, blue=YES)["ball_to_goal"][0].tolist() == [0.0] * 4
        assert _terms(st, red=YES)["ball_to_goal"][0].tolist() == [0.0] * 4
        compat = _terms(st, _cfg(paper_compat=True), blue=YES)["ball_to_goal"][0]
        assert compat.tolist() == pytest.approx([-0.5, -0.5, 0.5, 0.5])  # red's sign as the code's, too
        assert _terms(st)["ball_to_goal"][0].tolist() == pytest.approx([-0.5] * 4)  # no goal flagged: unchanged

    @pytest.mark.parametrize(
        ("angle", "want"),
        [
            (0.0, 0.05),
            (0.4, 0.05 / math.e),
            (-0.8, 0.05 * math.exp(-4)),
            (math.pi / 2, 0.05 * math.exp(-((math.pi / 0.8) ** 2))),
        ],
    )
    def test_ball_direction_hand_cases(self, angle: float, want: float) -> None:
        # 0.05 exp(-(bearing / 0.4)^2), the bearing of the ball in the body frame
        psi = 1.0
        st = _state(
            [(0.5, 0.5), FAR[1], FAR[2], FAR[3]],
            yaw=[psi, 0, 0, 0],
            ball=(0.5 + math.cos(psi + angle), 0.5 + math.sin(psi + angle)),
        )
        assert _terms(st)["ball_direction"][0, 0].item() == pytest.approx(want, rel=1e-5, abs=1e-9)


class TestPenalties:
    @pytest.mark.parametrize(("gap", "want"), [(0.19, -1.0), (0.2, -1.0), (0.25, 0.0)])
    def test_agent_contact(self, gap: float, want: float) -> None:
        st = _state([(0.0, 0.0), (gap, 0.0), FAR[2], FAR[3]], ball=(0.0, 1.0))
        assert _terms(st)["collision"][0].tolist() == [want, want, 0.0, 0.0]

    def test_absent_agent_causes_no_contact(self) -> None:
        st = _state([(0.0, 0.0), (0.1, 0.0), FAR[2], FAR[3]], active=[True, False, True, True], ball=(0.0, 1.0))
        assert _terms(st)["collision"][0].tolist() == [0.0, 0.0, 0.0, 0.0]

    @pytest.mark.parametrize(
        ("where", "fixed", "compat"),
        [
            ((2.7 + 0.05, 0.72), -1.0, -1.0),  # 0.05 < 0.17 from a post
            ((-2.7, -0.72 - 0.16), -1.0, -1.0),
            ((-2.7, -0.72 - 0.18), 0.0, 0.0),
            ((2.7 + 0.31, 0.0), -1.0, -1.0),  # past L/2 + 0.3
            ((0.0, 2.15), -1.0, 0.0),  # past W/2 + 0.3 = 2.1; the code's 3.3 never fires (D6)
            ((0.0, -2.05), 0.0, 0.0),
        ],
    )
    def test_off_field_and_post_penalty(self, where: tuple[float, float], fixed: float, compat: float) -> None:
        st = _state([where, FAR[1], FAR[2], FAR[3]], ball=(0.0, 1.0))
        assert _terms(st)["collision"][0, 0].item() == fixed
        assert _terms(st, _cfg(paper_compat=True))["collision"][0, 0].item() == compat

    def test_contact_and_off_field_add_up(self) -> None:
        st = _state([(0.0, 2.15), (0.15, 2.15), FAR[2], FAR[3]], ball=(0.0, 0.0))
        assert _terms(st)["collision"][0].tolist() == [-2.0, -2.0, 0.0, 0.0]


def test_score_and_out_are_team_terms() -> None:
    st = _state(FAR, active=[True, False, True, True])
    t = _terms(st, blue=YES)
    assert t["score"][0].tolist() == [1.0, 0.0, -1.0, -1.0]
    assert _terms(st, red=YES)["score"][0].tolist() == [-1.0, 0.0, 1.0, 1.0]
    assert _terms(st, out=YES)["ball_out"][0].tolist() == [-1.0, 0.0, -1.0, -1.0]
    assert t["ball_out"][0].tolist() == [0.0] * 4


def test_every_term_is_zero_for_absent_players() -> None:
    st = _state([(0.0, 0.0), (0.1, 0.0), (0.3, 2.5), (0.0, 0.2)], active=[True, False, False, True])
    st.vel[0] = 0.3
    st.ball_vel[0] = torch.tensor([0.5, 0.1])
    for name, value in _terms(st, blue=YES, out=YES).items():
        assert value[0, 1:3].tolist() == [0.0, 0.0], name


def test_weighted_terms_scale_by_weight_and_policy_step() -> None:
    # a goal is worth 100 * 0.08 = 8; without the dt scaling 100
    st = _state(FAR, ball_vel=(-1.0, 0.0))
    terms = {**_terms(st), "score": _terms(st, blue=YES)["score"]}  # ball_to_goal is 0 on goal steps
    w = weighted_terms(terms, _cfg())
    assert tuple(w) == TERMS == tuple(RewardWeights().as_dict())
    assert w["score"][0].tolist() == pytest.approx([8.0, 8.0, -8.0, -8.0])
    assert w["ball_to_goal"][0].tolist() == pytest.approx([0.16, 0.16, -0.16, -0.16])  # 2.0 * 0.08
    raw = weighted_terms(terms, _cfg(rewards=RewardWeights(scale_by_dt=False)))
    assert raw["score"][0].tolist() == pytest.approx([100.0, 100.0, -100.0, -100.0])


def test_team_swap_swaps_every_reward_term() -> None:
    # rotate the world by pi, swap the slots and the goal events: blue i gets what red i got
    g = torch.Generator().manual_seed(0)
    e, a = 16, 6
    st = empty_state(e, 3)
    st.pos.copy_((torch.rand(e, a, 2, generator=g) * 2 - 1) * torch.tensor([2.9, 2.0]))
    st.yaw.copy_((torch.rand(e, a, generator=g) * 2 - 1) * math.pi)
    st.vel.copy_(torch.randn(e, a, 2, generator=g) * 0.2)
    st.ball_pos.copy_(st.pos[:, 1] + torch.randn(e, 2, generator=g) * 0.2)
    st.ball_vel.copy_(torch.randn(e, 2, generator=g))
    st.active.copy_(torch.rand(e, a, generator=g) < 0.8)
    st.length.fill_(5.4)
    st.goal_width.fill_(1.44)
    blue, red, out = (
        torch.rand(e, generator=g) < 0.3,
        torch.rand(e, generator=g) < 0.3,
        torch.rand(e, generator=g) < 0.3,
    )
    swap = torch.tensor([3, 4, 5, 0, 1, 2])
    m = st.clone()
    for name in ("pos", "vel", "yaw", "active"):
        getattr(m, name).copy_(getattr(st, name)[:, swap])
    m.pos.mul_(-1)
    m.vel.mul_(-1)
    m.yaw.add_(math.pi)
    m.ball_pos.mul_(-1)
    m.ball_vel.mul_(-1)
    cfg = _cfg(3, num_envs=e)
    t, tm = reward_terms(st, cfg, blue, red, out), reward_terms(m, cfg, red, blue, out)
    assert bool(ball_owner(st, cfg).any())
    for name in TERMS:
        torch.testing.assert_close(tm[name], t[name][:, swap], atol=1e-5, rtol=0, msg=name)
