"""The evaluation harness and the pairwise judge: statistics by hand, scoring, resume, open-ended judging."""

from __future__ import annotations

import doctest
import json
import math
from pathlib import Path

import pytest

from gsa_prompt import harness, judge
from gsa_prompt.client import Client, Endpoint, run_sync
from gsa_prompt.data import EvalItem
from gsa_prompt.harness import evaluate, mcnemar_exact, summarize, wilson_interval
from gsa_prompt.judge import judge_pairwise
from gsa_prompt.testing import FakeServer
from gsa_prompt.worlds import ArithmeticWorld, ChatWorld, stable_rng


def _arith(k: int) -> list[EvalItem]:
    return [EvalItem(q.id, q.question, q.answer, "answer_is") for q in ArithmeticWorld().questions(k, seed=3)]


def test_wilson_interval_by_hand() -> None:
    # p = 0.5, n = 100, z = 1.96: (0.5 + 0.0192) / 1.0384 ± 1.96 sqrt(0.0025 + 0.000096) / 1.0384
    lo, hi = wilson_interval(50, 100)
    z = 1.959963984540054
    centre = (0.5 + z * z / 200) / (1 + z * z / 100)
    half = z * math.sqrt(0.25 / 100 + z * z / 40000) / (1 + z * z / 100)
    assert (lo, hi) == pytest.approx((centre - half, centre + half), abs=1e-12)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0, abs=1e-12)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_mcnemar_exact_by_hand() -> None:
    # 3 discordant pairs all one way: p = 2 * (1/2)^3 = 0.25
    out = mcnemar_exact([True, True, True, False], [False, False, False, False])
    assert (out["b10"], out["b01"], out["p_value"]) == (3, 0, 0.25)
    assert mcnemar_exact([True, False], [True, False])["p_value"] == 1.0
    with pytest.raises(ValueError, match="must pair up"):
        mcnemar_exact([True], [])


def test_summarize_counts_and_pairs() -> None:
    rec = [{"item": str(i), "seed": 0, "method": m, "correct": c, "calls": k, "flags": [],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.0}}
           for m, outcomes, k in (("gsa", [1, 1, 1, 0], 4), ("sc", [0, 0, 1, 0], 4)) for i, c in enumerate(outcomes)]  # fmt: skip
    s = summarize(rec, ["gsa", "sc"])
    assert s["methods"]["gsa"]["accuracy"] == 0.75
    assert s["methods"]["sc"]["accuracy"] == 0.25
    assert s["methods"]["gsa"]["calls_per_q"] == 4
    assert s["methods"]["sc"]["prompt_tokens_per_q"] == 10
    assert s["mcnemar_gsa_vs"]["sc"] == {"b10": 2, "b01": 0, "p_value": 0.5}


def test_interval_counts_items_not_item_seed_pairs() -> None:
    # 100 items, 78 right, over 3 seeds with identical outcomes (a greedy method): the interval is Wilson's
    # for 78 of 100, not the narrower 234 of 300 (review finding); one seed gives the same numbers.
    def records(seeds: int) -> list[dict[str, object]]:
        return [{"item": str(i), "seed": s, "method": "greedy", "correct": i < 78, "calls": 1, "flags": [],
                 "usage": {}} for s in range(seeds) for i in range(100)]  # fmt: skip

    three, one = summarize(records(3), ["greedy"]), summarize(records(1), ["greedy"])
    assert three["methods"]["greedy"]["ci95"] == pytest.approx(list(wilson_interval(78, 100)))
    assert one["methods"]["greedy"]["ci95"] == three["methods"]["greedy"]["ci95"]
    assert (three["methods"]["greedy"]["n"], three["methods"]["greedy"]["items"]) == (300, 100)
    # an item right in 1 of 2 seeds counts half a success: item 99, wrong in seed 0, is right in seed 1
    mixed = records(1) + [dict(r, seed=1, correct=bool(r["correct"]) or r["item"] == "99") for r in records(1)]
    assert summarize(mixed, ["greedy"])["methods"]["greedy"]["ci95"] == pytest.approx(list(wilson_interval(78.5, 100)))


