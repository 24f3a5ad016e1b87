"""Tests for cosmos_optim.soap: SOAP against a NumPy transcription, against AdamW, and its optimizer contract."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from cosmos_optim.soap import SOAP, eigenbasis, refresh_eigenbasis, rotate, unrotate

F64 = torch.float64
GradFn = Callable[[np.ndarray, int], np.ndarray]


def _least_squares(m: int, n: int) -> tuple[np.ndarray, GradFn]:
    """W0 and the gradient of f(W) = ||A W B - C||^2 / 2, with A (5, m), B (n, n), C (5, n) fixed."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, m)), rng.standard_normal((n, n)) + 2 * np.eye(n)
    c, w0 = rng.standard_normal((5, n)), rng.standard_normal((m, n))
    return w0, lambda w, k: a.T @ (a @ w @ b - c) @ b.T


def _shifting_curvature(m: int, n: int) -> tuple[np.ndarray, GradFn]:
    """W0 and G_k = D_k (W - W*) E_k whose curvature order reverses at k = 4, so the refresh must reorder V."""
    rng = np.random.default_rng(1)
    w0, target = rng.standard_normal((m, n)), rng.standard_normal((m, n))
    d, e = np.geomspace(5.0, 0.2, m), np.geomspace(3.0, 0.3, n)

    def grad(w: np.ndarray, k: int) -> np.ndarray:
        dk, ek = (d, e) if k < 4 else (d[::-1], e[::-1])
        return np.diag(dk) @ (w - target) @ np.diag(ek) + 0.1 * np.cos(k + np.arange(m * n)).reshape(m, n)

    return w0, grad


def _numpy_soap(
    w0: np.ndarray,
    grad: GradFn,
    steps: int,
    *,
    lr: float,
    betas: tuple[float, float],
    shampoo_beta: float,
    eps: float,
    weight_decay: float,
    frequency: int,
    max_precond_dim: int,
) -> list[np.ndarray]:
    """Paper Algorithm 3 with the reference code's conventions, in float64 NumPy.

    A separate code path from the class: the momentum M is kept in the parameter basis and
    projected every step (as the paper writes it), the Adam part is an explicit loop over
    entries, a side that is not preconditioned is an explicit identity basis.
    Returns W after every call (the first call only initialises, so W is unchanged).
    """
    w = w0.copy()
    m, n = w.shape
    b1, b2 = betas
    left, right = m <= max_precond_dim, n <= max_precond_dim
    fl, fr = np.zeros((m, m)), np.zeros((n, n))
    ql, qr = np.eye(m), np.eye(n)
    mom, v = np.zeros((m, n)), np.zeros((m, n))
    t = 0
    out = []
    for k in range(steps):
        g = grad(w, k)
        if k == 0:
            if left:
                fl = (1 - shampoo_beta) * g @ g.T
                ql = np.linalg.eigh(fl)[1][:, ::-1]
            if right:
                fr = (1 - shampoo_beta) * g.T @ g
                qr = np.linalg.eigh(fr)[1][:, ::-1]
            out.append(w.copy())
            continue
        t += 1
        mom = b1 * mom + (1 - b1) * g
        g_rot, m_rot = ql.T @ g @ qr, ql.T @ mom @ qr
        n_rot = np.empty((m, n))
        for i in range(m):
            for j in range(n):
                v[i, j] = b2 * v[i, j] + (1 - b2) * g_rot[i, j] ** 2
                n_rot[i, j] = m_rot[i, j] / (math.sqrt(v[i, j]) + eps)
        step = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        w = (w - step * ql @ n_rot @ qr.T) * (1 - lr * weight_decay)
        if left:
            fl = shampoo_beta * fl + (1 - shampoo_beta) * g @ g.T
        if right:
            fr = shampoo_beta * fr + (1 - shampoo_beta) * g.T @ g
        if t % frequency == 0:
            if left:
                order = np.argsort(-np.diag(ql.T @ fl @ ql), kind="stable")
                ql = np.linalg.qr(fl @ ql[:, order])[0]
                v = v[order, :]
            if right:
                order = np.argsort(-np.diag(qr.T @ fr @ qr), kind="stable")
                qr = np.linalg.qr(fr @ qr[:, order])[0]
                v = v[:, order]
        out.append(w.copy())
    return out


