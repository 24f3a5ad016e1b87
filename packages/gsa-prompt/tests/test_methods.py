"""Every method over real HTTP against the fake server's scripted worlds: exact invariants and analytic accuracy."""

from __future__ import annotations

import asyncio
import doctest
import math
import warnings
from collections.abc import Sequence
from typing import Any

import pytest

from gsa_prompt import aggregate, methods
from gsa_prompt.client import Client, Endpoint, run_sync
from gsa_prompt.methods import METHODS, MethodResult, NoCandidates, budget_split
from gsa_prompt.prompts import (
    build_choose_prompt,
    build_feedback_prompt,
    build_gsa_prompt,
    build_judge_prompt,
    build_refine_prompt,
    build_sample_messages,
    build_usc_prompt,
    parse_candidates,
)
from gsa_prompt.tasks import task_kind
from gsa_prompt.testing import FakeServer
from gsa_prompt.worlds import (
    AGGREGATE_TABLE,
    SELECT_TABLE,
    ArithmeticWorld,
    Item,
    pass_at_n,
    refine_accuracy,
    sc_accuracy,
    table_accuracy,
)

P, M = 0.6, 6
ITEMS = ArithmeticWorld(p=P, m=M).questions(400, seed=1)
"""400 questions: σ = sqrt(p(1-p)/400) ≈ 0.024 at p = 0.6 (the accuracy checks allow 3σ)."""


def _run(server: FakeServer, method: str, items: Sequence[Item], **kw: Any) -> list[MethodResult]:
    client = Client(Endpoint(server.base_url, "fake-model", max_concurrency=32))

    async def all_items() -> list[MethodResult]:
        return list(await asyncio.gather(*(METHODS[method](client, it.question, "answer_is", **kw) for it in items)))

    return run_sync(all_items())


def _accuracy(results: Sequence[MethodResult], items: Sequence[Item]) -> float:
    kind = task_kind("answer_is")
    return sum(
        r.answer is not None and kind.equal(r.answer, it.answer) for r, it in zip(results, items, strict=True)
    ) / len(items)


def _within_3_sigma(measured: float, expected: float, n: int) -> None:
    sigma = math.sqrt(expected * (1 - expected) / n)
    assert abs(measured - expected) <= 3 * sigma, (measured, expected, sigma)


def test_gsa_with_a_copy_majority_aggregator_is_self_consistency_item_by_item() -> None:
    with FakeServer(aggregator="copy-majority") as server:
        g = _run(server, "gsa", ITEMS[:150], n=3)
        s = _run(server, "sc", ITEMS[:150], n=3)
    assert [r.candidates for r in g] == [r.candidates for r in s]  # the same 3 samples (same request)
    assert [r.answer for r in g] == [r.answer for r in s]


