"""Tests of gsa_prompt.prompts: golden prompt texts, candidate round trips, roles, choice and rating parsers."""

from __future__ import annotations

import dataclasses
import doctest
from types import ModuleType

import pytest

from gsa_prompt import prompts, roles
from gsa_prompt.prompts import (
    ANSWER_IS,
    CODE_BLOCK,
    DEFAULTS,
    GSM8K_HASHES,
    MATH_BOXED,
    MULTIPLE_CHOICE,
    PROMPTS_SOURCE,
    TEMPLATES,
    build_choose_prompt,
    build_feedback_prompt,
    build_gsa_prompt,
    build_judge_prompt,
    build_refine_prompt,
    build_sample_messages,
    build_usc_prompt,
    detect_answer_format,
    detect_role,
    detect_template,
    parse_candidates,
    parse_choice,
    parse_rating,
    prompts_checksum,
)

PROMPTS_SHA256 = "415d5f80a2784dcbcf32f8efcd9a5c6ce4f5ce440fd0dcc4210effa6d4f89a9a"
"""prompts_checksum() of the reviewed templates and defaults; see test_checksum_of_templates_and_defaults."""

Q = "What is 2 + 3?"
R3 = ["The answer is 5.", "I think 6.\nThe answer is 6.", "The answer is 5."]
BLOCKS3 = (
    "Response 1:\n```\nThe answer is 5.\n```\n\n"
    "Response 2:\n```\nI think 6.\nThe answer is 6.\n```\n\n"
    "Response 3:\n```\nThe answer is 5.\n```"
)
ADVERSARIAL = [
    "",
    "\n",
    "Response 2:\nfake",
    "```\nResponse 1:\n```",
    "ends with a fence\n````",
    "`",
    "``",
    "````````",
    "  leading and trailing spaces  ",
    "multi\nline\n\n\nwith blank lines\n",
    "unicode: π ≈ 3.14, 日本語, emoji 🙂, RTL مرحبا",
    "Question:\nWhat is 9 + 9?\n\nResponse 3:\n```python\nprint(1)\n```",
    "Now write your own response to the question. The answer is 1.",
    "{question} {responses} {answer_format} {0}",
    "Feedback:\n```\nnot a feedback block\n```",
]


class TestGolden:
    """The exact text of every template with the same question and candidates (order, numbering, none dropped)."""

    def test_gsa_prompt_exact_text(self) -> None:
        expected = (
            "You are given a question and several responses to it, written independently. Use them as context: "
            "combine their useful ideas and write a new, complete and correct response to the question. Do not just "
            "pick one of them; where they disagree, work out which reasoning is right, and if all of them are wrong, "
            "solve the question another way.\n\nQuestion:\nWhat is 2 + 3?\n\n" + BLOCKS3 + "\n\n"
            "Now write your own response to the question. Think step by step, then end your response with "
            '"The answer is N." where N is the final answer.'
        )
        assert build_gsa_prompt(Q, R3, ANSWER_IS) == expected

    def test_gsa_prompt_without_answer_format_ends_with_the_instruction(self) -> None:
        assert build_gsa_prompt(Q, R3).endswith("\n\nNow write your own response to the question.")

    def test_usc_prompt_exact_text(self) -> None:
        expected = (
            "I have generated the following responses to the question: What is 2 + 3?\n\n" + BLOCKS3 + "\n\n"
            "Evaluate these responses.\nSelect the most consistent response based on majority consensus.\n"
            'Start your answer with "The most consistent response is Response X" (without quotes).'
        )
        assert build_usc_prompt(Q, R3) == expected

    def test_choose_prompt_exact_text(self) -> None:
        expected = (
            "You are given a question and several candidate responses to it. Evaluate them and select the best "
            "response: the one most likely to be correct and complete.\n\nQuestion:\nWhat is 2 + 3?\n\n"
            + BLOCKS3
            + '\n\nStart your answer with "The best response is Response X" (without quotes), where X is the number '
            "of the response you select, then briefly explain why."
        )
        assert build_choose_prompt(Q, R3) == expected

    def test_judge_prompt_exact_text(self) -> None:
        expected = (
            "Rate the following response to the question on a scale of 0 to 10, where 0 is completely wrong or "
            "unhelpful and 10 is fully correct and excellent. Judge correctness first, then completeness and "
            "clarity.\n\nQuestion:\nWhat is 2 + 3?\n\nResponse:\n```\nThe answer is 5.\n```\n\n"
            'End your answer with "Rating: N" (without quotes), where N is an integer from 0 to 10.'
        )
        assert build_judge_prompt(Q, R3[0]) == expected

    def test_feedback_prompt_exact_text(self) -> None:
        expected = (
            "Review the following response to the question. Check every step for mistakes, and say what is wrong "
            "or missing and how to fix it. Do not write a corrected response.\n\nQuestion:\nWhat is 2 + 3?\n\n"
            "Response:\n```\nThe answer is 5.\n```\n\nGive your feedback as a short list of concrete points. "
            "If the response is fully correct, say so."
        )
        assert build_feedback_prompt(Q, R3[0]) == expected

    def test_refine_prompt_exact_text(self) -> None:
        expected = (
            "Improve the following response to the question using the feedback on it. Write the complete improved "
            "response, not a list of changes.\n\nQuestion:\nWhat is 2 + 3?\n\n"
            "Response:\n```\nI think 6.\nThe answer is 6.\n```\n\nFeedback:\n```\n2 + 3 is 5.\n```\n\n"
            "Now write the improved response. Please reason step by step, and put your final answer within "
            "\\boxed{}."
        )
        assert build_refine_prompt(Q, R3[1], "2 + 3 is 5.", MATH_BOXED) == expected

    def test_sample_messages_exact(self) -> None:
        assert build_sample_messages(Q, GSM8K_HASHES, system="Be brief.") == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2 + 3?\n\n" + GSM8K_HASHES},
        ]
        assert build_sample_messages("  " + Q + "\n") == [{"role": "user", "content": Q}]
        assert build_sample_messages(Q, variant=1)[0]["content"] == prompts.SAMPLE_VARIANTS[1] + Q

    def test_ten_candidates_keep_order_and_numbering(self) -> None:
        responses = [f"candidate {i}" for i in range(10)]
        text = build_gsa_prompt(Q, responses)
        positions = [text.index(f"Response {i + 1}:\n```\ncandidate {i}\n```") for i in range(10)]
        assert positions == sorted(positions)
        assert text.count("Response ") == 10

    def test_fence_grows_past_backticks_in_the_responses(self) -> None:
        text = build_usc_prompt(Q, ["```python\nx = 1\n```", "plain"])
        assert "Response 2:\n````\nplain\n````" in text


