"""Tests of optimizer-state memory: measured bytes against closed forms, and the paper's ratios."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cosmos_optim import COSMOS, memory_report, predict_memory
from cosmos_optim.memory import matrix_state_entries


def _block(d: int) -> list[tuple[int, int]]:
    return [(d, d)] * 4 + [(4 * d, d), (d, 4 * d)]  # q, k, v, o, fc, proj


def test_measured_cosmos_state_equals_the_closed_form() -> None:
    layers = [nn.Linear(12, 20, bias=False), nn.Linear(20, 12), nn.Linear(3, 40, bias=False)]
    params = [p for layer in layers for p in layer.parameters()]
    opt = COSMOS(params, rank=5)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    report = memory_report(opt)
    expected = 0
    for m, n in [(20, 12), (12, 20), (40, 3)]:
        r = min(5, m, n)
        expected += m * n + n * r + r * r + m * r
    expected += 2 * 12  # the bias of the second layer takes AdamW
    assert report.total_bytes == 4 * expected
    assert report.by_kind["U"] == 4 * (12 * 5 + 20 * 5 + 3 * 3)
    matrices = [(20, 12), (12, 20), (40, 3)]
    assert report.total_bytes == predict_memory(matrices, "cosmos", rank=5, adam_shapes=[(12,)])


def test_measured_adamw_and_muon_state_equal_the_closed_forms() -> None:
    w = nn.Parameter(torch.zeros(6, 10))
    for opt, method in ((torch.optim.AdamW([w]), "adamw"), (torch.optim.Muon([w]), "muon")):
        w.grad = torch.ones(6, 10)
        opt.step()
        assert memory_report(opt).total_bytes == predict_memory([(6, 10)], method)


def test_closed_forms_per_method() -> None:
    m, n, r = 30, 20, 8
    assert matrix_state_entries(m, n, "adamw") == 2 * m * n
    assert matrix_state_entries(m, n, "muon") == m * n
    assert matrix_state_entries(m, n, "soap") == 2 * m * n + 2 * (m * m + n * n)
    assert matrix_state_entries(m, n, "soap-gg") == 2 * m * n + m * m + n * n
    assert matrix_state_entries(m, n, "soap", max_precond_dim=25) == 2 * m * n + 2 * n * n
    assert matrix_state_entries(m, n, "galore", rank=r) == n * r + 2 * r * m
    assert matrix_state_entries(m, n, "cosmos", rank=r) == m * n + n * r + r * r + m * r
    assert matrix_state_entries(m, n, "cosmos", rank=99) == m * n + n * n + n * n + m * n  # rank clamped to 20


def test_paper_ratios_for_a_gpt_block_at_d512_rank64() -> None:
    # Spec B1 (exact): COSMOS <= 0.60x AdamW, <= 1.20x Muon, <= 0.14x SOAP (GG + Q) at d=512, r=64.
    block = _block(512)
    mib = 2**20
    assert predict_memory(block, "adamw") == 24 * mib
    assert predict_memory(block, "muon") == 12 * mib
    assert predict_memory(block, "soap") == 108 * mib
    cosmos = predict_memory(block, "cosmos", rank=64)
    assert cosmos / mib == pytest.approx(14.34, abs=0.005)
    assert cosmos <= 0.60 * predict_memory(block, "adamw")
    assert cosmos <= 1.20 * predict_memory(block, "muon")
    assert cosmos <= 0.14 * predict_memory(block, "soap")


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        predict_memory([(2, 2)], "lion")
    with pytest.raises(ValueError, match=r"matrix_shapes must hold \(m, n\) pairs"):
        predict_memory([(2, 2, 2)], "adamw")
    with pytest.raises(ValueError, match="rank must be >= 0"):
        matrix_state_entries(2, 2, "cosmos", rank=-1)
    with pytest.raises(ValueError, match="dtype_bytes must be >= 1"):
        predict_memory([(2, 2)], "adamw", dtype_bytes=0)
