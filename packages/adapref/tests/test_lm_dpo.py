"""Tests of adapref.lm_dpo and adapref.lm_text: the text task, the in-memory model, TRL runs.

Nothing is downloaded: the model is a GPT-2 built from its config, the tokenizer a character
vocabulary built from the records; runs write only under ``tmp_path``.
"""

from __future__ import annotations

import doctest
import logging
import math
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats

pytest.importorskip("trl")

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

import adapref.lm_dpo as lm_dpo
import adapref.lm_text as lm_text
from adapref.lm_dpo import (
    LM_LOSSES,
    SPECIAL_TOKENS,
    build_tiny_model,
    load_local_model,
    make_text_preferences,
    train_lm_dpo,
)
from adapref.scaling import LOG2, solve_tau

PROMPT = re.compile(r"^(\d+)\+(\d+)=$")
BETA = 0.1  # train_lm_dpo's default
TAU0, TAU_MAX, RHO0 = 0.1, 5.0, 0.1  # train_lm_dpo's defaults (the authors' DPO setting)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One intra-op thread for the tests' own forwards (train_lm_dpo sets it itself for the tiny model)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _true_sum(prompt: str) -> str:
    match = PROMPT.match(prompt)
    assert match is not None, prompt
    return str(int(match.group(1)) + int(match.group(2)))


def test_docstring_examples() -> None:
    result = doctest.testmod(lm_text)
    assert result.failed == 0
    assert result.attempted > 0


class TestTextPreferences:
    def test_same_seed_same_pairs_other_seed_other_pairs(self) -> None:
        assert make_text_preferences(50, flip_rate=0.2, seed=3) == make_text_preferences(50, flip_rate=0.2, seed=3)
        assert make_text_preferences(50, flip_rate=0.2, seed=3) != make_text_preferences(50, flip_rate=0.2, seed=4)

    @pytest.mark.parametrize(("n", "flip_rate"), [(200, 0.0), (200, 0.2), (37, 0.3), (10, 1.0)])
    def test_flip_count_exact_and_flags_mark_wrong_chosen(self, n: int, flip_rate: float) -> None:
        # The truth is recomputed from the prompt text: chosen is the correct sum iff the pair is not flagged.
        records, corrupted = make_text_preferences(n, flip_rate=flip_rate, seed=1)
        assert len(records) == len(corrupted) == n
        assert sum(corrupted) == round(flip_rate * n)
        for record, flipped in zip(records, corrupted, strict=True):
            assert set(record) == {"prompt", "chosen", "rejected"}
            right = _true_sum(record["prompt"])
            assert record["chosen"] != record["rejected"]
            assert (record["rejected"] if flipped else record["chosen"]) == right

    def test_wrong_answers_cover_every_other_sum(self) -> None:
        records, _ = make_text_preferences(2000, seed=0, max_operand=2)
        wrong = {(r["prompt"], r["rejected"]) for r in records}
        # max_operand=2: 9 prompts × 4 wrong sums in 0..4, all drawn with 2000 pairs
        assert len(wrong) == 9 * 4
        assert all(0 <= int(w) <= 4 for _, w in wrong)

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"n": 0}, "n"),
            ({"n": 2.0}, "n"),
            ({"n": 4, "flip_rate": 1.5}, "flip_rate"),
            ({"n": 4, "flip_rate": -0.1}, "flip_rate"),
            ({"n": 4, "max_operand": 0}, "max_operand"),
            ({"n": 4, "with_strength": 1}, "with_strength"),
        ],
    )
    def test_bad_argument_named(self, kwargs: dict[str, Any], name: str) -> None:
        with pytest.raises(ValueError, match=rf"^{name} must"):
            make_text_preferences(**kwargs)

    def test_strength_is_how_wrong_the_wrong_sum_is_and_changes_nothing_else(self) -> None:
        plain, flags = make_text_preferences(60, flip_rate=0.3, seed=2)
        rich, flags_rich = make_text_preferences(60, flip_rate=0.3, seed=2, with_strength=True)
        assert flags == flags_rich
        for a, b in zip(plain, rich, strict=True):
            assert {k: b[k] for k in a} == a
            wrong = a["chosen"] if a["chosen"] != _true_sum(a["prompt"]) else a["rejected"]
            assert b["strength"] == abs(int(wrong) - int(_true_sum(a["prompt"])))

    def test_a_strength_on_some_records_only_is_refused(self, tmp_path: Path) -> None:
        train, _ = make_text_preferences(4, seed=0, with_strength=True)
        del train[2]["strength"]
        with pytest.raises(ValueError, match=r"train_records\[0\] has a 'strength' but train_records\[2\] has none"):
            train_lm_dpo(train, out_dir=tmp_path)
        train[2]["strength"] = -1.0
        with pytest.raises(ValueError, match=r"train_records\[2\]\['strength'\] must be a finite number >= 0"):
            train_lm_dpo(train, out_dir=tmp_path)
        assert not any(tmp_path.iterdir())

    def test_one_pair_with_a_strength_gives_nan_correlations_not_an_error(self, tmp_path: Path) -> None:
        train, _ = make_text_preferences(1, seed=0, with_strength=True)
        metrics = train_lm_dpo(train, out_dir=tmp_path)
        assert math.isnan(metrics["spearman_tau_strength"])
        assert math.isnan(metrics["spearman_abs_z_strength"])
        assert (tmp_path / "taus.csv").read_text().splitlines()[0] == "index,z,tau,strength"


