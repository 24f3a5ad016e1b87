"""Tests of gsa_prompt.testing.FakeServer (driven by the real openai client over HTTP) and gsa_prompt.worlds."""

from __future__ import annotations

import doctest
import http.client
import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from gsa_prompt import policies, testing, worlds
from gsa_prompt.prompts import (
    ANSWER_IS,
    GSM8K_HASHES,
    MATH_BOXED,
    build_choose_prompt,
    build_feedback_prompt,
    build_gsa_prompt,
    build_judge_prompt,
    build_refine_prompt,
    build_sample_messages,
    build_usc_prompt,
    parse_choice,
    parse_rating,
)
from gsa_prompt.testing import FakeServer, Fault, approx_tokens
from gsa_prompt.worlds import ArithmeticWorld, ChatWorld, CodeWorld, MultipleChoiceWorld, stable_rng

pytestmark = pytest.mark.timeout(60)

MODEL = "fake-model"
Q = "What is 12 + 30?"  # correct 42; distractors 43, 41, 44, 40, 45, 39


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


def client_for(server: FakeServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, **kwargs)


def ask(client: openai.OpenAI, content: str, **kwargs: Any) -> Any:
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}], **kwargs)


def raw(server: FakeServer, path: str, body: bytes | None = None, auth: str | None = "Bearer sk-test") -> Any:
    """``(status, headers, parsed or raw body)`` of a request made with urllib (no client-side retries)."""
    request = urllib.request.Request(server.url(path), data=body, method="POST" if body is not None else "GET")
    if auth is not None:
        request.add_header("Authorization", auth)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, headers, data = response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        status, headers, data = err.code, err.headers, err.read()
    try:
        return status, headers, json.loads(data)
    except ValueError:
        return status, headers, data


def sample_body(n: int = 1, **extra: Any) -> bytes:
    return json.dumps({"model": MODEL, "messages": [{"role": "user", "content": Q}], "n": n, **extra}).encode()


class TestPersonas:
    @pytest.mark.parametrize(("persona", "choices"), [("openai", 3), ("vllm", 3), ("ollama", 1), ("flaky", 3)])
    def test_n_three_returns_the_persona_choice_count(self, persona: str, choices: int) -> None:
        with FakeServer(persona=persona) as server:
            response = ask(client_for(server), Q, n=3, temperature=0.7, seed=1)
        assert [c.index for c in response.choices] == list(range(choices))
        assert response.object == "chat.completion"
        assert response.model == MODEL
        assert all(c.message.role == "assistant" and c.finish_reason == "stop" for c in response.choices)
        # usage: chars/4 of the prompt once, plus chars/4 of every choice
        assert response.usage.prompt_tokens == approx_tokens(Q)
        assert response.usage.completion_tokens == sum(approx_tokens(c.message.content) for c in response.choices)
        assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens

    def test_llamacpp_rejects_n_above_one(self) -> None:
        with FakeServer(persona="llamacpp") as server:
            client = client_for(server)
            with pytest.raises(openai.BadRequestError, match="Only one completion choice"):
                ask(client, Q, n=3)
            assert len(ask(client, Q, n=1).choices) == 1
            assert server.stats()["by_status"] == {"400": 1, "200": 1}

    def test_completions_endpoint_and_models_list(self, server: FakeServer) -> None:
        client = client_for(server)
        completion = client.completions.create(model=MODEL, prompt=Q, n=2, temperature=0.7, seed=3)
        assert completion.object == "text_completion"
        assert len(completion.choices) == 2
        assert ArithmeticWorld().key_of(Q, completion.choices[0].text) is not None
        assert [m.id for m in client.models.list()] == [MODEL]


