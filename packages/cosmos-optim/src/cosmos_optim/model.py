"""A small pre-LN GPT (nanoGPT-like) for the benchmarks, the demo and ``cosmos-optim train``.

Token and learned position embeddings, ``n_layer`` blocks of causal self-attention and a 4·d GELU MLP,
each behind a LayerNorm with a residual connection, a final LayerNorm, and an output head tied to the
token embedding by default. Every weight matrix is an ``nn.Linear`` (``(out, in)``, as the optimizers
expect), every other parameter is 1-D or an embedding, so the routing of
:func:`cosmos_optim.routing.cosmos_param_groups` applies unchanged.

Note:
    Q, K and V are three separate ``d×d`` projections, not nanoGPT's fused ``3d×d`` ``c_attn``: the
    matrix optimizers (Muon, SOAP, COSMOS) then see the same shapes as in the paper's LLaMA models and in
    the spec's memory formulas (q, k, v, o d×d + fc 4d×d + proj d×4d), and no fused-QKV split is needed.
    The position embedding is a plain ``(block_size, d)`` parameter rather than an ``nn.Embedding``, so
    that no routing rule that recognises an output head by ``out_features == num_embeddings`` can
    mistake the ``d×d`` projections for heads when ``block_size == d`` (as in the default 128/128).
    Biases are off by default (LLaMA; nanoGPT's ``bias=False`` option). There is no dropout: the runs
    are short and the comparison is between optimizers, not regularisers.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    """Shape of a :class:`GPT` (defaults: the spec §6 benchmark model, 0.82 M parameters at 104 symbols)."""

    vocab_size: int
    """number of token ids (character vocabulary plus the unknown symbol)."""
    block_size: int = 128
    """longest sequence the position embedding covers (the training sequence length)."""
    n_layer: int = 4
    """number of transformer blocks."""
    n_head: int = 4
    """attention heads per block; must divide ``d_model``."""
    d_model: int = 128
    """residual stream width d."""
    bias: bool = False
    """biases in the linear layers and LayerNorms (nanoGPT's option; off as in LLaMA)."""
    tie_weights: bool = True
    """the output head shares the token embedding matrix (nanoGPT, GPT-2)."""

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "d_model"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model must be divisible by n_head, got d_model={self.d_model}, n_head={self.n_head}")
        for name in ("bias", "tie_weights"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")


def parameter_shapes(config: GPTConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every distinct parameter of ``GPT(config)``, computed without building it.

    Args:
        config: the model shape.

    Returns:
        The names of :meth:`GPT.named_parameters` (a tied head is listed once, as ``wte.weight``)
        with their shapes; the 2-D ``blocks.*`` entries are the hidden matrices.

    Example:
        >>> shapes = parameter_shapes(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, d_model=4))
        >>> shapes["blocks.0.mlp.fc.weight"], sum(math.prod(s) for s in shapes.values())
        ((16, 4), 276)
    """
    d, v = config.d_model, config.vocab_size
    shapes: dict[str, tuple[int, ...]] = {"wte.weight": (v, d), "wpe": (config.block_size, d)}

    def add(name: str, shape: tuple[int, ...], bias_size: int) -> None:
        shapes[f"{name}.weight"] = shape
        if config.bias:
            shapes[f"{name}.bias"] = (bias_size,)

    for i in range(config.n_layer):
        p = f"blocks.{i}"
        add(f"{p}.ln1", (d,), d)
        for proj in ("q", "k", "v", "o"):
            add(f"{p}.attn.{proj}", (d, d), d)
        add(f"{p}.ln2", (d,), d)
        add(f"{p}.mlp.fc", (4 * d, d), 4 * d)
        add(f"{p}.mlp.proj", (d, 4 * d), d)
    add("ln_f", (d,), d)
    if not config.tie_weights:
        shapes["lm_head.weight"] = (v, d)
    return shapes


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with separate Q, K, V and output projections."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        d = config.d_model
        self.n_head = config.n_head
        self.q = nn.Linear(d, d, bias=config.bias)
        self.k = nn.Linear(d, d, bias=config.bias)
        self.v = nn.Linear(d, d, bias=config.bias)
        self.o = nn.Linear(d, d, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, D) -> (B, T, D)``."""
        b, t, d = x.shape
        h = self.n_head
        # (B, T, D) -> (B, H, T, D/H)
        q, k, v = (proj(x).view(b, t, h, d // h).transpose(1, 2) for proj in (self.q, self.k, self.v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out: torch.Tensor = self.o(y.transpose(1, 2).reshape(b, t, d))  # (B, H, T, D/H) -> (B, T, D)
        return out


class MLP(nn.Module):
    """``Linear(d, 4d)`` -> GELU -> ``Linear(4d, d)``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, 4 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(4 * config.d_model, config.d_model, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, D) -> (B, T, D)``."""
        out: torch.Tensor = self.proj(F.gelu(self.fc(x)))
        return out


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, D) -> (B, T, D)``."""
        x = x + self.attn(self.ln1(x))
        out: torch.Tensor = x + self.mlp(self.ln2(x))
        return out


class GPT(nn.Module):
    """A pre-LN GPT language model with a deterministic initialisation.

    Initialisation (nanoGPT / GPT-2): every linear and embedding weight ~ N(0, 0.02²), the two residual
    output projections of each block (``attn.o``, ``mlp.proj``) ~ N(0, (0.02/sqrt(2·n_layer))²), biases
    zero, LayerNorm weights one. All draws come from ``generator`` in module order, so a seed fixes the
    model bit for bit.

    Args:
        config: the model shape.
        generator: CPU ``torch.Generator`` for the initial weights; ``seed`` is used when it is None.
        seed: seed of a fresh generator when ``generator`` is None (default 0).

    Example:
        >>> cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, d_model=16)
        >>> logits, loss = GPT(cfg, seed=0)(torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 8, dtype=torch.long))
        >>> tuple(logits.shape), loss.ndim
        ((2, 8, 11), 0)
    """

    def __init__(self, config: GPTConfig, generator: torch.Generator | None = None, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        self.wpe = nn.Parameter(torch.empty(config.block_size, config.d_model))
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model, bias=config.bias)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight
        self.reset_parameters(generator if generator is not None else torch.Generator().manual_seed(seed))

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Draw every weight afresh from ``generator`` (see the class docstring for the scheme)."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        _normal(self.wpe, 0.02, generator)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                if module is self.lm_head and self.config.tie_weights:
                    continue  # shares wte.weight, drawn with the embedding
                std = residual_std if name.endswith(("attn.o", "mlp.proj")) else 0.02
                _normal(module.weight, std, generator)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Embedding):
                _normal(module.weight, 0.02, generator)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                if module.bias is not None:
                    module.bias.zero_()

    def num_parameters(self) -> int:
        """Number of distinct parameters (a tied head counted once)."""
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Next-token logits and, with ``targets``, the mean cross-entropy.

        Args:
            idx: ``(B, T)`` token ids in ``[0, vocab_size)``, ``T <= block_size``.
            targets: optional ``(B, T)`` next-token ids.

        Returns:
            ``(logits (B, T, V), loss)``; ``loss`` is a scalar in nats per token, or None without targets.

        Raises:
            ValueError: ``idx`` is not 2-D or longer than ``block_size``.
        """
        if idx.dim() != 2:
            raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}")
        t = idx.size(1)
        if t > self.config.block_size:
            raise ValueError(f"sequence length {t} exceeds block_size {self.config.block_size}")
        x = self.wte(idx) + self.wpe[:t]  # (B, T, D) + (T, D)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())  # (B·T, V) vs (B·T,)
        return logits, loss


def _normal(weight: torch.Tensor, std: float, generator: torch.Generator) -> None:
    """Fill ``weight`` in place with N(0, std²) drawn on the CPU from ``generator`` (device independent)."""
    weight.copy_(torch.randn(weight.shape, generator=generator, dtype=torch.float32) * std)
