r"""GSA and its baselines: small async strategies over one :class:`~gsa_prompt.client.Client`.

Every method has the signature ``await method(client, question, task="open", **settings) -> MethodResult``
and a registry name (:data:`METHODS`). Calls at the paper's 4-call budget (spec §1.2):

============  =======================  ==============================================================
name          calls                    rule
============  =======================  ==============================================================
greedy        1                        one response at temperature 0
sc            n (4)                    self-consistency: the first response whose extracted answer is
                                       the mode of ``a(y_1..y_n)`` (ties: first seen)
usc           n + 1 (3 + 1)            universal self-consistency: the model names the most
                                       consistent response (Chen et al. 2023)
cfn           n + 1 (3 + 1)            choose-from-N: the model names the best response
bon           2k (2 + 2)               best-of-n by a pointwise judge: each response rated 0-10 in its
                                       own call, the highest wins (optillm ``bon``)
self-refine   1 + 2r (1 + 2)           response, feedback, refined response, r rounds (Madaan et al.)
gsa           n + 1 (3 + 1)            Generative Self-Aggregation: n diverse samples, then one
                                       generation from the aggregation prompt that writes a *new*
                                       response using all of them (Li et al. 2025)
============  =======================  ==============================================================

GSA (the paper's two stages): :math:`y_i \sim \pi(\cdot \mid x; T_s)`, ``i = 1..n``, independent; then
:math:`\hat y \sim \pi(\cdot \mid A(x, y_1, \dots, y_n); T_a)` with ``A`` the aggregation prompt
(:func:`~gsa_prompt.prompts.build_gsa_prompt`). Prompts and defaults live in :mod:`gsa_prompt.prompts`
with their sources; empty candidates are dropped (flag ``dropped_empty``), ``<think>`` blocks of
reasoning models are stripped before aggregation (spec pitfall 7), and a selection answer that cannot
be parsed falls back to self-consistency (or the first response) with the flag ``parse_failed``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from gsa_prompt.client import Choice, Client
from gsa_prompt.prompts import (
    DEFAULTS,
    SAMPLE_VARIANTS,
    build_choose_prompt,
    build_feedback_prompt,
    build_gsa_prompt,
    build_judge_prompt,
    build_refine_prompt,
    build_sample_messages,
    build_usc_prompt,
)
from gsa_prompt.roles import parse_choice, parse_rating
from gsa_prompt.tasks import TaskKind, task_kind
from gsa_prompt.vote import majority_vote

__all__ = [
    "METHODS", "MethodResult", "NoCandidates", "bon_judge", "budget_split", "choose_from_n", "greedy", "gsa",
    "self_consistency", "self_refine", "strip_think", "usc",
]  # fmt: skip

_THINK = re.compile(r"<think>.*?(?:</think>\s*|\Z)", re.DOTALL)
"""A reasoning block, closed or cut off by the token limit (then it runs to the end of the response)."""


class NoCandidates(RuntimeError):
    """Every sampled response came back empty, so there is nothing to aggregate or select from."""


@dataclasses.dataclass
class MethodResult:
    """What a method returns for one question."""

    method: str
    text: str | None
    """the final response."""
    answer: str | None
    """the task's extracted answer of ``text`` (None for code/open tasks or when none is found)."""
    candidates: list[str]
    """the sampled responses the method worked from (after dropping empty ones)."""
    chosen: int | None = None
    """index into ``candidates`` of the selected response (sc, usc, cfn, bon), else None."""
    calls: int = 0
    """model generations requested (cached ones included)."""
    usage: dict[str, Any] = dataclasses.field(default_factory=dict)
    """this question's ledger totals: calls, cached_calls, prompt/completion tokens, cost_usd."""
    flags: list[str] = dataclasses.field(default_factory=list)
    """``truncated``, ``dropped_empty``, ``parse_failed``, ``no_answer``, ``tie`` ..."""
    trace: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """the intermediate texts: selections, ratings, feedback."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def strip_think(text: str) -> str:
    """Drop ``<think>...</think>`` blocks of reasoning models (before aggregation); a block the token
    limit cut off before ``</think>`` is dropped to the end of the response.

    Example:
        >>> strip_think("<think>scratch</think>The answer is 5.")
        'The answer is 5.'
        >>> strip_think("The answer is 5.<think>truncated scratch")
        'The answer is 5.'
    """
    return _THINK.sub("", text).strip()


def budget_split(method: str, budget: int) -> dict[str, int]:
    """The method's settings that spend ``budget`` calls per question (spec §1.2).

    Returns:
        ``{"n": ...}`` for sc/usc/cfn/gsa/bon, ``{"rounds": r}`` for self-refine, ``{}`` for greedy.

    Raises:
        ValueError: an unknown method, or a budget too small for it.

    Example:
        >>> budget_split("gsa", 4), budget_split("sc", 4), budget_split("bon", 4), budget_split("self-refine", 4)
        ({'n': 3}, {'n': 4}, {'n': 2}, {'rounds': 1})
    """
    need = {"greedy": 1, "sc": 1, "usc": 2, "cfn": 2, "gsa": 2, "bon": 2, "self-refine": 3}
    if method not in need:
        raise ValueError(f"method must be one of {', '.join(need)}, got {method!r}")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < need[method]:
        raise ValueError(f"budget must be an integer >= {need[method]} calls for {method}, got {budget!r}")
    if method == "greedy":
        return {}
    if method == "sc":
        return {"n": budget}
    if method == "bon":
        return {"n": budget // 2}
    if method == "self-refine":
        return {"rounds": (budget - 1) // 2}
    return {"n": budget - 1}


def _check_n(n: int, low: int = 1) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < low:
        raise ValueError(f"n must be an integer >= {low}, got {n!r}")


def _usable(choices: list[Choice], flags: list[str]) -> list[str]:
    """Non-empty texts of the choices (``<think>`` stripped); flags ``truncated`` and ``dropped_empty``."""
    if any(c.finish_reason == "length" for c in choices):
        flags.append("truncated")
    texts = [strip_think(c.text) for c in choices if c.text]
    texts = [t for t in texts if t]
    if len(texts) < len(choices):
        flags.append("dropped_empty")
    return texts


async def _samples(
    client: Client, question: str, kind: TaskKind, n: int, *, temperature: float, max_tokens: int,
    seed: int | None, method: str, diversity: str = "temperature", system: str | None = None,
) -> list[Choice]:  # fmt: skip
    """``n`` independent responses: one request with n (``temperature``), or one prompt variant each (``prompts``)."""
    if diversity == "temperature":
        messages = build_sample_messages(question, kind.answer_format, system)
        return await client.complete(messages, n=n, temperature=temperature, top_p=DEFAULTS.top_p,
                                     max_tokens=max_tokens, seed=seed, method=method, role="sample")  # fmt: skip
    if diversity != "prompts":
        raise ValueError(f"diversity must be 'temperature' or 'prompts', got {diversity!r}")

    async def one(i: int) -> Choice:
        messages = build_sample_messages(question, kind.answer_format, system, variant=i % len(SAMPLE_VARIANTS))
        got = await client.complete(messages, temperature=temperature, top_p=DEFAULTS.top_p, max_tokens=max_tokens,
                                    seed=None if seed is None else seed + i, method=method, role="sample")  # fmt: skip
        return dataclasses.replace(got[0], index=i)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _single(client: Client, prompt: str, *, temperature: float, max_tokens: int, seed: int | None,
                  method: str, role: str) -> Choice:  # fmt: skip
    got = await client.complete([{"role": "user", "content": prompt}], temperature=temperature, max_tokens=max_tokens,
                                seed=seed, method=method, role=role)  # fmt: skip
    return got[0]


def _finish(result: MethodResult, kind: TaskKind) -> MethodResult:
    result.answer = kind.answer(result.text)
    if kind.extract is not None and result.answer is None:
        result.flags.append("no_answer")
    return result


def _vote_index(texts: list[str], kind: TaskKind, flags: list[str]) -> int:
    """Self-consistency's pick among ``texts``: the first with the modal answer (0 when nothing extracts)."""
    vote = majority_vote([kind.answer(t) for t in texts], equal=kind.equal)
    if vote.tied:
        flags.append("tie")
    return 0 if vote.index is None else vote.index


