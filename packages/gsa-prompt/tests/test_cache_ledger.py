"""The response cache (keys, persistence, concurrent writers, no secrets) and the token/cost ledger."""

from __future__ import annotations

import doctest
import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from gsa_prompt import cache as cache_module
from gsa_prompt import ledger as ledger_module
from gsa_prompt.cache import ResponseCache, cache_key
from gsa_prompt.ledger import Ledger, Price, Usage, estimate_tokens

MSG = [{"role": "user", "content": "What is 2 + 2?"}]


def test_key_depends_on_everything_that_determines_a_response() -> None:
    base = cache_key("http://h/v1", "m", {"messages": MSG, "temperature": 0.7, "seed": 0}, 0)
    variants = [
        cache_key("http://other/v1", "m", {"messages": MSG, "temperature": 0.7, "seed": 0}, 0),
        cache_key("http://h/v1", "m2", {"messages": MSG, "temperature": 0.7, "seed": 0}, 0),
        cache_key("http://h/v1", "m", {"messages": MSG, "temperature": 0.8, "seed": 0}, 0),
        cache_key("http://h/v1", "m", {"messages": MSG, "temperature": 0.7, "seed": 1}, 0),
        cache_key("http://h/v1", "m", {"messages": [{"role": "user", "content": "x"}], "temperature": 0.7}, 0),
        cache_key("http://h/v1", "m", {"messages": MSG, "temperature": 0.7, "seed": 0}, 1),  # sample index
    ]
    assert len({base, *variants}) == 7
    # key order of the request and a trailing slash do not matter
    assert base == cache_key("http://h/v1/", "m", {"seed": 0, "temperature": 0.7, "messages": MSG}, 0)
    with pytest.raises(ValueError, match="index must be an integer >= 0"):
        cache_key("http://h/v1", "m", {}, -1)


def test_cache_persists_across_objects_and_counts_hits(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.sqlite"
    with ResponseCache(path) as c:
        assert c.get("k") is None
        c.put("k", "http://h/v1", "m", {"text": "4", "finish_reason": "stop"})
        c.put("k", "http://h/v1", "m", {"text": "other"})  # first writer wins
        assert c.get("k") == {"text": "4", "finish_reason": "stop"}
        assert (c.hits, c.misses) == (1, 1)
    with ResponseCache(path) as again:
        assert again.get("k") == {"text": "4", "finish_reason": "stop"}
        assert again.stats()["entries"] == 1
        assert again.stats()["by_model"] == [{"base_url": "http://h/v1", "model": "m", "entries": 1}]
        assert again.clear() == 1
        assert len(again) == 0


def _writer(path: str, start: int, count: int) -> None:
    c = ResponseCache(path)
    for i in range(start, start + count):
        c.put(f"k{i}", "http://h/v1", "m", {"text": str(i)})
        c.put("shared", "http://h/v1", "m", {"text": "same"})
    c.close()


def test_concurrent_writers_threads_and_processes_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    ResponseCache(path).close()  # create the schema once
    threads = [threading.Thread(target=_writer, args=(path, 1000 * t, 200)) for t in range(4)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 10_000 + 1000 * p, 200)) for p in range(2)]
    for w in [*threads, *procs]:
        w.start()
    for w in [*threads, *procs]:
        w.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    with ResponseCache(path) as c:
        assert len(c) == 6 * 200 + 1
        assert c.get("k10199") == {"text": "10199"}
        assert c.get("shared") == {"text": "same"}
    rows = sqlite3.connect(path).execute("SELECT COUNT(DISTINCT key) FROM responses").fetchone()
    assert rows[0] == 1201


def test_ledger_adds_usage_and_prices_it() -> None:
    led = Ledger(Price(input_per_mtok=0.15, output_per_mtok=0.60))
    led.add(Usage(1000, 200), method="gsa", role="sample")
    led.add(Usage(3000, 100), method="gsa", role="aggregate")
    led.add(Usage(500, 50, estimated=True), method="sc", role="sample")
    led.add(Usage(), method="sc", role="sample", cached=True)
    total = led.totals()
    assert (total["calls"], total["cached_calls"], total["estimated_calls"]) == (3, 1, 1)
    assert (total["prompt_tokens"], total["completion_tokens"]) == (4500, 350)
    # by hand: (4500 * 0.15 + 350 * 0.60) / 1e6
    assert total["cost_usd"] == pytest.approx((4500 * 0.15 + 350 * 0.60) / 1e6, rel=1e-12)
    assert led.totals("gsa")["prompt_tokens"] == 4000
    assert [(r["method"], r["role"]) for r in led.rows()] == [("gsa", "aggregate"), ("gsa", "sample"), ("sc", "sample")]
    assert Usage(3, 4).total_tokens == 7
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcde") == 2


def test_ledger_is_thread_safe() -> None:
    led = Ledger(Price(1.0, 1.0))

    def work() -> None:
        for _ in range(1000):
            led.add(Usage(1, 2), method="m", role="r")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert led.totals()["calls"] == 8000
    assert led.totals()["completion_tokens"] == 16000


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), True, "1"])
def test_price_rejects_bad_values(bad: object) -> None:
    with pytest.raises(ValueError, match="input_per_mtok must be a finite number >= 0"):
        Price(input_per_mtok=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("module", [cache_module, ledger_module])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0
    assert result.attempted > 0
