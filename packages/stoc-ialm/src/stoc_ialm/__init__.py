"""stoc-ialm: stochastic inexact augmented Lagrangian solver for expectation-constrained problems.

Paper: Li, Chen, Liu, Lu, Xu, "Stochastic inexact augmented Lagrangian method for nonconvex expectation constrained optimization", Computational Optimization and Applications 87 (2024), arXiv:2212.09513.

The public API is resolved lazily (PEP 562), so that ``import stoc_ialm`` and ``stoc-ialm --help``
stay fast and import no heavy dependency until a name that needs it is used. Each public name is
listed in ``_LAZY`` with the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from stoc_ialm._version import __version__

if TYPE_CHECKING:
    from stoc_ialm.baselines import (
        CooperConfig,
        CooperSolver,
        IPPConEx,
        IPPConExConfig,
        PenaltySGD,
        PenaltySGDConfig,
        StochasticGDA,
        StochasticGDAConfig,
    )
    from stoc_ialm.commands import estimate_lipschitz
    from stoc_ialm.datasets import Dataset, load_svmlight
    from stoc_ialm.datasets import load as load_dataset
    from stoc_ialm.ialm import DivergenceError, SolveResult, StocIALM, StocIALMConfig
    from stoc_ialm.kkt import KKTResidual, kkt_residual
    from stoc_ialm.plotting import load_history, plot_history
    from stoc_ialm.problem import OracleCounter, Problem
    from stoc_ialm.problems import Constraint, FairnessDP, NeymanPearson, TorchModelProblem
    from stoc_ialm.prox import L1, Box, ElasticNet, GroupL1, L2Ball, L2Sq, NonNeg, Regularizer, Sum, Zero
    from stoc_ialm.pstorm import PStorm, constant_schedule, paper_schedule, prox_gradient_step, pstorm_direction
    from stoc_ialm.reference import SLSQPResult, slsqp_reference
    from stoc_ialm.toy import QuadraticProblem

_LAZY: dict[str, str] = {
    "Regularizer": "stoc_ialm.prox",
    "Zero": "stoc_ialm.prox",
    "L1": "stoc_ialm.prox",
    "L2Sq": "stoc_ialm.prox",
    "ElasticNet": "stoc_ialm.prox",
    "GroupL1": "stoc_ialm.prox",
    "Box": "stoc_ialm.prox",
    "NonNeg": "stoc_ialm.prox",
    "L2Ball": "stoc_ialm.prox",
    "Sum": "stoc_ialm.prox",
    "PStorm": "stoc_ialm.pstorm",
    "pstorm_direction": "stoc_ialm.pstorm",
    "prox_gradient_step": "stoc_ialm.pstorm",
    "paper_schedule": "stoc_ialm.pstorm",
    "constant_schedule": "stoc_ialm.pstorm",
    "Problem": "stoc_ialm.problem",
    "OracleCounter": "stoc_ialm.problem",
    "KKTResidual": "stoc_ialm.kkt",
    "kkt_residual": "stoc_ialm.kkt",
    "StocIALM": "stoc_ialm.ialm",
    "StocIALMConfig": "stoc_ialm.ialm",
    "SolveResult": "stoc_ialm.ialm",
    "DivergenceError": "stoc_ialm.ialm",
    "Dataset": "stoc_ialm.datasets",
    "load_dataset": "stoc_ialm.datasets",
    "load_svmlight": "stoc_ialm.datasets",
    "NeymanPearson": "stoc_ialm.problems",
    "FairnessDP": "stoc_ialm.problems",
    "TorchModelProblem": "stoc_ialm.problems",
    "Constraint": "stoc_ialm.problems",
    "slsqp_reference": "stoc_ialm.reference",
    "SLSQPResult": "stoc_ialm.reference",
    "QuadraticProblem": "stoc_ialm.toy",
    "plot_history": "stoc_ialm.plotting",
    "load_history": "stoc_ialm.plotting",
    "estimate_lipschitz": "stoc_ialm.commands",
    "IPPConEx": "stoc_ialm.baselines",
    "IPPConExConfig": "stoc_ialm.baselines",
    "PenaltySGD": "stoc_ialm.baselines",
    "PenaltySGDConfig": "stoc_ialm.baselines",
    "StochasticGDA": "stoc_ialm.baselines",
    "StochasticGDAConfig": "stoc_ialm.baselines",
    "CooperSolver": "stoc_ialm.baselines",
    "CooperConfig": "stoc_ialm.baselines",
}
"""Public name -> module defining it (``load_dataset`` is :func:`stoc_ialm.datasets.load`)."""

__all__ = [
    "L1",
    "Box",
    "Constraint",
    "CooperConfig",
    "CooperSolver",
    "Dataset",
    "DivergenceError",
    "ElasticNet",
    "FairnessDP",
    "GroupL1",
    "IPPConEx",
    "IPPConExConfig",
    "KKTResidual",
    "L2Ball",
    "L2Sq",
    "NeymanPearson",
    "NonNeg",
    "OracleCounter",
    "PStorm",
    "PenaltySGD",
    "PenaltySGDConfig",
    "Problem",
    "QuadraticProblem",
    "Regularizer",
    "SLSQPResult",
    "SolveResult",
    "StocIALM",
    "StocIALMConfig",
    "StochasticGDA",
    "StochasticGDAConfig",
    "Sum",
    "TorchModelProblem",
    "Zero",
    "__version__",
    "constant_schedule",
    "estimate_lipschitz",
    "kkt_residual",
    "load_dataset",
    "load_history",
    "load_svmlight",
    "paper_schedule",
    "plot_history",
    "prox_gradient_step",
    "pstorm_direction",
    "slsqp_reference",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), "load" if name == "load_dataset" else name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