# -- the methods -----------------------------------------------------------------------------------
async def greedy(client: Client, question: str, task: str | TaskKind = "open", *, max_tokens: int = DEFAULTS.max_tokens,
                 seed: int | None = 0, system: str | None = None) -> MethodResult:  # fmt: skip
    """One response at temperature 0 (1 call)."""
    kind = task_kind(task)
    with client.track() as led:
        choices = await _samples(client, question, kind, 1, temperature=0.0, max_tokens=max_tokens, seed=seed,
                                 method="greedy", system=system)  # fmt: skip
    flags: list[str] = []
    texts = _usable(choices, flags)
    result = MethodResult("greedy", texts[0] if texts else None, None, texts, calls=1, usage=led.totals(), flags=flags)
    return _finish(result, kind)


async def self_consistency(
    client: Client, question: str, task: str | TaskKind = "math", *, n: int = DEFAULTS.budget_calls,
    temperature: float = DEFAULTS.sample_temperature, max_tokens: int = DEFAULTS.max_tokens, seed: int | None = 0,
    system: str | None = None,
) -> MethodResult:  # fmt: skip
    """Self-consistency (Wang et al. 2023): ``n`` samples, the first response with the modal extracted answer.

    Raises:
        ValueError: a task kind without an extractor (``code``, ``open``): the vote is undefined.
    """
    _check_n(n)
    kind = task_kind(task)
    if kind.extract is None:
        raise ValueError(f"self-consistency needs extractable answers; task {kind.name!r} has none (use usc or gsa)")
    with client.track() as led:
        choices = await _samples(client, question, kind, n, temperature=temperature, max_tokens=max_tokens,
                                 seed=seed, method="sc", system=system)  # fmt: skip
    flags: list[str] = []
    texts = _usable(choices, flags)
    if not texts:
        return _finish(MethodResult("sc", None, None, [], calls=n, usage=led.totals(), flags=flags), kind)
    i = _vote_index(texts, kind, flags)
    return _finish(MethodResult("sc", texts[i], None, texts, chosen=i, calls=n, usage=led.totals(), flags=flags), kind)