def test_evaluate_scores_writes_and_resumes(tmp_path: Path) -> None:
    items = _arith(30)
    with FakeServer() as server:
        client = Client(Endpoint(server.base_url, "fake-model", cache=str(tmp_path / "c.sqlite")))
        report = run_sync(evaluate(client, "arithmetic", items, ["greedy", "gsa"], out=tmp_path / "run",
                                   progress=False))  # fmt: skip
        lines = (tmp_path / "run" / "items.jsonl").read_text().splitlines()
        assert len(lines) == 60
        assert report.resumed == 0
        for r in report.records:  # the harness's verdict, recomputed from the record's own text
            item = next(it for it in items if it.id == r["item"])
            assert r["correct"] == (r["extracted"] == item.answer)
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert summary["methods"]["gsa"]["n"] == 30
        assert summary["methods"]["greedy"]["correct"] == sum(r["correct"] for r in report.records
                                                               if r["method"] == "greedy")  # fmt: skip
        (tmp_path / "run" / "items.jsonl").write_text("\n".join(lines[:45]) + "\n", encoding="utf-8")
        server.reset()
        again = run_sync(evaluate(client, "arithmetic", items, ["greedy", "gsa"], out=tmp_path / "run",
                                  progress=False))  # fmt: skip
        assert again.resumed == 45
        assert server.stats()["completions"] == 0
        for m in ("greedy", "gsa"):  # the same table, tokens included (cached samples count what they cost)
            for key in ("n", "correct", "accuracy", "calls_per_q"):
                assert again.summary["methods"][m][key] == pytest.approx(report.summary["methods"][m][key])
            for key in ("prompt_tokens_per_q", "completion_tokens_per_q"):  # cached samples keep their cost
                assert again.summary["methods"][m][key] == pytest.approx(report.summary["methods"][m][key], rel=0.05)
        assert [r["correct"] for r in again.records] == [r["correct"] for r in report.records]


def test_judge_pairwise_follows_hidden_quality_with_a_position_swap() -> None:
    world = ChatWorld()
    q = world.questions(1, seed=0)[0].question
    good, bad = world.render(q, "5", "open", stable_rng(1)), world.render(q, "1", "open", stable_rng(2))
    with FakeServer("chat") as server:
        client = Client(Endpoint(server.base_url, "fake-model"))
        assert run_sync(judge_pairwise(client, q, good, bad)).score == 1.0
        assert run_sync(judge_pairwise(client, q, bad, good)).score == 0.0
        equal = world.render(q, "5", "open", stable_rng(3))
        assert run_sync(judge_pairwise(client, q, good, equal)).score == 0.5
        same = run_sync(judge_pairwise(client, q, good, good))
        assert (same.score, same.calls) == (0.5, 0)
        assert server.stats()["by_role"] == {"pairwise": 6}  # both orders of 3 comparisons


def test_open_tasks_are_judged_against_the_greedy_reference() -> None:
    world = ChatWorld()
    items = [EvalItem(q.id, q.question, "", "open") for q in world.questions(25, seed=4)]
    with FakeServer("chat", aggregator="oracle") as server:
        client = Client(Endpoint(server.base_url, "fake-model"))
        report = run_sync(evaluate(client, "chat", items, ["greedy", "gsa"], progress=False, judge=client))
    greedy_text = {r["item"]: r["text"] for r in report.records if r["method"] == "greedy"}
    for r in report.records:
        q = next(it.question for it in items if it.id == r["item"])
        mine, ref = int(world.key_of(q, r["text"]) or 0), int(world.key_of(q, greedy_text[r["item"]]) or 0)
        assert r["score"] == (1.0 if mine > ref else 0.0 if mine < ref else 0.5)  # quality decides, both orders
        assert r["judged"]
    assert report.summary["methods"]["greedy"]["accuracy"] == 0.5  # against itself: all ties
    with pytest.raises(ValueError, match="open-ended items need a judge"):
        run_sync(evaluate(client, "chat", items, ["gsa"], progress=False))


def test_the_judges_requests_are_accounted_apart_from_the_methods() -> None:
    # review finding: the judge's tokens were in no ledger of the report
    world = ChatWorld()
    items = [EvalItem(q.id, q.question, "", "open") for q in world.questions(6, seed=5)]
    with FakeServer("chat", aggregator="oracle") as server:
        client = Client(Endpoint(server.base_url, "fake-model"))
        judge_client = Client(Endpoint(server.base_url, "fake-model"))  # its own ledger
        report = run_sync(evaluate(client, "chat", items, ["greedy", "gsa"], progress=False, judge=judge_client))
        pairwise = server.stats()["by_role"]["pairwise"]
    judged = report.summary["judge_ledger"]
    assert judged["calls"] == pairwise > 0  # every pairwise request the server saw, and only those
    assert sum(r["judge_usage"].get("calls", 0) for r in report.records) == pairwise
    assert sum(r["judge_usage"].get("prompt_tokens", 0) for r in report.records) == judged["prompt_tokens"] > 0
    assert report.summary["ledger"]["calls"] == server.stats()["completions"] - pairwise  # the methods' own
    for r in report.records:  # both orders, or none when the texts are the same
        assert r["judge_usage"]["calls"] in (0, 2)
    assert "Judge (pairwise, both orders): " + str(pairwise) + " calls" in harness.markdown(report.summary)


