"""smurf-thp: score-matching Transformer Hawkes process with calibrated arrival-time intervals (SMURF-THP).

Paper: Li, Xu, Zuo, Jiang, Zhang, Zhao, Zha, "SMURF-THP: Score Matching-based UnceRtainty quantiFication for Transformer Hawkes Process", ICML 2023, arXiv:2310.16336.

The public API is resolved lazily (PEP 562), so that ``import smurf_thp`` and ``smurf-thp --help``
stay fast and import no heavy dependency until a name that needs it is used. Each public name is
listed in ``_LAZY`` with the module that defines it. The EasyTPP anchors (``EasyTPPAnchor``; extra
``[easytpp]``) import ``easy_tpp`` only when one is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from smurf_thp._version import __version__

if TYPE_CHECKING:
    from smurf_thp.baselines import FlexibleIntensityMLE, THPIntensity
    from smurf_thp.data import Batch, EventDataset, EventSequence, batches, collate, from_tick
    from smurf_thp.easytpp import EasyTPPAnchor, EasyTPPConfig, to_easytpp_batch
    from smurf_thp.formats import load, load_splits, save, save_splits
    from smurf_thp.losses import dsm_loss, hyvarinen_loss, type_ce
    from smurf_thp.metrics import (
        calibration_score,
        coverage,
        crps,
        interval_length,
        rmse,
        summarize,
        type_accuracy,
    )
    from smurf_thp.model import IntensityScoreHead, THPEncoder, TimeTypeHead
    from smurf_thp.normalize import TimeNormalizer
    from smurf_thp.oracle_metrics import oracle_calibration, pit
    from smurf_thp.sampling import inverse_cdf_sample, langevin
    from smurf_thp.simulate import (
        HawkesExp,
        HawkesSumExp,
        PoissonProcess,
        RenewalLogNormal,
        SelfCorrecting,
        TimeDependentMarks,
        process_from_dict,
    )
    from smurf_thp.smurf import SMURFTHP, SamplerConfig, SMURFConfig
    from smurf_thp.train import TrainConfig, Trainer, evaluate, load_checkpoint, predict

_LAZY: dict[str, str] = {
    "FlexibleIntensityMLE": "smurf_thp.baselines",
    "THPIntensity": "smurf_thp.baselines",
    "EventSequence": "smurf_thp.data",
    "EventDataset": "smurf_thp.data",
    "Batch": "smurf_thp.data",
    "collate": "smurf_thp.data",
    "batches": "smurf_thp.data",
    "from_tick": "smurf_thp.data",
    "EasyTPPAnchor": "smurf_thp.easytpp",
    "EasyTPPConfig": "smurf_thp.easytpp",
    "to_easytpp_batch": "smurf_thp.easytpp",
    "load": "smurf_thp.formats",
    "save": "smurf_thp.formats",
    "load_splits": "smurf_thp.formats",
    "save_splits": "smurf_thp.formats",
    "TimeNormalizer": "smurf_thp.normalize",
    "HawkesExp": "smurf_thp.simulate",
    "HawkesSumExp": "smurf_thp.simulate",
    "SelfCorrecting": "smurf_thp.simulate",
    "RenewalLogNormal": "smurf_thp.simulate",
    "PoissonProcess": "smurf_thp.simulate",
    "TimeDependentMarks": "smurf_thp.simulate",
    "process_from_dict": "smurf_thp.simulate",
    "coverage": "smurf_thp.metrics",
    "calibration_score": "smurf_thp.metrics",
    "crps": "smurf_thp.metrics",
    "interval_length": "smurf_thp.metrics",
    "rmse": "smurf_thp.metrics",
    "type_accuracy": "smurf_thp.metrics",
    "pit": "smurf_thp.oracle_metrics",
    "oracle_calibration": "smurf_thp.oracle_metrics",
    "summarize": "smurf_thp.metrics",
    "THPEncoder": "smurf_thp.model",
    "IntensityScoreHead": "smurf_thp.model",
    "TimeTypeHead": "smurf_thp.model",
    "dsm_loss": "smurf_thp.losses",
    "hyvarinen_loss": "smurf_thp.losses",
    "type_ce": "smurf_thp.losses",
    "langevin": "smurf_thp.sampling",
    "inverse_cdf_sample": "smurf_thp.sampling",
    "SMURFTHP": "smurf_thp.smurf",
    "SMURFConfig": "smurf_thp.smurf",
    "SamplerConfig": "smurf_thp.smurf",
    "TrainConfig": "smurf_thp.train",
    "Trainer": "smurf_thp.train",
    "evaluate": "smurf_thp.train",
    "load_checkpoint": "smurf_thp.train",
    "predict": "smurf_thp.train",
}
"""Public name -> module defining it."""

__all__ = [
    "SMURFTHP",
    "Batch",
    "EasyTPPAnchor",
    "EasyTPPConfig",
    "EventDataset",
    "EventSequence",
    "FlexibleIntensityMLE",
    "HawkesExp",
    "HawkesSumExp",
    "IntensityScoreHead",
    "PoissonProcess",
    "RenewalLogNormal",
    "SMURFConfig",
    "SamplerConfig",
    "SelfCorrecting",
    "THPEncoder",
    "THPIntensity",
    "TimeDependentMarks",
    "TimeNormalizer",
    "TimeTypeHead",
    "TrainConfig",
    "Trainer",
    "__version__",
    "batches",
    "calibration_score",
    "collate",
    "coverage",
    "crps",
    "dsm_loss",
    "evaluate",
    "from_tick",
    "hyvarinen_loss",
    "interval_length",
    "inverse_cdf_sample",
    "langevin",
    "load",
    "load_checkpoint",
    "load_splits",
    "oracle_calibration",
    "pit",
    "predict",
    "process_from_dict",
    "rmse",
    "save",
    "save_splits",
    "summarize",
    "to_easytpp_batch",
    "type_accuracy",
    "type_ce",
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
