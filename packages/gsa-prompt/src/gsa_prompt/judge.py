"""Pairwise judging of open-ended answers (MT-Bench / AlpacaEval style) with a position swap.

A judge model sees the question and two responses and names the better one or a tie
(:func:`~gsa_prompt.prompts.build_pairwise_prompt`). Judges favour the first position (spec pitfall
13), so every comparison is asked twice with the order swapped, and the score of ``a`` against ``b`` is
the mean of the two verdicts: 1 (``a`` better both times), 0.5 (split or tie), 0 (``b`` better both
times). An unparsable verdict counts as a tie and is flagged. Identical texts score 0.5 with no call.
"""

from __future__ import annotations

import asyncio
import dataclasses

from gsa_prompt.client import Client
from gsa_prompt.prompts import build_pairwise_prompt
from gsa_prompt.roles import parse_pairwise

__all__ = ["Verdict", "judge_pairwise"]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`judge_pairwise`."""

    score: float
    """``a``'s score against ``b``: 0, 0.25, 0.5, 0.75 or 1."""
    calls: int
    """judge calls made (0 for identical texts, else 2)."""
    unparsable: int
    """verdicts that named neither response nor a tie (counted as ties)."""


async def judge_pairwise(judge: Client, question: str, a: str, b: str, *, seed: int | None = 0) -> Verdict:
    """Score response ``a`` against ``b`` with the ``judge`` endpoint, in both orders (temperature 0).

    Args:
        judge: the judge model's client (it may be the same endpoint as the answering model).
        question: the question both respond to.
        a, b: the two responses.
        seed: sent with both judge requests.

    Returns:
        A :class:`Verdict`.
    """
    if a.strip() == b.strip():
        return Verdict(0.5, 0, 0)

    async def ask(first: str, second: str) -> float | None:
        got = await judge.complete([{"role": "user", "content": build_pairwise_prompt(question, first, second)}],
                                   temperature=0.0, max_tokens=256, seed=seed, method="judge", role="pairwise")  # fmt: skip
        return parse_pairwise(got[0].text or "")

    forward, backward = await asyncio.gather(ask(a, b), ask(b, a))
    unparsable = (forward is None) + (backward is None)
    score = ((0.5 if forward is None else forward) + (1.0 - (0.5 if backward is None else backward))) / 2
    return Verdict(score, 2, unparsable)
