"""Tests of the paper's parameter routing: hidden matrices to COSMOS, the rest to AdamW."""

from __future__ import annotations

import torch
from torch import nn

from cosmos_optim import COSMOS, cosmos_param_groups, explain_routing, split_matrix_params


class Conv1D(nn.Module):
    """Stand-in with the name and layout of Hugging Face's GPT-2 ``Conv1D``: weight (in, out)."""

    def __init__(self, n_out: int, n_in: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight + self.bias


class Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.attn = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(3 * d, d)
        self.c_fc = Conv1D(2 * d, d)


class GPTish(nn.Module):
    def __init__(self, vocab: int = 50, d: int = 8, tied: bool = True) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(16, d)
        self.blocks = nn.ModuleList([Block(d), Block(d)])
        self.ln_f = nn.LayerNorm(d)
        self.out = nn.Linear(d, vocab, bias=False)
        if tied:
            self.out.weight = self.wte.weight


def _names(groups: list[dict[str, object]], use_cosmos: bool, transposed: bool = False) -> set[str]:
    out: set[str] = set()
    for g in groups:
        if g["use_cosmos"] is use_cosmos and bool(g.get("transposed", False)) is transposed:
            out |= {name for name, _ in g["params"]}  # type: ignore[attr-defined]
    return out


def test_gpt_routing_follows_the_paper() -> None:
    model = GPTish()
    groups = cosmos_param_groups(model, lr=2e-3, rank=4)
    hidden = {f"blocks.{i}.{n}.weight" for i in range(2) for n in ("attn", "proj")}
    assert _names(groups, True) == hidden
    assert _names(groups, True, transposed=True) == {"blocks.0.c_fc.weight", "blocks.1.c_fc.weight"}
    rest = _names(groups, False)
    assert "wte.weight" in rest
    assert "wpe.weight" in rest
    assert "ln_f.weight" in rest
    assert "out.weight" not in rest  # tied: the same tensor as wte.weight, listed once
    every = {n for n, _ in model.named_parameters()}
    assert hidden | _names(groups, True, True) | rest == every
    assert all(g["lr"] == 2e-3 and g["rank"] == 4 for g in groups)


def test_untied_head_is_found_by_vocabulary_size_and_by_name() -> None:
    model = GPTish(tied=False)
    # The last linear layer with out_features == vocabulary size; the MLP's c_fc (out 16 == the
    # number of positions of wpe) is not mistaken for a head.
    groups = cosmos_param_groups(model)
    assert "out.weight" in _names(groups, False)
    assert "blocks.1.c_fc.weight" in _names(groups, True, transposed=True)
    head = nn.Sequential()
    head.add_module("body", nn.Linear(4, 4))
    head.add_module("classifier", nn.Linear(4, 3))
    matrices, rest = split_matrix_params(head)
    assert matrices == [head.body.weight]
    assert any(p is head.classifier.weight for p in rest)


def test_adam_overrides_touch_only_the_adam_group() -> None:
    groups = cosmos_param_groups(GPTish(), lr=1e-3, weight_decay=0.1, adam_overrides={"weight_decay": 0.0, "lr": 3e-3})
    adam = next(g for g in groups if g["use_cosmos"] is False)
    cosmos = next(g for g in groups if g["use_cosmos"] is True)
    assert adam["weight_decay"] == 0.0
    assert adam["lr"] == 3e-3
    assert cosmos["weight_decay"] == 0.1
    assert cosmos["lr"] == 1e-3


def test_groups_build_an_optimizer_that_steps() -> None:
    model = GPTish()
    opt = COSMOS(cosmos_param_groups(model, rank=2))
    x = model.wte(torch.randint(0, 50, (3, 5)))
    for block in model.blocks:
        x = block.proj(block.attn(block.ln(x))) + block.c_fc(x)[..., :8]
    model.out(model.ln_f(x)).square().mean().backward()
    opt.step()
    assert opt.state[model.blocks[0].c_fc.weight]["U"].shape == (8, 2)  # input side of a (in=8, out=16) Conv1D
    assert opt.state[model.blocks[0].attn.weight]["U"].shape == (8, 2)
    assert "exp_avg_sq" in opt.state[model.wte.weight]


def test_explain_routing_lists_every_parameter_with_its_state_bytes() -> None:
    model = GPTish()
    text = explain_routing(model, rank=4)
    lines = text.splitlines()
    assert len(lines) == 2 + len({id(p) for p in model.parameters()})
    attn = next(line for line in lines if line.startswith("blocks.0.attn.weight"))
    m, n, r = 24, 8, 4
    assert attn.split()[-1] == f"{4 * (m * n + n * r + r * r + m * r):,}"
    assert "cosmos" in attn
    assert lines[-1].startswith("total")


def test_multihead_attention_projections_take_cosmos() -> None:
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, batch_first=True)
    model = nn.Sequential(nn.Embedding(20, 16), layer, nn.Linear(16, 20))
    groups = cosmos_param_groups(model)
    hidden = _names(groups, True)
    assert "1.self_attn.in_proj_weight" in hidden  # the fused q/k/v (3d, d), not a nn.Linear
    assert "1.self_attn.out_proj.weight" in hidden
    assert {"1.linear1.weight", "1.linear2.weight"} <= hidden
    assert "2.weight" in _names(groups, False)  # last linear, out_features = vocabulary


def test_classifier_heads_without_embeddings_take_adamw() -> None:
    # A CNN's "fc" (last linear, no embedding) and a VGG-style "classifier.2" are heads.
    cnn = nn.Sequential()
    cnn.add_module("conv", nn.Conv2d(3, 8, 3))
    cnn.add_module("hidden", nn.Linear(8, 8))
    cnn.add_module("fc", nn.Linear(8, 10))
    matrices, _ = split_matrix_params(cnn)
    assert [p is cnn.hidden.weight for p in matrices] == [True]
    vgg = nn.Module()
    vgg.features = nn.Linear(4, 4)
    vgg.classifier = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    groups = cosmos_param_groups(vgg)
    assert _names(groups, True) == {"features.weight", "classifier.0.weight"}
    assert "classifier.2.weight" in _names(groups, False)
    # A user's own head name.
    assert "features.weight" in _names(cosmos_param_groups(vgg, head_names=frozenset({"features"})), False)
