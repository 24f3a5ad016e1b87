r"""Evaluation data: local JSONL files in the benchmarks' public record formats, loaded and scored offline.

Nothing is downloaded at run time: the user supplies the JSONL files (one JSON object per line), and the
package ships a few small records of each format, written for the package (not taken from the benchmarks),
for demos and tests (:func:`sample_path`). The formats, by task name (:data:`TASKS`):

- ``gsm8k``: GSM8K (Cobbe et al. 2021), ``{"question", "answer"}``; the answer is a worked solution ending
  in ``#### N``, and the reference is ``N`` without thousands commas. Kind ``gsm8k``.
- ``math``: MATH (Hendrycks et al. 2021), ``{"problem", "solution"}``, reference = the last ``\boxed{}``
  of the solution; MATH-500 style records with an ``"answer"`` key use that answer. Kind ``math``.
- ``mmlu``: MMLU (Hendrycks et al. 2021), ``{"question", "choices", "answer"}`` with 2-4 choices and the
  answer as a 0-based index or a letter. Kind ``multiple_choice``.
- ``gpqa``: GPQA (Rein et al. 2023), ``{"Question", "Correct Answer", "Incorrect Answer 1..3"}``; the
  options are shuffled per item (see :func:`load_task`). Kind ``multiple_choice``.
- ``humaneval``: HumanEval (Chen et al. 2021), ``{"task_id", "prompt", "test", "entry_point",
  "canonical_solution"?}``. Kind ``code``.
- ``mbpp``: MBPP (Austin et al. 2021), ``{"task_id", "text", "test_list", "test_setup_code"?, "code"?}``.
  Kind ``code``.
- ``chat``: open-ended instructions, ``{"instruction"}`` (AlpacaEval / Alpaca, with an optional ``"input"``)
  or ``{"prompt"}``, with an optional reference in ``"reference"`` or ``"output"``. Kind ``open``.
- ``arithmetic``: the package's toy format ``{"id", "question", "answer"}`` (:mod:`gsa_prompt.worlds`).
  Kind ``answer_is``.

Conventions that are the package's (no source fixes them): records without an id get ``"<task>-<i>"``
(``i`` = 0-based record index); multiple-choice questions list their options as ``(A) ...`` lines after
a blank line; the code questions' wording; the MBPP entry point is the first non-builtin function the
first test calls.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
import keyword
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from gsa_prompt.extract import extract_boxed
from gsa_prompt.sandbox import extract_code, humaneval_program, mbpp_program, run_program
from gsa_prompt.tasks import TASK_KINDS, task_kind

__all__ = [
    "TASKS",
    "EvalItem",
    "Score",
    "TaskSpec",
    "load_jsonl",
    "load_task",
    "sample_path",
    "score",
    "write_jsonl",
]

_LETTERS = "ABCD"
_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\(")


@dataclasses.dataclass(frozen=True)
class EvalItem:
    """One evaluation question, with what is needed to score a response to it."""

    id: str
    """Unique within its file: the record's id (``task_id``, ``Record ID``, ``unique_id``...) or ``"<task>-<i>"``."""
    question: str
    """The text sent to the model (multiple choice: with its ``(A) ...`` option lines; code: with the stub or a test)."""
    answer: str
    """The reference answer: a number, LaTeX, a letter; ``""`` for code and open-ended items."""
    kind: str
    """A task-kind name of :data:`gsa_prompt.tasks.TASK_KINDS`."""
    tests: tuple[str, ...] = ()
    """Code: MBPP's ``assert`` lines, or HumanEval's one ``test`` block (which defines ``check``)."""
    entry_point: str | None = None
    """Code: the function the tests call (HumanEval's ``entry_point``; derived from the first MBPP test)."""
    code_prompt: str | None = None
    """HumanEval: the signature and docstring the completion continues; None for MBPP-style items."""
    test_setup_code: str = ""
    """MBPP: code run between the solution and the tests."""
    reference_text: str | None = None
    """A reference response for a judge (chat) or a reference solution (code), if the record has one."""
    meta: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    """``task`` and ``line`` (1-based, in the file), plus extras of the record (subject, level, options...)."""

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"kind must be one of {', '.join(TASK_KINDS)}, got {self.kind!r}")
        tests: Any = self.tests  # callers may pass a list
        if isinstance(tests, str) or not all(isinstance(t, str) for t in tests):
            raise ValueError(f"tests must be a sequence of str, got {tests!r}")
        object.__setattr__(self, "tests", tuple(tests))
        if self.kind == "code" and not self.tests:
            raise ValueError(f"item {self.id!r}: a code item needs tests")
        if self.code_prompt is not None and self.entry_point is None:
            raise ValueError(f"item {self.id!r}: a HumanEval-style item (code_prompt set) needs an entry_point")


