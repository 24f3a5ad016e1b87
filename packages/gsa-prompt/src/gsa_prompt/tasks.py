"""Task kinds: the answer format a method asks for and how a final answer is read back and compared.

Every method takes a task kind (a name or a :class:`TaskKind`), which fixes the answer-format
instruction appended to the sample and aggregation prompts (:data:`gsa_prompt.prompts.ANSWER_FORMATS`),
the extractor ``a(y)`` that self-consistency votes over and the harness scores with, and the
equivalence of two extracted answers. ``code`` and ``open`` have no extractor: self-consistency is
undefined for them (GSA, USC, choose-from-N, BoN-judge and self-refine still apply), and the harness
scores them by running tests or by a judge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from gsa_prompt.extract import extract_choice, extract_gsm8k, extract_math, math_equal
from gsa_prompt.prompts import ANSWER_FORMATS

__all__ = ["TASK_KINDS", "TaskKind", "task_kind"]


def _same_letter(a: str, b: str) -> bool:
    return a.strip().upper() == b.strip().upper()


@dataclasses.dataclass(frozen=True)
class TaskKind:
    """How answers of one kind of task are asked for, extracted and compared."""

    name: str
    answer_format: str
    """the instruction appended to the question (and to the aggregation prompt); "" for none."""
    extract: Callable[[str], str | None] | None
    """``a(y)``: the final answer of a response, or None when none is found; None: no extractable answer."""
    equal: Callable[[str, str], bool]
    """equivalence of two extracted answers."""

    def answer(self, text: str | None) -> str | None:
        """``a(text)``, or None for an empty text or a kind without an extractor.

        Example:
            >>> task_kind("gsm8k").answer("6 * 7 = 42\\n#### 42")
            '42'
        """
        if not text or self.extract is None:
            return None
        return self.extract(text)


TASK_KINDS: dict[str, TaskKind] = {
    "math": TaskKind("math", ANSWER_FORMATS["math"], extract_math, math_equal),
    "gsm8k": TaskKind("gsm8k", ANSWER_FORMATS["gsm8k"], extract_gsm8k, math_equal),
    "answer_is": TaskKind("answer_is", ANSWER_FORMATS["answer_is"], extract_gsm8k, math_equal),
    "multiple_choice": TaskKind("multiple_choice", ANSWER_FORMATS["multiple_choice"], extract_choice, _same_letter),
    "code": TaskKind("code", ANSWER_FORMATS["code"], None, lambda a, b: a == b),
    "open": TaskKind("open", ANSWER_FORMATS["open"], None, lambda a, b: a == b),
}
"""The built-in kinds: MATH-style (``\\boxed``), GSM8K (``#### N``), "The answer is N", multiple choice
("Answer: X"), code (a fenced block, scored by tests) and open-ended (scored by a judge)."""


def task_kind(kind: str | TaskKind) -> TaskKind:
    """The :class:`TaskKind` named ``kind`` (or ``kind`` itself).

    Raises:
        ValueError: an unknown name.

    Example:
        >>> task_kind("multiple_choice").equal("b", "B")
        True
    """
    if isinstance(kind, TaskKind):
        return kind
    if kind not in TASK_KINDS:
        raise ValueError(f"task must be one of {', '.join(TASK_KINDS)} or a TaskKind, got {kind!r}")
    return TASK_KINDS[kind]