@pytest.mark.parametrize(
    ("problem", "shape", "frequency", "max_precond_dim", "betas", "shampoo_beta"),
    [
        (_least_squares, (3, 2), 1, 10000, (0.95, 0.95), -1.0),
        (_least_squares, (2, 3), 2, 10000, (0.9, 0.99), 0.8),
        (_least_squares, (3, 2), 1, 2, (0.95, 0.95), -1.0),  # the 3-long side has no factor
        (_least_squares, (4, 3), 3, 10000, (0.8, 0.9), 0.5),
        (_shifting_curvature, (3, 4), 1, 10000, (0.9, 0.95), 0.3),
        (_shifting_curvature, (4, 3), 2, 10000, (0.9, 0.95), 0.3),
    ],
)
def test_soap_matches_numpy_transcription(
    problem: Callable[[int, int], tuple[np.ndarray, GradFn]],
    shape: tuple[int, int],
    frequency: int,
    max_precond_dim: int,
    betas: tuple[float, float],
    shampoo_beta: float,
) -> None:
    """Ten calls equal the float64 NumPy transcription above (1e-10).

    eps is 1e-4 here: the first factor ``G G^T`` of a non-square G is singular and the second call
    sees the same G (the first call does not move W), so the rotated gradient has a round-off-sized
    component (~1e-16) along the null direction that Adam divides by ``sqrt(V) + eps``; with
    eps = 1e-8 that amplifies two implementations' different round-off to 1e-8.
    """
    w0, grad = problem(*shape)
    kwargs: dict[str, Any] = {"lr": 0.05, "betas": betas, "eps": 1e-4, "weight_decay": 0.1}
    sb = betas[1] if shampoo_beta < 0 else shampoo_beta
    expected = _numpy_soap(
        w0, grad, 10, shampoo_beta=sb, frequency=frequency, max_precond_dim=max_precond_dim, **kwargs
    )
    w = nn.Parameter(torch.tensor(w0))
    opt = SOAP(
        [w], shampoo_beta=shampoo_beta, precondition_frequency=frequency, max_precond_dim=max_precond_dim, **kwargs
    )
    for k in range(10):
        w.grad = torch.tensor(grad(w.detach().numpy(), k))
        opt.step()
        np.testing.assert_allclose(w.detach().numpy(), expected[k], rtol=0, atol=1e-10)
    assert np.abs(expected[-1] - w0).max() > 0.1  # the run moved the weights


def test_soap_equals_adamw_in_a_fixed_diagonal_eigenbasis() -> None:
    """Diagonal gradients keep L and R diagonal, so every basis is a signed permutation and SOAP is Adam (1e-12).

    Conventions mapped onto ``torch.optim.AdamW``: SOAP's first call only initialises, so AdamW
    sees the gradients from the second call on; SOAP adds eps before the bias correction, which is
    AdamW with ``eps / sqrt(1 - beta2^t)``; weight decay 0 (its order differs, tested below).
    """
    gen = torch.Generator().manual_seed(0)
    w0, b0 = torch.randn(3, 3, generator=gen, dtype=F64), torch.randn(3, generator=gen, dtype=F64)
    scales = torch.tensor([4.0, 2.0, 1.0], dtype=F64)
    grads = []
    for _ in range(9):
        signs = torch.randint(0, 2, (3,), generator=gen).to(F64) * 2 - 1
        jitter = 0.9 + 0.2 * torch.rand(3, generator=gen, dtype=F64)
        grads.append((torch.diag(signs * scales * jitter), torch.randn(3, generator=gen, dtype=F64)))
    betas, eps, lr = (0.9, 0.99), 1e-8, 0.05
    ws, bs = nn.Parameter(w0.clone()), nn.Parameter(b0.clone())
    wa, ba = nn.Parameter(w0.clone()), nn.Parameter(b0.clone())
    soap = SOAP([ws, bs], lr=lr, betas=betas, eps=eps, weight_decay=0.0, precondition_frequency=1)
    adam = torch.optim.AdamW([wa, ba], lr=lr, betas=betas, eps=eps, weight_decay=0.0)
    ws.grad, bs.grad = grads[0]
    soap.step()
    assert torch.equal(ws, w0)  # step 1 initialises only (reference code)
    assert torch.equal(bs, b0)
    for t, (gw, gb) in enumerate(grads[1:], start=1):
        ws.grad, bs.grad = gw.clone(), gb.clone()
        wa.grad, ba.grad = gw.clone(), gb.clone()
        adam.param_groups[0]["eps"] = eps / math.sqrt(1 - betas[1] ** t)
        soap.step()
        adam.step()
        torch.testing.assert_close(ws, wa, rtol=0, atol=1e-12)
        torch.testing.assert_close(bs, ba, rtol=0, atol=1e-12)
    assert (ws - w0).abs().max() > 0.1