class TestProtocol:
    def test_missing_or_empty_key_is_401(self, server: FakeServer) -> None:
        for auth in (None, "Bearer ", "Basic abc"):
            status, _, body = raw(server, "/v1/chat/completions", sample_body(), auth=auth)
            assert status == 401
            assert body["error"]["code"] == "invalid_api_key"
        assert raw(server, "/v1/models", auth=None)[0] == 401

    def test_unknown_model_is_404_not_found(self, server: FakeServer) -> None:
        with pytest.raises(openai.NotFoundError) as info:
            client_for(server).chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": Q}])
        assert info.value.status_code == 404
        assert info.value.body["code"] == "model_not_found"  # type: ignore[index]

    @pytest.mark.parametrize(
        "body",
        [
            b"{not json",
            b"[1, 2]",
            sample_body(n=0),
            sample_body(temperature=3),
            sample_body(max_tokens=0),
            json.dumps({"model": MODEL, "messages": []}).encode(),
            sample_body(seed="x"),
        ],
    )
    def test_bad_request_body_is_400_with_an_openai_error(self, server: FakeServer, body: bytes) -> None:
        status, _, payload = raw(server, "/v1/chat/completions", body)
        assert status == 400
        assert payload["error"]["type"] == "invalid_request_error"
        assert raw(server, "/v1/chat/completions", sample_body())[0] == 200  # the server still serves

    def test_unknown_path_is_404(self, server: FakeServer) -> None:
        assert raw(server, "/v1/embeddings", b"{}")[0] == 404

    def test_max_tokens_truncates_with_finish_reason_length(self, server: FakeServer) -> None:
        choice = ask(client_for(server), Q, max_tokens=3, temperature=0).choices[0]
        assert choice.finish_reason == "length"
        assert len(choice.message.content) == 12

    def test_stats_count_roles_statuses_and_usage(self, server: FakeServer) -> None:
        client = client_for(server)
        candidates = [c.message.content for c in ask(client, Q, n=3, seed=0).choices]
        prompts = [
            build_gsa_prompt(Q, candidates, ANSWER_IS),
            build_usc_prompt(Q, candidates),
            build_choose_prompt(Q, candidates),
            build_judge_prompt(Q, candidates[0]),
            build_feedback_prompt(Q, candidates[0]),
            build_refine_prompt(Q, candidates[0], "Check it.", ANSWER_IS),
        ]
        usage = [ask(client, p, temperature=0).usage for p in prompts]
        raw(server, "/v1/chat/completions", sample_body(), auth=None)
        stats = raw(server, "/_stats")[2]
        assert stats["by_role"] == {"sample": 1, "aggregate": 1, "select": 2, "judge": 1, "feedback": 1, "refine": 1}
        assert stats["by_status"] == {"200": 7, "401": 1}
        assert (stats["requests"], stats["completions"], stats["choices"]) == (8, 7, 9)
        assert stats["usage"]["prompt_tokens"] == approx_tokens(Q) + sum(u.prompt_tokens for u in usage)
        assert [e["role"] for e in server.requests_log()][1:] == [
            "aggregate",
            "select",
            "select",
            "judge",
            "feedback",
            "refine",
        ]
        assert raw(server, "/_reset", b"")[0] == 200
        assert server.stats()["requests"] == 0
        assert server.requests_log() == []


