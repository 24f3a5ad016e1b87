"""Tests of SoccerEnv: goal/out/time-out rules, batched resets, determinism, team sizes, curriculum, errors."""

from __future__ import annotations

import math

import pytest
import torch

from marladona.config import SoccerConfig
from marladona.env import SoccerEnv
from marladona.sim import SoccerState


def _env(e: int = 2, t: int = 1, **kw: object) -> SoccerEnv:
    base: dict[str, object] = {
        "num_envs": e,
        "max_team_size": t,
        "team_size_range": (t, t),
        "init_level_range": (1, 1),
        "obs_noise": False,
        "field_curriculum": False,
    }
    env = SoccerEnv(SoccerConfig(**{**base, **kw}))  # type: ignore[arg-type]
    env.reset(seed=0)
    return env


def _quiet(env: SoccerEnv) -> SoccerState:
    """Every game: agents at rest far from the ball, the ball at rest in the centre (L = 5.4, g = 2.04)."""
    st = env.state.clone()
    a = st.pos.shape[1]
    st.pos.copy_(torch.tensor([[-1.0 + 0.5 * i, -1.2] for i in range(a)]))
    st.prev_pos.copy_(st.pos)
    st.vel.zero_()
    st.omega.zero_()
    st.ball_pos.zero_()
    st.ball_vel.zero_()
    return st


class TestRules:
    def test_goal_for_blue_just_past_the_line(self) -> None:
        # ball at (-L/2 - 1e-3, 0): goal, +100 * 0.08 for blue, -8 for red, terminated, not truncated
        env = _env()
        st = _quiet(env)
        st.ball_pos[0] = torch.tensor([-2.7 - 1e-3, 0.0])
        env.set_state(st)
        _obs, rew, term, trunc, info = env.step(torch.zeros(2, 2, 5))
        assert term.tolist() == [True, False]
        assert trunc.tolist() == [False, False]
        assert info["goal"].tolist() == [1, 0]
        assert info["terms"]["score"].tolist() == [[8.0, -8.0], [0.0, 0.0]]
        torch.testing.assert_close(rew, torch.stack(list(info["terms"].values())).sum(0))
        assert info["final_obs"].critic_ego[0, 0, 9].item() < -1.0  # the ball past the line, seen by blue
        assert env.state.step.tolist() == [0, 1]  # game 0 restarted, game 1 goes on
        assert "final_state" not in info  # off by default: a state copy per step

    def test_final_state_is_the_game_before_its_reset(self) -> None:
        # final_state=True: the state at the end of the step (ball beyond the line), the env reset after
        env = SoccerEnv(_env().cfg, final_state=True)
        env.reset(seed=0)
        st = _quiet(env)
        st.ball_pos[0] = torch.tensor([-2.7 - 1e-3, 0.0])
        env.set_state(st)
        _obs, _rew, term, _trunc, info = env.step(torch.zeros(2, 2, 5))
        assert term.tolist() == [True, False]
        final = info["final_state"]
        assert final.ball_pos[0, 0].item() < -2.7  # the goal frame
        assert final.step.tolist() == [1, 1]
        assert env.state.step.tolist() == [0, 1]
        torch.testing.assert_close(final.pos[1], env.state.pos[1])  # the running game is the same state
        final.pos.add_(1.0)  # a copy: changing it leaves the env alone
        assert not torch.equal(final.pos[1], env.state.pos[1])

    def test_goal_for_red_and_no_repeat(self) -> None:
        env = _env()
        st = _quiet(env)
        st.ball_pos[1] = torch.tensor([2.7 + 1e-3, -0.5])
        st.ball_vel[1] = torch.tensor([0.5, 0.0])
        env.set_state(st)
        _, _, term, _, info = env.step(torch.zeros(2, 2, 5))
        assert term.tolist() == [False, True]
        assert info["goal"].tolist() == [0, -1]
        assert info["terms"]["score"][1].tolist() == [-8.0, 8.0]
        _, _, term, _, info = env.step(torch.zeros(2, 2, 5))
        assert not bool(term.any())
        assert info["goal"].tolist() == [0, 0]

    def test_ball_out_past_the_line_outside_the_mouth(self) -> None:
        # clipped 5 mm inside, zero velocity, -1 * 0.08 for everyone, the game goes on
        env = _env()
        st = _quiet(env)
        st.ball_pos[0] = torch.tensor([-2.7 - 1e-3, 1.02 + 0.3])
        st.ball_pos[1] = torch.tensor([0.4, 1.8 + 1e-3])  # past the touch line
        st.ball_vel[:] = torch.tensor([[-0.5, 0.0], [0.0, 0.2]])
        env.set_state(st)
        _, _, term, trunc, info = env.step(torch.zeros(2, 2, 5))
        assert not bool(term.any())
        assert not bool(trunc.any())
        assert info["ball_out"].tolist() == [True, True]
        assert info["goal"].tolist() == [0, 0]
        torch.testing.assert_close(info["terms"]["ball_out"], torch.full((2, 2), -0.08))
        # the first substep moved the ball by v dt = (-0.01, 0) and (0, 0.004) before the rule fired
        torch.testing.assert_close(env.state.ball_pos, torch.tensor([[-2.7 + 0.005, 1.32], [0.4, 1.8 - 0.005]]))
        assert float(env.state.ball_vel.abs().sum()) == 0.0

    def test_time_out_after_375_steps_is_a_truncation_only(self) -> None:
        env = _env()
        env.set_state(_quiet(env))
        zero = torch.zeros(2, 2, 5)
        for n in range(1, 376):
            _, _, term, trunc, info = env.step(zero)
            assert not bool(term.any())
            assert trunc.tolist() == [n == 375] * 2, n
        assert info["episode_length"].tolist() == [375, 375]
        assert env.state.step.tolist() == [0, 0]

    def test_episode_return_sums_the_rewards_and_restarts(self) -> None:
        env = _env(e=2, t=2, team_size_range=(1, 2))
        g = torch.Generator().manual_seed(0)
        total = torch.zeros(2, 4)
        for _ in range(5):
            _, rew, *_, info = env.step(torch.rand(2, 4, 5, generator=g) * 2 - 1)
            total += rew
        torch.testing.assert_close(info["episode_return"], total)


