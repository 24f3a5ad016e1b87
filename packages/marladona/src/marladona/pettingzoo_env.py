"""PettingZoo ``ParallelEnv`` of one soccer game, on top of :class:`~marladona.env.SoccerEnv` (``num_envs=1``).

Agents are ``blue_0 … blue_{b-1}`` and ``red_0 … red_{r-1}``, the present players of the game (b, r the
team sizes). With an ``opponent`` the red team is driven by it and only the blue players are
PettingZoo agents. Every agent sees the game in its team frame (red's view is the point mirror), as
in the authors' code (``tasks/soccer/mdp/observations.py``); the spec's section 1.5 lists the layout.

Observation of an agent (flat ``float32``, ``D = 18 + 8 K + K``, ``K = 2 T - 1``, T the largest team):

====================  ======  =====================================================================
slice                 size    content
====================  ======  =====================================================================
``[0, 18)``           18      the noisy policy observation (own velocity, pose, ball, field info)
``[18, 18 + 8K)``     8 K     the K entities (teammates, then opponents, each sorted by distance),
                              8 features each: x, y (normalised), sin, cos at t and t - 1, interleaved
``[18 + 8K, D)``      K       the entity mask: 1 for a present player, 0 for an empty slot (zeros)
====================  ======  =====================================================================

Bounds of the observation and state boxes (:func:`observation_bounds`, :func:`state_bounds`):

* positions, normalised by (L/2, W/2): the walls clamp every agent to ``|x| ≤ h_x - r``, ``|y| ≤ 2.22 - r``
  (``h_x = L/9 · 10.4/2``, so ``h_x / (L/2) = 10.4/9`` on every level) and the ball either to the field
  (out → put back inside) or into a goal mouth, in front of the back wall. Bound: ``10.4/9 + 0.01`` in x,
  ``2.22 / 1.8 + 0.01`` in y (0.01 for float32 rounding; the walls already leave a margin of r).
* headings: sin and cos in ``[-1, 1]``; the state's ``yaw / π`` in ``[-1, 1]`` (the simulator wraps yaw).
* yaw rate: the torque servo moves ω a fraction ``k = τ_gain dt / I = 0.396`` towards the command
  (``|ω_cmd| ≤ 2.5``) per substep and nothing else acts on ω, so ``|ω| ≤ 2.5``; bound ``2 · 2.5``.
* velocities: the drive servo is a contraction towards a command of at most 0.35 m/s, the kick servo
  towards a ball velocity of at most ``sqrt(0.505² + 1) = 1.12`` m/s; only contacts go beyond (an agent
  pushed by others; the ball hit by a moving agent gains at most ``(1 + e)`` times its speed, e ≤ 1).
  Bounds: agents ``8 · 0.35 = 2.8`` m/s, ball ``8 · (1.12 + 2 · 0.35) = 14.6`` m/s per component. Measured
  maxima over 1024 games × 400 steps of 5v5 ball chasing: 0.46 m/s (agents) and 2.1 m/s (ball).
* field info: ``g/W ∈ [0, 1]``, ``-g/W ∈ [-1, 0]``, the constants in ``[-1, 1]``, team sizes in ``[0, T]``;
  mask bits in ``[0, 1]``.
* observation noise: every ego dimension that gets noise (:data:`~marladona.observations.VEL_DIMS`, ±0.005,
  and :data:`~marladona.observations.POS_DIMS`, ±0.002, sin and cos included) has its bound widened by
  0.01 (entities and the state carry no noise).

Velocities are the one part bounded by physics rather than by construction: should a pathological
contact ever exceed a bound, the value is clipped into the box and a warning is logged, so the
PettingZoo contract (every observation inside its space) holds regardless.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import gymnasium
import numpy as np
import torch
from pettingzoo import ParallelEnv

from marladona.config import SoccerConfig
from marladona.env import SoccerEnv
from marladona.observations import EGO_DIM, ENTITY_DIM, POS_DIMS, VEL_DIMS, Obs, flatten_obs
from marladona.sim import empty_state, wall_half_extents

logger = logging.getLogger(__name__)

SPEED_BOUND_FACTOR = 8.0
"""Velocity bounds are this multiple of the largest speed a servo commands (see the module docstring)."""
POSITION_MARGIN = 0.01
"""Added to the normalised wall extent (float32 rounding)."""
NOISE_MARGIN = 0.01
"""Added to the bound of every noisy ego dimension: exceeds the noise amplitudes (±0.005, ±0.002)."""
ACTION_DIM = 5
"""Actions per agent: move x, move y, yaw rate, kick x, kick y, each in [-1, 1]."""
TEAMS = ("blue", "red")


def observation_dim(max_team_size: int) -> int:
    """``18 + 8 K + K`` with ``K = 2 max_team_size - 1``: the length of one agent's observation."""
    k = 2 * max_team_size - 1
    return EGO_DIM + ENTITY_DIM * k + k