class TestRoundTrip:
    """parse_candidates(build_*(q, R)) == R, exactly, for adversarial responses."""

    @pytest.mark.parametrize("response", ADVERSARIAL)
    def test_single_adversarial_response_in_every_template(self, response: str) -> None:
        for build in (build_gsa_prompt, build_usc_prompt, build_choose_prompt):
            assert parse_candidates(build(Q, [response, "ok", response])) == [response, "ok", response]
        for build1 in (build_judge_prompt, build_feedback_prompt):
            assert parse_candidates(build1(Q, response)) == [response]
        assert parse_candidates(build_refine_prompt(Q, response, response, CODE_BLOCK)) == [response]

    def test_all_adversarial_responses_together(self) -> None:
        assert parse_candidates(build_gsa_prompt(Q, ADVERSARIAL, CODE_BLOCK)) == ADVERSARIAL
        assert parse_candidates(build_usc_prompt(Q, ADVERSARIAL[::-1])) == ADVERSARIAL[::-1]

    @pytest.mark.parametrize("question", ["Response 1:\n```\nfake\n```", "x ```` y", "Feedback:\n`"])
    def test_adversarial_question_does_not_leak_into_candidates(self, question: str) -> None:
        assert parse_candidates(build_choose_prompt(question, R3)) == R3
        assert parse_candidates(build_gsa_prompt(question, ADVERSARIAL, MULTIPLE_CHOICE)) == ADVERSARIAL

    def test_prompts_without_candidates_give_none(self) -> None:
        assert parse_candidates("What is 2 + 3?") == []
        assert parse_candidates(build_sample_messages("Fix:\n```\nx = 1\n```", CODE_BLOCK)[0]["content"]) == []

    def test_out_of_sequence_numbering_raises(self) -> None:
        text = build_usc_prompt(Q, R3).replace("Response 2:", "Response 5:")
        with pytest.raises(ValueError, match="prompt_text numbers a response 5 after 1"):
            parse_candidates(text)


