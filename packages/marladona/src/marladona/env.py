"""``SoccerEnv``: thousands of soccer games stepped at once in torch tensors (CPU or CUDA).

The environment of the authors' released code (``leggedrobotics/marladona-isaac-lab``) re-implemented
as a batched 2-D simulator: the same constants, observations, actions, reward terms, resets and field
curriculum (see :mod:`marladona.sim`, :mod:`marladona.observations`, :mod:`marladona.rewards`). One
episode ends at the first goal (terminated) or after 30 s (truncated, to be bootstrapped).
Team sizes really change the present players (the code only rewrote the size fields of the
observation, defect D10): sizes, masks and positions are drawn together at every reset.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from marladona.config import SoccerConfig
from marladona.observations import Obs, compute_obs, global_state
from marladona.rewards import reward_terms, weighted_terms
from marladona.sim import SoccerState, action_to_commands, empty_state, substep

# Spawn boxes per slot, (x_lo, x_hi, y_lo, y_hi) in units of (L/2, W/2), in each team's own frame
# (+x = the own half; red's are point-mirrored into the world): ``InitPosManager`` of the code, which
# keeps red's players 1 and 2 at x >= 0.1 where blue's may start at -0.1, in the opponent half.
_BLUE_BOXES = (
    (0.1, 0.95, -0.5, 0.5),
    (-0.1, 0.5, -0.95, 0.0),
    (-0.1, 0.5, 0.0, 0.95),
    (0.0, 0.3, -0.95, -0.1),
    (0.0, 0.3, 0.1, 0.95),
    (0.0, 0.9, -0.95, 0.0),
    (0.0, 0.9, 0.0, 0.95),
    (0.0, 0.9, -0.95, 0.0),
    (0.0, 0.9, 0.0, 0.95),
    (0.0, 0.9, -0.95, 0.0),
    (0.0, 0.9, 0.0, 0.95),
)
_RED_BOXES = (
    (0.1, 0.95, -0.5, 0.5),
    (0.1, 0.5, -0.95, 0.0),
    (0.1, 0.5, 0.0, 0.95),
    (0.0, 0.3, -0.95, -0.1),
    (0.0, 0.3, 0.1, 0.95),
    (0.0, 0.9, -0.65, 0.0),
    (0.0, 0.9, 0.0, 0.65),
    (0.0, 0.9, -0.55, 0.0),
    (0.0, 0.9, 0.0, 0.55),
    (0.0, 0.9, -0.55, 0.0),
    (0.0, 0.9, 0.0, 0.55),
)
_EXTRA_BOX = (0.0, 0.9, -0.95, 0.95)
"""Box of slots beyond the code's eleven."""
_PARK_Y = -2.7
"""Absent players wait outside the walls at y = -2.7 (the code's inactive pose)."""


