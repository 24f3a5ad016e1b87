"""R³M for HuggingFace TRL: :class:`R3MDPOTrainer` (a ``trl.DPOTrainer``) and :class:`R3MRewardTrainer`
(a ``trl.RewardTrainer``), whose losses are R³M's.

Needs the ``[trl]`` extra (``pip install "r3m[trl]"``). Importing this module checks that the
installed TRL lies in the supported range ``>=1.0,<2`` and raises ``ImportError`` otherwise; nothing
else in :mod:`r3m` imports it at import time.

Since TRL 0.29 (PR #3906) the DPO loss is computed inline in ``DPOTrainer._compute_loss``: there is
no ``dpo_loss`` hook any more. The route TRL documents for a new objective (PR #6918) is a subclass
that overrides ``compute_loss``; both trainers here do that. The DPO override also provides cDPO
(conservative DPO, label smoothing), which TRL dropped from its ``sigmoid`` loss in v0.29.

TRL internals relied on (search for these names when TRL changes): ``DPOTrainer.compute_ref_log_probs``,
the attributes ``beta``, ``precompute_ref_logps``, ``ref_model``, ``padding_free``, ``aux_loss_enabled``,
``router_aux_loss_coef``, ``_metrics``, ``_total_train_tokens``, ``_tp_size``; the batch layout of
``DataCollatorForPreference`` (``input_ids``/``attention_mask``/``completion_mask`` with the B chosen rows
before the B rejected rows, optional ``ref_chosen_logps``/``ref_rejected_logps`` columns); the fused LM
head of TRL >= 1.15 (``add_fused_lm_head``, ``model(..., labels=..., fused_lm_head=True).log_probs``) and,
before it, ``trl.trainer.utils.selective_log_softmax`` on the logits. For ``RewardTrainer``: the batch
of ``trl.trainer.reward_trainer.DataCollatorForPreference`` (``input_ids``/``attention_mask`` of shape
``(2B, T)``, the B chosen rows first, optional ``(B,)`` ``margin``), the model output's ``logits`` of
shape ``(2B, 1)``, ``args.center_rewards_coefficient``, and the same ``_metrics``/``_total_train_tokens``/
``_tp_size``. :class:`R3MRewardTrainer` and :class:`R3MRewardConfig` live in
:mod:`r3m.integrations.trl_reward` (one module per trainer) and are
re-exported here, loaded on first access.
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
from typing import TYPE_CHECKING, Any, Literal

import torch

from r3m.baselines import dpo_baseline
from r3m.functional import NonFiniteMarginsError, check_lam, r3m_dpo_loss

if TYPE_CHECKING:
    from r3m.integrations.trl_reward import R3MRewardConfig, R3MRewardTrainer

__all__ = [
    "TRL_SUPPORTED",
    "R3MDPOConfig",
    "R3MDPOTrainer",
    "R3MRewardConfig",
    "R3MRewardTrainer",
    "check_trl_version",
]

TRL_SUPPORTED = ">=1.0,<2"
"""The TRL versions this integration supports (the ``[trl]`` extra pins the same range)."""

LOSSES = ("r3m", "conservative")
"""The losses :class:`R3MDPOTrainer` computes itself (the others are stock ``DPOTrainer`` loss types)."""


def check_trl_version(version: str) -> None:
    """Raise ``ImportError`` unless ``version`` (a TRL version string) lies in ``>=1.0,<2``.

    Any 1.x release is accepted, pre-releases included; 0.x has the ``dpo_loss`` hook and a
    different batch layout, and 2.x may drop the internals listed in this module's docstring.

    Args:
        version: e.g. ``"1.16.0"``.

    Raises:
        ImportError: ``r3m[trl] supports trl>=1.0,<2; found <version>``.

    Example:
        >>> check_trl_version("1.16.0")
    """
    match = re.match(r"\s*v?(\d+)\.", version)
    if match is None or int(match.group(1)) != 1:
        raise ImportError(f"r3m[trl] supports trl{TRL_SUPPORTED}; found {version}")


def _installed_trl_version() -> str:
    try:
        return importlib.metadata.version("trl")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ImportError('r3m.integrations.trl needs TRL; install it with: pip install "r3m[trl]"') from exc


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


PAPER_CITATION = textwrap.dedent("""\
    @inproceedings{bukharin2024robust,
        title     = {{Robust Reinforcement Learning from Corrupted Human Feedback}},
        author    = {Alexander Bukharin and Ilgee Hong and Haoming Jiang and Zichong Li and Qingru Zhang and Zixuan Zhang and Tuo Zhao},
        booktitle = {Advances in Neural Information Processing Systems 37 (NeurIPS 2024)},
        year      = 2024,
        eprint    = {2406.15568},
        archivePrefix = {arXiv},
    }""")
"""BibTeX of the R³M paper, cited by the model cards TRL writes for the R³M trainers."""

CONFIG_FILE = "r3m_config.json"
"""Written next to the model by ``save_model`` (every checkpoint included): the R³M settings of the run."""


def _save_r3m_config(trainer: Any, output_dir: str | None) -> None:
    """Write ``trainer.r3m`` as JSON into ``output_dir`` (default ``args.output_dir``) on the saving process."""
    if not trainer.args.should_save:
        return
    folder = output_dir if output_dir is not None else trainer.args.output_dir
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, CONFIG_FILE), "w", encoding="utf-8") as fh:
        json.dump({"trainer": type(trainer).__name__, **dataclasses.asdict(trainer.r3m)}, fh, indent=2)
        fh.write("\n")


@dataclasses.dataclass(frozen=True)
class R3MDPOConfig:
    """Hyperparameters of :class:`R3MDPOTrainer` beyond TRL's ``DPOConfig`` (β comes from ``DPOConfig.beta``).

    Example:
        >>> R3MDPOConfig(lam=0.75).lam
        0.75

    Raises:
        ValueError: a hyperparameter outside its range, named in the message.
    """

    lam: float = 0.5
    """per-sample ℓ1 weight λ ∈ (0, 1) of eqs. 3.3–3.4; δ_i > 0 iff β·h_i < log(1/λ − 1) (0 at λ = 0.5).
    The paper's DPO grid is {0.65, 0.75, 0.85}; 0.5 flags every pair the policy currently misranks."""
    loss: Literal["r3m", "conservative"] = "r3m"
    """``"r3m"`` (R³M-DPO, §3.4) or ``"conservative"`` (cDPO, label smoothing ``eps``; a baseline)."""
    eps: float = 0.1
    """label-smoothing ε ∈ [0, 0.5) of ``"conservative"`` (ignored by ``"r3m"``)."""

    def __post_init__(self) -> None:
        check_lam(self.lam, stacklevel=4)  # ValueError("lam must lie in the open interval (0, 1), ...")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        eps = self.eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (0.0 <= eps < 0.5):
            raise ValueError(f"eps must lie in [0, 0.5), got {eps!r}")