def test_evaluate_rejects_bad_arguments() -> None:
    client = Client(Endpoint("http://127.0.0.1:1/v1", "m"))
    with pytest.raises(ValueError, match="methods must be"):
        run_sync(evaluate(client, "t", _arith(1), ["magic"]))
    with pytest.raises(ValueError, match="items must not be empty"):
        run_sync(evaluate(client, "t", [], ["gsa"]))
    with pytest.raises(ValueError, match="seeds must not be empty"):
        run_sync(evaluate(client, "t", _arith(1), ["gsa"], seeds=[]))


@pytest.mark.parametrize("module", [harness, judge])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0
    if module is harness:
        assert result.attempted > 0


def test_resume_refuses_a_run_with_other_settings(tmp_path: Path) -> None:
    items = _arith(3)
    with FakeServer() as server:
        client = Client(Endpoint(server.base_url, "fake-model"))
        run_sync(evaluate(client, "arithmetic", items, ["greedy"], out=tmp_path / "run", progress=False))
        with pytest.raises(ValueError, match=r"other settings \(budget\)"):
            run_sync(evaluate(client, "arithmetic", items, ["greedy"], budget=5, out=tmp_path / "run", progress=False))
        # another method or seed on the same settings extends the run
        more = run_sync(evaluate(client, "arithmetic", items, ["greedy", "sc"], out=tmp_path / "run", progress=False))
        assert more.resumed == 3
        assert len(more.records) == 6


def test_resume_reuses_a_record_only_for_the_same_item(tmp_path: Path) -> None:
    # Two data files whose items share an id (ids default to "<task>-<i>"): the second run into the same
    # folder must answer its own question, not report the first file's record (review finding).
    first = [EvalItem("item-0", "What is 100 + 22?", "122", "answer_is")]
    second = [EvalItem("item-0", "What is 50 + 8?", "58", "answer_is")]
    with FakeServer() as server:
        client = Client(Endpoint(server.base_url, "fake-model"))
        a = run_sync(evaluate(client, "arithmetic", first, ["greedy"], out=tmp_path / "run", progress=False))
        b = run_sync(evaluate(client, "arithmetic", second, ["greedy"], out=tmp_path / "run", progress=False))
        again = run_sync(evaluate(client, "arithmetic", second, ["greedy"], out=tmp_path / "run", progress=False))
    assert (a.records[0]["reference"], b.records[0]["reference"]) == ("122", "58")
    assert b.resumed == 0
    assert again.resumed == 1  # the same item resumes
    assert b.records[0]["fingerprint"] == harness.item_fingerprint(second[0]) != harness.item_fingerprint(first[0])


def test_run_seeds_send_disjoint_request_seeds() -> None:
    # Sample i of run seed s is sent with seed s·2¹⁶ + i, so seeds 0 and 1 share no sample (with s + i, seed 1's
    # first samples were seed 0's later ones, as vLLM's own n-sampling numbers them).
    items = _arith(1)
    with FakeServer(persona="vllm") as server:
        client = Client(Endpoint(server.base_url, "fake-model", n_mode="loop"))
        report = run_sync(evaluate(client, "arithmetic", items, ["sc"], budget=3, seeds=(0, 1), progress=False))
        sent = sorted(r["seed"] for r in server.requests_log())
    assert sent == [0, 1, 2, 65536, 65537, 65538]
    by_seed = {r["seed"]: r["candidates"] for r in report.records}
    assert not set(by_seed[0]) & set(by_seed[1])


def test_methods_of_one_item_share_samples_through_the_cache(tmp_path: Path) -> None:
    # SC draws 4 samples of an item; GSA's 3 samples are the same prompt, seed and indices, so with a cache
    # they are served from it: one sample request per item, not two (the methods of one item run in turn).
    items = _arith(5)
    with FakeServer(persona="vllm") as server:
        client = Client(Endpoint(server.base_url, "fake-model", cache=str(tmp_path / "c.sqlite")))
        report = run_sync(evaluate(client, "arithmetic", items, ["sc", "gsa"], budget=4, progress=False))
        samples = [r for r in server.requests_log() if r["role"] == "sample"]
    assert len(samples) == 5
    by = {(r["item"], r["method"]): r["candidates"] for r in report.records}
    for it in items:
        assert by[(it.id, "gsa")] == by[(it.id, "sc")][:3]


def test_a_refused_item_is_flagged_and_the_run_goes_on() -> None:
    items = _arith(4)
    with FakeServer(persona="llamacpp") as server:  # n > 1 is a 400 there: force native n to make it fail
        client = Client(Endpoint(server.base_url, "fake-model", n_mode="native"))
        report = run_sync(evaluate(client, "arithmetic", items, ["greedy", "gsa"], progress=False))
    gsa = [r for r in report.records if r["method"] == "gsa"]
    assert all("error" in r["flags"] and not r["correct"] for r in gsa)
    assert all(r["error"] and "HTTP 400" in r["error"] for r in gsa)
    assert sum(r["method"] == "greedy" for r in report.records) == 4
