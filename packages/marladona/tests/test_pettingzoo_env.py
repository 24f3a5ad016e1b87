"""Tests of the PettingZoo ParallelEnv of one game (:mod:`marladona.pettingzoo_env`).

PettingZoo's own conformance tests (parallel_api_test, parallel_seed_test, api_test over
parallel_to_aec, state_test) for 1v1, 2v2, 3v3 and 1v3, with and without an opponent; numeric
checks against numbers obtained another way (hand-computed bounds and goal rewards, the simulator's
own global state, a second env fed explicit zeros).
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, state_test
from pettingzoo.utils import parallel_to_aec

from marladona.config import SoccerConfig
from marladona.env import SoccerEnv
from marladona.observations import POS_DIMS, VEL_DIMS
from marladona.pettingzoo_env import (
    SoccerParallelEnv,
    observation_bounds,
    observation_dim,
    parallel_env,
    state_bounds,
)
from marladona.sim import SoccerState

SIZES = [(1, 1), (2, 2), (3, 3), (1, 3)]


class ForwardBot:
    """A tiny scripted opponent: full speed forward, random kick from its own generator; records calls."""

    def __init__(self) -> None:
        self.generator = torch.Generator()
        self.teams: list[int] = []
        self.resets: list[list[bool]] = []

    def act(self, state: SoccerState, cfg: SoccerConfig, team: int) -> torch.Tensor:
        self.teams.append(team)
        e, t = state.num_envs, state.max_team_size
        a = torch.zeros(e, t, 5)
        a[..., 0] = 1.0
        a[..., 3:] = torch.rand(e, t, 2, generator=self.generator) * 2 - 1
        return a

    def reset(self, env_mask: torch.Tensor) -> None:
        self.resets.append(env_mask.tolist())


def make(sizes: tuple[int, int] | None, opponent: Any = None, **kw: Any) -> SoccerParallelEnv:
    return parallel_env(team_sizes=sizes, opponent=opponent() if callable(opponent) else opponent, seed=0, **kw)


def force(env: SoccerParallelEnv, event: str) -> None:
    """Put the ball just past a goal line in the mouth ("blue"/"red" scores) or past a touch line ("out")."""
    st = env.unwrapped.soccer.state
    hl = float(st.length[0]) / 2
    hw = env.cfg.field_width / 2
    ball = {"blue": (-hl - 0.02, 0.0), "red": (hl + 0.02, 0.0), "out": (0.0, hw + 0.02)}[event]
    st.ball_pos[0] = torch.tensor(ball)
    st.ball_vel[0] = 0.0
    near = (st.pos[0] - st.ball_pos[0]).norm(dim=-1) < 0.5
    st.pos[0, near, 0] = 0.0  # clear the ball's surroundings so no contact deflects it
    st.pos[0, near, 1] = torch.linspace(-1.5, 1.5, int(near.sum()))


def random_actions(env: SoccerParallelEnv) -> dict[str, np.ndarray]:
    return {a: env.action_space(a).sample() for a in env.agents}


# ---------------------------------------------------------------------------------------------- PettingZoo tests


class TestPettingZooConformance:
    @pytest.mark.parametrize("sizes", [*SIZES, None], ids=["1v1", "2v2", "3v3", "1v3", "drawn"])
    @pytest.mark.parametrize("opponent", [None, ForwardBot], ids=["selfplay", "bot"])
    def test_parallel_api_test_passes(self, sizes: tuple[int, int] | None, opponent: Any) -> None:
        env = make(sizes, opponent)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # PettingZoo reports soft API problems as warnings
            if sizes is None:  # drawn sizes: the absent slots of possible_agents never play, as intended
                warnings.filterwarnings("ignore", message="No agents present but not all possible_agents")
            parallel_api_test(env, num_cycles=25)

    @pytest.mark.parametrize("sizes", SIZES, ids=["1v1", "2v2", "3v3", "1v3"])
    @pytest.mark.parametrize("opponent", [None, ForwardBot, "idle"], ids=["selfplay", "bot", "idle"])
    def test_parallel_seed_test_passes(self, sizes: tuple[int, int], opponent: Any) -> None:
        parallel_seed_test(lambda: make(sizes, opponent))

    @pytest.mark.parametrize(("sizes", "opponent"), [((1, 1), None), ((2, 2), ForwardBot), ((1, 3), None)])
    def test_aec_api_test_passes(self, sizes: tuple[int, int], opponent: Any) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            api_test(parallel_to_aec(make(sizes, opponent, max_cycles=15)), num_cycles=15)

    @pytest.mark.parametrize(("sizes", "opponent"), [((3, 3), None), ((1, 3), "idle")])
    def test_state_test_passes(self, sizes: tuple[int, int], opponent: Any) -> None:
        state_test(parallel_to_aec(make(sizes, opponent)), make(sizes, opponent), num_cycles=10)

    def test_real_heuristic_bots_pass_parallel_api_test(self) -> None:
        heuristic = pytest.importorskip("marladona.heuristic")
        for bot in (heuristic.IdleBot(), heuristic.RandomBot(torch.Generator()), heuristic.RoleBot()):
            parallel_api_test(make((2, 2), bot), num_cycles=10)


# ---------------------------------------------------------------------------------------------- spaces


class TestSpaces:
    def test_agents_are_the_present_players(self) -> None:
        assert make((1, 3)).possible_agents == ["blue_0", "red_0", "red_1", "red_2"]
        assert make((2, 1), "idle").possible_agents == ["blue_0", "blue_1"]
        env = make((1, 3))
        env.reset(seed=0)
        assert env.agents == env.possible_agents

    def test_spaces_are_cached_and_sized(self) -> None:
        env = make((1, 3))
        for a in env.possible_agents:
            assert env.observation_space(a) is env.observation_space(a)
            assert env.action_space(a) is env.action_space(a)
            # K = 2 * 3 - 1 = 5 entities: 18 + 8 * 5 + 5 = 63
            assert env.observation_space(a).shape == (63,) == (observation_dim(3),)
            assert env.observation_space(a).dtype == np.float32
            assert env.action_space(a).shape == (5,)
            assert env.action_space(a).low.min() == -1
            assert env.action_space(a).high.max() == 1
        assert env.state_space.shape == (3 * 6 + 4,)
        with pytest.raises(ValueError, match="blue_7"):
            env.observation_space("blue_7")

    def test_observation_bounds_by_hand(self) -> None:
        # walls: half-length L/9 * 10.4/2 -> 10.4/9 of L/2 on every level; half-width 2.22 -> 2.22/1.8 of W/2
        low, high = observation_bounds(SoccerConfig(max_team_size=1, team_size_range=(1, 1)))
        px, py = 10.4 / 9 + 0.01, 2.22 / 1.8 + 0.01
        va, vb = 8 * 0.35, 8 * (math.hypot(0.505, 1.0) + 0.7)  # 8x the servos' largest commands
        ego = np.array([va, va, 5.0, px, py, 1, 1, vb, vb, px, py, 1, 0, 1, 1, 1, 1, 1])
        ego[list({*VEL_DIMS, *POS_DIMS})] += 0.01  # noisy dims: +0.01 over the noise-free bound
        np.testing.assert_allclose(high[:18], ego, rtol=1e-6)
        assert (low[11:18] == [0, -1, -1, -1, -1, 0, 0]).all()
        assert low[:11] == pytest.approx(-high[:11])
        assert high[18:26] == pytest.approx([px, px, py, py, 1, 1, 1, 1], rel=1e-6)
        assert (low[26:] == 0).all()
        assert (high[26:] == 1).all()
        assert (low < high).all()
        assert np.isfinite(np.concatenate((low, high))).all()


# ---------------------------------------------------------------------------------------------- dynamics


def test_bounds_hold_over_many_batched_games() -> None:
    """The same flattening over 128 games at once (sizes 1-3 drawn): 150 steps of extreme random actions."""
    cfg = SoccerConfig(num_envs=128, max_team_size=3, team_size_range=(1, 3), ball_spawn="random_half")
    env = SoccerEnv(cfg, final_obs=True)
    env.reset(seed=0)
    low, high = (torch.from_numpy(b) for b in observation_bounds(cfg))
    s_low, s_high = (torch.from_numpy(b) for b in state_bounds(cfg))
    g = torch.Generator().manual_seed(0)
    peak = torch.zeros(low.shape)
    for _ in range(150):
        actions = torch.randint(-1, 2, (128, 6, 5), generator=g).float()
        obs, *_, info = env.step(actions)
        for o in (obs, info["final_obs"]):
            flat = torch.cat((o.ego, o.entities.flatten(2), o.entity_mask.float()), -1)[o.active]
            assert ((flat >= low) & (flat <= high)).all()
            peak = torch.maximum(peak, flat.abs().max(0).values)
        state = env.global_state()
        assert ((state >= s_low) & (state <= s_high)).all()
    # the linear-velocity bounds are generous: the extremes stay below a quarter of them (agents, ball)
    assert (peak[[0, 1, 7, 8]] < 0.25 * high[[0, 1, 7, 8]]).all(), peak[:9]
    # the yaw rate is bounded by construction: the servo command 2.5 rad/s plus the 0.005 noise
    assert 2.4 < peak[2] <= 2.5 + 0.005 + 1e-5


class TestRollout:
    @pytest.mark.parametrize(("sizes", "opponent"), [((3, 3), None), ((1, 3), ForwardBot)], ids=["3v3", "1v3-bot"])
    def test_observations_stay_inside_their_space(
        self, sizes: tuple[int, int], opponent: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        env = make(sizes, opponent)
        for a in env.possible_agents:
            env.action_space(a).seed(1)
        obs, _ = env.reset(seed=3)
        events = {"goal": 0, "out": 0}
        cycle = ["blue", "out", "red"]
        with caplog.at_level(logging.WARNING, logger="marladona.pettingzoo_env"):
            for i in range(360):
                if not env.agents:
                    obs, _ = env.reset()
                if i % 30 == 29:
                    force(env, cycle[(i // 30) % 3])
                obs, _, _, _, infos = env.step(random_actions(env))
                for a, o in obs.items():
                    assert env.observation_space(a).contains(o), (a, o)
                assert env.state_space.contains(env.state())
                first = next(iter(infos.values()))
                events["goal"] += first["goal"] != 0
                events["out"] += first["ball_out"]
        assert events["goal"] >= 6, events
        assert events["out"] >= 4, events
        assert not caplog.records  # nothing had to be clipped: the raw values were inside the bounds

    def test_goal_terminates_everyone_with_the_hand_computed_reward(self) -> None:
        env = make((2, 2))
        env.reset(seed=0)
        env.step({})
        force(env, "blue")
        obs, rew, term, trunc, infos = env.step({})
        assert all(term.values())
        assert not any(trunc.values())
        assert env.agents == []
        for a in ("blue_0", "blue_1", "red_0", "red_1"):
            terms = infos[a]["reward_terms"]
            assert infos[a]["goal"] == 1
            # score weight 100 times the policy step 0.08 s: +8 for the scorers, -8 for the others
            assert terms["score"] == pytest.approx(8.0 if a.startswith("blue") else -8.0)
            assert rew[a] == pytest.approx(sum(terms.values()), abs=1e-5)
        # the last observation is the pre-reset one: the ball past blue's target line (-x in both frames)
        assert obs["blue_0"][9] < -1
        assert obs["red_0"][9] > 1
        assert env.state()[-4] < -1
        with pytest.raises(RuntimeError, match="reset"):
            env.step({})

    def test_truncation_at_max_cycles(self) -> None:
        env = make((1, 1), "idle", max_cycles=5)
        env.reset(seed=0)
        for _ in range(4):
            _, _, term, trunc, _ = env.step({})
            assert not any(term.values())
            assert not any(trunc.values())
        _, _, term, trunc, _ = env.step({})
        assert trunc == {"blue_0": True}
        assert term == {"blue_0": False}
        assert env.agents == []

    def test_time_out_reports_the_game_that_ended(self) -> None:
        env = make((2, 2), "idle", episode_length_s=0.8)  # 10 policy steps
        obs, _ = env.reset(seed=0)
        before = env.state()
        for _ in range(10):
            last, _, term, trunc, _ = env.step({})
        assert all(trunc.values())
        assert not any(term.values())
        # agents that never moved: their final positions are the initial ones (the simulator's reset
        # would have drawn new ones); 0.005 covers the ±0.002 position noise
        np.testing.assert_allclose(last["blue_0"][3:5], obs["blue_0"][3:5], atol=0.005)
        np.testing.assert_allclose(env.state()[:12], before[:12], atol=1e-4)

    def test_state_matches_the_simulator_and_its_rebuild(self) -> None:
        env = make((1, 3))
        env.reset(seed=0)
        for _ in range(5):
            env.step(random_actions(env))
        soccer = env.unwrapped.soccer
        truth = soccer.global_state()[0].numpy()
        np.testing.assert_array_equal(env.state(), truth)
        # the terminal-state rebuild from the team-frame observation gives the same numbers
        np.testing.assert_allclose(env._state_from_obs(soccer.obs), truth, atol=1e-5)


# ---------------------------------------------------------------------------------------------- actions


class TestActions:
    def test_missing_action_is_the_zero_action(self) -> None:
        a, b = make((2, 2)), make((2, 2))
        a.reset(seed=5)
        b.reset(seed=5)
        rng = np.random.default_rng(0)
        for _ in range(4):
            acts = {ag: rng.uniform(-1, 1, 5).astype(np.float32) for ag in a.agents}
            del acts["red_1"]
            oa, ra, *_ = a.step(acts)
            ob, rb, *_ = b.step({**acts, "red_1": np.zeros(5, np.float32)})
            for ag in oa:
                np.testing.assert_array_equal(oa[ag], ob[ag])
            assert ra == rb

    def test_actions_of_unknown_or_absent_agents_are_ignored(self) -> None:
        a, b = make((1, 2), ForwardBot), make((1, 2), ForwardBot)
        a.reset(seed=2)
        b.reset(seed=2)
        act = {"blue_0": np.full(5, 0.5, np.float32)}
        noise = {"red_0": np.ones(5), "blue_1": np.ones(5), "nobody": np.ones(5), "red_9": np.ones(3)}
        for _ in range(3):
            oa, *_ = a.step(act)
            ob, *_ = b.step({**act, **noise})
            np.testing.assert_array_equal(oa["blue_0"], ob["blue_0"])

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_non_finite_action_raises_naming_the_agent(self, bad: float) -> None:
        env = make((2, 2))
        env.reset(seed=0)
        act = random_actions(env)
        act["red_1"] = np.array([0, 0, bad, 0, 0], np.float32)
        with pytest.raises(ValueError, match="red_1"):
            env.step(act)

    def test_wrong_action_shape_raises_naming_the_agent(self) -> None:
        env = make((1, 1))
        env.reset(seed=0)
        with pytest.raises(ValueError, match=r"blue_0.*\(5,\)"):
            env.step({"blue_0": np.zeros(4)})

    def test_opponent_drives_red_with_team_1_and_is_reset(self) -> None:
        bot = ForwardBot()
        env = parallel_env(team_sizes=(1, 2), opponent=bot, seed=0)
        env.reset(seed=0)
        red_x = env.unwrapped.soccer.state.pos[0, 3:5, 0].clone()
        yaw = env.unwrapped.soccer.state.yaw[0, 3:5]
        for _ in range(10):
            env.step({})
        moved = env.unwrapped.soccer.state.pos[0, 3:5, 0] - red_x
        assert bot.teams == [1] * 10
        assert bot.resets == [[True]]
        assert (torch.sign(moved) == torch.sign(torch.cos(yaw))).all()  # driven forward, along their heading


# ---------------------------------------------------------------------------------------------- resets


class TestReset:
    def test_reset_seed_is_deterministic_across_instances(self) -> None:
        a = parallel_env(team_sizes=(2, 2), opponent=ForwardBot(), seed=1)
        b = parallel_env(team_sizes=(2, 2), opponent=ForwardBot(), seed=2)
        oa, _ = a.reset(seed=9)
        ob, _ = b.reset(seed=9)
        for _ in range(15):
            for ag in oa:
                np.testing.assert_array_equal(oa[ag], ob[ag])
            act = {ag: np.full(5, 0.3, np.float32) for ag in a.agents}
            oa, *_ = a.step(act)
            ob, *_ = b.step(act)

    def test_drawn_team_sizes_change_the_agents(self) -> None:
        env = make(None, max_team_size=3)
        assert len(env.possible_agents) == 6
        seen = set()
        for _ in range(12):
            obs, infos = env.reset()
            blue, red = infos[env.agents[0]]["team_sizes"]
            assert env.agents == [f"blue_{i}" for i in range(blue)] + [f"red_{i}" for i in range(red)]
            seen.add((blue, red))
            # the mask bits count the other present players: (blue - 1) + red for a blue agent
            assert obs["blue_0"][-5:].sum() == blue - 1 + red
        assert len(seen) > 1

    def test_field_level_option(self) -> None:
        env = make((1, 1))
        obs, infos = env.reset(seed=0, options={"field_level": 2})
        assert infos["blue_0"]["field_level"] == 2
        assert obs["blue_0"][11] == pytest.approx(1.44 / 3.6)  # g / W of level 2


# ---------------------------------------------------------------------------------------------- input checks


class TestBadInput:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"team_sizes": (0, 1)}, "team_sizes"),
            ({"team_sizes": (2, 2), "max_team_size": 1}, "max_team_size"),
            ({"opponent": "heuristic"}, "opponent"),
            ({"opponent": object()}, "opponent"),
            ({"max_cycles": 0}, "max_cycles"),
            ({"render_mode": "human"}, "render_mode"),
            ({"num_envs": 4}, "num_envs"),
            ({"bogus": 1}, "bogus"),
            ({"team_sizes": (1, 1), "team_size_range": (1, 2)}, "team_size_range"),
        ],
    )
    def test_bad_arguments_raise_naming_them(self, kwargs: dict[str, Any], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            parallel_env(**kwargs)

    def test_bad_opponent_output_raises(self) -> None:
        class Broken(ForwardBot):
            def act(self, state: SoccerState, cfg: SoccerConfig, team: int) -> torch.Tensor:
                return torch.zeros(1, 2, 5)

        env = parallel_env(team_sizes=(1, 3), opponent=Broken(), seed=0)
        env.reset(seed=0)
        with pytest.raises(ValueError, match=r"opponent.*\(1, 3, 5\)"):
            env.step({})


# ---------------------------------------------------------------------------------------------- rendering


class TestRender:
    def test_render_without_mode_warns_and_returns_none(self) -> None:
        env = make((1, 1))
        env.reset(seed=0)
        with pytest.warns(UserWarning, match="render_mode"):
            assert env.render() is None

    def test_rgb_array_frame(self) -> None:
        render = pytest.importorskip("marladona.render", reason="marladona.render is not written yet")
        if not hasattr(render, "render_frame"):
            pytest.skip("marladona.render has no render_frame yet")
        env = make((2, 2), render_mode="rgb_array")
        env.reset(seed=0)
        frame = env.render()
        assert isinstance(frame, np.ndarray)
        assert frame.ndim == 3
        assert frame.shape[2] == 3
        assert frame.dtype == np.uint8