class TestFaults:
    def test_script_is_consumed_in_order(self) -> None:
        with FakeServer(persona="flaky", faults=["429", Fault("500"), "length", "null", "ok"]) as server:
            client = client_for(server)
            with pytest.raises(openai.RateLimitError):
                ask(client, Q)
            with pytest.raises(openai.InternalServerError):
                ask(client, Q)
            truncated = ask(client, Q, temperature=0).choices[0]
            full = ask(client, Q, temperature=0).choices[0]  # "null"
            assert full.message.content is None
            assert ask(client, Q, temperature=0).choices[0].message.content.startswith(truncated.message.content)
            assert truncated.finish_reason == "length"
            assert [e["fault"] for e in server.requests_log()] == ["429", "500", "length", "null", "ok"]
            assert server.stats()["by_status"] == {"429": 1, "500": 1, "200": 3}

    def test_retry_after_header_is_sent(self, server: FakeServer) -> None:
        server.script(Fault("429", retry_after=2.0), Fault("503", retry_after=0.5))
        status, headers, body = raw(server, "/v1/chat/completions", sample_body())
        assert (status, headers["Retry-After"], body["error"]["type"]) == (429, "2", "rate_limit_error")
        status, headers, _ = raw(server, "/v1/chat/completions", sample_body())
        assert (status, headers["Retry-After"]) == (503, "0.5")

    def test_openai_client_retries_on_429_then_succeeds(self) -> None:
        with FakeServer(faults=[Fault("429", retry_after=0.01)] * 2) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=2)
            assert ask(client, Q).choices[0].message.content
            assert server.stats()["by_status"] == {"429": 2, "200": 1}  # 3 server hits

    def test_timeout_past_the_client_timeout(self) -> None:
        with FakeServer(faults=[Fault("timeout", delay_s=1.0)]) as server:
            start = time.perf_counter()
            with pytest.raises(openai.APITimeoutError):
                ask(client_for(server, timeout=0.2), Q)
            assert time.perf_counter() - start < 0.9
            assert ask(client_for(server), Q).choices  # next request is served

    def test_malformed_body_and_disconnect(self, server: FakeServer) -> None:
        server.script("malformed", "disconnect")
        status, _, body = raw(server, "/v1/chat/completions", sample_body())
        assert status == 200
        assert isinstance(body, bytes)
        assert body.startswith(b'{"id"')
        with pytest.raises(openai.APIConnectionError):
            ask(client_for(server), Q)

    def test_close_does_not_hang_on_a_sleeping_request(self) -> None:
        server = FakeServer(faults=[Fault("timeout", delay_s=30.0)])
        outcome: list[BaseException] = []

        def call() -> None:
            try:
                raw(server, "/v1/chat/completions", sample_body())
            except (OSError, http.client.HTTPException) as err:
                outcome.append(err)

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        time.sleep(0.1)
        start = time.perf_counter()
        server.close()
        server.close()  # idempotent
        assert time.perf_counter() - start < 1.0
        thread.join(timeout=2.0)
        assert not thread.is_alive()
        assert len(outcome) == 1  # the sleeping request is hung up on, not answered

    def test_bad_arguments_raise_value_error(self) -> None:
        with pytest.raises(ValueError, match="persona must be one of"):
            FakeServer(persona="anthropic")
        with pytest.raises(ValueError, match="world must be one of"):
            FakeServer(world="chess")
        with pytest.raises(ValueError, match="aggregator must be one of"):
            FakeServer(aggregator="best")
        with pytest.raises(ValueError, match="kind must be one of"):
            Fault("418")


class TestDeterminism:
    def test_same_seed_and_messages_give_the_same_text(self, server: FakeServer) -> None:
        first = [c.message.content for c in ask(client_for(server), Q, n=4, seed=7).choices]
        with FakeServer() as other:
            assert [c.message.content for c in ask(client_for(other), Q, n=4, seed=7).choices] == first
        texts = {c.message.content for seed in range(8) for c in ask(client_for(server), Q, seed=seed).choices}
        assert len(texts) > 1

    def test_temperature_zero_is_greedy(self, server: FakeServer) -> None:
        client = client_for(server)
        texts = {c.message.content for s in (0, 1) for c in ask(client, Q, n=3, temperature=0, seed=s).choices}
        assert len(texts) == 1

    def test_without_seed_each_repeat_is_a_fresh_draw_that_replays_after_reset(self, server: FakeServer) -> None:
        client = client_for(server)
        run = [ask(client, Q).choices[0].message.content for _ in range(6)]
        server.reset()
        assert [ask(client, Q).choices[0].message.content for _ in range(6)] == run
        assert len(set(run)) > 1

    def test_choice_indices_are_independent_draws(self, server: FakeServer) -> None:
        # P(two independent samples agree) = p^2 + (1 - p)^2 / m = 0.36 + 0.16 / 6 (closed form)
        world, client = ArithmeticWorld(), client_for(server)
        agree, pairs = 0, 0
        for item in world.questions(40, seed=1):
            keys = [world.key_of(item.question, c.message.content) for c in ask(client, item.question, n=50).choices]
            agree += sum(keys[i] == keys[i + 1] for i in range(0, 50, 2))
            pairs += 25
        expected = 0.6**2 + 0.4**2 / 6
        assert abs(agree / pairs - expected) < 3 * math.sqrt(expected * (1 - expected) / pairs)