def test_soap_weight_decay_multiplies_the_updated_weights() -> None:
    """Closed form of the reference order: W_wd = (W - step N)(1 - lr wd) = W_nowd (1 - lr wd) after one update."""
    gen = torch.Generator().manual_seed(1)
    w0 = torch.randn(4, 3, generator=gen, dtype=F64)
    g1, g2 = torch.randn(4, 3, generator=gen, dtype=F64), torch.randn(4, 3, generator=gen, dtype=F64)
    results = []
    for wd in (0.0, 0.3):
        w = nn.Parameter(w0.clone())
        opt = SOAP([w], lr=0.1, weight_decay=wd)
        for g in (g1, g2):
            w.grad = g.clone()
            opt.step()
        results.append(w.detach())
    torch.testing.assert_close(results[1], results[0] * (1 - 0.1 * 0.3), rtol=0, atol=1e-14)


class TestEigenbasis:
    def test_eigenbasis_diagonalises_in_descending_order(self) -> None:
        """Q^T P Q is diagonal with non-increasing entries, Q orthogonal (1e-12, float64)."""
        gen = torch.Generator().manual_seed(2)
        x = torch.randn(6, 4, generator=gen, dtype=F64)
        p = x @ x.T
        q = eigenbasis(p)
        d = q.T @ p @ q
        torch.testing.assert_close(q.T @ q, torch.eye(6, dtype=F64), rtol=0, atol=1e-12)
        torch.testing.assert_close(d, torch.diag(torch.diagonal(d)), rtol=0, atol=1e-12)
        assert torch.all(torch.diff(torch.diagonal(d)) <= 1e-12)

    def test_refresh_converges_to_the_eigenvectors(self) -> None:
        """Repeated power-iteration refreshes of a fixed P reach its eigenprojectors (NumPy eigh, 1e-8)."""
        gen = torch.Generator().manual_seed(3)
        basis, _ = torch.linalg.qr(torch.randn(4, 4, generator=gen, dtype=F64))
        p = basis @ torch.diag(torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=F64)) @ basis.T
        q = torch.eye(4, dtype=F64)
        for _ in range(80):
            q, _ = refresh_eigenbasis(p, q)
        vectors = np.linalg.eigh(p.numpy())[1][:, ::-1]
        for i in range(4):
            expected = np.outer(vectors[:, i], vectors[:, i])
            got = torch.outer(q[:, i], q[:, i]).numpy()
            np.testing.assert_allclose(got, expected, atol=1e-8)

    def test_rotate_and_unrotate_are_inverse(self) -> None:
        """Orthogonal bases on either side, or none: unrotate(rotate(X)) = X (1e-12)."""
        gen = torch.Generator().manual_seed(4)
        x = torch.randn(3, 5, generator=gen, dtype=F64)
        ql, _ = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=F64))
        qr, _ = torch.linalg.qr(torch.randn(5, 5, generator=gen, dtype=F64))
        for left, right in ((ql, qr), (None, qr), (ql, None), (None, None)):
            torch.testing.assert_close(unrotate(rotate(x, left, right), left, right), x, rtol=0, atol=1e-12)


class TestDescent:
    def test_soap_solves_a_convex_least_squares_problem(self) -> None:
        """An ill-conditioned least-squares fit gets within 1% of the lstsq optimum's excess loss."""
        gen = torch.Generator().manual_seed(5)
        feats = torch.randn(64, 8, generator=gen) @ torch.diag(torch.logspace(0, 1, 8))
        target = torch.randn(64, 4, generator=gen)
        best = torch.linalg.lstsq(feats, target).solution
        f_star = 0.5 * (feats @ best - target).square().mean().item()
        w = nn.Parameter(torch.zeros(8, 4))
        opt = SOAP([w], lr=0.05, weight_decay=0.0)

        def loss() -> torch.Tensor:
            return 0.5 * (feats @ w - target).square().mean()

        f0 = loss().item()
        for _ in range(150):
            opt.zero_grad()
            loss().backward()
            opt.step()
        assert loss().item() - f_star < 0.01 * (f0 - f_star)

    def test_soap_trains_a_tiny_mlp(self) -> None:
        """A 2-layer MLP fitting a fixed random batch: loss below a fifth of its start after 60 steps (measured 0.11 of 1.25)."""
        gen = torch.Generator().manual_seed(6)
        x, y = torch.randn(64, 6, generator=gen), torch.randn(64, 2, generator=gen)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2))
        opt = SOAP(model.parameters(), lr=0.1)
        first = None
        for _ in range(60):
            opt.zero_grad()
            loss = (model(x) - y).square().mean()
            first = loss.item() if first is None else first
            loss.backward()
            opt.step()
        assert first is not None
        assert loss.item() < first / 5


