"""marladona: multi-agent RL robot soccer: batched torch simulator, PettingZoo API, PPO with a global entity encoder.

Paper: Li, Bjelonic, Klemm, Hutter, "MARLadona: Towards Cooperative Team Play Using Multi-Agent Reinforcement Learning", ICRA 2025, arXiv:2409.20326.

The public API is resolved lazily (PEP 562), so that ``import marladona`` and ``marladona --help``
stay fast and import no heavy dependency until a name that needs it is used. Each public name is
listed in ``_LAZY`` with the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import Any

from marladona._version import __version__

_LAZY: dict[str, str] = {
    "SoccerConfig": "marladona.config",
    "AgentParams": "marladona.config",
    "BallParams": "marladona.config",
    "RewardWeights": "marladona.config",
    "preset": "marladona.config",
    "SoccerEnv": "marladona.env",
    "SoccerState": "marladona.sim",
    "Obs": "marladona.observations",
    "compute_obs": "marladona.observations",
    "LearnerVecEnv": "marladona.vecenv",
    "parallel_env": "marladona.pettingzoo_env",
    "IdleBot": "marladona.heuristic",
    "RandomBot": "marladona.heuristic",
    "RoleBot": "marladona.heuristic",
    "MarladonaBot": "marladona.heuristic",
    "GEEActorCritic": "marladona.models",
    "PPO": "marladona.ppo",
    "PPOConfig": "marladona.ppo",
    "compute_gae": "marladona.ppo",
    "PolicyPool": "marladona.selfplay",
    "CurriculumConfig": "marladona.selfplay",
    "Trainer": "marladona.train",
    "TrainConfig": "marladona.train",
    "make_train_config": "marladona.train",
    "evaluate": "marladona.evaluate",
    "wilson_interval": "marladona.evaluate",
    "PolicyPlayer": "marladona.players",
    "make_player": "marladona.players",
    "load_policy": "marladona.checkpoint",
    "save_policy": "marladona.checkpoint",
    "render_frame": "marladona.render",
    "save_animation": "marladona.render",
}
"""Public name -> module defining it; names are added here as the method lands."""

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