class TestTinyModel:
    def test_tokenizer_round_trip_one_token_per_character(self) -> None:
        records, _ = make_text_preferences(64, seed=0, max_operand=9)
        model, tok = build_tiny_model(records, n_embd=32)
        chars = sorted({c for r in records for v in r.values() for c in v})
        assert len(tok) == model.config.vocab_size == len(SPECIAL_TOKENS) + len(chars)
        for record in records:  # decode(encode(s)) == s, one token per character
            for text in (record["prompt"] + record["chosen"], record["prompt"] + record["rejected"]):
                ids = tok(text)["input_ids"]
                assert len(ids) == len(text)
                assert tok.decode(ids) == text
        assert tok.convert_ids_to_tokens(tok("1 x")["input_ids"]) == ["1", "<unk>", "<unk>"]  # unseen characters
        ids = tok("3+4=7" + tok.eos_token)["input_ids"]
        assert ids[-1] == tok.eos_token_id == 2  # "<eos>" is one special token, not five characters
        assert tok.decode(ids, skip_special_tokens=True) == "3+4=7"
        assert tok.convert_ids_to_tokens(tok("1+2=")["input_ids"]) == ["1", "+", "2", "="]

    def test_same_seed_same_weights_and_global_rng_untouched(self) -> None:
        records, _ = make_text_preferences(8, seed=0)
        state = torch.get_rng_state()
        a, _ = build_tiny_model(records, seed=5)
        b, _ = build_tiny_model(records, seed=5)
        c, _ = build_tiny_model(records, seed=6)
        assert torch.equal(torch.get_rng_state(), state)
        wa, wb, wc = (m.transformer.wte.weight for m in (a, b, c))
        assert torch.equal(wa, wb)
        assert not torch.equal(wa, wc)
        # n_positions defaults to the longest prompt + completion + <eos> (one token per character)
        assert (
            a.config.n_positions
            == max(len(r["prompt"]) + max(len(r["chosen"]), len(r["rejected"])) for r in records) + 1
        )

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [({"n_layer": 0}, "n_layer"), ({"n_embd": 30, "n_head": 4}, "n_head"), ({"n_positions": 1}, "n_positions")],
    )
    def test_bad_size_named(self, kwargs: dict[str, Any], name: str) -> None:
        records, _ = make_text_preferences(4, seed=0)
        with pytest.raises(ValueError, match=rf"^{name} must"):
            build_tiny_model(records, **kwargs)

    def test_bad_records_named(self) -> None:
        with pytest.raises(ValueError, match=r"^records\[0\]\['chosen'\] must be a non-empty string, got 2$"):
            build_tiny_model([{"prompt": "1+1=", "chosen": 2, "rejected": "3"}])
        # an empty prompt would leave the first completion token unscored (the reader refuses it too)
        with pytest.raises(ValueError, match=r"^records\[1\]\['prompt'\] must be a non-empty string, got ''$"):
            build_tiny_model(
                [{"prompt": "1+1=", "chosen": "2", "rejected": "3"}, {"prompt": "", "chosen": "2", "rejected": "3"}]
            )
        with pytest.raises(ValueError, match=r"^records must be a non-empty"):
            build_tiny_model([])
        with pytest.raises(ValueError, match=r"^records must be a non-empty .* got dict$"):
            build_tiny_model({"prompt": "1+1=", "chosen": "2", "rejected": "3"})  # one record, not a list of them
        with pytest.raises(ValueError, match=r"^records\[0\] has no 'prompt' .*explicit_prompt_records"):
            build_tiny_model([{"chosen": "1+1=2", "rejected": "1+1=3"}])
        chat = [{"role": "user", "content": "1+1="}]
        with pytest.raises(ValueError, match=r"^records\[0\]\['prompt'\] is a list of messages .* chat template"):
            build_tiny_model([{"prompt": chat, "chosen": chat, "rejected": chat}])
        with pytest.raises(ValueError, match=r"^records\[0\]\['chosen'\] is a list of messages .* chat template"):
            build_tiny_model([{"chosen": chat, "rejected": chat}])  # TRL's usual chat layout: implicit prompt


