"""R³M reward-model training in HuggingFace TRL: :class:`R3MRewardTrainer`, a ``trl.RewardTrainer``.

Import it from :mod:`r3m.integrations.trl` (which re-exports it) or from here; either way the TRL
version check of :mod:`r3m.integrations.trl` runs first (``trl>=1.0,<2``, ``ImportError`` otherwise).

TRL internals relied on (TRL 1.16 ``trl/trainer/reward_trainer.py``; search for these names when TRL
changes): the batch of ``trl.trainer.reward_trainer.DataCollatorForPreference`` (``input_ids`` and
``attention_mask`` of shape ``(2B, T)`` with the B chosen rows before the B rejected rows, and an
optional ``(B,)`` float ``margin`` when the dataset has a ``margin`` column), the model output's
``logits`` of shape ``(2B, 1)``, ``args.center_rewards_coefficient``, and the metrics mechanism of
``RewardTrainer.compute_loss``/``log``: ``self._metrics[mode]`` lists averaged at each logging step,
``self._total_train_tokens`` and ``self._tp_size``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from r3m.functional import NonFiniteMarginsError, check_lam, r3m_loss
from r3m.integrations.trl import PAPER_CITATION, _save_r3m_config  # importing it runs the TRL version check

__all__ = ["R3MRewardConfig", "R3MRewardTrainer"]

# TRL only after the version check above
from trl.trainer.reward_config import RewardConfig
from trl.trainer.reward_trainer import RewardTrainer


@dataclasses.dataclass(frozen=True)
class R3MRewardConfig:
    """Hyperparameters of :class:`R3MRewardTrainer` beyond TRL's ``RewardConfig``.

    Example:
        >>> R3MRewardConfig(lam=0.75).lam
        0.75

    Raises:
        ValueError: ``lam`` outside (0, 1), named in the message.
    """

    lam: float = 0.5
    """per-sample ℓ1 weight λ ∈ (0, 1) of eqs. 3.3–3.4; δ_i > 0 iff d_i < log(1/λ − 1): 0.5 flags every
    pair the reward model currently misranks, a larger λ fewer, λ → 1 none (Bradley-Terry)."""

    def __post_init__(self) -> None:
        check_lam(self.lam, stacklevel=4)  # ValueError("lam must lie in the open interval (0, 1), ...")


def _check_reward_config(args: Any) -> None:
    """Refuse the RewardConfig options whose behaviour the R³M loss cannot reproduce."""
    smoothing = getattr(args, "label_smoothing_factor", 0.0)
    if smoothing != 0.0:
        raise ValueError(
            "label_smoothing_factor must be 0.0 with R3MRewardTrainer (RewardTrainer's loss ignores it and "
            f"R³M has no label-smoothed form), got {smoothing!r}"
        )
    coef = getattr(args, "center_rewards_coefficient", None)
    if coef is not None and (isinstance(coef, bool) or not isinstance(coef, (int, float)) or not math.isfinite(coef)):
        raise ValueError(f"center_rewards_coefficient must be None or a finite number, got {coef!r}")


class R3MRewardTrainer(RewardTrainer):
    """``trl.RewardTrainer`` with the R³M reward-model loss of Bukharin et al. (2024, eqs. 3.4–3.5); the rest is TRL's.

    Paper symbols: r = the model's scalar output (``num_labels=1``); λ = ``R3MRewardConfig.lam``;
    δ_i = the per-pair perturbation; m_i = TRL's optional ``margin`` column (0 without it); c =
    ``RewardConfig.center_rewards_coefficient`` (the term is left out when ``None``, as in TRL).
    With d_i = r(z_w,i) − r(z_l,i) − m_i,

    .. math::

        \\mathcal L = \\frac1B \\sum_i \\big[-\\log\\sigma(d_i + \\delta_i) + \\lambda\\delta_i\\big]
            + c\\,\\frac1B \\sum_i \\big(r(z_{w,i}) + r(z_{l,i})\\big)^2, \\qquad
        \\delta_i = \\max\\{\\log(1/\\lambda - 1) - d_i,\\ 0\\}

    (:func:`r3m.functional.r3m_loss` on d_i). As λ → 1, δ ≡ 0 and this is TRL's loss
    −logσ(d_i) + c·mean((r_w + r_l)²). Only ``compute_loss`` is overridden: the rewards come from the
    stock forward (one call on TRL's collated ``[chosen; rejected]`` batch, ``logits`` ``(2B, 1)``).

    Logged through TRL's ``_metrics`` as the stock trainer logs them: ``num_tokens``, ``min_reward``,
    ``mean_reward``, ``max_reward``, ``accuracy`` (share with r_w > r_l, margin not subtracted, a tie
    counts 0: TRL's definition), ``margin`` (mean r_w − r_l); and ``r3m/outlier_frac`` (share of pairs
    with δ_i > 0) and ``r3m/delta_mean``. The ``(B,)`` δ of the last batch is kept in :attr:`last_delta`.
    Model cards and hub tags name R³M and cite the paper (tags ``trl``, ``reward-trainer``, ``r3m``),
    and ``save_model`` (so every checkpoint) writes the R³M settings to ``r3m_config.json``.

    Args:
        *args: passed to ``trl.RewardTrainer`` (``model``, ``args``, ``train_dataset``, ...).
        r3m: the R³M hyperparameters; ``None`` means ``R3MRewardConfig()``.
        **kwargs: passed to ``trl.RewardTrainer``.

    Raises:
        TypeError: ``r3m`` is not an :class:`R3MRewardConfig`.
        ValueError: ``label_smoothing_factor`` ≠ 0 or a non-finite ``center_rewards_coefficient``; during
            training, non-finite margins (from :func:`~r3m.functional.r3m_loss`), naming the step, where
            stock TRL trains on with a NaN loss.

    Example (not run: it downloads a model)::

        from datasets import load_dataset
        from trl import RewardConfig
        from r3m.integrations.trl import R3MRewardConfig, R3MRewardTrainer

        trainer = R3MRewardTrainer(
            model="Qwen/Qwen2.5-0.5B-Instruct",
            args=RewardConfig(output_dir="r3m-rm"),
            train_dataset=load_dataset("trl-lib/ultrafeedback_binarized", split="train"),
            r3m=R3MRewardConfig(lam=0.75),
        )
        trainer.train()

    Note:
        Tested (loss and gradients equal to stock ``RewardTrainer`` at λ = 1 − 1e-9, with and without
        ``margin`` and ``center_rewards_coefficient``, CPU, fp32) with TRL 1.16.0 on transformers 5.24.
        The ``margin`` column is not passed to the model (stock TRL passes it on, and models whose
        ``forward`` takes ``**kwargs`` ignore it). δ is in the units of the reward, so retune λ when the
        reward scale changes.

    References:
        Bukharin et al., "Robust Reinforcement Learning from Corrupted Human Feedback", NeurIPS 2024,
        arXiv:2406.15568; TRL ``trl/trainer/reward_trainer.py``.
    """

    # TRL reads these for the model card and hub tags (declared in its base trainer as plain attributes)
    _tag_names = ["trl", "reward-trainer", "r3m"]  # noqa: RUF012
    _name = "R3M reward model"
    _paper = {  # noqa: RUF012
        "title": "Robust Reinforcement Learning from Corrupted Human Feedback",
        "id": "2406.15568",
        "citation": PAPER_CITATION,
    }

    def __init__(self, *args: Any, r3m: R3MRewardConfig | None = None, **kwargs: Any) -> None:
        if r3m is None:
            r3m = R3MRewardConfig()
        if not isinstance(r3m, R3MRewardConfig):
            raise TypeError(f"r3m must be an R3MRewardConfig, got {type(r3m).__name__}")
        reward_args = kwargs.get("args")
        if reward_args is None:
            reward_args = next((a for a in args if isinstance(a, RewardConfig)), None)
        if reward_args is not None:  # refuse before TRL tokenizes the data
            _check_reward_config(reward_args)
        self.r3m = r3m
        self.last_delta: torch.Tensor | None = None
        """``(B,)`` δ of the last batch seen by :meth:`compute_loss` on this process (detached)."""
        super().__init__(*args, **kwargs)
        _check_reward_config(self.args)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """TRL's ``save_model`` (checkpoints included), plus ``r3m_config.json`` with the R³M settings."""
        super().save_model(output_dir, _internal_call)
        _save_r3m_config(self, output_dir)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """The R³M loss of one collated batch (mean over its B pairs), metrics logged as a side effect.

        Args:
            model: the reward model as the ``Trainer`` passes it (possibly wrapped).
            inputs: a batch of TRL's ``DataCollatorForPreference``: ``input_ids``, ``attention_mask``
                of shape ``(2B, T)`` (chosen rows first), optionally ``margin`` of shape ``(B,)``.
            return_outputs: also return the model outputs (evaluation does).
            num_items_in_batch: unused, as in ``RewardTrainer``.

        Returns:
            The scalar loss, or ``(loss, outputs)``.
        """
        unwrapped = self.model if self.model is not None else model  # TRL reads the mode off the unwrapped model
        mode = "train" if unwrapped.training else "eval"
        model_kwargs = {k: v for k, v in inputs.items() if k != "margin"}
        model_kwargs["use_cache"] = False
        outputs = model(**model_kwargs)
        rewards_chosen, rewards_rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)  # (B,) each
        dtype = torch.promote_types(rewards_chosen.dtype, torch.float32)  # the gap in float32, as r3m_loss takes it
        d = rewards_chosen.to(dtype) - rewards_rejected.to(dtype)
        if "margin" in inputs:
            d = d - inputs["margin"]  # TRL's order: (r_w − r_l) − m
        try:
            out = r3m_loss(d, torch.zeros_like(d), lam=self.r3m.lam, check_finite=True)  # documented above
        except NonFiniteMarginsError as err:
            phase = "training step" if unwrapped.training else "evaluation at step"
            raise ValueError(
                f"{phase} {self.state.global_step + 1}: the reward margins r(z_w) − r(z_l) are NaN or inf (stock TRL "
                "would go on with a NaN loss): lower the learning rate, or check the data"
            ) from err
        loss = out.loss
        coef = getattr(self.args, "center_rewards_coefficient", None)  # a RewardConfig field
        if coef is not None:
            loss = loss + coef * torch.mean((rewards_chosen + rewards_rejected) ** 2)
        self.last_delta = out.delta

        metrics = self._metrics[mode]
        gather_for_metrics = self.accelerator.gather_for_metrics
        if mode == "train":
            num_tokens = gather_for_metrics(inputs["attention_mask"].sum()).sum().item()
            self._total_train_tokens += num_tokens // getattr(self, "_tp_size", 1)
        metrics["num_tokens"] = [self._total_train_tokens]
        with torch.no_grad():
            all_rewards = self.accelerator.gather(outputs.logits)
            metrics["min_reward"].append(all_rewards.min().item())
            metrics["mean_reward"].append(all_rewards.mean().item())
            metrics["max_reward"].append(all_rewards.max().item())
            accuracy = (rewards_chosen > rewards_rejected).float().mean()
            metrics["accuracy"].append(gather_for_metrics(accuracy).mean().item())
            metrics["margin"].append(gather_for_metrics((rewards_chosen - rewards_rejected).mean()).mean().item())
            all_delta = gather_for_metrics(out.delta)
            metrics["r3m/outlier_frac"].append((all_delta > 0).float().mean().item())
            metrics["r3m/delta_mean"].append(all_delta.mean().item())
        return (loss, outputs) if return_outputs else loss
