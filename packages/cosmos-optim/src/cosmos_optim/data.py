"""The offline text corpus and its character-level tokenizer (nothing is ever downloaded).

The default corpus is the help text of every Python keyword and topic that CPython ships in
``pydoc_data.topics`` (79 topics, about 465 k characters on CPython 3.11, 103 distinct symbols):
real English and code, present in every Python install. Any UTF-8 text file can be used instead.

The text is split 90/10 into a training and a validation part (the first 90 % train); the
alphabet is built from the training part only, and every character not in it maps to one unknown
symbol (id 0), so no validation statistics leak into the tokenizer.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

UNKNOWN = "\ufffd"
"""The symbol of id 0, shown for characters outside the training alphabet."""


def builtin_text() -> str:
    """The bundled corpus: every topic of CPython's ``pydoc_data.topics``, in the module's order, joined.

    Raises:
        ImportError: the interpreter was built without ``pydoc_data`` (some minimal distributions).
    """
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:  # pragma: no cover - only on stripped-down interpreters
        raise ImportError("this Python has no pydoc_data module; pass a text file instead (--text FILE)") from exc
    return "".join(topics.values())


def load_text(path: str | os.PathLike[str] | None = None) -> str:
    """The text of ``path`` (UTF-8), or the bundled corpus when ``path`` is None.

    Raises:
        ValueError: the file cannot be read, is not UTF-8, or is empty.
    """
    if path is None:
        return builtin_text()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"text file {p} is not valid UTF-8 (byte {exc.start})") from exc
    except OSError as exc:
        raise ValueError(f"cannot read the text file {p}: {exc.strerror or exc}") from exc
    if not text:
        raise ValueError(f"text file {p} is empty")
    return text


@dataclasses.dataclass(frozen=True)
class CharTokenizer:
    """Characters to ids: id 0 is the unknown symbol, ids 1.. are ``alphabet`` in order.

    Example:
        >>> tok = CharTokenizer.from_text("abca")
        >>> tok.encode("cab?").tolist(), tok.decode(tok.encode("cab?")), tok.vocab_size
        ([3, 1, 2, 0], 'cab\ufffd', 4)
    """

    alphabet: str
    """the known characters, sorted, without duplicates."""

    def __post_init__(self) -> None:
        if len(set(self.alphabet)) != len(self.alphabet):
            raise ValueError("alphabet must not repeat a character")
        if UNKNOWN in self.alphabet:
            raise ValueError(f"alphabet must not contain the unknown symbol {UNKNOWN!r}")

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer whose alphabet is the sorted set of characters of ``text``."""
        return cls("".join(sorted(set(text) - {UNKNOWN})))

    @property
    def vocab_size(self) -> int:
        """Number of ids: the alphabet plus the unknown symbol."""
        return len(self.alphabet) + 1

    def encode(self, text: str) -> torch.Tensor:
        """``(len(text),)`` int64 ids; characters outside the alphabet become 0."""
        index = {c: i + 1 for i, c in enumerate(self.alphabet)}
        return torch.tensor([index.get(c, 0) for c in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        """The text of ``ids`` (id 0 shown as U+FFFD).

        Raises:
            ValueError: an id outside ``[0, vocab_size)``.
        """
        values = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        chars = UNKNOWN + self.alphabet
        bad = [i for i in values if not 0 <= i < len(chars)]
        if bad:
            raise ValueError(f"ids must be in [0, {len(chars)}), got {bad[0]}")
        return "".join(chars[i] for i in values)


@dataclasses.dataclass(frozen=True)
class TextData:
    """A tokenized corpus split into training and validation ids.

    Build it with :meth:`from_text` (or :func:`load_corpus`), sample training batches with
    :meth:`get_batch` and take the fixed validation windows of :meth:`eval_batches`.
    """

    tokenizer: CharTokenizer
    """built on the training split's characters."""
    train: torch.Tensor
    """``(N_train,)`` int64 ids of the first ``1 - val_fraction`` of the text."""
    val: torch.Tensor
    """``(N_val,)`` int64 ids of the rest."""
    source: str
    """where the text came from (a path, or ``pydoc_data.topics``)."""

    @classmethod
    def from_text(cls, text: str, val_fraction: float = 0.1, source: str = "<text>") -> TextData:
        """Split ``text`` (first part train, last ``val_fraction`` validation) and tokenize it.

        Raises:
            ValueError: empty text, ``val_fraction`` outside (0, 1), or a split with fewer than 2 characters.
        """
        if not text:
            raise ValueError(f"text is empty ({source})")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
        n_train = round(len(text) * (1.0 - val_fraction))
        if n_train < 2 or len(text) - n_train < 2:
            raise ValueError(
                f"text of {len(text)} characters is too short for a {1 - val_fraction:.0%}/{val_fraction:.0%} "
                "split with at least 2 characters on each side"
            )
        tok = CharTokenizer.from_text(text[:n_train])
        return cls(tok, tok.encode(text[:n_train]), tok.encode(text[n_train:]), source)

    def check_seq_len(self, seq_len: int) -> None:
        """Raise ``ValueError`` unless both splits hold at least one window of ``seq_len + 1`` ids."""
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise ValueError(f"seq_len must be an integer >= 1, got {seq_len!r}")
        for name, ids in (("train", self.train), ("validation", self.val)):
            if len(ids) < seq_len + 1:
                raise ValueError(
                    f"the {name} split of {self.source} has {len(ids)} characters; seq_len {seq_len} needs at "
                    f"least {seq_len + 1} (use a longer text or a shorter --seq-len)"
                )

    def get_batch(
        self, batch_size: int, seq_len: int, generator: torch.Generator, split: str = "train"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows of a split: inputs and next-character targets.

        Args:
            batch_size: windows B (>= 1).
            seq_len: characters T per window (>= 1).
            generator: CPU generator for the window starts (uniform over every valid start).
            split: ``train`` or ``val``.

        Returns:
            ``(x, y)``, both ``(B, T)`` int64, with ``y[:, t] = x[:, t + 1]`` inside the text.
        """
        self.check_seq_len(seq_len)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        ids = self._split(split)
        starts = torch.randint(0, len(ids) - seq_len, (batch_size,), generator=generator)
        windows = ids.unfold(0, seq_len + 1, 1)[starts]  # (B, T + 1)
        return windows[:, :-1], windows[:, 1:]

    def eval_batches(
        self, n_batches: int, batch_size: int, seq_len: int, split: str = "val"
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``n_batches`` fixed batches of windows whose starts are evenly spaced over the split.

        Deterministic (no generator): every run, seed and optimizer is evaluated on the same characters.
        Windows overlap only when the split is shorter than ``n_batches * batch_size * seq_len``.
        """
        self.check_seq_len(seq_len)
        ids = self._split(split)
        n = n_batches * batch_size
        starts = torch.linspace(0, len(ids) - seq_len - 1, n).round().long()
        windows = ids.unfold(0, seq_len + 1, 1)[starts]  # (n, T + 1)
        return [(w[:, :-1], w[:, 1:]) for w in torch.split(windows, batch_size)]

    def _split(self, split: str) -> torch.Tensor:
        if split == "train":
            return self.train
        if split == "val":
            return self.val
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")


def load_corpus(path: str | os.PathLike[str] | None = None, val_fraction: float = 0.1) -> TextData:
    """:class:`TextData` of a text file, or of the bundled ``pydoc_data.topics`` corpus when ``path`` is None."""
    source = "pydoc_data.topics" if path is None else str(path)
    return TextData.from_text(load_text(path), val_fraction, source)