async def _select(
    name: str, build: Callable[[str, list[str]], str], client: Client, question: str, task: str | TaskKind, n: int,
    temperature: float, max_tokens: int, seed: int | None, system: str | None,
) -> MethodResult:  # fmt: skip
    _check_n(n)
    kind = task_kind(task)
    flags: list[str] = []
    with client.track() as led:
        choices = await _samples(client, question, kind, n, temperature=temperature, max_tokens=max_tokens,
                                 seed=seed, method=name, system=system)  # fmt: skip
        texts = _usable(choices, flags)
        if not texts:
            raise NoCandidates(f"{name}: all {n} sampled responses were empty")
        pick = await _single(client, build(question, texts), temperature=DEFAULTS.select_temperature,
                             max_tokens=DEFAULTS.judge_max_tokens, seed=seed, method=name, role="select")  # fmt: skip
    index = parse_choice(pick.text or "", len(texts))
    if index is None:
        flags.append("parse_failed")
        index = _vote_index(texts, kind, flags) if kind.extract is not None else 0
    result = MethodResult(name, texts[index], None, texts, chosen=index, calls=n + 1, usage=led.totals(), flags=flags,
                          trace=[{"role": "select", "text": pick.text}])  # fmt: skip
    return _finish(result, kind)


async def usc(
    client: Client, question: str, task: str | TaskKind = "open", *, n: int = DEFAULTS.n,
    temperature: float = DEFAULTS.sample_temperature, max_tokens: int = DEFAULTS.max_tokens, seed: int | None = 0,
    system: str | None = None,
) -> MethodResult:  # fmt: skip
    """Universal self-consistency (Chen et al. 2023): ``n`` samples + one call naming the most consistent."""
    return await _select("usc", build_usc_prompt, client, question, task, n, temperature, max_tokens, seed, system)


