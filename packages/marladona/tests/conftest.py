"""Shared pytest setup for marladona: tests marked ``gpu`` are skipped without CUDA."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # The tests step small batches: one intra-op thread is faster for them, and it keeps the suite's
    # time stable on a loaded 2-core machine (two OpenMP threads fighting for cores were seen to make
    # a PPO update 100x slower).
    import torch

    torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in gpu_items:
        item.add_marker(skip)
