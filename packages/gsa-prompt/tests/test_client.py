"""The client over real HTTP against the fake server: n under every persona, retries, concurrency, cache, ledger."""

from __future__ import annotations

import asyncio
import doctest
import socket
import time
from pathlib import Path

import pytest

from gsa_prompt import client as client_module
from gsa_prompt.client import Client, Endpoint, EndpointRejected, EndpointUnavailable, run_sync
from gsa_prompt.ledger import Price
from gsa_prompt.testing import FakeServer, Fault

MSG = [{"role": "user", "content": "What is 12 + 30?"}]


def _client(server: FakeServer, **kw: object) -> Client:
    return Client(Endpoint(server.base_url, "fake-model", **kw))  # type: ignore[arg-type]


def _complete(client: Client, n: int = 3, **kw: object) -> list[client_module.Choice]:
    settings: dict[str, object] = {"temperature": 0.7, "seed": 0, **kw}
    return run_sync(client.complete(MSG, n=n, **settings))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("persona", "requests_first", "requests_second"),
    [("openai", 1, 1), ("vllm", 1, 1), ("ollama", 3, 3), ("llamacpp", 4, 3)],
)
def test_n_samples_under_every_persona(persona: str, requests_first: int, requests_second: int) -> None:
    # ollama answers n=3 with one choice: the client tops up with 2 single requests, then loops for good;
    # llama.cpp rejects n>1 with a 400: the client falls back to 3 single requests, then loops for good.
    with FakeServer(persona=persona) as server:
        client = _client(server)
        first = _complete(client)
        assert [c.index for c in first] == [0, 1, 2]
        assert all(c.text and not c.cached for c in first)
        assert server.stats()["completions"] == requests_first
        server.reset()
        _complete(client, seed=100)
        assert server.stats()["completions"] == requests_second
        assert client.native_n is (persona in ("openai", "vllm"))


def test_a_400_that_is_not_about_n_keeps_native_n() -> None:
    # In auto mode a 400 on an n > 1 request makes the client try one request per sample; when those are
    # refused too (this prompt is over the context), the 400 was not about n: the error is raised and the
    # next prompt is sampled with n again, not billed n times for the rest of the run (review finding).
    with FakeServer(persona="openai") as server:
        client = _client(server)
        _complete(client)
        assert client.native_n is True
        server.script("400", "400", "400", "400")
        with pytest.raises(EndpointRejected, match="maximum context length"):
            _complete(client, seed=7)
        assert client.native_n is True
        server.reset()
        _complete(client, seed=8)
        assert server.stats()["completions"] == 1


def test_looped_samples_get_distinct_seeds() -> None:
    with FakeServer(persona="llamacpp") as server:
        _complete(_client(server, n_mode="loop"), n=4)
        seeds = sorted(e["seed"] for e in server.requests_log())
        assert seeds == [0, 1, 2, 3]  # the same seed would give the same sample (spec pitfall 2)


def test_native_mode_surfaces_the_rejection() -> None:
    with FakeServer(persona="llamacpp") as server, pytest.raises(EndpointRejected, match="Only one completion"):
        _complete(_client(server, n_mode="native"))


def test_retry_after_is_honoured_and_counted() -> None:
    with FakeServer(persona="flaky") as server:
        server.script(Fault("429", retry_after=0.3), Fault("503", retry_after=0.3), "ok")
        client = _client(server, max_retries=3, backoff_s=5.0)  # a backoff of 5 s would fail the timing below
        t0 = time.perf_counter()
        got = _complete(client, n=1)
        elapsed = time.perf_counter() - t0
        assert got[0].text
        assert server.stats()["completions"] == 3
        assert client.requests == 3
        assert 0.55 <= elapsed < 3.0


def test_500_and_malformed_bodies_are_retried_then_give_up() -> None:
    with FakeServer(persona="flaky") as server:
        server.script("500", "malformed", "ok")
        assert _complete(_client(server, max_retries=2, backoff_s=0.01), n=1)[0].text
        assert server.stats()["completions"] == 3
        server.reset()
        server.script("500", "500", "500")
        with pytest.raises(EndpointUnavailable, match=r"failed after 3 attempt\(s\)"):
            _complete(_client(server, max_retries=2, backoff_s=0.01), n=1)


def test_timeouts_are_retried_then_reported() -> None:
    with FakeServer(persona="flaky") as server:
        server.script(Fault("timeout", delay_s=1.0), Fault("timeout", delay_s=1.0))
        client = _client(server, max_retries=1, timeout_s=0.2, backoff_s=0.01)
        t0 = time.perf_counter()
        with pytest.raises(EndpointUnavailable, match="Timeout"):
            _complete(client, n=1)
        assert time.perf_counter() - t0 < 1.5


def test_client_errors_are_not_retried() -> None:
    with FakeServer() as server:
        client = Client(Endpoint(server.base_url, "no-such-model", max_retries=4))
        with pytest.raises(EndpointRejected, match="HTTP 404") as info:
            _complete(client, n=1)
        assert info.value.status == 404
        assert server.stats()["completions"] == 1


def test_unreachable_endpoint_names_the_url_not_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-123")
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = Client(Endpoint(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, backoff_s=0.01, timeout_s=1.0))
    with pytest.raises(EndpointUnavailable) as info:
        _complete(client, n=1)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "sk-very-secret" not in str(info.value)


