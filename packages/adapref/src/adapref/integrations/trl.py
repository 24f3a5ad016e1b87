"""Ada-DPO for HuggingFace TRL: :class:`AdaDPOTrainer`, a ``trl.DPOTrainer`` whose loss is the adaptive one.

Needs the ``[trl]`` extra (``pip install "adapref[trl]"``). Importing this module checks that the
installed TRL lies in the supported range ``>=1.0,<2`` and raises ``ImportError`` otherwise; nothing
else in :mod:`adapref` imports it.

Since TRL 0.29 (PR #3906) the DPO loss is computed inline in ``DPOTrainer._compute_loss``: the
``dpo_loss`` method the authors' fork overrode no longer exists. The route TRL documents for a new
objective (PR #6918) is a subclass that overrides ``compute_loss``; this module does that.

TRL internals relied on (search for these names when TRL changes): ``DPOTrainer.compute_ref_log_probs``,
the attributes ``beta``, ``precompute_ref_logps``, ``ref_model``, ``padding_free``, ``aux_loss_enabled``,
``router_aux_loss_coef``, ``_metrics``, ``_total_train_tokens``, ``_tp_size``; the batch layout of
``DataCollatorForPreference`` (``input_ids``/``attention_mask``/``completion_mask`` with the B chosen rows
before the B rejected rows, optional ``ref_chosen_logps``/``ref_rejected_logps`` columns); the fused LM
head of TRL >= 1.15 (``add_fused_lm_head``, ``model(..., labels=..., fused_lm_head=True).log_probs``) and,
before it, ``trl.trainer.utils.selective_log_softmax`` on the logits.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import inspect
import json
import math
import os
import re
import textwrap
import warnings
from typing import Any

import torch

from adapref.functional import AdaDPOOutput, ada_dpo_loss
from adapref.scaling import NonFiniteMarginsError, Solver, check_scaling_args, warn_if_tau_max_ignored

__all__ = ["TRL_SUPPORTED", "AdaDPOConfig", "AdaDPOTrainer", "check_trl_version"]

TRL_SUPPORTED = ">=1.0,<2"
"""The TRL versions this integration supports (the ``[trl]`` extra pins the same range)."""


def check_trl_version(version: str) -> None:
    """Raise ``ImportError`` unless ``version`` (a TRL version string) lies in ``>=1.0,<2``.

    Any 1.x release is accepted, pre-releases included; 0.x has the ``dpo_loss`` hook and a
    different batch layout, and 2.x may drop the internals listed in this module's docstring.

    Args:
        version: e.g. ``"1.16.0"``.

    Raises:
        ImportError: ``adapref[trl] supports trl>=1.0,<2; found <version>``.

    Example:
        >>> check_trl_version("1.16.0")
    """
    match = re.match(r"\s*v?(\d+)\.", version)
    if match is None or int(match.group(1)) != 1:
        raise ImportError(f"adapref[trl] supports trl{TRL_SUPPORTED}; found {version}")


def _installed_trl_version() -> str:
    try:
        return importlib.metadata.version("trl")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ImportError('adapref.integrations.trl needs TRL; install it with: pip install "adapref[trl]"') from exc


check_trl_version(_installed_trl_version())

from trl.trainer import dpo_trainer as _dpo_module  # noqa: E402  (only after the version check)
from trl.trainer.dpo_config import DPOConfig  # noqa: E402
from trl.trainer.dpo_trainer import DPOTrainer  # noqa: E402
from trl.trainer.utils import selective_log_softmax  # noqa: E402

_FUSED_LM_HEAD: bool = hasattr(_dpo_module, "add_fused_lm_head")
"""TRL >= 1.15 patches the model with a fused LM head that returns per-token log-probs."""
_REF_LOGPS_TAKE_MODEL: bool = "model" in inspect.signature(DPOTrainer.compute_ref_log_probs).parameters
"""TRL >= 1.9: ``compute_ref_log_probs(model, inputs)``; before: ``compute_ref_log_probs(inputs)``."""
_NON_MODEL_KEYS = frozenset({"completion_mask", "ref_chosen_logps", "ref_rejected_logps"})
_AT_BOUND_RTOL = 1e-6


PAPER_CITATION = textwrap.dedent("""\
    @inproceedings{hong2024adaptive,
        title     = {{Adaptive Preference Scaling for Reinforcement Learning with Human Feedback}},
        author    = {Ilgee Hong and Zichong Li and Alexander Bukharin and Yixiao Li and Haoming Jiang and Tianbao Yang and Tuo Zhao},
        booktitle = {Advances in Neural Information Processing Systems 37 (NeurIPS 2024)},
        year      = 2024,
        eprint    = {2406.02764},
        archivePrefix = {arXiv},
    }""")
"""BibTeX of the AdaPref paper, cited by the model cards TRL writes for :class:`AdaDPOTrainer`."""

CONFIG_FILE = "ada_config.json"
"""Written next to the model by ``save_model`` (every checkpoint included): the τ settings of the run."""


_STATISTICS_CHUNK = 128
"""Completion positions per chunk in :func:`_logit_statistics` (TRL's ``entropy_from_logits`` uses 128 rows)."""


@dataclasses.dataclass
class _LogitStatistics:
    """Per-token statistics of the logits, named as the fused LM head of TRL >= 1.15 returns them."""

    entropy: torch.Tensor
    """``(2B, T-1)`` entropy of the next-token distribution (0 off the completion)."""
    mean_logits: torch.Tensor
    """``(2B, T-1)`` mean logit over the vocabulary (0 off the completion)."""
    is_top1: torch.Tensor
    """``(2B, T-1)`` whether the next token is the argmax (False off the completion)."""


def _logit_statistics(shift_logits: torch.Tensor, next_tokens: torch.Tensor, mask: torch.Tensor) -> _LogitStatistics:
    """Entropy H = logsumexp(l) − Σ softmax(l)·l, mean logit and top-1 hit at the completion positions.

    Only the positions where ``mask`` holds are computed, :data:`_STATISTICS_CHUNK` at a time in float32
    (at least), so the extra memory is a few chunks of ``V`` floats rather than copies of the whole
    ``(2B, T-1, V)`` logits; the other positions are 0 (False), which the metrics mask out.
    """
    rows, cols = mask.nonzero(as_tuple=True)
    dtype = torch.promote_types(shift_logits.dtype, torch.float32)
    entropy = torch.zeros(mask.shape, dtype=dtype, device=shift_logits.device)
    mean_logits = torch.zeros_like(entropy)
    is_top1 = torch.zeros(mask.shape, dtype=torch.bool, device=shift_logits.device)
    for start in range(0, rows.numel(), _STATISTICS_CHUNK):
        r, c = rows[start : start + _STATISTICS_CHUNK], cols[start : start + _STATISTICS_CHUNK]
        logits = shift_logits[r, c].to(dtype)  # (chunk, V)
        entropy[r, c] = torch.logsumexp(logits, dim=-1) - (torch.softmax(logits, dim=-1) * logits).sum(dim=-1)
        mean_logits[r, c] = logits.mean(dim=-1)
        is_top1[r, c] = logits.argmax(dim=-1) == next_tokens[r, c]
    return _LogitStatistics(entropy, mean_logits, is_top1)


@dataclasses.dataclass(frozen=True)
class AdaDPOConfig:
    """Hyperparameters of the per-pair scaling τ in :class:`AdaDPOTrainer` (β comes from ``DPOConfig.beta``).

    Defaults are the authors' DPO setting (README and ``llm_dpo/dpo_trainer.py``: ρ0 = 0.1, τ0 = 0.1,
    τ_max = 5, K = 5, τ init 1), except ``solver="exact"`` (the closed form τ*; see
    :func:`adapref.scaling.solve_tau`). The τ bounds are in β-scaled units, as in the authors' code.

    Raises:
        ValueError: a hyperparameter outside its range, named in the message.
    """

    rho0: float = 0.1
    """KL radius ρ0 > 0 (the paper's ρ = ρ0 − log 2); ρ0 ≥ log 2 makes τ ≡ τ0 (with a warning)."""
    tau0: float = 0.1
    """lower bound τ0 > 0 of τ."""
    tau_max: float = 5.0
    """upper bound τ_max ≥ τ0 of τ (ignored by ``quadratic`` unless ``clamp_tau_max``)."""
    solver: Solver = "exact"
    """``"exact"`` (closed form), ``"newton"`` (safeguarded Algorithm 1) or ``"newton-official"``."""
    n_iter: int = 5
    """Newton iterations K ≥ 1 (Newton solvers only)."""
    tau_init: float = 1.0
    """starting point τ^(0) > 0 of the Newton solvers."""
    quadratic: bool = False
    """the quadratic penalty ρ0τ² − (log 2)τ of §3.6 (eq. 12) instead of ρτ."""
    clamp_tau_max: bool = False
    """with ``quadratic``, clamp τ at ``tau_max`` as the authors' DPO trainer does."""

    def __post_init__(self) -> None:
        for name in ("quadratic", "clamp_tau_max"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be a bool, got {value!r}")
        check_scaling_args(self.rho0, self.tau0, self.tau_max, self.solver, self.n_iter, self.tau_init, self.quadratic)
        warn_if_tau_max_ignored(self.tau_max, self.rho0, self.quadratic, self.clamp_tau_max, stacklevel=4)


def _loss_types(args: Any) -> list[str]:
    """``DPOConfig.loss_type`` as a list (TRL accepts a string or a list)."""
    return list(args.loss_type) if isinstance(args.loss_type, (list, tuple)) else [args.loss_type]


def _check_dpo_config(args: Any) -> None:
    """Refuse the DPOConfig options whose behaviour the Ada-DPO loss cannot reproduce."""
    loss_types = _loss_types(args)
    if loss_types not in (["sigmoid"], ["sigmoid", "sft"], ["sft", "sigmoid"]):
        raise ValueError(
            f"loss_type must be ['sigmoid'] (the default) or ['sigmoid', 'sft'] with AdaDPOTrainer, which replaces the "
            f"sigmoid loss (an 'sft' term is added as TRL adds it), got {loss_types!r}"
        )
    loss_weights = getattr(args, "loss_weights", None)
    if loss_weights is not None and (
        len(loss_weights) != len(loss_types)
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) for w in loss_weights)
    ):
        raise ValueError(
            f"loss_weights must be None or {len(loss_types)} finite numbers, one per loss_type {loss_types!r}, "
            f"got {loss_weights!r}"
        )
    if not _FUSED_LM_HEAD and getattr(args, "use_liger_kernel", False):
        # TRL < 1.15 replaces the whole DPO loss by Liger's fused one; from 1.15 Liger only patches the
        # model's layers and the loss path this trainer overrides is unchanged.
        raise ValueError(
            "use_liger_kernel must be False with AdaDPOTrainer on TRL < 1.15 (its Liger path computes the DPO loss "
            "itself; TRL >= 1.15 keeps the loss outside Liger), got True"
        )
    checks: tuple[tuple[str, Any, str], ...] = (
        ("ld_alpha", None, "length-desensitised log-probs (LD-DPO) are not supported"),
        ("f_divergence_type", "reverse_kl", "Ada-DPO is derived for the reverse-KL (standard DPO) reward"),
        ("use_weighting", False, "WPO weighting is not supported"),
        ("label_smoothing", 0.0, "label smoothing is not part of Ada-DPO (the 'sigmoid' loss ignores it too)"),
    )
    for name, default, why in checks:
        value = getattr(args, name, default)
        if value != default:
            raise ValueError(f"{name} must be {default!r} with AdaDPOTrainer ({why}), got {value!r}")
    beta = args.beta
    if not isinstance(beta, (int, float)) or isinstance(beta, bool) or not (beta > 0 and beta < float("inf")):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")