class TestWorldsOverHTTP:
    def test_arithmetic_per_sample_accuracy_matches_p(self, server: FakeServer) -> None:
        world, client, correct, total = ArithmeticWorld(p=0.6, m=6), client_for(server), 0, 0
        for item in world.questions(40, seed=0):
            content = build_sample_messages(item.question, GSM8K_HASHES)[0]["content"]
            for choice in ask(client, content, n=50, seed=0).choices:
                assert choice.message.content.splitlines()[-1].startswith("#### ")
                correct += world.key_of(item.question, choice.message.content) == item.answer
                total += 1
        assert total == 2000
        assert abs(correct / total - 0.6) < 3 * math.sqrt(0.6 * 0.4 / total)

    def test_copy_majority_answers_the_candidates_actually_in_the_prompt(self, server: FakeServer) -> None:
        world, client = ArithmeticWorld(), client_for(server)
        candidates = [world.render(Q, key, "answer_is", stable_rng(i)) for i, key in enumerate(["41", "42", "42"])]
        full = ask(client, build_gsa_prompt(Q, candidates, MATH_BOXED), temperature=0).choices[0].message.content
        dropped = ask(client, build_gsa_prompt(Q, candidates[:2], MATH_BOXED), temperature=0).choices[0]
        assert "\\boxed{42}" in full  # majority of 41, 42, 42
        assert "\\boxed{41}" in dropped.message.content  # 41 vs 42: a tie, first seen wins

    def test_selector_judge_and_refine_read_the_candidates(self) -> None:
        world = ArithmeticWorld()
        candidates = [world.render(Q, key, "answer_is", stable_rng(i)) for i, key in enumerate(["41", "42", "42"])]
        with FakeServer(selector="majority", refine_fix=1.0) as server:
            client = client_for(server)
            usc = ask(client, build_usc_prompt(Q, candidates), temperature=0).choices[0].message.content
            assert usc.startswith("The most consistent response is")
            assert parse_choice(usc, 3) == 1
            best = ask(client, build_choose_prompt(Q, candidates[:1]), temperature=0).choices[0].message.content
            assert best.startswith("The best response is")
            assert parse_choice(best, 1) == 0
            ratings = [
                parse_rating(ask(client, build_judge_prompt(Q, c)).choices[0].message.content) for c in candidates
            ]
            assert ratings == [3.0, 9.0, 9.0]
            refined = ask(client, build_refine_prompt(Q, candidates[0], "wrong", ANSWER_IS)).choices[0].message.content
            assert world.key_of(Q, refined) == "42"

    def test_concurrency_max_in_flight_is_the_thread_count(self) -> None:
        with FakeServer(latency_s=0.1) as server:
            client, barrier, errors = client_for(server), threading.Barrier(8), []

            def work() -> None:
                barrier.wait()
                try:
                    ask(client, Q)
                except Exception as err:  # pragma: no cover - reported below
                    errors.append(err)

            threads = [threading.Thread(target=work) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=10)
            stats = server.stats()
        assert errors == []
        assert stats["completions"] == 8
        assert stats["max_in_flight"] == 8
        assert stats["in_flight"] == 0

    @pytest.mark.parametrize("world", [MultipleChoiceWorld(p=0.5), CodeWorld(p=0.5), ChatWorld(p=0.5)])
    def test_other_worlds_answer_in_their_format(self, world: worlds.World) -> None:
        item = world.questions(1, seed=2)[0]
        with FakeServer(world, aggregator="oracle") as server:
            client = client_for(server)
            texts = [c.message.content for c in ask(client, item.question, n=20, seed=0).choices]
            keys = [world.key_of(item.question, t) for t in texts]
            assert None not in keys
            assert len(set(keys)) > 1
            merged = ask(client, build_gsa_prompt(item.question, texts), temperature=0).choices[0].message.content
            assert world.is_correct(item.question, world.key_of(item.question, merged))  # oracle: some were correct


