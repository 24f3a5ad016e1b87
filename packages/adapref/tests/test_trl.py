"""Tests of adapref.integrations.trl (the ``[trl]`` extra): AdaDPOTrainer on a tiny GPT-2 built in memory.

Nothing is downloaded: the model is a 2-layer GPT-2 built from its config, the tokenizer a WordLevel
vocabulary built here, the data a ``datasets.Dataset.from_dict``.
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib.metadata
import importlib.util
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl")

import torch
import torch.nn.functional as F
from datasets import Dataset, load_from_disk
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
from trl import DPOConfig, DPOTrainer

import adapref.integrations.trl as ada_trl
from adapref.functional import ada_dpo_loss
from adapref.integrations.trl import AdaDPOConfig, AdaDPOTrainer, check_trl_version

WORDS = ["<pad>", "<unk>", "<eos>"] + [f"w{i}" for i in range(29)]
PROMPTS = ["w1 w2", "w3 w4 w5", "w6", "w7 w8"]
CHOSEN = [" w9 w10", " w11", " w12 w13 w14", " w15"]
REJECTED = [" w16", " w17 w18", " w19", " w20 w21"]
BETA = 2.0  # large enough that the margins βh are far from 0 at init (policy and reference differ)


def _tokenizer() -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")


def _config() -> GPT2Config:
    return GPT2Config(
        n_layer=2, n_head=2, n_embd=32, n_positions=32, vocab_size=len(WORDS), bos_token_id=2, eos_token_id=2
    )


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


class TestVersionCheck:
    @pytest.mark.parametrize("version", ["0.29.1", "0.7.11", "2.0.0", "2.0.0.dev0", "garbage"])
    def test_check_trl_version_rejects_outside_range(self, version: str) -> None:
        with pytest.raises(ImportError, match=rf"^adapref\[trl\] supports trl>=1\.0,<2; found {re.escape(version)}$"):
            check_trl_version(version)

    @pytest.mark.parametrize("version", ["1.0.0", "1.16.0", "1.99.3rc1"])
    def test_check_trl_version_accepts_1x(self, version: str) -> None:
        check_trl_version(version)

    def _exec_module_with(self, monkeypatch: pytest.MonkeyPatch, fake_version: Any) -> None:
        # Execute the module's source under another name, so the imported module stays untouched.
        monkeypatch.setattr(importlib.metadata, "version", fake_version)
        spec = importlib.util.spec_from_file_location("_adapref_trl_probe", ada_trl.__file__)
        assert spec is not None
        assert spec.loader is not None
        spec.loader.exec_module(importlib.util.module_from_spec(spec))

    def test_import_rejects_unsupported_version(self, monkeypatch: pytest.MonkeyPatch) -> None:
        with pytest.raises(ImportError, match=r"adapref\[trl\] supports trl>=1\.0,<2; found 0\.29\.1"):
            self._exec_module_with(monkeypatch, lambda name: "0.29.1")

    def test_import_without_trl_says_how_to_install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def missing(name: str) -> str:
            raise importlib.metadata.PackageNotFoundError(name)

        with pytest.raises(ImportError, match=r'pip install "adapref\[trl\]"'):
            self._exec_module_with(monkeypatch, missing)


def test_docstring_examples() -> None:
    result = doctest.testmod(ada_trl)
    assert result.failed == 0
    assert result.attempted > 0


class TestConfig:
    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"tau0": -1.0}, "tau0"),
            ({"tau0": 1.0, "tau_max": 0.5}, "tau_max"),
            ({"rho0": 0.0}, "rho0"),
            ({"solver": "bisect"}, "solver"),
            ({"solver": "newton", "n_iter": 0}, "n_iter"),
            ({"tau_init": 0.0}, "tau_init"),
            ({"quadratic": 1}, "quadratic"),
        ],
    )
    def test_ada_config_bad_value_names_argument(self, kwargs: dict[str, Any], name: str) -> None:
        with pytest.raises(ValueError, match=rf"^{name} must"):
            AdaDPOConfig(**kwargs)

    def test_ada_config_defaults_are_authors_dpo_setting(self) -> None:
        cfg = AdaDPOConfig()
        assert (cfg.rho0, cfg.tau0, cfg.tau_max, cfg.n_iter, cfg.tau_init) == (0.1, 0.1, 5.0, 5, 1.0)

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
            _trainer(AdaDPOTrainer, weights, _dpo_args(tmp_path, **overrides))

    def test_liger_refused_only_where_it_replaces_the_loss(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # TRL < 1.15 (no fused LM head) computes the whole DPO loss in Liger's kernel; from 1.15 Liger
        # only patches the model's layers and the loss this trainer replaces is unchanged.
        args = _dpo_args(tmp_path)
        args.use_liger_kernel = True  # set after construction, which may check that liger is installed
        if ada_trl._FUSED_LM_HEAD:
            ada_trl._check_dpo_config(args)  # accepted
        monkeypatch.setattr(ada_trl, "_FUSED_LM_HEAD", False)
        with pytest.raises(ValueError, match=r"^use_liger_kernel must be False with AdaDPOTrainer on TRL < 1\.15"):
            _trainer(AdaDPOTrainer, weights, args)

    def test_trainer_refuses_non_config_ada(self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]) -> None:
        with pytest.raises(TypeError, match="ada must be an AdaDPOConfig"):
            _trainer(AdaDPOTrainer, weights, _dpo_args(tmp_path), ada={"rho0": 0.1})


class TestLoss:
    def test_unit_tau_matches_stock_sigmoid_dpo(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]
    ) -> None:
        # τ0 = τ_max = 1 forces τ ≡ 1, so Ada-DPO is −logσ(βh): stock TRL "sigmoid" on the same batch.
        args = _dpo_args(tmp_path)
        ada = _trainer(AdaDPOTrainer, weights, args, ada=AdaDPOConfig(tau0=1.0, tau_max=1.0))
        stock = _trainer(DPOTrainer, weights, args)
        batch = _first_batch(stock)
        torch.testing.assert_close(_first_batch(ada), batch, rtol=0, atol=0)

        loss_ada, loss_stock = _eval_loss(ada, batch), _eval_loss(stock, batch)
        assert abs(loss_ada.item() - loss_stock.item()) <= 1e-6
        assert abs(loss_stock.item() - math.log(2.0)) > 1e-2  # the margins are not trivially zero
        loss_ada.backward()
        loss_stock.backward()
        for (name, p_ada), p_stock in zip(ada.model.named_parameters(), stock.model.parameters(), strict=True):
            torch.testing.assert_close(p_ada.grad, p_stock.grad, rtol=1e-5, atol=1e-7, msg=name)
        for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"):
            assert ada._metrics["eval"][key] == pytest.approx(stock._metrics["eval"][key], abs=1e-6)
        assert ada._metrics["eval"]["ada/tau_mean"] == [1.0]
        assert ada._metrics["eval"]["ada/frac_tau0"] == [1.0]

    def test_default_loss_matches_naive_logps(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]
    ) -> None:
        # The trainer's loss with default τ equals ada_dpo_loss on log-probs from a plain forward.
        trainer = _trainer(AdaDPOTrainer, weights, _dpo_args(tmp_path))
        batch = _first_batch(trainer)
        policy = _naive_logps(weights["policy"], batch)
        ref = _naive_logps(weights["ref"], batch)
        expected = ada_dpo_loss(*policy, *ref, beta=BETA, rho0=0.1, tau0=0.1, tau_max=5.0)
        loss = _eval_loss(trainer, batch)
        assert loss.item() == pytest.approx(expected.losses.mean().item(), abs=1e-5)
        assert trainer._metrics["eval"]["ada/tau_mean"][0] == pytest.approx(expected.tau.mean().item(), abs=1e-5)
        stock_form = -F.logsigmoid(BETA * ((policy[0] - ref[0]) - (policy[1] - ref[1]))).mean()
        assert abs(loss.item() - stock_form.item()) > 1e-3  # τ is not ≡ 1 here: the loss differs from DPO

    def test_precomputed_reference_matches_live_reference(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]
    ) -> None:
        # On disk, so that TRL's cache of reference log-probs lands in tmp_path.
        _dataset().save_to_disk(str(tmp_path / "data"))
        precomputed = _trainer(
            AdaDPOTrainer,
            weights,
            _dpo_args(tmp_path, precompute_ref_log_probs=True),
            train_dataset=load_from_disk(str(tmp_path / "data")),
        )
        live = _trainer(AdaDPOTrainer, weights, _dpo_args(tmp_path))
        batch = _first_batch(precomputed)
        assert "ref_chosen_logps" in batch
        live_batch = {k: v for k, v in batch.items() if not k.startswith("ref_")}
        assert _eval_loss(precomputed, batch).item() == pytest.approx(_eval_loss(live, live_batch).item(), abs=1e-6)


class TestStockParity:
    METRICS = ("entropy", "logits/chosen", "logits/rejected", "mean_token_accuracy")
    UNIT_TAU = AdaDPOConfig(tau0=1.0, tau_max=1.0)

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
        ours = _trainer(AdaDPOTrainer, weights, args, ada=AdaDPOConfig(tau0=1.0, tau_max=1.0))
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
        if not ada_trl._FUSED_LM_HEAD:
            pytest.skip("the installed TRL has no fused LM head to compare with")
        args = _dpo_args(tmp_path)
        stock = _trainer(DPOTrainer, weights, args)
        ada = _trainer(AdaDPOTrainer, weights, args, ada=self.UNIT_TAU)
        batch = _first_batch(stock)
        loss_stock = _eval_loss(stock, batch)
        monkeypatch.setattr(ada_trl, "_FUSED_LM_HEAD", False)
        loss_ada = _eval_loss(ada, batch)
        assert loss_ada.item() == pytest.approx(loss_stock.item(), abs=1e-6)
        for key in self.METRICS:
            assert len(ada._metrics["eval"][key]) == 1, key
            assert ada._metrics["eval"][key] == pytest.approx(stock._metrics["eval"][key], abs=1e-5), key
        assert 0.0 < ada._metrics["eval"]["entropy"][0] <= math.log(len(WORDS)) + 1e-6

    def test_fused_head_metrics_match_stock(self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]) -> None:
        args = _dpo_args(tmp_path)
        stock = _trainer(DPOTrainer, weights, args)
        ada = _trainer(AdaDPOTrainer, weights, args, ada=self.UNIT_TAU)
        batch = _first_batch(stock)
        _eval_loss(stock, batch), _eval_loss(ada, batch)
        for key in self.METRICS:
            assert ada._metrics["eval"][key] == pytest.approx(stock._metrics["eval"][key], abs=1e-6), key

    def test_return_outputs_warns_as_stock(self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]) -> None:
        if not ada_trl._FUSED_LM_HEAD:
            pytest.skip("TRL < 1.15 returns the logits of the one forward pass, without a warning")
        trainer = _trainer(AdaDPOTrainer, weights, _dpo_args(tmp_path))
        batch = _first_batch(trainer)
        trainer.model.eval()
        with pytest.warns(FutureWarning, match=r"return_outputs=True .* extra forward pass"):
            _loss, outputs = trainer.compute_loss(trainer.model, batch, return_outputs=True)
        assert outputs.logits.shape[:2] == batch["input_ids"].shape

    def test_truncated_image_tokens_get_stock_advice(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        trainer = _trainer(AdaDPOTrainer, weights, _dpo_args(tmp_path))
        batch = _first_batch(trainer)

        def raise_(message: str) -> Any:
            def loss(*args: Any, **kwargs: Any) -> Any:
                raise ValueError(message)

            return loss

        monkeypatch.setattr(trainer, "_ada_loss", raise_("Image features and image tokens do not match: 3 vs 5"))
        with pytest.raises(ValueError, match=r"^max_length = 16 truncates image placeholder tokens .* set it to None"):
            trainer.compute_loss(trainer.model, batch)
        monkeypatch.setattr(trainer, "_ada_loss", raise_("some other error"))
        with pytest.raises(ValueError, match=r"^some other error$"):  # other errors pass unchanged
            trainer.compute_loss(trainer.model, batch)

    def test_non_finite_margins_name_the_step(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A NaN reference log-prob (the real check inside the loss, not a stand-in) stops the step and
        # says which one; stock TRL trains on with a NaN loss.
        trainer = _trainer(AdaDPOTrainer, weights, _dpo_args(tmp_path))
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
        trainer = _trainer(AdaDPOTrainer, weights, _dpo_args(tmp_path), ada=AdaDPOConfig(rho0=0.2, tau_max=3.0))
        assert {"trl", "dpo", "ada-dpo"} <= set(trainer.model.model_tags)
        trainer.save_model(str(tmp_path / "saved"))
        saved = json.loads((tmp_path / "saved" / ada_trl.CONFIG_FILE).read_text())
        assert saved == {"trainer": "AdaDPOTrainer", **dataclasses.asdict(AdaDPOConfig(rho0=0.2, tau_max=3.0))}
        assert (saved["rho0"], saved["tau0"], saved["tau_max"], saved["solver"]) == (0.2, 0.1, 3.0, "exact")
        trainer.create_model_card(model_name="tiny")
        card = (tmp_path / "out" / "README.md").read_text()
        assert "Ada-DPO" in card
        assert "2406.02764" in card
        assert "hong2024adaptive" in card

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
        monkeypatch.setattr(ada_trl, "_STATISTICS_CHUNK", 3)
        stats = ada_trl._logit_statistics(logits, nxt, mask)
        p = torch.softmax(logits, dim=-1)
        entropy = -(p * torch.log(p)).sum(-1)
        torch.testing.assert_close(stats.entropy[mask], entropy[mask])
        torch.testing.assert_close(stats.mean_logits[mask], logits.mean(-1)[mask])
        assert torch.equal(stats.is_top1[mask], (logits.argmax(-1) == nxt)[mask])
        assert not bool(stats.is_top1[0, 1])  # token 5 ties the first maximum (3): not top-1
        assert bool((stats.entropy[~mask] == 0).all())
        assert not bool(stats.is_top1[~mask].any())

    def test_unbounded_quadratic_logs_no_frac_taumax(
        self, tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]
    ) -> None:
        # The quadratic penalty without clamp_tau_max has no upper bound: a share "at tau_max" means nothing.
        with pytest.warns(UserWarning, match="tau_max"):
            unbounded = AdaDPOConfig(quadratic=True, tau_max=1.0)
        for ada, logged in ((unbounded, False), (AdaDPOConfig(quadratic=True, tau_max=1.0, clamp_tau_max=True), True)):
            trainer = _trainer(AdaDPOTrainer, weights, _dpo_args(tmp_path), ada=ada)
            _eval_loss(trainer, _first_batch(trainer))
            assert ("ada/frac_taumax" in trainer._metrics["eval"]) is logged
            assert len(trainer._metrics["eval"]["ada/frac_tau0"]) == 1


def test_train_two_steps_logs_tau_within_bounds(tmp_path: Path, weights: dict[str, dict[str, torch.Tensor]]) -> None:
    ada = AdaDPOConfig()
    trainer = _trainer(AdaDPOTrainer, weights, _dpo_args(tmp_path), ada=ada, eval_dataset=_dataset())
    result = trainer.train()
    assert trainer.state.global_step == 2
    assert math.isfinite(result.training_loss)
    logs = [entry for entry in trainer.state.log_history if "ada/tau_mean" in entry]
    assert len(logs) == 2
    for entry in logs:
        assert math.isfinite(entry["loss"])
        assert ada.tau0 <= entry["ada/tau_mean"] <= ada.tau_max
        assert 0.0 <= entry["ada/frac_tau0"] <= 1.0
        assert 0.0 <= entry["ada/frac_taumax"] <= 1.0
        assert "rewards/margins" in entry
    trainer.evaluate()  # prediction_step -> compute_loss(return_outputs=True)
    metrics = trainer.state.log_history[-1]  # TRL 1.0 returns them without its own metrics
    assert math.isfinite(metrics["eval_loss"])
    assert ada.tau0 <= metrics["eval_ada/tau_mean"] <= ada.tau_max