class TestLocalModel:
    def test_missing_path_is_a_clear_error(self, tmp_path: Path) -> None:
        missing = tmp_path / "no-such-model"
        with pytest.raises(FileNotFoundError, match=r"no-such-model.*not an existing directory.*local models only"):
            load_local_model(missing)
        train, _ = make_text_preferences(4, seed=0)
        with pytest.raises(FileNotFoundError, match=r"no-such-model.*not an existing directory"):
            train_lm_dpo(train, out_dir=tmp_path / "run", model=missing)

    def test_directory_without_model_is_a_clear_error(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="holds no loadable causal LM"):
            load_local_model(tmp_path)

    def test_a_model_without_its_tokenizer_is_refused(self, tmp_path: Path) -> None:
        # no tokenizer files: transformers builds an empty tokenizer with an EOS that encodes every text to nothing
        records, _ = make_text_preferences(8, seed=0)
        model, tok = build_tiny_model(records, n_embd=32, seed=1)
        model.save_pretrained(tmp_path / "bare")
        with pytest.raises(ValueError, match=r"bare'.* holds special tokens only .*tokenizer.save_pretrained"):
            load_local_model(tmp_path / "bare")
        # another model's (larger) tokenizer: its ids would index past the embedding
        model.resize_token_embeddings(len(tok) - 3)
        model.save_pretrained(tmp_path / "small")
        tok.save_pretrained(tmp_path / "small")
        with pytest.raises(
            ValueError, match=rf"has {len(tok)} tokens but the model's input embedding only {len(tok) - 3} rows"
        ):
            load_local_model(tmp_path / "small")

    def test_save_pretrained_round_trip(self, tmp_path: Path) -> None:
        records, _ = make_text_preferences(8, seed=0)
        model, tok = build_tiny_model(records, n_embd=32, seed=1)
        model.save_pretrained(tmp_path / "m")
        tok.save_pretrained(tmp_path / "m")
        loaded, loaded_tok = load_local_model(tmp_path / "m")
        assert torch.equal(loaded.transformer.wte.weight, model.transformer.wte.weight)
        assert loaded_tok("2+2=4")["input_ids"] == tok("2+2=4")["input_ids"]


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


def _accuracy(z: np.ndarray) -> float:
    """Share of pairs with z > 0, ties one half, counted pair by pair."""
    return sum(1.0 if v > 0 else 0.5 if v == 0 else 0.0 for v in z.tolist()) / len(z)