class TestForeignPrompts:
    """Prompts that are none of the package's (another library's aggregation, critique or rating prompt)."""

    # A generic aggregation prompt in no library's wording: the question, three drafts, a request to write anew.
    STATED = ("41", "43", "43")  # all wrong (42 is right); majority 43

    def aggregation_prompt(self) -> str:
        world = ArithmeticWorld()
        drafts = [world.render(Q, key, "answer_is", stable_rng(i)) for i, key in enumerate(self.STATED)]
        body = "\n\n".join(f"Draft {i + 1}: {d}" for i, d in enumerate(drafts))
        return f"Question: {Q}\n\n{body}\n\nWrite one final response to the question. {ANSWER_IS}"

    def test_fresh_ignores_the_stated_answers_and_read_aggregates_them(self) -> None:
        prompt = self.aggregation_prompt()
        # p = 1: a fresh draw is always right, so a right answer shows the drafts were ignored (default mode).
        with FakeServer(ArithmeticWorld(p=1.0), aggregator="copy-majority") as server:
            fresh = ask(client_for(server), prompt, temperature=0).choices[0].message.content
        with FakeServer(ArithmeticWorld(p=1.0), aggregator="copy-majority", foreign="read") as server:
            read = ask(client_for(server), prompt, temperature=0).choices[0].message.content
            assert server.stats()["by_role"] == {"sample": 1}
        assert ArithmeticWorld().key_of(Q, fresh) == "42"
        assert ArithmeticWorld().key_of(Q, read) == "43"  # the majority of 41, 43, 43, worked by hand

    def test_read_rates_the_last_stated_answer_as_a_bare_number(self) -> None:
        world = ArithmeticWorld()

        def rate(server: FakeServer, key: str) -> str:
            messages = [{"role": "user", "content": Q}, {"role": "assistant", "content": world.render(Q, key, "open", stable_rng(0))},
                        {"role": "user", "content": "Rate the above response from 0 to 10. Reply with a number only."}]  # fmt: skip
            reply = client_for(server).chat.completions.create(model=MODEL, messages=messages, temperature=0.1)
            return str(reply.choices[0].message.content)

        with FakeServer(foreign="read") as server:
            assert (rate(server, "42"), rate(server, "41")) == ("9", "3")  # World.key_rating: right 9, wrong 3
        with FakeServer() as server:  # fresh: the rating request holds no question, so no answer
            assert rate(server, "42") == "I cannot answer that question."

    def test_read_answers_plain_questions_and_package_prompts_as_fresh_does(self) -> None:
        world = ArithmeticWorld()
        candidates = [world.render(Q, key, "answer_is", stable_rng(i)) for i, key in enumerate(["41", "42", "42"])]
        prompts = [build_sample_messages(Q, ANSWER_IS)[0]["content"], build_gsa_prompt(Q, candidates, ANSWER_IS),
                   build_judge_prompt(Q, candidates[0])]  # fmt: skip
        texts = {}
        for mode in testing.FOREIGN:
            with FakeServer(foreign=mode) as server:
                texts[mode] = [ask(client_for(server), c, n=5, seed=3).choices for c in prompts]
        assert [[c.message.content for c in cs] for cs in texts["read"]] == [
            [c.message.content for c in cs] for cs in texts["fresh"]
        ]

    def test_stated_keys_in_order_and_not_in_instructions(self) -> None:
        world = ArithmeticWorld()
        text = f"{Q} {ANSWER_IS} {MATH_BOXED} {GSM8K_HASHES} A: \\boxed{{42}}. B: The answer is 41. C: #### 42"
        assert world.stated_keys(text) == ["42", "41", "42"]
        assert world.stated_keys("The answer is 5.") == []  # no question of the world
        assert ChatWorld().stated_keys("Give advice on saving money. The answer is 5.") == []

    def test_bad_foreign_raises(self) -> None:
        with pytest.raises(ValueError, match="foreign must be one of"):
            FakeServer(foreign="guess")


