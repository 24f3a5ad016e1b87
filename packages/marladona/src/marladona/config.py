"""Configuration of the soccer environment: every constant of the authors' released environment.

Source of each default: the Isaac Lab port ``leggedrobotics/marladona-isaac-lab`` at V1.0.0
(``isaaclab_marl/config.py``, ``assets/env_data.py``, ``tasks/soccer/soccer_marl_env_cfg.py``,
``managers/ma_action_manager.py``, the USD assets). Only constants the released code actually reads
are ported (the spec's defect D11 lists the dead ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

FIELD_LEVELS: tuple[tuple[float, float], ...] = ((4.32, 2.04), (5.4, 2.04), (5.4, 1.44), (5.4, 0.96))
"""(field length L, goal width g) in metres per curriculum level (``level_settings`` of the code)."""


@dataclass(frozen=True)
class AgentParams:
    """The robot: a planar rigid body driven by a velocity servo (``Agents.step`` of the code)."""

    mass: float = 5.48
    """Mass in kg (USD asset)."""
    inertia: float = 0.0101
    """Yaw inertia I_zz in kg m^2 (USD asset)."""
    radius: float = 0.1
    """Footprint radius in m (mesh extent +-0.1)."""
    max_vx_forward: float = 0.35
    """Forward speed limit in m/s (``cmd_speed_limit``)."""
    max_vx_backward: float = 0.25
    """Backward speed limit in m/s."""
    max_vy: float = 0.25
    """Sideways speed limit in m/s."""
    max_omega: float = 2.5
    """Yaw-rate limit in rad/s."""
    force_gain: float = 10.0
    """F = force_gain (v_cmd - v) in N (``translation_force_d_gain``)."""
    torque_gain: float = 0.2
    """tau = torque_gain (omega_cmd - omega) in N m."""

    def __post_init__(self) -> None:
        for name in ("mass", "inertia", "radius", "max_vx_forward", "max_vx_backward", "max_vy", "max_omega"):
            _positive(name, getattr(self, name))
        for name in ("force_gain", "torque_gain"):
            _positive(name, getattr(self, name))


@dataclass(frozen=True)
class BallParams:
    """The ball and the kick/dribble zone (``SoccerBall`` and the action manager of the code)."""

    mass: float = 0.044
    """Mass in kg (USD asset)."""
    radius: float = 0.05
    """Radius in m (USD asset)."""
    inertia: float = 1e-4
    """Rolling inertia in kg m^2 (USD asset)."""
    rolling_friction: tuple[float, float] = (6e-5, 1e-4)
    """Range of the rolling-friction coefficient c, drawn per game; speed decays at c / (m r^2 + I)."""
    restitution: float = 0.0
    """Coefficient of restitution of the ball's contacts with walls, posts and agents (0 = inelastic, 1 = elastic).

    The code's ``EventCfg.physics_material_ball`` draws the ball's restitution from ``(0.0, 0.0)`` and
    the field uses the ``multiply`` combine mode, so the ball does not bounce."""
    kick_gain: float = 0.5
    """Ball force 0.5 (k_w - v_ball) from each controlling agent (``kick_force_gain``)."""
    control_radius: float = 0.2
    """The ball is controllable when its body-frame position p has |p| < 0.2, p.x > 0, |p.y| < 0.1."""
    control_half_width: float = 0.1
    """Half-width |p.y| of the controllable zone."""
    ownership_radius: float = 0.25
    """Closest agent within this radius owns the ball while no opponent is within it."""

    def __post_init__(self) -> None:
        for name in ("mass", "radius", "inertia", "kick_gain", "control_radius", "control_half_width"):
            _positive(name, getattr(self, name))
        _positive("ownership_radius", self.ownership_radius)
        rf = self.rolling_friction
        if not (len(rf) == 2 and all(_finite(v) for v in rf) and 0 <= rf[0] <= rf[1]):
            raise ValueError(f"rolling_friction must be (lo, hi) with 0 <= lo <= hi, got {rf!r}")
        if not (_finite(self.restitution) and 0 <= self.restitution <= 1):
            raise ValueError(f"restitution must be in [0, 1], got {self.restitution!r}")

    @property
    def decay_rates(self) -> tuple[float, float]:
        """Range of the exponential speed-decay rate c / (m r^2 + I) in 1/s."""
        denom = self.mass * self.radius**2 + self.inertia
        return self.rolling_friction[0] / denom, self.rolling_friction[1] / denom


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the named reward terms (``RewardsCfg`` of the code); each term is logged separately."""

    score: float = 100.0
    """+1 when the own team scores, -1 when it concedes (team term)."""
    ball_out: float = 1.0
    """-1 on the step the ball leaves the field outside the goal mouth (team term)."""
    collision: float = 1.0
    """-1 for touching another agent, -1 for being off the field or at a post."""
    vel_to_ball: float = 0.5
    """Own velocity projected on the unit vector to the ball; 0 for the owner of the ball."""
    ball_to_goal: float = 2.0
    """Ball velocity projected on the unit vector from the ball to the opponent goal centre (team term)."""
    ball_direction: float = 0.5
    """0.05 exp(-(atan2(y_b, x_b) / 0.4)^2), y_b, x_b the ball in the body frame (facing the ball)."""
    scale_by_dt: bool = True
    """Multiply every term by the policy step 0.08 s, as Isaac Lab's RewardManager does (a goal = +-8)."""

    def __post_init__(self) -> None:
        for name, value in self.as_dict().items():
            if not _finite(value):
                raise ValueError(f"{name} weight must be a finite number, got {value!r}")

    def as_dict(self) -> dict[str, float]:
        """The term weights by name, in the order the environment logs them."""
        return {
            "score": self.score,
            "ball_out": self.ball_out,
            "collision": self.collision,
            "vel_to_ball": self.vel_to_ball,
            "ball_to_goal": self.ball_to_goal,
            "ball_direction": self.ball_direction,
        }