def _tiny_model(dtype: torch.dtype) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).to(dtype)


def _train(model: nn.Module, opt: torch.optim.Optimizer, steps: int, start: int) -> None:
    gen = torch.Generator().manual_seed(7)
    batches = [torch.randn(8, 5, generator=gen) for _ in range(start + steps)]
    dtype = next(model.parameters()).dtype
    for x in batches[start:]:
        opt.zero_grad()
        model(x.to(dtype)).square().mean().backward()
        opt.step()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_soap_state_dict_resume_is_bit_identical(dtype: torch.dtype, tmp_path: Path) -> None:
    """5 steps, save, load into a fresh model and optimizer, 5 more = 10 straight steps, bit for bit."""
    kwargs: dict[str, Any] = {"lr": 1e-2, "precondition_frequency": 3, "weight_decay": 0.01}
    straight = _tiny_model(dtype)
    opt = SOAP(straight.parameters(), **kwargs)
    _train(straight, opt, 10, 0)

    first = _tiny_model(dtype)
    opt1 = SOAP(first.parameters(), **kwargs)
    _train(first, opt1, 5, 0)
    torch.save({"model": first.state_dict(), "opt": opt1.state_dict()}, tmp_path / "ckpt.pt")
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    resumed = _tiny_model(dtype)
    resumed.load_state_dict(ckpt["model"])
    opt2 = SOAP(resumed.parameters(), **kwargs)
    opt2.load_state_dict(ckpt["opt"])
    for p in resumed.parameters():
        assert all(v.dtype == torch.float32 for v in opt2.state[p].values() if isinstance(v, torch.Tensor))
        assert isinstance(opt2.state[p]["step"], int)
    _train(resumed, opt2, 5, 5)

    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        for key, value in opt.state[p].items():
            other = opt2.state[q][key]
            assert torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other


