"""The COSMOS update as pure functions: tensors in, tensors out, no state, no I/O.

Symbols follow the paper (Liu et al. 2025, arXiv:2502.17410, Algorithm 1) for a weight
``W`` of shape ``(m, n)`` = ``(out_features, in_features)``, as ``nn.Linear`` stores it, with the
subspace ``U`` living on the **input** side (``n``):

================  =======================================================
paper             here
================  =======================================================
``G_t``           ``grad``, the gradient of ``W`` at step ``t``  ``(m, n)``
``M_t``           ``exp_avg``, the first moment (EMA with ``beta1``)  ``(m, n)``
``U_t``           ``U``, orthonormal basis of the tracked eigensubspace  ``(n, r)``
``S_t``           ``S``, ``U_t^T H~_t U_t``, the projected second-moment proxy  ``(r, r)``
``V_t``           ``V``, Adam's second moment inside the subspace  ``(m, r)``
``A_t``           SOAP (Adam in the eigenbasis) on the leading subspace
``B_t``           Muon (Newton-Schulz) on the orthogonal complement
``gamma``         ``gamma``, the weight of ``B_t``
``eta``           ``lr * lr_ratio`` (the per-entry RMS of a hidden-matrix step)
================  =======================================================

The optimizer (:class:`cosmos_optim.COSMOS`) is a thin loop over these functions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

NS_COEFFICIENTS: tuple[float, float, float] = (3.4445, -4.7750, 2.0315)
"""Quintic Newton-Schulz coefficients (a, b, c) of Muon (Jordan et al. 2024), used by the authors' code."""

CONVERGENT_NS_COEFFICIENTS: tuple[float, float, float] = (1.5, -0.5, 0.0)
"""Cubic Newton-Schulz coefficients; they converge to the exact orthogonal polar factor (slowly)."""