def _loss_types(args: Any) -> list[str]:
    """``DPOConfig.loss_type`` as a list (TRL accepts a string or a list)."""
    return list(args.loss_type) if isinstance(args.loss_type, (list, tuple)) else [args.loss_type]


def _check_dpo_config(args: Any) -> None:
    """Refuse the DPOConfig options whose behaviour the R³M loss cannot reproduce."""
    loss_types = _loss_types(args)
    if loss_types not in (["sigmoid"], ["sigmoid", "sft"], ["sft", "sigmoid"]):
        raise ValueError(
            f"loss_type must be ['sigmoid'] (the default) or ['sigmoid', 'sft'] with R3MDPOTrainer, which replaces the "
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
            "use_liger_kernel must be False with R3MDPOTrainer on TRL < 1.15 (its Liger path computes the DPO loss "
            "itself; TRL >= 1.15 keeps the loss outside Liger), got True"
        )
    checks: tuple[tuple[str, Any, str], ...] = (
        ("ld_alpha", None, "length-desensitised log-probs (LD-DPO) are not supported"),
        ("f_divergence_type", "reverse_kl", "R³M-DPO is derived for the reverse-KL (standard DPO) reward"),
        ("use_weighting", False, "WPO weighting is not supported"),
        ("label_smoothing", 0.0, "set R3MDPOConfig(loss='conservative', eps=...) for cDPO instead"),
    )
    for name, default, why in checks:
        value = getattr(args, name, default)
        if value != default:
            raise ValueError(f"{name} must be {default!r} with R3MDPOTrainer ({why}), got {value!r}")
    beta = args.beta
    if not isinstance(beta, (int, float)) or isinstance(beta, bool) or not (beta > 0 and beta < float("inf")):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")


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