class TestContract:
    def test_closure_none_grads_and_untouched_grad(self) -> None:
        """closure's loss is returned; a parameter without grad keeps no state; p.grad is not modified."""
        w, b = nn.Parameter(torch.ones(3, 2)), nn.Parameter(torch.ones(2))
        opt = SOAP([w, b], lr=0.1)

        def closure() -> float:
            opt.zero_grad()
            loss = (torch.ones(4, 3) @ w).square().sum()
            loss.backward()
            return float(loss.detach())

        assert opt.step(closure) == pytest.approx(72.0)  # 8 entries of (1 + 1 + 1)^2
        grad = w.grad.clone()  # type: ignore[union-attr]
        opt.step()
        assert torch.equal(w.grad, grad)  # type: ignore[arg-type]
        assert b.grad is None
        assert len(opt.state[b]) == 0
        assert opt.state[w]["step"] == 1

    def test_groups_keep_their_own_lr(self) -> None:
        """Two groups with lr 0 and 0.1: the first stays put (closed form), the second moves."""
        w1, w2 = nn.Parameter(torch.ones(2, 2)), nn.Parameter(torch.ones(2, 2))
        opt = SOAP([{"params": [w1], "lr": 0.0}, {"params": [w2]}], lr=0.1, weight_decay=0.0)
        for _ in range(3):
            w1.grad, w2.grad = torch.eye(2) + 0.5, torch.eye(2) + 0.5
            opt.step()
        assert torch.equal(w1, torch.ones(2, 2))
        assert not torch.equal(w2, torch.ones(2, 2))

    def test_conv_weight_is_reshaped_to_a_matrix(self) -> None:
        """A (4, 2, 3, 3) kernel is the (4, 18) matrix: factors (4, 4) and (18, 18)."""
        conv = nn.Conv2d(2, 4, 3)
        opt = SOAP(conv.parameters())
        for _ in range(2):
            opt.zero_grad()
            conv(torch.randn(1, 2, 5, 5)).square().sum().backward()
            opt.step()
        st = opt.state[conv.weight]
        assert st["L"].shape == (4, 4)
        assert st["R"].shape == (18, 18)
        assert st["exp_avg"].shape == (4, 2, 3, 3)

    def test_precondition_1d_gives_vectors_a_left_factor(self) -> None:
        """precondition_1d=True: a (5,) bias has L and Q_L of (5, 5) and no right factor."""
        b = nn.Parameter(torch.zeros(5))
        opt = SOAP([b], precondition_1d=True)
        b.grad = torch.arange(5.0)
        opt.step()
        assert set(opt.state[b]) == {"step", "exp_avg", "exp_avg_sq", "L", "Q_L"}

    def test_sparse_grad_raises(self) -> None:
        emb = nn.Embedding(4, 2, sparse=True)
        opt = SOAP(emb.parameters())
        emb(torch.tensor([1])).sum().backward()
        with pytest.raises(RuntimeError, match="sparse"):
            opt.step()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -1.0}, "lr must be >= 0"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"betas": (1.0, 0.9)}, r"betas\[0\] must be in \[0.0, 1.0\)"),
        ({"betas": (0.9, -0.1)}, r"betas\[1\] must be in"),
        ({"betas": (0.9,)}, "betas must be a pair"),
        ({"shampoo_beta": 1.0}, "shampoo_beta must be in"),
        ({"eps": -1e-8}, "eps must be >= 0"),
        ({"weight_decay": -0.1}, "weight_decay must be >= 0"),
        ({"precondition_frequency": 0}, "precondition_frequency must be an integer >= 1"),
        ({"precondition_frequency": 2.5}, "precondition_frequency must be an integer"),
        ({"max_precond_dim": 0}, "max_precond_dim must be an integer >= 1"),
        ({"precondition_1d": "yes"}, "precondition_1d must be True or False"),
        ({"normalize_grads": 1}, "normalize_grads must be True or False"),
        ({"correct_bias": None}, "correct_bias must be True or False"),
    ],
)
def test_soap_rejects_bad_hyperparameters(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SOAP([nn.Parameter(torch.zeros(2, 2))], **kwargs)


def test_soap_rejects_a_bad_group_and_keeps_the_others() -> None:
    """A group with lr=-1 added later raises and leaves param_groups unchanged."""
    opt = SOAP([nn.Parameter(torch.zeros(2, 2))])
    with pytest.raises(ValueError, match="lr must be >= 0"):
        opt.add_param_group({"params": [nn.Parameter(torch.zeros(2))], "lr": -1.0})
    assert len(opt.param_groups) == 1


def _state_bytes(state: dict[str, Any]) -> int:
    return sum(v.numel() * v.element_size() for v in state.values() if isinstance(v, torch.Tensor))


@pytest.mark.parametrize(("max_precond_dim", "sides"), [(10000, {"L", "Q_L", "R", "Q_R"}), (4, {"L", "Q_L"})])
def test_soap_state_is_exactly_the_factors_bases_and_moments(max_precond_dim: int, sides: set[str]) -> None:
    """A (3, 5) float32 weight holds 2mn + 2m^2 + 2n^2 numbers (a side over max_precond_dim: none); a bias 2 * 3."""
    layer = nn.Linear(5, 3)
    opt = SOAP(layer.parameters(), max_precond_dim=max_precond_dim)
    for _ in range(2):
        opt.zero_grad()
        layer(torch.randn(4, 5)).sum().backward()
        opt.step()
    st = opt.state[layer.weight]
    assert set(st) == {"step", "exp_avg", "exp_avg_sq"} | sides
    m, n = 3, 5
    factors = 2 * m * m + (2 * n * n if "R" in sides else 0)
    assert _state_bytes(st) == 4 * (2 * m * n + factors)
    assert set(opt.state[layer.bias]) == {"step", "exp_avg", "exp_avg_sq"}
    assert _state_bytes(opt.state[layer.bias]) == 4 * 2 * 3


def test_soap_bf16_parameters_keep_float32_state() -> None:
    """bfloat16 weights: float32 moments and factors, the weights stay bfloat16 and move."""
    layer = nn.Linear(4, 3).to(torch.bfloat16)
    before = copy.deepcopy(layer.weight.detach())
    opt = SOAP(layer.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        layer(torch.randn(2, 4, dtype=torch.bfloat16)).float().square().sum().backward()
        opt.step()
    assert layer.weight.dtype == torch.bfloat16
    assert not torch.equal(layer.weight, before)
    assert all(v.dtype == torch.float32 for v in opt.state[layer.weight].values() if isinstance(v, torch.Tensor))