class TestWorldsAnalytic:
    def test_sc_and_table_accuracies_match_the_spec_enumeration(self) -> None:
        # spec §5.11, exact enumeration (SC@3 by hand: 0.648 + 0.288 * 5/6 / 3 = 0.728)
        assert round(worlds.sc_accuracy(0.6, 6, 3), 4) == 0.728
        assert round(worlds.sc_accuracy(0.6, 6, 4), 4) == 0.8133
        assert round(worlds.sc_accuracy(0.6, 6, 5), 4) == 0.8628
        assert round(worlds.pass_at_n(0.6, 3), 4) == 0.936
        assert round(worlds.table_accuracy(0.6, 3, worlds.AGGREGATE_TABLE), 4) == 0.7552
        assert round(worlds.table_accuracy(0.6, 3, worlds.SELECT_TABLE), 4) == 0.7344

    def test_table_policies_monte_carlo_match_the_closed_form(self) -> None:
        world, rng, trials = ArithmeticWorld(), stable_rng("mc"), 20000
        hits_a = hits_s = 0
        for _ in range(trials):
            keys = [world.draw(Q, rng) for _ in range(3)]
            hits_a += world.is_correct(Q, worlds.aggregate_key(world, Q, keys, "table", rng))
            hits_s += world.is_correct(Q, keys[worlds.select_index(world, Q, keys, "table", rng)])
        for hits, expected in ((hits_a, 0.7552), (hits_s, 0.7344)):
            assert abs(hits / trials - expected) < 3 * math.sqrt(expected * (1 - expected) / trials)

    def test_questions_are_reproducible_and_self_describing(self) -> None:
        world = MultipleChoiceWorld()
        items = world.questions(50, seed=3)
        assert items == world.questions(50, seed=3) != world.questions(50, seed=4)
        assert all(world.reference(i.question) == i.answer for i in items)
        code = CodeWorld().questions(1)[0]
        namespace: dict[str, Any] = {}
        exec(code.answer, namespace)  # the reference solution passes its own tests
        for test in code.tests:
            exec(test, namespace)

    def test_bad_world_arguments_raise(self) -> None:
        with pytest.raises(ValueError, match="p must be in"):
            ArithmeticWorld(p=1.5)
        with pytest.raises(ValueError, match="m must be >= 1"):
            ArithmeticWorld(m=0)
        with pytest.raises(ValueError, match="k must be >= 0"):
            ArithmeticWorld().questions(-1)


@pytest.mark.parametrize("module", [testing, worlds, policies])
def test_doctests_of_the_module_pass(module: Any) -> None:
    # The examples of policies play their policies on the worlds of worlds.
    names = {name: getattr(worlds, name) for name in worlds.__all__}
    result = doctest.testmod(module, extraglobs=names)
    assert result.failed == 0
    assert result.attempted > 0


def test_worlds_reexports_every_policy() -> None:
    assert set(policies.__all__) <= set(worlds.__all__)
    for name in policies.__all__:
        assert getattr(worlds, name) is getattr(policies, name), name
