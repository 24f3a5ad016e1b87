r"""PStorm: momentum-based variance-reduced proximal stochastic gradient (Xu and Xu, JOTA 2023).

Symbols follow the paper (arXiv:2006.00425, Algorithm 1) for ``min_x f(x) + h(x)``, ``f = E_ξ f(x; ξ)``:

.. math::
    d_0 = G(x_0; B_0), \qquad
    d_t = G(x_t; B_t) + (1 - \theta_t)\big(d_{t-1} - G(x_{t-1}; B_t)\big), \qquad
    x_{t+1} = \operatorname{prox}_{\eta_t h}(x_t - \eta_t d_t)

with the **same** minibatch ``B_t`` at ``x_t`` and ``x_{t-1}``. ``θ_t = 1`` is proximal SGD; with a
deterministic oracle ``d_t = ∇f(x_t)`` and the method is proximal gradient descent.

======================  ============================================================================
paper                   here
======================  ============================================================================
``G(x_t; B_t)``         ``g_t`` (the closure's gradient at the current params)
``G(x_{t-1}; B_t)``     ``g_prev_same_batch`` (the closure's gradient at the stored previous params)
``d_t``                 ``d`` (state ``"d"`` of :class:`PStorm`)
``θ_t`` (``β_t``)       ``theta``, ``momentum``
``η_t``                 ``eta``, ``lr`` (constant) or :func:`paper_schedule`
``L``                   ``L``, ``lipschitz`` (mean-squared smoothness constant)
``h``                   ``prox`` (a :class:`~stoc_ialm.prox.Regularizer`)
======================  ============================================================================

The pure functions (:func:`pstorm_direction`, :func:`prox_gradient_step`, :func:`paper_schedule`,
:func:`constant_schedule`) hold the math; :class:`PStorm` is the ``torch.optim`` shell around them.

References:
    Y. Xu and Y. Xu, "Momentum-based variance-reduced proximal stochastic gradient method for composite
    nonconvex stochastic optimization", J. Optim. Theory Appl. 196:266-297 (2023), arXiv:2006.00425.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from stoc_ialm.prox import Regularizer

__all__ = ["PStorm", "constant_schedule", "paper_schedule", "prox_gradient_step", "pstorm_direction"]

logger = logging.getLogger(__name__)

_PAPER_ETA = 4.0 ** (1.0 / 3.0) / 8.0
"""``η L (t + 4)^{1/3}`` of the paper's diminishing schedule: ``η_t = (4^{1/3} / (8L)) / (t + 4)^{1/3}``."""