def test_gsa_with_one_sample_warns_that_it_is_a_rewrite() -> None:
    with FakeServer(aggregator="copy-first") as server:
        with pytest.warns(UserWarning, match="gsa with n = 1 aggregates a single sample"):
            one = _run(server, "gsa", ITEMS[:2], n=1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _run(server, "gsa", ITEMS[:2], n=2)
    assert [len(r.candidates) for r in one] == [1, 1]


def test_gsa_copy_first_returns_the_first_candidates_answer() -> None:
    kind = task_kind("answer_is")
    with FakeServer(aggregator="copy-first") as server:
        g = _run(server, "gsa", ITEMS[:100], n=3)
    assert all(r.answer == kind.answer(r.candidates[0]) for r in g)


def test_gsa_oracle_aggregator_is_pass_at_n_item_by_item() -> None:
    kind = task_kind("answer_is")
    with FakeServer(aggregator="oracle") as server:
        g = _run(server, "gsa", ITEMS, n=3)
    for r, it in zip(g, ITEMS, strict=True):
        any_right = any(kind.equal(kind.answer(c) or "", it.answer) for c in r.candidates)
        assert (r.answer == it.answer) is any_right
    _within_3_sigma(_accuracy(g, ITEMS), pass_at_n(P, 3), len(ITEMS))


def test_usc_with_a_majority_selector_is_self_consistency() -> None:
    with FakeServer(selector="majority") as server:
        u = _run(server, "usc", ITEMS[:150], n=3)
        s = _run(server, "sc", ITEMS[:150], n=3)
    assert [r.answer for r in u] == [r.answer for r in s]
    assert all("parse_failed" not in r.flags for r in u)


@pytest.mark.parametrize(
    ("method", "kw", "server_kw", "expected"),
    [
        ("greedy", {}, {}, P),
        ("sc", {"n": 3}, {}, sc_accuracy(P, M, 3)),  # 0.7280 (spec §5.11)
        ("sc", {"n": 4}, {}, sc_accuracy(P, M, 4)),  # 0.8133
        ("gsa", {"n": 3}, {"aggregator": "table"}, table_accuracy(P, 3, AGGREGATE_TABLE)),  # 0.7552
        ("cfn", {"n": 3}, {"selector": "table"}, table_accuracy(P, 3, SELECT_TABLE)),  # 0.7344
        ("bon", {"n": 2}, {}, pass_at_n(P, 2)),  # judge rates right 9, wrong 3: best of 2 = pass@2
        ("self-refine", {"rounds": 1}, {"refine_fix": 0.5}, refine_accuracy(P, 0.5)),  # 0.8
    ],
)
def test_accuracy_matches_the_analytic_value(method: str, kw: dict[str, Any], server_kw: dict[str, Any],
                                             expected: float) -> None:  # fmt: skip
    with FakeServer(**server_kw) as server:
        results = _run(server, method, ITEMS, **kw)
    _within_3_sigma(_accuracy(results, ITEMS), expected, len(ITEMS))


def test_analytic_values_of_the_spec() -> None:
    assert round(sc_accuracy(P, M, 3), 4) == 0.728
    assert round(sc_accuracy(P, M, 4), 4) == 0.8133
    assert round(table_accuracy(P, 3, AGGREGATE_TABLE), 4) == 0.7552
    assert round(table_accuracy(P, 3, SELECT_TABLE), 4) == 0.7344


def test_each_method_sends_exactly_its_prompts() -> None:
    item = ITEMS[0]
    fmt = task_kind("answer_is").answer_format
    sample = build_sample_messages(item.question, fmt)
    with FakeServer() as server:
        g = _run(server, "gsa", [item], n=3)[0]
        log = server.requests_log()
        assert [e["role"] for e in log] == ["sample", "aggregate"]
        assert log[0]["messages"] == sample
        assert log[0]["n"] == 3
        assert log[0]["temperature"] == 0.7
        assert log[1]["messages"] == [{"role": "user", "content": build_gsa_prompt(item.question, g.candidates, fmt)}]
        assert log[1]["temperature"] == 0.0
        assert parse_candidates(log[1]["messages"][0]["content"]) == g.candidates
        server.reset()
        u = _run(server, "usc", [item], n=3)[0]
        log = server.requests_log()
        assert log[1]["messages"][0]["content"] == build_usc_prompt(item.question, u.candidates)
        server.reset()
        c = _run(server, "cfn", [item], n=3)[0]
        assert server.requests_log()[1]["messages"][0]["content"] == build_choose_prompt(item.question, c.candidates)
        server.reset()
        b = _run(server, "bon", [item], n=2)[0]
        judged = sorted(e["messages"][0]["content"] for e in server.requests_log() if e["role"] == "judge")
        assert judged == sorted(build_judge_prompt(item.question, t) for t in b.candidates)
        server.reset()
        r = _run(server, "self-refine", [item], rounds=1)[0]
        log = server.requests_log()
        assert [e["role"] for e in log] == ["sample", "feedback", "refine"]
        fb = log[1]["messages"][0]["content"]
        assert fb == build_feedback_prompt(item.question, r.candidates[0])
        assert r.trace[0]["text"] is not None
        assert log[2]["messages"][0]["content"] == build_refine_prompt(item.question, r.candidates[0],
                                                                       r.trace[0]["text"], fmt)  # fmt: skip


def test_generations_counted_by_the_server_equal_the_calls_reported() -> None:
    for method, kw in [("greedy", {}), ("sc", {"n": 4}), ("usc", {"n": 3}), ("bon", {"n": 2}), ("gsa", {"n": 3}),
                       ("self-refine", {"rounds": 1})]:  # fmt: skip
        with FakeServer() as server:
            results = _run(server, method, ITEMS[:20], **kw)
            assert server.stats()["choices"] == sum(r.calls for r in results), method


def test_unparsable_selection_falls_back_to_the_vote_and_is_flagged() -> None:
    item = ITEMS[2]
    with FakeServer(persona="flaky") as server:
        server.script("ok", "null")  # the samples come back; the selection answer is empty
        got = _run(server, "usc", [item], n=3)[0]
        assert "parse_failed" in got.flags
        assert got.chosen == methods._vote_index(got.candidates, task_kind("answer_is"), [])
        server.reset()
        server.script("ok", "null", "ok")  # BoN: the first judge answer is empty -> rating 0, flagged
        b = _run(server, "bon", [item], n=2)[0]
        assert "parse_failed" in b.flags
        assert b.trace[0]["rating"] is None


def test_a_dropped_candidate_changes_the_aggregate() -> None:
    # The server reads the candidates back out of the prompt: aggregate two answers "7" and one "9" with
    # copy-majority, then drop one "7": the answer follows what the prompt holds.
    question = "What is 3 + 4?"
    fmt = task_kind("answer_is").answer_format
    with FakeServer(aggregator="copy-majority") as server:
        client = Client(Endpoint(server.base_url, "fake-model"))

        def ask(candidates: list[str]) -> str | None:
            text = run_sync(client.complete([{"role": "user", "content": build_gsa_prompt(question, candidates, fmt)}]))
            return task_kind("answer_is").answer(text[0].text)

        assert ask(["The answer is 7.", "The answer is 9.", "The answer is 7."]) == "7"
        assert ask(["The answer is 9.", "The answer is 9.", "The answer is 7."]) == "9"


def test_empty_samples_are_dropped_and_all_empty_raises() -> None:
    with FakeServer(persona="flaky") as server:
        server.script("null")  # choice 0 of the n=3 sample request comes back with null content
        client = Client(Endpoint(server.base_url, "fake-model"))
        result = run_sync(METHODS["gsa"](client, ITEMS[0].question, "answer_is", n=3))
        assert len(result.candidates) == 2
        assert "dropped_empty" in result.flags
        server.reset()
        server.script("null", "null", "null")  # one request per sample: all three empty
        looped = Client(Endpoint(server.base_url, "fake-model", n_mode="loop"))
        with pytest.raises(NoCandidates, match="all 3 sampled responses were empty"):
            run_sync(METHODS["gsa"](looped, ITEMS[1].question, "answer_is", n=3))


def test_sc_refuses_tasks_without_answers() -> None:
    client = Client(Endpoint("http://127.0.0.1:1/v1", "m"))
    with pytest.raises(ValueError, match="self-consistency needs extractable answers"):
        run_sync(METHODS["sc"](client, "Write a poem.", "open"))


def test_usage_per_result_adds_up_to_the_run() -> None:
    with FakeServer() as server:
        client = Client(Endpoint(server.base_url, "fake-model"))

        async def both() -> list[MethodResult]:
            return list(await asyncio.gather(*(methods.gsa(client, it.question, "answer_is") for it in ITEMS[:20])))

        results = run_sync(both())
        per_result = sum(r.usage["prompt_tokens"] + r.usage["completion_tokens"] for r in results)
        assert per_result == client.ledger.totals()["prompt_tokens"] + client.ledger.totals()["completion_tokens"]
        assert per_result == server.stats()["usage"]["total_tokens"]
        assert all(r.usage["calls"] == 2 for r in results)  # n=3 in one request + one aggregation


def test_aggregate_api_with_a_budget() -> None:
    with FakeServer() as server:
        r = aggregate(ITEMS[0].question, method="gsa", task="answer_is", base_url=server.base_url,
                      model="fake-model", budget=4)  # fmt: skip
        assert r.calls == 4
        assert len(r.candidates) == 3
        assert r.answer is not None
        with pytest.raises(ValueError, match="budget sets n"):
            aggregate("q?", method="gsa", base_url=server.base_url, model="fake-model", budget=4, n=3)
    with pytest.raises(ValueError, match="method must be one of"):
        aggregate("q?", method="magic", base_url="http://127.0.0.1:1/v1", model="m")
    with pytest.raises(ValueError, match="base_url and model are required"):
        aggregate("q?")


def test_budget_split_of_every_method() -> None:
    assert {m: budget_split(m, 4) for m in METHODS} == {
        "greedy": {}, "sc": {"n": 4}, "usc": {"n": 3}, "cfn": {"n": 3}, "bon": {"n": 2},
        "self-refine": {"rounds": 1}, "gsa": {"n": 3},
    }  # fmt: skip
    with pytest.raises(ValueError, match="budget must be an integer >= 3 calls for self-refine"):
        budget_split("self-refine", 2)


def test_docstring_examples() -> None:
    result = doctest.testmod(methods)
    assert result.failed == 0
    assert result.attempted > 0
