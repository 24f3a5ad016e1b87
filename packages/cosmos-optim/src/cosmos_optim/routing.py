"""Which parameters take the COSMOS path: the paper's split of a model into hidden matrices and the rest.

The paper trains the hidden 2-D weights of the transformer with COSMOS and the embeddings and
the output layer with Adam (its lr ``eta_0``); norms and biases are 1-D and take Adam too. The
authors' code decides by ``p.ndim == 2 and p.size(0) <= 10000``, which sends a small-vocabulary
embedding and head through COSMOS; here the decision is made from the module structure:

- COSMOS: the weight of every ``nn.Linear`` (and of every Hugging Face ``Conv1D``, with the
  subspace on ``size(0)``, its input side) except the output head, the q/k/v projection weights of
  ``nn.MultiheadAttention`` (fused ``in_proj_weight`` or separate); conv weights only with
  ``reshape_conv=True``.
- AdamW: ``nn.Embedding``/``nn.EmbeddingBag`` weights, the output head (a linear layer whose
  weight *is* an embedding's weight (tied), whose ``out_features`` equals an embedding's
  ``num_embeddings`` and which is the model's last linear layer, the last linear layer of a model
  without embeddings (VGG's ``classifier.6``, ResNet's ``fc``), or whose name ends in one of :data:`HEAD_NAMES`),
  every parameter with
  ``ndim != 2``, and any 2-D parameter that does not belong to a linear layer.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor, nn

HEAD_NAMES: frozenset[str] = frozenset({"lm_head", "head", "output", "classifier"})
"""Module names treated as the output head."""

COSMOS_PATH, TRANSPOSED_PATH, ADAMW_PATH = "cosmos", "cosmos (transposed)", "adamw"


def _is_head(name: str, head_names: frozenset[str]) -> bool:
    """``lm_head``, ``model.head``: the module's own name is a head name (``classifier.6`` is caught as
    the model's last linear layer instead, so that VGG's hidden ``classifier.0`` stays a matrix)."""
    return name.rsplit(".", 1)[-1] in head_names


def _route(
    model: nn.Module, *, reshape_conv: bool, head_names: frozenset[str] = HEAD_NAMES
) -> list[tuple[str, nn.Parameter, str]]:
    """``(name, parameter, path)`` for every distinct trainable parameter, in ``named_parameters`` order."""
    embeddings: set[int] = set()
    vocab_sizes: set[int] = set()
    for module in model.modules():
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
            embeddings.add(id(module.weight))
            vocab_sizes.add(module.num_embeddings)
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    last_linear = linears[-1] if linears else None
    path_of: dict[int, str] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):  # fused or separate q/k/v projections, (out, in) layout
            for attr in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
                weight = getattr(module, attr, None)
                if isinstance(weight, nn.Parameter) and weight.ndim == 2:
                    path_of[id(weight)] = COSMOS_PATH
            continue
        weight = getattr(module, "weight", None)
        if not isinstance(weight, nn.Parameter) or id(weight) in embeddings:
            continue
        if isinstance(module, nn.Linear):
            # The model's last linear layer is its output layer when its width is a vocabulary size, or
            # when the model has no embedding at all (a classifier or regressor head).
            last_is_head = name == last_linear and (module.out_features in vocab_sizes or not embeddings)
            is_head = _is_head(name, head_names) or last_is_head
            path_of[id(weight)] = ADAMW_PATH if is_head else COSMOS_PATH
        elif type(module).__name__ == "Conv1D" and weight.ndim == 2:  # Hugging Face GPT-2: stored (in, out)
            path_of[id(weight)] = ADAMW_PATH if _is_head(name, head_names) else TRANSPOSED_PATH
        elif isinstance(module, nn.modules.conv._ConvNd) and reshape_conv:
            path_of[id(weight)] = COSMOS_PATH
    routed: list[tuple[str, nn.Parameter, str]] = []
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if id(p) in seen or not p.requires_grad:
            continue
        seen.add(id(p))
        routed.append((name, p, path_of.get(id(p), ADAMW_PATH)))
    return routed


def split_matrix_params(
    model: nn.Module, *, reshape_conv: bool = False, head_names: frozenset[str] = HEAD_NAMES
) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(hidden matrices, the rest)`` by the rule of the module docstring (for Muon-style baselines).

    Hugging Face ``Conv1D`` weights count as matrices here; an optimizer that cares about their
    orientation should use :func:`cosmos_param_groups`.
    """
    routed = _route(model, reshape_conv=reshape_conv, head_names=head_names)
    return [p for _, p, path in routed if path != ADAMW_PATH], [p for _, p, path in routed if path == ADAMW_PATH]


