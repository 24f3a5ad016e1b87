"""SOAP (Vyas et al. 2024): Adam run in the eigenbasis of Shampoo's Kronecker factors, the baseline COSMOS builds on.

COSMOS keeps SOAP's idea (Adam in a rotated basis) on a rank-``r`` subspace only; this module is
the full-rank method it is measured against. It is our own implementation of the paper's
Algorithm 3 with the defaults of the authors' code (``nikhilvyas/SOAP``, ``soap.py`` at a1e5535),
written as small pure functions (:func:`eigenbasis`, :func:`refresh_eigenbasis`, :func:`rotate`,
:func:`unrotate`) and a thin :class:`SOAP` optimizer around them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

_MOMENTS = ("exp_avg", "exp_avg_sq")
_FACTORS = ("L", "R", "Q_L", "Q_R")


def _compute_dtype(param: Tensor) -> torch.dtype:
    """float64 for float64 parameters, float32 for everything else (bf16/fp16 keep fp32 state)."""
    return torch.float64 if param.dtype == torch.float64 else torch.float32


def _matrix_shape(shape: torch.Size) -> tuple[int, int]:
    """The ``(m, n)`` matrix a tensor of ``shape`` is treated as: ``()`` -> (1, 1), ``(d,)`` -> (d, 1), ``(a, ...)`` -> (a, prod(...))."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], 1
    return shape[0], math.prod(shape[1:])


def eigenbasis(factor: Tensor) -> Tensor:
    """Eigenvectors of a symmetric factor ``P`` as columns, by descending eigenvalue.

    .. math::
        P = Q \\Lambda Q^T, \\qquad \\lambda_1 \\ge \\lambda_2 \\ge \\dots

    ``torch.linalg.eigh`` runs in the factor's dtype (float32 for float32 state) and is retried in
    float64 when it fails to converge; the result has the factor's dtype.

    Args:
        factor: ``(d, d)`` symmetric positive semi-definite.

    Returns:
        ``(d, d)`` orthogonal ``Q``.

    Example:
        >>> eigenbasis(torch.diag(torch.tensor([1.0, 3.0, 2.0]))).abs()  # columns e_1, e_2, e_0 (signs are free)
        tensor([[0., 0., 1.],
                [1., 0., 0.],
                [0., 1., 0.]])
    """
    try:
        _, vectors = torch.linalg.eigh(factor)
    except RuntimeError:  # torch.linalg.LinAlgError
        _, vectors = torch.linalg.eigh(factor.to(torch.float64))
        vectors = vectors.to(factor.dtype)
    return torch.flip(vectors, dims=[1])


def refresh_eigenbasis(factor: Tensor, basis: Tensor) -> tuple[Tensor, Tensor]:
    """One step of power iteration with QR, started from the previous basis (paper's cheap eigenbasis update).

    .. math::
        \\hat\\lambda = \\mathrm{diag}(Q^T P Q), \\quad
        Q \\leftarrow Q_{:,\\pi}, \\quad
        Q' = \\mathrm{QR}(P Q)_Q

    with ``pi`` the permutation that sorts ``hat lambda`` in descending order (authors' code).

    Args:
        factor: ``(d, d)`` symmetric factor ``P`` (``L`` or ``R``).
        basis: ``(d, d)`` orthogonal ``Q`` from the previous refresh.

    Returns:
        ``(Q', pi)``: the new ``(d, d)`` basis and the ``(d,)`` permutation, which the caller
        applies to the Adam second moment along the same side.

    Example:
        >>> P = torch.diag(torch.tensor([1.0, 4.0]))
        >>> q, order = refresh_eigenbasis(P, torch.eye(2))
        >>> order.tolist(), q.abs().tolist()
        ([1, 0], [[0.0, 1.0], [1.0, 0.0]])
    """
    estimates = (basis * (factor @ basis)).sum(dim=0)  # diag(Q^T P Q), (d,)
    order = torch.argsort(estimates, descending=True, stable=True)
    try:
        q, _ = torch.linalg.qr(factor @ basis[:, order])
    except RuntimeError:  # torch.linalg.LinAlgError
        q, _ = torch.linalg.qr((factor @ basis[:, order]).to(torch.float64))
        q = q.to(factor.dtype)
    return q, order


def rotate(x: Tensor, q_left: Tensor | None, q_right: Tensor | None) -> Tensor:
    """``Q_L^T X Q_R`` (into the eigenbasis); a missing side is the identity.

    Args:
        x: ``(m, n)``.
        q_left: ``(m, m)`` or ``None``.
        q_right: ``(n, n)`` or ``None``.

    Returns:
        ``(m, n)``.
    """
    if q_left is not None:
        x = q_left.T @ x
    if q_right is not None:
        x = x @ q_right
    return x


