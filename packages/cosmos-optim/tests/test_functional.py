"""Tests of the pure COSMOS functions against closed forms, invariants and a NumPy transcription."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cosmos_optim.functional import (
    CONVERGENT_NS_COEFFICIENTS,
    cosmos_direction,
    cosmos_step,
    init_subspace,
    nesterov_momentum,
    newton_schulz,
    update_subspace,
)

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _run(W: torch.Tensor, grads: list[torch.Tensor], rank: int, **kw: object) -> list[torch.Tensor]:
    """Apply cosmos_step over a gradient sequence; return the list of updates W_{t+1} - W_t."""
    m, n = W.shape
    r = min(rank, m, n)
    M = torch.zeros(m, n, dtype=W.dtype)
    U, S, V = torch.zeros(n, r, dtype=W.dtype), torch.zeros(r, r, dtype=W.dtype), torch.zeros(m, r, dtype=W.dtype)
    kw = {"lr": 1.0, "lr_ratio": 0.01, "betas": (0.9, 0.95), "gamma": 0.5, "ns_dtype": F64, **kw}
    deltas = []
    for t, G in enumerate(grads, start=1):
        W_new, M, U, S, V = cosmos_step(W, G, M, U, S, V, t, **kw)  # type: ignore[arg-type]
        deltas.append(W_new - W)
        W = W_new
    return deltas


# -- Newton-Schulz ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 9), (9, 6), (7, 7)])
def test_newton_schulz_with_convergent_coefficients_is_the_exact_polar_factor(shape: tuple[int, int]) -> None:
    # Closed form: the orthogonal polar factor U V^T from the SVD X = U S V^T.
    X = torch.randn(*shape, generator=_gen(0), dtype=F64) + 2 * torch.eye(*shape, dtype=F64)
    orth = newton_schulz(X, 80, CONVERGENT_NS_COEFFICIENTS, dtype=F64)
    u, _, vh = torch.linalg.svd(X, full_matrices=False)
    torch.testing.assert_close(orth, u @ vh, atol=1e-10, rtol=0)
    small = min(shape)
    gram = orth @ orth.T if shape[0] <= shape[1] else orth.T @ orth
    torch.testing.assert_close(gram, torch.eye(small, dtype=F64), atol=1e-10, rtol=0)


def test_newton_schulz_matches_torch_muon_iteration() -> None:
    # Second implementation: torch.optim.Muon's private NS (same coefficients, bf16) on the same input.
    from torch.optim._muon import _zeropower_via_newtonschulz

    for shape in [(64, 48), (48, 64)]:
        X = torch.randn(*shape, generator=_gen(1))
        ours = newton_schulz(X, 5)
        theirs = _zeropower_via_newtonschulz(X, (3.4445, -4.7750, 2.0315), 5, 1e-7).float()
        cos = torch.nn.functional.cosine_similarity(ours.flatten(), theirs.flatten(), dim=0)
        assert cos > 0.999


def test_newton_schulz_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2-D"):
        newton_schulz(torch.ones(3))
    with pytest.raises(ValueError, match="steps must be >= 1"):
        newton_schulz(torch.ones(2, 2), 0)


# -- momentum --------------------------------------------------------------------------------------


def test_nesterov_normalisation_equals_the_official_sum_form() -> None:
    # The authors' code: m_t = beta1 m_{t-1} + g_t, g_hat = (g + beta1 m)/(1 + beta1 bc1), bc1 = (1-beta1^t)/(1-beta1).
    beta1 = 0.95
    gen = _gen(2)
    m_sum = torch.zeros(4, 3, dtype=F64)
    M = torch.zeros(4, 3, dtype=F64)
    for t in range(1, 8):
        g = torch.randn(4, 3, generator=gen, dtype=F64)
        m_sum = beta1 * m_sum + g
        M = torch.lerp(M, g, 1 - beta1)
        bc1 = (1 - beta1**t) / (1 - beta1)
        official = (g + beta1 * m_sum) / (1 + beta1 * bc1)
        torch.testing.assert_close(nesterov_momentum(g, M, beta1, t), official, atol=1e-13, rtol=1e-13)


# -- subspace tracker ------------------------------------------------------------------------------


def _spectral_grad(m: int, n: int, singular: list[float], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = _gen(seed)
    left = torch.linalg.qr(torch.randn(m, m, generator=gen, dtype=F64))[0][:, : len(singular)]
    right = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=F64))[0][:, : len(singular)]
    return left @ torch.diag(torch.tensor(singular, dtype=F64)) @ right.T, right


def test_init_subspace_is_the_top_eigenprojector_of_the_gram() -> None:
    G, right = _spectral_grad(12, 10, [9.0, 5.0, 3.0, 1.0, 0.5], 3)
    U, S = init_subspace(G, 3, 0.95)
    torch.testing.assert_close(U.T @ U, torch.eye(3, dtype=F64), atol=1e-10, rtol=0)
    # The top-3 right singular vectors span the top-3 eigenspace of G^T G.
    torch.testing.assert_close(U @ U.T, right[:, :3] @ right[:, :3].T, atol=1e-8, rtol=0)
    torch.testing.assert_close(torch.diag(S), 0.05 * torch.tensor([81.0, 25.0, 9.0], dtype=F64), atol=1e-8, rtol=0)


def test_tracker_recovers_the_top_eigenvectors_of_a_known_covariance() -> None:
    # Fixed G with singular values (10, 6, 4, 1, ...): H~ -> G^T G, so U -> its top-3 eigenvectors
    # and diag(S) -> (100, 36, 16). Start from a random basis, not from step-1's eigh.
    G, right = _spectral_grad(16, 12, [10.0, 6.0, 4.0, 1.0, 0.5, 0.25], 4)
    U = torch.linalg.qr(torch.randn(12, 3, generator=_gen(5), dtype=F64))[0]
    S = torch.zeros(3, 3, dtype=F64)
    target = right[:, :3] @ right[:, :3].T
    for _ in range(150):
        U, S = update_subspace(U, S, G, 0.95)
        torch.testing.assert_close(U.T @ U, torch.eye(3, dtype=F64), atol=1e-10, rtol=0)
    assert torch.linalg.matrix_norm(U @ U.T - target, 2) < 1e-3
    torch.testing.assert_close(torch.diag(S), torch.tensor([100.0, 36.0, 16.0], dtype=F64), rtol=0.01, atol=0)


# -- closed forms and invariants of the update ----------------------------------------------------


@pytest.mark.parametrize("rank", [1, 3])
def test_rank_one_gradient_gives_the_closed_form_step(rank: int) -> None:
    # G = a b^T: U_1 contains b/||b||, the residual is zero, A = sign(a) b^T/||b||, so
    # Delta W_1 = -eta sqrt(n) sign(a) b^T / ||b|| (worked by hand in the functional docstring).
    gen = _gen(6)
    a, b = torch.randn(5, generator=gen, dtype=F64), torch.randn(4, generator=gen, dtype=F64)
    G = torch.outer(a, b)
    (delta,) = _run(torch.zeros(5, 4, dtype=F64), [G], rank)
    expected = -0.01 * math.sqrt(4) * torch.outer(torch.sign(a), b / b.norm())
    torch.testing.assert_close(delta, expected, rtol=1e-6, atol=1e-12)
    # Without the guard, NS of a rounding-noise residual is injected (the authors' behaviour).
    (noisy,) = _run(torch.zeros(5, 4, dtype=F64), [G], rank, residual_tol=0.0)
    assert (noisy - expected).norm() / expected.norm() > 0.1


def test_every_step_has_norm_eta_sqrt_mn() -> None:
    gen = _gen(7)
    grads = [torch.randn(6, 5, generator=gen, dtype=F64) for _ in range(6)]
    for delta in _run(torch.zeros(6, 5, dtype=F64), grads, 2):
        assert abs(delta.norm().item() - 0.01 * math.sqrt(30)) < 1e-9


def test_weight_decay_is_decoupled_with_the_base_lr() -> None:
    gen = _gen(8)
    W = torch.randn(6, 5, generator=gen, dtype=F64)
    grads = [torch.randn(6, 5, generator=gen, dtype=F64) for _ in range(3)]
    plain = _run(W, grads[:1], 2, lr=0.5)
    decayed = _run(W, grads[:1], 2, lr=0.5, weight_decay=0.1)
    torch.testing.assert_close(decayed[0], plain[0] - 0.5 * 0.1 * W, atol=1e-12, rtol=0)


def test_update_is_invariant_to_gradient_scale() -> None:
    gen = _gen(9)
    grads = [torch.randn(7, 5, generator=gen, dtype=F64) for _ in range(5)]
    a = _run(torch.zeros(7, 5, dtype=F64), grads, 2)
    b = _run(torch.zeros(7, 5, dtype=F64), [5 * g for g in grads], 2)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, atol=1e-7 * x.abs().max().item(), rtol=0)


def test_update_is_equivariant_to_right_rotations_but_not_left() -> None:
    # U lives on the input side: G -> G R gives Delta W -> Delta W R exactly; a left rotation
    # changes the elementwise V and so the update (this catches a projection on the wrong side).
    gen = _gen(10)
    grads = [torch.randn(7, 5, generator=gen, dtype=F64) for _ in range(4)]
    R = torch.linalg.qr(torch.randn(5, 5, generator=gen, dtype=F64))[0]
    L = torch.linalg.qr(torch.randn(7, 7, generator=gen, dtype=F64))[0]
    base = _run(torch.zeros(7, 5, dtype=F64), grads, 2)
    right = _run(torch.zeros(7, 5, dtype=F64), [g @ R for g in grads], 2)
    left = _run(torch.zeros(7, 5, dtype=F64), [L @ g for g in grads], 2)
    for x, y in zip(base, right, strict=True):
        torch.testing.assert_close(y, x @ R, atol=1e-10, rtol=0)
    assert max(((L @ x) - y).norm().item() / x.norm().item() for x, y in zip(base, left, strict=True)) > 0.1


def test_full_rank_is_independent_of_gamma_and_gamma_zero_is_soap_only() -> None:
    gen = _gen(11)
    grads = [torch.randn(6, 4, generator=gen, dtype=F64) for _ in range(4)]
    a = _run(torch.zeros(6, 4, dtype=F64), grads, 4, gamma=0.1)
    b = _run(torch.zeros(6, 4, dtype=F64), grads, 4, gamma=3.0)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, atol=1e-14, rtol=0)
    # gamma = 0: the step is NORM(A) alone: compare with the direction at gamma 0 computed directly.
    m_hat = torch.randn(6, 4, generator=gen, dtype=F64)
    U = torch.linalg.qr(torch.randn(4, 2, generator=gen, dtype=F64))[0]
    V = torch.rand(6, 2, generator=gen, dtype=F64)
    D = cosmos_direction(m_hat, U, V, 0.5, gamma=0.0, ns_dtype=F64)
    A = ((m_hat @ U) / ((V / 0.5).sqrt() + 1e-8)) @ U.T
    torch.testing.assert_close(D, math.sqrt(24) * A / (A.norm() + 1e-8), atol=1e-12, rtol=0)


def test_rank_zero_is_normalised_muon() -> None:
    # rank 0: no subspace, D = sqrt(mn) NS(M_hat)/||NS(M_hat)|| for any gamma > 0.
    gen = _gen(12)
    m_hat = torch.randn(6, 9, generator=gen, dtype=F64)
    empty = torch.zeros(9, 0, dtype=F64)
    D = cosmos_direction(m_hat, empty, torch.zeros(6, 0, dtype=F64), 0.5, gamma=0.7, ns_dtype=F64)
    orth = newton_schulz(m_hat, 5, dtype=F64)
    # Up to the two eps = 1e-8 added to the norms in the normalisations.
    torch.testing.assert_close(D, math.sqrt(54) * orth / orth.norm(), atol=1e-7, rtol=0)


# -- a second implementation in NumPy ---------------------------------------------------------------


def _numpy_cosmos(
    W: np.ndarray, grads: list[np.ndarray], r: int, *, nesterov: bool, eps_inside: bool
) -> list[np.ndarray]:
    """Paper Algorithm 1 transcribed in float64 NumPy (official sum-form Nesterov momentum when asked)."""
    lr, ratio, b1, b2, gamma, eps = 1.0, 0.01, 0.9, 0.95, 0.5, 1e-8
    m, n = W.shape
    m_sum = np.zeros((m, n))  # the authors' un-normalised momentum sum
    M = np.zeros((m, n))  # the paper's EMA
    V = np.zeros((m, r))
    U = S = np.zeros(0)
    out = []
    for t, G in enumerate(grads, start=1):
        m_sum = b1 * m_sum + G
        M = b1 * M + (1 - b1) * G
        if t == 1:
            w, vecs = np.linalg.eigh(G.T @ G)
            U = vecs[:, np.argsort(w)[::-1][:r]]
            S = (1 - b2) * (G @ U).T @ (G @ U)
        else:
            Q, _ = np.linalg.qr(b2 * U @ S + (1 - b2) * G.T @ G @ U)
            T = U.T @ Q
            S = b2 * T.T @ S @ T + (1 - b2) * (G @ Q).T @ (G @ Q)
            U = Q
        V = b2 * V + (1 - b2) * (G @ U) ** 2
        if nesterov:
            bc1 = (1 - b1**t) / (1 - b1)
            g_hat = (G + b1 * m_sum) / (1 + b1 * bc1)
        else:
            g_hat = M / (1 - b1**t)
        # Paper (spec §1.1): A = (M̂U / sqrt((V + ε)/(1 − β2^t))) Uᵀ; authors' code: sqrt(V/(1 − β2^t)) + ε.
        second = np.sqrt((V + eps) / (1 - b2**t)) if eps_inside else np.sqrt(V / (1 - b2**t)) + eps
        A = ((g_hat @ U) / second) @ U.T
        R = g_hat - g_hat @ U @ U.T
        X = R.T if m > n else R
        X = X / (np.linalg.norm(X) + 1e-7)
        for _ in range(5):
            Agram = X @ X.T
            X = 3.4445 * X + (-4.7750 * Agram + 2.0315 * Agram @ Agram) @ X
        orth = X.T if m > n else X
        B = math.sqrt(m * n) * orth / (np.linalg.norm(orth) + eps)
        D = A + gamma * B
        step = lr * ratio * math.sqrt(m * n) * D / (np.linalg.norm(D) + eps)
        out.append(-step)
        W = W - step
    return out


@pytest.mark.parametrize("shape", [(5, 4), (4, 5)])
@pytest.mark.parametrize(("nesterov", "eps_inside"), [(True, False), (False, True)])
def test_matches_a_numpy_transcription_for_ten_steps(shape: tuple[int, int], nesterov: bool, eps_inside: bool) -> None:
    rng = np.random.default_rng(13)
    # A gradient with a clear spectral gap at r = 2 keeps the tracked subspace well defined.
    base = rng.standard_normal(shape) @ np.diag([4.0, 3.0, 0.3, 0.2, 0.1][: shape[1]])
    grads = [base + 0.05 * rng.standard_normal(shape) for _ in range(10)]
    expected = _numpy_cosmos(np.zeros(shape), grads, 2, nesterov=nesterov, eps_inside=eps_inside)
    got = _run(
        torch.zeros(shape, dtype=F64),
        [torch.from_numpy(g) for g in grads],
        2,
        nesterov=nesterov,
        eps_inside_sqrt=eps_inside,
        residual_tol=0.0,
    )
    for t, (x, y) in enumerate(zip(got, expected, strict=True), start=1):
        np.testing.assert_allclose(x.numpy(), y, rtol=0, atol=1e-9, err_msg=f"step {t}")


def test_cosmos_step_does_not_modify_its_inputs() -> None:
    gen = _gen(14)
    tensors = [torch.randn(4, 3, generator=gen, dtype=F64) for _ in range(2)]
    W, G = tensors
    M = torch.randn(4, 3, generator=gen, dtype=F64)
    U = torch.linalg.qr(torch.randn(3, 2, generator=gen, dtype=F64))[0]
    S, V = torch.eye(2, dtype=F64), torch.ones(4, 2, dtype=F64)
    copies = [x.clone() for x in (W, G, M, U, S, V)]
    cosmos_step(W, G, M, U, S, V, 3, lr=0.1, lr_ratio=0.1, betas=(0.9, 0.99), gamma=0.2, weight_decay=0.1)
    for x, y in zip((W, G, M, U, S, V), copies, strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("gamma", [0.2, 0.5, 1.0])
def test_hand_worked_two_by_two_case_mixes_both_parts(gamma: float) -> None:
    """G = diag(3, 1), r = 1, worked by hand.

    U_1 = e1 (top eigenvector of GᵀG = diag(9, 1)); GU = (3, 0)ᵀ, V_1 = (1-β2)(9, 0)ᵀ and at t = 1
    M̂ = G, so A = diag(1, 0) (the second row is 0/(0+ε) = 0). R = G − GUUᵀ = diag(0, 1): NS keeps a
    rank-1 matrix's singular vectors and maps its singular value to a positive number, so after the
    normalisation B = sqrt(mn)·diag(0, 1) = diag(0, 2). D = A + γB = diag(1, 2γ), scaled to norm
    sqrt(mn) = 2: ΔW₁ = −η·2/sqrt(1 + 4γ²)·diag(1, 2γ). With G₂ = G the subspace, M̂ and the
    direction stay put, so ΔW₂ = ΔW₁. Holds with the authors' bf16 NS too (the singular vectors are exact).
    """
    G = torch.diag(torch.tensor([3.0, 1.0], dtype=F64))
    expected = -0.01 * 2 / math.sqrt(1 + 4 * gamma**2) * torch.diag(torch.tensor([1.0, 2 * gamma], dtype=F64))
    for ns_dtype in (F64, torch.bfloat16):
        deltas = _run(torch.zeros(2, 2, dtype=F64), [G, G], 1, gamma=gamma, ns_dtype=ns_dtype)
        for delta in deltas:
            torch.testing.assert_close(delta, expected, atol=1e-9, rtol=0)


def test_full_rank_tracks_soaps_right_factor_exactly() -> None:
    # With r = n the low-rank proxy loses nothing: U_t S_t U_tᵀ equals the exact EMA of G_sᵀG_s
    # (SOAP's right Kronecker factor), computed here by a plain loop. So COSMOS at r = n is
    # one-sided SOAP (right factor only, basis refreshed by one QR power step per step), normalised.
    gen = _gen(15)
    beta2 = 0.9
    n = 4
    U = torch.zeros(n, n, dtype=F64)
    S = torch.zeros(n, n, dtype=F64)
    ema = torch.zeros(n, n, dtype=F64)
    for t in range(1, 8):
        G = torch.randn(6, n, generator=gen, dtype=F64)
        ema = beta2 * ema + (1 - beta2) * G.T @ G
        U, S = init_subspace(G, n, beta2) if t == 1 else update_subspace(U, S, G, beta2)
        torch.testing.assert_close(U @ S @ U.T, ema, atol=1e-12, rtol=0)
