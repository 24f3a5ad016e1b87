"""``LearnerVecEnv``: the rsl_rl 5.x ``VecEnv`` view of the game, one row per blue slot.

A learner written for rsl_rl (``get_observations() -> TensorDict``, ``step(actions) -> (obs, rewards,
dones, extras)`` with ``extras["time_outs"]`` and ``extras["log"]``) sees ``num_envs = E * T`` rows;
red is driven by a fixed opponent (a bot name, a checkpoint, or any player object). Rows of absent
blue players (games with fewer than ``T`` blue players) are still rows — rsl_rl has no mask — so this
view is meant for fixed team sizes; ``extras["active"]`` marks the present rows. Observations come
as a ``tensordict.TensorDict`` when tensordict is installed (rsl_rl's own dependency), else a dict;
group ``policy`` is the flat actor input ``[ego, entities, mask]`` and group ``critic`` the same with
the noise-free ego.
"""

from __future__ import annotations

from typing import Any

import torch

from marladona.config import SoccerConfig
from marladona.env import SoccerEnv
from marladona.observations import Obs, flatten_obs
from marladona.players import act_team, make_player


def flat_obs(obs: Obs, team: int = 0, critic: bool = False) -> torch.Tensor:
    """``(E*T, 18 + 9K)`` rows ``[ego, entities (K*8), mask (K)]`` of ``team`` (the PettingZoo layout)."""
    flat = flatten_obs(obs, critic)
    e, a, d = flat.shape
    t = a // 2
    return flat[:, team * t : (team + 1) * t].reshape(e * t, d)


def split_flat_obs(x: torch.Tensor, num_entities: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse of :func:`flat_obs`: ``ego (N, 18)``, ``entities (N, K, 8)``, ``mask (N, K)`` bool."""
    k = num_entities
    if x.dim() != 2 or x.shape[1] != 18 + 9 * k:
        raise ValueError(f"x must have shape (N, {18 + 9 * k}) for K={k} entities, got {tuple(x.shape)}")
    return x[:, :18], x[:, 18 : 18 + 8 * k].reshape(-1, k, 8), x[:, 18 + 8 * k :] > 0.5


class LearnerVecEnv:
    """rsl_rl-style vectorised view over the blue slots of a :class:`SoccerEnv`.

    Example:
        >>> from marladona.config import SoccerConfig
        >>> venv = LearnerVecEnv(SoccerConfig(num_envs=4, max_team_size=2, team_size_range=(2, 2)), opponent="idle")
        >>> venv.num_envs, venv.num_actions
        (8, 5)
        >>> obs, rew, dones, extras = venv.step(torch.zeros(8, 5))
        >>> rew.shape, sorted(extras)[:3]
        (torch.Size([8]), ['active', 'episode', 'log'])
    """

    def __init__(self, cfg: SoccerConfig, opponent: Any = "idle") -> None:
        self.env = SoccerEnv(cfg, final_obs=False)
        self.cfg = cfg
        self.device = self.env.device
        self.opponent = make_player(opponent, self.device, self.env.generator)
        self.max_team_size = cfg.max_team_size
        self.num_envs = cfg.num_envs * cfg.max_team_size
        self.num_actions = 5
        self.max_episode_length = cfg.max_episode_steps
        self.cfg_dict = {"num_envs": self.num_envs}
        self._obs = self.env.reset()
        self.opponent.reset(torch.ones(cfg.num_envs, dtype=torch.bool, device=self.device))

    @property
    def episode_length_buf(self) -> torch.Tensor:
        """``(E*T,)`` policy steps since each row's game was reset (rsl_rl's attribute)."""
        return self.env.state.step.repeat_interleave(self.max_team_size)

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        # rsl_rl's init_at_random_ep_len assigns a (num_envs,) tensor: one value per game (its first row)
        v = torch.as_tensor(value, device=self.device).reshape(self.cfg.num_envs, self.max_team_size)[:, 0]
        self.env.state.step.copy_(v.long())

    def _pack(self, obs: Obs) -> Any:
        groups = {"policy": flat_obs(obs, 0), "critic": flat_obs(obs, 0, critic=True)}
        try:
            from tensordict import TensorDict  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            return groups
        return TensorDict(groups, batch_size=[self.num_envs], device=self.device)

    def get_observations(self) -> Any:
        """The current observation groups ``policy`` and ``critic`` (``(E*T, 18 + 9K)`` each)."""
        return self._pack(self._obs)

    def reset(self) -> tuple[Any, dict[str, Any]]:
        """Reset every game."""
        self._obs = self.env.reset()
        self.opponent.reset(torch.ones(self.cfg.num_envs, dtype=torch.bool, device=self.device))
        return self._pack(self._obs), {}

    @torch.no_grad()
    def step(self, actions: torch.Tensor) -> tuple[Any, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step with blue actions ``(E*T, 5)``; returns obs, rewards ``(E*T,)``, dones ``(E*T,)`` and
        extras: ``time_outs``, ``active`` (the present rows of the returned observation, after any
        reset), ``log`` (mean of each reward term over the rows present during this step) and
        ``episode`` (goal outcome of finished games)."""
        e, t = self.cfg.num_envs, self.max_team_size
        if not isinstance(actions, torch.Tensor) or tuple(actions.shape) != (e * t, 5):
            shape = tuple(actions.shape) if isinstance(actions, torch.Tensor) else type(actions).__name__
            raise ValueError(f"actions must be a tensor of shape (num_envs={e * t}, 5), got {shape}")
        red = act_team(self.opponent, self.env.state, self.cfg, 1, self._obs)
        full = torch.cat((actions.to(self.device, torch.float32).reshape(e, t, 5), red), dim=1)
        # the players of this step (a reset may redraw them), as a 0/1 weight: no boolean gather (a GPU sync)
        present = self.env.state.active[:, :t].to(self.env.state.pos.dtype)
        self._obs, reward, term, trunc, info = self.env.step(full)
        done = term | trunc
        self.opponent.reset(done)
        active = self._obs.active[:, :t].reshape(e * t)
        n = present.sum().clamp_min(1)
        extras = {
            "time_outs": trunc[:, None].expand(e, t).reshape(e * t),
            "active": active,
            "log": {f"Episode_Reward/{k}": (v[:, :t] * present).sum() / n for k, v in info["terms"].items()},
            "episode": {"goal": info["goal"][done]},
        }
        rows = reward[:, :t].reshape(e * t)
        return self._pack(self._obs), rows, done[:, None].expand(e, t).reshape(e * t), extras
