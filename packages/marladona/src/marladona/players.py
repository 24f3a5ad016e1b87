"""Who controls a team: learned policies, scripted bots, and the names the CLI accepts for them.

Every player follows :class:`marladona.heuristic.Opponent`: ``act(state, cfg, team) -> (E, T, 5)``
actions in [-1, 1] for the slots of ``team`` (0 blue = slots ``0..T-1``, 1 red = slots ``T..2T-1``)
and ``reset(env_mask)``. A
:class:`PolicyPlayer` also takes the observation the environment already computed, so a learned
opponent costs no second observation pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from marladona.config import SoccerConfig
from marladona.models import GEEActorCritic
from marladona.observations import Obs, compute_obs
from marladona.sim import SoccerState


def team_rows(obs: Obs, team: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rows of ``team``'s slots, flattened game-major: ``ego, critic_ego (E*T, 18)``,
    ``entities (E*T, K, 8)``, ``entity_mask (E*T, K)``, ``active (E*T,)``."""
    e, a = obs.active.shape
    t = a // 2
    sl = slice(team * t, (team + 1) * t)
    k = obs.entities.shape[2]
    return (
        obs.ego[:, sl].reshape(e * t, -1),
        obs.critic_ego[:, sl].reshape(e * t, -1),
        obs.entities[:, sl].reshape(e * t, k, -1),
        obs.entity_mask[:, sl].reshape(e * t, k),
        obs.active[:, sl].reshape(e * t),
    )


class PolicyPlayer:
    """A GEE actor-critic playing one team: the Beta mean (``deterministic=True``, the code's
    inference rule 2 alpha / (alpha + beta) - 1) or Beta samples."""

    def __init__(
        self, model: GEEActorCritic, deterministic: bool = True, generator: torch.Generator | None = None
    ) -> None:
        self.model = model
        self.deterministic = deterministic
        self.generator = generator
        self._resized: dict[int, GEEActorCritic] = {}

    def model_for(self, max_team_size: int) -> GEEActorCritic:
        """The policy with entity slots for games of ``max_team_size`` a side (same weights: the
        encoders pool over any number of entities)."""
        m = self.model
        if m.max_opponents == max_team_size:
            return m
        if max_team_size not in self._resized:
            cfg: dict[str, Any] = {**m.config, "max_teammates": max_team_size - 1, "max_opponents": max_team_size}
            resized = GEEActorCritic(**cfg)
            # share the submodules (hence the parameters): a model still in training stays in sync
            for name in ("teammate_encoder", "opponent_encoder", "actor", "critic"):
                setattr(resized, name, getattr(m, name))
            self._resized[max_team_size] = resized.eval()
        return self._resized[max_team_size]

    def reset(self, env_mask: torch.Tensor) -> None:
        """Stateless: nothing to clear."""

    @torch.no_grad()
    def act(self, state: SoccerState, cfg: SoccerConfig, team: int, obs: Obs | None = None) -> torch.Tensor:
        """Actions ``(E, T, 5)`` for ``team``; ``obs`` is computed (without noise) when not given."""
        if obs is None:
            obs = compute_obs(state, cfg, noise=False)
        ego, _, ent, mask, _ = team_rows(obs, team)
        e, t = state.pos.shape[0], state.pos.shape[1] // 2
        model = self.model_for(t)
        if self.deterministic:
            actions = model.act_deterministic(ego, ent, mask)
        else:
            actions = model.act(ego, ent, mask, generator=self.generator).actions
        return actions.reshape(e, t, -1)


def act_team(player: Any, state: SoccerState, cfg: SoccerConfig, team: int, obs: Obs | None) -> torch.Tensor:
    """``player.act`` for ``team``, passing ``obs`` to policies that take it."""
    if isinstance(player, PolicyPlayer):
        return player.act(state, cfg, team, obs=obs)
    out: torch.Tensor = player.act(state, cfg, team)
    return out


def make_player(
    spec: str | Any,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    what: str = "opponent",
) -> Any:
    """A player from a name: ``"idle"``, ``"random"``, ``"heuristic"`` / ``"heuristic:0.5"`` (RoleBot at
    that strength), ``"marladona"`` (the authors' bots), or the path of a checkpoint (its policy,
    deterministic). Objects with ``act`` and ``reset`` are returned as they are.

    Raises:
        ValueError: an unknown name or a path that does not exist.
    """
    if not isinstance(spec, str):
        if hasattr(spec, "act") and hasattr(spec, "reset"):
            return spec
        raise ValueError(f"{what} must be a name or an object with act() and reset(), got {type(spec).__name__}")
    from marladona import heuristic

    name, _, arg = spec.partition(":")
    if name == "idle":
        return heuristic.IdleBot()
    if name == "random":
        return heuristic.RandomBot(generator=generator)
    if name in ("heuristic", "rolebot"):
        try:
            strength = float(arg) if arg else 1.0
        except ValueError:
            raise ValueError(f"{what}: the strength in {spec!r} must be a number in [0, 1]") from None
        return heuristic.RoleBot(strength=strength, generator=generator)
    if name == "marladona":
        return heuristic.MarladonaBot()
    path = Path(spec)
    if path.exists():
        from marladona.checkpoint import load_policy

        return PolicyPlayer(load_policy(path, device=device), deterministic=True)
    if spec.endswith(".pt") or "/" in spec or "\\" in spec:
        raise ValueError(f"{what}: checkpoint {spec!r} does not exist")
    raise ValueError(
        f"{what} must be 'idle', 'random', 'heuristic[:strength]', 'marladona' or an existing checkpoint path, got {spec!r}"
    )
