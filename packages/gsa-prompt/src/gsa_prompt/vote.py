r"""Self-consistency's majority vote over extracted answers (Wang et al. 2023), ties first-seen or random.

Ties go to the first-seen answer, as ``dspy.majority``, or are drawn uniformly with a seeded
``random.Random``; with exchangeable wrong answers both rules give the same expected accuracy.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gsa_prompt.extract import math_equal

__all__ = ["Vote", "majority_vote"]

_TIE_MODES = ("first", "random")


@dataclass(frozen=True)
class Vote:
    """The outcome of :func:`majority_vote` (a frozen record)."""

    answer: str | None
    """The winning group's representative (its first-seen answer); None when no answer was extractable."""
    index: int | None
    """Index in ``answers`` of the first response of the winning group (SC returns that response)."""
    counts: tuple[tuple[str, int], ...]
    """``(representative, count)`` of every group, in first-seen order."""
    tied: bool
    """Whether several groups shared the largest count (the tie rule then decided)."""


def majority_vote(
    answers: Sequence[str | None],
    *,
    equal: Callable[[str, str], bool] = math_equal,
    tie: str = "first",
    rng: random.Random | None = None,
) -> Vote:
    r"""Self-consistency's vote: the mode of the extracted answers ``a(y_1), ..., a(y_n)``.

    Each answer joins the first group whose representative (its first-seen member) it ``equal``\ s,
    else opens a new group; the largest group wins. ``None`` answers count for nothing.

    Args:
        answers: one extracted answer per response, None where none could be extracted.
        equal: the equivalence, ``equal(representative, answer)``; default :func:`math_equal`.
        tie: ``"first"``: the tied group seen first wins (as ``dspy.majority``); ``"random"``: a tied
            group drawn uniformly with ``rng``. Both give the same expected accuracy when the wrong
            answers are exchangeable.
        rng: the generator for ``tie="random"`` (required there, ignored otherwise); one draw per tied vote.

    Returns:
        A :class:`Vote`; with no non-None answer, ``Vote(None, None, (), False)``.

    Raises:
        TypeError: if ``answers`` is not a sequence of str/None, ``equal`` is not callable or ``rng``
            is not a ``random.Random``.
        ValueError: if ``tie`` is unknown, or ``tie="random"`` without ``rng``.

    Example:
        >>> v = majority_vote(["1/2", None, "7", "0.5", "7.0"])
        >>> v.answer, v.index, v.counts, v.tied
        ('1/2', 0, (('1/2', 2), ('7', 2)), True)
    """
    if isinstance(answers, (str, bytes)) or not isinstance(answers, Sequence):
        raise TypeError(f"answers must be a sequence of str or None, got {type(answers).__name__}")
    if (bad := next((i for i, a in enumerate(answers) if not isinstance(a, (str, type(None)))), None)) is not None:
        raise TypeError(f"answers[{bad}] must be a str or None, got {type(answers[bad]).__name__}")
    if not callable(equal):
        raise TypeError(f"equal must be a callable (str, str) -> bool, got {type(equal).__name__}")
    if tie not in _TIE_MODES:
        raise ValueError(f"tie must be one of {_TIE_MODES}, got {tie!r}")
    if tie == "random" and rng is None:
        raise ValueError("rng must be a random.Random when tie='random', got None")
    if rng is not None and not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
    reps: list[str] = []  # the groups' representatives, first indices and sizes, in first-seen order
    first: list[int] = []
    sizes: list[int] = []
    for i, a in enumerate(answers):
        if a is None:
            continue
        g = next((g for g, rep in enumerate(reps) if equal(rep, a)), None)
        if g is None:
            reps.append(a)
            first.append(i)
            sizes.append(1)
        else:
            sizes[g] += 1
    if not reps:
        return Vote(answer=None, index=None, counts=(), tied=False)
    best = max(sizes)
    tied = [g for g, size in enumerate(sizes) if size == best]
    win = tied[rng.randrange(len(tied))] if tie == "random" and len(tied) > 1 and rng is not None else tied[0]
    return Vote(answer=reps[win], index=first[win], counts=tuple(zip(reps, sizes, strict=True)), tied=len(tied) > 1)