def _speed_bounds(cfg: SoccerConfig) -> tuple[float, float, float]:
    """(agent speed, ball speed, yaw rate) bounds per component, from the servo limits."""
    p = cfg.agent
    agent_cmd = max(p.max_vx_forward, p.max_vx_backward, p.max_vy)
    kick_cmd = math.hypot(1.01 / 2, 1.0)  # k = ((x' + 0.01) / 2, y') with |x'|, |y'| <= 1
    return SPEED_BOUND_FACTOR * agent_cmd, SPEED_BOUND_FACTOR * (kick_cmd + 2 * agent_cmd), 2 * p.max_omega


def _position_bounds(cfg: SoccerConfig) -> tuple[float, float]:
    """Bounds of x / (L/2) and y / (W/2) over every field level: the walls' extent plus a margin."""
    st = empty_state(len(cfg.field_levels), 1)
    st.length = torch.tensor([lvl[0] for lvl in cfg.field_levels], dtype=torch.float32)
    hx, hy = wall_half_extents(st, cfg)
    bx = float((hx / (st.length / 2)).max())
    by = hy / (cfg.field_width / 2)
    return bx + POSITION_MARGIN, by + POSITION_MARGIN


def observation_bounds(cfg: SoccerConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension ``low, high`` of one agent's observation (``(D,)`` float32 each).

    Args:
        cfg: the game's configuration (field, speed limits, ``max_team_size``).

    Returns:
        ``low, high`` of shape ``(18 + 9 (2 T - 1),)``; the module docstring says why every
        observation lies between them.

    Example:
        >>> low, high = observation_bounds(SoccerConfig(max_team_size=1, team_size_range=(1, 1)))
        >>> low.shape, float(high[16])  # 18 + 9 * 1 dims; own team size <= 1
        ((27,), 1.0)
    """
    va, vb, w = _speed_bounds(cfg)
    px, py = _position_bounds(cfg)
    t = cfg.max_team_size
    ego_high = [va, va, w, px, py, 1, 1, vb, vb, px, py, 1, 0, 1, 1, 1, t, t]
    ego_low = [-va, -va, -w, -px, -py, -1, -1, -vb, -vb, -px, -py, 0, -1, -1, -1, -1, 0, 0]
    for i in {*VEL_DIMS, *POS_DIMS}:
        ego_high[i] += NOISE_MARGIN
        ego_low[i] -= NOISE_MARGIN
    k = 2 * t - 1
    ent = [px, px, py, py, 1, 1, 1, 1]
    high = np.array(ego_high + ent * k + [1] * k, dtype=np.float32)
    low = np.array(ego_low + [-x for x in ent] * k + [0] * k, dtype=np.float32)
    return low, high


def state_bounds(cfg: SoccerConfig) -> tuple[np.ndarray, np.ndarray]:
    """``low, high`` of :func:`marladona.observations.global_state` (``(3 A + 4,)`` float32 each).

    Per slot ``(x / (L/2), y / (W/2), yaw / π)``, then the ball ``(x / (L/2), y / (W/2), v_x, v_y)``.
    """
    _, vb, _ = _speed_bounds(cfg)
    px, py = _position_bounds(cfg)
    high = np.array([px, py, 1.0] * cfg.num_agents + [px, py, vb, vb], dtype=np.float32)
    return -high, high


class SoccerParallelEnv(ParallelEnv):  # type: ignore[misc]
    """One game of MARLadona soccer as a PettingZoo ``ParallelEnv`` (numpy in, numpy out).

    Args:
        team_sizes: ``(blue, red)`` players, each in ``[1, max_team_size]``; ``None`` draws both at
            every reset from the configuration's ``team_size_range`` / ``red_team_size_range``
            (``possible_agents`` then lists every slot, ``agents`` the present players).
        opponent: ``None`` (both teams are PettingZoo agents), ``"idle"`` (red stands still) or an
            object with ``act(state, cfg, team) -> Tensor (1, T, 5)`` and ``reset(env_mask)`` (the
            bots of :mod:`marladona.heuristic`), which then drives red (``team=1``); only the blue
            players are agents. A bot drawing random numbers is reproducible under ``reset(seed)``
            when it has a ``seed(int)`` method or a ``generator`` (``RandomBot(generator=...)``).
        max_cycles: steps before truncation (also truncated at the game's 30 s time-out, 375 steps).
        render_mode: ``None`` or ``"rgb_array"``.
        seed: seed of the game's generator; ``None`` draws one from the OS (use ``reset(seed=...)``
            for reproducible games).
        **config_overrides: fields of :class:`~marladona.config.SoccerConfig` (``max_team_size``
            defaults to ``max(team_sizes)``; ``num_envs`` is 1 and ``seed`` is the argument above).

    Attributes:
        soccer: the underlying :class:`~marladona.env.SoccerEnv` (one game); scenarios can edit its
            ``state`` in place between steps (e.g. put the ball in front of a goal).
        cfg: its :class:`~marladona.config.SoccerConfig`.
        max_cycles: read at every step (PettingZoo's ``parallel_api_test`` sets it).

    Raises:
        ValueError: a bad team size, opponent, ``max_cycles``, ``render_mode`` or override.

    Example:
        >>> env = SoccerParallelEnv(team_sizes=(1, 1), seed=0)
        >>> obs, infos = env.reset(seed=0)
        >>> env.agents, obs["blue_0"].shape
        (['blue_0', 'red_0'], (27,))
        >>> obs, rew, term, trunc, infos = env.step({"blue_0": env.action_space("blue_0").sample()})
        >>> sorted(infos["red_0"]["reward_terms"])[:2]
        ['ball_direction', 'ball_out']

    Note:
        The game does not restart by itself: after a goal (all terminated) or the time-out (all
        truncated) ``agents`` is empty until ``reset``. The last observation of a game the
        simulator ended is its pre-reset observation (``SoccerEnv``'s ``final_obs``), which carries
        no observation noise; every other observation is the noisy policy observation. ``state()``
        then returns that game's final state (rebuilt from the same observation), whereas ``render()``
        already shows the simulator's next game.

        One game is a few hundred tiny tensor operations per step: it runs 100-300 steps/s with
        ``torch.set_num_threads(1)`` and several times slower with more intra-op threads on a
        loaded machine (the environment does not change the process-wide setting).
    """

    metadata: dict[str, Any] = {  # noqa: RUF012 (PettingZoo reads it as a class attribute)
        "name": "marladona_soccer_v0",
        "render_modes": ["rgb_array"],
        "is_parallelizable": True,
        "render_fps": 12.5,
    }

    def __init__(
        self,
        team_sizes: tuple[int, int] | None = (3, 3),
        opponent: Any = None,
        max_cycles: int = 375,
        render_mode: str | None = None,
        seed: int | None = None,
        **config_overrides: Any,
    ) -> None:
        self.cfg = _build_config(team_sizes, seed, config_overrides)
        if isinstance(max_cycles, bool) or not isinstance(max_cycles, int) or max_cycles < 1:
            raise ValueError(f"max_cycles must be an integer >= 1, got {max_cycles!r}")
        if render_mode is not None and render_mode != "rgb_array":
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.max_cycles = max_cycles
        self.render_mode = render_mode
        self.opponent = _check_opponent(opponent)
        self.soccer = SoccerEnv(self.cfg, final_obs=True)
        t = self.cfg.max_team_size
        teams = (0,) if self.opponent is not None else (0, 1)
        self._slot: dict[str, int] = {}
        for team in teams:
            size = t if team_sizes is None else team_sizes[team]
            for i in range(size):
                self._slot[f"{TEAMS[team]}_{i}"] = team * t + i
        self.possible_agents: list[str] = list(self._slot)
        self.agents: list[str] = []
        low, high = observation_bounds(self.cfg)
        self._obs_low, self._obs_high = low, high
        self.observation_spaces = {a: gymnasium.spaces.Box(low, high, dtype=np.float32) for a in self.possible_agents}
        self.action_spaces = {
            a: gymnasium.spaces.Box(-1.0, 1.0, (ACTION_DIM,), dtype=np.float32) for a in self.possible_agents
        }
        s_low, s_high = state_bounds(self.cfg)
        self.state_space = gymnasium.spaces.Box(s_low, s_high, dtype=np.float32)
        self._cycles = 0
        self._final_state: np.ndarray | None = None

    # ------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        """The (cached) observation box of ``agent``; ``ValueError`` for a name not in ``possible_agents``."""
        if agent not in self.observation_spaces:
            raise ValueError(f"agent must be one of {self.possible_agents}, got {agent!r}")
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.spaces.Box:
        """The (cached) action box ``Box(-1, 1, (5,))`` of ``agent``."""
        if agent not in self.action_spaces:
            raise ValueError(f"agent must be one of {self.possible_agents}, got {agent!r}")
        return self.action_spaces[agent]

    # ------------------------------------------------------------------ control
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start a new game: fresh team sizes (when drawn), field level, positions and ball.

        Args:
            seed: reseeds the game's generator and the opponent's (its ``seed(int)`` method, else its
                ``generator`` attribute, with a seed derived from ``seed``); ``None`` continues the stream.
            options: ``{"field_level": k}`` plays on level ``k`` (default: drawn from
                ``init_level_range``); other keys are ignored.

        Returns:
            ``observations`` and ``infos`` (``team_sizes``, ``field_level``) keyed by agent.
        """
        if seed is not None:
            self._seed_opponent(int(seed))
        obs = self.soccer.reset(seed=seed)
        if options and "field_level" in options:
            obs = self.soccer.set_field_level(options["field_level"])
        if self.opponent is not None and callable(getattr(self.opponent, "reset", None)):
            self.opponent.reset(torch.ones(1, dtype=torch.bool, device=self.soccer.device))
        active = self.soccer.state.active[0].tolist()
        self.agents = [a for a in self.possible_agents if active[self._slot[a]]]
        self._cycles = 0
        self._final_state = None
        flat = self._flatten(obs)
        sizes = tuple(int(v) for v in self.soccer.state.team_size[0].tolist())
        info = {"team_sizes": sizes, "field_level": int(self.soccer.state.level[0])}
        return {a: flat[self._slot[a]].copy() for a in self.agents}, {a: dict(info) for a in self.agents}

    def step(
        self, actions: Mapping[str, Any] | None
    ) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]]:
        """Advance the game by one policy step (0.08 s) for every live agent at once.

        Args:
            actions: ``{agent: (5,) array in [-1, 1]}``; a live agent without an entry (or with
                ``None``) gets the zero action, entries of unknown or finished agents are ignored,
                values outside [-1, 1] are clipped.

        Returns:
            ``observations, rewards, terminations, truncations, infos`` keyed by the live agents.
            Terminations are all True after a goal, truncations all True at ``max_cycles`` or the
            time-out; ``agents`` is then empty. Each info holds ``goal`` (+1 blue scored, -1 red,
            0 none), ``ball_out`` and ``reward_terms`` (the agent's weighted reward terms).

        Raises:
            ValueError: an action of the wrong shape, or with NaN or inf (naming the agent).
            RuntimeError: no live agents (call ``reset``).
        """
        if not self.agents:
            raise RuntimeError("step() needs live agents: the game is over (or not started), call reset()")
        if actions is None:
            actions = {}
        if not isinstance(actions, Mapping):
            raise ValueError(f"actions must be a dict {{agent: (5,) array}}, got {type(actions).__name__}")
        t = self.cfg.max_team_size
        act = np.zeros((self.cfg.num_agents, ACTION_DIM), dtype=np.float32)
        for agent in self.agents:
            a = actions.get(agent)
            if a is None:
                continue
            arr = np.asarray(a, dtype=np.float32)
            if arr.shape != (ACTION_DIM,):
                raise ValueError(f"action of {agent!r} must have shape ({ACTION_DIM},), got {arr.shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"action of {agent!r} contains NaN or inf: {arr.tolist()}")
            act[self._slot[agent]] = arr
        action_t = torch.from_numpy(act)[None].to(self.soccer.device)
        if self.opponent is not None:
            action_t[0, t:] = self._opponent_actions()[0]
        obs, reward, terminated, truncated, info = self.soccer.step(action_t)
        self._cycles += 1
        term = bool(terminated[0])
        sim_ended = term or bool(truncated[0])
        trunc = not term and (sim_ended or self._cycles >= self.max_cycles)
        if sim_ended:  # the simulator has already reset the game: report the one that just ended
            obs = info["final_obs"]
            self._final_state = self._state_from_obs(obs)
        flat = self._flatten(obs)
        rew = reward[0].tolist()
        terms = {name: value[0].tolist() for name, value in info["terms"].items()}
        goal, out = int(info["goal"][0]), bool(info["ball_out"][0])
        live = self.agents
        observations = {a: flat[self._slot[a]].copy() for a in live}
        rewards = {a: float(rew[self._slot[a]]) for a in live}
        terminations = dict.fromkeys(live, term)
        truncations = dict.fromkeys(live, trunc)
        infos = {
            a: {
                "goal": goal,
                "ball_out": out,
                "reward_terms": {name: float(v[self._slot[a]]) for name, v in terms.items()},
            }
            for a in live
        }
        if term or trunc:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """``(3 A + 4,)`` float32 the global state (:func:`marladona.observations.global_state`).

        After the simulator ended a game (goal or time-out) it is the state at the end of that game.
        """
        if self._final_state is not None:
            final: np.ndarray = self._final_state.copy()
            return final
        s = self.soccer.global_state()[0].cpu().numpy().astype(np.float32)
        return _fit(s, self.state_space.low, self.state_space.high, "state")

    def render(self) -> np.ndarray | None:
        """An RGB frame ``(H, W, 3)`` uint8 of the game (``render_mode="rgb_array"``); None without a render mode."""
        if self.render_mode is None:
            warnings.warn("render() called with render_mode=None; pass render_mode='rgb_array'", stacklevel=2)
            return None
        from marladona.render import render_frame

        frame: np.ndarray = render_frame(self.soccer.state, self.cfg, env_index=0)
        return frame

    def close(self) -> None:
        """Nothing to release (no window, no subprocess)."""

    # ------------------------------------------------------------------ helpers
    def _opponent_actions(self) -> torch.Tensor:
        t = self.cfg.max_team_size
        if isinstance(self.opponent, str):  # "idle"
            return torch.zeros(1, t, ACTION_DIM, device=self.soccer.device)
        out = self.opponent.act(self.soccer.state, self.cfg, 1)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, t, ACTION_DIM):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"opponent.act must return a tensor of shape (1, {t}, {ACTION_DIM}), got {got}")
        if not bool(torch.isfinite(out).all()):
            raise ValueError("opponent.act returned NaN or inf actions")
        return out.to(device=self.soccer.device, dtype=torch.float32)

    def _seed_opponent(self, seed: int) -> None:
        """Seed the opponent's randomness from ``seed``: its ``seed(int)`` method, else its ``generator``."""
        sub = int(np.random.SeedSequence([seed, 1]).generate_state(1, np.uint64)[0] >> np.uint64(1))
        if callable(getattr(self.opponent, "seed", None)):
            self.opponent.seed(sub)
        elif isinstance(getattr(self.opponent, "generator", None), torch.Generator):
            self.opponent.generator.manual_seed(sub)

    def _flatten(self, obs: Obs) -> np.ndarray:
        """``(A, D)`` float32 per slot: ego, entities, mask bits (clipped into the box, see the module docstring)."""
        flat = flatten_obs(obs)[0]
        return _fit(flat.cpu().numpy().astype(np.float32), self._obs_low, self._obs_high, "observation")

    def _state_from_obs(self, obs: Obs) -> np.ndarray:
        """The global state rebuilt from the noise-free team-frame observation (layout of
        :func:`marladona.observations.global_state`), for the game the simulator has already reset."""
        ego = obs.critic_ego[0].cpu().double().numpy()  # [A, 18]
        active = obs.active[0].cpu().numpy()
        t = self.cfg.max_team_size
        sign = np.where(np.arange(2 * t) < t, 1.0, -1.0)
        yaw = np.arctan2(ego[:, 5], ego[:, 6]) - np.pi * (sign < 0)
        yaw = np.where(yaw < -np.pi, yaw + 2 * np.pi, yaw)
        agents = np.stack((ego[:, 3] * sign, ego[:, 4] * sign, np.clip(yaw / np.pi, -1.0, 1.0)), -1)
        agents *= active[:, None]
        ball = np.concatenate((ego[0, 9:11], ego[0, 7:9]))  # blue slot 0 is always present
        s = np.concatenate((agents.reshape(-1), ball)).astype(np.float32)
        return _fit(s, self.state_space.low, self.state_space.high, "state")


