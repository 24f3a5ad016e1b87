"""Tests of the offline corpus, the character tokenizer, the split and the batch sampling."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cosmos_optim.data import UNKNOWN, CharTokenizer, TextData, builtin_text, load_corpus, load_text


def test_builtin_corpus_is_every_pydoc_topic() -> None:
    from pydoc_data.topics import topics

    text = builtin_text()
    # Another way: the total length of the topics, and each topic found in order.
    assert len(text) == sum(len(t) for t in topics.values())
    assert len(text) > 100_000
    first, last = next(iter(topics.values())), list(topics.values())[-1]
    assert text.startswith(first)
    assert text.endswith(last)
    assert load_text(None) == text


def test_tokenizer_hand_worked_example() -> None:
    tok = CharTokenizer.from_text("hello world")
    assert tok.alphabet == " dehlorw"  # sorted distinct characters, worked out by hand
    assert tok.vocab_size == 9
    assert tok.encode("held!").tolist() == [4, 3, 5, 2, 0]  # " "=1 d=2 e=3 h=4 l=5 o=6 r=7 w=8; "!" unknown = 0
    assert tok.decode([4, 3, 5, 2, 0]) == "held" + UNKNOWN
    assert tok.decode(tok.encode("world hello")) == "world hello"


def test_tokenizer_rejects_bad_ids_and_alphabets() -> None:
    tok = CharTokenizer("ab")
    with pytest.raises(ValueError, match=r"ids must be in \[0, 3\), got 3"):
        tok.decode([3])
    with pytest.raises(ValueError, match="must not repeat"):
        CharTokenizer("aa")


def test_split_is_90_10_and_the_alphabet_comes_from_the_training_part() -> None:
    # 90 'a'/'b' characters, then 10 characters with a 'z' that the training part never sees.
    text = "ab" * 45 + "abzabababa"
    data = TextData.from_text(text)
    assert (len(data.train), len(data.val)) == (90, 10)
    assert data.tokenizer.alphabet == "ab"
    assert data.val.tolist()[2] == 0  # 'z' -> unknown
    assert data.tokenizer.decode(data.val) == "ab" + UNKNOWN + "abababa"


def test_get_batch_windows_are_slices_with_shifted_targets() -> None:
    data = TextData.from_text("".join(chr(65 + i % 26) for i in range(500)))
    x, y = data.get_batch(6, 10, torch.Generator().manual_seed(7))
    assert x.shape == y.shape == (6, 10)
    # Reproduce the starts with an identically seeded generator and slice by hand.
    starts = torch.randint(0, len(data.train) - 10, (6,), generator=torch.Generator().manual_seed(7))
    for row, s in enumerate(starts.tolist()):
        assert torch.equal(x[row], data.train[s : s + 10])
        assert torch.equal(y[row], data.train[s + 1 : s + 11])
    x2, _ = data.get_batch(6, 10, torch.Generator().manual_seed(7))
    assert torch.equal(x, x2)


def test_eval_batches_are_fixed_and_evenly_spaced() -> None:
    data = TextData.from_text("abcdefghij" * 100)  # 100 validation characters
    batches = data.eval_batches(2, 3, 9)
    assert [b[0].shape for b in batches] == [(3, 9), (3, 9)]
    # Starts by hand: 6 points evenly spaced over [0, 100 - 9 - 1] = [0, 90] -> 0, 18, 36, 54, 72, 90.
    xs = torch.cat([b[0] for b in batches])
    for row, s in enumerate((0, 18, 36, 54, 72, 90)):
        assert torch.equal(xs[row], data.val[s : s + 9])
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, data.eval_batches(2, 3, 9), strict=True))


def test_load_corpus_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("xyz" * 40, encoding="utf-8")
    data = load_corpus(path)
    assert data.source == str(path)
    assert data.tokenizer.alphabet == "xyz"
    assert len(data.train) + len(data.val) == 120


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "text is empty"), ("abc", "too short for a 90%/10% split")],
)
def test_too_little_text_is_rejected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TextData.from_text(text)


def test_sequence_longer_than_a_split_is_rejected() -> None:
    data = TextData.from_text("abcd" * 50)  # 20 validation characters
    with pytest.raises(ValueError, match="the validation split of <text> has 20 characters; seq_len 20 needs"):
        data.get_batch(2, 20, torch.Generator())
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        data.get_batch(2, 4, torch.Generator(), split="test")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        data.get_batch(0, 4, torch.Generator())
    with pytest.raises(ValueError, match="val_fraction must be in"):
        TextData.from_text("abcd" * 50, val_fraction=1.0)


def test_unreadable_files_are_value_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the text file"):
        load_text(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_text(tmp_path / "empty.txt")
    (tmp_path / "bin.txt").write_bytes(b"ab\xff\xfe")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        load_text(tmp_path / "bin.txt")
