"""cosmos-optim: cOSMOS, a drop-in torch.optim.Optimizer: SOAP on the leading eigensubspace, Muon on the rest.

Paper: Liu, Xu, Zhang, Kang, Li, Liang, Chen, Zhao, "COSMOS: A Hybrid Adaptive Optimizer for Memory-Efficient Training of LLMs", arXiv:2502.17410 (2025).

The public API is resolved lazily (PEP 562), so that ``import cosmos_optim`` and ``cosmos-optim --help``
stay fast and import no heavy dependency until a name that needs it is used. Each public name is
listed in ``_LAZY`` with the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import Any

from cosmos_optim._version import __version__

_LAZY: dict[str, str] = {
    "COSMOS": "cosmos_optim.optimizer",
    "MemoryReport": "cosmos_optim.memory",
    "MuonWithAdamW": "cosmos_optim.baselines",
    "SOAP": "cosmos_optim.soap",
    "available_optimizers": "cosmos_optim.baselines",
    "make_optimizer": "cosmos_optim.baselines",
    "cosmos_param_groups": "cosmos_optim.routing",
    "explain_routing": "cosmos_optim.routing",
    "memory_report": "cosmos_optim.memory",
    "newton_schulz": "cosmos_optim.functional",
    "predict_memory": "cosmos_optim.memory",
    "split_matrix_params": "cosmos_optim.routing",
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
