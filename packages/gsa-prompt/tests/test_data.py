"""Tests of gsa_prompt.data: every loader on its built-in sample and on hand-made records, errors, scoring."""

from __future__ import annotations

import doctest
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from gsa_prompt import data
from gsa_prompt.data import TASKS, EvalItem, Score, load_jsonl, load_task, sample_path, score, write_jsonl
from gsa_prompt.extract import extract_gsm8k
from gsa_prompt.sandbox import humaneval_program, mbpp_program, run_many

KINDS = {
    "gsm8k": "gsm8k",
    "math": "math",
    "mmlu": "multiple_choice",
    "gpqa": "multiple_choice",
    "humaneval": "code",
    "mbpp": "code",
    "chat": "open",
    "arithmetic": "answer_is",
}
"""Task -> item kind, as the brief states it (not read from TASKS)."""
COUNTS = {"gsm8k": 6, "math": 7, "mmlu": 6, "gpqa": 8, "humaneval": 5, "mbpp": 5, "chat": 6, "arithmetic": 6}


def _write(path: Path, records: list[Any]) -> Path:
    """Hand-written JSONL (not via write_jsonl, so the loaders are tested independently of it)."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _options(question: str) -> dict[str, str]:
    return dict(re.findall(r"^\(([A-D])\) (.*)$", question, re.M))


# -- built-in samples ------------------------------------------------------------------------------
class TestSamples:
    @pytest.mark.parametrize("task", list(KINDS))
    def test_sample_loads_with_counts_and_kinds(self, task: str) -> None:
        items = load_task(task)
        assert len(items) == COUNTS[task]
        assert {item.kind for item in items} == {KINDS[task]}
        assert TASKS[task].kind == KINDS[task]
        assert len({item.id for item in items}) == len(items)
        assert all(item.question.strip() for item in items)
        assert [item.meta["line"] for item in items] == list(range(1, len(items) + 1))
        assert load_task(task, sample_path(task)) == items

    def test_sample_references(self) -> None:
        # hand-worked: 363 = (48 + 73) * 3, 1348 = 26 * 48 + 100, 100 = 4 * 25, 12 = 180 / 15, 11.25 = 20 - 8.75, 355
        assert [i.answer for i in load_task("gsm8k")] == ["363", "1348", "100", "12", "11.25", "355"]
        assert [extract_gsm8k(r["answer"]) for r in load_jsonl(sample_path("gsm8k"))] == [
            i.answer for i in load_task("gsm8k")
        ]
        math_refs = ["\\frac{1}{2}", "7", "720", "5\\sqrt{2}", "\\frac{\\sqrt{3}}{2}", "9", "(4, \\infty)"]
        assert [i.answer for i in load_task("math")] == math_refs
        assert [i.answer for i in load_task("mmlu")] == ["C", "A", "B", "D", "B", "C"]
        for item in load_task("arithmetic"):  # the sum recomputed from the question text
            a, b = map(int, re.findall(r"\d+", item.question))
            assert item.answer == str(a + b)
        chat = load_task("chat")
        assert [i.reference_text is not None for i in chat] == [True, True, True, True, False, True]
        assert all(i.answer == "" for i in chat + load_task("humaneval") + load_task("mbpp"))

    def test_sample_multiple_choice_letter_points_at_the_right_text(self) -> None:
        for item, raw in zip(load_task("gpqa"), load_jsonl(sample_path("gpqa")), strict=True):
            assert _options(item.question)[item.answer] == raw["Correct Answer"].strip()
            assert sorted(_options(item.question).values()) == sorted(raw[k].strip() for k in data._GPQA_OPTIONS)
        for item, raw in zip(load_task("mmlu"), load_jsonl(sample_path("mmlu")), strict=True):
            index = raw["answer"] if isinstance(raw["answer"], int) else "ABCD".index(raw["answer"].upper())
            assert _options(item.question)[item.answer] == raw["choices"][index]
        assert len({item.answer for item in load_task("gpqa")}) > 1

    def test_sample_code_reference_solutions_pass_their_tests(self) -> None:
        programs = []
        for item in load_task("humaneval"):
            assert item.reference_text is not None
            assert item.entry_point is not None
            assert item.code_prompt is not None
            programs.append(humaneval_program(item.code_prompt, item.reference_text, item.tests[0], item.entry_point))
        for item in load_task("mbpp"):
            assert item.reference_text is not None
            programs.append(mbpp_program(item.reference_text, item.tests, item.test_setup_code))
        results = run_many(programs, jobs=2)
        assert [r.status for r in results] == ["passed"] * 10, [r.detail for r in results]

    def test_sample_path(self) -> None:
        path = sample_path("math")
        assert path.is_file()
        assert (path.parent.name, path.name) == ("data", "math_sample.jsonl")
        with pytest.raises(ValueError, match="unknown task 'nope'"):
            sample_path("nope")


# -- each format, hand-made records ----------------------------------------------------------------
class TestFormats:
    def test_gsm8k_reference_drops_commas(self, tmp_path: Path) -> None:
        path = _write(tmp_path / "g.jsonl", [{"question": " Q? ", "answer": "10 * 123.4 = 1,234\n#### 1,234"}])
        (item,) = load_task("gsm8k", path)
        assert (item.id, item.question, item.answer, item.kind) == ("gsm8k-0", "Q?", "1234", "gsm8k")
        assert item.meta == {"task": "gsm8k", "line": 1, "solution": "10 * 123.4 = 1,234"}

    def test_math_last_boxed_with_nested_braces_and_answer_key(self, tmp_path: Path) -> None:
        records = [
            {"problem": "P1", "solution": "First $\\boxed{2}$, then $x = \\boxed{\\frac{1}{2}}$."},
            {"problem": "P2", "solution": "... \\boxed{3}", "answer": "3.0", "unique_id": "u/2"},
            {"problem": "P3", "answer": 5},
        ]
        items = load_task("math", _write(tmp_path / "m.jsonl", records))
        assert [(i.id, i.answer) for i in items] == [("math-0", "\\frac{1}{2}"), ("u/2", "3.0"), ("math-2", "5")]

    def test_mmlu_answer_as_index_or_letter(self, tmp_path: Path) -> None:
        base = {"question": "Which?", "choices": ["w", "x", "y", "z"], "subject": "s"}
        records = [{**base, "answer": 2}, {**base, "answer": "c"}, {**base, "answer": " D "}, {**base, "answer": 0}]
        items = load_task("mmlu", _write(tmp_path / "m.jsonl", records))
        assert [i.answer for i in items] == ["C", "C", "D", "A"]
        assert items[0].question == "Which?\n\n(A) w\n(B) x\n(C) y\n(D) z"
        assert items[0].meta == {"task": "mmlu", "line": 1, "subject": "s", "options": ["w", "x", "y", "z"]}

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"answer": 4}, "key 'answer' must be an index"),
            ({"answer": True}, "key 'answer' must be an index"),
            ({"answer": "AB"}, "key 'answer' must be an index"),
            ({"choices": ["a", "b", "c", "d", "e"]}, "key 'choices' must be a list of 2 to 4 strings"),
        ],
    )
    def test_mmlu_bad_values(self, tmp_path: Path, change: dict[str, Any], message: str) -> None:
        record = {"question": "Which?", "choices": ["w", "x", "y", "z"], "answer": 1, **change}
        path = _write(tmp_path / "m.jsonl", [record])
        with pytest.raises(ValueError, match=re.escape(f"{path}:1: {message}")):
            load_task("mmlu", path)

    def test_gpqa_shuffle_is_per_seed_and_item_and_spreads_the_letter(self, tmp_path: Path) -> None:
        wrong = {f"Incorrect Answer {j}": "wrong {k}." + str(j) for j in (1, 2, 3)}
        records = [
            {"Record ID": f"r{k}", "Question": f"Q{k}?", "Correct Answer": f"right{k}"}
            | {key: text.format(k=k) for key, text in wrong.items()}
            for k in range(40)
        ]
        path = _write(tmp_path / "g.jsonl", records)
        first, again, other = load_task("gpqa", path, seed=3), load_task("gpqa", path, seed=3), load_task("gpqa", path)
        assert first == again
        assert [i.question for i in first] != [i.question for i in other]
        assert {i.answer for i in first} == set("ABCD")  # 40 items: each letter is drawn (P(miss) ~ 4 * 0.75^40)
        for item, record in zip(first, records, strict=True):
            assert _options(item.question)[item.answer] == record["Correct Answer"]
        # the documented rule, recomputed: option j (0 = correct) ranked by sha256(f"{seed}\x1f{id}\x1f{j}")
        digests = [hashlib.sha256(f"3\x1fr0\x1f{j}".encode()).digest() for j in range(4)]
        assert first[0].answer == "ABCD"[sorted(digests).index(digests[0])]
        # the order depends on (seed, id), not on the position in the file
        backwards = load_task("gpqa", _write(tmp_path / "b.jsonl", records[::-1]), seed=3)
        assert {i.id: i.answer for i in backwards} == {i.id: i.answer for i in first}

    def test_humaneval_fields(self, tmp_path: Path) -> None:
        record = {"task_id": "T/0", "prompt": "def f(x):\n    '''Twice x.'''\n", "test": "def check(c):\n    pass\n"}
        records = [{**record, "entry_point": "f", "canonical_solution": "    return 2 * x\n"}]
        (item,) = load_task("humaneval", _write(tmp_path / "h.jsonl", records))
        assert (item.id, item.kind, item.entry_point, item.tests) == ("T/0", "code", "f", (record["test"],))
        assert item.code_prompt == record["prompt"]
        assert "```python\ndef f(x):\n    '''Twice x.'''\n```" in item.question
        assert item.reference_text == record["prompt"] + "    return 2 * x\n"

    def test_mbpp_question_has_the_text_and_first_test(self, tmp_path: Path) -> None:
        tests = ["assert math.isclose(area_of(2), 4.0)", "assert area_of(3) == 9"]
        records = [
            {"task_id": 7, "text": "Write a function for the area of a square.", "test_list": tests},
            {"task_id": "x", "text": "Sort.", "test_list": ["assert sorted(my_sort([3, 1])) == [1, 3]"], "code": "c"},
        ]
        first, second = load_task("mbpp", _write(tmp_path / "m.jsonl", records))
        assert first.id == "mbpp-7"
        assert "Write a function for the area of a square." in first.question
        assert tests[0] in first.question
        assert tests[1] not in first.question
        assert (first.tests, first.entry_point, first.reference_text) == (tuple(tests), "area_of", None)
        assert (second.id, second.entry_point, second.reference_text) == ("x", "my_sort", "c")

    def test_chat_instruction_prompt_and_references(self, tmp_path: Path) -> None:
        records = [
            {"instruction": "Translate.", "input": "Bonjour", "output": "Hello"},
            {"prompt": "Say hi.", "reference": "Hi!", "output": "ignored", "question_id": 81},
            {"prompt": "Tell a joke."},
        ]
        items = load_task("chat", _write(tmp_path / "c.jsonl", records))
        assert [(i.id, i.question, i.reference_text) for i in items] == [
            ("chat-0", "Translate.\n\nBonjour", "Hello"),
            ("chat-81", "Say hi.", "Hi!"),
            ("chat-2", "Tell a joke.", None),
        ]

    def test_arithmetic_numbers_become_strings(self, tmp_path: Path) -> None:
        (item,) = load_task("arithmetic", _write(tmp_path / "a.jsonl", [{"id": 1, "question": "1+2?", "answer": 3}]))
        assert (item.id, item.answer, item.kind) == ("1", "3", "answer_is")


# -- errors, limit, files --------------------------------------------------------------------------
class TestErrors:
    def test_malformed_line_names_path_and_line(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.jsonl"
        path.write_text('{"id": "a", "question": "q", "answer": "1"}\n\n{"id": "b", oops}\n', encoding="utf-8")
        for call in (lambda: load_jsonl(path), lambda: load_task("arithmetic", path)):
            with pytest.raises(ValueError, match=re.escape(f"{path}:3: not valid JSON")):
                call()

    def test_non_object_line_and_empty_file(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=re.escape(":2: not a JSON object, got list")):
            load_jsonl(_write(tmp_path / "l.jsonl", [{"a": 1}, [1, 2]]))
        empty = tmp_path / "empty.jsonl"
        empty.write_text("\n  \n", encoding="utf-8")
        with pytest.raises(ValueError, match=re.escape(f"{empty}: no records")):
            load_jsonl(empty)

    def test_byte_order_mark_is_ignored(self, tmp_path: Path) -> None:
        path = tmp_path / "bom.jsonl"
        path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n')
        assert load_jsonl(path) == [{"a": 1}]

    def test_missing_key_names_the_key_and_line(self, tmp_path: Path) -> None:
        path = _write(tmp_path / "g.jsonl", [{"question": "q", "answer": "#### 1"}, {"question": "q2"}])
        with pytest.raises(ValueError, match=re.escape(f"{path}:2: record is missing key(s) 'answer'")):
            load_task("gsm8k", path)
        path = _write(tmp_path / "m.jsonl", [{"problem": "p", "answer": None}])
        with pytest.raises(ValueError, match=re.escape(":1: record is missing key(s) 'answer' or 'solution'")):
            load_task("math", path)

    @pytest.mark.parametrize(
        ("task", "record", "message"),
        [
            ("gsm8k", {"question": 5, "answer": "#### 1"}, "key 'question' must be a string, got int"),
            ("gsm8k", {"question": "q", "answer": "no marker"}, "must end with a '#### N' line"),
            ("math", {"problem": "p", "solution": "no box"}, "has no \\boxed{...} answer"),
            ("mbpp", {"task_id": 1, "text": "t", "test_list": []}, "key 'test_list' must be a non-empty list"),
            ("humaneval", {"task_id": "t", "prompt": "", "test": "", "entry_point": "a b"}, "Python identifier"),
        ],
    )
    def test_malformed_values_name_line_and_key(
        self, tmp_path: Path, task: str, record: dict[str, Any], message: str
    ) -> None:
        path = _write(tmp_path / "x.jsonl", [record])
        with pytest.raises(ValueError, match=re.escape(f"{path}:1: ") + ".*" + re.escape(message)):
            load_task(task, path)

    def test_duplicate_ids(self, tmp_path: Path) -> None:
        rows = [{"id": "x", "question": "q", "answer": "1"}, {"id": "y", "question": "q", "answer": "2"}]
        path = _write(tmp_path / "a.jsonl", [*rows, {"id": "x", "question": "q", "answer": "3"}])
        with pytest.raises(ValueError, match=re.escape(f"{path}:3: duplicate id 'x' (first on line 1)")):
            load_task("arithmetic", path)

    def test_unknown_task_lists_the_known_ones(self) -> None:
        with pytest.raises(ValueError, match="unknown task 'squad'") as info:
            load_task("squad", "whatever.jsonl")
        assert all(name in str(info.value) for name in KINDS)

    def test_limit(self) -> None:
        every = load_task("gsm8k")
        assert load_task("gsm8k", limit=2) == every[:2]
        assert load_task("gsm8k", limit=0) == []
        assert load_task("gsm8k", limit=100) == every
        for bad in (-1, True, 1.5):
            with pytest.raises(ValueError, match="limit must be None or an int >= 0"):
                load_task("gsm8k", limit=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="seed must be an int"):
            load_task("gpqa", seed="0")  # type: ignore[arg-type]

    def test_write_jsonl_round_trip_and_atomicity(self, tmp_path: Path) -> None:
        path = tmp_path / "toy.jsonl"
        records = [{"id": f"t{i}", "question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(3)]
        assert write_jsonl(path, iter(records)) == 3
        assert load_jsonl(path) == records
        assert [i.answer for i in load_task("arithmetic", path)] == ["1", "2", "3"]
        before = path.read_bytes()
        for bad, error in (([{"x": {1, 2}}], TypeError), ([{"x": float("nan")}], ValueError), ([], ValueError)):
            with pytest.raises(error):
                write_jsonl(path, bad)
            assert path.read_bytes() == before  # the old file survives a failed write
        with pytest.raises(ValueError, match=r"records\[1\] must be a mapping"):
            write_jsonl(path, [{"a": 1}, [("a", 1)]])  # type: ignore[list-item]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.jsonl"]  # no temporary file left behind


# -- scoring ---------------------------------------------------------------------------------------
class TestScore:
    def test_extracted_answer_kinds(self) -> None:
        gsm8k, fraction, mmlu, arith = (
            load_task("gsm8k")[1],
            load_task("math")[0],
            load_task("mmlu")[0],
            load_task("arithmetic")[0],
        )
        assert score(gsm8k, "26 * 48 = 1248, plus 100.\n#### 1,348") == Score(True, "1348", "correct")
        assert score(gsm8k, "#### 1300") == Score(False, "1300", "wrong")
        assert score(gsm8k, "I do not know.") == Score(False, None, "no_answer")
        assert score(fraction, "So the result is $\\boxed{0.5}$.").correct is True  # 1/2 == 0.5 (math_equal)
        assert score(fraction, "$\\boxed{\\frac{1}{3}}$").correct is False
        assert score(mmlu, "(A) is wrong and so is B.\nAnswer: C") == Score(True, "C", "correct")
        assert score(mmlu, "Answer: (a)") == Score(False, "A", "wrong")
        assert score(arith, "23 + 58 = 81. The answer is 81.").correct is True
        assert score(arith, None) == Score(False, None, "no_answer")
        assert score(arith, "   ") == Score(False, None, "no_answer")

    def test_open_needs_a_judge(self) -> None:
        assert score(load_task("chat")[0], "Crumb & Co.") == Score(None, None, "needs_judge")

    def test_code_runs_the_sandbox(self) -> None:
        vowels, setup = load_task("humaneval")[0], load_task("mbpp")[4]
        good = "Here:\n```python\ndef count_vowels(text):\n    return sum(c in 'aeiouAEIOU' for c in text)\n```"
        result = score(vowels, good)
        assert (result.correct, result.detail) == (True, "passed")
        assert result.extracted is not None
        assert result.extracted.startswith("def count_vowels")
        assert score(vowels, "```python\ndef count_vowels(text):\n    return 0\n```").detail == "failed"
        # MBPP with test_setup_code: the second test uses the `scores` dict it defines
        assert score(
            setup, "```python\ndef mean_of_values(d):\n    return round(sum(d.values()) / len(d), 2)\n```"
        ).correct
        assert score(setup, "def mean_of_values(d):\n    return sum(d.values()) // len(d)") == Score(
            False, "def mean_of_values(d):\n    return sum(d.values()) // len(d)", "failed"
        )


class TestEvalItem:
    def test_validation(self) -> None:
        with pytest.raises(ValueError, match="kind must be one of"):
            EvalItem("a", "q", "1", "numeric")
        with pytest.raises(ValueError, match="a code item needs tests"):
            EvalItem("a", "q", "", "code")
        with pytest.raises(ValueError, match="needs an entry_point"):
            EvalItem("a", "q", "", "code", tests=("pass",), code_prompt="def f(): ...")
        with pytest.raises(ValueError, match="tests must be a sequence of str"):
            EvalItem("a", "q", "", "code", tests="assert 1")  # type: ignore[arg-type]
        item = EvalItem("a", "q", "", "code", tests=["assert f() == 1"])  # type: ignore[arg-type]
        assert item.tests == ("assert f() == 1",)
        assert hash(item) == hash(EvalItem("a", "q", "", "code", tests=("assert f() == 1",), meta={"x": 1}))


def test_doctests() -> None:
    result = doctest.testmod(data)
    assert result.failed == 0
    assert result.attempted > 0