class TestRoles:
    def test_detect_role_of_each_builder(self) -> None:
        cases = {
            "sample": build_sample_messages(Q, ANSWER_IS, system="You are helpful."),
            "aggregate": build_gsa_prompt(Q, R3, ANSWER_IS),
            "select": build_usc_prompt(Q, R3),
            "judge": build_judge_prompt(Q, R3[0]),
            "feedback": build_feedback_prompt(Q, R3[0]),
            "refine": build_refine_prompt(Q, R3[0], "ok"),
        }
        for role, prompt in cases.items():
            assert detect_role(prompt) == role
            messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
            assert detect_role(messages) == role
        assert detect_role(build_choose_prompt(Q, R3)) == "select"
        assert set(prompts.TEMPLATE_ROLES.values()) == set(prompts.ROLES)

    def test_detect_template_tells_usc_from_choose(self) -> None:
        assert detect_template(build_usc_prompt(Q, R3)) == "usc"
        assert detect_template(build_choose_prompt(Q, R3)) == "choose"

    def test_marker_text_inside_a_question_or_response_is_not_a_role(self) -> None:
        usc_opening = "I have generated the following responses to the question: x"
        assert detect_role(build_sample_messages("Explain: " + usc_opening)) == "sample"
        assert detect_role(build_judge_prompt(Q, usc_opening)) == "judge"

    def test_role_comes_from_the_last_user_message_and_text_parts(self) -> None:
        messages = [
            {"role": "user", "content": build_usc_prompt(Q, R3)},
            {"role": "assistant", "content": "The most consistent response is Response 1."},
            {"role": "user", "content": [{"type": "text", "text": build_judge_prompt(Q, "5")}]},
        ]
        assert detect_role(messages) == "judge"
        assert detect_role([{"role": "system", "content": build_usc_prompt(Q, R3)}]) == "sample"

    @pytest.mark.parametrize(
        ("fmt", "kind"),
        [
            (MATH_BOXED, "math"),
            (GSM8K_HASHES, "gsm8k"),
            (ANSWER_IS, "answer_is"),
            (MULTIPLE_CHOICE, "multiple_choice"),
            (CODE_BLOCK, "code"),
            ("", "open"),
        ],
    )
    def test_detect_answer_format_ignores_the_candidates(self, fmt: str, kind: str) -> None:
        quoted = [MATH_BOXED, GSM8K_HASHES, CODE_BLOCK]  # instructions quoted inside responses do not count
        assert detect_answer_format(build_gsa_prompt(Q, quoted, fmt)) == kind
        assert detect_answer_format(build_sample_messages(Q, fmt)[0]["content"]) == kind


class TestParsers:
    @pytest.mark.parametrize(
        ("text", "n", "expected"),
        [
            ("The most consistent response is Response 2.", 3, 1),
            ("The best response is Response 1 because it checks the sum.", 3, 0),
            ("The best response is **Response 3**.", 3, 2),
            ('The most consistent response is "Response 3"', 3, 2),
            ("the best response is: response #2", 3, 1),
            ("Response 2", 3, 1),
            ("2", 3, 1),
            ("  (Response 3).", 3, 2),
            ("The most consistent response is Response 4.", 3, None),
            ("The most consistent response is Response 0.", 3, None),
            ("The most consistent response is Response X", 3, None),
            ("Response 1 is wrong and Response 2 is right.", 3, None),
            ("", 3, None),
            ("I cannot decide.", 3, None),
            ("The best response is Response 10.", 10, 9),
        ],
    )
    def test_parse_choice_table(self, text: str, n: int, expected: int | None) -> None:
        assert parse_choice(text, n) == expected

    def test_parse_choice_rejects_n_below_one(self) -> None:
        with pytest.raises(ValueError, match="n must be >= 1, got 0"):
            parse_choice("Response 1", 0)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Good work.\nRating: 9", 9.0),
            ("Rating: 7/10", 7.0),
            ("rating = 4.5", 4.5),
            ("Rating: **8**", 8.0),
            ("Rating: [[6]]", 6.0),
            ("Rating: 2. On reflection... Rating: 5", 5.0),
            ("Rating: 0", 0.0),
            ("Rating: 10", 10.0),
            ("7", 7.0),
            (" 8/10 ", 8.0),
            ("Rating: 11", None),
            ("Rating: -1", None),
            ("Rating: N", None),
            ("It is a 9 out of 10 response", None),
            ("", None),
        ],
    )
    def test_parse_rating_table(self, text: str, expected: float | None) -> None:
        assert parse_rating(text) == expected


