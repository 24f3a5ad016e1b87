"""Tests of r3m.integrations.trl (the ``[trl]`` extra): R3MDPOTrainer and R3MRewardTrainer on tiny GPT-2s built in memory.

Nothing is downloaded: the model is a 2-layer GPT-2 built from its config, the tokenizer a WordLevel
vocabulary built here, the data a ``datasets.Dataset.from_dict``.
"""

from __future__ import annotations

import doctest
import importlib.metadata
import importlib.util
import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl")

import torch
import torch.nn.functional as F
from datasets import Dataset, load_from_disk
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel, PreTrainedTokenizerFast
from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer

import r3m.integrations.trl as r3m_trl
import r3m.integrations.trl_reward as r3m_trl_reward
from r3m.functional import r3m_dpo_loss, r3m_loss
from r3m.integrations.trl import (
    R3MDPOConfig,
    R3MDPOTrainer,
    R3MRewardConfig,
    R3MRewardTrainer,
    check_trl_version,
)

WORDS = ["<pad>", "<unk>", "<eos>"] + [f"w{i}" for i in range(29)]
PROMPTS = ["w1 w2", "w3 w4 w5", "w6", "w7 w8"]
CHOSEN = [" w9 w10", " w11", " w12 w13 w14", " w15"]
REJECTED = [" w16", " w17 w18", " w19", " w20 w21"]
BETA = 2.0  # large enough that the margins βh are far from 0 at init (policy and reference differ)
LAM_BT = 1.0 - 1e-9  # t_λ = log(1/λ − 1) ≈ −20.7: no margin reaches it, so δ ≡ 0 and R³M is plain DPO


def _tokenizer() -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")


def _config() -> GPT2Config:
    return GPT2Config(
        n_layer=2, n_head=2, n_embd=32, n_positions=32, vocab_size=len(WORDS), bos_token_id=2, eos_token_id=2
    )


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One intra-op thread: the tiny model gains nothing from two, and a busy 2-core machine slows two ~50x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def weights() -> dict[str, dict[str, torch.Tensor]]:
    """State dicts of a policy and a different reference (seeded without touching the global RNG)."""
    out = {}
    with torch.random.fork_rng():
        for name, seed in (("policy", 0), ("ref", 1)):
            torch.manual_seed(seed)
            out[name] = GPT2LMHeadModel(_config()).state_dict()
    return out


def _model(state: dict[str, torch.Tensor]) -> GPT2LMHeadModel:
    # A fresh module per trainer: DPOTrainer patches the forward of the model it is given.
    model = GPT2LMHeadModel(_config())
    model.load_state_dict(state)
    return model


def _dpo_args(tmp_path: Path, **overrides: Any) -> DPOConfig:
    kwargs: dict[str, Any] = {
        "output_dir": str(tmp_path / "out"),
        "use_cpu": True,
        "report_to": "none",
        "max_length": 16,
        "per_device_train_batch_size": 2,
        "max_steps": 2,
        "logging_steps": 1,
        "save_strategy": "no",
        "disable_tqdm": True,
        "learning_rate": 1e-3,
        "beta": BETA,
        "seed": 0,
        "bf16": False,  # TRL defaults to bf16 autocast, even on CPU; fp32 keeps the comparisons exact
    }
    kwargs.update(overrides)
    return DPOConfig(**kwargs)


def _dataset() -> Dataset:
    return Dataset.from_dict({"prompt": PROMPTS, "chosen": CHOSEN, "rejected": REJECTED})


def _trainer(
    cls: type[DPOTrainer], weights: dict[str, dict[str, torch.Tensor]], args: DPOConfig, **kwargs: Any
) -> DPOTrainer:
    dataset = kwargs.pop("train_dataset", None)
    return cls(
        model=_model(weights["policy"]),
        ref_model=_model(weights["ref"]),
        args=args,
        train_dataset=_dataset() if dataset is None else dataset,
        processing_class=_tokenizer(),
        **kwargs,
    )


def _first_batch(trainer: DPOTrainer) -> dict[str, torch.Tensor]:
    examples = [trainer.train_dataset[i] for i in range(len(PROMPTS))]
    return trainer._prepare_inputs(trainer.data_collator(examples))