def unrotate(x: Tensor, q_left: Tensor | None, q_right: Tensor | None) -> Tensor:
    """``Q_L X Q_R^T`` (back to the parameter basis); the inverse of :func:`rotate`.

    Args:
        x: ``(m, n)``.
        q_left: ``(m, m)`` or ``None``.
        q_right: ``(n, n)`` or ``None``.

    Returns:
        ``(m, n)``.
    """
    if q_left is not None:
        x = q_left @ x
    if q_right is not None:
        x = x @ q_right.T
    return x


def _check_number(name: str, value: object, *, low: float = 0.0, high: float | None = None) -> float:
    """``value`` as a float in ``[low, high)``; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low or (high is not None and value >= high):
        expected = f">= {low}" if high is None else f"in [{low}, {high})"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return float(value)


def _check_int(name: str, value: object, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _validate(group: dict[str, Any]) -> None:
    """Check every hyperparameter of a param group (or of the defaults); ``ValueError`` naming the bad one."""
    _check_number("lr", group["lr"])
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        _check_number(f"betas[{i}]", beta, high=1.0)
    shampoo_beta = group["shampoo_beta"]
    if isinstance(shampoo_beta, bool) or not isinstance(shampoo_beta, (int, float)) or not math.isfinite(shampoo_beta):
        raise ValueError(f"shampoo_beta must be a finite number, got {shampoo_beta!r}")
    if shampoo_beta >= 1.0:
        raise ValueError(f"shampoo_beta must be in [0, 1), or negative to use betas[1], got {shampoo_beta!r}")
    _check_number("eps", group["eps"])
    _check_number("weight_decay", group["weight_decay"])
    _check_int("precondition_frequency", group["precondition_frequency"], low=1)
    _check_int("max_precond_dim", group["max_precond_dim"], low=1)
    for flag in ("precondition_1d", "normalize_grads", "correct_bias"):
        if not isinstance(group[flag], bool):
            raise ValueError(f"{flag} must be True or False, got {group[flag]!r}")


class SOAP(Optimizer):
    r"""SOAP (Vyas et al. 2024): Shampoo's eigenbasis, refreshed every ``f`` steps, with Adam running inside it.

    For a weight ``W`` ``(m, n)`` with gradient ``G_t`` (paper Algorithm 3; symbol -> argument:
    ``eta`` ``lr``, ``beta_1, beta_2`` ``betas``, ``beta_s`` ``shampoo_beta`` (the paper uses
    ``beta_2`` for the factors too), ``epsilon`` ``eps``, ``f`` ``precondition_frequency``,
    ``lambda`` ``weight_decay``):

    .. math::
        G'_t = Q_L^T G_t Q_R, \qquad
        M'_t = \beta_1 M'_{t-1} + (1-\beta_1) G'_t, \qquad
        V_t = \beta_2 V_{t-1} + (1-\beta_2) G'_t \odot G'_t

    .. math::
        N_t = Q_L \frac{M'_t}{\sqrt{V_t} + \epsilon} Q_R^T, \qquad
        W_{t+1} = \Big(W_t - \eta \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t} N_t\Big)(1 - \eta\lambda)

    .. math::
        L_t = \beta_s L_{t-1} + (1-\beta_s) G_t G_t^T, \qquad
        R_t = \beta_s R_{t-1} + (1-\beta_s) G_t^T G_t, \qquad
        Q_{L,R} \leftarrow \mathrm{QR}(L_t Q_L), \mathrm{QR}(R_t Q_R) \text{ when } f \mid t

    The factors ``L = E[G G^T]`` and ``R = E[G^T G]`` are updated *after* the step, so the current
    gradient never enters its own projection. The first basis is the full eigendecomposition
    (:func:`eigenbasis`), later ones one power-iteration step (:func:`refresh_eigenbasis`). When a
    basis moves, ``M'`` is rotated with it (``M' <- Q_L'^T (Q_L M' Q_R^T) Q_R'``, so ``Q_L M' Q_R^T``
    is the paper's momentum ``M`` in the parameter basis) while ``V`` is only permuted along with
    the eigenvalue order.

    Shapes: a 2-D weight is used as is; a tensor with ``ndim > 2`` (a conv kernel) is treated as
    the matrix ``(shape[0], prod(shape[1:]))`` (the reference code instead keeps one factor per
    dimension, or merges dimensions with ``merge_dims``; not supported here); a 1-D tensor is the
    column ``(d, 1)`` and gets only a left factor, and only with ``precondition_1d``; otherwise it
    is plain Adam with SOAP's conventions below. A side longer than ``max_precond_dim`` has no
    factor (identity), e.g. the vocabulary side of an embedding.

    Args:
        params: parameters or param-group dicts; every keyword below is a param-group default.
        lr: ``eta`` >= 0 (3e-3, authors' code).
        betas: ``(beta_1, beta_2)``, each in [0, 1) ((0.95, 0.95), authors' code).
        shampoo_beta: ``beta_s`` in [0, 1); negative (default -1) means ``betas[1]``.
        eps: ``epsilon`` >= 0 (1e-8).
        weight_decay: ``lambda`` >= 0, decoupled (0.01, authors' code).
        precondition_frequency: ``f`` >= 1 (10, authors' code).
        max_precond_dim: longest side that gets a factor (10000, authors' code: leaves common
            vocabulary sizes out while covering hidden layers).
        precondition_1d: give 1-D tensors a (d, d) factor too (False).
        normalize_grads: rescale the direction ``N_t`` to unit RMS before the step (False;
            the authors report it helps only at large ``f``).
        correct_bias: Adam's bias correction (True).

    Raises:
        ValueError: a hyperparameter out of range (the message names it).
        RuntimeError: sparse or complex gradients.

    State per parameter (symbol -> key, float32 for float32/bf16/fp16 parameters, float64 for
    float64 ones): ``t`` ``step`` (int), ``M'`` ``exp_avg``, ``V`` ``exp_avg_sq`` (both with the
    parameter's shape, in the rotated basis), and where a side is preconditioned ``L``, ``R``
    ``(m, m)``, ``(n, n)`` and ``Q_L``, ``Q_R``. A 2-D weight therefore holds
    ``2mn + 2m^2 + 2n^2`` numbers. ``p.grad`` is never modified.

    Note:
        Where the paper leaves a detail open, or the authors' code differs, this follows the
        authors' code (the reference for every published SOAP number):

        - Step 1 only initialises ``L``, ``R`` and the bases (``eigh``) and does not move the weights;
          the Adam counter ``t`` starts at the second call. This holds for every parameter,
          1-D ones included.
        - Bias correction and ``epsilon``: the step is ``eta sqrt(1-beta_2^t)/(1-beta_1^t)`` times
          ``M'/(sqrt(V) + epsilon)``, i.e. ``epsilon`` is added before the bias correction
          (effective ``epsilon / sqrt(1-beta_2^t)`` in ``torch.optim.AdamW``'s convention).
        - Weight decay (not in the paper's algorithm) is decoupled, ``eta * lambda``, and applied
          *after* the update, to the updated weights.
        - The refresh sorts the basis by the estimated eigenvalues ``diag(Q^T P Q)`` and permutes
          ``V`` the same way (Algorithm 4 in the paper gives only power iteration + QR).
        - ``M'`` is kept in the rotated basis and re-rotated only when a basis is refreshed; the
          reference rotates it back and forth every step, which changes nothing but rounding.
        - Not taken from the reference: the ``1e-30 * I`` added before ``eigh`` (a no-op in float32
          except for an all-zero factor), ``merge_dims`` and ``data_format``.

    Example:
        >>> model = torch.nn.Linear(4, 3)
        >>> opt = SOAP(model.parameters(), lr=1e-2)
        >>> for _ in range(2):
        ...     opt.zero_grad()
        ...     model(torch.ones(2, 4)).square().sum().backward()
        ...     opt.step()
        >>> sorted(opt.state[model.weight])
        ['L', 'Q_L', 'Q_R', 'R', 'exp_avg', 'exp_avg_sq', 'step']

    References:
        N. Vyas, D. Morwani, R. Zhao, M. Kwun, I. Shapira, D. Brandfonbrener, L. Janson, S. Kakade,
        "SOAP: Improving and Stabilizing Shampoo using Adam", arXiv:2409.11321 (ICLR 2025);
        code https://github.com/nikhilvyas/SOAP.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        shampoo_beta: float = -1.0,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        precondition_frequency: int = 10,
        max_precond_dim: int = 10000,
        precondition_1d: bool = False,
        normalize_grads: bool = False,
        correct_bias: bool = True,
    ) -> None:
        defaults: dict[str, Any] = {
            "lr": lr,
            "betas": betas,
            "shampoo_beta": shampoo_beta,
            "eps": eps,
            "weight_decay": weight_decay,
            "precondition_frequency": precondition_frequency,
            "max_precond_dim": max_precond_dim,
            "precondition_1d": precondition_1d,
            "normalize_grads": normalize_grads,
            "correct_bias": correct_bias,
        }
        _validate(defaults)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group (see ``torch.optim.Optimizer``); its hyperparameters are validated first."""
        _validate({**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}})
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("SOAP does not support sparse gradients")
                if torch.is_complex(p):
                    raise RuntimeError("SOAP does not support complex parameters")
                self._update(p, p.grad, group)
        return loss

    def _update(self, p: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        """One SOAP step for one parameter (see the class docstring)."""
        state = self.state[p]
        m, n = _matrix_shape(p.shape)
        g = grad.detach().to(_compute_dtype(p)).reshape(m, n)  # (m, n); only read, never written
        beta1, beta2 = group["betas"]
        shampoo_beta = group["shampoo_beta"] if group["shampoo_beta"] >= 0 else beta2
        if not state:
            self._init_state(p, state, g, group, shampoo_beta)
            return

        q_left, q_right = state.get("Q_L"), state.get("Q_R")
        exp_avg = state["exp_avg"].view(m, n)
        exp_avg_sq = state["exp_avg_sq"].view(m, n)
        g_rot = rotate(g, q_left, q_right)  # G' = Q_L^T G Q_R
        state["step"] += 1
        t = state["step"]
        exp_avg.mul_(beta1).add_(g_rot, alpha=1.0 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(g_rot, g_rot, value=1.0 - beta2)
        direction = unrotate(exp_avg / exp_avg_sq.sqrt().add_(group["eps"]), q_left, q_right)  # N = Q_L N' Q_R^T
        step_size = group["lr"]
        if group["correct_bias"]:
            step_size = step_size * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
        if group["normalize_grads"]:
            direction = direction / (1e-30 + direction.square().mean().sqrt())
        p.add_(direction.reshape(p.shape), alpha=-step_size)
        if group["weight_decay"] > 0:
            p.mul_(1.0 - group["lr"] * group["weight_decay"])

        self._accumulate_factors(state, g, shampoo_beta)
        if t % group["precondition_frequency"] == 0 and (q_left is not None or q_right is not None):
            momentum = unrotate(exp_avg, q_left, q_right)  # M in the parameter basis, (m, n)
            if q_left is not None:
                q_new, order = refresh_eigenbasis(state["L"], q_left)
                q_left.copy_(q_new)
                exp_avg_sq.copy_(exp_avg_sq.index_select(0, order))
            if q_right is not None:
                q_new, order = refresh_eigenbasis(state["R"], q_right)
                q_right.copy_(q_new)
                exp_avg_sq.copy_(exp_avg_sq.index_select(1, order))
            exp_avg.copy_(rotate(momentum, q_left, q_right))

    @staticmethod
    def _accumulate_factors(state: dict[str, Any], g: Tensor, shampoo_beta: float) -> None:
        """``L <- beta_s L + (1-beta_s) G G^T``, ``R <- beta_s R + (1-beta_s) G^T G`` for the sides that have one."""
        if "L" in state:
            state["L"].lerp_(g @ g.T, 1.0 - shampoo_beta)
        if "R" in state:
            state["R"].lerp_(g.T @ g, 1.0 - shampoo_beta)

    def _init_state(
        self, p: Tensor, state: dict[str, Any], g: Tensor, group: dict[str, Any], shampoo_beta: float
    ) -> None:
        """First call for ``p``: zero moments, the factors from ``G_1``, their ``eigh`` bases; no update (see Note)."""
        m, n = g.shape
        dtype, device = g.dtype, g.device
        state["step"] = 0
        state["exp_avg"] = torch.zeros(p.shape, dtype=dtype, device=device)
        state["exp_avg_sq"] = torch.zeros(p.shape, dtype=dtype, device=device)
        max_dim = group["max_precond_dim"]
        if (p.ndim >= 2 or group["precondition_1d"]) and m <= max_dim:
            state["L"] = torch.zeros(m, m, dtype=dtype, device=device)
        if p.ndim >= 2 and n <= max_dim:
            state["R"] = torch.zeros(n, n, dtype=dtype, device=device)
        self._accumulate_factors(state, g, shampoo_beta)
        if "L" in state:
            state["Q_L"] = eigenbasis(state["L"])
        if "R" in state:
            state["Q_R"] = eigenbasis(state["R"])

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict, keeping the state in its compute dtype.

        ``torch.optim.Optimizer.load_state_dict`` casts floating state to the parameter dtype
        (bfloat16 for bfloat16 parameters); the saved tensors are put back at their own precision
        afterwards, so that a resumed run continues bit for bit.
        """
        saved_groups = state_dict.get("param_groups", [])
        saved_state = state_dict.get("state", {})
        super().load_state_dict(state_dict)
        saved_ids = [index for group in saved_groups for index in group["params"]]
        params = [p for group in self.param_groups for p in group["params"]]
        for index, p in zip(saved_ids, params, strict=True):
            saved = saved_state.get(index)
            state = self.state.get(p)
            if not saved or not state:
                continue
            dtype = _compute_dtype(p)
            for key in (*_MOMENTS, *_FACTORS):
                value = saved.get(key)
                if isinstance(value, Tensor):
                    state[key] = value.to(device=p.device, dtype=dtype).clone()
            if isinstance(state.get("step"), Tensor):
                state["step"] = int(state["step"].item())
