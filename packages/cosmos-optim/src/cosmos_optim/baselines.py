"""The optimizers COSMOS is compared with, built side by side under one learning-rate convention.

:func:`make_optimizer` builds AdamW, Muon (with AdamW for the non-matrix parameters), SOAP and
COSMOS for the same model, so that a benchmark loop can swap them by name. ``lr`` always sets
the step of the *hidden matrices* (the weights of the ``nn.Linear`` layers inside the network,
routed by :func:`cosmos_optim.routing.split_matrix_params`); ``adam_lr`` is the AdamW learning
rate of everything else (embeddings, output head, norms, biases) for the methods that split the
model that way. What the step size of a hidden ``(m, n)`` matrix means differs by method:

==============  ===============================  ===================  ========================================
name            hidden matrices                  everything else      ``lr`` for a hidden matrix
==============  ===============================  ===================  ========================================
adamw           ``torch.optim.AdamW(lr)``        AdamW(``lr``)        per-entry step about ``lr`` (Adam)
muon            ``torch.optim.Muon(lr)``         AdamW(``adam_lr``)   ``lr * sqrt(max(1, m/n))`` times an
                                                                      orthogonalised matrix: per-entry RMS
                                                                      about ``lr * sqrt(max(1, m/n) / max(m, n))``
soap            :class:`~cosmos_optim.SOAP`      SOAP(``lr``)         per-entry step about ``lr`` (Adam in the
                (``lr``)                         (1-D: Adam)          eigenbasis)
cosmos          :class:`~cosmos_optim.COSMOS`,   AdamW(``adam_lr``)   per-entry RMS exactly ``lr``
                ``eta = lr``                     ``= eta_0``          (``lr_ratio = lr / adam_lr``)
heavyball-soap  ``heavyball.SOAP(lr)``           same                 as soap
heavyball-muon  ``heavyball.Muon(lr)``           AdamW(``adam_lr``)   heavyball's own Muon scaling
==============  ===============================  ===================  ========================================

``adam_lr`` defaults to 2e-3 (the AdamW learning rate of the Muon and COSMOS benchmark runs) and
is ignored by adamw and soap. For cosmos, ``gamma`` defaults to the paper's heuristic
``gamma = eta / eta_0 = lr / adam_lr``. ``betas`` default per method: AdamW (0.9, 0.95) (nanoGPT),
the AdamW part of muon (0.9, 0.95), SOAP (0.95, 0.95) (authors' code), COSMOS its own default.
``weight_decay`` (default 0) applies to every parameter of every method, each in its own convention:
decoupled ``W (1 − lr_group · wd)`` with the group's lr, which for COSMOS's hidden matrices is ``adam_lr``
(η0, the authors' convention) and for Muon's is ``lr``; compare methods at ``wd > 0`` with that in mind.
torch's Muon scales its step by the stored shape ``(A, B)``, so a Hugging Face ``Conv1D`` weight (stored
``(in, out)``) gets the transposed shape's factor. The two heavyball
anchors exist only when the optional ``heavyball`` package is installed
(``pip install 'cosmos-optim[anchors]'``); they compile on first use and are meant for benchmarks.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from cosmos_optim.soap import SOAP

OPTIMIZERS: tuple[str, ...] = ("adamw", "muon", "soap", "cosmos")
"""The optimizers every installation can build."""

HEAVYBALL_OPTIMIZERS: tuple[str, ...] = ("heavyball-soap", "heavyball-muon")
"""Anchors from the optional ``heavyball`` package (extra ``[anchors]``)."""

DEFAULT_ADAM_LR = 2e-3
"""AdamW learning rate of the non-matrix parameters for muon and cosmos when ``adam_lr`` is not given."""

ADAMW_BETAS: tuple[float, float] = (0.9, 0.95)
SOAP_BETAS: tuple[float, float] = (0.95, 0.95)
MUON_NS_COEFFICIENTS: tuple[float, float, float] = (3.4445, -4.7750, 2.0315)

_ANCHORS_INSTALL = "pip install 'cosmos-optim[anchors]'"


def available_optimizers() -> tuple[str, ...]:
    """The names :func:`make_optimizer` accepts here: :data:`OPTIMIZERS`, plus the heavyball anchors when installed.

    Example:
        >>> available_optimizers()[:4]
        ('adamw', 'muon', 'soap', 'cosmos')
    """
    if importlib.util.find_spec("heavyball") is None:
        return OPTIMIZERS
    return OPTIMIZERS + HEAVYBALL_OPTIMIZERS


def _import_heavyball() -> ModuleType:
    try:
        return importlib.import_module("heavyball")
    except ImportError as err:
        raise ImportError(f"the heavyball anchors need the optional heavyball package: {_ANCHORS_INSTALL}") from err


def _check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _adamw(params: Iterable[Any], *, lr: float, betas: tuple[float, float], **kwargs: Any) -> torch.optim.AdamW:
    """``torch.optim.AdamW`` with the fused kernel where torch supports it (floating params on CPU/CUDA), else foreach."""
    params = list(params)
    if "fused" in kwargs or "foreach" in kwargs:
        return torch.optim.AdamW(params, lr=lr, betas=betas, **kwargs)
    try:
        return torch.optim.AdamW(params, lr=lr, betas=betas, fused=True, **kwargs)
    except RuntimeError:
        return torch.optim.AdamW(params, lr=lr, betas=betas, foreach=True, **kwargs)


class MuonWithAdamW(Optimizer):
    """``torch.optim.Muon`` on the hidden matrices and ``torch.optim.AdamW`` on the rest, as one optimizer.

    The two torch optimizers do all the work; this object only holds them together. Its
    ``param_groups`` are *the same dict objects* as theirs (Muon's groups first), each tagged
    ``use_muon`` (True for Muon), and its ``state`` is the same mapping as theirs. So one
    ``torch.optim.lr_scheduler`` schedules both learning rates, ``zero_grad`` clears both, and
    ``state_dict()`` / ``load_state_dict()`` use torch's standard format (``{"state",
    "param_groups"}``, loadable with ``torch.load(weights_only=True)``). ``step`` runs Muon, then
    AdamW, exactly as two separate optimizers would: the result is bitwise the same.

    Args:
        muon_params: 2-D hidden weights (or Muon param-group dicts).
        adamw_params: everything else (or AdamW param-group dicts).
        lr: Muon learning rate (0.02, Keller Jordan's Muon; torch's "original" scaling
            ``lr * sqrt(max(1, m/n))`` with ``adjust_lr_fn=None``).
        adam_lr: AdamW learning rate (2e-3).
        weight_decay: decoupled weight decay of both parts (0; each part multiplies by
            ``1 - its lr * weight_decay``).
        momentum, nesterov, ns_coefficients, eps, ns_steps, adjust_lr_fn: passed to ``torch.optim.Muon``
            (0.95, True, (3.4445, -4.7750, 2.0315), 1e-7, 5, None).
        adam_betas, adam_eps: AdamW's betas and eps ((0.9, 0.95), 1e-8). AdamW uses the fused
            kernel when torch supports it for the parameters, else foreach.

    Raises:
        ValueError: both parameter lists empty, or a bad hyperparameter (from torch).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
        >>> opt = MuonWithAdamW([model[0].weight], [model[0].bias, *model[1].parameters()], lr=0.02)
        >>> [(g["use_muon"], g["lr"]) for g in opt.param_groups]
        [(True, 0.02), (False, 0.002)]
    """

    _muon: Optimizer | None
    _adamw: Optimizer | None
    _ready: bool

    def __init__(
        self,
        muon_params: Iterable[Any],
        adamw_params: Iterable[Any],
        *,
        lr: float = 0.02,
        adam_lr: float = DEFAULT_ADAM_LR,
        weight_decay: float = 0.0,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = MUON_NS_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        adam_betas: tuple[float, float] = ADAMW_BETAS,
        adam_eps: float = 1e-8,
    ) -> None:
        matrices, rest = list(muon_params), list(adamw_params)
        muon = None
        if matrices:
            muon = torch.optim.Muon(
                matrices,
                lr=lr,
                weight_decay=weight_decay,
                momentum=momentum,
                nesterov=nesterov,
                ns_coefficients=ns_coefficients,
                eps=eps,
                ns_steps=ns_steps,
                adjust_lr_fn=adjust_lr_fn,
            )
        adamw = None
        if rest:
            adamw = _adamw(rest, lr=adam_lr, betas=adam_betas, eps=adam_eps, weight_decay=weight_decay)
        self._setup(muon, adamw)

    @classmethod
    def from_optimizers(cls, muon: Optimizer | None, adamw: Optimizer | None) -> MuonWithAdamW:
        """Join two already-built optimizers (e.g. another library's Muon) the same way.

        The first takes the ``use_muon=True`` groups. ``state_dict`` round trips are exact only for
        optimizers that keep their state in ``self.state[p]`` the torch way.
        """
        obj = cls.__new__(cls)
        obj._setup(muon, adamw)
        return obj

    def _setup(self, muon: Optimizer | None, adamw: Optimizer | None) -> None:
        if muon is None and adamw is None:
            raise ValueError("MuonWithAdamW needs at least one parameter (both parameter lists are empty)")
        self._muon, self._adamw, self._ready = muon, adamw, False
        groups: list[dict[str, Any]] = []
        for child, flag in self._children():
            for group in child.param_groups:
                group["use_muon"] = flag
                groups.append(group)
        super().__init__(groups, {})
        self._ready = True
        self._link()

    def _children(self) -> list[tuple[Optimizer, bool]]:
        return [(child, flag) for child, flag in ((self._muon, True), (self._adamw, False)) if child is not None]

    def _link(self) -> None:
        """Point each part at this object's group dicts (by ``use_muon``) and at its state mapping."""
        for child, flag in self._children():
            child.param_groups = [group for group in self.param_groups if group["use_muon"] is flag]
            child.state = self.state

    def __getstate__(self) -> dict[str, Any]:
        # Optimizer.__getstate__ keeps only defaults/state/param_groups; copies and pickles need the parts too.
        state = super().__getstate__()
        state.update(_muon=self._muon, _adamw=self._adamw, _ready=self._ready)
        return state

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the Muon part (``use_muon=True``, 2-D tensors only) or to the AdamW part (``use_muon=False``)."""
        if not self._ready:  # called by Optimizer.__init__ with the parts' own groups
            super().add_param_group(param_group)
            return
        flag = param_group.get("use_muon")
        if not isinstance(flag, bool):
            raise ValueError(
                f"a group added to MuonWithAdamW needs use_muon=True (Muon) or False (AdamW), got {flag!r}"
            )
        child = self._muon if flag else self._adamw
        if child is None:
            raise ValueError(f"this MuonWithAdamW has no {'Muon' if flag else 'AdamW'} part to add a group to")
        raw = param_group["params"]
        params = [raw] if isinstance(raw, Tensor) else list(raw)
        if flag and any(p.ndim != 2 for p in params):
            shapes = [tuple(p.shape) for p in params if p.ndim != 2]
            raise ValueError(f"Muon groups take 2-D tensors only, got shapes {shapes}")
        known = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in known for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        group = {**param_group, "params": params}
        child.add_param_group(group)  # fills the part's defaults and appends to its (linked) group list
        super().add_param_group(group)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Run Muon, then AdamW; ``closure`` (evaluated once) re-computes the loss and gradients."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for child, _ in self._children():
            child.step()
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict saved by a ``MuonWithAdamW`` with the same groups (checked via ``use_muon``)."""
        saved = [bool(group.get("use_muon")) for group in state_dict.get("param_groups", [])]
        current = [bool(group["use_muon"]) for group in self.param_groups]
        if saved != current:
            raise ValueError(f"state_dict groups have use_muon={saved}, this optimizer has {current}")
        super().load_state_dict(state_dict)
        self._link()


def make_optimizer(
    name: str,
    model: nn.Module,
    *,
    lr: float,
    adam_lr: float | None = None,
    weight_decay: float = 0.0,
    rank: int = 64,
    gamma: float | None = None,
    betas: tuple[float, float] | None = None,
    **kwargs: Any,
) -> Optimizer:
    """Build optimizer ``name`` for ``model`` with the learning-rate convention of the module docstring.

    Args:
        name: one of :func:`available_optimizers` (``adamw``, ``muon``, ``soap``, ``cosmos``,
            and ``heavyball-soap``, ``heavyball-muon`` when heavyball is installed).
        model: the model; its parameters are routed by :func:`cosmos_optim.routing.split_matrix_params`
            (muon) or :func:`cosmos_optim.routing.cosmos_param_groups` (cosmos).
        lr: step size of the hidden matrices, > 0 (adamw and soap: of every parameter).
        adam_lr: AdamW learning rate of the non-matrix parameters for muon and cosmos, > 0
            (default 2e-3); ignored by adamw and soap.
        weight_decay: decoupled weight decay >= 0 of every parameter (default 0).
        rank: COSMOS subspace rank ``r`` (cosmos only).
        gamma: COSMOS weight of the Muon part (cosmos only; default ``lr / adam_lr``).
        betas: the method's betas (see the module docstring for the defaults; for muon, those of
            its AdamW part).
        **kwargs: passed on to the optimizer (``torch.optim.AdamW``, :class:`MuonWithAdamW`,
            :class:`~cosmos_optim.SOAP`, :class:`~cosmos_optim.COSMOS`, or the heavyball class).

    Returns:
        One ``torch.optim.Optimizer`` over all trainable parameters of ``model``.

    Raises:
        ValueError: unknown ``name`` (the message lists the choices), ``lr`` or ``adam_lr`` not > 0,
            ``weight_decay`` < 0.
        ImportError: a heavyball anchor without heavyball installed (says which ``pip install`` fixes it).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Embedding(10, 8), torch.nn.Linear(8, 8), torch.nn.Linear(8, 10))
        >>> opt = make_optimizer("muon", model, lr=0.02)
        >>> [(g["use_muon"], g["lr"], len(g["params"])) for g in opt.param_groups]
        [(True, 0.02, 1), (False, 0.002, 4)]
    """
    choices = OPTIMIZERS + HEAVYBALL_OPTIMIZERS
    if name not in choices:
        raise ValueError(f"name must be one of {', '.join(choices)}, got {name!r}")
    lr = _check_positive("lr", lr)
    aux_lr = DEFAULT_ADAM_LR if adam_lr is None else _check_positive("adam_lr", adam_lr)
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")

    if name == "adamw":
        return _adamw(model.parameters(), lr=lr, betas=betas or ADAMW_BETAS, weight_decay=weight_decay, **kwargs)
    if name == "soap":
        return SOAP(model.parameters(), lr=lr, betas=betas or SOAP_BETAS, weight_decay=weight_decay, **kwargs)
    if name == "cosmos":
        from cosmos_optim.optimizer import COSMOS
        from cosmos_optim.routing import cosmos_param_groups

        ratio = lr / aux_lr
        extra: dict[str, Any] = {} if betas is None else {"betas": betas}
        routing = {"reshape_conv": kwargs.pop("reshape_conv")} if "reshape_conv" in kwargs else {}
        return COSMOS(
            cosmos_param_groups(model, lr=aux_lr, **routing),
            lr=aux_lr,
            lr_ratio=ratio,
            gamma=ratio if gamma is None else gamma,
            rank=rank,
            weight_decay=weight_decay,
            **extra,
            **kwargs,
        )

    from cosmos_optim.routing import split_matrix_params

    if name == "muon":
        hidden, rest = split_matrix_params(model)
        return MuonWithAdamW(
            hidden, rest, lr=lr, adam_lr=aux_lr, weight_decay=weight_decay, adam_betas=betas or ADAMW_BETAS, **kwargs
        )

    heavyball = _import_heavyball()
    if name == "heavyball-soap":
        soap_betas = betas or SOAP_BETAS
        options: dict[str, Any] = {  # the authors' defaults, as for our SOAP
            "shampoo_beta": soap_betas[1],
            "precondition_frequency": 10,
            "max_precond_dim": 10000,
            "merge_dims": False,
            **kwargs,
        }
        optimizer: Optimizer = heavyball.SOAP(
            list(model.parameters()), lr=lr, betas=soap_betas, weight_decay=weight_decay, **options
        )
        return optimizer
    hidden, rest = split_matrix_params(model)  # heavyball-muon
    muon = (
        heavyball.Muon(hidden, lr=lr, weight_decay=weight_decay, **{"betas": (0.95, 0.99), **kwargs})
        if hidden
        else None
    )
    adamw = _adamw(rest, lr=aux_lr, betas=betas or ADAMW_BETAS, weight_decay=weight_decay) if rest else None
    return MuonWithAdamW.from_optimizers(muon, adamw)
