"""Tests of r3m.lm_dpo (the ``r3m dpo`` backend): TRL runs, their report, the re-exports of r3m.lm_text.

Nothing is downloaded: the model is a GPT-2 built from its config, the tokenizer a character
vocabulary built from the records; runs write only under ``tmp_path``.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("trl")

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

import r3m.lm_dpo as lm_dpo
from r3m.lm_dpo import (
    LM_LOSSES,
    SPECIAL_TOKENS,
    build_tiny_model,
    load_local_model,
    make_text_preferences,
    train_lm_dpo,
)
from r3m.metrics import outlier_precision_recall, preference_accuracy


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One intra-op thread for the tests' own forwards (train_lm_dpo sets it itself for the tiny model)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_text_helpers_reexported_from_lm_text() -> None:
    # The text task and model builders moved to r3m.lm_text; the old import path keeps working.
    import r3m.lm_text as lm_text

    assert make_text_preferences is lm_text.make_text_preferences
    assert build_tiny_model is lm_text.build_tiny_model
    assert load_local_model is lm_text.load_local_model
    assert SPECIAL_TOKENS is lm_text.SPECIAL_TOKENS
    assert {"make_text_preferences", "build_tiny_model", "load_local_model", "SPECIAL_TOKENS"} <= set(lm_dpo.__all__)


class TestReport:
    def test_accuracy_counts_ties_half_like_preference_accuracy(self) -> None:
        # Worked by hand: z = (1, 0, -2, 0) -> 1 + ½ + 0 + ½ = 2 of 4; r3m.metrics agrees on (z, 0).
        z = np.array([1.0, 0.0, -2.0, 0.0])
        assert lm_dpo._accuracy(z) == 0.5
        assert lm_dpo._accuracy(z) == preference_accuracy(z, np.zeros_like(z))

    def test_outlier_report_by_hand(self) -> None:
        # t_0.5 = 0: z = (-1, 2, -3, 0.5, 0) flags pairs 0 and 2; corrupted = pairs 0 and 3.
        z = np.array([-1.0, 2.0, -3.0, 0.5, 0.0])
        corrupted = [True, False, False, True, False]
        report = lm_dpo._outlier_report(z, 0.5, corrupted)
        assert report["outlier_frac"] == pytest.approx(2 / 5)
        assert report["outlier_precision"] == pytest.approx(1 / 2)
        assert report["outlier_recall"] == pytest.approx(1 / 2)
        # ranked right: pair 0 (swapped, z<0), 1 (clean, z>0), tie on pair 4 counts ½; wrong: 2, 3
        assert report["train_true_accuracy"] == pytest.approx(2.5 / 5)
        flagged = z < 0.0
        assert (report["outlier_precision"], report["outlier_recall"]) == pytest.approx(
            outlier_precision_recall(flagged, np.asarray(corrupted))
        )

    def test_outlier_precision_nan_when_nothing_flagged(self) -> None:
        # No z below t_0.5 = 0: precision 0/0 is undefined (nan, as r3m.metrics.outlier_precision_recall), recall 0.
        report = lm_dpo._outlier_report(np.array([1.0, 2.0, 0.5]), 0.5, [True, False, False])
        assert report["outlier_frac"] == 0.0
        assert math.isnan(report["outlier_precision"])
        assert report["outlier_recall"] == 0.0

    def test_outlier_report_by_hand_at_another_lambda(self) -> None:
        # Mutation audit: only λ = .5 (t = 0) and no AUROC were checked. λ = .7: t = log(1/.7 − 1) = −0.847.
        z = np.array([-2.0, -0.5, 0.0, 1.0, -1.0])
        report = lm_dpo._outlier_report(z, 0.7, [True, True, False, False, False])
        assert report["outlier_frac"] == pytest.approx(2 / 5)  # z < −0.847: pairs 0 and 4
        assert report["outlier_precision"] == pytest.approx(1 / 2)  # pair 0 of the two is corrupted
        assert report["outlier_recall"] == pytest.approx(1 / 2)  # pair 1 (z = −0.5) is not flagged
        # right: swapped pairs 0 and 1 (z < 0), clean pair 3 (z > 0), the tie on pair 2 ½; wrong: pair 4
        assert report["train_true_accuracy"] == pytest.approx(3.5 / 5)
        # −z of the corrupted pairs (2, 0.5) against the clean ones (0, −1, 1): 3 + 2 of the 6 pairs higher
        assert report["outlier_auroc"] == pytest.approx(5 / 6)
        everything = lm_dpo._outlier_report(z, 0.7, [True] * 5)  # one class only: no AUROC
        assert "outlier_auroc" not in everything
        assert everything["outlier_recall"] == pytest.approx(2 / 5)
        nothing = lm_dpo._outlier_report(z, 0.7, [False] * 5)  # no corrupted pair: no precision / recall
        assert set(nothing) == {"outlier_frac", "train_true_accuracy"}
        assert nothing["train_true_accuracy"] == pytest.approx(1.5 / 5)  # z > 0 on pair 3, the tie ½
        assert lm_dpo._auroc(np.array([1.0, 1.0, 0.0]), np.array([True, False, False])) == pytest.approx(0.75)


def _margins(policy: Any, ref: Any, tok: Any, records: list[dict[str, str]], beta: float) -> np.ndarray:
    """z_i = β·h_i per pair from plain forwards of prompt + completion + <eos> (no TRL code), float64."""
    out = []
    with torch.no_grad():
        for record in records:
            prompt_len = len(tok(record["prompt"])["input_ids"])
            ratios = []
            for key in ("chosen", "rejected"):
                ids = torch.tensor([tok(record["prompt"] + record[key] + tok.eos_token)["input_ids"]])
                logps = []
                for model in (policy, ref):
                    token_logps = F.log_softmax(model(input_ids=ids).logits[0, :-1].double(), dim=-1)
                    logps.append(token_logps.gather(-1, ids[0, 1:, None])[prompt_len - 1 :].sum().item())
                ratios.append(logps[0] - logps[1])
            out.append(beta * (ratios[0] - ratios[1]))
    return np.asarray(out)


class TestTrainLmDpo:
    @pytest.mark.parametrize("loss", ["r3m", "sigmoid"])
    def test_tiny_run_metrics_match_independent_pass(self, tmp_path: Path, loss: str) -> None:
        # 32 pairs (25% flipped), 1 epoch of 2 steps; the returned accuracies and outlier flags are
        # recomputed from the saved checkpoint and the rebuilt initial model with plain forwards.
        train, corrupted = make_text_preferences(32, flip_rate=0.25, seed=0)
        held_out, _ = make_text_preferences(16, seed=1)
        steps: list[tuple[int, int]] = []
        rng_state, py_state = torch.get_rng_state(), random.getstate()
        metrics = train_lm_dpo(
            train,
            eval_records=held_out,
            corrupted=corrupted,
            loss=loss,
            out_dir=tmp_path / "run",
            progress=lambda step, total, logs: steps.append((step, total)),
        )
        assert torch.equal(torch.get_rng_state(), rng_state)
        assert random.getstate() == py_state
        assert steps == [(1, 2), (2, 2), (2, 2)]  # one log per step, then the end-of-training summary
        assert metrics["global_step"] == 2
        # outlier_precision is nan when nothing is flagged (r3m.metrics' convention); everything else is finite
        assert all(math.isfinite(v) for k, v in metrics.items() if k != "outlier_precision")
        for key in ("train_accuracy", "outlier_frac", "outlier_recall", "eval_accuracy"):
            assert 0.0 <= metrics[key] <= 1.0, key

        policy = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "checkpoint-2", local_files_only=True).eval()
        ref, tok = build_tiny_model(train + held_out, seed=0)
        z_eval = _margins(policy, ref.eval(), tok, held_out, beta=0.1)
        z_train = _margins(policy, ref, tok, train, beta=0.1)
        assert metrics["eval_accuracy"] == pytest.approx(preference_accuracy(z_eval, np.zeros_like(z_eval)))
        assert metrics["train_accuracy"] == pytest.approx(preference_accuracy(z_train, np.zeros_like(z_train)))
        assert metrics["eval_margin_mean"] == pytest.approx(np.mean(z_eval), abs=1e-6)
        flagged, truth = z_train < 0.0, np.asarray(corrupted)  # t_0.5 = 0
        assert metrics["outlier_frac"] == pytest.approx(flagged.mean())
        assert metrics["outlier_recall"] == pytest.approx((flagged & truth).sum() / truth.sum())
        precision = (flagged & truth).sum() / flagged.sum() if flagged.any() else math.nan
        assert metrics["outlier_precision"] == pytest.approx(precision, nan_ok=True)
        rows = np.genfromtxt(tmp_path / "run" / "deltas.csv", delimiter=",", names=True)
        np.testing.assert_allclose(rows["z"], z_train, atol=1e-6)
        np.testing.assert_allclose(rows["delta"], np.maximum(-z_train, 0.0), atol=1e-6)  # eq. 3.4 at t_0.5 = 0
        np.testing.assert_array_equal(rows["corrupted"].astype(bool), truth)

    def test_resume_continues_from_checkpoint(self, tmp_path: Path) -> None:
        train, _ = make_text_preferences(16, seed=0)
        first = train_lm_dpo(train, out_dir=tmp_path, epochs=1, batch_size=8)
        assert first["global_step"] == 2
        steps: list[int] = []
        resumed = train_lm_dpo(
            train, out_dir=tmp_path, epochs=2, batch_size=8, resume=True, progress=lambda s, t, logs: steps.append(s)
        )
        assert resumed["global_step"] == 4
        assert steps[:2] == [3, 4]  # only the second epoch ran: steps 1-2 came from checkpoint-2
        assert (tmp_path / "checkpoint-4").is_dir()
        from r3m.commands import run_epochs  # what a bare `dpo --resume` continues to: the run's epochs

        assert run_epochs(tmp_path) == 2
        assert run_epochs(tmp_path / "none") is None
        with pytest.warns(
            UserWarning, match=r"already trained 2 epoch\(s\); resume with epochs > 2"
        ):  # finished: says so
            again = train_lm_dpo(train, out_dir=tmp_path, epochs=2, batch_size=8, resume=True)
        assert again["train_loss"] == pytest.approx(resumed["train_loss"], rel=1e-6)  # TRL's own figure was 0
        # fewer epochs than the run has trained: refused (TRL trains nothing; the report was the longer run's)
        with pytest.raises(ValueError, match=r"epochs must be >= 2 to resume the run in .*: it has trained 2 epoch"):
            train_lm_dpo(train, out_dir=tmp_path, epochs=1, batch_size=8, resume=True)
        lm_dpo._check_resume(tmp_path, train, batch_size=8, epochs=2)
        with pytest.raises(ValueError, match=r"epochs must be >= 2 to resume .*, got 1$"):
            lm_dpo._check_resume(tmp_path, train, batch_size=8, epochs=1)

    def test_resumed_train_loss_covers_the_whole_run(self, tmp_path: Path) -> None:
        # A two-epoch run interrupted in its second epoch (after checkpoint-2), then resumed, reports the
        # mean loss of all four steps, as the uninterrupted run does (TRL's own figure counts this call's only).
        train, _ = make_text_preferences(16, seed=0)
        whole = train_lm_dpo(train, out_dir=tmp_path / "whole", epochs=2, batch_size=8)

        def interrupt(step: int, total: int, logs: dict[str, float]) -> None:
            if step == 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            train_lm_dpo(train, out_dir=tmp_path / "cut", epochs=2, batch_size=8, progress=interrupt)
        resumed = train_lm_dpo(train, out_dir=tmp_path / "cut", epochs=2, batch_size=8, resume=True)
        assert resumed["global_step"] == 4
        assert resumed["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-5)

    def test_run_folder_is_checked_before_training(self, tmp_path: Path) -> None:
        train, _ = make_text_preferences(16, seed=0)
        train_lm_dpo(train, out_dir=tmp_path, epochs=1, batch_size=8)
        with pytest.raises(ValueError, match="holds the checkpoints of an earlier run"):
            train_lm_dpo(train, out_dir=tmp_path, epochs=1, batch_size=8, lam=0.6)  # a new run into a used folder
        with pytest.raises(ValueError, match=r"lam \(0.5 there, 0.6 here\)"):
            train_lm_dpo(train, out_dir=tmp_path, epochs=2, batch_size=8, lam=0.6, resume=True)
        other, _ = make_text_preferences(16, seed=1)
        with pytest.raises(ValueError, match=r"train_records \(other content\)"):
            train_lm_dpo(other, out_dir=tmp_path, epochs=2, batch_size=8, resume=True)
        # the same check on its own (the CLI checks every held loss with it before any trains): it accepts the
        # run's arguments, train_lm_dpo's defaults filling those not given, and refuses what train_lm_dpo refuses
        lm_dpo._check_resume(tmp_path, train, batch_size=8)
        with pytest.raises(ValueError, match=r"lam \(0.5 there, 0.6 here\)"):
            lm_dpo._check_resume(tmp_path, train, batch_size=8, lam=0.6)
        with pytest.raises(ValueError, match=r"eps \(0.1 there, 0.2 here\); n_embd \(64 there, 32 here\)"):
            lm_dpo._check_resume(tmp_path, train, batch_size=8, eps=0.2, n_embd=32)
        with pytest.raises(ValueError, match=r"corrupted \(other content\)"):
            lm_dpo._check_resume(tmp_path, train, corrupted=[True] * 16, batch_size=8)
        with pytest.raises(TypeError, match=r"\['device'\]"):  # a resume may change it
            lm_dpo._check_resume(tmp_path, train, batch_size=8, device="cpu")
        (tmp_path / "file").write_text("x")
        with pytest.raises(ValueError, match="is a file"):
            train_lm_dpo(train, out_dir=tmp_path / "file", epochs=1, batch_size=8)

    def test_resume_without_checkpoint_is_a_clear_error(self, tmp_path: Path) -> None:
        train, _ = make_text_preferences(4, seed=0)
        with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
            train_lm_dpo(train, out_dir=tmp_path, resume=True)

    def test_hugging_face_dataset_trains_as_its_list(self, tmp_path: Path) -> None:
        # A datasets.Dataset split (iterable, not a Sequence) was refused as "not a sequence"; it now
        # trains exactly as the same records in a list.
        datasets = pytest.importorskip("datasets")
        train, corrupted = make_text_preferences(16, flip_rate=0.25, seed=0)
        from_list = train_lm_dpo(train, corrupted=corrupted, out_dir=tmp_path / "list", epochs=1, batch_size=8)
        split = datasets.Dataset.from_list(train)
        from_split = train_lm_dpo(split, corrupted=corrupted, out_dir=tmp_path / "split", epochs=1, batch_size=8)
        timing = {"train_runtime_s"}
        assert set(from_split) == set(from_list)
        assert {k: v for k, v in from_split.items() if k not in timing} == pytest.approx(
            {k: v for k, v in from_list.items() if k not in timing}, nan_ok=True
        )

    def test_pairs_longer_than_a_local_models_context_are_refused(self, tmp_path: Path) -> None:
        # a saved model with 5 positions and pairs of 6 tokens ("a+b=" + a one-digit sum + <eos>): the embedding
        # lookup would fail inside torch; the run refuses them by name, and truncating to 5 trains
        train, _ = make_text_preferences(4, seed=0)
        policy, tokenizer = build_tiny_model(train, n_embd=32, n_positions=5, seed=0)
        policy.save_pretrained(tmp_path / "m")
        tokenizer.save_pretrained(tmp_path / "m")
        with pytest.raises(
            ValueError, match=r"^train_records holds a pair of 6 tokens .* model's 5 positions; set max_length <= 5"
        ):
            train_lm_dpo(train, out_dir=tmp_path / "run", model=tmp_path / "m")
        metrics = train_lm_dpo(train, out_dir=tmp_path / "cut", model=tmp_path / "m", max_length=5, epochs=1)
        assert metrics["global_step"] == 1

    def test_max_length_dropping_pairs_is_refused(self, tmp_path: Path) -> None:
        train, _ = make_text_preferences(4, seed=0)  # prompts "a+b=" are 4 tokens
        with pytest.raises(ValueError, match="max_length=3 drops 4 of the train_records"):
            train_lm_dpo(train, out_dir=tmp_path, max_length=3)

    @pytest.mark.parametrize("loss", [name for name in LM_LOSSES if name not in ("r3m", "sigmoid")])
    def test_baseline_losses_run(self, tmp_path: Path, loss: str) -> None:
        train, corrupted = make_text_preferences(32, flip_rate=0.25, seed=0)
        metrics = train_lm_dpo(train, eval_records=train[:8], corrupted=corrupted, loss=loss, out_dir=tmp_path)
        assert metrics["global_step"] == 2
        assert all(math.isfinite(v) for k, v in metrics.items() if k != "outlier_precision")

    @pytest.mark.slow
    @pytest.mark.parametrize("loss", ["r3m", "sigmoid"])
    def test_cli_sized_run_learns_the_task(self, tmp_path: Path, loss: str) -> None:
        # 1000 clean pairs, 3 epochs (~2.5 s on one core, more on a busy machine): the held-out implicit-reward accuracy is far above chance
        # (0.5); measured 0.84-0.93 over seeds 0-2 for both losses.
        train, _ = make_text_preferences(1000, seed=0)
        held_out, _ = make_text_preferences(400, seed=99)
        metrics = train_lm_dpo(train, eval_records=held_out, loss=loss, epochs=3, out_dir=tmp_path)
        assert metrics["global_step"] == 189
        assert metrics["eval_accuracy"] > 0.75

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"loss": "hinge"}, "loss"),
            ({"lam": 1.0}, "lam"),
            ({"beta": 0.0}, "beta"),
            ({"eps": 0.5}, "eps"),
            ({"lr": -1.0}, "lr"),
            ({"epochs": 0}, "epochs"),
            ({"batch_size": 0}, "batch_size"),
            ({"max_length": 1}, "max_length"),
            ({"seed": -1}, "seed"),
            ({"seed": 2**32}, "seed"),
            ({"seed": 1.5}, "seed"),
            ({"corrupted": [True]}, "corrupted"),
            ({"device": "tpu"}, "device"),
            ({"eval_records": []}, "eval_records"),
        ],
    )
    def test_bad_argument_named(self, tmp_path: Path, kwargs: dict[str, Any], name: str) -> None:
        train, _ = make_text_preferences(4, seed=0)
        with pytest.raises(ValueError, match=rf"^{name} must"):
            train_lm_dpo(train, out_dir=tmp_path, **kwargs)


def test_a_resume_does_not_report_the_tied_head_as_missing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # transformers warned "There were missing keys in the checkpoint model loaded: ['lm_head.weight']" on every
    # resume: the head is tied to the input embedding, which the checkpoint stores once (the resume is exact)
    train, _ = make_text_preferences(16, seed=0)
    train_lm_dpo(train, out_dir=tmp_path, epochs=1, batch_size=8)
    capfd.readouterr()
    metrics = train_lm_dpo(train, out_dir=tmp_path, epochs=2, batch_size=8, resume=True)
    assert metrics["global_step"] == 4
    assert "missing keys" not in capfd.readouterr().err


def test_missing_keys_that_are_not_tied_are_still_reported() -> None:
    from r3m.lm_dpo import _tied_keys_not_reported

    records, _ = make_text_preferences(4, seed=0)
    model, _ = build_tiny_model(records, n_embd=32)
    logger = logging.getLogger("transformers.trainer")
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep()
    logger.addHandler(handler)
    try:
        with _tied_keys_not_reported(model):
            for keys in (["lm_head.weight"], ["transformer.h.0.attn.c_attn.weight"], ["lm_head.weight", "x"]):
                logger.warning(f"There were missing keys in the checkpoint model loaded: {keys}.")
        logger.warning("There were missing keys in the checkpoint model loaded: ['lm_head.weight'].")  # after: kept
    finally:
        logger.removeHandler(handler)
    assert [m.split(": ", 1)[1] for m in seen] == [
        "['transformer.h.0.attn.c_attn.weight'].",
        "['lm_head.weight', 'x'].",
        "['lm_head.weight'].",
    ]


def test_a_rotary_model_is_not_held_to_max_position_embeddings(tmp_path: Path) -> None:
    # review finding: the context check refused a Llama whose max_position_embeddings is below the pairs' length,
    # which trains (rotary positions have no table to overflow); GPT-2's learned table is still checked above
    from transformers import LlamaConfig, LlamaForCausalLM

    train, _ = make_text_preferences(4, seed=0)
    _, tokenizer = build_tiny_model(train, n_embd=32)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=5,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "llama")
    tokenizer.save_pretrained(tmp_path / "llama")
    metrics = train_lm_dpo(train, out_dir=tmp_path / "run", model=tmp_path / "llama", epochs=1)
    assert metrics["global_step"] == 1


def test_an_opt_models_offset_position_table_is_still_checked(tmp_path: Path) -> None:
    # review finding: OPT's learned table has max_position_embeddings + 2 rows; the check missed it and the run
    # crashed with an IndexError inside torch
    from transformers import OPTConfig, OPTForCausalLM

    train, _ = make_text_preferences(4, seed=0)
    _, tokenizer = build_tiny_model(train, n_embd=32)
    config = OPTConfig(vocab_size=len(tokenizer), hidden_size=32, ffn_dim=64, num_hidden_layers=1,
                       num_attention_heads=2, word_embed_proj_dim=32, max_position_embeddings=5,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    OPTForCausalLM(config).save_pretrained(tmp_path / "opt")
    tokenizer.save_pretrained(tmp_path / "opt")
    with pytest.raises(ValueError, match=r"holds a pair of 6 tokens .* model's 5 positions; set max_length <= 5"):
        train_lm_dpo(train, out_dir=tmp_path / "run", model=tmp_path / "opt", epochs=1)