class R3MDPOTrainer(DPOTrainer):
    """``trl.DPOTrainer`` with the R³M-DPO loss of Bukharin et al. (2024, §3.4); everything else is TRL's.

    Paper symbols: β = ``DPOConfig.beta``; λ = ``R3MDPOConfig.lam``; δ_i = the per-pair perturbation.
    With the implicit-reward margin h_i = (log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))
    and z_i = β·h_i, each pair gets the closed-form δ_i of eq. 3.4 on the detached z_i, and

    .. math::

        \\mathcal L = \\frac1B \\sum_i \\big[-\\log\\sigma(z_i + \\delta_i) + \\lambda\\delta_i\\big], \\qquad
        \\delta_i = \\max\\{\\log(1/\\lambda - 1) - z_i,\\ 0\\}

    (§3.4 with eqs. 3.4–3.5, per-sample λ; :func:`r3m.functional.r3m_dpo_loss`). As λ → 1 the
    threshold goes to −∞, δ ≡ 0 and the loss is TRL's ``loss_type="sigmoid"`` loss −logσ(β h_i).
    With ``R3MDPOConfig(loss="conservative", eps=ε)`` the loss is instead cDPO,
    −(1−ε)logσ(z_i) − ε logσ(−z_i) (:func:`r3m.baselines.dpo_baseline`), which TRL removed in v0.29.

    It overrides ``compute_loss`` only, because TRL >= 0.29 has no loss hook (the loss is inline in
    ``DPOTrainer._compute_loss``; TRL PR #6918 recommends this override). The four per-sequence
    log-probabilities are obtained as the stock trainer obtains them: the policy forward on TRL's
    collated ``[chosen; rejected]`` batch with the completion mask (the fused LM head on TRL >= 1.15),
    the reference from the precomputed ``ref_chosen_logps``/``ref_rejected_logps`` columns or TRL's own
    ``compute_ref_log_probs`` (which handles ``ref_model``, PEFT adapters and autocast). A MoE router
    auxiliary loss is added as TRL adds it. ``DPOConfig.loss_type=["sigmoid", "sft"]`` with
    ``loss_weights`` adds TRL's SFT term (the chosen tokens' mean negative log-likelihood), the
    method's loss taking the place of ``"sigmoid"``: L = w_sigmoid·L_method + w_sft·L_sft.

    Logged through TRL's ``_metrics`` (averaged per logging step, ``eval_`` prefix in evaluation):
    ``rewards/chosen``, ``rewards/rejected``, ``rewards/accuracies``, ``rewards/margins``,
    ``logps/chosen``, ``logps/rejected``, ``num_tokens``, ``entropy``, ``logits/chosen``,
    ``logits/rejected`` and ``mean_token_accuracy`` (from TRL's fused LM head on TRL >= 1.15, from
    the logits before, as the stock trainer of each release); and, with ``loss="r3m"``,
    ``r3m/outlier_frac`` (share of pairs with δ_i > 0) and ``r3m/delta_mean``. The ``(B,)`` δ of the
    last batch on this process is kept in :attr:`last_delta` (``None`` with ``loss="conservative"``).
    Model cards and hub tags name R³M-DPO and cite the paper (tags ``trl``, ``dpo``, ``r3m``; with
    ``loss="conservative"`` they name cDPO, tag ``cdpo``), and ``save_model`` (so every checkpoint)
    writes the R³M settings to :data:`CONFIG_FILE`.

    Args:
        *args: passed to ``trl.DPOTrainer`` (``model``, ``ref_model``, ``args``, ...).
        r3m: the R³M hyperparameters; ``None`` means ``R3MDPOConfig()``.
        **kwargs: passed to ``trl.DPOTrainer``.

    Raises:
        TypeError: ``r3m`` is not an :class:`R3MDPOConfig`.
        ValueError: a ``DPOConfig`` option the R³M loss cannot honour, named: ``loss_type`` other
            than ``["sigmoid"]`` or ``["sigmoid", "sft"]``, ``loss_weights`` not one finite number per
            loss type, ``use_liger_kernel`` on TRL < 1.15 (where Liger computes the loss), ``ld_alpha``,
            ``f_divergence_type``, ``use_weighting``, ``label_smoothing`` (use
            ``R3MDPOConfig(loss="conservative", eps=...)``), a non-positive ``beta``, or
            ``padding_free`` where the installed TRL honours it. During training, non-finite margins
            raise ``ValueError`` (from :func:`~r3m.functional.r3m_dpo_loss`), where stock TRL trains on
            with a NaN loss: a diverged run stops at the step that diverged, and the error names it.

    Example (not run: it downloads a model)::

        from datasets import load_dataset
        from trl import DPOConfig
        from r3m.integrations.trl import R3MDPOConfig, R3MDPOTrainer

        trainer = R3MDPOTrainer(
            model="Qwen/Qwen2.5-0.5B-Instruct",
            args=DPOConfig(output_dir="r3m-dpo", beta=0.1),
            train_dataset=load_dataset("trl-lib/ultrafeedback_binarized", split="train"),
            r3m=R3MDPOConfig(lam=0.75),
        )
        trainer.train()

    Note:
        Tested (loss and gradients equal to stock ``loss_type="sigmoid"`` at λ = 1 − 1e-9, CPU,
        fp32) with TRL 1.16.0 on transformers 5.24 and datasets 5.2; the version check accepts any
        1.x release. On TRL < 1.15 (no fused LM head) the policy log-probs come from the logits with
        TRL's ``selective_log_softmax``, as the stock trainer of those versions computes them. δ
        lives in the units of the β-scaled logit (as in §3.4), so retune λ when β changes.
        δ is local to each pair, so nothing is synchronised across processes except the logged
        statistics (gathered as TRL gathers its own).

    References:
        Bukharin, Hong, Jiang, Li, Zhang, Zhang, Zhao, "Robust Reinforcement Learning from Corrupted
        Human Feedback", NeurIPS 2024, arXiv:2406.15568; Mitchell, "A note on DPO with noisy
        preferences and relationship to IPO" (2023) for cDPO; TRL ``trl/trainer/dpo_trainer.py``,
        PRs #3906 and #6918.
    """

    # TRL reads these for the model card and hub tags (declared in its base trainer as plain attributes)
    _tag_names = ["trl", "dpo", "r3m"]  # noqa: RUF012
    _name = "R3M-DPO"
    _paper = {  # noqa: RUF012
        "title": "Robust Reinforcement Learning from Corrupted Human Feedback",
        "id": "2406.15568",
        "citation": PAPER_CITATION,
    }

    def __init__(self, *args: Any, r3m: R3MDPOConfig | None = None, **kwargs: Any) -> None:
        if r3m is None:
            r3m = R3MDPOConfig()
        if not isinstance(r3m, R3MDPOConfig):
            raise TypeError(f"r3m must be an R3MDPOConfig, got {type(r3m).__name__}")
        # Refuse before TRL tokenizes the data or precomputes reference log-probs; with no DPOConfig
        # given, TRL builds a default one, which is compatible.
        dpo_args = kwargs.get("args")
        if dpo_args is None:
            dpo_args = next((a for a in args if isinstance(a, DPOConfig)), None)
        if dpo_args is not None:
            _check_dpo_config(dpo_args)
        self.r3m = r3m
        self.last_delta: torch.Tensor | None = None
        """``(B,)`` δ of the last batch seen by :meth:`compute_loss` on this process (detached)."""
        if r3m.loss == "conservative":  # the baseline: the model card must not call it R³M (read in TRL's __init__)
            self._tag_names = ["trl", "dpo", "cdpo"]
            self._name = "cDPO (conservative DPO)"
            self._paper = {}
        super().__init__(*args, **kwargs)
        _check_dpo_config(self.args)
        if getattr(self, "padding_free", False):  # TRL 1.x forces it off; a release that honours it needs new code
            raise ValueError("padding_free must be False with R3MDPOTrainer, got True")

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """The R³M-DPO (or cDPO) loss of one collated batch (mean over its B pairs), metrics logged as a side effect.

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
            return self._r3m_loss(model, inputs, return_outputs)
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
        """TRL's ``save_model`` (checkpoints included), plus :data:`CONFIG_FILE` with the R³M settings."""
        super().save_model(output_dir, _internal_call)
        _save_r3m_config(self, output_dir)

    def _mode(self, model: torch.nn.Module) -> str:
        """``"train"`` or ``"eval"``, read off the unwrapped model as TRL reads it."""
        policy = self.model if self.model is not None else model
        return "train" if policy.training else "eval"

    def _r3m_loss(
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
        ref_chosen_logps = ref_chosen_logps.to(chosen_logps.device)
        ref_rejected_logps = ref_rejected_logps.to(chosen_logps.device)

        beta = float(self.beta)
        delta: torch.Tensor | None
        if self.r3m.loss == "r3m":
            out = r3m_dpo_loss(
                chosen_logps,
                rejected_logps,
                ref_chosen_logps,
                ref_rejected_logps,
                beta=beta,
                lam=self.r3m.lam,
                check_finite=True,  # documented above; TRL reads its metrics back to the host every step anyway
            )
            losses, chosen_rewards, rejected_rewards, delta = (
                out.losses,
                out.chosen_rewards,
                out.rejected_rewards,
                out.delta,
            )
        else:
            losses, chosen_rewards, rejected_rewards = dpo_baseline(
                "conservative",
                chosen_logps,
                rejected_logps,
                ref_chosen_logps,
                ref_rejected_logps,
                beta=beta,
                eps=self.r3m.eps,
            )
            delta = None
        self.last_delta = delta
        loss = self._weighted_loss(losses.mean(), per_token_logps, shift_completion_mask)
        if aux_loss_enabled:
            aux_loss = outputs.aux_loss
            loss = loss + self.router_aux_loss_coef * aux_loss
            self._metrics[mode]["aux_loss"].append(self.accelerator.gather_for_metrics(aux_loss).mean().item())

        with torch.no_grad():
            self._log_metrics(mode, inputs, outputs, shift_completion_mask, chosen_logps, rejected_logps, shift_logits)
            self._log_rewards(mode, chosen_rewards, rejected_rewards, delta)

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

        ``"sigmoid"`` is the R³M loss (the mean over the batch); ``"sft"`` is TRL's SFT term, the mean
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
        shift_logits: torch.Tensor | None = None,
    ) -> None:
        """Append TRL's usual token, logit and log-prob metrics to ``self._metrics[mode]``.

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

        metrics["logps/chosen"].append(gather(chosen_logps.detach()).mean().item())
        metrics["logps/rejected"].append(gather(rejected_logps.detach()).mean().item())

    def _log_rewards(
        self,
        mode: str,
        chosen_rewards: torch.Tensor,
        rejected_rewards: torch.Tensor,
        delta: torch.Tensor | None,
    ) -> None:
        """Append the implicit-reward metrics and, for R³M, the δ statistics to ``self._metrics[mode]``."""
        metrics = self._metrics[mode]
        gather = self.accelerator.gather
        metrics["rewards/chosen"].append(gather(chosen_rewards).mean().item())
        metrics["rewards/rejected"].append(gather(rejected_rewards).mean().item())
        metrics["rewards/accuracies"].append(gather((chosen_rewards > rejected_rewards).float()).mean().item())
        metrics["rewards/margins"].append(gather(chosen_rewards - rejected_rewards).mean().item())
        if delta is not None:
            all_delta = gather(delta)
            metrics["r3m/outlier_frac"].append((all_delta > 0).float().mean().item())
            metrics["r3m/delta_mean"].append(all_delta.mean().item())


def __getattr__(name: str) -> Any:
    """Load :class:`R3MRewardTrainer` / :class:`R3MRewardConfig` from :mod:`r3m.integrations.trl_reward` on first access
    (that module imports this one for the version check, so a module-level import here would be circular)."""
    if name in ("R3MRewardConfig", "R3MRewardTrainer"):
        from r3m.integrations import trl_reward

        return getattr(trl_reward, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
