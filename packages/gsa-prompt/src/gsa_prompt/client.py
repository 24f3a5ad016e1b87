"""The client every method runs on: the official ``openai`` client against any OpenAI-compatible endpoint.

What it adds to ``openai.AsyncOpenAI`` (spec §4.3, §7):

- **n samples, whatever the server does with n.** ``n_mode="native"`` sends one request with ``n``;
  ``"loop"`` sends ``n`` concurrent single requests with seeds ``seed + i`` (the same seed would return
  the same sample on a seed-honouring server: pitfall 2); ``"auto"`` (default) tries ``n`` once and falls
  back to the loop for good when the server returns fewer choices (Ollama) or rejects ``n > 1``
  (llama.cpp), topping up what is missing.
- **Bounded concurrency** (one semaphore slot per HTTP request) and **one retry layer**: the openai client
  runs with ``max_retries=0`` (pitfall 4); 429, 5xx, timeouts, connection errors and malformed bodies are
  retried up to ``max_retries`` times after ``Retry-After`` (seconds, or ``retry-after-ms``) when the
  server sends it, else a jittered exponential backoff; then :class:`EndpointUnavailable`. A 4xx other
  than 408/409/429 is not retried: :class:`EndpointRejected`.
- **An on-disk cache** (:class:`~gsa_prompt.cache.ResponseCache`) per sample, so reruns cost nothing,
  and a **ledger** (:class:`~gsa_prompt.ledger.Ledger`) of calls, tokens and dollars.
- **API keys only from the environment** (``api_key_env``), read when a request is made, never stored on
  the :class:`Endpoint`, in the cache, the ledger, logs or error messages.

Every call is async; :func:`run_sync` runs one from synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import email.utils
import json
import logging
import math
import os
import random
import time
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar

from gsa_prompt.cache import ResponseCache, cache_key
from gsa_prompt.ledger import Ledger, Price, Usage, estimate_tokens

__all__ = ["Choice", "Client", "Endpoint", "EndpointError", "EndpointRejected", "EndpointUnavailable", "run_sync"]

log = logging.getLogger(__name__)
_OPENED: contextvars.ContextVar[list[Client] | None] = contextvars.ContextVar("gsa_prompt_opened", default=None)
"""Clients that opened connections inside the current :func:`run_sync` (closed before its loop ends)."""
_SCOPES: contextvars.ContextVar[tuple[Ledger, ...]] = contextvars.ContextVar("gsa_prompt_ledgers", default=())
"""Ledgers of the :meth:`Client.track` blocks the current task runs in (inherited by the tasks it starts)."""
T = TypeVar("T")
Messages = Sequence[Mapping[str, str]]


class EndpointError(RuntimeError):
    """A request to the endpoint failed for good (never carries the API key)."""


class EndpointUnavailable(EndpointError):
    """The endpoint did not answer successfully after every retry (connection, timeout, 429, 5xx)."""


class EndpointRejected(EndpointError):
    """The endpoint refused the request (401/403/404/400/422...): retrying would not help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where and how to send requests; holds no secret (the key is read from ``api_key_env`` per request)."""

    base_url: str
    """e.g. ``http://127.0.0.1:8000/v1`` (vLLM), ``http://localhost:11434/v1`` (Ollama), ``https://api.openai.com/v1``."""
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    """environment variable holding the key; unset -> the placeholder ``"EMPTY"`` (local servers accept any)."""
    api: Literal["chat", "completions"] = "chat"
    """chat completions (messages) or plain completions (the messages' contents joined into one prompt)."""
    max_concurrency: int = 16
    """HTTP requests in flight at most."""
    timeout_s: float = 120.0
    """per-request timeout."""
    max_retries: int = 4
    """retries of a transient failure (0: none)."""
    backoff_s: float = 0.5
    """first backoff when the server sends no Retry-After (doubles per retry, jitter ×[0.5, 1.5))."""
    max_backoff_s: float = 30.0
    """cap on one backoff (also on a Retry-After)."""
    n_mode: Literal["auto", "native", "loop"] = "auto"
    cache: str | None = None
    """SQLite cache file, or None for no cache."""
    price: Price = dataclasses.field(default_factory=Price)
    extra_body: Mapping[str, Any] | None = None
    """extra JSON fields sent with every request (e.g. vLLM's ``top_k``)."""
    drop_params: tuple[str, ...] = ()
    """request fields never sent (e.g. ``("temperature",)`` for models that reject it)."""

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be a non-empty string, got {self.model!r}")
        if self.api not in ("chat", "completions"):
            raise ValueError(f"api must be 'chat' or 'completions', got {self.api!r}")
        if self.n_mode not in ("auto", "native", "loop"):
            raise ValueError(f"n_mode must be 'auto', 'native' or 'loop', got {self.n_mode!r}")
        _int("max_concurrency", self.max_concurrency, 1)
        _int("max_retries", self.max_retries, 0)
        for name in ("timeout_s", "backoff_s", "max_backoff_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Choice:
    """One sampled response."""

    text: str | None
    """the content (None when the server sent none)."""
    finish_reason: str | None
    index: int
    """the sample's index among the ``n`` asked for."""
    cached: bool = False
    """served from the cache (cost nothing)."""

    @property
    def flags(self) -> tuple[str, ...]:
        """``"truncated"`` (finish_reason ``length``), ``"empty"`` (no content), ``"cached"``."""
        out = []
        if self.finish_reason == "length":
            out.append("truncated")
        if not self.text:
            out.append("empty")
        if self.cached:
            out.append("cached")
        return tuple(out)


@dataclasses.dataclass(frozen=True)
class _Got:
    text: str | None
    finish_reason: str | None
    usage: Usage


class _Transient(Exception):
    def __init__(self, cause: BaseException, retry_after: float | None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.retry_after = retry_after


class Client:
    """Requests to one :class:`Endpoint`, with cache, ledger, retries and bounded concurrency.

    Args:
        endpoint: where to send requests.
        ledger: accumulates usage and cost (default: a new one priced by ``endpoint.price``).
        cache: overrides the cache opened from ``endpoint.cache``.

    Example:
        >>> client = Client(Endpoint("http://127.0.0.1:9/v1", "m", max_retries=0, timeout_s=0.5))
        >>> client.endpoint.model, client.ledger.totals()["calls"]
        ('m', 0)
    """

    def __init__(self, endpoint: Endpoint, *, ledger: Ledger | None = None, cache: ResponseCache | None = None) -> None:
        if not isinstance(endpoint, Endpoint):
            raise TypeError(f"endpoint must be an Endpoint, got {type(endpoint).__name__}")
        self.endpoint = endpoint
        self.ledger = ledger if ledger is not None else Ledger(endpoint.price)
        self.cache = cache if cache is not None else (ResponseCache(endpoint.cache) if endpoint.cache else None)
        self.native_n: bool | None = {"native": True, "loop": False}.get(endpoint.n_mode)
        """whether the server honours ``n`` (None: not probed yet)."""
        self.requests = 0
        """HTTP requests sent (retries included)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore | None = None
        self._openai: Any = None

    @contextlib.contextmanager
    def track(self) -> Iterator[Ledger]:
        """A ledger of only the requests made inside the block (and the asyncio tasks started in it).

        Example:
            >>> client = Client(Endpoint("http://127.0.0.1:9/v1", "m"))
            >>> with client.track() as led:
            ...     client._account(Usage(3, 4), "gsa", "sample")
            >>> led.totals()["prompt_tokens"], client.ledger.totals()["prompt_tokens"]
            (3, 3)
        """
        led = Ledger(self.endpoint.price)
        token = _SCOPES.set((*_SCOPES.get(), led))
        try:
            yield led
        finally:
            _SCOPES.reset(token)

    def _account(self, usage: Usage, method: str, role: str, cached: bool = False) -> None:
        for led in (self.ledger, *_SCOPES.get()):
            led.add(usage, method=method, role=role, cached=cached)

    # -- per event loop state ----------------------------------------------------------------------
    def _bind(self) -> tuple[asyncio.Semaphore, Any]:
        """The semaphore and ``AsyncOpenAI`` of the running loop (made anew when the loop changes)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._sem is None:
            import openai

            ep = self.endpoint
            self._loop = loop
            self._sem = asyncio.Semaphore(ep.max_concurrency)
            opened = _OPENED.get()
            if opened is not None:
                opened.append(self)
            self._openai = openai.AsyncOpenAI(
                base_url=ep.base_url,
                api_key=os.environ.get(ep.api_key_env) or "EMPTY",
                max_retries=0,
                timeout=ep.timeout_s,
            )
        assert self._openai is not None
        return self._sem, self._openai

    # -- one HTTP request with retries ---------------------------------------------------------------
    async def _post(self, body: dict[str, Any]) -> Any:
        import openai

        ep = self.endpoint
        sem, oa = self._bind()
        api = oa.chat.completions if ep.api == "chat" else oa.completions
        last: _Transient | None = None
        for attempt in range(ep.max_retries + 1):
            if last is not None:
                delay = last.retry_after
                if delay is None:
                    delay = ep.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())
                await asyncio.sleep(min(delay, ep.max_backoff_s))
            try:
                async with sem:
                    self.requests += 1
                    return await api.create(**body)
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status in (408, 409, 429) or status >= 500:
                    last = _Transient(exc, _retry_after(exc.response.headers))
                    log.info("%s answered %s; retry %d/%d", ep.base_url, status, attempt + 1, ep.max_retries)
                    continue
                hint = ""
                if status in (401, 403) and not os.environ.get(ep.api_key_env):
                    hint = f" (the key variable ${ep.api_key_env} is not set; export it or pass --api-key-env)"
                raise EndpointRejected(f"{ep.base_url} rejected the request for model {ep.model!r} "
                                       f"(HTTP {status}): {_snippet(exc)}{hint}", status) from None  # fmt: skip
            except (openai.APIConnectionError, openai.APIResponseValidationError, json.JSONDecodeError) as exc:
                last = _Transient(exc, None)
                log.info("%s: %s; retry %d/%d", ep.base_url, type(exc).__name__, attempt + 1, ep.max_retries)
        assert last is not None
        raise EndpointUnavailable(f"{ep.base_url} (model {ep.model!r}) failed after {ep.max_retries + 1} attempt(s): "
                                  f"{type(last.cause).__name__}: {_snippet(last.cause)}") from None  # fmt: skip

    # -- sampling ------------------------------------------------------------------------------------
    def _body(self, messages: Messages, params: Mapping[str, Any]) -> dict[str, Any]:
        ep = self.endpoint
        body: dict[str, Any] = {"model": ep.model, **{k: v for k, v in params.items() if v is not None}}
        if ep.api == "chat":
            body["messages"] = [dict(m) for m in messages]
        else:
            body["prompt"] = "\n\n".join(m["content"] for m in messages)
        for key in ep.drop_params:
            body.pop(key, None)
        if ep.extra_body:
            body["extra_body"] = dict(ep.extra_body)
        return body

    async def _one(self, body: dict[str, Any], n: int, method: str, role: str) -> list[_Got]:
        """One request (``n`` choices asked): each choice's text, finish_reason and share of the request's usage.

        The request's usage (reported, else estimated) goes to the ledger once; each choice carries an even
        share of it (remainders to the first), which the cache stores so a cached sample's tokens stay known.
        """
        sent = dict(body)
        if n > 1:
            sent["n"] = n
        response = await self._post(sent)
        texts: list[tuple[str | None, str | None]] = []
        for choice in sorted(response.choices, key=lambda c: c.index):
            text = choice.message.content if self.endpoint.api == "chat" else choice.text
            texts.append((text, choice.finish_reason))
        usage = response.usage
        if usage is not None and usage.prompt_tokens is not None:
            total = Usage(int(usage.prompt_tokens), int(usage.completion_tokens or 0))
        else:
            prompt = json.dumps(body.get("messages") or body.get("prompt"), ensure_ascii=False)
            completion = sum(estimate_tokens(t or "") for t, _ in texts)
            total = Usage(estimate_tokens(prompt), completion, estimated=True)
        self._account(total, method, role)
        k = max(1, len(texts))
        shares = [Usage(total.prompt_tokens // k + (i < total.prompt_tokens % k),
                        total.completion_tokens // k + (i < total.completion_tokens % k), total.estimated)
                  for i in range(len(texts))]  # fmt: skip
        return [_Got(t, f, u) for (t, f), u in zip(texts, shares, strict=True)]

    async def complete(
        self,
        messages: Messages,
        *,
        n: int = 1,
        temperature: float | None = 0.0,
        top_p: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        method: str = "-",
        role: str = "sample",
    ) -> list[Choice]:
        """``n`` independent responses to ``messages`` (cached per sample index; see the module doc for ``n``).

        Args:
            messages: chat messages (``role``, ``content``); for ``api="completions"`` their contents are joined.
            n: samples (>= 1).
            temperature, top_p, max_tokens, stop: sampling parameters (None: not sent).
            seed: base seed; sample ``i`` of a looped request gets ``seed + i``.
            method, role: labels of the ledger rows.

        Returns:
            ``n`` :class:`Choice` objects in index order.

        Raises:
            ValueError: empty messages or n < 1.
            EndpointUnavailable: a transient failure persisted through every retry.
            EndpointRejected: the server refused the request.
        """
        _int("n", n, 1)
        if not messages or not all(isinstance(m, Mapping) and isinstance(m.get("content"), str) for m in messages):
            raise ValueError("messages must be a non-empty list of {'role': ..., 'content': str} dicts")
        params = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens, "seed": seed,
                  "stop": list(stop) if stop else None}  # fmt: skip
        body = self._body(messages, params)
        ep = self.endpoint
        keys: list[str] = []
        if self.cache is not None:  # hashing costs time per call: only with a cache
            key_body = {k: v for k, v in body.items() if k != "model"}
            keys = [cache_key(ep.base_url, ep.model, key_body, i) for i in range(n)]
        results: dict[int, Choice] = {}
        if self.cache is not None:
            for i, key in enumerate(keys):
                hit = self.cache.get(key)
                if hit is not None:
                    results[i] = Choice(hit["text"], hit["finish_reason"], i, cached=True)
                    used = Usage(int(hit.get("prompt_tokens", 0)), int(hit.get("completion_tokens", 0)))
                    self._account(used, method, role, cached=True)
        missing = [i for i in range(n) if i not in results]
        fresh: dict[int, _Got] = {}
        before = self.native_n  # restored when a 400 on n > 1 turns out not to be about n (see below)
        if len(missing) > 1 and self.native_n is not False:
            top_up = dict(body)
            if missing[0] > 0 and "seed" in top_up:  # cached samples 0..k-1 came from `seed`: start elsewhere
                top_up["seed"] = int(top_up["seed"]) + missing[0]
            try:
                got = await self._one(top_up, len(missing), method, role)
            except EndpointRejected as exc:
                if ep.n_mode == "native" or exc.status != 400:
                    raise
                log.info("%s rejected n=%d (%s); sampling one request per sample", ep.base_url, len(missing), exc)
                self.native_n, got = False, []
            if self.native_n is None:
                self.native_n = len(got) >= len(missing)
            elif len(got) < len(missing) and ep.n_mode == "auto":
                self.native_n = False
            fresh.update(zip(missing, got, strict=False))
        todo = [i for i in missing if i not in fresh]
        if todo:

            async def single(i: int) -> tuple[int, _Got]:
                b = dict(body)
                if "seed" in b:  # absent when seed is None or dropped (drop_params)
                    b["seed"] = int(b["seed"]) + i
                return i, (await self._one(b, 1, method, role))[0]

            # every request answered before an error is raised: none is left in flight (still billed, and seen by
            # the endpoint after the caller has moved on)
            outcomes = await asyncio.gather(*(single(i) for i in todo), return_exceptions=True)
            errors = [o for o in outcomes if isinstance(o, BaseException)]
            if errors:
                if isinstance(errors[0], EndpointRejected) and before is not False and self.native_n is False:
                    # one sample per request is refused too (e.g. a prompt over the context): the 400 was not
                    # about n, so the client keeps asking for n samples at once on the next prompt
                    self.native_n = before
                raise errors[0]
            fresh.update(o for o in outcomes if not isinstance(o, BaseException))
        for i, got_i in fresh.items():
            results[i] = Choice(got_i.text, got_i.finish_reason, i)
            if self.cache is not None and got_i.text is not None:
                value = {"text": got_i.text, "finish_reason": got_i.finish_reason,
                         "prompt_tokens": got_i.usage.prompt_tokens, "completion_tokens": got_i.usage.completion_tokens}  # fmt: skip
                self.cache.put(keys[i], ep.base_url, ep.model, value)
        return [results[i] for i in range(n)]

    async def models(self) -> list[str]:
        """The model ids the endpoint lists (``GET /models``)."""
        import openai

        _, oa = self._bind()
        try:
            page = await oa.models.list()
        except openai.APIStatusError as exc:
            raise EndpointRejected(f"{self.endpoint.base_url}/models: HTTP {exc.status_code}: {_snippet(exc)}",
                                   exc.status_code) from None  # fmt: skip
        except openai.APIConnectionError as exc:
            raise EndpointUnavailable(f"{self.endpoint.base_url} is unreachable: {_snippet(exc)}") from None
        return [m.id for m in page.data]

    async def aclose(self) -> None:
        """Close the HTTP connections of the current loop."""
        if self._openai is not None:
            await self._openai.close()
            self._openai, self._sem, self._loop = None, None, None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date), or None.

    Example:
        >>> _retry_after({"retry-after": "2"}), _retry_after({"retry-after-ms": "250"}), _retry_after({})
        (2.0, 0.25, None)
    """
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after-ms" in lower:
            return max(0.0, float(lower["retry-after-ms"]) / 1000.0)
        if "retry-after" in lower:
            value = lower["retry-after"]
            try:
                return max(0.0, float(value))
            except ValueError:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None
    return None


def _snippet(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _closing(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro``, then close the connections clients opened on this loop (they would outlive it)."""
    token = _OPENED.set([])
    try:
        return await coro
    finally:
        for client in _OPENED.get() or []:
            await client.aclose()
        _OPENED.reset(token)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from synchronous code (``asyncio.run``); inside a running loop, ``await`` it instead.

    The HTTP connections clients open during the run are closed before the loop ends, so a client can be
    used by one ``run_sync`` after another (each opens its connections anew).

    Raises:
        RuntimeError: called from a running event loop (Jupyter, an async framework).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_closing(coro))
    coro.close()
    raise RuntimeError("a sync gsa_prompt function was called inside a running event loop; await its async twin")
