"""An OpenAI-compatible fake server on 127.0.0.1 for tests, demos and CPU benchmarks (standard library only).

:class:`FakeServer` serves ``POST /v1/chat/completions``, ``POST /v1/completions`` and ``GET /v1/models`` over
real HTTP (a ``ThreadingHTTPServer`` in a background thread), so the real ``openai`` client, its retries, its
timeouts and the package's concurrency run against it unchanged. It reads which step a request is from the
prompt text (:func:`gsa_prompt.roles.detect_role`), parses the candidates back out of aggregation, selection,
judge and refine prompts (:func:`gsa_prompt.roles.parse_candidates`) and answers with a scripted policy of a
toy world (:mod:`gsa_prompt.worlds`), so a candidate missing from a prompt changes the answer.

Foreign prompts. A prompt that is none of the package's (another library's aggregation, critique or rating
prompt) is answered as a plain question by default (``foreign="fresh"``): a fresh draw, correct with
probability ``p`` if it holds a question of the world, whatever responses it also shows. With
``foreign="read"`` the world reads the answers such a conversation states (:meth:`World.stated_keys
<gsa_prompt.worlds.World.stated_keys>`, over the text of all its messages): if its last user message asks to
rate or score, the reply is the judge's rating of the last stated answer as a bare number; otherwise the reply
is written around the key the aggregator policy gives for the stated answers, as for the package's GSA prompt.
A conversation that states no answer (a plain question) is answered the same way in both modes.

Determinism: each choice's text is a function of ``(model, messages, seed, choice index)`` through SHA-256. At
``temperature == 0`` the seed and the index are ignored (greedy: every choice is the same text). Without a
seed at ``temperature > 0``, the k-th identical request gets draw k (a real server samples afresh). Temperature
only switches between greedy (0) and sampling (> 0): the world's accuracy ``p`` does not depend on it.

Token counts are ``ceil(len(text) / 4)`` per message content and per choice (:func:`approx_tokens`); with ``n``
choices in one request the prompt is counted once, as OpenAI bills it.

Test-only endpoints (no auth): ``GET /_stats`` (see :meth:`FakeServer.stats`), ``POST /_reset`` (zero the
counters, the log and the fault script) and ``POST /_script`` with ``{"faults": [...]}`` (append faults).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from gsa_prompt._fake_http import _Handler, _HTTPError, _HTTPServer, _parse_request, _Reply, _reply, _send
from gsa_prompt.policies import Policy, aggregate_key, refine_key, resolve_policy, select_index
from gsa_prompt.roles import TEMPLATE_ROLES, content_text, detect_answer_format, detect_template, parse_candidates
from gsa_prompt.worlds import WORLDS, World, stable_rng

logger = logging.getLogger(__name__)

__all__ = ["FAULTS", "FOREIGN", "PERSONAS", "FakeServer", "Fault", "approx_tokens"]

PERSONAS: tuple[str, ...] = ("openai", "vllm", "ollama", "llamacpp", "flaky")
"""``openai`` and ``vllm``: honour ``n`` and ``seed``; ``ollama``: returns 1 choice whatever ``n``; ``llamacpp``:
400 "Only one completion choice is allowed" for ``n > 1``; ``flaky``: ``openai`` meant to run with a fault script."""
FAULTS: tuple[str, ...] = ("ok", "400", "429", "500", "503", "timeout", "length", "null", "malformed", "disconnect")
"""Scripted faults: ``400`` (the prompt is over the context length, whatever ``n``), ``429``/``503`` with a
Retry-After header, ``500``, ``timeout`` (answer after ``delay_s``),
``length`` (content cut in half, finish_reason "length"), ``null`` (content None), ``malformed`` (200 with a body
that is not JSON), ``disconnect`` (close the connection without answering), ``ok`` (no fault)."""
FOREIGN: tuple[str, ...] = ("fresh", "read")
"""How prompts that are none of the package's are answered: ``fresh`` (as a plain question) or ``read`` (the
answers they state are aggregated, or rated when asked to rate); see the module docstring."""
_RATE_REQUEST = re.compile(r"\b(?:rate|rating|score)\b", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Fault:
    """One scripted fault, applied to one completion request.

    Example:
        >>> Fault("429", retry_after=2.0).kind
        '429'
    """

    kind: str
    """One of :data:`FAULTS`."""
    retry_after: float = 1.0
    """Seconds in the Retry-After header of a 429 or 503."""
    delay_s: float = 2.0
    """How long a ``timeout`` fault waits before answering (make it exceed the client timeout)."""

    def __post_init__(self) -> None:
        if self.kind not in FAULTS:
            raise ValueError(f"kind must be one of {FAULTS}, got {self.kind!r}")
        if self.retry_after < 0 or self.delay_s < 0:
            raise ValueError(f"retry_after and delay_s must be >= 0, got {self.retry_after}, {self.delay_s}")


def approx_tokens(text: str) -> int:
    """The fake token count of ``text``: ``ceil(len(text) / 4)`` (no tokenizer, no download).

    Example:
        >>> approx_tokens(""), approx_tokens("abcd"), approx_tokens("abcde")
        (0, 1, 2)
    """
    return (len(text) + 3) // 4


class FakeServer:
    """A scripted OpenAI-compatible server on ``127.0.0.1``, started on construction, stopped by :meth:`close`.

    Args:
        world: a :class:`~gsa_prompt.worlds.World` or a name in :data:`gsa_prompt.worlds.WORLDS` (defaults).
        persona: one of :data:`PERSONAS`.
        aggregator: GSA aggregator policy (:data:`gsa_prompt.worlds.AGGREGATORS` or a table).
        selector: USC / choose-from-N selector policy (:data:`gsa_prompt.worlds.SELECTORS` or a table).
        judge_noise: standard deviation of Gaussian noise on judge ratings (then rounded, clipped to 0..10).
        refine_fix: probability ``q`` that a refine step fixes a wrong answer.
        latency_s: fake latency of every completion request, in seconds.
        faults: fault script, one entry per completion request in arrival order (a kind name or a :class:`Fault`).
        models: model names served; others get 404 ``model_not_found``.
        port: TCP port (0: a free one).
        max_n: the largest ``n`` accepted.
        foreign: how prompts that are none of the package's are answered, one of :data:`FOREIGN`.

    Raises:
        ValueError: a bad argument, named.

    Example:
        >>> import json, urllib.request
        >>> with FakeServer() as server:
        ...     json.load(urllib.request.urlopen(server.url("/_stats")))["requests"]
        0
    """

    def __init__(
        self,
        world: World | str = "arithmetic",
        *,
        persona: str = "openai",
        aggregator: Policy = "copy-majority",
        selector: Policy = "majority",
        judge_noise: float = 0.0,
        refine_fix: float = 0.5,
        latency_s: float = 0.0,
        faults: Iterable[str | Fault] = (),
        models: Sequence[str] = ("fake-model",),
        port: int = 0,
        max_n: int = 128,
        foreign: str = "fresh",
    ) -> None:
        if isinstance(world, str):
            if world not in WORLDS:
                raise ValueError(f"world must be one of {tuple(WORLDS)} or a World, got {world!r}")
            world = WORLDS[world]()
        if persona not in PERSONAS:
            raise ValueError(f"persona must be one of {PERSONAS}, got {persona!r}")
        if judge_noise < 0 or latency_s < 0 or not 0.0 <= refine_fix <= 1.0 or max_n < 1:
            raise ValueError(
                f"judge_noise and latency_s must be >= 0, refine_fix in [0, 1], max_n >= 1; got {judge_noise}, "
                f"{latency_s}, {refine_fix}, {max_n}"
            )
        if not models:
            raise ValueError("models must name at least one model, got none")
        if foreign not in FOREIGN:
            raise ValueError(f"foreign must be one of {FOREIGN}, got {foreign!r}")
        self.foreign = foreign
        self.world, self.persona = world, persona
        self.aggregator = resolve_policy(aggregator, "aggregator")
        self.selector = resolve_policy(selector, "selector")
        self.judge_noise, self.refine_fix, self.latency_s = float(judge_noise), float(refine_fix), float(latency_s)
        self.models, self.max_n = tuple(models), int(max_n)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._faults: collections.deque[Fault] = collections.deque()
        self._reset()
        self.script(*faults)
        self._httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.fake = self
        self.port: int = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        """What to pass as ``base_url`` to an OpenAI client."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeServer", daemon=True
        )
        self._closed = False
        self._thread.start()

    def url(self, path: str) -> str:
        """The full URL of ``path`` on this server, e.g. ``url("/_stats")``."""
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, *faults: str | Fault) -> None:
        """Append faults to the script; each following completion request consumes one, in order."""
        parsed = [f if isinstance(f, Fault) else Fault(f) for f in faults]
        with self._lock:
            self._faults.extend(parsed)

    def stats(self) -> dict[str, Any]:
        """Counters since start or the last reset (also served at ``GET /_stats``).

        Returns:
            ``{"requests": /v1 requests, "completions": completion requests, "choices": choices returned,
            "by_role": {role: n}, "by_status": {"200": n, ...}, "by_endpoint": {path: n}, "by_fault": {kind: n},
            "in_flight": now, "max_in_flight": largest seen, "usage": {"prompt_tokens", "completion_tokens",
            "total_tokens"}}``. Status ``"0"`` counts ``disconnect`` faults (no response); role ``"invalid"``
            counts completion requests whose body could not be parsed.
        """
        with self._lock:
            return json.loads(json.dumps(self._stats))  # type: ignore[no-any-return]

    def requests_log(self) -> list[dict[str, Any]]:
        """One dict per completion request: endpoint, role, model, n, seed, temperature, messages (as text), status,
        choices, fault."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def reset(self) -> None:
        """Zero the counters and the log, forget repeated-request draws and drop the fault script."""
        with self._lock:
            self._reset()

    def close(self) -> None:
        """Stop serving and close every connection; idempotent, returns within about a second."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5.0)

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FakeServer(world={self.world.name!r}, persona={self.persona!r}, base_url={self.base_url!r})"

    # -- request handling -------------------------------------------------------------------------------------

    def _reset(self) -> None:
        self._stats: dict[str, Any] = {
            "requests": 0,
            "completions": 0,
            "choices": 0,
            "by_role": {},
            "by_status": {},
            "by_endpoint": {},
            "by_fault": {},
            "in_flight": 0,
            "max_in_flight": 0,
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
        self._log: list[dict[str, Any]] = []
        self._seen: collections.Counter[str] = collections.Counter()
        self._faults.clear()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _count(self, table: str, key: str) -> None:
        counts = self._stats[table]
        counts[key] = counts.get(key, 0) + 1

    def _handle(self, handler: _Handler, method: str) -> None:
        path = urlsplit(handler.path).path
        try:
            length = int(handler.headers.get("Content-Length") or 0)
        except ValueError:
            handler.close_connection = True
            return _send(handler, _reply(400, _HTTPError(400, "Content-Length must be an integer.").body))
        body = handler.rfile.read(length) if length > 0 else b""
        if path == "/_stats" and method == "GET":
            return _send(handler, _reply(200, self.stats()))
        if path == "/_reset" and method == "POST":
            self.reset()
            return _send(handler, _reply(200, {"ok": True}))
        if path == "/_script" and method == "POST":
            try:
                self.script(*(f if isinstance(f, str) else Fault(**f) for f in json.loads(body)["faults"]))
            except (ValueError, KeyError, TypeError) as err:
                return _send(handler, _reply(400, {"error": {"message": f"bad fault script: {err}"}}))
            return _send(handler, _reply(200, {"ok": True}))
        with self._lock:
            self._stats["requests"] += 1
            self._count("by_endpoint", path)
        try:
            reply = self._serve_v1(handler, method, path, body)
        except _HTTPError as err:
            reply = _reply(err.status, err.body)
        except Exception:  # a bug in a world or policy: answer 500 rather than drop the connection
            logger.exception("FakeServer failed on %s %s", method, path)
            reply = _reply(500, _HTTPError(500, "The fake server failed; see its log.", None, "server_error").body)
        with self._lock:  # count before answering, so that a client reading /_stats next sees this request
            self._count("by_status", str(reply.status))
        _send(handler, reply)

    def _serve_v1(self, handler: _Handler, method: str, path: str, body: bytes) -> _Reply:
        auth = handler.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[len("Bearer ") :].strip():
            raise _HTTPError(401, "You didn't provide an API key (Authorization: Bearer <key>).", "invalid_api_key")
        if method == "GET" and path == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "gsa-prompt-fake"} for m in self.models]
            return _reply(200, {"object": "list", "data": data})
        if method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
            with self._lock:
                fault = self._faults.popleft() if self._faults else Fault("ok")
                self._stats["in_flight"] += 1
                self._stats["max_in_flight"] = max(self._stats["max_in_flight"], self._stats["in_flight"])
            entry: dict[str, Any] = {"endpoint": path, "role": None, "status": 500, "choices": 0, "fault": fault.kind}
            try:
                reply = self._complete(path, body, fault, entry)
                entry["status"] = reply.status
            except _HTTPError as err:
                entry["status"] = err.status
                raise
            finally:
                with self._lock:
                    self._stats["in_flight"] -= 1
                    self._stats["completions"] += 1
                    self._stats["choices"] += entry["choices"]
                    self._count("by_fault", fault.kind)
                    self._count("by_role", entry["role"] or "invalid")
                    self._log.append(entry)
            return reply
        raise _HTTPError(404, f"Unknown request URL: {method} {path}.", "unknown_url")

    def _complete(self, path: str, body: bytes, fault: Fault, entry: dict[str, Any]) -> _Reply:
        chat = path == "/v1/chat/completions"
        req = _parse_request(body, chat, self.max_n)
        messages: list[dict[str, Any]] = req["messages"]
        template = detect_template(messages)
        entry.update(role=TEMPLATE_ROLES[template], model=req["model"], n=req["n"], seed=req["seed"])
        entry["temperature"] = req["temperature"]
        entry["messages"] = [{"role": m.get("role"), "content": content_text(m.get("content"))} for m in messages]
        if req["model"] not in self.models:
            raise _HTTPError(404, f"The model `{req['model']}` does not exist.", "model_not_found")
        if self.persona == "llamacpp" and req["n"] > 1:
            raise _HTTPError(400, "Only one completion choice is allowed")
        if fault.kind == "400":
            raise _HTTPError(400, "This model's maximum context length is 4096 tokens.", "context_length_exceeded")
        if fault.kind in ("429", "503", "500"):
            headers = {} if fault.kind == "500" else {"Retry-After": f"{fault.retry_after:g}"}
            message = "Rate limit reached." if fault.kind == "429" else "The server had an error."
            kind = "rate_limit_error" if fault.kind == "429" else "server_error"
            return _reply(int(fault.kind), {"error": {"message": message, "type": kind, "param": None}}, headers)
        if fault.kind == "disconnect":
            return _Reply(0, b"", {})
        if fault.kind == "timeout":
            self._stop.wait(fault.delay_s)
        n_out = 1 if self.persona == "ollama" else req["n"]
        texts = self._generate(req, template, n_out)
        if self.latency_s:
            self._stop.wait(self.latency_s)
        if self._stop.is_set():  # closing: hang up instead of answering
            return _Reply(0, b"", {})
        choices: list[dict[str, Any]] = []
        completion_tokens = 0
        for i, text in enumerate(texts):
            finish: str = "stop"
            content: str | None = text
            if req["max_tokens"] is not None and approx_tokens(text) > req["max_tokens"]:
                content, finish = text[: 4 * req["max_tokens"]], "length"
            if fault.kind == "length" and i == 0:
                content, finish = text[: len(text) // 2], "length"
            if fault.kind == "null" and i == 0:
                content = None
            completion_tokens += approx_tokens(content or "")
            if chat:
                reply = {"role": "assistant", "content": content}
                choices.append({"index": i, "message": reply, "logprobs": None, "finish_reason": finish})
            else:
                choices.append({"index": i, "text": content or "", "logprobs": None, "finish_reason": finish})
            if self.persona == "vllm":
                choices[-1]["stop_reason"] = None
        prompt_tokens = sum(approx_tokens(content_text(m.get("content"))) for m in messages)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        usage["total_tokens"] = prompt_tokens + completion_tokens
        digest = hashlib.sha256(json.dumps([req, texts], sort_keys=True).encode()).hexdigest()[:24]
        response = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{digest}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": req["model"],
            "system_fingerprint": f"fp_fake_{self.persona}",
            "choices": choices,
            "usage": usage,
        }
        with self._lock:
            for key, value in usage.items():
                self._stats["usage"][key] += value
        entry["choices"] = len(choices)
        if fault.kind == "malformed":
            return _Reply(200, b'{"id": "chatcmpl-broken", "choices": [', {})
        return _reply(200, response)

    def _generate(self, req: dict[str, Any], template: str, n_out: int) -> list[str]:
        messages = [(m.get("role"), content_text(m.get("content"))) for m in req["messages"]]
        greedy = req["temperature"] == 0
        draw = 0
        if not greedy and req["seed"] is None:
            key = json.dumps([req["model"], messages])
            with self._lock:
                draw = self._seen[key]
                self._seen[key] += 1
        base = [req["model"], messages, None if greedy else req["seed"], draw]
        text = next((t for role, t in reversed(messages) if role == "user"), "")
        conversation = "\n\n".join(t for _, t in messages)
        rngs = (stable_rng(*base, 0 if greedy else i) for i in range(n_out))
        return [self._respond(template, text, rng, conversation) for rng in rngs]

    def _judged(self, rating: float, rng: random.Random) -> int:
        """A judge's 0-10 score as the server writes it: ``rating`` plus ``judge_noise`` noise, clipped, rounded."""
        if self.judge_noise:
            rating = min(10.0, max(0.0, rating + rng.gauss(0.0, self.judge_noise)))
        return round(rating)

    def _respond(self, template: str, text: str, rng: random.Random, conversation: str = "") -> str:
        """One choice's text: the world's scripted answer to the prompt ``text`` of kind ``template``.

        ``conversation`` (the text of all messages) is read only for a foreign prompt with ``foreign="read"``.
        """
        world, fmt = self.world, detect_answer_format(text)
        stated = world.stated_keys(conversation) if template == "sample" and self.foreign == "read" else []
        if stated:
            if _RATE_REQUEST.search(text):
                return f"{self._judged(world.key_rating(conversation, stated[-1]), rng)}"
            written = aggregate_key(world, conversation, stated, self.aggregator, rng)
            return world.render(conversation, written, detect_answer_format(conversation), rng)
        try:
            candidates = [] if template == "sample" else parse_candidates(text)
        except ValueError:  # an edited prompt whose numbering is broken: answer it as a plain question
            candidates = []
        keys = [world.key_of(text, c) for c in candidates]
        if not candidates:  # a plain question, or a prompt of the package's whose candidates were dropped
            key = world.draw(text, rng)
            return "I cannot answer that question." if key is None else world.render(text, key, fmt, rng)
        if template == "gsa":
            return world.render(text, aggregate_key(world, text, keys, self.aggregator, rng), fmt, rng)
        if template in ("usc", "choose"):
            choice = select_index(world, text, keys, self.selector, rng) + 1
            if template == "usc":
                return f"The most consistent response is Response {choice}."
            return f"The best response is Response {choice}. Its reasoning is the most careful."
        if template == "pairwise":
            first, second = (world.rating(text, c) for c in candidates[:2])
            if first == second:
                return "It is a tie: both responses are equally good."
            return f"The better response is Response {1 if first > second else 2}."
        if template == "judge":
            return (
                f"I checked the response step by step.\nRating: {self._judged(world.rating(text, candidates[0]), rng)}"
            )
        if template == "feedback":
            return world.feedback(text, candidates[0])
        return world.render(text, refine_key(world, text, keys[0], self.refine_fix, rng), fmt, rng)
