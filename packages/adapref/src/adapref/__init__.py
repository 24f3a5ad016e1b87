"""adapref: adaptive preference scaling (DRO) for reward learning and DPO.

Paper: Hong, Li, Bukharin, Li, Jiang, Yang, Zhao, "Adaptive Preference Scaling for Reinforcement Learning with Human Feedback", NeurIPS 2024, arXiv:2406.02764.

The public API is resolved lazily (PEP 562), so that ``import adapref`` and ``adapref --help``
stay fast and import no heavy dependency until a name that needs it is used. Each public name is
listed in ``_LAZY`` with the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from adapref._version import __version__

if TYPE_CHECKING:
    from adapref.baselines import (
        bt_loss,
        conservative_dpo_loss,
        hinge_dpo_loss,
        hinge_loss,
        ipo_dpo_loss,
        ipo_loss,
        margin_bt_loss,
        robust_dpo_loss,
        sigmoid_dpo_loss,
    )
    from adapref.config import TrainConfig
    from adapref.data import PreferenceData, from_trl_dataset, read_trl_jsonl, write_trl_jsonl
    from adapref.envs import SegmentPool, collect_segments
    from adapref.functional import AdaDPOOutput, AdaOutput, ada_dpo_loss, adaptive_preference_loss
    from adapref.nn import AdaDPOLoss, AdaptivePreferenceLoss
    from adapref.reward_model import SegmentRewardModel
    from adapref.scaling import optimal_u, solve_tau
    from adapref.synthetic import (
        Flip,
        Oracle,
        Stochastic,
        TrueReward,
        block_pairs,
        make_preference_data,
        pair_segments,
    )
    from adapref.trainer import RewardTrainer, TauReport

_LAZY: dict[str, str] = {
    "optimal_u": "adapref.scaling",
    "solve_tau": "adapref.scaling",
    "AdaOutput": "adapref.functional",
    "AdaDPOOutput": "adapref.functional",
    "adaptive_preference_loss": "adapref.functional",
    "ada_dpo_loss": "adapref.functional",
    "AdaptivePreferenceLoss": "adapref.nn",
    "AdaDPOLoss": "adapref.nn",
    "bt_loss": "adapref.baselines",
    "hinge_loss": "adapref.baselines",
    "ipo_loss": "adapref.baselines",
    "sigmoid_dpo_loss": "adapref.baselines",
    "hinge_dpo_loss": "adapref.baselines",
    "ipo_dpo_loss": "adapref.baselines",
    "margin_bt_loss": "adapref.baselines",
    "conservative_dpo_loss": "adapref.baselines",
    "robust_dpo_loss": "adapref.baselines",
    "PreferenceData": "adapref.data",
    "from_trl_dataset": "adapref.data",
    "read_trl_jsonl": "adapref.data",
    "write_trl_jsonl": "adapref.data",
    "TrueReward": "adapref.synthetic",
    "Oracle": "adapref.synthetic",
    "Stochastic": "adapref.synthetic",
    "Flip": "adapref.synthetic",
    "make_preference_data": "adapref.synthetic",
    "pair_segments": "adapref.synthetic",
    "block_pairs": "adapref.synthetic",
    "SegmentPool": "adapref.envs",
    "collect_segments": "adapref.envs",
    "SegmentRewardModel": "adapref.reward_model",
    "TrainConfig": "adapref.config",
    "RewardTrainer": "adapref.trainer",
    "TauReport": "adapref.trainer",
}
"""Public name -> module defining it (``AdaDPOTrainer`` lives in ``adapref.integrations.trl``)."""

__all__ = [
    "AdaDPOLoss",
    "AdaDPOOutput",
    "AdaOutput",
    "AdaptivePreferenceLoss",
    "Flip",
    "Oracle",
    "PreferenceData",
    "RewardTrainer",
    "SegmentPool",
    "SegmentRewardModel",
    "Stochastic",
    "TauReport",
    "TrainConfig",
    "TrueReward",
    "__version__",
    "ada_dpo_loss",
    "adaptive_preference_loss",
    "block_pairs",
    "bt_loss",
    "collect_segments",
    "conservative_dpo_loss",
    "from_trl_dataset",
    "hinge_dpo_loss",
    "hinge_loss",
    "ipo_dpo_loss",
    "ipo_loss",
    "make_preference_data",
    "margin_bt_loss",
    "optimal_u",
    "pair_segments",
    "read_trl_jsonl",
    "robust_dpo_loss",
    "sigmoid_dpo_loss",
    "solve_tau",
    "write_trl_jsonl",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