class AdaDPOTrainer(DPOTrainer):
    """``trl.DPOTrainer`` with the Ada-DPO loss of Hong et al. (2024, §3.5); everything else is TRL's.

    Paper symbols: β = ``DPOConfig.beta``; ρ0, τ0, τ_max, K = the fields of :class:`AdaDPOConfig`.
    With the implicit-reward margin h_i = (log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))
    and z_i = β·h_i, each pair gets a scaling factor τ_i solved on the detached z_i, and

    .. math::

        \\mathcal L = \\frac1B \\sum_i -\\tau_i \\log\\sigma(z_i/\\tau_i), \\qquad
        \\tau_i = \\arg\\min_{\\tau_0\\le\\tau\\le\\tau_{\\max}} -\\tau\\log\\sigma(z_i/\\tau) + (\\rho_0 - \\log 2)\\,\\tau
        = \\operatorname{clip}(|z_i|/u^*(\\rho_0), \\tau_0, \\tau_{\\max})

    (eq. 6 with d_i = z_i; the last form is ``solver="exact"``). With τ0 = τ_max = 1 it is TRL's
    ``loss_type="sigmoid"`` loss −logσ(β h_i) exactly.

    It overrides ``compute_loss`` only, because TRL >= 0.29 has no loss hook (the loss is inline in
    ``DPOTrainer._compute_loss``; TRL PR #6918 recommends this override). The four per-sequence
    log-probabilities are obtained as the stock trainer obtains them: the policy forward on TRL's
    collated ``[chosen; rejected]`` batch with the completion mask (the fused LM head on TRL >= 1.15),
    the reference from the precomputed ``ref_chosen_logps``/``ref_rejected_logps`` columns or TRL's own
    ``compute_ref_log_probs`` (which handles ``ref_model``, PEFT adapters and autocast). The loss is
    :func:`adapref.functional.ada_dpo_loss`. A MoE router auxiliary loss is added as TRL adds it.
    ``DPOConfig.loss_type=["sigmoid", "sft"]`` with ``loss_weights`` adds TRL's SFT term (the chosen
    tokens' mean negative log-likelihood), the method's loss taking the place of ``"sigmoid"``:
    L = w_sigmoid·L_method + w_sft·L_sft.

    Logged through TRL's ``_metrics`` (averaged per logging step, ``eval_`` prefix in evaluation):
    ``rewards/chosen``, ``rewards/rejected``, ``rewards/accuracies``, ``rewards/margins``,
    ``logps/chosen``, ``logps/rejected``, ``num_tokens``, ``entropy``, ``logits/chosen``,
    ``logits/rejected`` and ``mean_token_accuracy`` (from TRL's fused LM head on TRL >= 1.15, from
    the logits before, as the stock trainer of each release); and ``ada/tau_mean``,
    ``ada/frac_tau0``, ``ada/frac_taumax`` (share of pairs whose τ is within a relative 1e-6 of
    τ0, of τ_max; not logged for ``quadratic`` without ``clamp_tau_max``, which has no upper bound).
    Model cards and hub tags name Ada-DPO and cite the paper (tags ``trl``, ``dpo``, ``ada-dpo``),
    and ``save_model`` (so every checkpoint) writes the τ settings to :data:`CONFIG_FILE`.

    Args:
        *args: passed to ``trl.DPOTrainer`` (``model``, ``ref_model``, ``args``, ...).
        ada: the τ hyperparameters; ``None`` means ``AdaDPOConfig()``.
        **kwargs: passed to ``trl.DPOTrainer``.

    Raises:
        TypeError: ``ada`` is not an :class:`AdaDPOConfig`.
        ValueError: a ``DPOConfig`` option the Ada-DPO loss cannot honour, named: ``loss_type`` other
            than ``["sigmoid"]`` or ``["sigmoid", "sft"]``, ``loss_weights`` not one finite number per
            loss type, ``use_liger_kernel`` on
            TRL < 1.15 (where Liger computes the loss), ``ld_alpha``, ``f_divergence_type``,
            ``use_weighting``, ``label_smoothing``, a non-positive ``beta``, or ``padding_free`` where
            the installed TRL honours it. During training, non-finite margins raise ``ValueError``
            (from :func:`~adapref.functional.ada_dpo_loss`), where stock TRL trains on with a NaN loss:
            a diverged run stops at the step that diverged, and the error names it.

    Example (not run: it downloads a model)::

        from datasets import load_dataset
        from trl import DPOConfig
        from adapref.integrations.trl import AdaDPOConfig, AdaDPOTrainer

        trainer = AdaDPOTrainer(
            model="Qwen/Qwen2.5-0.5B-Instruct",
            args=DPOConfig(output_dir="ada-dpo", beta=0.1),
            train_dataset=load_dataset("trl-lib/ultrafeedback_binarized", split="train"),
            ada=AdaDPOConfig(rho0=0.1, tau0=0.1, tau_max=5.0),
        )
        trainer.train()

    Note:
        Tested (loss and gradients equal to stock ``loss_type="sigmoid"`` at τ ≡ 1, CPU, fp32) with
        TRL 1.0.0, 1.7.0, 1.13.0, 1.14.0 and 1.16.0 on transformers 5.24, datasets 5.2, accelerate
        1.15; the version check accepts any 1.x release. TRL 1.15.0 needs triton for its fused LM
        head, so on a CPU-only torch its own DPOTrainer fails, and this one with it. On TRL < 1.15
        (no fused LM head) the policy log-probs come from the logits with TRL's
        ``selective_log_softmax``, as the stock trainer of those versions computes them. β is kept,
        as in the authors' trainer (the paper merges it into τ and ρ), so β keeps its TRL meaning
        and the τ bounds are in units of β·h.

    References:
        Hong et al., "Adaptive Preference Scaling for Reinforcement Learning with Human Feedback",
        NeurIPS 2024, arXiv:2406.02764; TRL ``trl/trainer/dpo_trainer.py``, PRs #3906 and #6918.
    """

    # TRL reads these for the model card and hub tags (declared in its base trainer as plain attributes)
    _tag_names = ["trl", "dpo", "ada-dpo"]  # noqa: RUF012
    _name = "Ada-DPO"
    _paper = {  # noqa: RUF012
        "title": "Adaptive Preference Scaling for Reinforcement Learning with Human Feedback",
        "id": "2406.02764",
        "citation": PAPER_CITATION,
    }

    def __init__(self, *args: Any, ada: AdaDPOConfig | None = None, **kwargs: Any) -> None:
        if ada is None:
            ada = AdaDPOConfig()
        if not isinstance(ada, AdaDPOConfig):
            raise TypeError(f"ada must be an AdaDPOConfig, got {type(ada).__name__}")
        # Refuse before TRL tokenizes the data or precomputes reference log-probs; with no DPOConfig
        # given, TRL builds a default one, which is compatible.
        dpo_args = kwargs.get("args")
        if dpo_args is None:
            dpo_args = next((a for a in args if isinstance(a, DPOConfig)), None)
        if dpo_args is not None:
            _check_dpo_config(dpo_args)
        self.ada = ada
        super().__init__(*args, **kwargs)
        _check_dpo_config(self.args)
        if getattr(self, "padding_free", False):  # TRL 1.x forces it off; a release that honours it needs new code
            raise ValueError("padding_free must be False with AdaDPOTrainer, got True")

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """The Ada-DPO loss of one collated batch (mean over its B pairs), metrics logged as a side effect.

        Args:
            model: the policy as the ``Trainer`` passes it (possibly wrapped).
            inputs: a batch of TRL's preference collator: ``input_ids``, ``attention_mask``,
                ``completion_mask`` of shape ``(2B, T)`` (chosen rows first), optionally
                ``ref_chosen_logps``/``ref_rejected_logps`` of shape ``(B,)``.
            return_outputs: also return the model outputs (deprecated in TRL; with the fused LM
                head the logits are recomputed by an extra forward, as TRL does).
            num_items_in_batch: unused, as in ``DPOTrainer``.

        Returns:
            The scalar loss, or ``(loss, outputs)``.

        Raises:
            ValueError: non-finite margins (stock TRL trains on with a NaN loss); a vision-language
                batch whose image tokens ``max_length`` truncated gets TRL's advice to raise it.
        """
        try:
            return self._ada_loss(model, inputs, return_outputs)
        except NonFiniteMarginsError as err:
            phase = "training step" if self._mode(model) == "train" else "evaluation at step"
            raise ValueError(
                f"{phase} {self.state.global_step + 1}: the DPO margins β·h are NaN or inf (the policy's or the "
                "reference's log-probabilities are not finite; stock TRL would go on with a NaN loss): lower the "
                "learning rate, or check the data and the reference model"
            ) from err
        except ValueError as err:
            max_length = getattr(self.args, "max_length", None)
            if "Image features and image tokens do not match" in str(err) and max_length is not None:
                raise ValueError(
                    f"max_length = {max_length} truncates image placeholder tokens in input_ids while the image "
                    "features stay whole: raise max_length or set it to None"
                ) from err
            raise

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """TRL's ``save_model`` (checkpoints included), plus :data:`CONFIG_FILE` with the τ settings."""
        super().save_model(output_dir, _internal_call)
        if self.args.should_save:
            folder = str(output_dir if output_dir is not None else self.args.output_dir)
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, CONFIG_FILE), "w", encoding="utf-8") as fh:
                json.dump({"trainer": type(self).__name__, **dataclasses.asdict(self.ada)}, fh, indent=2)
                fh.write("\n")

    def _mode(self, model: torch.nn.Module) -> str:
        """``"train"`` or ``"eval"``, read off the unwrapped model as TRL reads it."""
        policy = self.model if self.model is not None else model
        return "train" if policy.training else "eval"

    def _ada_loss(
        self, model: torch.nn.Module, inputs: dict[str, Any], return_outputs: bool
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        mode = self._mode(model)
        model_kwargs = {k: v for k, v in inputs.items() if k not in _NON_MODEL_KEYS}
        model_kwargs["use_cache"] = False
        aux_loss_enabled = bool(getattr(self, "aux_loss_enabled", False))
        if aux_loss_enabled:
            model_kwargs["output_router_logits"] = True
        input_ids = inputs["input_ids"]
        completion_mask = inputs["completion_mask"]
        shift_completion_mask = completion_mask[:, 1:]  # (2B, T-1): is token t+1 a completion token
        seq_len = shift_completion_mask.size(1)

        shift_logits: torch.Tensor | None = None
        if _FUSED_LM_HEAD:
            labels = input_ids.masked_fill(completion_mask == 0, -100)
            outputs = model(**model_kwargs, labels=labels, fused_lm_head=True)
            per_token_logps = outputs.log_probs[:, -seq_len:]  # prompt-learning PEFT prepends positions
        else:
            outputs = model(**model_kwargs)
            shift_logits = outputs.logits[:, -(seq_len + 1) : -1]  # (2B, T-1, V)
            per_token_logps = selective_log_softmax(shift_logits, input_ids[:, 1:])
            per_token_logps = per_token_logps.masked_fill(shift_completion_mask == 0, 0.0)
        chosen_logps, rejected_logps = per_token_logps.sum(dim=1).chunk(2, dim=0)  # batch is [chosen; rejected]
        ref_chosen_logps, ref_rejected_logps = self._reference_logps(inputs)

        ada = self.ada
        out = ada_dpo_loss(
            chosen_logps,
            rejected_logps,
            ref_chosen_logps.to(chosen_logps.device),
            ref_rejected_logps.to(chosen_logps.device),
            beta=float(self.beta),
            rho0=ada.rho0,
            tau0=ada.tau0,
            tau_max=ada.tau_max,
            solver=ada.solver,
            n_iter=ada.n_iter,
            tau_init=ada.tau_init,
            quadratic=ada.quadratic,
            clamp_tau_max=ada.clamp_tau_max,
            check_finite=True,  # documented above; TRL reads its metrics back to the host every step anyway
        )
        loss = self._weighted_loss(out.losses.mean(), per_token_logps, shift_completion_mask)
        if aux_loss_enabled:
            aux_loss = outputs.aux_loss
            loss = loss + self.router_aux_loss_coef * aux_loss
            self._metrics[mode]["aux_loss"].append(self.accelerator.gather_for_metrics(aux_loss).mean().item())

        with torch.no_grad():
            self._log_metrics(
                mode, inputs, outputs, shift_completion_mask, chosen_logps, rejected_logps, out, shift_logits
            )

        if return_outputs:
            if _FUSED_LM_HEAD:
                warnings.warn(
                    "return_outputs=True (and the logits it passes to compute_metrics) is deprecated in TRL and will be "
                    "removed in TRL 2.0; the fused LM head builds no logits, so they are recomputed by an extra forward "
                    "pass",
                    FutureWarning,
                    stacklevel=2,
                )
                with torch.no_grad():
                    outputs = model(**model_kwargs)
            return loss, outputs
        return loss

    def _weighted_loss(
        self, method_loss: torch.Tensor, per_token_logps: torch.Tensor, shift_completion_mask: torch.Tensor
    ) -> torch.Tensor:
        """``Σ_k w_k L_k`` over ``DPOConfig.loss_type`` and ``loss_weights``, summed as TRL sums them.

        ``"sigmoid"`` is the Ada-DPO loss (the mean over the batch); ``"sft"`` is TRL's SFT term, the mean
        negative log-probability of the chosen completions' tokens, −mean log π(y_w,t | x, y_w,<t).
        """
        types = _loss_types(self.args)
        weights = getattr(self.args, "loss_weights", None) or [1.0] * len(types)
        loss: Any = 0.0
        for loss_type, weight in zip(types, weights, strict=True):
            if loss_type == "sigmoid":
                term = method_loss
            else:  # "sft" (the only other type _check_dpo_config lets through)
                chosen_mask, _ = shift_completion_mask.bool().chunk(2, dim=0)
                chosen_per_token_logps, _ = per_token_logps.chunk(2, dim=0)
                term = -chosen_per_token_logps[chosen_mask].mean()
            loss = loss + term * weight
        result: torch.Tensor = loss
        return result

    def _reference_logps(self, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B,)`` reference log-probs of the chosen and rejected completions, as the stock trainer gets them."""
        if self.precompute_ref_logps:
            return inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        compute_ref_log_probs: Any = self.compute_ref_log_probs  # untyped, and its signature changed in TRL 1.9
        if _REF_LOGPS_TAKE_MODEL:
            ref_model = self.ref_model if self.ref_model is not None else self.model
            ref_chosen, ref_rejected = compute_ref_log_probs(ref_model, inputs)
        else:
            ref_chosen, ref_rejected = compute_ref_log_probs(inputs)
        return ref_chosen, ref_rejected

    def _log_metrics(
        self,
        mode: str,
        inputs: dict[str, Any],
        outputs: Any,
        shift_completion_mask: torch.Tensor,
        chosen_logps: torch.Tensor,
        rejected_logps: torch.Tensor,
        out: AdaDPOOutput,
        shift_logits: torch.Tensor | None = None,
    ) -> None:
        """Append TRL's usual DPO metrics and the τ statistics to ``self._metrics[mode]``.

        With the fused LM head (TRL >= 1.15) entropy, mean logits and top-1 hits come with ``outputs``;
        before it they are computed here from ``shift_logits`` ``(2B, T-1, V)``, as those TRL releases do.
        """
        if shift_logits is not None:
            outputs = _logit_statistics(shift_logits.detach(), inputs["input_ids"][:, 1:], shift_completion_mask.bool())
        metrics = self._metrics[mode]
        gather = self.accelerator.gather
        gather_for_metrics = self.accelerator.gather_for_metrics

        if hasattr(self, "_total_train_tokens"):
            if mode == "train":
                num_tokens = gather_for_metrics(inputs["attention_mask"].sum()).sum().item()
                self._total_train_tokens += num_tokens // getattr(self, "_tp_size", 1)
            metrics["num_tokens"] = [self._total_train_tokens]

        seq_len = shift_completion_mask.size(1)
        chosen_mask, rejected_mask = shift_completion_mask.bool().chunk(2, dim=0)
        if getattr(outputs, "entropy", None) is not None:  # fused LM head (TRL >= 1.15)
            entropy_sum = gather_for_metrics((outputs.entropy[:, -seq_len:] * shift_completion_mask).sum()).sum()
            total_tokens = gather_for_metrics(shift_completion_mask.sum()).sum()
            metrics["entropy"].append((entropy_sum / total_tokens).item() if total_tokens > 0 else 0.0)
        if getattr(outputs, "mean_logits", None) is not None:
            chosen_mean_logits, rejected_mean_logits = outputs.mean_logits[:, -seq_len:].chunk(2, dim=0)
            for key, values, mask in (
                ("logits/chosen", chosen_mean_logits, chosen_mask),
                ("logits/rejected", rejected_mean_logits, rejected_mask),
            ):
                total = gather_for_metrics(values[mask].sum()).sum().item()
                count = gather_for_metrics(mask.sum()).sum().item()
                metrics[key].append(total / count if count > 0 else 0.0)
        if getattr(outputs, "is_top1", None) is not None:
            chosen_is_top1, _ = outputs.is_top1[:, -seq_len:].chunk(2, dim=0)
            correct = gather_for_metrics((chosen_is_top1 & chosen_mask).sum()).sum()
            total = gather_for_metrics(chosen_mask.sum()).sum()
            metrics["mean_token_accuracy"].append((correct / total).item() if total > 0 else 0.0)

        chosen_rewards, rejected_rewards = out.chosen_rewards, out.rejected_rewards
        metrics["rewards/chosen"].append(gather(chosen_rewards).mean().item())
        metrics["rewards/rejected"].append(gather(rejected_rewards).mean().item())
        metrics["rewards/accuracies"].append(gather((chosen_rewards > rejected_rewards).float()).mean().item())
        metrics["rewards/margins"].append(gather(chosen_rewards - rejected_rewards).mean().item())
        metrics["logps/chosen"].append(gather(chosen_logps.detach()).mean().item())
        metrics["logps/rejected"].append(gather(rejected_logps.detach()).mean().item())

        tau = gather(out.tau)
        tau0, tau_max = self.ada.tau0, self.ada.tau_max
        metrics["ada/tau_mean"].append(tau.mean().item())
        metrics["ada/frac_tau0"].append(((tau - tau0).abs() <= _AT_BOUND_RTOL * tau0).float().mean().item())
        if not self.ada.quadratic or self.ada.clamp_tau_max:  # the quadratic penalty alone has no upper bound
            metrics["ada/frac_taumax"].append(((tau - tau_max).abs() <= _AT_BOUND_RTOL * tau_max).float().mean().item())