class TestBatching:
    def test_resetting_some_games_leaves_the_others_bit_identical(self) -> None:
        env = _env(e=6, t=3, team_size_range=(1, 3), init_level_range=(0, 3))
        g = torch.Generator().manual_seed(1)
        for _ in range(4):
            env.step(torch.rand(6, 6, 5, generator=g) * 2 - 1)
        for call, ids in (
            (lambda: env.set_field_level(2, env_ids=torch.tensor([3])), [3]),
            (lambda: env.set_team_sizes(1, 2, env_ids=torch.tensor([1, 4])), [1, 4]),
            (lambda: env.set_team_sizes(None, None, env_ids=torch.tensor([False, True] * 3)), [1, 3, 5]),
        ):
            before = env.state.clone()
            call()
            keep = torch.ones(6, dtype=torch.bool)
            keep[ids] = False
            for name, value in env.state.tensors().items():
                assert torch.equal(value[keep], getattr(before, name)[keep]), name
            assert env.state.step[~keep].tolist() == [0] * len(ids)
        assert env.state.level[3].item() == 2
        assert env.state.team_size[4].tolist() == [1, 2]

    def test_same_seed_same_trajectory(self) -> None:
        # episodes of 1.6 s (20 steps) so that the run crosses several automatic resets
        def run(seed: int) -> list[torch.Tensor]:
            env = _env(
                e=5,
                t=3,
                team_size_range=(1, 3),
                init_level_range=(0, 3),
                obs_noise=True,
                field_curriculum=True,
                episode_length_s=1.6,
            )
            out = [*env.reset(seed=seed)]
            g = torch.Generator().manual_seed(7)
            for _ in range(45):
                obs, rew, term, trunc, _ = env.step(torch.rand(5, 6, 5, generator=g) * 2 - 1)
                out += [*obs, rew, term, trunc]
            return out + list(env.state.tensors().values())

        a, b, c = run(3), run(3), run(4)
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
        assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))

    def test_a_batch_equals_each_game_stepped_alone(self) -> None:
        e, steps = 5, 20
        batch = _env(e=e, t=3, team_size_range=(1, 3), init_level_range=(0, 3))
        start = batch.state.clone()
        g = torch.Generator().manual_seed(5)
        acts = [torch.rand(e, 6, 5, generator=g) * 2 - 1 for _ in range(steps)]
        states, alive = [], torch.ones(e, dtype=torch.bool)
        for a in acts:
            _, _, term, trunc, _ = batch.step(a)
            alive &= ~(term | trunc)
            states.append((batch.state.clone(), alive.clone()))
        assert bool(alive.any())
        for k in range(e):
            single = _env(e=1, t=3, team_size_range=(1, 3))
            single.set_state(start.index(torch.tensor([k])))
            for a, (st, ok) in zip(acts, states, strict=True):
                single.step(a[k : k + 1])
                if not ok[k]:
                    break
                for name, value in single.state.tensors().items():
                    torch.testing.assert_close(value[0], getattr(st, name)[k], atol=1e-6, rtol=0, msg=name)


