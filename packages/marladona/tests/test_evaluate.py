"""Tests of evaluation: Wilson intervals by hand, W/D/L counting, argument errors."""

from __future__ import annotations

import math

import pytest
import torch

from marladona.config import SoccerConfig
from marladona.evaluate import evaluate, format_table, play_episodes, wilson_interval
from marladona.sim import SoccerState


def test_wilson_interval_hand_cases() -> None:
    # p = 0.8, n = 10, z = 1.96: centre (0.8 + z^2/20) / (1 + z^2/10), half-width z sqrt(0.016 + z^2/400) / (1 + z^2/10)
    z = 1.959963984540054
    denom = 1 + z * z / 10
    centre = (0.8 + z * z / 20) / denom
    half = z * math.sqrt(0.8 * 0.2 / 10 + z * z / 400) / denom
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(centre - half)
    assert hi == pytest.approx(centre + half)
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    # zero successes: upper bound z^2 / (n + z^2)
    assert wilson_interval(0, 50)[1] == pytest.approx(z * z / (50 + z * z))
    with pytest.raises(ValueError, match="n must"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)


def test_idle_against_idle_is_all_draws() -> None:
    # Nobody moves and the ball rests: every game times out.
    r = play_episodes("idle", "idle", SoccerConfig(max_team_size=1, team_size_range=(1, 1)), 16, 1, 1, level=0)
    assert (r["wins"], r["draws"], r["losses"]) == (0, 16, 0)
    assert r["draw_ci"][1] == pytest.approx(1.0)
    assert math.isnan(r["mean_steps_to_goal"])


class _ShootAtOwnGoal:
    """Blue bot that scores an own goal at once: puts the ball just past its own (+x) goal line."""

    def reset(self, env_mask: torch.Tensor) -> None:
        pass

    def act(self, state: SoccerState, cfg: SoccerConfig, team: int) -> torch.Tensor:
        state.ball_pos[:, 0] = state.length / 2 - 0.01
        state.ball_pos[:, 1] = 0.0
        state.ball_vel[:, 0] = 2.0
        e, t = state.pos.shape[0], state.pos.shape[1] // 2
        return torch.zeros(e, t, 5)


def test_counts_each_games_first_episode_as_a_loss_for_an_own_goal() -> None:
    r = play_episodes(
        _ShootAtOwnGoal(), "idle", SoccerConfig(max_team_size=1, team_size_range=(1, 1)), 10, 1, 1, level=0
    )
    assert (r["wins"], r["draws"], r["losses"]) == (0, 0, 10)
    assert r["mean_steps_to_goal"] == 1.0
    assert r["goal_diff"] == -1.0


class _OwnGoalInOddGames:
    """Scores an own goal at once in odd games only; even games keep playing (idle)."""

    def reset(self, env_mask: torch.Tensor) -> None:
        pass

    def act(self, state: SoccerState, cfg: SoccerConfig, team: int) -> torch.Tensor:
        odd = torch.arange(state.pos.shape[0]) % 2 == 1
        state.ball_pos[odd, 0] = state.length[odd] / 2 - 0.01
        state.ball_pos[odd, 1] = 0.0
        state.ball_vel[odd, 0] = 2.0
        return torch.zeros(state.pos.shape[0], state.pos.shape[1] // 2, 5)


def test_each_game_counts_its_first_episode_only() -> None:
    # Odd games lose every step (hundreds of finished episodes); even games time out once. Counting
    # every finished episode would report almost only losses; one outcome per game gives 50/50.
    r = play_episodes(_OwnGoalInOddGames(), "idle", SoccerConfig(max_team_size=1, team_size_range=(1, 1)), 8, 1, 1, 0)
    assert (r["wins"], r["draws"], r["losses"]) == (0, 4, 4)


def test_heuristic_beats_idle_and_table_renders() -> None:
    result = evaluate("heuristic", "idle", team_sizes=((1, 1),), episodes=32, level=0)
    r = result["per_size"]["1v1"]
    assert r["wins"] >= 28
    assert r["losses"] == 0
    assert "1v1" in format_table(result)


def test_evaluate_argument_errors() -> None:
    with pytest.raises(ValueError, match="episodes"):
        evaluate("idle", "idle", episodes=0)
    with pytest.raises(ValueError, match="level"):
        evaluate("idle", "idle", team_sizes=((1, 1),), episodes=2, level=7)
    with pytest.raises(ValueError, match="opponent must be"):
        evaluate("idle", "no-such-bot", team_sizes=((1, 1),), episodes=2, level=0)
