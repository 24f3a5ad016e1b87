"""Opponents during training: a staged curriculum of scripted bots, then self-play against a pool of
frozen past copies of the policy (the code's ``PolicyReplayManager`` and its promotion rule).

Promotion (the code's runner, spec 1.11): when the mean (blue - red) score over the last ``window``
finished training episodes exceeds ``promote_score_diff`` (0.75) and at least ``min_iters`` (100)
iterations passed since the last promotion, the opponent moves on — to the next scripted stage, or,
in the self-play stage, a frozen copy of the current policy joins the pool (the oldest leaves when
the pool holds ``max_levels``). A fixed idle/bot mix was measured not to learn (spec 6.2): the
stages matter.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from typing import Any

import torch

from marladona.config import SoccerConfig
from marladona.models import GEEActorCritic
from marladona.observations import Obs
from marladona.players import PolicyPlayer, act_team, make_player
from marladona.sim import SoccerState


@dataclass(frozen=True)
class CurriculumConfig:
    """The opponent schedule and its promotion rule."""

    stages: tuple[str, ...] = ("selfplay",)
    """Opponent per stage: player names (see :func:`marladona.players.make_player`) or "selfplay"."""
    promote_score_diff: float = 0.75
    """Promote when the mean score difference over the window exceeds this (the code: 0.75)."""
    window: int = 250
    """Finished training episodes in the moving window (the code: 250)."""
    min_iters: int = 100
    """Iterations between promotions at least (the code: 100)."""
    max_levels: int = 2
    """Frozen policies kept in the self-play pool (``max_num_policy_replay_level``)."""

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("stages must name at least one opponent")
        if "selfplay" in self.stages[:-1]:
            raise ValueError(f"'selfplay' can only be the last stage, got {self.stages}")
        if not -1 <= self.promote_score_diff <= 1:
            raise ValueError(f"promote_score_diff must be in [-1, 1], got {self.promote_score_diff}")
        for name in ("window", "min_iters", "max_levels"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")


class PolicyPool:
    """Frozen copies of the policy; game ``e`` plays against copy ``e * len(pool) // E`` (chunks)."""

    def __init__(self, max_levels: int = 2) -> None:
        self.max_levels = max_levels
        self.models: deque[GEEActorCritic] = deque(maxlen=max_levels)

    def add(self, model: GEEActorCritic) -> None:
        """Append a frozen deep copy of ``model`` (evaluation mode, no gradients)."""
        frozen = copy.deepcopy(model).eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
        self.models.append(frozen)

    def __len__(self) -> int:
        return len(self.models)

    def reset(self, env_mask: torch.Tensor) -> None:
        """Stateless."""

    @torch.no_grad()
    def act(self, state: SoccerState, cfg: SoccerConfig, team: int, obs: Obs | None = None) -> torch.Tensor:
        """Deterministic actions of each game's pool member for ``team``, ``(E, T, 5)``."""
        if not self.models:
            raise RuntimeError("the policy pool is empty")
        e = state.pos.shape[0]
        outs = [PolicyPlayer(m).act(state, cfg, team, obs=obs) for m in self.models]
        chunk = torch.arange(e, device=state.pos.device) * len(outs) // e
        stacked = torch.stack(outs)  # [P, E, T, 5]
        return stacked[chunk, torch.arange(e, device=state.pos.device)]

    def state_dict(self) -> list[dict[str, torch.Tensor]]:
        return [m.state_dict() for m in self.models]

    def load_state_dict(self, states: list[dict[str, torch.Tensor]], template: GEEActorCritic) -> None:
        """Rebuild the pool from ``states`` using copies of ``template``'s architecture."""
        self.models.clear()
        for s in states:
            m = copy.deepcopy(template)
            m.load_state_dict(s)
            self.add(m)


class OpponentCurriculum:
    """The current training opponent and the promotion bookkeeping."""

    def __init__(
        self,
        cfg: CurriculumConfig,
        model: GEEActorCritic,
        device: torch.device,
        generator: torch.Generator | None = None,
    ) -> None:
        self.cfg = cfg
        self.model = model
        self.device = device
        self.generator = generator
        self.stage = 0
        self.last_promotion = 0
        self.outcomes: deque[int] = deque(maxlen=cfg.window)
        self.pool = PolicyPool(cfg.max_levels)
        self.promotions: list[dict[str, Any]] = []
        self._player: Any = None
        self._build()

    @property
    def name(self) -> str:
        """The current stage's opponent name (with the pool size in self-play)."""
        n = self.cfg.stages[self.stage]
        return f"selfplay[{len(self.pool)}]" if n == "selfplay" else n

    def _build(self) -> None:
        n = self.cfg.stages[self.stage]
        if n == "selfplay":
            if not len(self.pool):
                self.pool.add(self.model)  # seeded with a copy of the current policy, as the code does
            self._player = self.pool
        else:
            self._player = make_player(n, self.device, self.generator)

    def act(self, state: SoccerState, cfg: SoccerConfig, team: int, obs: Obs | None) -> torch.Tensor:
        """The opponent's actions for ``team``."""
        return act_team(self._player, state, cfg, team, obs)

    def reset(self, env_mask: torch.Tensor) -> None:
        self._player.reset(env_mask)

    def record(self, goals: torch.Tensor) -> None:
        """Add finished episodes' outcomes (+1 learner scored, -1 conceded, 0 time-out)."""
        self.outcomes.extend(int(g) for g in goals.tolist())

    @property
    def score_diff(self) -> float:
        """Mean score difference over the window (0 when empty)."""
        return sum(self.outcomes) / len(self.outcomes) if self.outcomes else 0.0

    def maybe_promote(self, iteration: int) -> bool:
        """Apply the promotion rule; True when the opponent changed."""
        if len(self.outcomes) < self.cfg.window or iteration - self.last_promotion < self.cfg.min_iters:
            return False
        if self.score_diff <= self.cfg.promote_score_diff:
            return False
        last = self.stage + 1 == len(self.cfg.stages)
        if last and self.cfg.stages[self.stage] != "selfplay":
            return False  # the last scripted stage: nothing to promote to
        self.promotions.append({"iteration": iteration, "from": self.name, "score_diff": self.score_diff})
        self.last_promotion = iteration
        self.outcomes.clear()
        if self.cfg.stages[self.stage] == "selfplay":
            self.pool.add(self.model)
        else:
            self.stage += 1
            self._build()
        return True

    def state_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "last_promotion": self.last_promotion,
            "outcomes": list(self.outcomes),
            "pool": self.pool.state_dict(),
            "promotions": self.promotions,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stage = int(state["stage"])
        self.last_promotion = int(state["last_promotion"])
        self.outcomes = deque(state["outcomes"], maxlen=self.cfg.window)
        self.pool.load_state_dict(state["pool"], self.model)
        self.promotions = list(state["promotions"])
        self._build()