def cosmos_param_groups(
    model: nn.Module,
    lr: float = 1e-3,
    *,
    reshape_conv: bool = False,
    head_names: frozenset[str] = HEAD_NAMES,
    adam_overrides: dict[str, Any] | None = None,
    **group_defaults: Any,
) -> list[dict[str, Any]]:
    """Param groups for :class:`cosmos_optim.COSMOS` that route the model the way the paper does.

    Args:
        model: any ``nn.Module``.
        lr: ``eta_0`` of every group (the hidden step is ``lr * lr_ratio``).
        reshape_conv: send conv weights through COSMOS as ``(out, in * kernel)`` matrices.
        head_names: module names that mark the output head (default :data:`HEAD_NAMES`).
        adam_overrides: extra keys for the AdamW group only (e.g. ``{"lr": 3e-3, "weight_decay": 0.0}``).
        **group_defaults: keys for every group (``rank``, ``lr_ratio``, ``gamma``, ``weight_decay``...).

    Returns:
        Up to three groups, each with ``params`` as ``(name, parameter)`` pairs (so that errors
        name the parameter) and ``use_cosmos``: the hidden matrices (``True``), Hugging Face
        ``Conv1D`` weights (``True``, ``transposed=True``) and the rest (``False``). Empty groups
        are left out.

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 4), torch.nn.Linear(4, 10))
        >>> [(g["use_cosmos"], g["params"][0][0]) for g in cosmos_param_groups(model)]
        [(True, '1.weight'), (False, '0.weight')]
    """
    routed = _route(model, reshape_conv=reshape_conv, head_names=head_names)
    groups: list[dict[str, Any]] = []
    plain = [(n, p) for n, p, path in routed if path == COSMOS_PATH]
    transposed = [(n, p) for n, p, path in routed if path == TRANSPOSED_PATH]
    rest = [(n, p) for n, p, path in routed if path == ADAMW_PATH]
    if plain:
        groups.append({**group_defaults, "params": plain, "lr": lr, "use_cosmos": True, "reshape_conv": reshape_conv})
    if transposed:
        groups.append({**group_defaults, "params": transposed, "lr": lr, "use_cosmos": True, "transposed": True})
    if rest:
        groups.append({**group_defaults, "params": rest, "lr": lr, "use_cosmos": False, **(adam_overrides or {})})
    return groups


def explain_routing(model: nn.Module, *, rank: int = 64, reshape_conv: bool = False, dtype_bytes: int = 4) -> str:
    """A table of every parameter: name, shape, path, effective rank and optimizer-state bytes.

    State bytes are those :class:`cosmos_optim.COSMOS` allocates: ``mn + nr + r^2 + mr`` on the
    COSMOS path (``M, U, S, V``), ``2 * numel`` on the AdamW path (``exp_avg``, ``exp_avg_sq``).
    """
    rows = [("name", "shape", "path", "rank", "state bytes")]
    total = 0
    for name, p, path in _route(model, reshape_conv=reshape_conv):
        r_text = "-"
        if path == ADAMW_PATH:
            count = 2 * p.numel()
        else:
            m, n = _matrix_shape(p, transposed=path == TRANSPOSED_PATH)
            r = min(rank, m, n)
            r_text = str(r)
            count = m * n + n * r + r * r + m * r
        total += count * dtype_bytes
        rows.append((name, "x".join(map(str, p.shape)), path, r_text, f"{count * dtype_bytes:,}"))
    rows.append(("total", "", "", "", f"{total:,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _matrix_shape(p: Tensor, *, transposed: bool = False) -> tuple[int, int]:
    m = p.shape[0]
    n = math.prod(p.shape[1:])
    return (n, m) if transposed else (m, n)