async def choose_from_n(
    client: Client, question: str, task: str | TaskKind = "open", *, n: int = DEFAULTS.n,
    temperature: float = DEFAULTS.sample_temperature, max_tokens: int = DEFAULTS.max_tokens, seed: int | None = 0,
    system: str | None = None,
) -> MethodResult:  # fmt: skip
    """Choose-from-N (the paper's listwise selection baseline): ``n`` samples + one call naming the best."""
    return await _select("cfn", build_choose_prompt, client, question, task, n, temperature, max_tokens, seed, system)


async def bon_judge(
    client: Client, question: str, task: str | TaskKind = "open", *, n: int = 2,
    temperature: float = DEFAULTS.sample_temperature, max_tokens: int = DEFAULTS.max_tokens, seed: int | None = 0,
    system: str | None = None,
) -> MethodResult:  # fmt: skip
    """Best-of-n by a pointwise judge (optillm ``bon``): ``n`` samples, each rated 0-10 in its own call, argmax."""
    _check_n(n)
    kind = task_kind(task)
    flags: list[str] = []
    with client.track() as led:
        choices = await _samples(client, question, kind, n, temperature=temperature, max_tokens=max_tokens,
                                 seed=seed, method="bon", system=system)  # fmt: skip
        texts = _usable(choices, flags)
        if not texts:
            raise NoCandidates(f"bon: all {n} sampled responses were empty")
        judged = await asyncio.gather(*(
            _single(client, build_judge_prompt(question, t), temperature=DEFAULTS.judge_temperature,
                    max_tokens=DEFAULTS.judge_max_tokens, seed=seed, method="bon", role="judge")
            for t in texts))  # fmt: skip
    ratings = [parse_rating(j.text or "") for j in judged]
    if any(r is None for r in ratings):
        flags.append("parse_failed")
    scores = [DEFAULTS.unparsable_rating if r is None else r for r in ratings]
    best = max(range(len(texts)), key=lambda i: (scores[i], -i))
    result = MethodResult("bon", texts[best], None, texts, chosen=best, calls=n + len(texts), usage=led.totals(),
                          flags=flags, trace=[{"role": "judge", "rating": r, "text": j.text}
                                              for r, j in zip(ratings, judged, strict=True)])  # fmt: skip
    return _finish(result, kind)