@dataclasses.dataclass(frozen=True)
class Score:
    """The verdict on one response (:func:`score`)."""

    correct: bool | None
    """True / False; None when the item needs a judge (kind ``open``)."""
    extracted: str | None
    """The extracted final answer, or the extracted code; None when none was found."""
    detail: str
    """``"correct"``, ``"wrong"``, ``"no_answer"`` or ``"needs_judge"``; for code, the sandbox status."""


class _Record:
    """A parsed JSONL record with its position, for loaders and their error messages."""

    def __init__(self, data: dict[str, Any], path: object, line: int, index: int, task: str, seed: int) -> None:
        self.data, self.line, self.index, self.task, self.seed = data, line, index, task, seed
        self.where = f"{path}:{line}"

    def fail(self, message: str) -> NoReturn:
        raise ValueError(f"{self.where}: {message}")

    def text(self, key: str, *, numbers: bool = False) -> str:
        value = self.data.get(key)
        if isinstance(value, str):
            return value
        if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        self.fail(f"key {key!r} must be a {'string or number' if numbers else 'string'}, got {type(value).__name__}")

    def optional(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.text(key)

    def ident(self, *keys: str) -> str:
        for key in keys:
            if self.data.get(key) is not None:
                value = self.text(key, numbers=True)
                return f"{self.task}-{value}" if isinstance(self.data[key], int) else value
        return f"{self.task}-{self.index}"

    def meta(self, *keys: str, **extra: Any) -> dict[str, Any]:
        kept = {k: self.data[k] for k in keys if self.data.get(k) is not None}
        return {"task": self.task, "line": self.line, **kept, **extra}


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """How one task's records are read: the keys they need, the item kind and the parser."""

    name: str
    """The task name (a key of :data:`TASKS`)."""
    kind: str
    """The task-kind name of every item (:data:`gsa_prompt.tasks.TASK_KINDS`)."""
    required: tuple[str, ...]
    """Keys a record must have, non-null; ``"a|b"``: ``a`` or ``b``."""
    source: str
    """Where the format comes from."""
    parse: Callable[[_Record], EvalItem] = dataclasses.field(repr=False)
    """Record -> item (internal)."""


def _lettered(question: str, options: list[str]) -> str:
    lines = "\n".join(f"({letter}) {text}" for letter, text in zip(_LETTERS, options, strict=False))
    return f"{question.strip()}\n\n{lines}"


def _gsm8k(r: _Record) -> EvalItem:
    rationale, marker, final = r.text("answer").rpartition("####")
    if not marker or not (final := final.strip().replace(",", "")):
        r.fail("key 'answer' must end with a '#### N' line")
    meta = r.meta(solution=rationale.strip())
    return EvalItem(r.ident("id"), r.text("question").strip(), final, "gsm8k", meta=meta)


def _math(r: _Record) -> EvalItem:
    if r.data.get("answer") is not None:
        answer: str | None = r.text("answer", numbers=True).strip()
    else:
        answer = extract_boxed(r.text("solution"))
        if answer is None:
            r.fail(r"key 'solution' has no \boxed{...} answer")
    if not answer:
        r.fail("key 'answer' is empty")
    meta = r.meta("level", "type", "subject", "solution")
    return EvalItem(r.ident("unique_id", "id"), r.text("problem").strip(), answer, "math", meta=meta)


def _mmlu(r: _Record) -> EvalItem:
    choices = r.data["choices"]
    if not isinstance(choices, list) or not 2 <= len(choices) <= 4 or not all(isinstance(c, str) for c in choices):
        r.fail(f"key 'choices' must be a list of 2 to 4 strings, got {choices!r}")
    raw, letters = r.data["answer"], _LETTERS[: len(choices)]
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < len(choices):
        letter = letters[raw]
    elif isinstance(raw, str) and raw.strip().upper() in tuple(letters):
        letter = raw.strip().upper()
    else:
        r.fail(f"key 'answer' must be an index in [0, {len(choices)}) or a letter in {letters}, got {raw!r}")
    options = [c.strip() for c in choices]
    meta = r.meta("subject", options=options)
    return EvalItem(r.ident("id"), _lettered(r.text("question"), options), letter, "multiple_choice", meta=meta)


def _gpqa(r: _Record) -> EvalItem:
    item_id = r.ident("Record ID", "id")
    texts = [r.text(k).strip() for k in _GPQA_OPTIONS]  # the correct answer first
    order = sorted(range(len(texts)), key=lambda j: hashlib.sha256(f"{r.seed}\x1f{item_id}\x1f{j}".encode()).digest())
    options = [texts[j] for j in order]
    letter = _LETTERS[order.index(0)]
    meta = r.meta("High-level domain", "Subdomain", "Explanation", options=options)
    return EvalItem(item_id, _lettered(r.text("Question"), options), letter, "multiple_choice", meta=meta)


def _humaneval(r: _Record) -> EvalItem:
    prompt, entry_point = r.text("prompt"), r.text("entry_point").strip()
    if not entry_point.isidentifier() or keyword.iskeyword(entry_point):
        r.fail(f"key 'entry_point' must be a Python identifier, got {entry_point!r}")
    solution = r.optional("canonical_solution")
    question = (
        "Complete the following Python function so that it does what its docstring says.\n\n"
        f"```python\n{prompt.strip(chr(10)).rstrip()}\n```"
    )
    return EvalItem(
        r.ident("task_id"),
        question,
        "",
        "code",
        tests=(r.text("test"),),
        entry_point=entry_point,
        code_prompt=prompt,
        reference_text=None if solution is None else prompt + solution,
        meta=r.meta(),
    )


def _mbpp(r: _Record) -> EvalItem:
    tests = r.data["test_list"]
    if not isinstance(tests, list) or not tests or not all(isinstance(t, str) and t.strip() for t in tests):
        r.fail(f"key 'test_list' must be a non-empty list of strings, got {tests!r}")
    code = r.optional("code")
    called = [n for n in _CALL.findall(tests[0]) if not keyword.iskeyword(n) and not hasattr(builtins, n)]
    defined = [n for n in called if code is not None and re.search(rf"^def\s+{n}\s*\(", code, re.M)]
    entry_point = (defined or called or [None])[0]
    question = f"{r.text('text').strip()}\n\nYour function should pass tests like this one:\n\n{tests[0].strip()}"
    return EvalItem(
        r.ident("task_id"),
        question,
        "",
        "code",
        tests=tuple(tests),
        entry_point=entry_point,
        test_setup_code=r.optional("test_setup_code") or "",
        reference_text=code,
        meta=r.meta(),
    )


def _chat(r: _Record) -> EvalItem:
    question = r.text("instruction") if r.data.get("instruction") is not None else r.text("prompt")
    if extra := (r.optional("input") or "").strip():
        question = f"{question.rstrip()}\n\n{extra}"
    reference = r.optional("reference") if r.data.get("reference") is not None else r.optional("output")
    meta = r.meta("dataset", "category", "generator")
    return EvalItem(r.ident("id", "question_id"), question.strip(), "", "open", reference_text=reference, meta=meta)


def _arithmetic(r: _Record) -> EvalItem:
    answer = r.text("answer", numbers=True).strip()
    return EvalItem(r.text("id", numbers=True), r.text("question").strip(), answer, "answer_is", meta=r.meta())


_GPQA_OPTIONS = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("gsm8k", "gsm8k", ("question", "answer"), "GSM8K, Cobbe et al. 2021", _gsm8k),
        TaskSpec("math", "math", ("problem", "answer|solution"), "MATH, Hendrycks et al. 2021", _math),
        TaskSpec("mmlu", "multiple_choice", ("question", "choices", "answer"), "MMLU, Hendrycks et al. 2021", _mmlu),
        TaskSpec("gpqa", "multiple_choice", ("Question", *_GPQA_OPTIONS), "GPQA, Rein et al. 2023", _gpqa),
        TaskSpec(
            "humaneval", "code", ("task_id", "prompt", "test", "entry_point"), "HumanEval, Chen et al. 2021", _humaneval
        ),
        TaskSpec("mbpp", "code", ("task_id", "text", "test_list"), "MBPP, Austin et al. 2021", _mbpp),
        TaskSpec("chat", "open", ("instruction|prompt",), "AlpacaEval / Alpaca instruction records", _chat),
        TaskSpec("arithmetic", "answer_is", ("id", "question", "answer"), "gsa-prompt toy world", _arithmetic),
    )
}
"""Task name -> :class:`TaskSpec` (record format, item kind, source); see the module docstring."""