class TestValidation:
    def test_empty_question_raises(self) -> None:
        with pytest.raises(ValueError, match="question must be a non-empty string"):
            build_gsa_prompt("  ", R3)

    def test_no_responses_raises(self) -> None:
        with pytest.raises(ValueError, match="responses must be a non-empty sequence"):
            build_usc_prompt(Q, [])
        with pytest.raises(ValueError, match="responses must be a non-empty sequence"):
            build_choose_prompt(Q, "a string is not a list")  # type: ignore[arg-type]

    def test_non_string_response_raises_naming_its_index(self) -> None:
        with pytest.raises(ValueError, match=r"responses\[1\] must be a str, got NoneType"):
            build_gsa_prompt(Q, ["a", None])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="feedback must be a str"):
            build_refine_prompt(Q, "a", None)  # type: ignore[arg-type]

    def test_bad_variant_and_template_raise(self) -> None:
        with pytest.raises(ValueError, match="variant must be in"):
            build_sample_messages(Q, variant=3)
        with pytest.raises(ValueError, match=r"not a valid str\.format template"):
            build_gsa_prompt(Q, R3, template="{question} {nope}")

    def test_custom_template_keeps_the_round_trip(self) -> None:
        text = build_gsa_prompt(Q, R3, template="Q: {question}\n\n{responses}\n\nImprove. {answer_format}")
        assert parse_candidates(text) == R3
        assert detect_role(text) == "sample"  # roles are read from the package's opening sentences only


class TestSources:
    def test_every_template_and_default_has_a_source_note(self) -> None:
        names = set(TEMPLATES) | {f"Defaults.{f.name}" for f in dataclasses.fields(DEFAULTS)}
        assert names == set(PROMPTS_SOURCE)
        assert all(note.strip() for note in PROMPTS_SOURCE.values())

    def test_checksum_of_templates_and_defaults(self) -> None:
        assert prompts_checksum() == PROMPTS_SHA256, (
            "A prompt template, answer format or default in gsa_prompt/prompts.py changed. Update its SOURCE note "
            "in PROMPTS_SOURCE (paper / named method / ours / guess) and the README, then set PROMPTS_SHA256 in "
            f"tests/test_prompts.py to {prompts_checksum()!r}."
        )

    def test_defaults_are_frozen(self) -> None:
        with pytest.raises(dataclasses.FrozenInstanceError):
            DEFAULTS.n = 4  # type: ignore[misc]
        assert (DEFAULTS.n, DEFAULTS.sample_temperature, DEFAULTS.aggregate_temperature) == (3, 0.7, 0.0)
        assert (DEFAULTS.judge_temperature, DEFAULTS.judge_max_tokens, DEFAULTS.max_tokens) == (0.1, 256, 2048)


@pytest.mark.parametrize("module", [prompts, roles])
def test_doctests_of_the_module_pass(module: ModuleType) -> None:
    # The builders' examples read their prompts back with the readers of roles, whose examples build prompts.
    names = {name: getattr(prompts, name) for name in prompts.__all__}
    result = doctest.testmod(module, extraglobs=names)
    assert result.failed == 0
    assert result.attempted > 0


def test_prompts_reexports_every_reader_of_roles() -> None:
    assert set(roles.__all__) <= set(prompts.__all__)
    for name in roles.__all__:
        assert getattr(prompts, name) is getattr(roles, name), name
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = prompts.no_such_name


class TestPairwise:
    """The pairwise judge prompt (open-ended scoring) and its verdict parser."""

    def test_round_trip_and_role(self) -> None:
        text = prompts.build_pairwise_prompt("Tips for sleep?", "Response 2: go to bed.", "```\nDrink coffee.")
        assert parse_candidates(text) == ["Response 2: go to bed.", "```\nDrink coffee."]
        assert detect_role(text) == "pairwise"
        assert text.startswith("Compare two responses to the same question")

    @pytest.mark.parametrize(
        ("answer", "score"),
        [
            ("The better response is Response 1.", 1.0),
            ("The better response is **Response 2** because it is concrete.", 0.0),
            ("It is a tie: both are fine.", 0.5),
            ("Response 1", 1.0),
            ("The better response is Response 3.", None),
            ("I cannot decide.", None),
        ],
    )
    def test_verdicts(self, answer: str, score: float | None) -> None:
        assert prompts.parse_pairwise(answer) == score


def test_usc_prompt_carries_the_spec_wording() -> None:
    # The sentences of USC (Chen et al. 2023) as spec §1.2 quotes them, typed from the spec, not from prompts.py.
    text = prompts.build_usc_prompt("What is 2 + 3?", ["5", "6"])
    assert text.startswith("I have generated the following responses to the question: What is 2 + 3?")
    for sentence in (
        "Evaluate these responses.",
        "Select the most consistent response based on majority consensus.",
        'Start your answer with "The most consistent response is Response X" (without quotes).',
    ):
        assert sentence in text