def parallel_env(
    team_sizes: tuple[int, int] | None = (3, 3),
    opponent: Any = None,
    max_cycles: int = 375,
    render_mode: str | None = None,
    seed: int | None = None,
    **config_overrides: Any,
) -> SoccerParallelEnv:
    """One soccer game as a PettingZoo ``ParallelEnv`` (the arguments of :class:`SoccerParallelEnv`).

    Example:
        >>> env = parallel_env(team_sizes=(2, 2), opponent="idle", max_cycles=10, seed=0)
        >>> obs, infos = env.reset(seed=1)
        >>> env.agents, env.observation_space("blue_0").shape  # 18 + 9 * 3
        (['blue_0', 'blue_1'], (45,))
    """
    return SoccerParallelEnv(team_sizes, opponent, max_cycles, render_mode, seed, **config_overrides)


# ---------------------------------------------------------------------------------------------- checks


def _build_config(team_sizes: tuple[int, int] | None, seed: int | None, overrides: dict[str, Any]) -> SoccerConfig:
    known = {f.name for f in fields(SoccerConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown SoccerConfig field(s) {unknown}; valid fields: {sorted(known)}")
    for name, why in (("num_envs", "a PettingZoo env is one game"), ("seed", "pass seed=... instead")):
        if name in overrides:
            raise ValueError(f"{name} cannot be overridden ({why}), got {name}={overrides[name]!r}")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy) % 2**63  # type: ignore[arg-type]
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    changes: dict[str, Any] = {**overrides, "num_envs": 1, "seed": int(seed)}
    if team_sizes is not None:
        ok = (
            isinstance(team_sizes, (tuple, list))
            and len(team_sizes) == 2
            and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in team_sizes)
        )
        if not ok:
            raise ValueError(f"team_sizes must be (blue, red) integers >= 1 or None, got {team_sizes!r}")
        for name in ("team_size_range", "red_team_size_range"):
            if name in overrides:
                raise ValueError(f"{name} is set by team_sizes; pass team_sizes=None to draw sizes from it")
        blue, red = int(team_sizes[0]), int(team_sizes[1])
        t = overrides.get("max_team_size", max(blue, red))
        if isinstance(t, int) and t < max(blue, red):
            raise ValueError(f"max_team_size must be >= max(team_sizes) = {max(blue, red)}, got {t}")
        changes.update(max_team_size=t, team_size_range=(blue, blue), red_team_size_range=(red, red))
    return SoccerConfig(**changes)


def _check_opponent(opponent: Any) -> Any:
    if opponent is None:
        return None
    if isinstance(opponent, str):
        if opponent != "idle":
            raise ValueError(f"opponent must be None, 'idle' or an object with act(state, cfg, team), got {opponent!r}")
        return opponent
    if not callable(getattr(opponent, "act", None)):
        raise ValueError(
            f"opponent must be None, 'idle' or an object with act(state, cfg, team), got {type(opponent).__name__}"
        )
    return opponent


def _fit(x: np.ndarray, low: np.ndarray, high: np.ndarray, what: str) -> np.ndarray:
    """``x`` clipped into ``[low, high]``, with a warning when anything had to move (never seen in practice)."""
    if bool(((x < low) | (x > high)).any()):
        excess = float(np.max(np.maximum(x - high, low - x)))
        logger.warning("%s outside its bounds by up to %.3g; clipped into the box", what, excess)
        x = np.clip(x, low, high)
    return x