@dataclass(frozen=True)
class SoccerConfig:
    """The batched soccer game: sizes, timing, field, bodies, rewards, randomisation.

    Agents ``0 .. max_team_size - 1`` are blue, ``max_team_size .. 2 max_team_size - 1`` red. Blue
    defends the +x goal and attacks -x; red is the point mirror. Team sizes per game are drawn from
    ``team_size_range`` at every reset (each team independently, as the authors' code does at start);
    absent players are parked outside the walls, masked everywhere and never produce NaN.
    """

    num_envs: int = 1024
    """Games simulated in parallel."""
    max_team_size: int = 3
    """Largest team; tensors are sized for 2 max_team_size agents."""
    team_size_range: tuple[int, int] = (1, 3)
    """Inclusive range each team's size is drawn from at reset (fixed sizes: (k, k))."""
    red_team_size_range: tuple[int, int] | None = None
    """Separate range for red; None = same as team_size_range."""
    field_levels: tuple[tuple[float, float], ...] = FIELD_LEVELS
    """(field length, goal width) per curriculum level."""
    init_level_range: tuple[int, int] = (0, 3)
    """Inclusive range of the initial field level drawn per game."""
    field_curriculum: bool = True
    """On reset: level +1 after a blue goal, -1 after a red goal; past the top -> a random level."""
    field_width: float = 3.6
    """Field width W in m (``EnvData.field_width``)."""
    wall_half_width: float = 2.22
    """Border box half-width in m; its half-length is L / 9 * 10.4 / 2."""
    post_radius: float = 0.049
    """Goal posts: cylinders at (+-L/2, +-g/2)."""
    episode_length_s: float = 30.0
    """Time-out in seconds (375 policy steps)."""
    sim_dt: float = 0.02
    """Physics step in s."""
    decimation: int = 4
    """Physics steps per policy step (policy at 12.5 Hz)."""
    agent: AgentParams = field(default_factory=AgentParams)
    ball: BallParams = field(default_factory=BallParams)
    rewards: RewardWeights = field(default_factory=RewardWeights)
    contact_tolerance: float = 0.005
    """Agents closer than 2 r + tolerance count as colliding for the collision penalty."""
    obs_noise: bool = True
    """Uniform noise on the policy observation: +-0.005 on velocities, +-0.002 on positions."""
    randomize: bool = True
    """Draw the ball's rolling friction per game (else the midpoint of the range)."""
    ball_spawn: Literal["blue_half", "center", "random_half"] = "blue_half"
    """Ball spawn box: the code's level 0 puts it in blue's half; "random_half" picks a half per game."""
    paper_compat: bool = False
    """Reproduce the released code's defects: D1 (red's yaw rate negated in its observation), D6 (the
    off-field penalty's y-bound at 3.3 m, outside the walls, so it never fires), and three of its reward
    terms as they are: ``ball_to_goal`` on a goal step, red's ``ball_to_goal`` sign and the red player the
    ``vel_to_ball`` mask leaves unpaid when nobody owns the ball (:func:`marladona.rewards.reward_terms`)."""
    device: str = "cpu"
    """Torch device of every tensor."""
    seed: int = 0
    """Seed of the environment's own torch.Generator."""
    backend: Literal["torch", "isaacgym"] = "torch"
    """Simulator: the batched torch backend (CPU or CUDA). "isaacgym" is refused with an explanation."""

    def __post_init__(self) -> None:
        _positive_int("num_envs", self.num_envs)
        _positive_int("max_team_size", self.max_team_size)
        _positive_int("decimation", self.decimation)
        for name in ("field_width", "wall_half_width", "post_radius", "episode_length_s", "sim_dt"):
            _positive(name, getattr(self, name))
        if not (_finite(self.contact_tolerance) and self.contact_tolerance >= 0):
            raise ValueError(f"contact_tolerance must be a finite number >= 0, got {self.contact_tolerance!r}")
        for name in ("team_size_range", "red_team_size_range"):
            rng = getattr(self, name)
            if rng is None:
                continue
            if not (_int_pair(rng) and 1 <= rng[0] <= rng[1] <= self.max_team_size):
                raise ValueError(
                    f"{name} must be (lo, hi) integers with 1 <= lo <= hi <= max_team_size={self.max_team_size}, "
                    f"got {rng!r}"
                )
        if not self.field_levels:
            raise ValueError("field_levels must hold at least one (length, goal_width) level, got ()")
        for lvl in self.field_levels:
            if not (len(lvl) == 2 and all(_finite(v) for v in lvl) and lvl[0] > 0 and 0 < lvl[1] < self.field_width):
                raise ValueError(
                    f"field_levels entries must be (length > 0, 0 < goal_width < field_width={self.field_width}), "
                    f"got {lvl!r}"
                )
        rng = self.init_level_range
        if not (_int_pair(rng) and 0 <= rng[0] <= rng[1] < len(self.field_levels)):
            raise ValueError(
                f"init_level_range must be (lo, hi) integers with 0 <= lo <= hi < len(field_levels)="
                f"{len(self.field_levels)}, got {rng!r}"
            )
        if self.field_width / 2 >= self.wall_half_width:
            raise ValueError(
                f"wall_half_width must exceed field_width / 2 = {self.field_width / 2}, got {self.wall_half_width}"
            )
        if self.ball_spawn not in ("blue_half", "center", "random_half"):
            raise ValueError(f"ball_spawn must be 'blue_half', 'center' or 'random_half', got {self.ball_spawn!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be a torch device string such as 'cpu' or 'cuda', got {self.device!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.backend == "isaacgym":
            raise ImportError(
                "backend='isaacgym' is not available: Isaac Gym is not on PyPI (NVIDIA's preview tarball must be "
                "installed by hand, `pip install -e isaacgym/python`) and this package ships no Isaac Gym backend. "
                "The torch backend runs on GPUs too: SoccerConfig(backend='torch', device='cuda')."
            )
        if self.backend != "torch":
            raise ValueError(f"backend must be 'torch' (or 'isaacgym', refused), got {self.backend!r}")

    @property
    def num_agents(self) -> int:
        """Agent slots per game: 2 max_team_size."""
        return 2 * self.max_team_size

    @property
    def step_dt(self) -> float:
        """Policy step in s: sim_dt * decimation (0.08)."""
        return self.sim_dt * self.decimation

    @property
    def max_episode_steps(self) -> int:
        """Policy steps before the time-out (375)."""
        return math.ceil(self.episode_length_s / self.step_dt - 1e-9)

    @property
    def red_range(self) -> tuple[int, int]:
        """The red team's size range."""
        return self.red_team_size_range or self.team_size_range

    def replace(self, **changes: object) -> SoccerConfig:
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]


PRESETS: dict[str, dict[str, object]] = {
    "paper-3v3": {"num_envs": 1024, "team_size_range": (1, 3)},
    "cpu-1v1": {"num_envs": 512, "max_team_size": 1, "team_size_range": (1, 1), "init_level_range": (0, 0)},
    "cpu-3v3": {"num_envs": 512, "max_team_size": 3, "team_size_range": (3, 3), "init_level_range": (0, 0)},
}
"""Named environment settings (``SoccerConfig(**PRESETS[name])``)."""


def preset(name: str, **changes: object) -> SoccerConfig:
    """The SoccerConfig of preset ``name`` ("paper-3v3", "cpu-1v1", "cpu-3v3") with ``changes``."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    return SoccerConfig(**{**PRESETS[name], **changes})  # type: ignore[arg-type]


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(name: str, value: float) -> None:
    if not (_finite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _int_pair(rng: object) -> bool:
    return (
        isinstance(rng, (tuple, list))
        and len(rng) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in rng)
    )


def _positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
