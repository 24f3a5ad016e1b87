"""Tests of SoccerConfig: the code's constants, derived quantities by hand, and validation messages."""

from __future__ import annotations

import math

import pytest

from marladona.config import FIELD_LEVELS, PRESETS, AgentParams, BallParams, RewardWeights, SoccerConfig, preset


def test_defaults_are_the_released_codes_constants() -> None:
    cfg = SoccerConfig()
    # FIELD_LEVEL_SETTINGS = (2,3,4,5)*0.2*9*0.6, GOAL_LEVEL_SETTINGS = (6,4.6,3.4,2.4,1.6)*0.6,
    # level_settings [[2,2],[3,2],[3,3],[3,4]]
    lengths = [n * 0.2 * 9 * 0.6 for n in (2, 3, 4, 5)]
    goals = [n * 0.6 for n in (6, 4.6, 3.4, 2.4, 1.6)]
    want = [(lengths[i], goals[j]) for i, j in ((2, 2), (3, 2), (3, 3), (3, 4))]
    assert cfg.field_levels == FIELD_LEVELS
    for got, exp in zip(cfg.field_levels, want, strict=True):
        assert got == pytest.approx(exp)
    assert (cfg.field_width, cfg.sim_dt, cfg.decimation, cfg.episode_length_s) == (3.6, 0.02, 4, 30.0)
    assert cfg.agent == AgentParams(5.48, 0.0101, 0.1, 0.35, 0.25, 0.25, 2.5, 10.0, 0.2)
    assert (cfg.ball.mass, cfg.ball.radius, cfg.ball.inertia, cfg.ball.kick_gain) == (0.044, 0.05, 1e-4, 0.5)
    assert cfg.ball.restitution == 0.0  # EventCfg.physics_material_ball restitution_range (0, 0)
    assert cfg.rewards.as_dict() == {
        "score": 100.0,
        "ball_out": 1.0,
        "collision": 1.0,
        "vel_to_ball": 0.5,
        "ball_to_goal": 2.0,
        "ball_direction": 0.5,
    }


def test_derived_quantities_by_hand() -> None:
    cfg = SoccerConfig(max_team_size=4, team_size_range=(1, 4))
    assert cfg.num_agents == 8
    assert cfg.step_dt == pytest.approx(0.08)
    assert cfg.max_episode_steps == 375  # 30 / 0.08
    assert SoccerConfig(episode_length_s=1.0).max_episode_steps == 13  # ceil(12.5)
    assert cfg.red_range == (1, 4)
    assert SoccerConfig(red_team_size_range=(2, 2)).red_range == (2, 2)
    lo, hi = cfg.ball.decay_rates  # c / (m r^2 + I) = c / 2.1e-4
    assert (lo, hi) == (pytest.approx(0.285714, rel=1e-5), pytest.approx(0.476190, rel=1e-5))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_envs": 0}, "num_envs"),
        ({"num_envs": 2.0}, "num_envs"),
        ({"max_team_size": 0}, "max_team_size"),
        ({"decimation": 0}, "decimation"),
        ({"team_size_range": (0, 2)}, "team_size_range"),
        ({"team_size_range": (3, 2)}, "team_size_range"),
        ({"team_size_range": (1, 4)}, "team_size_range"),
        ({"team_size_range": (1.0, 2.0)}, "team_size_range"),
        ({"red_team_size_range": (1, 5)}, "red_team_size_range"),
        ({"field_levels": ()}, "field_levels"),
        ({"field_levels": ((5.4, 4.0),)}, "field_levels"),
        ({"field_levels": ((-1.0, 1.0),)}, "field_levels"),
        ({"field_levels": ((math.nan, 1.0),)}, "field_levels"),
        ({"init_level_range": (0, 4)}, "init_level_range"),
        ({"init_level_range": (2, 1)}, "init_level_range"),
        ({"field_width": -1.0}, "field_width"),
        ({"wall_half_width": 1.5}, "wall_half_width"),
        ({"post_radius": 0.0}, "post_radius"),
        ({"episode_length_s": 0.0}, "episode_length_s"),
        ({"sim_dt": math.inf}, "sim_dt"),
        ({"contact_tolerance": -0.1}, "contact_tolerance"),
        ({"ball_spawn": "middle"}, "ball_spawn"),
        ({"device": ""}, "device"),
        ({"seed": 1.5}, "seed"),
        ({"backend": "jax"}, "backend"),
    ],
)
def test_config_errors_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SoccerConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (AgentParams, {"mass": 0.0}, "mass"),
        (AgentParams, {"max_omega": -1.0}, "max_omega"),
        (AgentParams, {"force_gain": math.nan}, "force_gain"),
        (BallParams, {"radius": 0.0}, "radius"),
        (BallParams, {"rolling_friction": (1e-4, 6e-5)}, "rolling_friction"),
        (BallParams, {"restitution": 1.5}, "restitution"),
        (BallParams, {"ownership_radius": 0.0}, "ownership_radius"),
        (RewardWeights, {"score": math.nan}, "score"),
        (RewardWeights, {"ball_direction": math.inf}, "ball_direction"),
    ],
)
def test_parameter_errors_name_the_field(cls: type, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        cls(**kwargs)


def test_isaacgym_backend_raises_import_error_with_an_explanation() -> None:
    with pytest.raises(ImportError, match="Isaac Gym") as info:
        SoccerConfig(backend="isaacgym")
    assert "pip" in str(info.value)
    assert "device='cuda'" in str(info.value)


def test_replace_validates_again() -> None:
    cfg = SoccerConfig(num_envs=8)
    assert cfg.replace(num_envs=16).num_envs == 16
    with pytest.raises(ValueError, match="num_envs"):
        cfg.replace(num_envs=-1)


def test_presets() -> None:
    for name in PRESETS:
        cfg = preset(name)
        assert isinstance(cfg, SoccerConfig)
    one = preset("cpu-1v1", num_envs=4)
    assert (one.num_envs, one.max_team_size, one.team_size_range) == (4, 1, (1, 1))
    assert preset("cpu-3v3").team_size_range == (3, 3)
    with pytest.raises(ValueError, match="preset"):
        preset("5v5")


def test_lists_from_json_are_accepted() -> None:
    cfg = SoccerConfig(team_size_range=[1, 2], field_levels=[[4.32, 2.04]], init_level_range=[0, 0])  # type: ignore[arg-type]
    assert cfg.team_size_range == [1, 2]
