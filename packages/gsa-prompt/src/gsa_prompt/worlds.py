"""Toy question worlds and scripted answer policies, for the fake server, the tests and the benchmarks.

A world generates questions (:meth:`World.questions`), computes the correct answer of a question from its text
alone (:meth:`World.reference`, so a server needs no shared state), draws a sampled answer (correct with
probability ``p``, else one of ``m`` distractors, uniformly) and writes a response around an answer *key*
(:meth:`World.render`). The scripted policies that map the keys of the candidates found in an aggregation or
selection prompt to the key of the output, and the exact expected accuracy of each method under them, live in
:mod:`gsa_prompt.policies` and are re-exported here.

Toy-world accuracies are plumbing checks of the harness, not evidence for GSA.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import itertools
import json
import random
import re

from gsa_prompt.policies import (
    AGGREGATE_TABLE,
    AGGREGATORS,
    SELECT_TABLE,
    SELECTORS,
    Policy,
    aggregate_key,
    majority_key,
    pass_at_n,
    refine_accuracy,
    refine_key,
    resolve_policy,
    sc_accuracy,
    select_index,
    table_accuracy,
    table_probability,
)

__all__ = [
    "AGGREGATE_TABLE", "AGGREGATORS", "SELECTORS", "SELECT_TABLE", "WORLDS", "ArithmeticWorld", "ChatWorld", "CodeWorld",
    "Item", "MultipleChoiceWorld", "Policy", "World", "aggregate_key", "majority_key", "pass_at_n", "refine_accuracy",
    "refine_key", "resolve_policy", "sc_accuracy", "select_index", "stable_rng", "table_accuracy", "table_probability",
]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Item:
    """One question of a world."""

    id: str
    """Stable identifier, ``"<world>-<seed>-<index>"``."""
    question: str
    """The question text."""
    answer: str
    """The reference answer (a number, a letter, the correct code; "" for chat)."""
    kind: str
    """Key of :data:`gsa_prompt.prompts.ANSWER_FORMATS` that suits the question."""
    tests: tuple[str, ...] = ()
    """Assert statements for code questions."""


def stable_rng(*parts: object) -> random.Random:
    """A ``random.Random`` seeded by a SHA-256 of ``parts`` (JSON), the same in every process.

    Example:
        >>> stable_rng("m", 1).random() == stable_rng("m", 1).random() != stable_rng("m", 2).random()
        True
    """
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class World(abc.ABC):
    """Base class: a question family with a per-sample accuracy ``p`` and ``m`` uniform distractors.

    Args:
        p: probability that a sampled response is correct, in ``[0, 1]``.
        m: number of distractors (wrong answers) a wrong response picks from uniformly, ``>= 1``.

    Raises:
        ValueError: ``p`` or ``m`` out of range.
    """

    name = "world"
    kind = "answer_is"

    def __init__(self, p: float = 0.6, m: int = 6) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if m < 1:
            raise ValueError(f"m must be >= 1, got {m}")
        self.p, self.m = float(p), int(m)

    def questions(self, k: int, seed: int = 0) -> list[Item]:
        """``k`` questions, the same for the same ``seed``.

        Raises:
            ValueError: ``k < 0``.
        """
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        rng = random.Random(seed)
        return [self._item(rng, f"{self.name}-{seed}-{i}") for i in range(k)]

    @abc.abstractmethod
    def reference(self, text: str) -> str | None:
        """The correct key of the question found in ``text`` (a prompt), or None if ``text`` holds none."""

    @abc.abstractmethod
    def distractors(self, text: str) -> list[str]:
        """The ``m`` wrong keys of the question in ``text`` ([] if none)."""

    @abc.abstractmethod
    def key_of(self, text: str, response: str) -> str | None:
        """The answer key of ``response`` to the question in ``text``, or None if it states none."""

    @abc.abstractmethod
    def render(self, text: str, key: str, fmt: str, rng: random.Random) -> str:
        """A response to the question in ``text`` whose answer is ``key``, in answer format ``fmt``."""

    @abc.abstractmethod
    def _item(self, rng: random.Random, item_id: str) -> Item:
        """A new question of this world (``rng`` draws it; ``item_id`` names it)."""

    def good_keys(self, text: str) -> list[str]:
        """Every correct key (one for all worlds but chat)."""
        ref = self.reference(text)
        return [] if ref is None else [ref]

    def is_correct(self, text: str, key: str | None) -> bool:
        """Whether ``key`` answers the question in ``text`` correctly."""
        return key is not None and key in self.good_keys(text)

    def draw(self, text: str, rng: random.Random) -> str | None:
        """A sampled key: a correct one with probability ``p``, else a distractor; None if ``text`` has no question."""
        good, bad = self.good_keys(text), self.distractors(text)
        if not good:
            return None
        return rng.choice(good) if rng.random() < self.p else rng.choice(bad)

    def rating(self, text: str, response: str) -> float:
        """The judge's 0-10 score of ``response``: :meth:`key_rating` of its key."""
        return self.key_rating(text, self.key_of(text, response))

    def key_rating(self, text: str, key: str | None) -> float:
        """The judge's 0-10 score of a response whose answer is ``key``: 9 if correct, else 3."""
        return 9.0 if self.is_correct(text, key) else 3.0

    def stated_keys(self, text: str) -> list[str]:
        """Every answer to the question in ``text`` that ``text`` itself states, in order of position.

        What the fake server's ``foreign="read"`` mode reads out of a prompt that is none of the package's
        (another library's aggregation, critique or rating prompt). The base class reads none, so such prompts
        are answered as plain questions in worlds that do not override this.
        """
        return []

    def feedback(self, text: str, response: str) -> str:
        """A feedback text on ``response``."""
        if self.is_correct(text, self.key_of(text, response)):
            return "The reasoning and the final answer are correct; no change is needed."
        return "The final answer is wrong: recheck each step of the computation."


