"""Tests of r3m.lm_text: the synthetic text preference task, the in-memory tiny model, local models.

Nothing is downloaded: the model is a GPT-2 built from its config, the tokenizer a character
vocabulary built from the records; files are written only under ``tmp_path``.
"""

from __future__ import annotations

import doctest
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import torch

import r3m.lm_text as lm_text
from r3m.lm_text import SPECIAL_TOKENS, build_tiny_model, load_local_model, make_text_preferences

PROMPT = re.compile(r"^(\d+)\+(\d+)=$")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One intra-op thread for the tests' own forwards (a busy 2-core machine slows two threads down)."""
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
        ],
    )
    def test_bad_argument_named(self, kwargs: dict[str, Any], name: str) -> None:
        with pytest.raises(ValueError, match=rf"^{name} must"):
            make_text_preferences(**kwargs)


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

    def test_any_iterable_of_records(self) -> None:
        # a generator (like a datasets.Dataset, not a Sequence) gives the model a list does
        records, _ = make_text_preferences(4, seed=0)
        _, tok_list = build_tiny_model(records)
        _, tok_iter = build_tiny_model(r for r in records)
        assert tok_iter.get_vocab() == tok_list.get_vocab()


class TestLocalModel:
    def test_missing_path_is_a_clear_error(self, tmp_path: Path) -> None:
        missing = tmp_path / "no-such-model"
        with pytest.raises(FileNotFoundError, match=r"no-such-model.*not an existing directory.*local models only"):
            load_local_model(missing)

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
