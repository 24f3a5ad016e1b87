r"""SMURF-THP's networks: the THP encoder, the intensity-parameterised score head and the time-conditioned type head.

Encoder (Zuo et al. 2020, the official ``transformer/Layers.py``): ``x_j = Emb(k_j)`` plus the temporal encoding
``z(t_j)_i = sin(t_j / 10000^{2⌊i/2⌋/d})`` (even ``i``) / ``cos(...)`` (odd ``i``) of the **absolute** time, added
**before every layer**; post-LN blocks (multi-head self-attention without QKV bias + residual + LayerNorm(1e-6),
then a GELU feed-forward + residual + LayerNorm), causal and key-padding masks. ``h_j`` has seen event ``j`` and
conditions event ``j + 1``.

Time head (the official ``intensity_encode``): with ``a_j = tanh(W_a h_j + b_a)``, ``b_j = W_b h_j + b_b`` in
``R^D`` and one ground intensity

.. math::
    \lambda(\tau \mid h_j) = \operatorname{softplus}\big(w^\top \tanh(a_j \tau + b_j) + c\big), \qquad
    p(\tau \mid h_j) = \lambda(\tau) e^{-\int_0^\tau \lambda}, \qquad
    s(\tau) = \partial_\tau \log p = \frac{\partial_\tau \lambda(\tau)}{\lambda(\tau)} - \lambda(\tau)

with the closed form ``∂τ λ = σ(z) Σ_i w_i a_i (1 − tanh²(a_i τ + b_i))`` (``z`` the softplus argument), so no
integral and no autograd is needed; :meth:`IntensityScoreHead.score_autograd` is the checked fallback.

Type head (``Predictor_with_time``): ``logits(k | τ, h_j) = W_c tanh(tanh(W_a' h_j) τ + W_b' h_j)``, hidden
``d_model / 2``, so types are classified conditionally on the time.

Note:
    ``τ`` here is whatever space the caller trains in (the package normalises gaps, log by default); the density
    and score are then those of the normalised gap, as in the official code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["IntensityScoreHead", "THPEncoder", "TimeTypeHead", "temporal_encoding"]


def temporal_encoding(times: Tensor, d_model: int) -> Tensor:
    """THP's sinusoidal encoding of absolute times: ``(..., L) -> (..., L, d_model)``.

    Example:
        >>> [round(v, 3) for v in temporal_encoding(torch.tensor([[0.0, 1.0]]), 4)[0, 1].tolist()]
        [0.841, 0.54, 0.01, 1.0]
    """
    i = torch.arange(d_model, device=times.device, dtype=torch.float32)
    position_vec = torch.pow(10000.0, 2.0 * torch.div(i, 2, rounding_mode="floor") / d_model)
    angles = times.unsqueeze(-1).float() / position_vec
    return torch.where(i % 2 == 0, torch.sin(angles), torch.cos(angles))


class _SelfAttention(nn.Module):
    def __init__(self, d_model: int, n_head: int, d_k: int, d_v: int, dropout: float) -> None:
        super().__init__()
        self.n_head, self.d_k, self.d_v = n_head, d_k, d_v
        self.w_qs = nn.Linear(d_model, n_head * d_k, bias=False)
        self.w_ks = nn.Linear(d_model, n_head * d_k, bias=False)
        self.w_vs = nn.Linear(d_model, n_head * d_v, bias=False)
        self.fc = nn.Linear(n_head * d_v, d_model)
        for lin in (self.w_qs, self.w_ks, self.w_vs, self.fc):
            nn.init.xavier_uniform_(lin.weight)
        self.attn_dropout = nn.Dropout(dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        B, L, _ = x.shape
        q = self.w_qs(x).view(B, L, self.n_head, self.d_k).transpose(1, 2)  # (B, H, L, d_k)
        k = self.w_ks(x).view(B, L, self.n_head, self.d_k).transpose(1, 2)
        v = self.w_vs(x).view(B, L, self.n_head, self.d_v).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_k)  # (B, H, L, L)
        scores = scores.masked_fill(~allowed.unsqueeze(1), -1e9)
        attn = self.attn_dropout(torch.softmax(scores, dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(B, L, self.n_head * self.d_v)
        result: Tensor = self.dropout(self.fc(out))
        return result


class _EncoderLayer(nn.Module):
    def __init__(self, d_model: int, d_inner: int, n_head: int, d_k: int, d_v: int, dropout: float) -> None:
        super().__init__()
        self.attn = _SelfAttention(d_model, n_head, d_k, d_v, dropout)
        self.norm1 = nn.LayerNorm(d_model, eps=1e-6)
        self.w1 = nn.Linear(d_model, d_inner)
        self.w2 = nn.Linear(d_inner, d_model)
        self.norm2 = nn.LayerNorm(d_model, eps=1e-6)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, allowed: Tensor, keep: Tensor) -> Tensor:
        x = self.norm1(x + self.attn(x, allowed)) * keep
        y = self.w2(self.dropout(F.gelu(self.w1(x))))
        result: Tensor = self.norm2(x + self.dropout(y)) * keep
        return result


class THPEncoder(nn.Module):
    """The Transformer Hawkes process encoder: event sequences ``(B, L)`` -> hidden states ``(B, L, d_model)``.

    Args:
        num_types: ``K`` (types are 0-based; the embedding shifts them by one and keeps index 0 for padding).
        d_model, d_inner, n_layers, n_head, d_k, d_v, dropout: the THP sizes (official defaults 64, 128, 4, 4, 16,
            16, 0.1).

    Raises:
        ValueError: a size < 1 or a dropout outside [0, 1).

    Example:
        >>> enc = THPEncoder(3, d_model=8, d_inner=16, n_layers=1, n_head=2, d_k=4, d_v=4)
        >>> types = torch.tensor([[0, 2, -1]])
        >>> times = torch.tensor([[0.5, 1.0, 0.0]])
        >>> enc(types, times, types >= 0).shape
        torch.Size([1, 3, 8])
    """

    def __init__(self, num_types: int, d_model: int = 64, d_inner: int = 128, n_layers: int = 4, n_head: int = 4,
                 d_k: int = 16, d_v: int = 16, dropout: float = 0.1) -> None:  # fmt: skip
        super().__init__()
        for name, value in (("num_types", num_types), ("d_model", d_model), ("d_inner", d_inner),
                            ("n_layers", n_layers), ("n_head", n_head), ("d_k", d_k), ("d_v", d_v)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.num_types, self.d_model = num_types, d_model
        self.type_emb = nn.Embedding(num_types + 1, d_model, padding_idx=0)
        self.layers = nn.ModuleList(_EncoderLayer(d_model, d_inner, n_head, d_k, d_v, dropout) for _ in range(n_layers))

    def forward(self, types: Tensor, times: Tensor, mask: Tensor) -> Tensor:
        """Hidden states ``h`` (zero at padded positions).

        Args:
            types: ``(B, L)`` 0-based types (any value at padded positions).
            times: ``(B, L)`` absolute event times.
            mask: ``(B, L)`` True at real events (each row's real events first).
        """
        L = types.shape[1]
        keep = mask.unsqueeze(-1).float()
        causal = torch.ones(L, L, dtype=torch.bool, device=types.device).tril()
        allowed = causal.unsqueeze(0) & mask.unsqueeze(1)  # (B, L, L): key j <= query i and j is real
        allowed = allowed | torch.eye(L, dtype=torch.bool, device=types.device).unsqueeze(0)  # no empty row
        x: Tensor = self.type_emb(torch.where(mask, types + 1, torch.zeros_like(types)))
        z = temporal_encoding(times, self.d_model) * keep
        for layer in self.layers:
            x = layer(x + z, allowed, keep)
        return x


class IntensityScoreHead(nn.Module):
    r"""``λ(τ|h) = softplus(wᵀ tanh(a(h) τ + b(h)) + c)`` and its score ``s(τ) = ∂τ log λ − λ`` in closed form.

    Args:
        d_model: size of ``h``.
        d_hidden: ``D`` (official: ``d_model``).

    Shapes: ``h (..., d_model)`` with ``τ (..., M)`` (M values per event) give ``(..., M)``.

    Example:
        >>> head = IntensityScoreHead(4, 3)
        >>> h, tau = torch.randn(2, 4), torch.rand(2, 5)
        >>> torch.allclose(head.score(h, tau), head.score_autograd(h, tau), atol=1e-5)
        True
    """

    def __init__(self, d_model: int, d_hidden: int | None = None) -> None:
        super().__init__()
        D = d_hidden or d_model
        self.a = nn.Linear(d_model, D)
        self.b = nn.Linear(d_model, D)
        self.w = nn.Parameter(torch.randn(D) / math.sqrt(D))
        self.c = nn.Parameter(torch.zeros(()))

    def _parts(self, h: Tensor, tau: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        a = torch.tanh(self.a(h)).unsqueeze(-2)  # (..., 1, D)
        b = self.b(h).unsqueeze(-2)
        t = torch.tanh(a * tau.unsqueeze(-1) + b)  # (..., M, D)
        z = t @ self.w + self.c  # (..., M)
        return z, t, a

    def intensity(self, h: Tensor, tau: Tensor) -> Tensor:
        """``λ(τ | h)``, shape ``(..., M)``."""
        return F.softplus(self._parts(h, tau)[0])

    def score(self, h: Tensor, tau: Tensor, *, semi: bool = False) -> Tensor:
        """``s(τ) = ∂τλ/λ − λ`` in closed form; ``semi=True`` detaches ``∂τ log λ`` from the parameters.

        ``semi`` reproduces the official code, whose ``autograd.grad`` lacks ``create_graph=True``: its DSM gradient
        then flows only through the ``−λ`` term (spec §1.10, defect 1).
        """
        z, t, a = self._parts(h, tau)
        lam = F.softplus(z)
        dz = ((1.0 - t * t) * a) @ self.w  # ∂τ z
        ratio = torch.where(z < -30.0, torch.ones_like(z), torch.sigmoid(z) / lam.clamp_min(1e-30))  # σ(z)/softplus(z)
        dlog = dz * ratio
        if semi:
            dlog = dlog.detach()
        return dlog - lam

    def score_autograd(self, h: Tensor, tau: Tensor, create_graph: bool = True) -> Tensor:
        """``∂τ log λ`` by autograd, minus ``λ`` (the checked fallback; slower; ``create_graph=False`` is the
        official semi-gradient)."""
        tau = tau.detach().requires_grad_(True)
        lam = self.intensity(h, tau)
        (dlog,) = torch.autograd.grad(torch.log(lam).sum(), tau, create_graph=create_graph)
        return dlog - lam

    def dscore_dtau(self, h: Tensor, tau: Tensor) -> tuple[Tensor, Tensor]:
        """``(s(τ), ∂τ s(τ))`` with a graph to the parameters (for the Hyvärinen objective)."""
        tau = tau.detach().requires_grad_(True)
        s = self.score(h, tau)
        (ds,) = torch.autograd.grad(s.sum(), tau, create_graph=True)
        return s, ds


class TimeTypeHead(nn.Module):
    """``logits(k | τ, h) = W_c tanh(tanh(W_a h) τ + W_b h)``: ``h (..., d)`` and ``τ (..., M)`` -> ``(..., M, K)``.

    Example:
        >>> TimeTypeHead(4, 3)(torch.randn(2, 4), torch.rand(2, 5)).shape
        torch.Size([2, 5, 3])
    """

    def __init__(self, d_model: int, num_types: int, d_hidden: int | None = None) -> None:
        super().__init__()
        H = d_hidden or max(1, d_model // 2)
        self.a = nn.Linear(d_model, H, bias=False)
        self.b = nn.Linear(d_model, H, bias=False)
        self.out = nn.Linear(H, num_types, bias=False)

    def forward(self, h: Tensor, tau: Tensor) -> Tensor:
        a = torch.tanh(self.a(h)).unsqueeze(-2)
        b = self.b(h).unsqueeze(-2)
        logits: Tensor = self.out(torch.tanh(a * tau.unsqueeze(-1) + b))
        return logits