class TestSpawn:
    def test_spawn_boxes_of_the_code(self) -> None:
        # own-half boxes in units of (L/2, W/2); blue defends +x, red is the point mirror; the ball in
        # blue's half at x in [0.25, 0.75] L/2, |y| <= 0.75 W/2
        env = _env(e=256, t=3, init_level_range=(0, 3))
        st = env.state
        hl = (st.length / 2)[:, None]
        x, y = st.pos[..., 0] / hl, st.pos[..., 1] / 1.8
        blue = [(0.1, 0.95, -0.5, 0.5), (-0.1, 0.5, -0.95, 0.0), (-0.1, 0.5, 0.0, 0.95)]
        red = [(0.1, 0.95, -0.5, 0.5), (0.1, 0.5, -0.95, 0.0), (0.1, 0.5, 0.0, 0.95)]
        eps = 1e-5
        for i, (x0, x1, y0, y1) in enumerate(blue + red):
            s = 1.0 if i < 3 else -1.0
            xi, yi = s * x[:, i], s * y[:, i]
            assert bool(((xi >= x0 - eps) & (xi <= x1 + eps) & (yi >= y0 - eps) & (yi <= y1 + eps)).all()), i
            assert (float(xi.min()), float(xi.max())) == (pytest.approx(x0, abs=0.05), pytest.approx(x1, abs=0.05)), i
        bx, by = st.ball_pos[:, 0] / hl[:, 0], st.ball_pos[:, 1] / 1.8
        assert bool(((bx >= 0.25 - eps) & (bx <= 0.75 + eps) & (by.abs() <= 0.75 + eps)).all())
        assert bool((st.yaw.abs() <= math.pi).all())

    def test_ball_spawn_options(self) -> None:
        centre = _env(e=8, ball_spawn="center")
        assert float(centre.state.ball_pos.abs().max()) == 0.0
        either = _env(e=64, ball_spawn="random_half")
        x = either.state.ball_pos[:, 0]
        assert bool((x > 0).any())
        assert bool((x < 0).any())
        assert bool((x.abs() >= 0.25 * 2.7 - 1e-5).all())


