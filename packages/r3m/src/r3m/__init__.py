"""r3m: robust reward learning and DPO from corrupted preferences (R3M, l1-sparse outliers).

Paper: Bukharin, Hong, Jiang, Li, Zhang, Zhang, Zhao, "Robust Reinforcement Learning from Corrupted Human Feedback", NeurIPS 2024, arXiv:2406.15568.

The public API is resolved lazily (PEP 562), so that ``import r3m`` and ``r3m --help``
stay fast and import no heavy dependency until a name that needs it is used. Each public name is
listed in ``_LAZY`` with the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from r3m._version import __version__

if TYPE_CHECKING:
    from r3m.baselines import bt_loss, conservative_loss, dpo_baseline, hinge_loss, ipo_loss, unbiased_loss
    from r3m.config import TrainConfig
    from r3m.data import PreferenceData, from_trl_dataset, read_trl_jsonl, write_trl_jsonl
    from r3m.envs import SegmentPool, collect_segments
    from r3m.functional import R3MDPOOutput, R3MOutput, r3m_delta, r3m_dpo_loss, r3m_loss, r3m_threshold
    from r3m.metrics import (
        flag_precision,
        outlier_auroc,
        outlier_precision_recall,
        preference_accuracy,
        reward_correlation,
    )
    from r3m.nn import R3MDPOLoss, R3MLoss
    from r3m.reward_model import SegmentRewardModel
    from r3m.synthetic import TrueReward, make_preference_data, pair_segments, sample_segments
    from r3m.teachers import Flip, Irrational, Mistake, Myopic, Oracle, Stochastic
    from r3m.trainer import OutlierReport, RewardTrainer

_LAZY: dict[str, str] = {
    "r3m_threshold": "r3m.functional",
    "r3m_delta": "r3m.functional",
    "r3m_loss": "r3m.functional",
    "r3m_dpo_loss": "r3m.functional",
    "R3MOutput": "r3m.functional",
    "R3MDPOOutput": "r3m.functional",
    "R3MLoss": "r3m.nn",
    "R3MDPOLoss": "r3m.nn",
    "bt_loss": "r3m.baselines",
    "conservative_loss": "r3m.baselines",
    "unbiased_loss": "r3m.baselines",
    "ipo_loss": "r3m.baselines",
    "hinge_loss": "r3m.baselines",
    "dpo_baseline": "r3m.baselines",
    "PreferenceData": "r3m.data",
    "from_trl_dataset": "r3m.data",
    "read_trl_jsonl": "r3m.data",
    "write_trl_jsonl": "r3m.data",
    "TrueReward": "r3m.synthetic",
    "make_preference_data": "r3m.synthetic",
    "pair_segments": "r3m.synthetic",
    "sample_segments": "r3m.synthetic",
    "Oracle": "r3m.teachers",
    "Stochastic": "r3m.teachers",
    "Flip": "r3m.teachers",
    "Mistake": "r3m.teachers",
    "Myopic": "r3m.teachers",
    "Irrational": "r3m.teachers",
    "SegmentPool": "r3m.envs",
    "collect_segments": "r3m.envs",
    "SegmentRewardModel": "r3m.reward_model",
    "preference_accuracy": "r3m.metrics",
    "flag_precision": "r3m.metrics",
    "reward_correlation": "r3m.metrics",
    "outlier_precision_recall": "r3m.metrics",
    "outlier_auroc": "r3m.metrics",
    "TrainConfig": "r3m.config",
    "RewardTrainer": "r3m.trainer",
    "OutlierReport": "r3m.trainer",
}
"""Public name -> module defining it (``R3MDPOTrainer`` lives in ``r3m.integrations.trl``)."""

__all__ = [
    "Flip",
    "Irrational",
    "Mistake",
    "Myopic",
    "Oracle",
    "OutlierReport",
    "PreferenceData",
    "R3MDPOLoss",
    "R3MDPOOutput",
    "R3MLoss",
    "R3MOutput",
    "RewardTrainer",
    "SegmentPool",
    "SegmentRewardModel",
    "Stochastic",
    "TrainConfig",
    "TrueReward",
    "__version__",
    "bt_loss",
    "collect_segments",
    "conservative_loss",
    "dpo_baseline",
    "flag_precision",
    "from_trl_dataset",
    "hinge_loss",
    "ipo_loss",
    "make_preference_data",
    "outlier_auroc",
    "outlier_precision_recall",
    "pair_segments",
    "preference_accuracy",
    "r3m_delta",
    "r3m_dpo_loss",
    "r3m_loss",
    "r3m_threshold",
    "read_trl_jsonl",
    "reward_correlation",
    "sample_segments",
    "unbiased_loss",
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
