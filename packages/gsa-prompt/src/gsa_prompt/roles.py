"""Readers of the package's prompts and of the answers to them: which step a request is, its candidates, verdicts.

Roles. :func:`detect_role` tells which step a request is from the prompt's own fixed opening sentence (no hidden
tag): ``sample``, ``aggregate`` (GSA), ``select`` (USC, choose-from-N), ``judge``, ``feedback`` or ``refine``.

Candidates. :func:`parse_candidates` recovers the responses that the ``build_*_prompt`` functions of
:mod:`gsa_prompt.prompts` embed (see its "Candidate layout"), exactly and in order; :func:`parse_choice`,
:func:`parse_rating` and :func:`parse_pairwise` read the selector's, the judge's and the pairwise judge's answers.

This module imports the templates and answer formats of :mod:`gsa_prompt.prompts`, which re-exports every name
here (resolved on first use), so ``from gsa_prompt.prompts import parse_candidates`` keeps working.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from gsa_prompt.prompts import _KINDS, _ROLE_TEMPLATES, _TICKS, ANSWER_FORMATS

__all__ = [
    "ROLES",
    "TEMPLATE_ROLES",
    "content_text",
    "detect_answer_format",
    "detect_role",
    "detect_template",
    "parse_candidates",
    "parse_choice",
    "parse_pairwise",
    "parse_rating",
]

ROLES: tuple[str, ...] = ("sample", "aggregate", "select", "judge", "feedback", "refine", "pairwise")
"""The steps :func:`detect_role` tells apart."""

_LABEL = re.compile(r"Response(?: ([0-9]+))?:")
_OPENINGS: dict[str, str] = {kind: t.split("{", 1)[0] for kind, t in zip(_KINDS, _ROLE_TEMPLATES, strict=True)}
"""Template kind -> its fixed opening sentence(s), the text before the first placeholder."""
TEMPLATE_ROLES: dict[str, str] = {"sample": "sample", "gsa": "aggregate", "usc": "select", "choose": "select"}
TEMPLATE_ROLES.update(judge="judge", feedback="feedback", refine="refine", pairwise="pairwise")
"""Template kind (what :func:`detect_template` returns) -> role."""


def parse_pairwise(text: str) -> float | None:
    """The verdict of a pairwise judge as the first response's score: 1.0 (it wins), 0.0 (it loses), 0.5 (tie).

    Returns:
        None when no verdict is stated.

    Example:
        >>> parse_pairwise("The better response is Response 2."), parse_pairwise("It is a tie."), parse_pairwise("?")
        (0.0, 0.5, None)
    """
    if re.search(r"\bit\s+is\s+a\s+tie\b", text, re.IGNORECASE):
        return 0.5
    choice = parse_choice(text, 2)
    return None if choice is None else (1.0 if choice == 0 else 0.0)


def detect_template(messages: str | Sequence[Mapping[str, Any]]) -> str:
    """Which of the package's prompts a request carries, from the fixed opening sentence of its last user message.

    Args:
        messages: chat messages (``{"role", "content"}`` dicts; content a string or a list of text parts),
            or a prompt string.

    Returns:
        ``"gsa"``, ``"usc"``, ``"choose"``, ``"judge"``, ``"feedback"``, ``"refine"``, or ``"sample"`` for anything
        else (a custom template that keeps the opening sentence is still recognised).

    Example:
        >>> detect_template(build_usc_prompt("What is 2 + 3?", ["5"]))
        'usc'
    """
    text = _last_user_text(messages).lstrip()
    for kind, opening in _OPENINGS.items():
        if text.startswith(opening):
            return kind
    return "sample"


def detect_role(messages: str | Sequence[Mapping[str, Any]]) -> str:
    """The step a request is: one of :data:`ROLES`, read from the prompt text itself (see :func:`detect_template`).

    Example:
        >>> detect_role([{"role": "user", "content": "What is 2 + 3?"}])
        'sample'
    """
    return TEMPLATE_ROLES[detect_template(messages)]


def parse_candidates(prompt_text: str) -> list[str]:
    """The responses embedded in a prompt by the ``build_*_prompt`` functions, exactly and in order.

    Args:
        prompt_text: a prompt string (or the content of its user message).

    Returns:
        The responses (one for judge, feedback and refine prompts); ``[]`` for a prompt without any.

    Raises:
        ValueError: numbered responses out of sequence (the prompt was edited).

    Example:
        >>> parse_candidates(build_usc_prompt("q?", ["a\\nResponse 2:\\n```", ""]))
        ['a\\nResponse 2:\\n```', '']
    """
    out: list[str] = []
    for label, body in _blocks(prompt_text)[0]:
        match = _LABEL.fullmatch(label)
        if match is None:
            continue
        if match.group(1) is not None and int(match.group(1)) != len(out) + 1:
            raise ValueError(f"prompt_text numbers a response {match.group(1)} after {len(out)} responses")
        out.append(body)
    return out


def detect_answer_format(prompt_text: str) -> str:
    """The key in :data:`~gsa_prompt.prompts.ANSWER_FORMATS` whose instruction the prompt carries (outside embedded responses).

    Returns:
        ``"math"``, ``"gsm8k"``, ``"answer_is"``, ``"multiple_choice"``, ``"code"``, or ``"open"`` if none.

    Example:
        >>> detect_answer_format(build_gsa_prompt("What is 2 + 3?", ["\\\\boxed{5}"], GSM8K_HASHES))
        'gsm8k'
    """
    outside = _blocks(prompt_text)[1]
    for kind, instruction in ANSWER_FORMATS.items():
        if instruction and instruction in outside:
            return kind
    return "open"


def parse_choice(text: str, n: int) -> int | None:
    """The 0-based index of the response a selection answer names ("... response is Response X", 1-based X).

    Args:
        text: the selector's answer, e.g. "The most consistent response is Response 2." (or just "Response 2").
        n: how many responses the prompt held (``>= 1``).

    Returns:
        ``X - 1``, or None if no choice is stated or ``X`` is outside ``1..n``.

    Raises:
        ValueError: ``n < 1``.

    Example:
        >>> parse_choice("The best response is **Response 3**, because ...", 3), parse_choice("Response 4", 3)
        (2, None)
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    match = _CHOICE_RE.search(text) or _BARE_CHOICE_RE.fullmatch(text)
    if match is None:
        return None
    index = int(match.group(1))
    return index - 1 if 1 <= index <= n else None


