"""Tests of the small pre-LN GPT: shapes, tying, deterministic init, causality, attention and loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cosmos_optim.model import GPT, GPTConfig, parameter_shapes

TINY = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, d_model=16)


def _closed_form_count(c: GPTConfig) -> int:
    # By hand: embeddings V·d + T·d; per block 4 d² (q, k, v, o) + 8 d² (fc, proj) + 2 d (two LayerNorm
    # weights), plus 9 d of linear biases and 2 d of LayerNorm biases with bias=True; final LayerNorm d (+ d);
    # an untied head adds V·d.
    d = c.d_model
    per_block = 12 * d * d + 2 * d + (11 * d if c.bias else 0)
    total = c.vocab_size * d + c.block_size * d + c.n_layer * per_block + d * (2 if c.bias else 1)
    return total + (0 if c.tie_weights else c.vocab_size * d)


@pytest.mark.parametrize(
    "config",
    [TINY, GPTConfig(vocab_size=7, block_size=4, n_layer=1, n_head=4, d_model=8, bias=True, tie_weights=False)],
)
def test_parameter_shapes_match_the_built_model_and_the_closed_form(config: GPTConfig) -> None:
    model = GPT(config)
    built = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert parameter_shapes(config) == built
    assert model.num_parameters() == _closed_form_count(config)
    assert sum(math.prod(s) for s in parameter_shapes(config).values()) == _closed_form_count(config)


def test_default_benchmark_model_has_the_spec_size() -> None:
    # Spec §6: d=128, 4 layers, 104 symbols -> about 0.82 M parameters (closed form: 817,280).
    assert GPT(GPTConfig(vocab_size=104)).num_parameters() == 817_280


def test_head_is_tied_to_the_token_embedding_by_default() -> None:
    tied = GPT(TINY)
    assert tied.lm_head.weight is tied.wte.weight
    untied = GPT(GPTConfig(**{**TINY.__dict__, "tie_weights": False}))
    assert untied.lm_head.weight is not untied.wte.weight


def test_init_is_a_function_of_the_seed() -> None:
    a, b, c = GPT(TINY, seed=3), GPT(TINY, generator=torch.Generator().manual_seed(3)), GPT(TINY, seed=4)
    for (name, p), q, r in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
        if "ln" not in name:  # LayerNorm weights are ones for every seed
            assert not torch.equal(p, r), name


def test_init_scales_follow_the_gpt2_scheme() -> None:
    # Empirical std over 64·256 entries is within 3 % of the target (its relative s.e. is about 0.6 %).
    model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=4, n_head=4, d_model=64), seed=0)
    fc = torch.cat([b.mlp.fc.weight.detach().flatten() for b in model.blocks])  # type: ignore[union-attr]
    proj = torch.cat([b.mlp.proj.weight.detach().flatten() for b in model.blocks])  # type: ignore[union-attr]
    assert float(fc.std()) == pytest.approx(0.02, rel=0.03)
    assert float(proj.std()) == pytest.approx(0.02 / math.sqrt(2 * 4), rel=0.03)
    assert torch.equal(model.ln_f.weight, torch.ones(64))


def test_initial_loss_is_close_to_log_vocab() -> None:
    # Weights of scale 0.02 give near-uniform predictions: loss ≈ ln V (closed form for uniform logits).
    # Targets are drawn independently of the inputs (with a tied head, the input token itself scores higher).
    model = GPT(TINY, seed=0)
    gen = torch.Generator().manual_seed(0)
    idx, tgt = torch.randint(0, 13, (64, 8), generator=gen), torch.randint(0, 13, (64, 8), generator=gen)
    _, loss = model(idx, tgt)
    assert loss is not None
    assert loss.item() == pytest.approx(math.log(13), abs=0.05)


def test_loss_equals_the_mean_negative_log_likelihood() -> None:
    # F.cross_entropy inside forward against a gather over log_softmax done here.
    model = GPT(TINY, seed=1)
    gen = torch.Generator().manual_seed(1)
    idx, tgt = torch.randint(0, 13, (3, 8), generator=gen), torch.randint(0, 13, (3, 8), generator=gen)
    logits, loss = model(idx, tgt)
    assert loss is not None
    nll = -F.log_softmax(logits.double(), dim=-1).gather(-1, tgt.unsqueeze(-1)).mean()
    assert loss.item() == pytest.approx(nll.item(), rel=1e-6)
    assert model(idx)[1] is None


def test_model_is_causal() -> None:
    # Changing token t must leave the logits of positions < t exactly unchanged.
    model = GPT(TINY, seed=2)
    idx = torch.randint(0, 13, (2, 8), generator=torch.Generator().manual_seed(2))
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 13
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6, rtol=0)
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_attention_equals_a_naive_masked_softmax() -> None:
    # scaled_dot_product_attention against an explicit per-head loop in float64.
    torch.manual_seed(0)
    model = GPT(TINY, seed=5).double()
    attn = model.blocks[0].attn  # type: ignore[union-attr]
    x = torch.randn(2, 8, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    out = attn(x)
    q, k, v = attn.q(x), attn.k(x), attn.v(x)  # type: ignore[operator]
    heads = []
    for h in range(2):
        sl = slice(8 * h, 8 * (h + 1))
        scores = q[..., sl] @ k[..., sl].transpose(1, 2) / math.sqrt(8)
        scores = scores.masked_fill(torch.ones(8, 8).triu(1).bool(), -math.inf)
        heads.append(torch.softmax(scores, dim=-1) @ v[..., sl])
    expected = attn.o(torch.cat(heads, dim=-1))  # type: ignore[operator]
    assert torch.allclose(out, expected, atol=1e-12, rtol=0)


def test_sequence_longer_than_block_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="exceeds block_size 8"):
        GPT(TINY)(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"idx must have shape \(B, T\)"):
        GPT(TINY)(torch.zeros(9, dtype=torch.long))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vocab_size": 0}, "vocab_size must be an integer >= 1, got 0"),
        ({"vocab_size": 5, "d_model": 10, "n_head": 3}, "d_model must be divisible by n_head"),
        ({"vocab_size": 5, "n_layer": 2.0}, "n_layer must be an integer >= 1, got 2.0"),
        ({"vocab_size": 5, "bias": 1}, "bias must be a bool"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GPTConfig(**kwargs)  # type: ignore[arg-type]