class TestTeamSizes:
    def test_set_team_sizes_changes_the_present_players(self) -> None:
        env = _env(e=3, t=3, team_size_range=(1, 3))
        obs = env.set_team_sizes(1, 3)
        st = env.state
        assert st.active.tolist() == [[True, False, False, True, True, True]] * 3
        assert st.team_size.tolist() == [[1, 3]] * 3
        assert bool((st.pos[:, 1:3, 1] == -2.7).all())  # parked outside the walls
        assert obs.ego[:, 0, 16:].tolist() == [[1.0, 3.0]] * 3  # own, opponent size
        assert obs.ego[:, 3, 16:].tolist() == [[3.0, 1.0]] * 3
        assert obs.entity_mask[0, 0].tolist() == [False, False, True, True, True]
        assert obs.entity_mask[0, 3].tolist() == [True, True, True, False, False]
        # per-game sizes, kept through automatic resets until cleared
        env.set_team_sizes(torch.tensor([1, 2, 3]), torch.tensor([3, 2, 1]))
        assert env.state.team_size.tolist() == [[1, 3], [2, 2], [3, 1]]
        assert env.state.active.sum(1).tolist() == [4, 4, 4]
        env.reset()
        assert env.state.team_size.tolist() == [[1, 3], [2, 2], [3, 1]]
        env.set_team_sizes(None, None)
        assert (env.fixed_sizes == -1).all()

    @pytest.mark.parametrize(
        ("blue", "red", "match"),
        [(0, 1, "blue"), (1, 4, "red"), (1.5, 1, "blue"), (True, 1, "blue"), (1, None, "both")],
    )
    def test_set_team_sizes_errors(self, blue: object, red: object, match: str) -> None:
        env = _env(e=2, t=3, team_size_range=(1, 3))
        with pytest.raises(ValueError, match=match):
            env.set_team_sizes(blue, red)  # type: ignore[arg-type]

    @pytest.mark.parametrize("ids", [torch.tensor([2]), torch.tensor([-1]), torch.tensor([0.5]), torch.tensor([True])])
    def test_env_ids_errors(self, ids: torch.Tensor) -> None:
        env = _env(e=2)
        with pytest.raises(ValueError, match="env_ids"):
            env.set_field_level(0, env_ids=ids)

    @pytest.mark.parametrize("as_mask", [False, True])
    def test_reset_games_resets_only_those_games(self, as_mask: bool) -> None:
        env = _env(e=4, t=2, team_size_range=(1, 2))
        g = torch.Generator().manual_seed(0)
        for _ in range(5):
            env.step(torch.rand(4, 4, 5, generator=g) * 2 - 1)
        env.set_field_level(torch.tensor([0, 1, 2, 3]))
        for _ in range(3):
            env.step(torch.rand(4, 4, 5, generator=g) * 2 - 1)
        before = env.state.clone()
        ids = torch.tensor([False, True, False, True]) if as_mask else torch.tensor([3, 1])
        obs = env.reset_games(ids)
        st = env.state
        assert st.step.tolist() == [3, 0, 3, 0]
        assert env.episode_return[[1, 3]].abs().sum() == 0
        assert st.level.tolist() == [0, 1, 2, 3]  # each game keeps its field level
        for name, value in st.tensors().items():  # the other games are untouched
            torch.testing.assert_close(value[[0, 2]], getattr(before, name)[[0, 2]], msg=name)
        assert not torch.equal(st.pos[[1, 3]], before.pos[[1, 3]])
        torch.testing.assert_close(obs.ego, env.obs.ego)
        with pytest.raises(ValueError, match="env_ids"):
            env.reset_games(torch.tensor([4]))

    def test_set_field_level_sets_the_geometry(self) -> None:
        env = _env(e=2)
        env.set_field_level(torch.tensor([0, 2]))
        torch.testing.assert_close(env.state.length, torch.tensor([4.32, 5.4]))
        torch.testing.assert_close(env.state.goal_width, torch.tensor([2.04, 1.44]))
        for bad in (-1, 4, 1.0):
            with pytest.raises(ValueError, match="levels"):
                env.set_field_level(bad)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("blue", "red"), [(1, 3), (3, 1), (1, 1), (2, 3), (3, 3)])
    def test_no_nan_for_any_team_size_mix(self, blue: int, red: int) -> None:
        env = _env(e=4, t=3, team_size_range=(1, 3), obs_noise=True)
        obs = env.set_team_sizes(blue, red)
        st = env.state.clone()  # one game with everything piled on one spot
        st.pos[0, :] = st.pos[0, 0]
        st.ball_pos[0] = st.pos[0, 0]
        obs = env.set_state(st)
        g = torch.Generator().manual_seed(blue * 10 + red)
        for _ in range(25):
            for x in (*obs, env.global_state()):
                assert bool(torch.isfinite(x.float()).all())
            obs, rew, *_ = env.step(torch.rand(4, 6, 5, generator=g) * 2 - 1)
            assert bool(torch.isfinite(rew).all())
        assert obs.active.sum(1).tolist() == [blue + red] * 4