# -- files -----------------------------------------------------------------------------------------
def _read_jsonl(path: str | os.PathLike[str]) -> list[tuple[int, dict[str, Any]]]:
    records: list[tuple[int, dict[str, Any]]] = []
    with open(path, "rb") as fh:
        raw_lines = fh.read().splitlines()
    for line_no, raw in enumerate(raw_lines, start=1):
        try:
            line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}:{line_no}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{line_no}: not valid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(value, dict):
            raise ValueError(f"{path}:{line_no}: not a JSON object, got {type(value).__name__}")
        records.append((line_no, value))
    if not records:
        raise ValueError(f"{path}: no records (the file is empty)")
    return records


def load_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file, one per non-blank line.

    Args:
        path: a UTF-8 file (a leading byte-order mark is ignored).

    Returns:
        The objects, in file order.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a line is not valid JSON or not an object (the message starts with ``path:line:``),
            or the file holds no record.

    Example:
        >>> load_jsonl(sample_path("arithmetic"))[0]
        {'id': 'arithmetic-sample-0', 'question': 'What is 23 + 58?', 'answer': '81'}
    """
    return [record for _, record in _read_jsonl(path)]


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> int:
    """Write records as JSONL atomically: to a temporary file beside ``path``, then ``os.replace``.

    Args:
        path: the destination; its folder must exist. A crash never leaves it half written.
        records: JSON-serialisable mappings (NaN and infinity are refused: they are not JSON).

    Returns:
        The number of records written.

    Raises:
        ValueError: ``records`` is empty, or a record is not a mapping or holds NaN / infinity.
        TypeError: a value is not JSON-serialisable.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     out = pathlib.Path(tmp, "toy.jsonl")
        ...     write_jsonl(out, [{"id": "a", "question": "What is 1 + 2?", "answer": "3"}])
        ...     load_task("arithmetic", out)[0].answer
        1
        '3'
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o644)  # mkstemp creates 0600; a data file is world-readable
            for record in records:
                if not isinstance(record, Mapping):
                    raise ValueError(f"records[{count}] must be a mapping, got {type(record).__name__}")
                fh.write(json.dumps(dict(record), ensure_ascii=False, allow_nan=False) + "\n")
                count += 1
            if count == 0:
                raise ValueError(f"records is empty: refusing to write {path} (an empty file cannot be loaded)")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