def test_bounded_concurrency_is_reached_and_never_exceeded() -> None:
    with FakeServer(latency_s=0.1) as server:
        client = _client(server, max_concurrency=4)

        async def many() -> None:
            await asyncio.gather(*(client.complete([{"role": "user", "content": f"What is {i} + 1?"}], n=1)
                                   for i in range(16)))  # fmt: skip

        t0 = time.perf_counter()
        run_sync(many())
        assert server.stats()["max_in_flight"] == 4
        assert time.perf_counter() - t0 >= 0.39  # 16 requests / 4 slots x 0.1 s


def test_cache_serves_a_rerun_and_holds_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-123")
    path = tmp_path / "cache.sqlite"
    with FakeServer() as server:
        first = _complete(_client(server, cache=str(path)), n=3)
        assert server.stats()["completions"] == 1
        server.reset()
        again_client = _client(server, cache=str(path))
        again = _complete(again_client, n=3)
        assert server.stats()["completions"] == 0  # every sample from the cache
        assert [c.text for c in again] == [c.text for c in first]
        assert all(c.cached for c in again)
        assert again_client.ledger.totals()["cached_calls"] == 3
        more = _complete(again_client, n=5)  # 3 cached + 2 new samples, in one request
        assert server.stats()["completions"] == 1
        assert [c.cached for c in more] == [True] * 3 + [False] * 2
        assert len({c.text for c in more}) == 5  # the top-up starts at another seed: no repeat of 0..2
        assert server.requests_log()[-1]["seed"] == 3
        assert again_client.ledger.totals()["cached_prompt_tokens"] > 0  # a cached sample keeps its tokens
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"sk-very-secret" not in raw


def test_ledger_equals_server_usage_and_prices_it() -> None:
    with FakeServer(persona="ollama") as server:
        client = _client(server, price=Price(input_per_mtok=2.0, output_per_mtok=8.0))
        _complete(client, n=3)
        _complete(client, n=1, max_tokens=50)
        usage = server.stats()["usage"]
        total = client.ledger.totals()
        assert (total["prompt_tokens"], total["completion_tokens"]) == (usage["prompt_tokens"],
                                                                        usage["completion_tokens"])  # fmt: skip
        assert total["calls"] == server.stats()["completions"] == 4
        expected = (usage["prompt_tokens"] * 2.0 + usage["completion_tokens"] * 8.0) / 1e6
        assert total["cost_usd"] == pytest.approx(expected, rel=1e-12)


def test_track_scopes_usage_to_a_block() -> None:
    with FakeServer() as server:
        client = _client(server)
        _complete(client, n=1)
        with client.track() as led:
            _complete(client, n=2, max_tokens=10)
        assert led.totals()["calls"] == 1
        assert client.ledger.totals()["calls"] == 2


def test_completions_api_and_models() -> None:
    with FakeServer() as server:
        client = _client(server, api="completions")
        assert _complete(client, n=2)[0].text
        assert server.stats()["by_endpoint"].get("/v1/completions") == 1
        assert run_sync(client.models()) == ["fake-model"]


def test_truncated_and_null_choices_are_flagged() -> None:
    with FakeServer(persona="flaky") as server:
        server.script("length", "null")
        client = _client(server)
        cut = _complete(client, n=1)[0]
        empty = _complete(client, n=1, max_tokens=7)[0]
        assert "truncated" in cut.flags
        assert cut.text
        assert empty.text is None
        assert "empty" in empty.flags


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "localhost:8000"}, "base_url must be an http"),
        ({"model": " "}, "model must be a non-empty string"),
        ({"max_concurrency": 0}, "max_concurrency must be an integer >= 1"),
        ({"timeout_s": 0}, "timeout_s must be a finite number > 0"),
        ({"n_mode": "many"}, "n_mode must be"),
        ({"api": "responses"}, "api must be"),
    ],
)
def test_endpoint_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"base_url": "http://127.0.0.1:1/v1", "model": "m", **kwargs}
    with pytest.raises(ValueError, match=message):
        Endpoint(**args)  # type: ignore[arg-type]


def test_complete_rejects_bad_arguments() -> None:
    client = Client(Endpoint("http://127.0.0.1:1/v1", "m"))
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        run_sync(client.complete(MSG, n=0))
    with pytest.raises(ValueError, match="messages must be a non-empty list"):
        run_sync(client.complete([], n=1))


def test_run_sync_refuses_a_running_loop() -> None:
    async def inner() -> None:
        async def nothing() -> int:
            return 1

        run_sync(nothing())

    with pytest.raises(RuntimeError, match="await its async twin"):
        asyncio.run(inner())


def test_docstring_examples() -> None:
    result = doctest.testmod(client_module)
    assert result.failed == 0
    assert result.attempted > 0


def test_cancellation_frees_the_slot_at_once() -> None:
    with FakeServer(latency_s=2.0) as server:
        client = _client(server, max_concurrency=1)

        async def scenario() -> float:
            slow = asyncio.ensure_future(client.complete(MSG, n=1))
            await asyncio.sleep(0.2)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            server.reset()
            t0 = time.perf_counter()
            # the cancelled request must not hold the only slot: the next one starts at once (2 s), not after it
            await asyncio.wait_for(client.complete([{"role": "user", "content": "What is 1 + 1?"}], n=1), 5.0)
            return time.perf_counter() - t0

        elapsed = run_sync(scenario())
        assert elapsed < 3.0  # one 2 s request, not the cancelled one's remainder first