def _tau_by_grid(z: np.ndarray) -> np.ndarray:
    """argmin over a 10^5-point grid of [τ0, τ_max] of −τ logσ(z/τ) + (ρ0 − log 2)τ (eq. 6), float64."""
    grid = torch.linspace(TAU0, TAU_MAX, 100_001, dtype=torch.float64)  # step 4.9e-5
    d = torch.as_tensor(z, dtype=torch.float64)[:, None]
    objective = -grid * F.logsigmoid(d / grid) + (RHO0 - LOG2) * grid  # (N, G)
    return grid[objective.argmin(dim=1)].numpy()


class TestTrainLmDpo:
    @pytest.mark.parametrize("loss", ["ada", "sigmoid"])
    def test_tiny_run_metrics_match_independent_pass(self, tmp_path: Path, loss: str) -> None:
        # 32 pairs (25% flipped), 1 epoch of 2 steps; the returned metrics are recomputed from the saved
        # checkpoint and the rebuilt initial model with plain forwards, τ by a grid search of eq. 6.
        train, _ = make_text_preferences(32, flip_rate=0.25, seed=0, with_strength=True)
        held_out, _ = make_text_preferences(16, seed=1)
        logs: list[tuple[int, int, dict[str, float]]] = []
        rng_state, py_state = torch.get_rng_state(), random.getstate()
        metrics = train_lm_dpo(
            train,
            eval_records=held_out,
            loss=loss,
            out_dir=tmp_path / "run",
            progress=lambda step, total, log: logs.append((step, total, dict(log))),
        )
        assert torch.equal(torch.get_rng_state(), rng_state)
        assert random.getstate() == py_state
        assert [(s, t) for s, t, _ in logs] == [(1, 2), (2, 2), (2, 2)]  # one log per step, then the summary
        assert ("ada/tau_mean" in logs[0][2]) == (loss == "ada")  # the trainer's per-step τ statistics
        assert metrics["global_step"] == 2
        assert all(math.isfinite(v) for v in metrics.values())

        policy = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "checkpoint-2", local_files_only=True).eval()
        ref, tok = build_tiny_model(train + held_out, seed=0)
        z_eval = _margins(policy, ref.eval(), tok, held_out, beta=BETA)
        z_train = _margins(policy, ref, tok, train, beta=BETA)
        assert metrics["train_accuracy"] == pytest.approx(_accuracy(z_train))
        assert metrics["eval_accuracy"] == pytest.approx(_accuracy(z_eval))
        assert metrics["eval_margin_mean"] == pytest.approx(np.mean(z_eval), abs=1e-6)

        taus_csv = tmp_path / "run" / "taus.csv"
        if loss != "ada":
            assert not taus_csv.exists()
            assert not {"tau_mean", "frac_tau0", "frac_taumax"} & set(metrics)
            return
        rows = np.genfromtxt(taus_csv, delimiter=",", names=True)
        assert rows.dtype.names == ("index", "z", "tau", "strength")
        np.testing.assert_array_equal(rows["index"], np.arange(32))
        # the strength column is how wrong the wrong sum is, read back from the text of each pair
        gap = [abs(int(r["chosen"]) - int(r["rejected"])) for r in train]
        np.testing.assert_array_equal(rows["strength"], gap)
        np.testing.assert_allclose(rows["z"], z_train, atol=1e-6)
        tau = solve_tau(torch.from_numpy(z_train), rho0=RHO0, tau0=TAU0, tau_max=TAU_MAX).numpy()
        np.testing.assert_allclose(rows["tau"], tau, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(rows["tau"], _tau_by_grid(z_train), atol=1e-4)
        assert metrics["tau_mean"] == pytest.approx(tau.mean())
        assert metrics["frac_tau0"] == pytest.approx(np.mean(np.isclose(tau, TAU0, rtol=1e-6, atol=0)))
        assert metrics["frac_taumax"] == pytest.approx(np.mean(np.isclose(tau, TAU_MAX, rtol=1e-6, atol=0)))
        assert metrics["spearman_tau_strength"] == pytest.approx(scipy.stats.spearmanr(tau, gap).statistic, abs=1e-9)
        assert metrics["spearman_abs_z_strength"] == pytest.approx(
            scipy.stats.spearmanr(np.abs(z_train), gap).statistic, abs=1e-9
        )

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
        from adapref.commands import run_epochs  # what a bare `dpo --resume` continues to: the run's epochs

        assert run_epochs(tmp_path) == 2
        assert run_epochs(tmp_path / "none") is None
        with pytest.warns(
            UserWarning, match=r"already trained 2 epoch\(s\); resume with epochs > 2"
        ):  # finished: says so
            again = train_lm_dpo(train, out_dir=tmp_path, epochs=2, batch_size=8, resume=True)
        assert again["global_step"] == 4
        # other arguments or records than the run's are refused, naming them (review finding: they were taken)
        with pytest.raises(ValueError, match=r"beta=0\.2 \(the run has 0\.1\)"):
            train_lm_dpo(train, out_dir=tmp_path, epochs=3, batch_size=8, beta=0.2, resume=True)
        other, _ = make_text_preferences(16, seed=1)
        with pytest.raises(ValueError, match=r"train_records \(other content\)"):
            train_lm_dpo(other, out_dir=tmp_path, epochs=3, batch_size=8, resume=True)
        # the same check on its own (the CLI checks every held loss with it before any trains): it accepts the
        # run's arguments, train_lm_dpo's defaults filling those not given, and refuses what train_lm_dpo refuses
        lm_dpo._check_resume(tmp_path, train, batch_size=8)
        with pytest.raises(ValueError, match=r"n_embd=32 \(the run has 64\), rho0=0\.2 \(the run has 0\.1\)"):
            lm_dpo._check_resume(tmp_path, train, batch_size=8, rho0=0.2, n_embd=32)
        with pytest.raises(ValueError, match=r"^resume=True .*: clamp_tau_max=True \(the run has None\);"):
            lm_dpo._check_resume(tmp_path, train, batch_size=8, clamp_tau_max=True)
        with pytest.raises(TypeError, match=r"\['device'\]"):  # a resume may change it
            lm_dpo._check_resume(tmp_path, train, batch_size=8, device="cpu")
        # fewer epochs than the run has trained: refused (TRL trains nothing; the report was the longer run's)
        with pytest.raises(ValueError, match=r"epochs must be >= 2 to resume the run in .*: it has trained 2 epoch"):
            train_lm_dpo(train, out_dir=tmp_path, epochs=1, batch_size=8, resume=True)
        lm_dpo._check_resume(tmp_path, train, batch_size=8, epochs=2)
        with pytest.raises(ValueError, match=r"epochs must be >= 2 to resume .*, got 1$"):
            lm_dpo._check_resume(tmp_path, train, batch_size=8, epochs=1)
        # a finished run resumed trains nothing and reports the run's mean loss (TRL's own figure was 0)
        again = train_lm_dpo(train, out_dir=tmp_path, epochs=2, batch_size=8, resume=True)
        assert again["train_loss"] == pytest.approx(resumed["train_loss"], rel=1e-6)
        # a new run into the used folder is refused (the next resume would have picked up these checkpoints)
        with pytest.raises(ValueError, match="holds the checkpoints of an earlier run"):
            train_lm_dpo(train, out_dir=tmp_path, epochs=1, batch_size=8)
        (tmp_path / "file").write_text("x")
        with pytest.raises(ValueError, match="is a file"):
            train_lm_dpo(train, out_dir=tmp_path / "file", epochs=1, batch_size=8)

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

    def test_resume_without_checkpoint_is_a_clear_error(self, tmp_path: Path) -> None:
        train, _ = make_text_preferences(4, seed=0)
        with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
            train_lm_dpo(train, out_dir=tmp_path, resume=True)

    def test_dataset_split_and_generator_train_as_the_list(self, tmp_path: Path) -> None:
        # A datasets.Dataset split (iterable, not a Sequence) was refused as "not a sequence"; a
        # generator is read once, for the records and their strength column both.
        datasets = pytest.importorskip("datasets")
        train, _ = make_text_preferences(16, flip_rate=0.25, seed=0, with_strength=True)
        timing = {"train_runtime_s"}
        runs = {}
        for name, records in (
            ("list", train),
            ("split", datasets.Dataset.from_list(train)),
            ("generator", (dict(r) for r in train)),
        ):
            metrics = train_lm_dpo(records, out_dir=tmp_path / name, epochs=1, batch_size=8)
            runs[name] = {k: v for k, v in metrics.items() if k not in timing}
        assert math.isfinite(runs["list"]["spearman_tau_strength"])
        assert runs["split"] == pytest.approx(runs["list"], nan_ok=True)
        assert runs["generator"] == pytest.approx(runs["list"], nan_ok=True)

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

    @pytest.mark.parametrize("loss", [name for name in LM_LOSSES if name not in ("ada", "sigmoid")])
    def test_other_losses_run(self, tmp_path: Path, loss: str) -> None:
        train, _ = make_text_preferences(32, flip_rate=0.25, seed=0, with_strength=True)
        metrics = train_lm_dpo(train, eval_records=train[:8], loss=loss, out_dir=tmp_path)
        assert metrics["global_step"] == 2
        assert ("tau_mean" in metrics) == (loss == "ada-quad")
        assert ("spearman_tau_strength" in metrics) == (loss == "ada-quad")  # no τ, no τ against the strength
        if loss == "ada-quad":  # the quadratic penalty bounds τ by log 2 / (2ρ0) < τ_max (§3.6)
            rows = np.genfromtxt(tmp_path / "taus.csv", delimiter=",", names=True)
            assert rows["tau"].min() >= TAU0
            assert rows["tau"].max() <= LOG2 / (2 * RHO0)
            assert math.isnan(metrics.pop("frac_taumax"))  # no upper bound, so no share at one
        assert all(math.isfinite(v) for v in metrics.values())

    @pytest.mark.slow
    def test_cli_sized_run_learns_the_task(self, tmp_path: Path) -> None:
        # 1000 clean pairs, 3 epochs (~2 s on one core, more on a busy machine): the held-out implicit-reward
        # accuracy is far above chance (0.5); measured 0.80 at seed 0 (stock "sigmoid": 0.92).
        train, _ = make_text_preferences(1000, seed=0)
        held_out, _ = make_text_preferences(400, seed=99)
        metrics = train_lm_dpo(train, eval_records=held_out, loss="ada", epochs=3, out_dir=tmp_path)
        assert metrics["global_step"] == 189  # ceil(1000 / 16) = 63 steps per epoch
        assert metrics["eval_accuracy"] > 0.7

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"loss": "robust"}, "loss"),
            ({"rho0": 0.0}, "rho0"),
            ({"tau0": -1.0}, "tau0"),
            ({"tau_max": 0.05}, "tau_max"),
            ({"solver": "bfgs"}, "solver"),
            ({"solver": "newton", "n_iter": 0}, "n_iter"),
            ({"beta": 0.0}, "beta"),
            ({"lr": -1.0}, "lr"),
            ({"epochs": 0}, "epochs"),
            ({"batch_size": 0}, "batch_size"),
            ({"max_length": 1}, "max_length"),
            ({"seed": -1}, "seed"),
            ({"seed": 2**32}, "seed"),
            ({"seed": 1.5}, "seed"),
            ({"device": "tpu"}, "device"),
            ({"num_threads": 0}, "num_threads"),
            ({"resume": "yes"}, "resume"),
            ({"eval_records": []}, "eval_records"),
        ],
    )
    def test_bad_argument_named(self, tmp_path: Path, kwargs: dict[str, Any], name: str) -> None:
        train, _ = make_text_preferences(4, seed=0)
        with pytest.raises(ValueError, match=rf"^{name} must"):
            train_lm_dpo(train, out_dir=tmp_path / "run", **kwargs)
        assert not (tmp_path / "run").exists()  # refused before anything is written


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
    from adapref.lm_dpo import _tied_keys_not_reported

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