def sample_path(task: str) -> Path:
    """The built-in sample file of ``task``: a few records written for the package, in the task's format.

    Args:
        task: a key of :data:`TASKS`.

    Returns:
        The path of ``gsa_prompt/data/<task>_sample.jsonl``.

    Raises:
        ValueError: an unknown task.
        FileNotFoundError: the package data was not installed, or lives inside a zip archive.

    Example:
        >>> sample_path("gsm8k").name
        'gsm8k_sample.jsonl'
    """
    _spec(task)
    resource = resources.files("gsa_prompt") / "data" / f"{task}_sample.jsonl"
    if not isinstance(resource, Path) or not resource.is_file():
        raise FileNotFoundError(f"sample data of task {task!r} not found at {resource} (package data not installed?)")
    return resource


def _spec(task: str) -> TaskSpec:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[task]


def load_task(
    task: str, path: str | os.PathLike[str] | None = None, *, limit: int | None = None, seed: int = 0
) -> list[EvalItem]:
    """Load a task's JSONL file as :class:`EvalItem` s (see the module docstring for each format).

    GPQA keeps the correct answer in its own column, so its four options are put in a per-item order
    (spec pitfall 11): option ``j`` (0 = the correct answer, then incorrect answers 1-3) is ranked by
    ``sha256(f"{seed}\\x1f{item_id}\\x1f{j}")``'s bytes, which is the same for a (seed, id) pair in any
    process, independent of the item's position in the file, and spreads the correct letter over A-D.

    Args:
        task: a key of :data:`TASKS`.
        path: the JSONL file; None: the built-in sample (:func:`sample_path`).
        limit: keep the first ``limit`` items (>= 0); None keeps all. The whole file is validated anyway.
        seed: the GPQA shuffling seed (other tasks ignore it).

    Returns:
        The items, in file order.

    Raises:
        ValueError: an unknown task; a bad ``limit`` or ``seed``; any error of :func:`load_jsonl`; a record
            missing a required key or with a malformed value (the message names ``path:line`` and the
            key); two records with the same id.

    Example:
        >>> items = load_task("gsm8k", limit=2)
        >>> [(item.id, item.answer, item.kind) for item in items]
        [('gsm8k-0', '363', 'gsm8k'), ('gsm8k-1', '1348', 'gsm8k')]
    """
    spec = _spec(task)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    path = sample_path(task) if path is None else path
    items: list[EvalItem] = []
    first_line: dict[str, int] = {}
    for index, (line_no, data) in enumerate(_read_jsonl(path)):
        where = f"{path}:{line_no}"
        alternatives = [keys.split("|") for keys in spec.required]
        missing = [" or ".join(map(repr, keys)) for keys in alternatives if all(data.get(k) is None for k in keys)]
        if missing:
            raise ValueError(f"{where}: record is missing key(s) {', '.join(missing)} for task {task!r}")
        item = spec.parse(_Record(data, path, line_no, index, task, seed))
        if item.id in first_line:
            raise ValueError(f"{where}: duplicate id {item.id!r} (first on line {first_line[item.id]})")
        first_line[item.id] = line_no
        items.append(item)
    return items if limit is None else items[:limit]


