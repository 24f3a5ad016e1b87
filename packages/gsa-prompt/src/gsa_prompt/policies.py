"""Scripted answer policies of the toy worlds, and the exact expected accuracy of each method under them.

Policies map the keys of the candidates found in an aggregation or selection prompt to the key of the output
(:func:`aggregate_key`, :func:`select_index`) or fix a wrong answer in a refine step (:func:`refine_key`); the
fake server (:mod:`gsa_prompt.testing`) answers with them. A key is an answer of a
:class:`~gsa_prompt.worlds.World`, which says whether it is correct. The ``*_accuracy`` functions give the exact
expected accuracy of each method under these policies (:func:`pass_at_n` for the ``oracle`` aggregator).

Every name here is re-exported by :mod:`gsa_prompt.worlds`. Toy-world accuracies are plumbing checks of the
harness, not evidence for GSA.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gsa_prompt.worlds import World

__all__ = [
    "AGGREGATE_TABLE", "AGGREGATORS", "SELECTORS", "SELECT_TABLE", "Policy", "aggregate_key", "majority_key",
    "pass_at_n", "refine_accuracy", "refine_key", "resolve_policy", "sc_accuracy", "select_index", "table_accuracy",
    "table_probability",
]  # fmt: skip

AGGREGATORS: tuple[str, ...] = ("copy-majority", "copy-first", "oracle", "table")
"""Aggregator policies; ``table`` uses :data:`AGGREGATE_TABLE` unless a table is given."""
SELECTORS: tuple[str, ...] = ("majority", "first", "oracle", "table")
"""Selector policies (USC and choose-from-N); ``table`` uses :data:`SELECT_TABLE` unless a table is given."""
AGGREGATE_TABLE: tuple[float, ...] = (0.1, 0.5, 0.9, 1.0)
"""P(aggregate correct | k of 3 candidates correct), k = 0..3 (spec §5.11)."""
SELECT_TABLE: tuple[float, ...] = (0.0, 0.6, 0.8, 1.0)
"""P(selected candidate correct | k of 3 candidates correct), k = 0..3 (spec §5.11)."""
Policy = str | Sequence[float]
"""A policy name, or a table ``P(correct | k of n correct)`` for k = 0..n."""


def majority_key(keys: Sequence[str | None]) -> str | None:
    """The most frequent non-None key, the first seen among ties (dspy.majority's rule); None if all are None.

    Example:
        >>> majority_key(["7", "5", "5", "7", None])
        '7'
    """
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(k for k in keys if k is not None and counts[k] == top)


def table_probability(table: Sequence[float], k: int, n: int) -> float:
    """``table[k]`` when ``len(table) == n + 1``, else the table read linearly at ``k / n``.

    Example:
        >>> table_probability((0.1, 0.5, 0.9, 1.0), 2, 3), table_probability((0.0, 1.0), 1, 4)
        (0.9, 0.25)
    """
    if len(table) < 2 or any(not 0.0 <= t <= 1.0 for t in table):
        raise ValueError(f"table must hold >= 2 probabilities in [0, 1], got {tuple(table)}")
    if len(table) == n + 1:
        return float(table[k])
    x = (k / n if n else 1.0) * (len(table) - 1)
    lo = min(int(x), len(table) - 2)
    return float(table[lo] + (x - lo) * (table[lo + 1] - table[lo]))


def resolve_policy(policy: Policy, what: str) -> str | tuple[float, ...]:
    """A checked aggregator or selector policy: its name, or its table (``"table"`` gives the spec's table).

    Args:
        policy: a name in :data:`AGGREGATORS` / :data:`SELECTORS`, or a table of probabilities.
        what: ``"aggregator"`` or ``"selector"``.

    Raises:
        ValueError: an unknown name or a bad table, naming ``what``.

    Example:
        >>> resolve_policy("table", "selector"), resolve_policy([0, 1], "aggregator")
        ((0.0, 0.6, 0.8, 1.0), (0.0, 1.0))
    """
    names, default = (AGGREGATORS, AGGREGATE_TABLE) if what == "aggregator" else (SELECTORS, SELECT_TABLE)
    if isinstance(policy, str):
        if policy not in names:
            raise ValueError(f"{what} must be one of {names} or a table, got {policy!r}")
        return default if policy == "table" else policy
    table = tuple(float(t) for t in policy)
    if len(table) < 2 or any(not 0.0 <= t <= 1.0 for t in table):
        raise ValueError(f"{what} table must hold >= 2 probabilities in [0, 1], got {table}")
    return table


def aggregate_key(world: World, text: str, keys: Sequence[str | None], policy: Policy, rng: random.Random) -> str:
    """The answer key a scripted aggregator writes, given the keys of the candidates in its prompt.

    Args:
        world: the world of the question.
        text: the aggregation prompt (it holds the question).
        keys: the candidates' keys, in prompt order (None: no answer).
        policy: ``copy-majority`` (majority key, first seen on ties), ``copy-first``, ``oracle`` (a correct key if
            any candidate has one, else the majority), ``table`` or a table: correct with probability
            ``table[k]`` for ``k`` correct candidates, else one of the wrong candidates' keys (or a distractor).
        rng: randomness of the ``table`` policy and of fallbacks.

    Returns:
        The output key (a distractor if no candidate states an answer and the policy copies).

    Example:
        >>> world, q = ArithmeticWorld(), "What is 2 + 3?"
        >>> aggregate_key(world, q, ["6", "5", "5"], "copy-majority", stable_rng(0))
        '5'
    """
    rule = resolve_policy(policy, "aggregator")
    correct = [k for k in keys if k is not None and world.is_correct(text, k)]
    wrong = [k for k in keys if k is not None and not world.is_correct(text, k)]
    fallback = world.distractors(text) or ["0"]
    if rule == "copy-first" and keys and keys[0] is not None:
        return keys[0]
    if rule == "oracle" and correct:
        return correct[0]
    if isinstance(rule, tuple):
        if rng.random() < table_probability(rule, len(correct), len(keys)):
            return correct[0] if correct else rng.choice(world.good_keys(text) or fallback)
        return rng.choice(wrong or fallback)
    return majority_key(keys) or rng.choice(fallback)


def select_index(world: World, text: str, keys: Sequence[str | None], policy: Policy, rng: random.Random) -> int:
    """The 0-based index of the candidate a scripted selector (USC, choose-from-N) picks.

    Args:
        world: the world of the question.
        text: the selection prompt.
        keys: the candidates' keys, in prompt order (at least one).
        policy: ``majority`` (first candidate with the majority key), ``first``, ``oracle`` (first correct, else
            majority), ``table`` or a table: a uniformly drawn correct candidate with probability ``table[k]``,
            else a uniformly drawn wrong one.
        rng: randomness of the ``table`` policy.

    Returns:
        An index into ``keys``.

    Example:
        >>> select_index(ArithmeticWorld(), "What is 2 + 3?", ["6", "5", "5"], "majority", stable_rng(0))
        1
    """
    if not keys:
        raise ValueError("keys must hold at least one candidate key, got none")
    rule = resolve_policy(policy, "selector")
    good = [i for i, k in enumerate(keys) if world.is_correct(text, k)]
    bad = [i for i in range(len(keys)) if i not in good]
    top = majority_key(keys)
    majority = next((i for i, k in enumerate(keys) if k is not None and k == top), 0)
    if rule == "first":
        return 0
    if rule == "oracle":
        return good[0] if good else majority
    if isinstance(rule, tuple):
        if good and (not bad or rng.random() < table_probability(rule, len(good), len(keys))):
            return rng.choice(good)
        return rng.choice(bad)
    return majority


def refine_key(world: World, text: str, key: str | None, q: float, rng: random.Random) -> str:
    """The key a scripted refine step writes: a correct key is kept, a wrong one fixed with probability ``q``.

    Example:
        >>> refine_key(ArithmeticWorld(), "What is 2 + 3?", "6", 1.0, stable_rng(0))
        '5'
    """
    if world.is_correct(text, key) and key is not None:
        return key
    if rng.random() < q and world.good_keys(text):
        return rng.choice(world.good_keys(text))
    return key if key is not None else rng.choice(world.distractors(text) or ["0"])


def pass_at_n(p: float, n: int) -> float:
    """``1 - (1 - p)^n``: at least one of ``n`` independent samples is correct (the ``oracle`` aggregator).

    Example:
        >>> round(pass_at_n(0.6, 3), 4)
        0.936
    """
    _check_pn(p, n)
    return 1.0 - (1.0 - p) ** n


def sc_accuracy(p: float, m: int, n: int) -> float:
    """Exact self-consistency accuracy with ``n`` samples, ``m`` uniform distractors, ties to the first seen.

    Computed by enumerating all ``(m + 1)^n`` answer sequences (limit 2e6).

    Example:
        >>> round(sc_accuracy(0.6, 6, 3), 4)  # 0.648 (k >= 2) + 0.288 * 5/6 / 3 (three-way tie)
        0.728
    """
    _check_pn(p, n)
    if m < 1 or (m + 1) ** n > 2_000_000:
        raise ValueError(f"m must be >= 1 with (m + 1)^n <= 2e6, got m={m}, n={n}")
    probs = [p] + [(1.0 - p) / m] * m
    total = 0.0
    for seq in itertools.product(range(m + 1), repeat=n):
        if majority_key([str(s) for s in seq]) == "0":
            total += math.prod(probs[s] for s in seq)
    return total


def table_accuracy(p: float, n: int, table: Sequence[float]) -> float:
    """``Σ_k C(n, k) p^k (1 - p)^(n - k) table[k]``: accuracy of a ``table`` aggregator or selector.

    Example:
        >>> round(table_accuracy(0.6, 3, AGGREGATE_TABLE), 4), round(table_accuracy(0.6, 3, SELECT_TABLE), 4)
        (0.7552, 0.7344)
    """
    _check_pn(p, n)
    return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) * table_probability(table, k, n) for k in range(n + 1))


def refine_accuracy(p: float, q: float) -> float:
    """``p + (1 - p) q``: accuracy after one scripted self-refine round that fixes a wrong answer w.p. ``q``.

    Example:
        >>> refine_accuracy(0.6, 0.5)
        0.8
    """
    _check_pn(p, 1)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    return p + (1.0 - p) * q


def _check_pn(p: float, n: int) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
