"""``COSMOS``: the optimizer shell around :mod:`cosmos_optim.functional`."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor
from torch.optim import Optimizer

from cosmos_optim.functional import NS_COEFFICIENTS, adamw_update, cosmos_step

if TYPE_CHECKING:
    from cosmos_optim.memory import MemoryReport

_DTYPES: dict[str, torch.dtype] = {
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float32": torch.float32,
    "float64": torch.float64,
}

_COSMOS_STATE = ("exp_avg", "U", "S", "V")
_ADAM_STATE = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def _compute_dtype(param: Tensor) -> torch.dtype:
    """float64 for float64 parameters, float32 for everything else (bf16/fp16 keep fp32 state)."""
    return torch.float64 if param.dtype == torch.float64 else torch.float32


def _is_dtensor(t: Tensor) -> bool:
    return type(t).__name__ == "DTensor" and hasattr(t, "full_tensor")


def _check_beta(name: str, value: object) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (beta1, beta2), got {value!r}")
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ValueError(f"{name}[{i}] must be a number in [0, 1), got {v!r}")
    b1, b2 = float(value[0]), float(value[1])
    for i, b in enumerate((b1, b2)):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"{name}[{i}] must be in [0, 1), got {b}")
    return b1, b2


def _validate_group(group: dict[str, Any], index: int) -> None:
    """Check every hyperparameter of one param group; raise ``ValueError`` naming it."""

    def real(name: str, *, low: float = 0.0, strict: bool = False) -> None:
        value = group[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r} (param group {index})")
        if value < low or (strict and value == low):
            op = ">" if strict else ">="
            raise ValueError(f"{name} must be {op} {low}, got {value} (param group {index})")

    real("lr")
    real("lr_ratio", strict=True)
    real("eps", strict=True)  # eps also guards the two Frobenius normalisations (0/0 with eps = 0)
    real("weight_decay")
    if group["gamma"] is not None:
        real("gamma")
    group["betas"] = _check_beta("betas", group["betas"])
    if group["adam_betas"] is not None:
        group["adam_betas"] = _check_beta("adam_betas", group["adam_betas"])
    rank = group["rank"]
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise ValueError(f"rank must be an integer >= 0, got {rank!r} (param group {index})")
    steps = group["ns_steps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"ns_steps must be an integer >= 1, got {steps!r} (param group {index})")
    coeffs = group["ns_coefficients"]
    if not isinstance(coeffs, (tuple, list)) or len(coeffs) != 3:
        raise ValueError(f"ns_coefficients must be three numbers (a, b, c), got {coeffs!r} (param group {index})")
    group["ns_coefficients"] = tuple(float(c) for c in coeffs)
    ns_dtype = group["ns_dtype"]
    if isinstance(ns_dtype, str):
        if ns_dtype not in _DTYPES:
            raise ValueError(f"ns_dtype must be one of {sorted(_DTYPES)}, got {ns_dtype!r} (param group {index})")
    elif ns_dtype not in _DTYPES.values():
        raise ValueError(f"ns_dtype must be a floating torch.dtype, got {ns_dtype!r} (param group {index})")
    if group["residual_tol"] is not None:
        real("residual_tol")
    if group["rank"] == 0 and group["gamma"] == 0 and group["use_cosmos"] is not False:
        raise ValueError(
            f"rank=0 with gamma=0 leaves COSMOS no update direction (no subspace and no Muon part) (param group {index})"
        )
    if group["use_cosmos"] not in (None, True, False):
        raise ValueError(f"use_cosmos must be None, True or False, got {group['use_cosmos']!r} (param group {index})")
    for flag in ("nesterov", "amsgrad", "eps_inside_sqrt", "maximize", "check_finite", "reshape_conv", "transposed"):
        if not isinstance(group[flag], bool):
            raise ValueError(f"{flag} must be True or False, got {group[flag]!r} (param group {index})")
    names = group.get("param_names")
    for j, p in enumerate(group["params"]):
        label = f"param group {index} param {j}" + (f" ({names[j]})" if names else "")
        if not p.is_floating_point():
            raise ValueError(f"{label} has dtype {p.dtype}; COSMOS needs floating-point parameters")
        if getattr(p, "_fsdp_flattened", False):  # FSDP1 marks its FlatParameter and, with use_orig_params, the views
            raise ValueError(
                f"{label} belongs to an FSDP1 (FullyShardedDataParallel) module, whose parameters are flattened "
                "1-D shards: COSMOS would see no matrices. Shard with FSDP2 (torch.distributed.fsdp.fully_shard) instead"
            )
        if group["use_cosmos"] is True and (p.ndim < 2 or (p.ndim > 2 and not group["reshape_conv"])):
            raise ValueError(
                f"{label} has shape {tuple(p.shape)}; COSMOS needs 2-D weights (set use_cosmos=False for this "
                "group, or reshape_conv=True to treat a conv weight as (out_channels, in_channels * kernel))"
            )
        if group["transposed"] and p.ndim != 2 and COSMOS._takes_cosmos(group, p):  # 1-D params go to AdamW
            raise ValueError(f"{label} has shape {tuple(p.shape)}; transposed=True needs 2-D weights")


class COSMOS(Optimizer):
    r"""COSMOS (Liu et al. 2025): SOAP on the leading eigensubspace of each weight, Muon on the rest.

    For a weight ``W`` ``(m, n)`` (``nn.Linear`` layout, the subspace on the input side ``n``)
    with gradient ``G_t``, rank ``r = min(rank, m, n)``:

    .. math::
        M_t = \beta_1 M_{t-1} + (1-\beta_1) G_t, \qquad
        U_t = \mathrm{QR}\big(\beta_2 U_{t-1} S_{t-1} + (1-\beta_2) G_t^T G_t U_{t-1}\big), \qquad
        S_t = \beta_2 T^T S_{t-1} T + (1-\beta_2) (G_t U_t)^T G_t U_t

    .. math::
        V_t = \beta_2 V_{t-1} + (1-\beta_2)(G_t U_t)^{\odot 2}, \qquad
        A_t = \frac{\hat M_t U_t}{\sqrt{V_t/(1-\beta_2^t)} + \epsilon} U_t^T, \qquad
        B_t = \sqrt{mn}\,\frac{\mathrm{NS}_5(R_t)}{\lVert\mathrm{NS}_5(R_t)\rVert}, \quad R_t = \hat M_t (I - U_t U_t^T)

    .. math::
        W_{t+1} = W_t(1 - \eta_0\lambda) - \eta \sqrt{mn}\,\frac{A_t + \gamma B_t}{\lVert A_t + \gamma B_t\rVert_F}

    (paper Algorithm 1, eqs. of §3; see :mod:`cosmos_optim.functional`). ``eta_0 = lr``,
    ``eta = lr * lr_ratio``; every hidden-matrix step therefore has per-entry RMS exactly ``eta``.
    Parameters that do not take the COSMOS path (1-D tensors, and whatever a group marks
    ``use_cosmos=False``: embeddings, the output head, norms, biases) get AdamW with ``lr``.
    Build the paper's routing with :func:`cosmos_optim.cosmos_param_groups`.

    Args:
        params: parameters, named parameters or param-group dicts. Every keyword below is a
            param-group default (per group, kept in ``state_dict``, schedulable).
        lr: ``eta_0``, the AdamW learning rate, and the base of the hidden step (default 1e-3, authors' code).
        betas: ``(beta1, beta2)``; ``beta2`` drives ``U``, ``S`` and ``V`` (authors' code; default (0.9, 0.999)).
        eps: ``epsilon`` (1e-8).
        lr_ratio: ``eta / eta_0`` (0.1, authors' code; their README uses 0.2 with ``lr=2e-3``).
        rank: ``r`` (64, authors' code; the paper uses about 0.05 d). Clamped to ``min(m, n)``
            per matrix and recorded in the state; ``0`` gives pure normalised Muon.
        weight_decay: ``lambda``, decoupled, applied as ``W (1 - lr * lambda)`` on every path (authors' code).
        gamma: weight of the Muon part (0.2, authors' code). ``None`` means ``lr_ratio``, the
            paper's heuristic ``gamma = eta / eta_0``.
        nesterov: Nesterov momentum as in the authors' code (default True); ``False`` uses the
            bias-corrected EMA ``M_t/(1-beta1^t)`` of the paper.
        amsgrad: AMSGrad on the AdamW path (authors' code; it never affects the COSMOS path).
        adam_betas: betas of the AdamW path (``None``: ``betas``).
        ns_steps, ns_coefficients, ns_dtype: the Newton-Schulz iteration (5, Muon's quintic, bfloat16).
        eps_inside_sqrt: ``sqrt((V + eps)/(1 - beta2^t))`` as the paper writes it instead of
            ``sqrt(V/(1 - beta2^t)) + eps`` (authors' code).
        residual_tol: the residual guard ``tau`` (see :func:`~cosmos_optim.functional.cosmos_direction`;
            it also zeroes the columns of the SOAP part that the gradients never reached); ``None`` = 1e-4
            in float32, 1e-10 in float64; ``0`` = off (authors' behaviour).
        use_cosmos: ``True`` COSMOS path, ``False`` AdamW, ``None`` by shape (2-D -> COSMOS).
        maximize: ascend instead of descend.
        check_finite: raise ``FloatingPointError`` naming the parameter before any update when a
            gradient holds NaN or inf (default True; one host synchronisation per step; turn it off
            to skip that sync, e.g. under a GradScaler that skips non-finite steps itself).
        reshape_conv: treat a weight with ``ndim > 2`` (conv) as ``(shape[0], prod(shape[1:]))``.
        transposed: the weight is stored ``(in, out)`` (Hugging Face ``Conv1D``): the subspace
            lives on ``size(0)``.

    State per COSMOS parameter (paper symbol -> key): ``M_t`` ``exp_avg``, ``U_t`` ``U``,
    ``S_t`` ``S``, ``V_t`` ``V``, plus ``step`` and ``rank``; AdamW parameters hold ``step``,
    ``exp_avg``, ``exp_avg_sq``. State is float32 for float32/bfloat16/float16 parameters and
    float64 for float64 ones; ``p.grad`` is never modified.

    Note:
        Deviations from the authors' code (``lliu606/COSMOS``, ``COSMOS_optim.py``), each for a
        measured defect: the AdamW path is real AdamW (theirs hard-codes ``beta1 = 0.9``);
        the initial basis comes from ``eigh`` instead of a full SVD that can fail to converge; the
        residual guard; ``rank`` is clamped instead of crashing; ``p.grad`` is left intact; every
        hyperparameter is per group; no ``torch.compile`` at import; bfloat16 parameters work.
        Routing is explicit (``use_cosmos``) instead of ``p.size(0) <= 10000``.

    Example:
        >>> import torch
        >>> from cosmos_optim import COSMOS
        >>> model = torch.nn.Linear(8, 4)
        >>> opt = COSMOS(model.parameters(), lr=1e-3, rank=2)
        >>> model(torch.randn(16, 8)).square().mean().backward()
        >>> opt.step()
        >>> opt.state[model.weight]["U"].shape
        torch.Size([8, 2])
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]] | Iterable[tuple[str, Tensor]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        lr_ratio: float = 0.1,
        rank: int = 64,
        weight_decay: float = 0.0,
        gamma: float | None = 0.2,
        nesterov: bool = True,
        amsgrad: bool = False,
        *,
        adam_betas: tuple[float, float] | None = None,
        ns_steps: int = 5,
        ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
        ns_dtype: torch.dtype | str = torch.bfloat16,
        eps_inside_sqrt: bool = False,
        residual_tol: float | None = None,
        use_cosmos: bool | None = None,
        maximize: bool = False,
        check_finite: bool = True,
        reshape_conv: bool = False,
        transposed: bool = False,
    ) -> None:
        defaults: dict[str, Any] = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "lr_ratio": lr_ratio,
            "rank": rank,
            "weight_decay": weight_decay,
            "gamma": gamma,
            "nesterov": nesterov,
            "amsgrad": amsgrad,
            "adam_betas": adam_betas,
            "ns_steps": ns_steps,
            "ns_coefficients": ns_coefficients,
            "ns_dtype": ns_dtype,
            "eps_inside_sqrt": eps_inside_sqrt,
            "residual_tol": residual_tol,
            "use_cosmos": use_cosmos,
            "maximize": maximize,
            "check_finite": check_finite,
            "reshape_conv": reshape_conv,
            "transposed": transposed,
        }
        # Validate the defaults once up front so that a bad keyword fails with its own name even
        # when every group overrides it.
        _validate_group({**defaults, "params": []}, 0)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (see ``torch.optim.Optimizer``); its hyperparameters are validated first."""
        super().add_param_group(param_group)
        try:
            _validate_group(self.param_groups[-1], len(self.param_groups) - 1)
        except ValueError:
            self.param_groups.pop()
            raise

    # -- routing ------------------------------------------------------------------------------
    @staticmethod
    def _takes_cosmos(group: dict[str, Any], p: Tensor) -> bool:
        flag = group["use_cosmos"]
        if flag is None:
            return p.ndim == 2 or (p.ndim > 2 and bool(group["reshape_conv"]))
        return bool(flag)

    @staticmethod
    def _label(group: dict[str, Any], gi: int, pi: int) -> str:
        names = group.get("param_names")
        return f"param group {gi} param {pi}" + (f" ({names[pi]})" if names else "")

    # -- step ---------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        # Checks on every gradient before any state changes, so an error leaves everything intact.
        checked: list[tuple[int, int, Tensor]] = []
        flags: list[Tensor] = []
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                grad = p.grad
                if grad is None:
                    continue
                if grad.is_sparse:
                    raise RuntimeError(f"COSMOS does not support sparse gradients ({self._label(group, gi, pi)})")
                if grad.is_complex():
                    raise RuntimeError(f"COSMOS does not support complex gradients ({self._label(group, gi, pi)})")
                if group["check_finite"]:
                    local = grad.to_local() if _is_dtensor(grad) else grad
                    checked.append((gi, pi, p))
                    flags.append(torch.isfinite(local).all())
        # One host sync for all gradients; the offender is looked up only when one is found. Under FSDP2
        # each rank sees its own shard, so the verdict is agreed over all ranks (otherwise the ranks
        # whose shards are finite would go on into the gathers of the update and hang).
        if flags:
            ok = torch.stack([f.to(flags[0].device) for f in flags]).all()
            if any(p.grad is not None and _is_dtensor(p.grad) for _, _, p in checked):
                import torch.distributed as dist

                verdict = ok.to(torch.int32)
                dist.all_reduce(verdict, op=dist.ReduceOp.MIN)
                ok = verdict.bool()
            if not bool(ok):
                step = 1
                for (gi, pi, p), flag in zip(checked, flags, strict=True):
                    step = self.state.get(p, {}).get("step", 0) + 1  # no entry is created for p
                    if not bool(flag):
                        group = self.param_groups[gi]
                        raise FloatingPointError(
                            f"non-finite gradient in {self._label(group, gi, pi)} of shape {tuple(p.shape)} at step "
                            f"{step}; no parameter or state was updated"
                        )
                raise FloatingPointError(
                    f"non-finite gradient on another rank at step {step}; no parameter or state was updated"
                )
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if self._takes_cosmos(group, p):
                    self._cosmos_param(group, p)
                else:
                    self._adam_param(group, p)
        return loss

    def _adam_param(self, group: dict[str, Any], p: Tensor) -> None:
        state = self.state[p]
        grad = p.grad
        assert grad is not None
        dtype = _compute_dtype(p)
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
        state["step"] += 1
        g = grad.to(dtype)
        if group["maximize"]:
            g = -g
        low_precision = p.dtype != dtype
        target = p.detach().to(dtype) if low_precision else p
        adamw_update(
            target,
            g,
            state["exp_avg"],
            state["exp_avg_sq"],
            state["step"],
            lr=float(group["lr"]),
            betas=group["adam_betas"] if group["adam_betas"] is not None else group["betas"],
            eps=float(group["eps"]),
            weight_decay=float(group["weight_decay"]),
            max_exp_avg_sq=state.get("max_exp_avg_sq") if group["amsgrad"] else None,
        )
        if low_precision:
            p.copy_(target)

    def _cosmos_param(self, group: dict[str, Any], p: Tensor) -> None:
        state = self.state[p]
        grad = p.grad
        assert grad is not None
        dtype = _compute_dtype(p)
        dtensor = _is_dtensor(p)
        # FSDP2 shards rows: gather the full matrix, compute the update once per rank, keep the shard.
        full = cast(Tensor, p.full_tensor()) if dtensor else p  # type: ignore[attr-defined]
        g_full = cast(Tensor, grad.full_tensor()) if _is_dtensor(grad) else grad  # type: ignore[attr-defined]
        W = full.detach().to(dtype)
        G = g_full.to(dtype)
        shape = W.shape
        if W.ndim > 2:
            W = W.reshape(shape[0], -1)
            G = G.reshape(shape[0], -1)
        if group["transposed"]:
            W, G = W.T, G.T
        if group["maximize"]:
            G = -G
        m, n = W.shape
        if not state:
            r = min(int(group["rank"]), m, n)
            state["step"] = 0
            state["rank"] = r
            state["exp_avg"] = torch.zeros(m, n, dtype=dtype, device=W.device)
            state["U"] = torch.zeros(n, r, dtype=dtype, device=W.device)
            state["S"] = torch.zeros(r, r, dtype=dtype, device=W.device)
            state["V"] = torch.zeros(m, r, dtype=dtype, device=W.device)
        state["step"] += 1
        ns_dtype = group["ns_dtype"]
        gamma = group["gamma"] if group["gamma"] is not None else group["lr_ratio"]
        W_new, M, U, S, V = cosmos_step(
            W,
            G,
            state["exp_avg"],
            state["U"],
            state["S"],
            state["V"],
            state["step"],
            lr=float(group["lr"]),
            lr_ratio=float(group["lr_ratio"]),
            betas=group["betas"],
            gamma=float(gamma),
            weight_decay=float(group["weight_decay"]),
            eps=float(group["eps"]),
            nesterov=group["nesterov"],
            eps_inside_sqrt=group["eps_inside_sqrt"],
            residual_tol=group["residual_tol"],
            ns_steps=group["ns_steps"],
            ns_coefficients=group["ns_coefficients"],
            ns_dtype=_DTYPES[ns_dtype] if isinstance(ns_dtype, str) else ns_dtype,
        )
        state["exp_avg"], state["U"], state["S"], state["V"] = M, U, S, V
        if group["transposed"]:
            W_new = W_new.T
        W_new = W_new.reshape(shape).to(p.dtype)
        if dtensor:
            from torch.distributed.tensor import DTensor, Replicate

            replicated = DTensor.from_local(W_new, p.device_mesh, [Replicate()] * p.device_mesh.ndim, run_check=False)  # type: ignore[attr-defined]
            local = replicated.redistribute(p.device_mesh, p.placements).to_local()  # type: ignore[attr-defined]
            p.to_local().copy_(local)  # type: ignore[attr-defined]
        else:
            p.copy_(W_new)

    def memory_report(self) -> MemoryReport:
        """Optimizer-state bytes per parameter and in total (see :func:`cosmos_optim.memory_report`)."""
        from cosmos_optim.memory import memory_report

        return memory_report(self)

    # -- state dict ---------------------------------------------------------------------------
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict; shapes are checked first and the state is kept in its compute dtype.

        Raises:
            ValueError: when a saved COSMOS state does not fit a parameter (different rank or
                shape); nothing is loaded then.
        """
        saved_groups = state_dict.get("param_groups", [])
        saved_state = state_dict.get("state", {})
        if len(saved_groups) == len(self.param_groups):
            for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=False)):
                for pi, (index, p) in enumerate(zip(saved["params"], group["params"], strict=False)):
                    st = saved_state.get(index)
                    if not st or "U" not in st:
                        continue
                    m = p.shape[0] if p.ndim >= 1 else 1
                    n = p.numel() // max(m, 1)
                    if saved.get("transposed", False):
                        m, n = n, m
                    r = int(st["rank"])
                    expected = {"exp_avg": (m, n), "U": (n, r), "S": (r, r), "V": (m, r)}
                    for key, shp in expected.items():
                        got = tuple(st[key].shape)
                        if got != shp:
                            raise ValueError(
                                f"state_dict does not fit {self._label(group, gi, pi)} of shape {tuple(p.shape)}: "
                                f"{key} has shape {got}, expected {shp} (rank {r})"
                            )
        super().load_state_dict(state_dict)
        # torch casts floating state to the parameter dtype (bfloat16 for bfloat16 parameters);
        # COSMOS keeps float32 state for them, so the saved tensors are put back at full precision.
        saved_params = [index for saved in saved_groups for index in saved["params"]]
        params = [p for group in self.param_groups for p in group["params"]]
        for index, p in zip(saved_params, params, strict=False):
            saved_st = saved_state.get(index)
            st = self.state.get(p)
            if not saved_st or not st:
                continue
            dtype = _compute_dtype(p)
            for key in (*_COSMOS_STATE, *_ADAM_STATE):
                value = saved_st.get(key)
                if isinstance(value, Tensor) and not _is_dtensor(value):
                    st[key] = value.to(device=p.device, dtype=dtype).clone()
            for key in ("step", "rank"):
                if isinstance(st.get(key), Tensor):
                    st[key] = int(st[key].item())