def parse_rating(text: str) -> float | None:
    """The 0-10 score of a judge answer: the last "Rating: N" (or the whole answer if it is a bare number).

    Returns:
        ``N`` as a float, or None if absent or outside ``[0, 10]``.

    Example:
        >>> parse_rating("Correct and clear. Rating: 9"), parse_rating("Rating: 11"), parse_rating("great")
        (9.0, None, None)
    """
    found = _RATING_RE.findall(text)
    if found:
        value = float(found[-1])
    else:
        bare = _BARE_RATING_RE.fullmatch(text)
        if bare is None:
            return None
        value = float(bare.group(1))
    return value if 0.0 <= value <= 10.0 else None


_CHOICE_RE = re.compile(r"response\s+is\s*:?\s*[*\"'`(\[]*\s*response\s*#?\s*([0-9]+)", re.IGNORECASE)
_BARE_CHOICE_RE = re.compile(r"\s*[*\"'`(\[]*\s*(?:response\s*#?\s*)?([0-9]+)\s*[*\"'`)\].]*\s*", re.IGNORECASE)
_RATING_RE = re.compile(r"rating\s*[:=]\s*[*\"'\[]*\s*(-?[0-9]+(?:\.[0-9]+)?)", re.IGNORECASE)
_BARE_RATING_RE = re.compile(r"\s*(-?[0-9]+(?:\.[0-9]+)?)\s*(?:/\s*10)?\s*\.?\s*")


def _blocks(text: str) -> tuple[list[tuple[str, str]], str]:
    """``([(label, body), ...], text outside the blocks)``; no blocks if ``text`` does not have the layout."""
    longest = max((len(m.group()) for m in _TICKS.finditer(text)), default=0)
    if longest < 3:
        return [], text
    parts = text.split("`" * longest)
    if len(parts) % 2 == 0:
        return [], text
    blocks: list[tuple[str, str]] = []
    for i in range(1, len(parts), 2):
        before, body, after = parts[i - 1], parts[i], parts[i + 1]
        if not (before.endswith("\n") and len(body) >= 2 and body[0] == body[-1] == "\n"):
            return [], text
        if after and not after.startswith("\n"):
            return [], text
        blocks.append((before[:-1].rsplit("\n", 1)[-1], body[1:-1]))
    return blocks, "".join(parts[0::2])


def _last_user_text(messages: str | Sequence[Mapping[str, Any]]) -> str:
    if isinstance(messages, str):
        return messages
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def content_text(content: Any) -> str:
    """The text of a chat message's ``content``: a string, a list of ``{"type": "text", "text": ...}`` parts, or None.

    Example:
        >>> content_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]), content_text(None)
        ('ab', '')
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)