def _real(name: str, value: object, *, low: float, strict: bool, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    out = float(value)
    if out < low or (strict and out == low) or (high is not None and out > high):
        rng = f"in [{low}, {high}]" if high is not None else f"{'>' if strict else '>='} {low}"
        raise ValueError(f"{name} must be {rng}, got {out}")
    return out


# -- pure functions ---------------------------------------------------------------------------------
def pstorm_direction(g_t: Tensor, g_prev_same_batch: Tensor, d_prev: Tensor, theta: float) -> Tensor:
    r"""The PStorm estimator (paper Algorithm 1, the update of ``d_t``).

    .. math:: d_t = G(x_t; B_t) + (1 - \theta_t)\big(d_{t-1} - G(x_{t-1}; B_t)\big)

    Args:
        g_t: ``G(x_t; B_t)``, any shape.
        g_prev_same_batch: ``G(x_{t-1}; B_t)``, the gradient at the previous iterate on the **same** batch.
        d_prev: ``d_{t-1}``.
        theta: ``θ_t ∈ [0, 1]``; 1 gives ``d_t = g_t`` exactly (SGD), 0 the SARAH/SPIDER recursion.

    Returns:
        ``d_t``, a new tensor of ``g_t``'s shape.

    Raises:
        ValueError: ``theta`` outside ``[0, 1]`` or mismatched shapes.

    Example:
        >>> import torch
        >>> pstorm_direction(torch.tensor([1.0]), torch.tensor([0.5]), torch.tensor([0.7]), 0.5)
        tensor([1.1000])
    """
    theta = _real("theta", theta, low=0.0, strict=False, high=1.0)
    if not g_t.shape == g_prev_same_batch.shape == d_prev.shape:
        raise ValueError(
            f"g_t, g_prev_same_batch and d_prev must have one shape, got {tuple(g_t.shape)}, "
            f"{tuple(g_prev_same_batch.shape)} and {tuple(d_prev.shape)}"
        )
    return g_t + (1.0 - theta) * (d_prev - g_prev_same_batch)


def prox_gradient_step(x: Tensor, d: Tensor, eta: float, prox: Regularizer | None = None) -> Tensor:
    r"""One proximal gradient step ``x_{t+1} = prox_{η h}(x − η d)`` (paper Algorithm 1, the update of ``x``).

    Args:
        x: ``x_t`` ``(n,)``.
        d: the direction ``d_t`` ``(n,)``.
        eta: ``η_t > 0``.
        prox: ``h``; ``None`` means ``h = 0`` (the result is ``x − η d``).

    Returns:
        ``x_{t+1}`` ``(n,)``, a new tensor.

    Example:
        >>> import torch
        >>> from stoc_ialm.prox import L1
        >>> prox_gradient_step(torch.tensor([1.0, 0.1]), torch.tensor([-2.0, 0.0]), 0.5, L1(1.0))
        tensor([1.5000, 0.0000])
    """
    eta = _real("eta", eta, low=0.0, strict=True)
    if x.shape != d.shape:
        raise ValueError(f"d must have the shape of x {tuple(x.shape)}, got {tuple(d.shape)}")
    y = x - eta * d
    return y if prox is None else prox.prox(y, eta)


def paper_schedule(L: float, t: int, *, scale: float = 1.0) -> tuple[float, float]:
    r"""The diminishing step and momentum of PStorm for single-sample minibatches (paper §3).

    .. math::
        \eta_t = \frac{s\, 4^{1/3}}{8L\,(t+4)^{1/3}}, \qquad
        \theta_t = \min\Big(1,\; \frac{1 + 24\eta_t^2L^2 - \eta_{t+1}/\eta_t}{1 + 4\eta_t^2L^2}\Big)

    ``s = scale = 1`` is the paper's schedule (``η_0 = 1/(8L)``). ``θ_t`` is always ``> 0`` (because
    ``η_{t+1} < η_t``) and, for ``s = 1``, ``< 1`` (``η_t L ≤ 1/8``); the clip at 1 only acts for a large
    ``s``, where it turns the step into proximal SGD. ``θ_0`` is defined but unused: ``d_0`` has no momentum.

    Args:
        L: the mean-squared smoothness constant, ``L > 0``.
        t: the iteration, ``t >= 0``.
        scale: ``s > 0``, a multiplier on ``η_t`` (``θ_t`` is computed from the scaled steps).

    Returns:
        ``(η_t, θ_t)``.

    Note:
        Formula as in the paper's diminishing-step theorem and in Yutong-Dai/S-PStorm
        (``src/solvers/PStorm.py``, ``stepsize_strategy="diminishing"``), which uses ``θ_t`` with index ``t``
        in ``d_t`` for ``t >= 1``, as here. The clip and ``scale`` are ours.

    Example:
        >>> eta, theta = paper_schedule(1.0, 0)
        >>> round(eta, 12), round(theta, 6)
        (0.125, 0.420407)
    """
    L = _real("L", L, low=0.0, strict=True)
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise ValueError(f"t must be an integer >= 0, got {t!r}")
    scale = _real("scale", scale, low=0.0, strict=True)
    eta = scale * _PAPER_ETA / (L * (t + 4) ** (1.0 / 3.0))
    ratio = ((t + 4) / (t + 5)) ** (1.0 / 3.0)  # η_{t+1}/η_t
    e2 = (eta * L) ** 2
    theta = (1.0 + 24.0 * e2 - ratio) / (1.0 + 4.0 * e2)
    return eta, min(theta, 1.0)


def constant_schedule(L: float, lr_scale: float, theta: float) -> tuple[float, float]:
    r"""The constant-step version: ``η = lr_scale / L`` and a fixed ``θ``.

    The paper's constant-step analysis takes ``η = Θ(1/L)`` and ``θ = Θ(η²L²)`` with a large first batch;
    this function does not tie ``θ`` to ``η`` (the spec's tuned value is ``θ = 0.1``).

    Args:
        L: smoothness constant, ``L > 0`` (``L_k`` of the ALM subproblem in the solver).
        lr_scale: ``c > 0`` in ``η = c/L``.
        theta: ``θ ∈ [0, 1]``.

    Returns:
        ``(η, θ)``.

    Example:
        >>> constant_schedule(4.0, 0.5, 0.1)
        (0.125, 0.1)
    """
    L = _real("L", L, low=0.0, strict=True)
    lr_scale = _real("lr_scale", lr_scale, low=0.0, strict=True)
    theta = _real("theta", theta, low=0.0, strict=False, high=1.0)
    return lr_scale / L, theta


# -- the optimizer shell ----------------------------------------------------------------------------
class _RngState:
    """The CPU generator's state and, when CUDA is initialised, every CUDA device's."""

    def __init__(self) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None  # type: ignore[no-untyped-call]

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


def _validate_group(group: dict[str, Any], index: int) -> None:
    """Check (and normalise ``lr`` of) one param group; ``ValueError`` naming the hyperparameter."""
    where = f" (param group {index})"
    momentum = group["momentum"]
    paper = isinstance(momentum, str)
    if paper:
        if momentum != "paper":
            raise ValueError(f"momentum must be a number in [0, 1] or 'paper', got {momentum!r}{where}")
        if group["lipschitz"] is None:
            raise ValueError(f"lipschitz is required with momentum='paper' (the schedule needs L){where}")
    else:
        try:
            _real("momentum", momentum, low=0.0, strict=False, high=1.0)
        except ValueError as err:
            raise ValueError(f"{err}{where}") from None
    if group["lipschitz"] is not None:
        try:
            group["lipschitz"] = _real("lipschitz", group["lipschitz"], low=0.0, strict=True)
        except ValueError as err:
            raise ValueError(f"{err}{where}") from None
    if group["lr"] is None:
        if not paper:
            raise ValueError(f"lr is required when momentum is a number{where}")
        group["lr"] = 1.0
    try:
        group["lr"] = _real("lr", group["lr"], low=0.0, strict=True)
    except ValueError as err:
        raise ValueError(f"{err}{where}") from None
    prox = group["prox"]
    if prox is not None and not isinstance(prox, Regularizer):
        raise ValueError(f"prox must be a stoc_ialm.prox.Regularizer or None, got {type(prox).__name__}{where}")
    for j, p in enumerate(group["params"]):
        if not p.is_floating_point():
            raise ValueError(f"param {j} has dtype {p.dtype}; PStorm needs floating-point parameters{where}")


class PStorm(Optimizer):
    r"""PStorm (Xu and Xu 2023) as a ``torch.optim.Optimizer`` for ``min f(params) + h(params)``.

    .. math::
        d_t = G(x_t; B_t) + (1 - \theta_t)\big(d_{t-1} - G(x_{t-1}; B_t)\big), \qquad
        x_{t+1} = \operatorname{prox}_{\eta_t h}(x_t - \eta_t d_t), \qquad d_0 = G(x_0; B_0)

    (paper Algorithm 1; see :mod:`stoc_ialm.pstorm`). ``x`` is, per param group, the concatenation of the
    group's flattened params, ``torch.cat([p.reshape(-1) for p in group["params"]])``; ``h`` is that
    group's ``prox``.

    **Closure protocol.** ``step(closure)`` needs a closure that evaluates the loss on **its own fixed
    minibatch** and back-propagates (``loss.backward()``), returning the loss, as for ``LBFGS``. Each step:

    1. ``p.grad`` is set to ``None`` and ``closure()`` is called at the current params ``x_t`` (the closure
       may call ``zero_grad`` itself; it need not);
    2. from the second step on, every param is swapped (copied) to the stored previous iterate ``x_{t−1}``,
       ``closure()`` is called again, the params are copied back. The closure captured the batch, so this is
       ``G(x_{t−1}; B_t)``. With ``replay_rng=True`` (default) the global CPU (and initialised CUDA) RNG
       state is rewound before this second call and reset after it to the state the first call left: both
       calls see the same dropout masks (and a batch sampled inside the closure with the global RNG is the
       same batch), and the RNG stream advances as if the closure had run once;
    3. ``d_t`` and the proximal step are formed from the pure functions above.

    So the closure runs once on the first step and twice on every later step, except when ``θ_t = 1`` for
    every param (then ``d_t = G(x_t; B_t)`` and the second call is skipped). Batch-norm running statistics
    are updated by both calls; put such models in ``eval()`` mode or freeze the statistics.

    After ``step``, ``p.grad`` holds ``G(x_t; B_t)``, the gradient the first call produced at the point
    where the returned loss was evaluated (the same tensor object), not the direction ``d_t``. ``step``
    returns that first loss.

    Args:
        params: parameters or param-group dicts. Every keyword below is a param-group default.
        lr: constant mode (``momentum`` a number): the step ``η > 0``, required. ``momentum="paper"``: a
            dimensionless multiplier ``s`` on the paper's ``η_t`` (default 1, the paper's schedule); LR
            schedulers scale it the same way in both modes.
        momentum: ``θ ∈ [0, 1]`` (constant; default 0.1, the spec's tuned value; 1 is proximal SGD) or
            ``"paper"`` for :func:`paper_schedule`.
        prox: the regularizer ``h`` of the group's flattened concatenation (``None``: ``h = 0``). An
            index-based regularizer (:class:`~stoc_ialm.prox.GroupL1`, :class:`~stoc_ialm.prox.Sum`,
            tensor-bounded :class:`~stoc_ialm.prox.Box`) indexes that concatenation, in group order.
        lipschitz: ``L > 0``, required with ``momentum="paper"`` and unused otherwise.
        replay_rng: rewind the global RNG for the second closure call (see above).

    State per param: ``step`` (updates so far, the ``t`` of the schedule), ``d`` (``d_{t−1}``, the param's
    shape) and ``prev`` (``x_{t−1}``). A param whose ``grad`` is ``None`` after the first call is skipped:
    it is not moved, takes no part in the group's prox, and its ``d`` and ``step`` are kept. Only the
    group's params with a gradient form the concatenation, so give index-based regularizers a group whose
    params all get gradients. The paper schedule's ``η_t`` of a group uses the largest ``step`` of its
    active params; ``θ_t`` uses each param's own ``step``.

    ``state_dict()`` stores each group's ``prox`` as its ``repr`` (so ``torch.load(weights_only=True)``
    works); ``load_state_dict`` keeps the optimizer's own ``prox`` objects (a mismatching ``repr`` is
    logged as a warning). A resumed run continues bit-identically.

    Note:
        ``θ_t`` is the paper's ``β_t``; the paper's analysis fixes ``η`` and ``θ`` from ``L``. ``prox`` on
        the concatenation (rather than per param) is what non-separable ``h`` (an L2 ball over the whole
        model) needs; for separable ``h`` the two are the same.

    Example:
        >>> import torch
        >>> from stoc_ialm.prox import L1
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
        >>> opt = PStorm([w], lr=0.1, momentum=0.5, prox=L1(0.1))
        >>> def closure():
        ...     loss = (w - torch.tensor([2.0, 0.0])).square().sum()
        ...     loss.backward()
        ...     return loss
        >>> for _ in range(50):
        ...     _ = opt.step(closure)
        >>> w.detach()
        tensor([1.9500, 0.0000])
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float | None = None,
        momentum: float | str = 0.1,
        prox: Regularizer | None = None,
        lipschitz: float | None = None,
        *,
        replay_rng: bool = True,
    ) -> None:
        if not isinstance(replay_rng, bool):
            raise ValueError(f"replay_rng must be True or False, got {replay_rng!r}")
        self.replay_rng = replay_rng
        defaults: dict[str, Any] = {"lr": lr, "momentum": momentum, "prox": prox, "lipschitz": lipschitz}
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (see ``torch.optim.Optimizer``); its hyperparameters are validated first."""
        super().add_param_group(param_group)
        try:
            _validate_group(self.param_groups[-1], len(self.param_groups) - 1)
        except ValueError:
            self.param_groups.pop()
            raise

    @staticmethod
    def _schedule(group: dict[str, Any], t: int) -> tuple[float, float]:
        """``(η_t, θ_t)`` of a group at iteration ``t``."""
        if group["momentum"] == "paper":
            return paper_schedule(float(group["lipschitz"]), t, scale=float(group["lr"]))
        return float(group["lr"]), float(group["momentum"])

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One PStorm step; ``closure`` (required) re-evaluates loss and gradients on its fixed batch."""
        if closure is None:
            raise ValueError("closure is required: PStorm evaluates the batch at the current and the previous params")
        params = [p for group in self.param_groups for p in group["params"]]
        for p in params:
            p.grad = None
        rng_before = _RngState() if self.replay_rng else None
        with torch.enable_grad():
            loss = closure()
        grads: dict[int, Tensor] = {}
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"PStorm does not support sparse gradients (param group {gi} param {pi})")
                grads[id(p)] = p.grad
        stateful = [p for p in params if self.state.get(p)]
        # x_t of every param that has (or gets) state: restored after the second call, then stored as x_{t−1}.
        current = {id(p): p.detach().clone() for p in params if self.state.get(p) or id(p) in grads}
        thetas: dict[int, float] = {}
        for group in self.param_groups:
            for p in group["params"]:
                if id(p) in grads and self.state.get(p):
                    thetas[id(p)] = self._schedule(group, int(self.state[p]["step"]))[1]
        prev_grads: dict[int, Tensor] = {}
        if any(theta < 1.0 for theta in thetas.values()):
            try:
                prev_grads = self._grads_at_prev(closure, params, stateful, current, rng_before)
            finally:
                for p in params:
                    p.grad = grads.get(id(p))  # G(x_t; B_t), also when the second call raised
            missing = [i for i, theta in thetas.items() if theta < 1.0 and i not in prev_grads]
            if missing:
                raise RuntimeError(
                    f"{len(missing)} param(s) got a gradient at the current params but none at the previous ones; "
                    "the closure must evaluate the same graph on its fixed batch (no state was changed)"
                )
        for group in self.param_groups:
            self._update_group(group, grads, prev_grads, thetas)
        # x_t becomes x_{t−1}, also for a stateful param skipped now (it did not move, so it is its own x_t).
        for p in params:
            if id(p) in current:
                self.state[p]["prev"] = current[id(p)]
        return loss

    def _grads_at_prev(
        self,
        closure: Callable[[], float],
        params: list[Tensor],
        stateful: list[Tensor],
        current: dict[int, Tensor],
        rng_before: _RngState | None,
    ) -> dict[int, Tensor]:
        """``G(x_{t−1}; B_t)``: the closure's gradients at the stored previous params (same batch, same RNG)."""
        rng_after = _RngState() if rng_before is not None else None
        for p in params:
            p.grad = None
        try:
            for p in stateful:
                p.copy_(self.state[p]["prev"])
            if rng_before is not None:
                rng_before.restore()
            with torch.enable_grad():
                closure()
            return {id(p): p.grad for p in params if p.grad is not None}
        finally:
            for p in stateful:
                p.copy_(current[id(p)])
            if rng_after is not None:
                rng_after.restore()

    def _update_group(
        self, group: dict[str, Any], grads: dict[int, Tensor], prev_grads: dict[int, Tensor], thetas: dict[int, float]
    ) -> None:
        active = [p for p in group["params"] if id(p) in grads]
        if not active:
            return
        t = max(int(self.state[p]["step"]) if self.state.get(p) else 0 for p in active)
        eta = self._schedule(group, t)[0]
        directions: list[Tensor] = []
        for p in active:
            g = grads[id(p)]
            theta = thetas.get(id(p), 1.0)  # no state yet: d_0 = G(x_0; B_0)
            d = g.clone() if theta == 1.0 else pstorm_direction(g, prev_grads[id(p)], self.state[p]["d"], theta)
            directions.append(d)
        x = torch.cat([p.detach().reshape(-1) for p in active])  # (sum of numels,)
        d_flat = torch.cat([d.reshape(-1) for d in directions])
        x_new = prox_gradient_step(x, d_flat, eta, group["prox"])
        offset = 0
        for p, d in zip(active, directions, strict=True):
            n = p.numel()
            p.copy_(x_new[offset : offset + n].view_as(p))
            offset += n
            state = self.state[p]  # created here on the first update
            state["d"] = d
            state["step"] = int(state.get("step", 0)) + 1

    # -- state dict ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The torch state dict, with each group's ``prox`` replaced by its ``repr`` (plain data only)."""
        sd = super().state_dict()
        for group in sd["param_groups"]:
            prox = group.get("prox")
            group["prox"] = None if prox is None else (prox if isinstance(prox, str) else repr(prox))
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict; hyperparameters and state come from it, the ``prox`` objects stay this optimizer's."""
        proxes = [group["prox"] for group in self.param_groups]
        super().load_state_dict(state_dict)
        for gi, (group, prox) in enumerate(zip(self.param_groups, proxes, strict=True)):
            saved = group.get("prox")
            if isinstance(saved, Regularizer):
                saved = repr(saved)
            if saved != (None if prox is None else repr(prox)):
                logger.warning(
                    "param group %d: saved prox %s differs from this optimizer's %r; keeping the latter",
                    gi,
                    saved,
                    prox,
                )
            group["prox"] = prox
            _validate_group(group, gi)