# -- scoring ---------------------------------------------------------------------------------------
def score(item: EvalItem, text: str | None, *, timeout_s: float = 5.0) -> Score:
    """Whether ``text`` answers ``item`` correctly.

    Kinds with an extractor (math, gsm8k, answer_is, multiple_choice) compare the extracted answer
    with ``item.answer`` using the kind's extractor and equality (:func:`gsa_prompt.tasks.task_kind`).
    Code runs the response's code (:func:`gsa_prompt.sandbox.extract_code`) with the item's tests in
    the sandbox (:func:`~gsa_prompt.sandbox.humaneval_program` when ``item.code_prompt`` is set, else
    :func:`~gsa_prompt.sandbox.mbpp_program`); it is correct iff the status is ``"passed"``.
    Open-ended items need a judge: ``correct`` is None.

    Args:
        item: the question.
        text: the response; None or blank counts as no answer.
        timeout_s: wall-clock limit of a code run, in (0, 86400].

    Returns:
        A :class:`Score`.

    Raises:
        ValueError: ``timeout_s`` out of range (code items).

    Example:
        >>> item = load_task("arithmetic")[0]
        >>> score(item, "23 + 58 = 81. The answer is 81.")
        Score(correct=True, extracted='81', detail='correct')
        >>> score(item, "The answer is 80.").correct
        False
    """
    if item.kind == "open":
        return Score(None, None, "needs_judge")
    if text is None or not text.strip():
        return Score(False, None, "no_answer")
    if item.kind == "code":
        code = extract_code(text, entry_point=item.entry_point)
        if item.code_prompt is not None and item.entry_point is not None:
            program = humaneval_program(item.code_prompt, code, "\n\n".join(item.tests), item.entry_point)
        else:
            program = mbpp_program(code, item.tests, item.test_setup_code)
        result = run_program(program, timeout_s=timeout_s)
        return Score(result.passed, code, result.status)
    kind = task_kind(item.kind)
    extracted = kind.answer(text)
    if extracted is None:
        return Score(False, None, "no_answer")
    correct = kind.equal(extracted, item.answer)
    return Score(correct, extracted, "correct" if correct else "wrong")
