"""cosmos-optim: COSMOS, a drop-in torch.optim.Optimizer: SOAP on the leading eigensubspace, Muon on the rest.

Paper: Liu, Xu, Zhang, Kang, Li, Liang, Chen, Zhao, "COSMOS: A Hybrid Adaptive Optimizer for Memory-Efficient Training of LLMs", arXiv:2502.17410 (2025).

The public API is resolved lazily (PEP 562), so that ``import cosmos_optim`` and ``cosmos-optim --help``
stay fast and import no heavy dependency until a name that needs it is used. Each public name is
listed in ``_LAZY`` with the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cosmos_optim._version import __version__

if TYPE_CHECKING:
    from cosmos_optim.baselines import MuonWithAdamW, available_optimizers, make_optimizer
    from cosmos_optim.data import CharTokenizer, TextData, load_corpus
    from cosmos_optim.functional import cosmos_step, newton_schulz
    from cosmos_optim.memory import MemoryReport, memory_report, predict_memory
    from cosmos_optim.model import GPT, GPTConfig
    from cosmos_optim.optimizer import COSMOS
    from cosmos_optim.routing import cosmos_param_groups, explain_routing, split_matrix_params
    from cosmos_optim.soap import SOAP
    from cosmos_optim.train import TrainConfig, TrainResult, train

_LAZY: dict[str, str] = {
    "COSMOS": "cosmos_optim.optimizer",
    "MemoryReport": "cosmos_optim.memory",
    "memory_report": "cosmos_optim.memory",
    "predict_memory": "cosmos_optim.memory",
    "cosmos_param_groups": "cosmos_optim.routing",
    "explain_routing": "cosmos_optim.routing",
    "split_matrix_params": "cosmos_optim.routing",
    "newton_schulz": "cosmos_optim.functional",
    "cosmos_step": "cosmos_optim.functional",
    "SOAP": "cosmos_optim.soap",
    "MuonWithAdamW": "cosmos_optim.baselines",
    "available_optimizers": "cosmos_optim.baselines",
    "make_optimizer": "cosmos_optim.baselines",
    "GPT": "cosmos_optim.model",
    "GPTConfig": "cosmos_optim.model",
    "CharTokenizer": "cosmos_optim.data",
    "TextData": "cosmos_optim.data",
    "load_corpus": "cosmos_optim.data",
    "TrainConfig": "cosmos_optim.train",
    "TrainResult": "cosmos_optim.train",
    "train": "cosmos_optim.train",
}
"""Public name -> module defining it."""

__all__ = [
    "COSMOS",
    "GPT",
    "SOAP",
    "CharTokenizer",
    "GPTConfig",
    "MemoryReport",
    "MuonWithAdamW",
    "TextData",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "available_optimizers",
    "cosmos_param_groups",
    "cosmos_step",
    "explain_routing",
    "load_corpus",
    "make_optimizer",
    "memory_report",
    "newton_schulz",
    "predict_memory",
    "split_matrix_params",
    "train",
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