_SUM = re.compile(r"What is (-?[0-9]+) \+ (-?[0-9]+)\?")
_NUMBER_ANSWERS = (
    re.compile(r"\\boxed\{(-?[0-9]+)\}"),
    re.compile(r"####\s*(-?[0-9]+)"),
    re.compile(r"answer is\s*\$?(-?[0-9]+)", re.IGNORECASE),
    re.compile(r"Answer:\s*(-?[0-9]+)"),
)
_OPENERS = ("We need {a} + {b}.", "Let me add {a} and {b}.", "Compute {a} + {b} step by step.")


def _offsets(m: int) -> list[int]:
    return [sign * (i // 2 + 1) for i, sign in zip(range(m), itertools.cycle((1, -1)))]


class ArithmeticWorld(World):
    """Questions "What is a + b?"; responses are a short chain of thought ending in the prompt's answer format.

    Distractors are ``a + b ± 1, ± 2, ...`` (the first ``m``).

    Example:
        >>> world = ArithmeticWorld(p=0.6, m=6)
        >>> item = world.questions(1, seed=0)[0]
        >>> world.reference(item.question) == item.answer, len(world.distractors(item.question))
        (True, 6)
    """

    name = "arithmetic"

    def _item(self, rng: random.Random, item_id: str) -> Item:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        return Item(item_id, f"What is {a} + {b}?", str(a + b), self.kind)

    def reference(self, text: str) -> str | None:
        match = _SUM.search(text)
        return None if match is None else str(int(match.group(1)) + int(match.group(2)))

    def distractors(self, text: str) -> list[str]:
        ref = self.reference(text)
        return [] if ref is None else [str(int(ref) + o) for o in _offsets(self.m)]

    def key_of(self, text: str, response: str) -> str | None:
        found = [(m.end(), m.group(1)) for pattern in _NUMBER_ANSWERS for m in pattern.finditer(response)]
        return max(found)[1] if found else None

    def stated_keys(self, text: str) -> list[str]:
        """Every final answer stated in ``text`` ("The answer is N", ``\\boxed{N}``, "#### N", "Answer: N"), in order.

        The answer-format instructions name no number ("The answer is N."), so they state no answer.

        Example:
            >>> ArithmeticWorld().stated_keys("What is 2 + 3? A: #### 5. B: The answer is 6. C: \\\\boxed{5}")
            ['5', '6', '5']
        """
        if self.reference(text) is None:
            return []
        found = sorted((m.start(), m.group(1)) for pattern in _NUMBER_ANSWERS for m in pattern.finditer(text))
        return [key for _, key in found]

    def render(self, text: str, key: str, fmt: str, rng: random.Random) -> str:
        match = _SUM.search(text)
        a, b = (match.group(1), match.group(2)) if match else ("?", "?")
        body = f"{rng.choice(_OPENERS).format(a=a, b=b)} Adding them gives {key}."
        if fmt == "math":
            return f"{body} So the final answer is \\boxed{{{key}}}."
        if fmt == "gsm8k":
            return f"{body}\n#### {key}"
        return f"{body} The answer is {key}."


_OPTION = re.compile(r"^\(([A-Z])\) (-?[0-9]+)$", re.MULTILINE)
_LETTER = re.compile(r"Answer:\s*\(?([A-Z])\b")


class MultipleChoiceWorld(World):
    """Questions "What is a + b?" with lettered options; responses end in "Answer: X". ``m = options - 1``.

    Example:
        >>> world = MultipleChoiceWorld(p=0.5, options=4)
        >>> item = world.questions(1)[0]
        >>> response = world.render(item.question, item.answer, "multiple_choice", stable_rng(0))
        >>> world.key_of(item.question, response) == world.reference(item.question) == item.answer
        True
    """

    name = "multiple_choice"
    kind = "multiple_choice"

    def __init__(self, p: float = 0.6, options: int = 4) -> None:
        if not 2 <= options <= 26:
            raise ValueError(f"options must be in [2, 26], got {options}")
        super().__init__(p, options - 1)

    def _item(self, rng: random.Random, item_id: str) -> Item:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        values = [a + b + o for o in [0, *_offsets(self.m)]]
        rng.shuffle(values)
        letters = [chr(ord("A") + i) for i in range(len(values))]
        lines = "\n".join(f"({x}) {v}" for x, v in zip(letters, values, strict=True))
        return Item(item_id, f"What is {a} + {b}?\n{lines}", letters[values.index(a + b)], self.kind)

    def _options(self, text: str) -> dict[str, int]:
        return {x: int(v) for x, v in _OPTION.findall(text)}

    def reference(self, text: str) -> str | None:
        match = _SUM.search(text)
        if match is None:
            return None
        total = int(match.group(1)) + int(match.group(2))
        return next((x for x, v in self._options(text).items() if v == total), None)

    def distractors(self, text: str) -> list[str]:
        ref = self.reference(text)
        return [] if ref is None else [x for x in self._options(text) if x != ref]

    def key_of(self, text: str, response: str) -> str | None:
        found = _LETTER.findall(response)
        return found[-1] if found else None

    def render(self, text: str, key: str, fmt: str, rng: random.Random) -> str:
        value = self._options(text).get(key, "?")
        return f"Checking the options, {value} is the sum, which is option ({key}).\nAnswer: {key}"


_TASK = re.compile(r"Write a Python function `f\(x\)` that returns (-?[0-9]+) \* x \+ (-?[0-9]+)\.")
_CODE = re.compile(r"```(?:python)?\n(.*?)```", re.DOTALL)


class CodeWorld(World):
    """Tasks "write f(x) returning a * x + b"; the body is correct, wrong (``- b``) or an infinite loop (``m = 2``).

    Keys are ``"correct"``, ``"wrong"`` and ``"loop"``; :attr:`Item.tests` holds asserts for a sandbox.

    Example:
        >>> world = CodeWorld()
        >>> item = world.questions(1)[0]
        >>> world.key_of(item.question, world.render(item.question, "loop", "code", stable_rng(0)))
        'loop'
    """

    name = "code"
    kind = "code"

    def __init__(self, p: float = 0.6) -> None:
        super().__init__(p, 2)

    def _item(self, rng: random.Random, item_id: str) -> Item:
        a, b = rng.randint(2, 9), rng.randint(1, 9)
        question = f"Write a Python function `f(x)` that returns {a} * x + {b}."
        tests = tuple(f"assert f({x}) == {a * x + b}" for x in (0, 3, -2))
        return Item(item_id, question, self._code(a, b, "correct"), self.kind, tests)

    @staticmethod
    def _code(a: int, b: int, key: str) -> str:
        if key == "loop":
            return "def f(x):\n    while True:\n        pass\n"
        return f"def f(x):\n    return {a} * x {'+' if key == 'correct' else '-'} {b}\n"

    def reference(self, text: str) -> str | None:
        return None if _TASK.search(text) is None else "correct"

    def distractors(self, text: str) -> list[str]:
        return [] if _TASK.search(text) is None else ["wrong", "loop"]

    def key_of(self, text: str, response: str) -> str | None:
        task, blocks = _TASK.search(text), _CODE.findall(response)
        if task is None or not blocks:
            return None
        a, b = int(task.group(1)), int(task.group(2))
        return next((k for k in ("correct", "wrong", "loop") if self._code(a, b, k) == blocks[-1]), None)

    def render(self, text: str, key: str, fmt: str, rng: random.Random) -> str:
        task = _TASK.search(text)
        a, b = (int(task.group(1)), int(task.group(2))) if task else (1, 0)
        return f"Here is the function.\n```python\n{self._code(a, b, key)}```"


_TOPIC = re.compile(r"Give advice on ([a-z ]+)\.")
_TOPICS = ("learning a language", "saving money", "sleeping well", "running a meeting", "writing tests")
_GOOD = (
    "Set one concrete goal and measure it weekly.",
    "Start small and build a daily habit.",
    "Ask someone experienced for feedback early.",
    "Write down what worked and what did not.",
    "Plan the next step before you stop for the day.",
)
_BAD = (
    "Just wing it.",
    "It depends on many things.",
    "Everyone is different, so there is no advice.",
    "Do whatever feels right at the moment.",
    "Try harder.",
)


class ChatWorld(World):
    """Requests "Give advice on X."; a response has five sentences, its hidden quality (key ``"0"``..``"5"``)
    is how many of them are good ones.

    A response is correct (good) when its quality is at least 3; a sampled one is good with probability ``p``
    (quality uniform in 3..5), else quality uniform in 0..2 (``m = 3``). The judge rates quality x 2.

    Example:
        >>> world = ChatWorld()
        >>> text = world.questions(1)[0].question
        >>> world.key_of(text, world.render(text, "4", "open", stable_rng(0))), world.is_correct(text, "4")
        ('4', True)
    """

    name = "chat"
    kind = "open"

    def __init__(self, p: float = 0.6) -> None:
        super().__init__(p, 3)

    def _item(self, rng: random.Random, item_id: str) -> Item:
        return Item(item_id, f"Give advice on {rng.choice(_TOPICS)}.", "", self.kind)

    def reference(self, text: str) -> str | None:
        return None if _TOPIC.search(text) is None else "5"

    def good_keys(self, text: str) -> list[str]:
        return [] if _TOPIC.search(text) is None else ["3", "4", "5"]

    def distractors(self, text: str) -> list[str]:
        return [] if _TOPIC.search(text) is None else ["0", "1", "2"]

    def key_of(self, text: str, response: str) -> str | None:
        if not response.startswith("Here is my advice on "):
            return None
        return str(sum(sentence in response for sentence in _GOOD))

    def render(self, text: str, key: str, fmt: str, rng: random.Random) -> str:
        topic = _TOPIC.search(text)
        level = min(max(int(key), 0), 5) if key.isdigit() else 0
        sentences = rng.sample(_GOOD, level) + rng.sample(_BAD, 5 - level)
        rng.shuffle(sentences)
        return f"Here is my advice on {topic.group(1) if topic else 'this'}.\n" + "\n".join(sentences)

    def key_rating(self, text: str, key: str | None) -> float:
        return 0.0 if key is None else 2.0 * int(key)


WORLDS: dict[str, type[World]] = {
    "arithmetic": ArithmeticWorld,
    "multiple_choice": MultipleChoiceWorld,
    "code": CodeWorld,
    "chat": ChatWorld,
}
"""World name -> class."""
