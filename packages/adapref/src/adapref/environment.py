"""Environment report for bug reports and benchmark records: ``adapref info``."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

from adapref._version import __version__


def collect() -> dict[str, Any]:
    """Versions, thread counts and accelerators of the running process.

    Returns:
        A flat, JSON-serialisable dict: ``package``, ``version``, ``python``, ``platform``, the
        version of each runtime dependency and of the optional extras' packages (None when absent),
        ``cpu_count`` (CPUs this process may use),
        ``torch_threads`` and ``torch_interop_threads``, ``cuda_available``, ``cuda_version``
        (None for a CPU build) and ``cuda_devices`` (names, empty without CUDA).
    """
    import numpy
    import torch

    cuda = torch.cuda.is_available()
    return {
        "package": "adapref",
        "version": __version__,
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        **{name: _installed(name) for name in _OTHER_DISTRIBUTIONS},
        "cpu_count": _usable_cpus(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cuda_available": cuda,
        "cuda_version": torch.version.cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
    }


_OTHER_DISTRIBUTIONS = ("tqdm", "trl", "transformers", "tokenizers", "datasets", "gymnasium", "mujoco", "matplotlib")
"""The other runtime dependency (tqdm) and the optional extras' packages, whose versions decide what runs."""


def _installed(name: str) -> str | None:
    """The installed version of distribution ``name`` from its metadata (not imported), or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def format_table(info: dict[str, Any]) -> str:
    """Two aligned columns, one ``key value`` row per entry."""
    width = max(len(k) for k in info)
    rows = []
    for key, value in info.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        rows.append(f"{key:<{width}}  {'-' if shown in (None, '') else shown}")
    return "\n".join(rows)