class TestCurriculum:
    def test_field_level_moves_with_goals(self) -> None:
        # +1 after a blue goal, -1 after a red goal (not below 0), unchanged otherwise
        env = _env(e=4, field_curriculum=True)
        env.set_field_level(torch.tensor([1, 1, 0, 2]))
        st = _quiet(env)
        hl = st.length / 2
        st.ball_pos[0, 0] = -hl[0] - 1e-3  # blue scores
        st.ball_pos[1, 0] = hl[1] + 1e-3  # red scores
        st.ball_pos[2, 0] = hl[2] + 1e-3  # red scores at the bottom level
        env.set_state(st)
        env.step(torch.zeros(4, 2, 5))
        assert env.state.level.tolist() == [2, 0, 0, 2]
        torch.testing.assert_close(env.state.length, torch.tensor([5.4, 4.32, 4.32, 5.4]))
        torch.testing.assert_close(env.state.goal_width, torch.tensor([1.44, 2.04, 2.04, 1.44]))

    def test_past_the_top_level_a_random_level(self) -> None:
        env = _env(e=64, field_curriculum=True)
        env.set_field_level(3)
        st = _quiet(env)
        st.ball_pos[:, 0] = -st.length / 2 - 1e-3
        env.set_state(st)
        env.step(torch.zeros(64, 2, 5))
        levels = env.state.level
        assert bool(((levels >= 0) & (levels <= 3)).all())
        assert len(set(levels.tolist())) >= 3  # U{0..3}: all four levels but with tiny probability

    def test_no_movement_without_the_curriculum(self) -> None:
        env = _env(e=2, field_curriculum=False)
        st = _quiet(env)
        st.ball_pos[0, 0] = -2.7 - 1e-3
        env.set_state(st)
        env.step(torch.zeros(2, 2, 5))
        assert env.state.level.tolist() == [1, 1]


class TestErrors:
    @pytest.mark.parametrize(
        ("actions", "match"),
        [
            (torch.zeros(2, 2, 4), r"\(E, 2\*Tmax, 5\)"),
            (torch.zeros(2, 3, 5), r"\(E, 2\*Tmax, 5\)"),
            (torch.zeros(2, 2, 5, dtype=torch.long), "floating point"),
            (torch.zeros(2, 2, 5, device="meta"), "on cpu"),
            (torch.full((2, 2, 5), math.nan), "NaN"),
            (torch.full((2, 2, 5), math.inf), "inf"),
        ],
    )
    def test_action_validation(self, actions: torch.Tensor, match: str) -> None:
        env = _env()
        with pytest.raises(ValueError, match=match):
            env.step(actions)

    def test_non_tensor_actions(self) -> None:
        with pytest.raises(ValueError, match=r"torch\.Tensor"):
            _env().step([[0.0] * 5] * 2)  # type: ignore[arg-type]

    def test_step_before_reset(self) -> None:
        env = SoccerEnv(SoccerConfig(num_envs=1, max_team_size=1, team_size_range=(1, 1)))
        with pytest.raises(RuntimeError, match="reset"):
            env.step(torch.zeros(1, 2, 5))
        with pytest.raises(RuntimeError, match="reset"):
            _ = env.obs

    def test_bad_device(self) -> None:
        with pytest.raises(ValueError, match="device"):
            SoccerEnv(SoccerConfig(num_envs=1, max_team_size=1, team_size_range=(1, 1), device="cpux"))

    def test_set_state_shape_mismatch(self) -> None:
        env = _env(e=2)
        with pytest.raises(ValueError, match=r"state\.pos"):
            env.set_state(_env(e=3).state)


@pytest.mark.gpu
def test_cuda_env_accepts_actions_on_the_default_cuda_device() -> None:
    env = SoccerEnv(SoccerConfig(num_envs=4, max_team_size=2, team_size_range=(1, 2), device="cuda"))
    obs = env.reset(seed=0)
    obs, rew, *_ = env.step(torch.zeros(4, 4, 5, device="cuda:0"))
    assert rew.device.type == "cuda"
    assert bool(torch.isfinite(obs.ego).all())