class SoccerEnv:
    """A batch of ``cfg.num_envs`` games of ``cfg.max_team_size`` a side at most.

    Example:
        >>> env = SoccerEnv(SoccerConfig(num_envs=4, max_team_size=2, team_size_range=(2, 2)))
        >>> obs = env.reset(seed=0)
        >>> obs.ego.shape, obs.entities.shape
        (torch.Size([4, 4, 18]), torch.Size([4, 4, 3, 8]))
        >>> obs, rew, term, trunc, info = env.step(torch.zeros(4, 4, 5))
        >>> rew.shape, term.dtype
        (torch.Size([4, 4]), torch.bool)
    """

    def __init__(
        self,
        cfg: SoccerConfig | None = None,
        *,
        final_obs: bool = True,
        check_actions: bool = True,
        compile: bool = False,
        final_state: bool = False,
    ) -> None:
        """Args:
        cfg: the configuration (default ``SoccerConfig()``).
        final_obs: compute ``info["final_obs"]``, the observation of games that ended this step
            before their reset (for the time-out bootstrap); costs a second observation pass.
        check_actions: refuse NaN or infinite actions (a host sync per step on CUDA).
        compile: run the physics substeps and reward terms through ``torch.compile`` (fused
            kernels: ~1.3x on CPU; the first step compiles for seconds, and needs a C++ compiler on
            CPU). Same results up to float rounding.
        final_state: also return ``info["final_state"]``, a copy of every game's state at the end of
            the step, before finished games are reset (the frame with the ball in the goal, for
            replays); a full state copy per step, so off by default.
        """
        self.cfg = cfg or SoccerConfig()
        # dynamic=None: a second batch size recompiles with symbolic sizes instead of once per size
        self._physics = torch.compile(physics_step) if compile else physics_step
        try:
            # an explicit index (cuda -> cuda:0), so that the device check of step() compares equal
            self.device = torch.empty(0, device=self.cfg.device).device
        except (RuntimeError, ValueError, AssertionError) as err:  # a CPU-only torch asserts on "cuda"
            raise ValueError(f"device must be a usable torch device, got {self.cfg.device!r}: {err}") from None
        self.final_obs = final_obs
        self.final_state = final_state
        self.check_actions = check_actions
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.cfg.seed)
        e, t = self.cfg.num_envs, self.cfg.max_team_size
        self.state: SoccerState = empty_state(e, t, self.device)
        self.fixed_sizes = torch.full((e, 2), -1, dtype=torch.long, device=self.device)
        self.curriculum = self.cfg.field_curriculum
        self._levels = torch.tensor(self.cfg.field_levels, dtype=torch.float32, device=self.device)
        a = 2 * t
        boxes = [(_BLUE_BOXES if i < t else _RED_BOXES) for i in range(a)]
        self._boxes = torch.tensor(
            [b[i % t] if i % t < len(b) else _EXTRA_BOX for i, b in enumerate(boxes)], device=self.device
        )  # [A, 4]
        slot = torch.arange(a, device=self.device)
        self._team_of_slot = slot // t  # [A]
        self._slot_in_team = slot % t  # [A]
        self._park = torch.stack(
            ((slot.to(torch.float32) - a / 2) * 0.3, torch.full((a,), _PARK_Y, device=self.device)), -1
        )  # [A, 2]
        self._obs: Obs | None = None
        self.episode_return = torch.zeros(e, 2 * t, device=self.device)

    # ------------------------------------------------------------------ properties
    @property
    def num_envs(self) -> int:
        return self.cfg.num_envs

    @property
    def num_agents(self) -> int:
        """Agent slots per game (2 max_team_size)."""
        return self.cfg.num_agents

    @property
    def obs(self) -> Obs:
        """The latest observation (after ``reset`` or ``step``)."""
        if self._obs is None:
            raise RuntimeError("call reset() before reading the observation")
        return self._obs

    def global_state(self) -> torch.Tensor:
        """``(E, 3A + 4)`` the world state (see :func:`marladona.observations.global_state`)."""
        return global_state(self.state, self.cfg)

    # ------------------------------------------------------------------ control
    def reset(self, seed: int | None = None) -> Obs:
        """Reset every game (reseeding the generator when ``seed`` is given); return the observation."""
        if seed is not None:
            self.generator.manual_seed(int(seed))
        e = self.num_envs
        lo, hi = self.cfg.init_level_range
        self.state.level.copy_(torch.randint(lo, hi + 1, (e,), generator=self.generator, device=self.device))
        self._reset_where(torch.ones(e, dtype=torch.bool, device=self.device))
        self.episode_return.zero_()
        self._obs = compute_obs(self.state, self.cfg, self.generator)
        return self._obs

    def set_team_sizes(
        self, blue: int | torch.Tensor | None, red: int | torch.Tensor | None, env_ids: torch.Tensor | None = None
    ) -> Obs:
        """Fix the team sizes of games ``env_ids`` (all by default) and reset those games.

        ``None`` for both returns the games to drawing sizes from the configured ranges.
        Raises ``ValueError`` for a size outside ``[1, max_team_size]``.
        """
        ids = self._ids(env_ids)
        t = self.cfg.max_team_size
        for name, value in (("blue", blue), ("red", red)):
            if value is None:
                continue
            v = torch.as_tensor(value)
            if v.dtype.is_floating_point or v.dtype == torch.bool or bool(((v < 1) | (v > t)).any()):
                raise ValueError(f"{name} team size must be integers in [1, {t}] (max_team_size), got {value!r}")
            if v.numel() not in (1, ids.numel()):
                raise ValueError(f"{name} must be one size or one per game of env_ids ({ids.numel()}), got {v.numel()}")
        if (blue is None) != (red is None):
            raise ValueError("give both blue and red team sizes, or None for both")
        if blue is None:
            self.fixed_sizes[ids] = -1
        else:
            self.fixed_sizes[ids, 0] = torch.as_tensor(blue, device=self.device).long()
            self.fixed_sizes[ids, 1] = torch.as_tensor(red, device=self.device).long()
        return self._reset_ids(ids)

    def set_field_level(self, levels: int | torch.Tensor, env_ids: torch.Tensor | None = None) -> Obs:
        """Set the field level of games ``env_ids`` (all by default) and reset those games."""
        ids = self._ids(env_ids)
        n = len(self.cfg.field_levels)
        lv = torch.as_tensor(levels)
        if lv.dtype.is_floating_point or lv.dtype == torch.bool or bool(((lv < 0) | (lv >= n)).any()):
            raise ValueError(f"levels must be integers in [0, {n - 1}] (len(field_levels) - 1), got {levels!r}")
        if lv.numel() not in (1, ids.numel()):
            raise ValueError(f"levels must be one level or one per game of env_ids ({ids.numel()}), got {lv.numel()}")
        self.state.level[ids] = lv.to(self.device).long()
        return self._reset_ids(ids)

    def reset_games(self, env_ids: torch.Tensor) -> Obs:
        """Reset games ``env_ids`` (integer indices or a boolean mask of shape ``(num_envs,)``) to a fresh start
        on their field level, with episode clock 0 and episode return 0; the other games are left as they are
        (rsl_rl's ``reset_idx``). Returns the observation of every game."""
        return self._reset_ids(self._ids(env_ids))

    def stagger_episode_clocks(self, generator: torch.Generator | None = None) -> None:
        """Set every game's step counter to a uniform draw in ``[0, max_episode_steps)`` so that time-outs
        spread over the run instead of all falling on one step (rsl_rl's ``init_at_random_ep_len``)."""
        g = self.generator if generator is None else generator
        steps = torch.randint(0, self.cfg.max_episode_steps, (self.num_envs,), generator=g, device=g.device)
        self.state.step.copy_(steps)

    def set_state(self, state: SoccerState) -> Obs:
        """Copy ``state`` (a full batch, e.g. from :meth:`SoccerState.clone`) into the games; return the observation.

        Episode returns are kept; the step counters, levels and team sizes are those of ``state``.
        Raises ``ValueError`` when a field's shape differs from the environment's.
        """
        for name, value in state.tensors().items():
            mine = getattr(self.state, name)
            if tuple(value.shape) != tuple(mine.shape):
                raise ValueError(f"state.{name} must have shape {tuple(mine.shape)}, got {tuple(value.shape)}")
            mine.copy_(value)
        self._obs = compute_obs(self.state, self.cfg, self.generator)
        return self._obs

    def _ids(self, env_ids: torch.Tensor | None) -> torch.Tensor:
        if env_ids is None:
            return torch.arange(self.num_envs, device=self.device)
        ids = torch.as_tensor(env_ids, device=self.device)
        if ids.dtype == torch.bool:
            if tuple(ids.shape) != (self.num_envs,):
                raise ValueError(f"a boolean env_ids mask must have shape ({self.num_envs},), got {tuple(ids.shape)}")
            return ids.nonzero().reshape(-1)
        if ids.dtype.is_floating_point:
            raise ValueError(f"env_ids must be integer indices or a boolean mask, got dtype {ids.dtype}")
        ids = ids.long().reshape(-1)
        if bool(((ids < 0) | (ids >= self.num_envs)).any()):
            raise ValueError(f"env_ids must be in [0, {self.num_envs - 1}], got {env_ids!r}")
        return ids

    def _reset_ids(self, ids: torch.Tensor) -> Obs:
        mask = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        mask[ids] = True
        self._reset_where(mask)
        self.episode_return[mask] = 0
        self._obs = compute_obs(self.state, self.cfg, self.generator)
        return self._obs

    # ------------------------------------------------------------------ step
    def step(self, actions: torch.Tensor) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Advance every game by one policy step (``decimation`` physics substeps).

        Args:
            actions: ``(E, A, 5)`` floats in [-1, 1] (values outside are clipped, as the code's
                action manager does); rows of absent players are ignored.

        Returns:
            ``obs`` (after the automatic reset of finished games), ``reward (E, A)``, ``terminated (E,)``
            (a goal), ``truncated (E,)`` (time-out without a goal), and ``info`` with ``goal (E,)`` (+1
            blue scored, -1 red, 0 none), ``terms`` (each weighted reward term ``(E, A)``),
            ``ball_out (E,)``, ``episode_length (E,)``, ``team_size (E, 2)`` and ``level (E,)`` of the
            finished episodes, ``final_obs`` (the observation before the reset) and ``final_state``
            (the state before the reset), each when enabled.
        """
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        actions = self._validate(actions)
        cfg, st = self.cfg, self.state
        blue_goal, red_goal, out, terms = self._physics(st, actions, cfg)
        st.step += 1
        reward = torch.stack(list(terms.values())).sum(0)
        self.episode_return += reward
        terminated = blue_goal | red_goal
        truncated = (st.step >= cfg.max_episode_steps) & ~terminated
        done = terminated | truncated
        info: dict[str, Any] = {
            "goal": blue_goal.long() - red_goal.long(),
            "terms": terms,
            "ball_out": out,
            "episode_length": st.step.clone(),
            "team_size": st.team_size.clone(),
            "level": st.level.clone(),
            "episode_return": self.episode_return.clone(),
        }
        if self.final_obs:
            info["final_obs"] = compute_obs(st, cfg, self.generator, noise=False)
        if self.final_state:
            info["final_state"] = st.clone()
        if self.curriculum:
            n = len(cfg.field_levels)
            up = st.level + blue_goal.long() - red_goal.long()
            rand = torch.randint(0, n, (self.num_envs,), generator=self.generator, device=self.device)
            up = torch.where(up >= n, rand, up.clamp_min(0))
            st.level.copy_(torch.where(done, up, st.level))
        self._reset_where(done)
        self.episode_return.mul_((~done).to(self.episode_return.dtype)[:, None])
        self._obs = compute_obs(st, cfg, self.generator)
        return self._obs, reward, terminated, truncated, info

    def _validate(self, actions: torch.Tensor) -> torch.Tensor:
        want = (self.num_envs, self.num_agents, 5)
        if not isinstance(actions, torch.Tensor):
            raise ValueError(f"actions must be a torch.Tensor of shape {want}, got {type(actions).__name__}")
        if tuple(actions.shape) != want:
            raise ValueError(f"actions must have shape (E, 2*Tmax, 5) = {want}, got {tuple(actions.shape)}")
        if not actions.dtype.is_floating_point:
            raise ValueError(f"actions must be floating point, got {actions.dtype}")
        if actions.device != self.device:
            raise ValueError(f"actions must be on {self.device}, got {actions.device}")
        if self.check_actions and not bool(torch.isfinite(actions).all()):
            raise ValueError("actions contain NaN or inf (they are not clamped silently)")
        return actions.to(torch.float32)

    # ------------------------------------------------------------------ resets
    def _reset_where(self, mask: torch.Tensor) -> None:
        """Draw a fresh start for the games where ``mask`` (no Python loop, no host sync)."""
        cfg, st, g, dev = self.cfg, self.state, self.generator, self.device
        e, a = self.num_envs, 2 * cfg.max_team_size
        m1 = mask[:, None]

        def rand(*shape: int) -> torch.Tensor:
            return torch.rand(shape, generator=g, device=dev)

        # team sizes: fixed where set, else drawn per team
        sizes = []
        for team, (lo, hi) in enumerate((cfg.team_size_range, cfg.red_range)):
            drawn = torch.randint(lo, hi + 1, (e,), generator=g, device=dev)
            fixed = self.fixed_sizes[:, team]
            sizes.append(torch.where(fixed > 0, fixed, drawn))
        size = torch.stack(sizes, 1)
        st.team_size.copy_(torch.where(m1, size, st.team_size))
        active = self._slot_in_team[None, :] < st.team_size[:, self._team_of_slot]  # [E, A]
        st.active.copy_(torch.where(m1, active, st.active))
        # field
        lv = self._levels[st.level]
        st.length.copy_(torch.where(mask, lv[:, 0], st.length))
        st.goal_width.copy_(torch.where(mask, lv[:, 1], st.goal_width))
        lo_r, hi_r = cfg.ball.decay_rates
        rr = lo_r + (hi_r - lo_r) * rand(e) if cfg.randomize else torch.full((e,), (lo_r + hi_r) / 2, device=dev)
        st.roll_rate.copy_(torch.where(mask, rr, st.roll_rate))
        # agents: per-slot boxes in the own half, red point-mirrored; absent ones parked
        box = self._boxes  # [A, 4]
        hl = (st.length / 2)[:, None]
        hw = cfg.field_width / 2
        ux, uy = rand(e, a), rand(e, a)
        x = (box[:, 0] + (box[:, 1] - box[:, 0]) * ux) * hl
        y = (box[:, 2] + (box[:, 3] - box[:, 2]) * uy) * hw
        sgn = 1.0 - 2.0 * self._team_of_slot.to(x.dtype)
        pos = torch.stack((x * sgn, y * sgn), -1)
        pos = torch.where(st.active[..., None], pos, self._park.expand(e, a, 2))
        yaw = (rand(e, a) * 2 - 1) * math.pi
        m2 = m1[..., None]
        st.pos.copy_(torch.where(m2, pos, st.pos))
        st.prev_pos.copy_(torch.where(m2, pos, st.prev_pos))
        st.yaw.copy_(torch.where(m1, yaw, st.yaw))
        st.prev_yaw.copy_(torch.where(m1, yaw, st.prev_yaw))
        st.vel.copy_(torch.where(m2, 0.0, st.vel))
        st.omega.copy_(torch.where(m1, 0.0, st.omega))
        # ball
        bx = (0.25 + 0.5 * rand(e)) * hl[:, 0]
        by = (rand(e) * 1.5 - 0.75) * hw
        if cfg.ball_spawn == "center":
            bx, by = torch.zeros_like(bx), torch.zeros_like(by)
        elif cfg.ball_spawn == "random_half":
            flip = torch.where(rand(e) < 0.5, -1.0, 1.0)
            bx, by = bx * flip, by * flip
        st.ball_pos.copy_(torch.where(m1, torch.stack((bx, by), -1), st.ball_pos))
        st.ball_vel.copy_(torch.where(m1, 0.0, st.ball_vel))
        st.step.copy_(torch.where(mask, 0, st.step))


def physics_step(
    st: SoccerState, actions: torch.Tensor, cfg: SoccerConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """One policy step of physics and rules in place: ``decimation`` substeps, then the weighted reward terms.

    Returns ``blue_goal, red_goal, out`` (``(E,)`` bool: the first event of the step counts; an out after
    a goal is ignored) and the weighted terms ``{name: (E, A)}``.
    """
    actions = actions.clamp(-1.0, 1.0) * st.active[..., None].to(actions.dtype)
    v_cmd, omega_cmd, kick = action_to_commands(actions, cfg)
    st.prev_pos.copy_(st.pos)
    st.prev_yaw.copy_(st.yaw)
    blue_goal = torch.zeros(st.pos.shape[0], dtype=torch.bool, device=st.pos.device)
    red_goal = torch.zeros_like(blue_goal)
    out = torch.zeros_like(blue_goal)
    for _ in range(cfg.decimation):
        bg, rg, o = substep(st, v_cmd, omega_cmd, kick, cfg)
        done_before = blue_goal | red_goal
        out = out | (o & ~done_before & ~bg & ~rg)
        blue_goal = blue_goal | (bg & ~done_before)
        red_goal = red_goal | (rg & ~done_before)
    terms = weighted_terms(reward_terms(st, cfg, blue_goal, red_goal, out), cfg)
    return blue_goal, red_goal, out, terms
