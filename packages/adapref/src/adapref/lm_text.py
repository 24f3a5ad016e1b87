"""A text preference task with a known answer and the causal LMs that learn it (no downloads).

The data and model side of :mod:`adapref.lm_dpo`:

- :func:`make_text_preferences`: small additions, ``"3+4="`` → chosen ``"7"``, rejected a wrong sum,
  in TRL's explicit-prompt format, with an exact number of flipped pairs.
- :func:`build_tiny_model`: a small GPT-2 from its config and a character-level tokenizer built in
  memory.
- :func:`load_local_model`: a user's ``save_pretrained`` directory, offline.

``transformers`` and ``tokenizers`` (the ``[trl]`` extra) are imported inside the functions, so
importing this module stays light.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "SPECIAL_TOKENS",
    "build_tiny_model",
    "check_records",
    "load_local_model",
    "make_text_preferences",
]

SPECIAL_TOKENS = ("<pad>", "<unk>", "<eos>")
"""Special tokens of the in-memory character tokenizer (ids 0, 1, 2)."""
TEXT_KEYS = ("prompt", "chosen", "rejected")
"""The string fields of a preference record (TRL's explicit-prompt format)."""


def make_text_preferences(
    n: int, *, flip_rate: float = 0.0, seed: int = 0, max_operand: int = 4, with_strength: bool = False
) -> tuple[list[dict[str, Any]], list[bool]]:
    """A synthetic text preference task with a known correct answer: small-number addition.

    Each pair is the prompt ``"a+b="`` (a, b uniform in 0..``max_operand``), the chosen completion
    ``str(a + b)`` and as rejected completion a wrong sum drawn uniformly from the other values of
    0..2·``max_operand``. Then exactly ``round(flip_rate · n)`` pairs, drawn without replacement, have
    chosen and rejected swapped (uniform label-flip noise; the flags say which).

    Args:
        n: number of pairs ≥ 1.
        flip_rate: share of swapped pairs in [0, 1].
        seed: seed of the ``numpy.random.Generator`` (the same seed gives the same pairs).
        max_operand: largest operand ≥ 1. The default 4 (25 prompts, one-character answers) is
            learnable by the tiny model within one epoch of 200 pairs; 9 gives 100 prompts and
            two-character sums, a harder task.
        with_strength: also give each record a ``"strength"``, ``|int(rejected) − int(chosen)|`` (how wrong
            the wrong sum is; the same pairs and flips as without it), which :func:`adapref.lm_dpo.train_lm_dpo`
            reports τ against.

    Returns:
        ``(records, corrupted)``: ``n`` dicts ``{"prompt", "chosen", "rejected"}`` (TRL's explicit-prompt
        preference format) and ``n`` booleans, ``True`` where the pair was swapped.

    Raises:
        ValueError: ``n``, ``flip_rate`` or ``max_operand`` out of range, named.

    Example:
        >>> records, corrupted = make_text_preferences(4, flip_rate=0.5, seed=0)
        >>> sum(corrupted), sorted(records[0])
        (2, ['chosen', 'prompt', 'rejected'])

    Note:
        How wrong the rejected sum is, ``|int(rejected) − int(chosen)|`` in 1..2·``max_operand``,
        is readable from the text, so demos can split pairs by this proxy of preference strength.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if isinstance(flip_rate, bool) or not isinstance(flip_rate, (int, float)) or not (0.0 <= flip_rate <= 1.0):
        raise ValueError(f"flip_rate must lie in [0, 1], got {flip_rate!r}")
    if isinstance(max_operand, bool) or not isinstance(max_operand, int) or max_operand < 1:
        raise ValueError(f"max_operand must be an int >= 1, got {max_operand!r}")
    if not isinstance(with_strength, bool):
        raise ValueError(f"with_strength must be a bool, got {with_strength!r}")
    n_sums = 2 * max_operand + 1  # sums 0..2·max_operand
    rng = np.random.default_rng(seed)
    operands = rng.integers(0, max_operand + 1, size=(n, 2))
    offsets = rng.integers(1, n_sums, size=n)  # wrong = (sum + offset) mod n_sums: uniform over the wrong sums
    flipped = np.zeros(n, dtype=bool)
    flipped[rng.choice(n, size=round(flip_rate * n), replace=False)] = True
    records: list[dict[str, Any]] = []
    for (a, b), offset, flip in zip(operands.tolist(), offsets.tolist(), flipped.tolist(), strict=True):
        right, wrong = str(a + b), str((a + b + offset) % n_sums)
        chosen, rejected = (wrong, right) if flip else (right, wrong)
        records.append({"prompt": f"{a}+{b}=", "chosen": chosen, "rejected": rejected})
        if with_strength:
            records[-1]["strength"] = float(abs(int(wrong) - int(right)))
    return records, flipped.tolist()


def record_list(records: object, name: str) -> Sequence[Any]:
    """``records`` as a non-empty sequence (a ``datasets.Dataset`` split or a generator is read into a list)."""
    what = (
        "a non-empty sequence of {'prompt','chosen','rejected'} records (a list of dicts or a datasets.Dataset split)"
    )
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
        raise ValueError(f"{name} must be {what}, got {type(records).__name__}")
    rows = records if isinstance(records, Sequence) else list(records)
    if len(rows) == 0:
        raise ValueError(f"{name} must be {what}, got no records")
    return rows


def check_records(records: object, name: str) -> list[dict[str, str]]:
    """Plain ``{"prompt","chosen","rejected"}`` string dicts, or ``ValueError`` naming ``name``.

    ``records`` is a sequence of dicts or any other iterable of them (a ``datasets.Dataset`` split).
    """
    out = []
    for i, record in enumerate(record_list(records, name)):
        if not isinstance(record, Mapping):
            raise ValueError(f"{name}[{i}] must be a mapping, got {type(record).__name__}")
        listed = next((key for key in TEXT_KEYS if isinstance(record.get(key), list)), None)
        if listed is not None:
            raise ValueError(
                f"{name}[{i}][{listed!r}] is a list of messages (TRL's conversational form): apply the model's chat "
                "template first (TRL: maybe_apply_chat_template)"
            )
        if record.get("prompt") is None and all(isinstance(record.get(key), str) for key in ("chosen", "rejected")):
            raise ValueError(
                f"{name}[{i}] has no 'prompt' (TRL's implicit-prompt form): split the prompt off first with "
                f"adapref.lm_text.explicit_prompt_records({name}, source)"
            )
        for key in TEXT_KEYS:
            value = record.get(key)
            if not isinstance(value, str) or not value:
                # as read_trl_jsonl: an empty prompt leaves the first completion token unscored (no BOS here)
                raise ValueError(f"{name}[{i}][{key!r}] must be a non-empty string, got {value!r}")
        out.append({key: str(record[key]) for key in TEXT_KEYS})
    return out


def explicit_prompt_records(records: Iterable[Mapping[str, Any]], source: str) -> list[dict[str, Any]]:
    """TRL preference records in the explicit-prompt standard form that :func:`train_lm_dpo` trains on.

    Records read by :func:`adapref.data.read_trl_jsonl` come in one of TRL's four forms. Standard records
    with an implicit prompt get it as TRL's ``extract_prompt`` does: the longest common prefix of
    ``chosen`` and ``rejected``, ending before a space where the first difference follows one, removed
    from both. Conversational records (message lists) are refused: turning them into text needs the
    model's chat template (apply it first, e.g. with TRL's ``maybe_apply_chat_template``).

    Args:
        records: the records, all of one form.
        source: where they came from (a file name), for the error messages.

    Returns:
        New dicts with ``prompt``, ``chosen`` and ``rejected`` strings first, the other keys after.

    Raises:
        ValueError: conversational records, or an implicit-prompt record whose chosen and rejected
            share no prefix (named by its 0-based index in ``source``).

    Example:
        >>> explicit_prompt_records([{"chosen": "2+2= 4", "rejected": "2+2= 5"}], "x.jsonl")[0]["prompt"]
        '2+2='
    """
    out: list[dict[str, Any]] = []
    for k, record in enumerate(records):
        if not all(isinstance(record.get(key), str) for key in ("chosen", "rejected")):
            raise ValueError(
                f"{source}: conversational records (lists of messages) need the model's chat template; adapref dpo "
                "trains on plain-text records: apply the template first (TRL: maybe_apply_chat_template), then "
                "pass {'prompt', 'chosen', 'rejected'} strings"
            )
        if "prompt" in record:
            out.append(dict(record))
            continue
        chosen, rejected = record["chosen"], record["rejected"]
        idx = next(
            (i for i, (a, b) in enumerate(zip(chosen, rejected, strict=False)) if a != b),
            min(len(chosen), len(rejected)),
        )
        if 0 < idx < min(len(chosen), len(rejected)) and chosen[idx - 1] == " ":
            idx -= 1
        if idx == 0 or idx in (len(chosen), len(rejected)):
            raise ValueError(
                f"{source}: record {k} has no prompt key and its chosen and rejected texts share no prefix to "
                "serve as one (or one text is the other's prefix); give an explicit 'prompt'"
            )
        rest = {key: v for key, v in record.items() if key not in ("chosen", "rejected")}
        out.append({"prompt": chosen[:idx], "chosen": chosen[idx:], "rejected": rejected[idx:], **rest})
    return out


def build_tiny_model(
    records: Sequence[Mapping[str, Any]],
    *,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int | None = None,
    n_positions: int | None = None,
    seed: int = 0,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A randomly initialised GPT-2 and a character-level tokenizer, both built in memory.

    The tokenizer is a ``tokenizers`` WordLevel model over the characters of the records' text
    (every character is one token; ``<pad>``, ``<unk>``, ``<eos>`` come first), wrapped in a
    ``PreTrainedTokenizerFast``; it decodes without separators, so ``decode(encode(s)) == s`` for
    text made of seen characters. Nothing is downloaded.

    Args:
        records: the preference records whose characters make the vocabulary (pass train and eval).
        n_layer: transformer blocks ≥ 1.
        n_embd: width ≥ 1, divisible by ``n_head``.
        n_head: attention heads; ``None`` means ``max(1, n_embd // 32)``.
        n_positions: context length; ``None`` means the longest prompt + completion + ``<eos>``.
        seed: seed of the weight initialisation (the global RNG state is restored afterwards).

    Returns:
        ``(model, tokenizer)``: a float32 ``GPT2LMHeadModel`` and its ``PreTrainedTokenizerFast``.

    Raises:
        ValueError: empty or malformed records, or a bad size.

    Example:
        >>> model, tok = build_tiny_model([{"prompt": "1+1=", "chosen": "2", "rejected": "3"}], n_embd=32)
        >>> tok.decode(tok("1+1=2")["input_ids"]), model.config.vocab_size
        ('1+1=2', 8)
    """
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    rows = check_records(records, "records")
    for name, value in (("n_layer", n_layer), ("n_embd", n_embd)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    heads = max(1, n_embd // 32) if n_head is None else n_head
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1 or n_embd % heads:
        raise ValueError(f"n_head must be an int >= 1 dividing n_embd={n_embd}, got {heads!r}")
    longest = max(len(r["prompt"]) + max(len(r["chosen"]), len(r["rejected"])) for r in rows) + 1
    positions = longest if n_positions is None else n_positions
    if isinstance(positions, bool) or not isinstance(positions, int) or positions < 2:
        raise ValueError(f"n_positions must be an int >= 2, got {positions!r}")

    chars = sorted({c for r in rows for key in TEXT_KEYS for c in r[key]})
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *(c for c in chars if c not in SPECIAL_TOKENS)])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # one token per character
    backend.decoder = decoders.Fuse()
    fast_tokenizer: Any = PreTrainedTokenizerFast  # untyped constructor
    tokenizer = fast_tokenizer(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>", model_max_length=positions
    )
    config = GPT2Config(
        vocab_size=len(vocab),
        n_positions=positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=heads,
        bos_token_id=vocab["<eos>"],
        eos_token_id=vocab["<eos>"],
        pad_token_id=vocab["<pad>"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    return model, tokenizer


def load_local_model(path: str | os.PathLike[str]) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A user's causal LM and tokenizer from a local directory, offline (``local_files_only=True``).

    Args:
        path: a directory written by ``save_pretrained`` (``config.json``, weights, tokenizer files).

    Returns:
        ``(model, tokenizer)`` from ``AutoModelForCausalLM`` / ``AutoTokenizer``, model in float32.

    Raises:
        FileNotFoundError: ``path`` is not an existing directory (nothing is downloaded, so hub ids
            are refused too).
        ValueError: the directory holds no loadable model or tokenizer, or the tokenizer has no
            EOS token (DPO appends it to every completion), holds special tokens only, or has more
            tokens than the model's input embedding has rows.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(
            f"model {str(path)!r} is not an existing directory; adapref loads local models only "
            "(a save_pretrained directory) and downloads nothing"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"model {str(path)!r} holds no loadable causal LM and tokenizer: {exc}") from exc
    if tokenizer.eos_token is None:
        raise ValueError(f"the tokenizer in {str(path)!r} has no eos_token; DPO appends it to every completion")
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):  # transformers builds an empty one from no files
        raise ValueError(
            f"the tokenizer in {str(path)!r} holds special tokens only ({len(tokenizer)}): save the model's "
            "tokenizer there too (tokenizer.save_pretrained)"
        )
    embedding: Any = model.get_input_embeddings()  # typed as a Module
    rows = int(embedding.weight.shape[0])
    if len(tokenizer) > rows:
        raise ValueError(
            f"the tokenizer in {str(path)!r} has {len(tokenizer)} tokens but the model's input embedding only "
            f"{rows} rows: they are not the same model's (or call model.resize_token_embeddings before saving)"
        )
    return model, tokenizer