async def self_refine(
    client: Client, question: str, task: str | TaskKind = "open", *, rounds: int = DEFAULTS.refine_rounds,
    max_tokens: int = DEFAULTS.max_tokens, seed: int | None = 0, system: str | None = None,
) -> MethodResult:  # fmt: skip
    """Self-refine (Madaan et al. 2023): ``y_0``; then ``rounds`` times feedback ``f_t`` and refined ``y_{t+1}``."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an integer >= 1, got {rounds!r}")
    kind = task_kind(task)
    flags: list[str] = []
    trace: list[dict[str, Any]] = []
    with client.track() as led:
        first = await _samples(client, question, kind, 1, temperature=0.0, max_tokens=max_tokens, seed=seed,
                               method="self-refine", system=system)  # fmt: skip
        texts = _usable(first, flags)
        if not texts:
            raise NoCandidates("self-refine: the first response was empty")
        current = texts[0]
        for _ in range(rounds):
            fb = await _single(client, build_feedback_prompt(question, current), temperature=DEFAULTS.feedback_temperature,
                               max_tokens=max_tokens, seed=seed, method="self-refine", role="feedback")  # fmt: skip
            new = await _single(client, build_refine_prompt(question, current, fb.text or "", kind.answer_format),
                                temperature=DEFAULTS.refine_temperature, max_tokens=max_tokens, seed=seed,
                                method="self-refine", role="refine")  # fmt: skip
            trace.append({"role": "feedback", "text": fb.text})
            refined = _usable([new], flags)
            if refined:
                current = refined[0]
    result = MethodResult("self-refine", current, None, texts, calls=1 + 2 * rounds, usage=led.totals(), flags=flags,
                          trace=trace)  # fmt: skip
    return _finish(result, kind)


async def gsa(
    client: Client, question: str, task: str | TaskKind = "open", *, n: int = DEFAULTS.n,
    sample_temperature: float = DEFAULTS.sample_temperature,
    aggregate_temperature: float = DEFAULTS.aggregate_temperature, max_tokens: int = DEFAULTS.max_tokens,
    seed: int | None = 0, diversity: str = "temperature", system: str | None = None,
    aggregate_prompt: str | None = None, max_candidate_chars: int | None = None,
) -> MethodResult:  # fmt: skip
    r"""Generative Self-Aggregation: ``n`` diverse samples ``y_i``, then ``ŷ ~ π(· | A(x, y_1..y_n); T_a)``.

    Args:
        client: the endpoint's client.
        question: ``x``.
        task: the task kind (answer format and extractor).
        n: samples (>= 1; n = 1 degenerates to a single-draft rewrite and warns).
        sample_temperature: ``T_s``.
        aggregate_temperature: ``T_a``.
        max_tokens: completion tokens of each call.
        seed: base seed (sample ``i`` uses ``seed + i`` when looped).
        diversity: ``"temperature"`` (one prompt, ``T_s``) or ``"prompts"`` (a different prompt variant per sample).
        system: an optional system message for the samples.
        aggregate_prompt: a ``str.format`` template replacing :data:`~gsa_prompt.prompts.GSA_TEMPLATE`.
        max_candidate_chars: cut the middle of longer candidates to this many characters (flag ``cut``), so the
            aggregation prompt fits the context; None: no cut.

    Returns:
        :class:`MethodResult` (``calls = n + 1``).

    Raises:
        NoCandidates: every sample was empty.
        ValueError: bad ``n``, ``diversity`` or template.
    """
    _check_n(n)
    if n == 1:
        warnings.warn("gsa with n = 1 aggregates a single sample: a rewrite of one draft, not self-aggregation "
                      "(give it a budget of at least 3 calls, n >= 2)", UserWarning, stacklevel=2)  # fmt: skip
    kind = task_kind(task)
    flags: list[str] = []
    with client.track() as led:
        choices = await _samples(client, question, kind, n, temperature=sample_temperature, max_tokens=max_tokens,
                                 seed=seed, method="gsa", diversity=diversity, system=system)  # fmt: skip
        texts = _usable(choices, flags)
        if not texts:
            raise NoCandidates(f"gsa: all {n} sampled responses were empty")
        shown = texts
        if max_candidate_chars is not None:
            shown = [_cut_middle(t, max_candidate_chars) for t in texts]
            if shown != texts:
                flags.append("cut")
        kwargs = {} if aggregate_prompt is None else {"template": aggregate_prompt}
        prompt = build_gsa_prompt(question, shown, kind.answer_format, **kwargs)
        out = await _single(client, prompt, temperature=aggregate_temperature, max_tokens=max_tokens, seed=seed,
                            method="gsa", role="aggregate")  # fmt: skip
    final = _usable([out], flags)
    result = MethodResult("gsa", final[0] if final else None, None, texts, calls=n + 1, usage=led.totals(), flags=flags)
    return _finish(result, kind)


def _cut_middle(text: str, limit: int) -> str:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 40:
        raise ValueError(f"max_candidate_chars must be an integer >= 40, got {limit!r}")
    if len(text) <= limit:
        return text
    keep = (limit - 5) // 2
    return f"{text[:keep]}\n...\n{text[-keep:]}"


Method = Callable[..., Awaitable[MethodResult]]
METHODS: dict[str, Method] = {
    "greedy": greedy, "sc": self_consistency, "usc": usc, "cfn": choose_from_n, "bon": bon_judge,
    "self-refine": self_refine, "gsa": gsa,
}  # fmt: skip
"""Registry name -> method (the names of the CLI's ``--methods``)."""
