"""Environment report for bug reports and benchmark records: ``gsa-prompt info``."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from gsa_prompt._version import __version__


def collect() -> dict[str, Any]:
    """Versions and CPU count of the running process.

    gsa-prompt runs no local model and never imports torch, so it reports ``cuda_available`` as
    None (not applicable) rather than probing for a GPU.

    Returns:
        A flat, JSON-serialisable dict: ``package``, ``version``, ``python``, ``platform``, the
        version of each runtime dependency, ``cpu_count`` (CPUs this process may use) and
        ``cuda_available`` (always None).
    """
    import openai
    import tqdm

    return {
        "package": "gsa-prompt",
        "version": __version__,
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "openai": openai.__version__,
        "tqdm": tqdm.__version__,
        "cpu_count": _usable_cpus(),
        "cuda_available": None,
    }


def _usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def format_table(info: dict[str, Any]) -> str:
    """Two aligned columns, one ``key value`` row per entry; None is shown as ``n/a``."""
    width = max(len(k) for k in info)
    return "\n".join(f"{k:<{width}}  {'n/a' if v is None else v}" for k, v in info.items())