def newton_schulz(
    X: Tensor,
    steps: int = 5,
    coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    *,
    dtype: torch.dtype = torch.bfloat16,
    eps: float = 1e-7,
) -> Tensor:
    r"""Approximate orthogonalisation ``NS(X) ~ U V^T`` (``X = U Σ V^T``) by a Newton-Schulz iteration.

    .. math::
        X_0 = X / (\lVert X \rVert_F + \epsilon), \qquad
        X_{k+1} = a X_k + (b A_k + c A_k^2) X_k, \quad A_k = X_k X_k^T

    run on the wide orientation (rows <= columns), in ``dtype``. With Muon's coefficients
    ``(3.4445, -4.7750, 2.0315)`` the singular values land in roughly ``[0.7, 1.2]`` after five
    steps; with :data:`CONVERGENT_NS_COEFFICIENTS` the iteration converges to ``U V^T`` exactly.

    Args:
        X: a 2-D tensor ``(m, n)``.
        steps: number of iterations, >= 1.
        coefficients: ``(a, b, c)``.
        dtype: compute dtype (the authors' code uses bfloat16).
        eps: added to the Frobenius norm before the first division.

    Returns:
        A tensor of ``X``'s shape and dtype.

    Note:
        The authors' code forms ``a X + b A X + c A (A X)`` with three matrix products and
        compiles it at import; here it is ``X (a I + b A + c A^2)`` with two ``addmm`` calls, as
        ``torch.optim.Muon`` does (same numbers, 1.5-4x faster on CPU), and nothing is compiled.

    Example:
        >>> import torch
        >>> X = torch.randn(4, 6, dtype=torch.float64)
        >>> O = newton_schulz(X, 60, CONVERGENT_NS_COEFFICIENTS, dtype=torch.float64)
        >>> bool(torch.allclose(O @ O.T, torch.eye(4, dtype=torch.float64), atol=1e-8))
        True
    """
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D tensor, got shape {tuple(X.shape)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    a, b, c = coefficients
    tall = X.size(0) > X.size(1)
    # normalise in X's own dtype, then cast: a float16 cast first overflows for ||X|| > 65504 (the
    # norm is inf and the result 0) and flushes small residuals into subnormals
    Y: Tensor = (X / (X.norm() + eps)).to(dtype)
    if tall:
        Y = Y.T
    for _ in range(steps):
        A = Y @ Y.T
        B = torch.addmm(A, A, A, beta=b, alpha=c)
        Y = torch.addmm(Y, B, Y, beta=a)
    if tall:
        Y = Y.T
    return Y.to(X.dtype)


def nesterov_momentum(grad: Tensor, exp_avg: Tensor, beta1: float, step: int) -> Tensor:
    r"""The authors' Nesterov momentum, normalised: ``lerp(G_t, M_t, beta1) / (1 - beta1^{t+1})``.

    The official code keeps an un-normalised sum ``m_t = beta1 m_{t-1} + G_t`` and uses
    ``(G_t + beta1 m_t) / (1 + beta1 (1 - beta1^t)/(1 - beta1))``; with ``M_t = (1 - beta1) m_t``
    (the usual EMA) this is exactly

    .. math:: \hat G_t = \frac{(1-\beta_1) G_t + \beta_1 M_t}{1 - \beta_1^{t+1}}

    Args:
        grad: ``G_t``.
        exp_avg: ``M_t``, already updated with ``G_t``.
        beta1: momentum coefficient in ``[0, 1)``.
        step: ``t >= 1``.

    Returns:
        ``\hat G_t``, the shape of ``grad``.

    Example:
        >>> import torch
        >>> g = torch.tensor([[1.0, 2.0]])
        >>> M = 0.1 * g  # M_1 = (1 - beta1) G_1 with beta1 = 0.9
        >>> bool(torch.allclose(nesterov_momentum(g, M, 0.9, 1), g))  # the first step returns G_1 itself
        True
    """
    return torch.lerp(grad, exp_avg, beta1) / (1.0 - beta1 ** (step + 1))


def init_subspace(grad: Tensor, rank: int, beta2: float) -> tuple[Tensor, Tensor]:
    r"""Step 1 of the subspace tracker: ``U_1`` = top-``r`` eigenvectors of ``G_1^T G_1``, ``S_1 = (1-beta2) (G_1 U_1)^T (G_1 U_1)``.

    Args:
        grad: ``G_1`` of shape ``(m, n)``, float32 or float64.
        rank: ``r``, ``0 <= r <= min(m, n)``.
        beta2: in ``[0, 1)``.

    Returns:
        ``(U, S)`` of shapes ``(n, r)`` and ``(r, r)``; the columns of ``U`` are in decreasing
        order of eigenvalue.

    Note:
        The authors' code takes a full SVD of ``G^T G``, which fails to converge for some
        rank-deficient Gram matrices in MKL; ``eigh`` of the same symmetric matrix spans the same
        subspace (up to the choice of basis inside degenerate eigenvalues) and does not fail. It
        runs in float32 and falls back to float64 if float32 fails.
    """
    n = grad.size(1)
    if rank == 0:
        return grad.new_zeros(n, 0), grad.new_zeros(0, 0)
    gram = grad.T @ grad
    try:
        _, vecs = torch.linalg.eigh(gram)
    except RuntimeError:  # pragma: no cover - float32 eigh failures are rare
        _, vecs = torch.linalg.eigh(gram.double())
        vecs = vecs.to(grad.dtype)
    U = vecs[:, -rank:].flip(1).contiguous()
    GU = grad @ U
    S = (1.0 - beta2) * (GU.T @ GU)
    return U, S


def update_subspace(U: Tensor, S: Tensor, grad: Tensor, beta2: float) -> tuple[Tensor, Tensor]:
    r"""One incremental step of the eigensubspace tracker (paper Algorithm 1; one power iteration).

    With the low-rank proxy :math:`\tilde H_t = \beta_2 U_{t-1} S_{t-1} U_{t-1}^T + (1-\beta_2) G_t^T G_t`
    (never formed):

    .. math::
        U_t = \mathrm{QR}\big(\beta_2 U_{t-1} S_{t-1} + (1-\beta_2) G_t^T (G_t U_{t-1})\big), \qquad
        S_t = \beta_2 T^T S_{t-1} T + (1-\beta_2) (G_t U_t)^T (G_t U_t), \quad T = U_{t-1}^T U_t

    Args:
        U: ``U_{t-1}`` ``(n, r)`` with orthonormal columns.
        S: ``S_{t-1}`` ``(r, r)``.
        grad: ``G_t`` ``(m, n)``.
        beta2: in ``[0, 1)``.

    Returns:
        ``(U_t, S_t)``.

    Note:
        Householder QR (``torch.linalg.qr``) as in the authors' code; the paper names a
        Gram-Schmidt step. Any orthonormal basis of the same span gives the same update.
    """
    U_new, S_new, _ = _track(U, S, grad, beta2)
    return U_new, S_new


def _track(U: Tensor, S: Tensor, grad: Tensor, beta2: float) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`update_subspace`, also returning ``G_t U_t`` (reused by the second moment)."""
    if U.size(1) == 0:
        return U, S, grad.new_zeros(grad.size(0), 0)
    P = torch.addmm(grad.T @ (grad @ U), U, S, beta=1.0 - beta2, alpha=beta2)
    try:
        U_new, _ = torch.linalg.qr(P, mode="reduced")
    except RuntimeError:  # pragma: no cover - float32 QR failures are rare
        U_new = torch.linalg.qr(P.double(), mode="reduced")[0].to(P.dtype)
    T = U.T @ U_new
    GU = grad @ U_new
    S_new = torch.addmm(GU.T @ GU, T.T @ S, T, beta=1.0 - beta2, alpha=beta2)
    return U_new, S_new, GU


def update_second_moment(V: Tensor, grad: Tensor, U: Tensor, beta2: float, *, GU: Tensor | None = None) -> Tensor:
    r"""Adam's second moment inside the subspace: ``V_t = beta2 V_{t-1} + (1-beta2) (G_t U_t)⊙(G_t U_t)``.

    ``GU``, when given, is ``G_t U_t`` already computed (it saves one product).
    """
    if GU is None:
        GU = grad @ U
    return torch.addcmul(V * beta2, GU, GU, value=1.0 - beta2)


def default_residual_tol(dtype: torch.dtype) -> float:
    """The residual guard ``tau`` for a compute dtype: 1e-10 in float64, 1e-4 otherwise.

    A residual that is zero by construction (rank ``r = n``, or a gradient of rank <= ``r``)
    measures about 1e-6 of ``||M||`` in float32 and 1e-15 in float64: the tolerances sit two
    orders of magnitude and more above that noise.
    """
    return 1e-10 if dtype == torch.float64 else 1e-4


def cosmos_direction(
    m_hat: Tensor,
    U: Tensor,
    V: Tensor,
    bias_correction2: float,
    *,
    eps: float = 1e-8,
    gamma: float = 0.2,
    eps_inside_sqrt: bool = False,
    residual_tol: float | None = None,
    ns_steps: int = 5,
    ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    ns_dtype: torch.dtype = torch.bfloat16,
) -> Tensor:
    r"""The COSMOS step direction for one matrix, scaled to per-entry RMS one.

    .. math::
        A_t = \Big[\frac{\hat M_t U_t}{\sqrt{V_t / (1-\beta_2^t)} + \epsilon}\Big] U_t^T, \qquad
        R_t = \hat M_t - \hat M_t U_t U_t^T, \qquad
        B_t = \sqrt{mn}\,\frac{\mathrm{NS}(R_t)}{\lVert \mathrm{NS}(R_t) \rVert_F}

    .. math::
        D_t = \sqrt{mn}\,\frac{A_t + \gamma B_t}{\lVert A_t + \gamma B_t \rVert_F}
        \qquad (W_{t+1} = W_t - \eta D_t)

    Args:
        m_hat: ``\hat M_t`` ``(m, n)``: the bias-corrected or Nesterov momentum.
        U: ``U_t`` ``(n, r)``.
        V: ``V_t`` ``(m, r)``.
        bias_correction2: ``1 - beta2^t``.
        eps: ``epsilon`` of Adam (and of the two normalisations, as in the authors' code).
        gamma: weight of the Muon part, >= 0.
        eps_inside_sqrt: ``sqrt((V + eps)/(1-beta2^t))`` as the paper writes ``A_t`` (per the spec's
            notes of the paper), instead of the authors' (and Adam's) ``sqrt(V/(1-beta2^t)) + eps``.
        residual_tol: ``tau`` of the residual guard (``None``: :func:`default_residual_tol`).
        ns_steps, ns_coefficients, ns_dtype: the Newton-Schulz iteration of ``B_t``.

    Returns:
        ``D_t`` ``(m, n)`` with ``||D_t||_F = sqrt(mn)`` (or zero when both parts vanish).

    Note:
        Residual guard (ours): when ``r = n`` or ``||R_t||_F <= tau ||\hat M_t||_F`` the
        residual is zero up to rounding and ``NS(R_t)/||NS(R_t)||`` would be unit-RMS *noise*
        (the paper's formula divides 0 by 0; the authors' code injects that noise). Here
        ``B_t = 0`` then. Likewise a column ``j`` of ``U_t`` whose second moment is numerically zero,
        ``sum_i V_ij <= tau^2 max_j sum_i V_ij`` (the gradients so far have rank below ``r``), holds
        rounding noise only (about 1e-7 ||G|| in float32), which Adam's division would blow up to
        unit size; its column of ``A_t`` is set to zero, as exact arithmetic gives. Set
        ``residual_tol=0`` to get the authors' behaviour for both.
    """
    m, n = m_hat.shape
    scale = math.sqrt(m * n)
    P = m_hat @ U  # (m, r)
    denom = ((V + eps) / bias_correction2).sqrt() if eps_inside_sqrt else (V / bias_correction2).sqrt().add_(eps)
    tol = default_residual_tol(m_hat.dtype) if residual_tol is None else residual_tol
    ratio = P / denom
    if tol > 0 and V.size(1) > 0:  # eigen-directions the gradients never reached hold rounding noise only
        col = V.sum(dim=0)
        ratio = ratio * (col > (tol * tol) * col.max()).to(ratio.dtype)
    A = ratio @ U.T
    direction = A
    if gamma != 0.0 and U.size(1) < n:
        R = torch.addmm(m_hat, P, U.T, alpha=-1.0)
        ortho = newton_schulz(R, ns_steps, ns_coefficients, dtype=ns_dtype)
        B = ortho * (scale / (ortho.norm() + eps))
        # The guard as a device-side mask: no host synchronisation per matrix on CUDA.
        keep = (R.norm() > tol * m_hat.norm()).to(B.dtype)
        direction = A.add(B * keep, alpha=gamma)
    out: Tensor = direction * (scale / (direction.norm() + eps))
    return out


def adamw_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    step: int,
    *,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    max_exp_avg_sq: Tensor | None = None,
) -> None:
    r"""AdamW (Loshchilov & Hutter 2019) in place, in ``torch.optim.AdamW``'s order of operations.

    .. math::
        W \leftarrow W (1 - \eta_0 \lambda), \quad
        m \leftarrow \mathrm{lerp}(m, g, 1-\beta_1), \quad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2, \quad
        W \leftarrow W - \frac{\eta_0}{1-\beta_1^t} \frac{m}{\sqrt{v/(1-\beta_2^t)} + \epsilon}

    The path COSMOS takes for embeddings, the output head, norms and biases.

    Note:
        The authors' code hard-codes ``m <- beta1 m + 0.1 g`` with ``1 - 0.9^t`` here, which is
        Adam only when ``beta1 = 0.9`` (with their README's ``beta1 = 0.95`` the step is twice
        Adam's); this is the Adam the paper describes.
    """
    beta1, beta2 = betas
    if weight_decay != 0.0:
        param.mul_(1.0 - lr * weight_decay)
    exp_avg.lerp_(grad, 1.0 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
    bias_correction1 = 1.0 - beta1**step
    bias_correction2_sqrt = math.sqrt(1.0 - beta2**step)
    second = exp_avg_sq
    if max_exp_avg_sq is not None:
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    denom = (second.sqrt() / bias_correction2_sqrt).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)


def cosmos_step(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    U: Tensor,
    S: Tensor,
    V: Tensor,
    step: int,
    *,
    lr: float,
    lr_ratio: float,
    betas: tuple[float, float],
    gamma: float,
    weight_decay: float = 0.0,
    eps: float = 1e-8,
    nesterov: bool = True,
    eps_inside_sqrt: bool = False,
    residual_tol: float | None = None,
    ns_steps: int = 5,
    ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    ns_dtype: torch.dtype = torch.bfloat16,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    r"""One full COSMOS step for one matrix, functionally: returns ``(W_{t+1}, M_t, U_t, S_t, V_t)``.

    .. math::
        M_t = \beta_1 M_{t-1} + (1-\beta_1) G_t, \quad (U_t, S_t) = \text{tracker}(U_{t-1}, S_{t-1}, G_t), \quad
        V_t = \beta_2 V_{t-1} + (1-\beta_2)(G_t U_t)^{\odot 2}

    .. math::
        \hat M_t = \begin{cases} \mathrm{lerp}(G_t, M_t, \beta_1)/(1-\beta_1^{t+1}) & \text{nesterov} \\
        M_t / (1-\beta_1^t) & \text{otherwise} \end{cases}, \qquad
        W_{t+1} = W_t (1 - \eta_0 \lambda) - \eta\, D_t(\hat M_t, U_t, V_t)

    with ``eta_0 = lr``, ``eta = lr * lr_ratio`` and ``D_t`` from :func:`cosmos_direction`.
    At ``step == 1`` the tracker is :func:`init_subspace` (``U`` and ``S`` inputs are only used
    for their shapes), afterwards :func:`update_subspace`.

    Args:
        param: ``W_t`` ``(m, n)`` in the compute dtype.
        grad: ``G_t`` ``(m, n)``.
        exp_avg, U, S, V: the state after step ``t - 1`` (zeros at ``t = 1``).
        step: ``t >= 1``.
        lr, lr_ratio, betas, gamma, weight_decay, eps, nesterov, eps_inside_sqrt, residual_tol,
        ns_steps, ns_coefficients, ns_dtype: see :class:`cosmos_optim.COSMOS`.

    Returns:
        New tensors ``(W_{t+1}, M_t, U_t, S_t, V_t)``; the inputs are not modified.

    Example:
        >>> import torch
        >>> W, G = torch.zeros(3, 2, dtype=torch.float64), torch.tensor([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
        >>> z = lambda *s: torch.zeros(*s, dtype=torch.float64)
        >>> W1, *_ = cosmos_step(W, G, z(3, 2), z(2, 1), z(1, 1), z(3, 1), 1, lr=1.0, lr_ratio=0.1, betas=(0.9, 0.99), gamma=0.2)
        >>> W1  # rank-1 G = a b^T: the step is -eta sqrt(n) sign(a) b^T/||b||
        tensor([[-0.1414,  0.0000],
                [-0.1414,  0.0000],
                [ 0.1414,  0.0000]], dtype=torch.float64)
    """
    beta1, beta2 = betas
    r = U.size(1)
    M = torch.lerp(exp_avg, grad, 1.0 - beta1)
    if step == 1:
        U_t, S_t = init_subspace(grad, r, beta2)
        GU = None
    else:
        U_t, S_t, GU = _track(U, S, grad, beta2)
    V_t = update_second_moment(V, grad, U_t, beta2, GU=GU)
    m_hat = nesterov_momentum(grad, M, beta1, step) if nesterov else M / (1.0 - beta1**step)
    D = cosmos_direction(
        m_hat,
        U_t,
        V_t,
        1.0 - beta2**step,
        eps=eps,
        gamma=gamma,
        eps_inside_sqrt=eps_inside_sqrt,
        residual_tol=residual_tol,
        ns_steps=ns_steps,
        ns_coefficients=ns_coefficients,
        ns_dtype=ns_dtype,
    )
    W = param * (1.0 - lr * weight_decay) if weight_decay != 0.0 else param.clone()
    W.add_(D, alpha=-lr * lr_ratio)
    return W, M, U_t, S_t, V_t
