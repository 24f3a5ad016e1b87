"""Tests for cosmos_optim.baselines: every baseline builds and steps, MuonWithAdamW equals torch's two optimizers."""

from __future__ import annotations

import copy
import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from cosmos_optim.baselines import (
    DEFAULT_ADAM_LR,
    OPTIMIZERS,
    MuonWithAdamW,
    available_optimizers,
    make_optimizer,
)
from cosmos_optim.routing import split_matrix_params

LRS = {"adamw": 1e-2, "muon": 0.02, "soap": 1e-2, "cosmos": 4e-3}
HAS_HEAVYBALL = importlib.util.find_spec("heavyball") is not None


def _model() -> nn.Module:
    """Embedding (16, 8), two hidden linears (8 -> 12 -> 8), LayerNorm, a head back to the 16 tokens."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Embedding(16, 8),
            nn.Linear(8, 12),
            nn.GELU(),
            nn.Linear(12, 8),
            nn.LayerNorm(8),
            nn.Linear(8, 16),
        )


def _batches(n: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return [torch.randint(0, 16, (4, 6), generator=gen) for _ in range(n)]


def _loss(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    logits = model(tokens[:, :-1])
    return nn.functional.cross_entropy(logits.reshape(-1, 16), tokens[:, 1:].reshape(-1))


def _train(model: nn.Module, opts: list[torch.optim.Optimizer], batches: list[torch.Tensor]) -> None:
    for tokens in batches:
        for opt in opts:
            opt.zero_grad()
        _loss(model, tokens).backward()
        for opt in opts:
            opt.step()


def _build(name: str, model: nn.Module, **kwargs: Any) -> torch.optim.Optimizer:
    """make_optimizer with the test's learning rate for ``name``."""
    return make_optimizer(name, model, **{"lr": LRS[name], **kwargs})


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_baseline_covers_the_model_once_and_moves_it(name: str) -> None:
    """Each parameter is in exactly one group; two steps (SOAP's first only initialises) move every parameter."""
    model = _model()
    before = copy.deepcopy(model)
    opt = _build(name, model)
    ids = [id(p) for group in opt.param_groups for p in group["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    _train(model, [opt], _batches(2))
    for (label, p), q in zip(model.named_parameters(), before.parameters(), strict=True):
        assert torch.isfinite(p).all(), label
        assert not torch.equal(p, q), label


def test_muon_wrapper_equals_torch_muon_and_adamw_run_separately() -> None:
    """Four steps of make_optimizer("muon") = torch.optim.Muon + torch.optim.AdamW(fused) on the same split, bitwise."""
    model_a, model_b = _model(), _model()
    wrapper = make_optimizer("muon", model_a, lr=0.02, adam_lr=3e-3, weight_decay=0.1)
    hidden, rest = split_matrix_params(model_b)
    muon = torch.optim.Muon(hidden, lr=0.02, weight_decay=0.1, momentum=0.95, nesterov=True)
    adamw = torch.optim.AdamW(rest, lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    batches = _batches(4)
    _train(model_a, [wrapper], batches)
    _train(model_b, [muon, adamw], batches)
    for p, q, p0 in zip(model_a.parameters(), model_b.parameters(), _model().parameters(), strict=True):
        assert torch.equal(p, q)
        assert not torch.equal(p, p0)


def test_muon_routing_and_learning_rates() -> None:
    """Muon groups hold exactly split_matrix_params' hidden matrices at lr; the rest is AdamW at the default adam_lr."""
    model = _model()
    opt = make_optimizer("muon", model, lr=0.05)
    hidden, rest = split_matrix_params(model)
    by_flag = {g["use_muon"]: g for g in opt.param_groups}
    assert [id(p) for p in by_flag[True]["params"]] == [id(p) for p in hidden]
    assert [id(p) for p in by_flag[False]["params"]] == [id(p) for p in rest]
    assert by_flag[True]["lr"] == 0.05
    assert by_flag[False]["lr"] == DEFAULT_ADAM_LR
    assert [tuple(p.shape) for p in hidden] == [(12, 8), (8, 12)]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_one_lambda_lr_schedules_every_part(name: str) -> None:
    """LambdaLR to factor 0 after one step: every group's lr becomes 0 and the next step moves nothing."""
    model = _model()
    opt = _build(name, model)
    initial = [g["lr"] for g in opt.param_groups]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 if step == 0 else 0.0)
    batches = _batches(3)
    _train(model, [opt], batches[:2])
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == [0.0] * len(initial)
    frozen = copy.deepcopy(model)
    _train(model, [opt], batches[2:])
    for p, q in zip(model.parameters(), frozen.parameters(), strict=True):
        assert torch.equal(p, q)


def test_muon_wrapper_state_dict_resume_is_bit_identical(tmp_path: Path) -> None:
    """3 steps, save (weights_only load), fresh model and optimizer, 3 more = 6 straight steps, bitwise."""
    batches = _batches(6)
    straight = _model()
    opt = make_optimizer("muon", straight, lr=0.02, weight_decay=0.01)
    _train(straight, [opt], batches)

    first = _model()
    opt1 = make_optimizer("muon", first, lr=0.02, weight_decay=0.01)
    _train(first, [opt1], batches[:3])
    torch.save({"model": first.state_dict(), "opt": opt1.state_dict()}, tmp_path / "ckpt.pt")
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert set(ckpt["opt"]) == {"state", "param_groups"}  # torch's standard format
    resumed = _model()
    resumed.load_state_dict(ckpt["model"])
    opt2 = make_optimizer("muon", resumed, lr=0.02, weight_decay=0.01)
    opt2.load_state_dict(ckpt["opt"])
    _train(resumed, [opt2], batches[3:])
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        for key, value in opt.state[p].items():
            assert torch.equal(value, opt2.state[q][key])


def test_muon_wrapper_rejects_a_state_dict_with_other_groups() -> None:
    opt = make_optimizer("muon", _model(), lr=0.02)
    sd = opt.state_dict()
    sd["param_groups"] = sd["param_groups"][::-1]
    with pytest.raises(ValueError, match="use_muon"):
        opt.load_state_dict(sd)


class TestMuonWrapperContract:
    def test_add_param_group_routes_by_use_muon(self) -> None:
        """A new matrix goes to Muon (momentum_buffer), a new vector to AdamW (exp_avg); bad groups raise."""
        lin = nn.Linear(4, 4)
        opt = MuonWithAdamW([lin.weight], [lin.bias])
        extra_matrix, extra_vector = nn.Parameter(torch.ones(3, 5)), nn.Parameter(torch.ones(5))
        opt.add_param_group({"params": [extra_matrix], "use_muon": True, "lr": 0.01})
        opt.add_param_group({"params": [extra_vector], "use_muon": False})
        with pytest.raises(ValueError, match="use_muon=True"):
            opt.add_param_group({"params": [nn.Parameter(torch.ones(2, 2))]})
        with pytest.raises(ValueError, match="2-D"):
            opt.add_param_group({"params": [nn.Parameter(torch.ones(2))], "use_muon": True})
        with pytest.raises(ValueError, match="more than one"):
            opt.add_param_group({"params": [lin.bias], "use_muon": False})
        for p in (lin.weight, lin.bias, extra_matrix, extra_vector):
            p.grad = torch.ones_like(p)
        opt.step()
        assert set(opt.state[extra_matrix]) == {"momentum_buffer"}
        assert {"exp_avg", "exp_avg_sq", "step"} <= set(opt.state[extra_vector])
        assert [g["lr"] for g in opt.param_groups] == [0.02, DEFAULT_ADAM_LR, 0.01, DEFAULT_ADAM_LR]
        opt.zero_grad()
        assert all(p.grad is None for p in (lin.weight, lin.bias, extra_matrix, extra_vector))

    def test_closure_loss_is_returned(self) -> None:
        lin = nn.Linear(3, 2)
        opt = MuonWithAdamW([lin.weight], [lin.bias])

        def closure() -> float:
            opt.zero_grad()
            loss = lin(torch.ones(1, 3)).sum()
            loss.backward()
            return float(loss.detach())

        with torch.no_grad():
            expected = float(lin(torch.ones(1, 3)).sum())
        before = lin.weight.detach().clone()
        assert opt.step(closure) == pytest.approx(expected)
        assert not torch.equal(lin.weight, before)

    def test_a_model_without_hidden_matrices_gets_only_adamw(self) -> None:
        """Embedding + tied-size head only: split_matrix_params finds no hidden matrix; the AdamW part alone works."""
        model = nn.Sequential(nn.Embedding(16, 8), nn.Linear(8, 16))
        opt = make_optimizer("muon", model, lr=0.02)
        assert [g["use_muon"] for g in opt.param_groups] == [False]
        _train(model, [opt], _batches(1))

    def test_deepcopy_keeps_the_parts_linked(self) -> None:
        """A deep copy of model + optimizer continues exactly like the original (same result, bitwise)."""
        model = _model()
        opt = make_optimizer("muon", model, lr=0.02)
        batches = _batches(4)
        _train(model, [opt], batches[:2])
        model2, opt2 = copy.deepcopy((model, opt))
        _train(model, [opt], batches[2:])
        _train(model2, [opt2], batches[2:])
        for p, q in zip(model.parameters(), model2.parameters(), strict=True):
            assert torch.equal(p, q)

    def test_both_lists_empty_raise(self) -> None:
        with pytest.raises(ValueError, match="at least one parameter"):
            MuonWithAdamW([], [])


def test_adamw_uses_the_fused_kernel_on_cpu() -> None:
    opt = make_optimizer("adamw", _model(), lr=1e-3)
    assert all(g["fused"] for g in opt.param_groups)
    assert opt.param_groups[0]["betas"] == (0.9, 0.95)


def test_cosmos_hidden_step_has_per_entry_rms_lr() -> None:
    """make_optimizer("cosmos", lr=4e-3, adam_lr=2e-3): hidden steps have RMS exactly 4e-3 (1e-5 rel.), the
    AdamW part's first step is about adam_lr per entry, and gamma = lr_ratio = lr / adam_lr = 2."""
    model = _model()
    before = copy.deepcopy(model)
    opt = _build("cosmos", model, lr=4e-3, adam_lr=2e-3)
    assert all(g["lr"] == 2e-3 and g["lr_ratio"] == 2.0 and g["gamma"] == 2.0 for g in opt.param_groups)
    _train(model, [opt], _batches(1))
    hidden, _ = split_matrix_params(model)
    hidden_ids = {id(p) for p in hidden}
    for p, q in zip(model.parameters(), before.parameters(), strict=True):
        delta = (p - q).detach()
        if id(p) in hidden_ids:
            assert math.isclose(delta.square().mean().sqrt().item(), 4e-3, rel_tol=1e-5)
        else:
            assert math.isclose(delta.abs().max().item(), 2e-3, rel_tol=1e-3)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("sgd", {"lr": 1e-3}, "name must be one of adamw, muon, soap, cosmos, heavyball-soap, heavyball-muon"),
        ("adamw", {"lr": 0.0}, "lr must be a finite number > 0, got 0.0"),
        ("muon", {"lr": -1.0}, "lr must be a finite number > 0"),
        ("muon", {"lr": float("inf")}, "lr must be a finite number > 0"),
        ("muon", {"lr": 0.02, "adam_lr": 0.0}, "adam_lr must be a finite number > 0"),
        ("soap", {"lr": 1e-3, "weight_decay": -0.1}, "weight_decay must be a number >= 0"),
    ],
)
def test_make_optimizer_rejects_bad_input(name: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_optimizer(name, _model(), **kwargs)


@pytest.mark.skipif(HAS_HEAVYBALL, reason="heavyball is installed")
def test_heavyball_anchors_without_heavyball_say_how_to_install() -> None:
    assert available_optimizers() == OPTIMIZERS
    for name in ("heavyball-soap", "heavyball-muon"):
        with pytest.raises(ImportError, match=r"pip install 'cosmos-optim\[anchors\]'"):
            make_optimizer(name, _model(), lr=1e-3)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_HEAVYBALL, reason="needs the optional heavyball package")
@pytest.mark.parametrize("name", ["heavyball-soap", "heavyball-muon"])
def test_heavyball_anchors_step(name: str, monkeypatch: pytest.MonkeyPatch) -> None:  # pragma: no cover - optional
    """With heavyball installed, both anchors build over the whole model and take steps (eagerly: its
    default torch.compile costs about 30 s per shape on CPU)."""
    import heavyball.utils

    monkeypatch.setattr(heavyball.utils, "compile_mode", None)
    model = _model()
    opt = make_optimizer(name, model, lr=1e-3)
    before = copy.deepcopy(model)
    _train(model, [opt], _batches(2))
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), before.parameters(), strict=True))