def _eval_loss(trainer: DPOTrainer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    trainer.model.eval()  # no dropout; TRL's disable_dropout already zeroes it
    return trainer.compute_loss(trainer.model, batch)


def _naive_logps(state: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence completion log-probs by a plain forward, log_softmax and gather (no TRL code)."""
    model = _model(state).eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    token_logps = F.log_softmax(logits[:, :-1].double(), dim=-1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
    seq_logps = (token_logps * batch["completion_mask"][:, 1:]).sum(dim=1)
    chosen, rejected = seq_logps.chunk(2)  # (B,) each: the collator puts the B chosen rows first
    return chosen, rejected


def _naive_margins(weights: dict[str, dict[str, torch.Tensor]], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """z = β·h in float64 from the naive log-probs."""
    policy_c, policy_r = _naive_logps(weights["policy"], batch)
    ref_c, ref_r = _naive_logps(weights["ref"], batch)
    return BETA * ((policy_c - ref_c) - (policy_r - ref_r))


class TestVersionCheck:
    @pytest.mark.parametrize("version", ["0.29.1", "0.7.11", "2.0.0", "2.0.0.dev0", "garbage"])
    def test_check_trl_version_rejects_outside_range(self, version: str) -> None:
        with pytest.raises(ImportError, match=rf"^r3m\[trl\] supports trl>=1\.0,<2; found {re.escape(version)}$"):
            check_trl_version(version)

    @pytest.mark.parametrize("version", ["1.0.0", "1.16.0", "1.99.3rc1"])
    def test_check_trl_version_accepts_1x(self, version: str) -> None:
        check_trl_version(version)

    def _exec_module_with(self, monkeypatch: pytest.MonkeyPatch, fake_version: Any) -> None:
        # Execute the module's source under another name, so the imported module stays untouched.
        monkeypatch.setattr(importlib.metadata, "version", fake_version)
        spec = importlib.util.spec_from_file_location("_r3m_trl_probe", r3m_trl.__file__)
        assert spec is not None
        assert spec.loader is not None
        spec.loader.exec_module(importlib.util.module_from_spec(spec))

    def test_import_rejects_unsupported_version(self, monkeypatch: pytest.MonkeyPatch) -> None:
        with pytest.raises(ImportError, match=r"r3m\[trl\] supports trl>=1\.0,<2; found 0\.29\.1"):
            self._exec_module_with(monkeypatch, lambda name: "0.29.1")

    def test_import_without_trl_says_how_to_install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def missing(name: str) -> str:
            raise importlib.metadata.PackageNotFoundError(name)

        with pytest.raises(ImportError, match=r'pip install "r3m\[trl\]"'):
            self._exec_module_with(monkeypatch, missing)


def test_docstring_examples() -> None:
    result = doctest.testmod(r3m_trl)
    assert result.failed == 0
    assert result.attempted > 0


class TestConfig:
    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"lam": 0.0}, "lam"),
            ({"lam": 1.0}, "lam"),
            ({"lam": -0.5}, "lam"),
            ({"lam": True}, "lam"),
            ({"loss": "sigmoid"}, "loss"),
            ({"eps": 0.5}, "eps"),
            ({"eps": -0.1}, "eps"),
            ({"eps": "0.1"}, "eps"),
        ],
    )
    def test_r3m_config_bad_value_names_argument(self, kwargs: dict[str, Any], name: str) -> None:
        with pytest.raises(ValueError, match=rf"^{name} must"):
            R3MDPOConfig(**kwargs)

    def test_r3m_config_defaults(self) -> None:
        cfg = R3MDPOConfig()
        assert (cfg.lam, cfg.loss, cfg.eps) == (0.5, "r3m", 0.1)

    @pytest.mark.parametrize(
        ("overrides", "name"),
        [
            ({"loss_type": ["hinge"]}, "loss_type"),
            ({"loss_type": ["sigmoid", "ipo"]}, "loss_type"),
            ({"loss_type": ["sft"]}, "loss_type"),
            ({"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, float("inf")]}, "loss_weights"),
            ({"loss_weights": [float("nan")]}, "loss_weights"),
            ({"ld_alpha": 0.5}, "ld_alpha"),
            ({"f_divergence_type": "js_divergence"}, "f_divergence_type"),
            ({"use_weighting": True}, "use_weighting"),
            ({"label_smoothing": 0.1}, "label_smoothing"),
            ({"beta": 0.0}, "beta"),
        ],
    )
    def test_trainer_refuses_unsupported_dpo_option(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]], overrides: dict[str, Any], name: str
    ) -> None:
        with pytest.raises(ValueError, match=rf"^{name} must"):
            _trainer(R3MDPOTrainer, weights, _dpo_args(tmp_path, **overrides))

    def test_liger_refused_only_where_it_replaces_the_loss(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # TRL < 1.15 (no fused LM head) computes the whole DPO loss in Liger's kernel; from 1.15 Liger
        # only patches the model's layers and the loss this trainer replaces is unchanged.
        args = _dpo_args(tmp_path)
        args.use_liger_kernel = True  # set after construction, which may check that liger is installed
        if r3m_trl._FUSED_LM_HEAD:
            r3m_trl._check_dpo_config(args)  # accepted
        monkeypatch.setattr(r3m_trl, "_FUSED_LM_HEAD", False)
        with pytest.raises(ValueError, match=r"^use_liger_kernel must be False with R3MDPOTrainer on TRL < 1\.15"):
            _trainer(R3MDPOTrainer, weights, args)

    def test_trainer_refuses_non_config_r3m(self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]) -> None:
        with pytest.raises(TypeError, match="r3m must be an R3MDPOConfig"):
            _trainer(R3MDPOTrainer, weights, _dpo_args(tmp_path), r3m={"lam": 0.5})


class TestLoss:
    def test_lam_near_one_matches_stock_sigmoid_dpo(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]
    ) -> None:
        # λ = 1 − 1e-9 puts t_λ ≈ −20.7 below every margin, so δ ≡ 0 and the loss is −logσ(βh):
        # stock TRL "sigmoid" on the same batch (loss to 1e-6, gradients to float32 rounding).
        args = _dpo_args(tmp_path)
        r3m = _trainer(R3MDPOTrainer, weights, args, r3m=R3MDPOConfig(lam=LAM_BT))
        stock = _trainer(DPOTrainer, weights, args)
        batch = _first_batch(stock)
        torch.testing.assert_close(_first_batch(r3m), batch, rtol=0, atol=0)

        loss_r3m, loss_stock = _eval_loss(r3m, batch), _eval_loss(stock, batch)
        assert abs(loss_r3m.item() - loss_stock.item()) <= 1e-6
        assert abs(loss_stock.item() - math.log(2.0)) > 1e-2  # the margins are not trivially zero
        loss_r3m.backward()
        loss_stock.backward()
        for (name, p_r3m), p_stock in zip(r3m.model.named_parameters(), stock.model.parameters(), strict=True):
            torch.testing.assert_close(p_r3m.grad, p_stock.grad, rtol=1e-5, atol=1e-7, msg=name)
        for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"):
            assert r3m._metrics["eval"][key] == pytest.approx(stock._metrics["eval"][key], abs=1e-6)
        assert r3m._metrics["eval"]["r3m/outlier_frac"] == [0.0]
        assert r3m._metrics["eval"]["r3m/delta_mean"] == [0.0]

    def test_default_loss_matches_naive_logps(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]
    ) -> None:
        # The trainer's loss at λ = 0.5 equals r3m_dpo_loss on log-probs from a plain forward, and its
        # δ > 0 flags are the pairs with z < t_0.5 = 0 (eq. 3.4).
        trainer = _trainer(R3MDPOTrainer, weights, _dpo_args(tmp_path))
        batch = _first_batch(trainer)
        policy = _naive_logps(weights["policy"], batch)
        ref = _naive_logps(weights["ref"], batch)
        expected = r3m_dpo_loss(*policy, *ref, beta=BETA, lam=0.5)
        loss = _eval_loss(trainer, batch)
        assert loss.item() == pytest.approx(expected.losses.mean().item(), abs=1e-5)
        z = _naive_margins(weights, batch)
        assert 0 < int((z < 0).sum()) < len(z)  # some pairs are flagged, some are not
        assert trainer.last_delta is not None
        torch.testing.assert_close(trainer.last_delta.double(), (-z).clamp_min(0.0), rtol=1e-5, atol=1e-5)
        assert trainer._metrics["eval"]["r3m/outlier_frac"] == [pytest.approx((z < 0).double().mean().item())]
        assert trainer._metrics["eval"]["r3m/delta_mean"][0] == pytest.approx(expected.delta.mean().item(), abs=1e-5)
        stock_form = -F.logsigmoid(z).mean()
        assert abs(loss.item() - stock_form.item()) > 1e-3  # δ > 0 here: the loss differs from DPO

    @pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
    def test_conservative_matches_label_smoothing_formula(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]], eps: float
    ) -> None:
        # cDPO (Mitchell 2023): −(1−ε)logσ(z) − ε logσ(−z), z = βh, written here from the naive log-probs.
        trainer = _trainer(R3MDPOTrainer, weights, _dpo_args(tmp_path), r3m=R3MDPOConfig(loss="conservative", eps=eps))
        batch = _first_batch(trainer)
        z = _naive_margins(weights, batch)
        expected = (-(1.0 - eps) * F.logsigmoid(z) - eps * F.logsigmoid(-z)).mean()
        assert _eval_loss(trainer, batch).item() == pytest.approx(expected.item(), abs=1e-5)
        assert trainer.last_delta is None
        assert "r3m/outlier_frac" not in trainer._metrics["eval"]

    def test_precomputed_reference_matches_live_reference(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]
    ) -> None:
        # On disk, so that TRL's cache of reference log-probs lands in tmp_path.
        _dataset().save_to_disk(str(tmp_path / "data"))
        precomputed = _trainer(
            R3MDPOTrainer,
            weights,
            _dpo_args(tmp_path, precompute_ref_log_probs=True),
            train_dataset=load_from_disk(str(tmp_path / "data")),
        )
        live = _trainer(R3MDPOTrainer, weights, _dpo_args(tmp_path))
        batch = _first_batch(precomputed)
        assert "ref_chosen_logps" in batch
        live_batch = {k: v for k, v in batch.items() if not k.startswith("ref_")}
        assert _eval_loss(precomputed, batch).item() == pytest.approx(_eval_loss(live, live_batch).item(), abs=1e-6)


class TestStockParity:
    METRICS = ("entropy", "logits/chosen", "logits/rejected", "mean_token_accuracy")

    @pytest.mark.parametrize(
        ("loss_type", "loss_weights"),
        [(["sigmoid"], [2.5]), (["sigmoid", "sft"], None), (["sft", "sigmoid"], [0.3, 1.7])],
    )
    def test_weighted_and_sft_losses_match_stock(
        self,
        tmp_path: Path,
        weights: dict[str, dict[str, torch.Tensor]],
        loss_type: list[str],
        loss_weights: list[float] | None,
    ) -> None:
        # At the plain-DPO setting the method's loss is TRL's "sigmoid", so with loss weights and TRL's
        # "sft" term the total must be stock TRL's for the same DPOConfig: loss and gradients.
        args = _dpo_args(tmp_path, loss_type=loss_type, loss_weights=loss_weights)
        ours = _trainer(R3MDPOTrainer, weights, args, r3m=R3MDPOConfig(lam=LAM_BT))
        stock = _trainer(DPOTrainer, weights, args)
        batch = _first_batch(stock)
        loss_ours, loss_stock = _eval_loss(ours, batch), _eval_loss(stock, batch)
        assert loss_ours.item() == pytest.approx(loss_stock.item(), abs=1e-6)
        sigmoid_only = _eval_loss(_trainer(DPOTrainer, weights, _dpo_args(tmp_path / "s")), batch)
        assert abs(loss_stock.item() - sigmoid_only.item()) > 1e-2  # the weights and the sft term change the loss
        loss_ours.backward()
        loss_stock.backward()
        for (name, p_ours), p_stock in zip(ours.model.named_parameters(), stock.model.parameters(), strict=True):
            torch.testing.assert_close(p_ours.grad, p_stock.grad, rtol=1e-5, atol=1e-7, msg=name)

    def test_logit_metrics_without_the_fused_head_match_stock(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # TRL < 1.15 has no fused LM head: the trainer then takes the log-probs and TRL's logit metrics
        # from the logits. Forced here on TRL 1.16, whose stock trainer computes the same metrics in
        # its fused head: a second implementation of entropy, mean logits and top-1 accuracy.
        if not r3m_trl._FUSED_LM_HEAD:
            pytest.skip("the installed TRL has no fused LM head to compare with")
        args = _dpo_args(tmp_path)
        stock = _trainer(DPOTrainer, weights, args)
        r3m = _trainer(R3MDPOTrainer, weights, args, r3m=R3MDPOConfig(lam=LAM_BT))
        batch = _first_batch(stock)
        loss_stock = _eval_loss(stock, batch)
        monkeypatch.setattr(r3m_trl, "_FUSED_LM_HEAD", False)
        loss_r3m = _eval_loss(r3m, batch)
        assert loss_r3m.item() == pytest.approx(loss_stock.item(), abs=1e-6)
        for key in self.METRICS:
            assert len(r3m._metrics["eval"][key]) == 1, key
            assert r3m._metrics["eval"][key] == pytest.approx(stock._metrics["eval"][key], abs=1e-5), key
        assert 0.0 < r3m._metrics["eval"]["entropy"][0] <= math.log(len(WORDS)) + 1e-6

    def test_fused_head_metrics_match_stock(self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]) -> None:
        args = _dpo_args(tmp_path)
        stock = _trainer(DPOTrainer, weights, args)
        r3m = _trainer(R3MDPOTrainer, weights, args, r3m=R3MDPOConfig(lam=LAM_BT))
        batch = _first_batch(stock)
        _eval_loss(stock, batch), _eval_loss(r3m, batch)
        for key in self.METRICS:
            assert r3m._metrics["eval"][key] == pytest.approx(stock._metrics["eval"][key], abs=1e-6), key

    def test_return_outputs_warns_as_stock(self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]) -> None:
        if not r3m_trl._FUSED_LM_HEAD:
            pytest.skip("TRL < 1.15 returns the logits of the one forward pass, without a warning")
        trainer = _trainer(R3MDPOTrainer, weights, _dpo_args(tmp_path))
        batch = _first_batch(trainer)
        trainer.model.eval()
        with pytest.warns(FutureWarning, match=r"return_outputs=True .* extra forward pass"):
            _loss, outputs = trainer.compute_loss(trainer.model, batch, return_outputs=True)
        assert outputs.logits.shape[:2] == batch["input_ids"].shape

    def test_truncated_image_tokens_get_stock_advice(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        trainer = _trainer(R3MDPOTrainer, weights, _dpo_args(tmp_path))
        batch = _first_batch(trainer)

        def raise_(message: str) -> Any:
            def loss(*args: Any, **kwargs: Any) -> Any:
                raise ValueError(message)

            return loss

        monkeypatch.setattr(trainer, "_r3m_loss", raise_("Image features and image tokens do not match: 3 vs 5"))
        with pytest.raises(ValueError, match=r"^max_length = 16 truncates image placeholder tokens .* set it to None"):
            trainer.compute_loss(trainer.model, batch)
        monkeypatch.setattr(trainer, "_r3m_loss", raise_("some other error"))
        with pytest.raises(ValueError, match=r"^some other error$"):  # other errors pass unchanged
            trainer.compute_loss(trainer.model, batch)

    def test_non_finite_margins_name_the_step(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A NaN reference log-prob (the real check inside the loss, not a stand-in) stops the step and
        # says which one; stock TRL trains on with a NaN loss.
        trainer = _trainer(R3MDPOTrainer, weights, _dpo_args(tmp_path))
        batch = _first_batch(trainer)
        nan = torch.full((len(PROMPTS),), float("nan"))
        monkeypatch.setattr(trainer, "_reference_logps", lambda inputs: (nan, torch.zeros_like(nan)))
        trainer.state.global_step = 6
        trainer.model.train()
        with pytest.raises(
            ValueError, match=r"^training step 7: the DPO margins β·h are NaN or inf .* lower the learning rate"
        ):
            trainer.compute_loss(trainer.model, batch)
        trainer.model.eval()
        with pytest.raises(ValueError, match=r"^evaluation at step 7: the DPO margins"):
            trainer.compute_loss(trainer.model, batch)

    def test_model_card_tags_and_saved_settings(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]
    ) -> None:
        trainer = _trainer(R3MDPOTrainer, weights, _dpo_args(tmp_path), r3m=R3MDPOConfig(lam=0.75))
        assert {"trl", "dpo", "r3m"} <= set(trainer.model.model_tags)
        trainer.save_model(str(tmp_path / "saved"))
        saved = json.loads((tmp_path / "saved" / r3m_trl.CONFIG_FILE).read_text())
        assert saved == {"trainer": "R3MDPOTrainer", "lam": 0.75, "loss": "r3m", "eps": 0.1}
        trainer.create_model_card(model_name="tiny")
        card = (tmp_path / "out" / "README.md").read_text()
        assert "R3M-DPO" in card
        assert "2406.15568" in card
        assert "bukharin2024robust" in card

    def test_conservative_baseline_card_is_not_labelled_r3m(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]
    ) -> None:
        trainer = _trainer(R3MDPOTrainer, weights, _dpo_args(tmp_path), r3m=R3MDPOConfig(loss="conservative", eps=0.2))
        assert "r3m" not in trainer.model.model_tags
        assert "cdpo" in trainer.model.model_tags
        trainer.create_model_card(model_name="tiny")
        card = (tmp_path / "out" / "README.md").read_text()
        assert "cDPO" in card
        assert "R3M" not in card
        assert "2406.15568" not in card
        assert R3MDPOTrainer._name == "R3M-DPO"  # set on the instance only

    def test_logit_statistics_in_chunks_match_the_whole(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Completion positions only, a few at a time: the same values as the unchunked formulas there,
        # zeros elsewhere. Ties in the argmax follow torch.argmax (the first maximum), as TRL's head.
        gen = torch.Generator().manual_seed(0)
        logits = torch.randn(4, 6, 11, generator=gen, dtype=torch.float64)
        logits[0, 1, 3] = logits[0, 1, 5] = logits[0, 1].max() + 1.0  # a tie
        nxt = torch.randint(0, 11, (4, 6), generator=gen)
        nxt[0, 1] = 5
        mask = torch.rand(4, 6, generator=gen) < 0.6
        mask[0, 1] = True
        monkeypatch.setattr(r3m_trl, "_STATISTICS_CHUNK", 3)
        stats = r3m_trl._logit_statistics(logits[:, :, :], nxt, mask)
        p = torch.softmax(logits, dim=-1)
        entropy = -(p * torch.log(p)).sum(-1)
        torch.testing.assert_close(stats.entropy[mask], entropy[mask])
        torch.testing.assert_close(stats.mean_logits[mask], logits.mean(-1)[mask])
        assert torch.equal(stats.is_top1[mask], (logits.argmax(-1) == nxt)[mask])
        assert not bool(stats.is_top1[0, 1])  # token 5 ties the first maximum (3): not top-1
        assert bool((stats.entropy[~mask] == 0).all())
        assert not bool(stats.is_top1[~mask].any())


def test_train_two_steps_logs_outlier_frac(tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]) -> None:
    trainer = _trainer(R3MDPOTrainer, weights, _dpo_args(tmp_path), eval_dataset=_dataset())
    result = trainer.train()
    assert trainer.state.global_step == 2
    assert math.isfinite(result.training_loss)
    logs = [entry for entry in trainer.state.log_history if "r3m/outlier_frac" in entry]
    assert len(logs) == 2
    for entry in logs:
        assert math.isfinite(entry["loss"])
        assert 0.0 <= entry["r3m/outlier_frac"] <= 1.0
        assert entry["r3m/delta_mean"] >= 0.0
        assert "rewards/margins" in entry
    assert trainer.last_delta is not None
    assert trainer.last_delta.shape == (2,)  # per_device_train_batch_size pairs
    trainer.evaluate()  # prediction_step -> compute_loss(return_outputs=True)
    metrics = trainer.state.log_history[-1]  # TRL 1.0 returns them without its own metrics
    assert math.isfinite(metrics["eval_loss"])
    assert 0.0 <= metrics["eval_r3m/outlier_frac"] <= 1.0


# --- R3MRewardTrainer ----------------------------------------------------------------------------

MARGINS = [0.5, -1.0, 2.0, 0.0]  # TRL's optional margin column: d = r_w − r_l − m


def _rm_config() -> GPT2Config:
    return GPT2Config(
        n_layer=2,
        n_head=2,
        n_embd=32,
        n_positions=32,
        vocab_size=len(WORDS),
        bos_token_id=2,
        eos_token_id=2,
        pad_token_id=0,  # GPT2ForSequenceClassification scores the last non-pad token
        num_labels=1,
    )


@pytest.fixture(scope="module")
def rm_weights() -> dict[str, torch.Tensor]:
    """State dict of a tiny GPT-2 reward model (seeded without touching the global RNG)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return GPT2ForSequenceClassification(_rm_config()).state_dict()


def _reward_model(state: dict[str, torch.Tensor]) -> GPT2ForSequenceClassification:
    model = GPT2ForSequenceClassification(_rm_config())
    model.load_state_dict(state)
    return model


def _reward_args(tmp_path: Path, **overrides: Any) -> RewardConfig:
    kwargs: dict[str, Any] = {
        "output_dir": str(tmp_path / "rm"),
        "use_cpu": True,
        "report_to": "none",
        "max_length": 16,
        "per_device_train_batch_size": 2,
        "max_steps": 2,
        "logging_steps": 1,
        "save_strategy": "no",
        "disable_tqdm": True,
        "learning_rate": 1e-3,
        "seed": 0,
        "bf16": False,
    }
    kwargs.update(overrides)
    return RewardConfig(**kwargs)


def _rm_dataset(margin: bool) -> Dataset:
    columns: dict[str, list[Any]] = {"prompt": PROMPTS, "chosen": CHOSEN, "rejected": REJECTED}
    if margin:
        columns["margin"] = MARGINS
    return Dataset.from_dict(columns)


def _reward_trainer(
    cls: type[RewardTrainer], state: dict[str, torch.Tensor], args: RewardConfig, *, margin: bool, **kwargs: Any
) -> RewardTrainer:
    return cls(
        model=_reward_model(state),
        args=args,
        train_dataset=_rm_dataset(margin),
        processing_class=_tokenizer(),
        **kwargs,
    )


def _rm_batch(trainer: RewardTrainer) -> dict[str, torch.Tensor]:
    examples = [trainer.train_dataset[i] for i in range(len(PROMPTS))]
    return trainer._prepare_inputs(trainer.data_collator(examples))


def _rm_eval_loss(trainer: RewardTrainer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    trainer.model.eval()
    return trainer.compute_loss(trainer.model, dict(batch))  # a copy: stock TRL writes use_cache into it


class TestRewardConfig:
    @pytest.mark.parametrize("lam", [0.0, 1.0, -0.5, True, "0.5"])
    def test_bad_lam_names_argument(self, lam: Any) -> None:
        with pytest.raises(ValueError, match=r"^lam must"):
            R3MRewardConfig(lam=lam)

    def test_defaults_and_reexport(self) -> None:
        assert R3MRewardConfig().lam == 0.5
        assert r3m_trl.R3MRewardTrainer is r3m_trl_reward.R3MRewardTrainer
        assert {"R3MRewardConfig", "R3MRewardTrainer"} <= set(r3m_trl.__all__)
        with pytest.raises(AttributeError, match="no attribute 'R3MNoSuchThing'"):
            _ = r3m_trl.R3MNoSuchThing

    @pytest.mark.parametrize(
        ("overrides", "name"),
        [
            ({"label_smoothing_factor": 0.1}, "label_smoothing_factor"),
            ({"center_rewards_coefficient": math.nan}, "center_rewards_coefficient"),
            ({"center_rewards_coefficient": math.inf}, "center_rewards_coefficient"),
        ],
    )
    def test_trainer_refuses_unsupported_option(
        self, tmp_path: Path, rm_weights: dict[str, torch.Tensor], overrides: dict[str, Any], name: str
    ) -> None:
        with pytest.raises(ValueError, match=rf"^{name} must"):
            _reward_trainer(R3MRewardTrainer, rm_weights, _reward_args(tmp_path, **overrides), margin=False)

    def test_trainer_refuses_non_config_r3m(self, tmp_path: Path, rm_weights: dict[str, torch.Tensor]) -> None:
        with pytest.raises(TypeError, match="r3m must be an R3MRewardConfig"):
            _reward_trainer(R3MRewardTrainer, rm_weights, _reward_args(tmp_path), margin=False, r3m=R3MDPOConfig())

    def test_docstring_examples(self) -> None:
        result = doctest.testmod(r3m_trl_reward)
        assert result.failed == 0
        assert result.attempted > 0


class TestRewardLoss:
    @pytest.mark.parametrize(("margin", "center"), [(False, None), (True, 0.01)])
    def test_lam_near_one_matches_stock_reward_trainer(
        self, tmp_path: Path, rm_weights: dict[str, torch.Tensor], margin: bool, center: float | None
    ) -> None:
        # λ = 1 − 1e-9 puts t_λ ≈ −20.7 below every d_i, so δ ≡ 0 and the loss is TRL's −logσ(d) (+ centring
        # term): stock RewardTrainer on the same model and batch (loss to 1e-6, gradients to float32 rounding).
        args = _reward_args(tmp_path, center_rewards_coefficient=center)
        r3m = _reward_trainer(R3MRewardTrainer, rm_weights, args, margin=margin, r3m=R3MRewardConfig(lam=LAM_BT))
        stock = _reward_trainer(RewardTrainer, rm_weights, args, margin=margin)
        batch = _rm_batch(stock)
        torch.testing.assert_close(_rm_batch(r3m), batch, rtol=0, atol=0)
        assert ("margin" in batch) is margin

        loss_r3m, loss_stock = _rm_eval_loss(r3m, batch), _rm_eval_loss(stock, batch)
        assert abs(loss_r3m.item() - loss_stock.item()) <= 1e-6
        assert abs(loss_stock.item() - math.log(2.0)) > 1e-2  # the rewards are not trivially equal
        loss_r3m.backward()
        loss_stock.backward()
        for (name, p_r3m), p_stock in zip(r3m.model.named_parameters(), stock.model.parameters(), strict=True):
            if p_stock.grad is None:
                assert p_r3m.grad is None, name
                continue
            torch.testing.assert_close(p_r3m.grad, p_stock.grad, rtol=1e-5, atol=1e-7, msg=name)
        for key in ("accuracy", "margin", "min_reward", "mean_reward", "max_reward", "num_tokens"):
            assert r3m._metrics["eval"][key] == pytest.approx(stock._metrics["eval"][key], abs=1e-6), key
        assert r3m._metrics["eval"]["r3m/outlier_frac"] == [0.0]
        assert r3m._metrics["eval"]["r3m/delta_mean"] == [0.0]

    def test_margin_column_honoured(self, tmp_path: Path, rm_weights: dict[str, torch.Tensor]) -> None:
        # At λ = 0.5 the trainer's loss equals r3m_loss on d = r_w − r_l − m with the rewards from a plain
        # forward of a fresh copy of the model (no TRL code), in float64; δ > 0 flags exactly d < 0.
        trainer = _reward_trainer(R3MRewardTrainer, rm_weights, _reward_args(tmp_path), margin=True)
        batch = _rm_batch(trainer)
        loss = _rm_eval_loss(trainer, batch)
        with torch.no_grad():
            plain = _reward_model(rm_weights).eval()
            rewards = plain(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0]
        r_w, r_l = rewards.double().chunk(2)  # the collator puts the B chosen rows first
        d = r_w - r_l - torch.tensor(MARGINS, dtype=torch.float64)
        expected = r3m_loss(d, torch.zeros_like(d), lam=0.5)
        assert loss.item() == pytest.approx(expected.loss.item(), abs=1e-6)
        assert 0 < int((d < 0).sum()) < len(d)  # some pairs flagged, some not
        assert trainer.last_delta is not None
        torch.testing.assert_close(trainer.last_delta.double(), (-d).clamp_min(0.0), rtol=1e-5, atol=1e-6)
        assert trainer._metrics["eval"]["r3m/outlier_frac"] == [pytest.approx((d < 0).double().mean().item())]
        assert trainer._metrics["eval"]["r3m/delta_mean"][0] == pytest.approx(expected.delta.mean().item(), abs=1e-6)
        without_margin = r3m_loss(r_w, r_l, lam=0.5).loss
        assert abs(loss.item() - without_margin.item()) > 1e-2  # the margin changed the loss


def test_reward_model_card_tags_and_saved_settings(tmp_path: Path, rm_weights: dict[str, torch.Tensor]) -> None:
    trainer = _reward_trainer(
        R3MRewardTrainer, rm_weights, _reward_args(tmp_path), margin=False, r3m=R3MRewardConfig(lam=0.6)
    )
    assert {"trl", "reward-trainer", "r3m"} <= set(trainer.model.model_tags)
    trainer.save_model(str(tmp_path / "saved"))
    saved = json.loads((tmp_path / "saved" / "r3m_config.json").read_text())
    assert saved == {"trainer": "R3MRewardTrainer", "lam": 0.6}
    trainer.create_model_card(model_name="tiny")
    card = (tmp_path / "rm" / "README.md").read_text()
    assert "R3M reward model" in card
    assert "2406.15568" in card


def test_reward_non_finite_margins_name_the_step(tmp_path: Path, rm_weights: dict[str, torch.Tensor]) -> None:
    trainer = _reward_trainer(R3MRewardTrainer, rm_weights, _reward_args(tmp_path), margin=True)
    batch = _rm_batch(trainer)
    batch["margin"] = torch.full_like(batch["margin"], float("inf"))  # d = r_w − r_l − m is −inf
    trainer.state.global_step = 2
    trainer.model.train()
    with pytest.raises(ValueError, match=r"^training step 3: the reward margins r\(z_w\) − r\(z_l\) are NaN or inf"):
        trainer.compute_loss(trainer.model, dict(batch))


def test_reward_train_two_steps_logs_outlier_frac(tmp_path: Path, rm_weights: dict[str, torch.Tensor]) -> None:
    trainer = _reward_trainer(
        R3MRewardTrainer, rm_weights, _reward_args(tmp_path), margin=True, eval_dataset=_rm_dataset(True)
    )
    result = trainer.train()
    assert trainer.state.global_step == 2
    assert math.isfinite(result.training_loss)
    logs = [entry for entry in trainer.state.log_history if "r3m/outlier_frac" in entry]
    assert len(logs) == 2
    for entry in logs:
        assert math.isfinite(entry["loss"])
        assert 0.0 <= entry["r3m/outlier_frac"] <= 1.0
        assert entry["r3m/delta_mean"] >= 0.0
        assert 0.0 <= entry["accuracy"] <= 1.0
    assert trainer.last_delta is not None
    assert trainer.last_delta.shape == (2,)  # per_device_train_batch_size pairs
    trainer.evaluate()  # prediction_step -> compute_loss(return_outputs=True)
    metrics = trainer.state.log_history[-1]
    assert math.isfinite(metrics["eval_loss"])
    assert 0.0 <= metrics["eval_r3m/outlier_frac"] <= 1.0


@pytest.mark.slow
def test_reward_module_imported_first_has_no_import_cycle() -> None:
    # r3m.integrations.trl re-exports the reward trainer lazily; importing trl_reward first must work too
    # (a fresh interpreter, ~5 s for the TRL import).
    code = (
        "import r3m.integrations.trl_reward as a, r3m.integrations.trl as b; "
        "assert b.R3MRewardTrainer is a.R3MRewardTrainer"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
