"""Every prompt template and default of GSA and its baselines, with the source of each, and their builders.

The paper's own prompts (arXiv:2503.04104, appendix) were not available when this module was written, so each
template below is the package's or a named relative's, and :data:`PROMPTS_SOURCE` says which. A test hashes every
template and default (:func:`prompts_checksum`): whoever edits one must update its ``SOURCE`` note and the hash.

Candidate layout. Every response embedded in a prompt sits under a label line (``Response 1:``, ``Response:``)
inside a Markdown code fence of backticks, one longer than the longest backtick run anywhere else in the prompt
(question, responses, answer format). So the fence occurs nowhere but around the blocks, and
:func:`~gsa_prompt.roles.parse_candidates` recovers the responses exactly, whatever they contain (``"Response 2:"``
text, fences, nothing). Responses are numbered from 1 in every template, and :func:`~gsa_prompt.roles.parse_choice`
maps ``Response X`` back to the 0-based index ``X - 1``.

The readers of these prompts and of the answers to them (:func:`~gsa_prompt.roles.detect_role`,
:func:`~gsa_prompt.roles.parse_candidates`, :func:`~gsa_prompt.roles.parse_choice`, ...) live in
:mod:`gsa_prompt.roles` and are re-exported here under their old names. They are imported on first use (PEP 562),
because :mod:`gsa_prompt.roles` imports this module's templates: the modules form no import cycle.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gsa_prompt.roles import (
        ROLES,
        TEMPLATE_ROLES,
        content_text,
        detect_answer_format,
        detect_role,
        detect_template,
        parse_candidates,
        parse_choice,
        parse_pairwise,
        parse_rating,
    )

__all__ = [
    "ANSWER_FORMATS", "ANSWER_IS", "CHOOSE_TEMPLATE", "CODE_BLOCK", "DEFAULTS", "FEEDBACK_TEMPLATE", "GSA_TEMPLATE",
    "GSM8K_HASHES", "JUDGE_TEMPLATE", "MATH_BOXED", "MULTIPLE_CHOICE", "OPEN_ENDED", "PAIRWISE_TEMPLATE",
    "PROMPTS_SOURCE", "REFINE_TEMPLATE", "ROLES", "SAMPLE_VARIANTS", "TEMPLATES", "TEMPLATE_ROLES", "USC_TEMPLATE",
    "Defaults", "build_choose_prompt", "build_feedback_prompt", "build_gsa_prompt", "build_judge_prompt",
    "build_pairwise_prompt", "build_refine_prompt", "build_sample_messages", "build_usc_prompt", "content_text",
    "detect_answer_format", "detect_role", "detect_template", "parse_candidates", "parse_choice", "parse_pairwise",
    "parse_rating", "prompts_checksum",
]  # fmt: skip


# Answer-format instructions, appended to the question of a sample call and to the aggregation prompt.
MATH_BOXED = "Please reason step by step, and put your final answer within \\boxed{}."
GSM8K_HASHES = (
    'Solve the problem step by step, then give the final numeric answer on the last line in the form "#### N".'
)
ANSWER_IS = 'Think step by step, then end your response with "The answer is N." where N is the final answer.'
MULTIPLE_CHOICE = (
    'Think step by step, then end your response with a line of the form "Answer: X", '
    "where X is the letter of the correct option."
)
CODE_BLOCK = "Write the complete solution as Python code in a single fenced code block (```python ... ```)."
OPEN_ENDED = ""
ANSWER_FORMATS: dict[str, str] = {
    "math": MATH_BOXED,
    "gsm8k": GSM8K_HASHES,
    "answer_is": ANSWER_IS,
    "multiple_choice": MULTIPLE_CHOICE,
    "code": CODE_BLOCK,
    "open": OPEN_ENDED,
}
"""Task kind -> answer-format instruction (``open``: none)."""

SAMPLE_VARIANTS: tuple[str, ...] = (
    "",
    "Solve the following problem carefully, checking each step before you move on.\n\n",
    "Approach the following problem from first principles and explain your reasoning.\n\n",
)
"""Prefixes of the sample prompt for ``diversity="prompts"`` (variant 0 is the plain question)."""

GSA_TEMPLATE = (
    "You are given a question and several responses to it, written independently. "
    "Use them as context: combine their useful ideas and write a new, complete and correct response to the question. "
    "Do not just pick one of them; where they disagree, work out which reasoning is right, "
    "and if all of them are wrong, solve the question another way.\n\n"
    "Question:\n{question}\n\n"
    "{responses}\n\n"
    "Now write your own response to the question. {answer_format}"
)
USC_TEMPLATE = (
    "I have generated the following responses to the question: {question}\n\n"
    "{responses}\n\n"
    "Evaluate these responses.\n"
    "Select the most consistent response based on majority consensus.\n"
    'Start your answer with "The most consistent response is Response X" (without quotes).'
)
CHOOSE_TEMPLATE = (
    "You are given a question and several candidate responses to it. "
    "Evaluate them and select the best response: the one most likely to be correct and complete.\n\n"
    "Question:\n{question}\n\n"
    "{responses}\n\n"
    'Start your answer with "The best response is Response X" (without quotes), '
    "where X is the number of the response you select, then briefly explain why."
)
JUDGE_TEMPLATE = (
    "Rate the following response to the question on a scale of 0 to 10, where 0 is completely wrong or unhelpful "
    "and 10 is fully correct and excellent. Judge correctness first, then completeness and clarity.\n\n"
    "Question:\n{question}\n\n"
    "{response}\n\n"
    'End your answer with "Rating: N" (without quotes), where N is an integer from 0 to 10.'
)
FEEDBACK_TEMPLATE = (
    "Review the following response to the question. Check every step for mistakes, and say what is wrong or "
    "missing and how to fix it. Do not write a corrected response.\n\n"
    "Question:\n{question}\n\n"
    "{response}\n\n"
    "Give your feedback as a short list of concrete points. If the response is fully correct, say so."
)
REFINE_TEMPLATE = (
    "Improve the following response to the question using the feedback on it. "
    "Write the complete improved response, not a list of changes.\n\n"
    "Question:\n{question}\n\n"
    "{response}\n\n"
    "{feedback}\n\n"
    "Now write the improved response. {answer_format}"
)

PAIRWISE_TEMPLATE = (
    "Compare two responses to the same question and decide which one is better: more helpful, correct, "
    "complete and clear. Ignore their order and their length as such.\n\n"
    "Question:\n{question}\n\n"
    "{responses}\n\n"
    'Start your answer with "The better response is Response X" (without quotes), where X is 1 or 2, '
    'or "It is a tie" if neither is better.'
)

_KINDS = ("gsa", "usc", "choose", "judge", "feedback", "refine", "pairwise")
_ROLE_TEMPLATES = (
    GSA_TEMPLATE, USC_TEMPLATE, CHOOSE_TEMPLATE, JUDGE_TEMPLATE, FEEDBACK_TEMPLATE, REFINE_TEMPLATE, PAIRWISE_TEMPLATE,
)  # fmt: skip
_FORMAT_NAMES = ("MATH_BOXED", "GSM8K_HASHES", "ANSWER_IS", "MULTIPLE_CHOICE", "CODE_BLOCK", "OPEN_ENDED")
TEMPLATES: dict[str, str] = {
    **{f"{kind.upper()}_TEMPLATE": t for kind, t in zip(_KINDS, _ROLE_TEMPLATES, strict=True)},
    **{name: ANSWER_FORMATS[kind] for name, kind in zip(_FORMAT_NAMES, ANSWER_FORMATS, strict=True)},
    **{f"SAMPLE_VARIANTS[{i}]": v for i, v in enumerate(SAMPLE_VARIANTS)},
}
"""Constant name -> text of every template, answer format and sample variant (what the checksum covers)."""


@dataclasses.dataclass(frozen=True)
class Defaults:
    """Default hyper-parameters of every method; the source of each is ``PROMPTS_SOURCE["Defaults.<field>"]``."""

    n: int = 3
    """GSA: responses sampled before aggregating (3 + 1 aggregation call = the paper's 4-call budget)."""
    budget_calls: int = 4
    """Calls per question that the baselines are matched at."""
    sample_temperature: float = 0.7
    """``T_s``: temperature of the diverse samples."""
    top_p: float = 1.0
    """Nucleus mass of every call."""
    aggregate_temperature: float = 0.0
    """``T_a``: temperature of the aggregation call (greedy)."""
    max_tokens: int = 2048
    """Completion tokens per sample, aggregation, refine call."""
    select_temperature: float = 0.0
    """Temperature of the USC and choose-from-N selection call."""
    judge_temperature: float = 0.1
    """Temperature of each pointwise BoN judge call."""
    judge_max_tokens: int = 256
    """Completion tokens of each pointwise BoN judge call."""
    feedback_temperature: float = 0.0
    """Temperature of the self-refine feedback call."""
    refine_temperature: float = 0.0
    """Temperature of the self-refine refine call."""
    refine_rounds: int = 1
    """Self-refine feedback + refine rounds (1 + 2 r calls; r = 1 at a 4-call budget)."""
    unparsable_rating: float = 0.0
    """Score given to a judge answer with no parsable rating."""


DEFAULTS = Defaults()
"""The package's defaults (see :class:`Defaults`)."""

PROMPTS_SOURCE: dict[str, str] = {
    "GSA_TEMPLATE": "ours: the spec's §1.3 placeholder, with RSA's 'if all are incorrect, try another strategy' "
    "(HyperPotatoNeo/RSA aggregate_prompt) and MoA's 'do not simply replicate'; the paper's prompt was not read.",
    "USC_TEMPLATE": "USC (Chen et al. 2023), wording as copied in several repositories; numbering 1-based "
    "(copies disagree on 0- vs 1-based) and responses fenced (ours) so they parse back exactly.",
    "CHOOSE_TEMPLATE": "ours: USC's answer sentence with 'best' for 'most consistent' (choose-from-N, the paper's "
    "listwise selection baseline [secondary]); cf. optillm genselect 'BEST CANDIDATE: [n]'.",
    "JUDGE_TEMPLATE": "ours after optillm bon (pointwise 0-10 rating of each candidate); answer line 'Rating: N' "
    "is ours (optillm asks for a bare number).",
    "PAIRWISE_TEMPLATE": "ours after MT-Bench / AlpacaEval pairwise judging (Zheng et al. 2023): two responses, "
    "a verdict or a tie; the caller swaps positions (spec pitfall 13).",
    "FEEDBACK_TEMPLATE": "ours after Self-Refine (Madaan et al. 2023): feedback step, no rewrite.",
    "REFINE_TEMPLATE": "ours after Self-Refine (Madaan et al. 2023): refine step from response + feedback.",
    "MATH_BOXED": "Qwen2.5-Math / DeepSeek-Math chain-of-thought prompt, verbatim as recalled [recalled].",
    "GSM8K_HASHES": "ours: GSM8K reference solutions end with '#### N' (Cobbe et al. 2021).",
    "ANSWER_IS": "ours: chain-of-thought exemplars end with 'The answer is N.' (Wei et al. 2022).",
    "MULTIPLE_CHOICE": "ours after common MMLU/GPQA chain-of-thought prompts ending in 'Answer: X'.",
    "CODE_BLOCK": "ours (MBPP/EvalPlus-style fenced Python answer).",
    "OPEN_ENDED": "ours: no answer-format instruction for open-ended chat.",
    "SAMPLE_VARIANTS[0]": "ours: the plain question.",
    "SAMPLE_VARIANTS[1]": "guess: the paper reports prompt-template diversity [secondary]; its templates not read.",
    "SAMPLE_VARIANTS[2]": "guess: the paper reports prompt-template diversity [secondary]; its templates not read.",
    "Defaults.n": "paper [secondary]: 3 samples + 1 aggregation = 4-call budget.",
    "Defaults.budget_calls": "paper [secondary]: baselines matched at 4 calls.",
    "Defaults.sample_temperature": "guess: the paper says moderate T helps; exact T_s not read.",
    "Defaults.top_p": "guess: no nucleus truncation.",
    "Defaults.aggregate_temperature": "guess: greedy aggregation.",
    "Defaults.max_tokens": "guess: room for math/code chains of thought; MoA uses 2048.",
    "Defaults.select_temperature": "guess: greedy selection (optillm genselect uses 0.3).",
    "Defaults.judge_temperature": "optillm bon (temperature 0.1).",
    "Defaults.judge_max_tokens": "optillm bon (max_tokens 256).",
    "Defaults.feedback_temperature": "guess: greedy feedback.",
    "Defaults.refine_temperature": "guess: greedy refine.",
    "Defaults.refine_rounds": "guess: 1 + 2 r calls with r = 1 fits the 4-call budget.",
    "Defaults.unparsable_rating": "optillm bon (an unparsable rating scores 0).",
}
"""Template or default name -> where its text or value comes from ('paper', a named method, 'ours', 'guess')."""

_TICKS = re.compile(r"`+")


def prompts_checksum() -> str:
    """SHA-256 of every template, answer format, sample variant and default, for the edit-guard test.

    Returns:
        64 hex digits; any edit of a prompt or default changes it.

    Example:
        >>> len(prompts_checksum())
        64
    """
    payload = {"templates": TEMPLATES, "defaults": dataclasses.asdict(DEFAULTS)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def build_sample_messages(
    question: str, answer_format: str = OPEN_ENDED, system: str | None = None, *, variant: int = 0
) -> list[dict[str, str]]:
    """Chat messages of one independent sample ``y_i ~ π(· | x)``: the question, then the answer format.

    Args:
        question: the question ``x`` (non-empty).
        answer_format: an answer-format instruction such as :data:`MATH_BOXED` ("" for none).
        system: an optional system message, sent first.
        variant: index into :data:`SAMPLE_VARIANTS` (``diversity="prompts"``); 0 is the plain question.

    Returns:
        ``[{"role": "system", ...}?, {"role": "user", "content": ...}]``.

    Raises:
        ValueError: empty question, or ``variant`` out of range.

    Example:
        >>> build_sample_messages("What is 2 + 3?", ANSWER_IS)[0]["content"].splitlines()[0]
        'What is 2 + 3?'
    """
    text = _check_question(question)
    if not 0 <= variant < len(SAMPLE_VARIANTS):
        raise ValueError(f"variant must be in [0, {len(SAMPLE_VARIANTS)}), got {variant}")
    content = SAMPLE_VARIANTS[variant] + text + (f"\n\n{answer_format.strip()}" if answer_format.strip() else "")
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": content}]


def build_gsa_prompt(
    question: str, responses: Sequence[str], answer_format: str = OPEN_ENDED, *, template: str = GSA_TEMPLATE
) -> str:
    """The aggregation prompt ``A(x, y_1..y_n)``: question, all responses, "write a new, improved response".

    Args:
        question: the question ``x``.
        responses: the sampled responses ``y_1..y_n`` (at least one), kept in order, numbered from 1.
        answer_format: the task's answer-format instruction, placed last.
        template: a ``str.format`` template with ``{question}``, ``{responses}`` and ``{answer_format}``.

    Returns:
        The user-message text; :func:`~gsa_prompt.roles.parse_candidates` returns ``responses`` from it.

    Raises:
        ValueError: empty question, no responses, a response that is not a ``str``, or a bad template.

    Example:
        >>> parse_candidates(build_gsa_prompt("What is 2 + 3?", ["5", "6"], ANSWER_IS))
        ['5', '6']
    """
    return _build(template, "GSA", question, responses, answer_format=answer_format)


def build_usc_prompt(question: str, responses: Sequence[str]) -> str:
    """The universal self-consistency prompt (Chen et al. 2023): pick the most consistent response.

    Args:
        question: the question ``x``.
        responses: the sampled responses (at least one), numbered ``Response 1`` .. ``Response n``.

    Returns:
        The user-message text; the model should answer "The most consistent response is Response X".

    Raises:
        ValueError: empty question, no responses or a response that is not a ``str``.

    Example:
        >>> build_usc_prompt("What is 2 + 3?", ["5"]).startswith("I have generated the following responses")
        True
    """
    return _build(USC_TEMPLATE, "USC", question, responses)


def build_choose_prompt(question: str, responses: Sequence[str]) -> str:
    """The choose-from-N prompt: pick the best (most likely correct) of the responses.

    Args:
        question: the question ``x``.
        responses: the sampled responses (at least one), numbered ``Response 1`` .. ``Response n``.

    Returns:
        The user-message text; the model should answer "The best response is Response X".

    Raises:
        ValueError: empty question, no responses or a response that is not a ``str``.

    Example:
        >>> detect_role(build_choose_prompt("What is 2 + 3?", ["5", "6"]))
        'select'
    """
    return _build(CHOOSE_TEMPLATE, "choose", question, responses)


def build_judge_prompt(question: str, response: str) -> str:
    """The pointwise BoN judge prompt (optillm ``bon``): rate one response 0-10, answer ending "Rating: N".

    Args:
        question: the question ``x``.
        response: the candidate ``y_i`` to rate (any string).

    Returns:
        The user-message text; :func:`~gsa_prompt.roles.parse_rating` reads the answer,
        :func:`~gsa_prompt.roles.parse_candidates` returns ``[response]``.

    Raises:
        ValueError: empty question or a response that is not a ``str``.

    Example:
        >>> parse_candidates(build_judge_prompt("What is 2 + 3?", "5"))
        ['5']
    """
    return _build(JUDGE_TEMPLATE, "judge", question, [response], single=True)


def build_feedback_prompt(question: str, response: str) -> str:
    """The self-refine feedback prompt ``F(x, y_t)``: list the mistakes of one response, no rewrite.

    Args:
        question: the question ``x``.
        response: the current response ``y_t``.

    Returns:
        The user-message text; the model's answer is the feedback ``f_t``.

    Raises:
        ValueError: empty question or a response that is not a ``str``.

    Example:
        >>> detect_role(build_feedback_prompt("What is 2 + 3?", "6"))
        'feedback'
    """
    return _build(FEEDBACK_TEMPLATE, "feedback", question, [response], single=True)


def build_refine_prompt(question: str, response: str, feedback: str, answer_format: str = OPEN_ENDED) -> str:
    """The self-refine refine prompt ``R(x, y_t, f_t)``: rewrite the response using the feedback.

    Args:
        question: the question ``x``.
        response: the current response ``y_t``.
        feedback: the feedback ``f_t`` on it.
        answer_format: the task's answer-format instruction, placed last.

    Returns:
        The user-message text; :func:`~gsa_prompt.roles.parse_candidates` returns ``[response]``.

    Raises:
        ValueError: empty question, or a response or feedback that is not a ``str``.

    Example:
        >>> parse_candidates(build_refine_prompt("What is 2 + 3?", "6", "2 + 3 is 5, not 6."))
        ['6']
    """
    if not isinstance(feedback, str):
        raise ValueError(f"feedback must be a str, got {type(feedback).__name__}")
    return _build(
        REFINE_TEMPLATE, "refine", question, [response], answer_format=answer_format, feedback=feedback, single=True
    )


def build_pairwise_prompt(question: str, first: str, second: str) -> str:
    """The pairwise judge prompt: which of two responses is better ("Response 1", "Response 2" or a tie).

    Args:
        question: the question.
        first, second: the two responses, shown as ``Response 1`` and ``Response 2``.

    Returns:
        The user-message text; :func:`~gsa_prompt.roles.parse_pairwise` reads the verdict.

    Raises:
        ValueError: empty question or a response that is not a ``str``.

    Example:
        >>> parse_candidates(build_pairwise_prompt("Tips for sleep?", "Go to bed early.", "Drink coffee."))
        ['Go to bed early.', 'Drink coffee.']
    """
    return _build(PAIRWISE_TEMPLATE, "pairwise", question, [first, second])


def _check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question must be a non-empty string, got {question!r}")
    return question.strip()


def _fence(*texts: str) -> str:
    """Backticks, one more than the longest run in ``texts`` (at least three)."""
    longest = max((len(m.group()) for t in texts for m in _TICKS.finditer(t)), default=0)
    return "`" * max(3, longest + 1)


def _build(
    template: str,
    what: str,
    question: str,
    responses: Sequence[str],
    *,
    answer_format: str = OPEN_ENDED,
    feedback: str | None = None,
    single: bool = False,
) -> str:
    q = _check_question(question)
    if isinstance(responses, str) or len(responses) == 0:
        raise ValueError(f"responses must be a non-empty sequence of strings, got {responses!r}")
    for i, r in enumerate(responses):
        if not isinstance(r, str):
            raise ValueError(f"{'response' if single else f'responses[{i}]'} must be a str, got {type(r).__name__}")
    fence = _fence(template, q, answer_format, feedback or "", *responses)
    labels = ["Response:"] if single else [f"Response {i}:" for i in range(1, len(responses) + 1)]
    blocks = "\n\n".join(f"{label}\n{fence}\n{r}\n{fence}" for label, r in zip(labels, responses, strict=True))
    fields = {"question": q, "answer_format": answer_format.strip()}
    fields["response" if single else "responses"] = blocks
    if feedback is not None:
        fields["feedback"] = f"Feedback:\n{fence}\n{feedback}\n{fence}"
    try:
        return template.format(**fields).rstrip()
    except (KeyError, IndexError, ValueError) as err:
        raise ValueError(f"template of the {what} prompt is not a valid str.format template: {err!r}") from err


_FROM_ROLES = frozenset((
    "ROLES", "TEMPLATE_ROLES", "content_text", "detect_answer_format", "detect_role", "detect_template",
    "parse_candidates", "parse_choice", "parse_pairwise", "parse_rating",
))  # fmt: skip
"""Names re-exported from :mod:`gsa_prompt.roles`, resolved on first use by :func:`__getattr__`."""


def __getattr__(name: str) -> Any:
    if name not in _FROM_ROLES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from gsa_prompt import roles

    value = getattr(roles, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FROM_ROLES)
