"""The HTTP side of the fake server (:class:`gsa_prompt.testing.FakeServer`): request parsing, replies, handler.

Standard library only: a ``ThreadingHTTPServer`` whose handler passes every request to the
:class:`~gsa_prompt.testing.FakeServer` it serves, which answers through :func:`_send`. The error bodies follow
OpenAI's ``{"error": {"message", "type", "param", "code"}}`` shape, so the real ``openai`` client raises its own
exceptions on them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from gsa_prompt.testing import FakeServer

logger = logging.getLogger("gsa_prompt.testing")  # log records keep the public module's name


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.body = status, {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _parse_request(body: bytes, chat: bool, max_n: int) -> dict[str, Any]:
    """The validated fields of a completion request; raises :class:`_HTTPError` (400) on a bad one."""
    try:
        req = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise _HTTPError(400, f"We could not parse the JSON body of your request ({err}).") from err
    if not isinstance(req, dict):
        raise _HTTPError(400, "The request body must be a JSON object.")
    if not isinstance(req.get("model"), str):
        raise _HTTPError(400, "you must provide a model parameter", "missing_model")
    if chat:
        messages = req.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise _HTTPError(400, "'messages' must be a non-empty array of message objects.")
    else:
        prompt = req.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise _HTTPError(400, "'prompt' must be a string (the fake server serves one prompt per request).")
        messages = [{"role": "user", "content": prompt}]
    n = req.get("n")
    n = 1 if n is None else n
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= max_n:
        raise _HTTPError(400, f"'n' must be an integer in [1, {max_n}], got {n!r}.")
    temperature = req.get("temperature")
    temperature = 1.0 if temperature is None else temperature
    if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise _HTTPError(400, f"'temperature' must be a number in [0, 2], got {temperature!r}.")
    max_tokens = req.get("max_tokens", req.get("max_completion_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise _HTTPError(400, f"'max_tokens' must be a positive integer, got {max_tokens!r}.")
    seed = req.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise _HTTPError(400, f"'seed' must be an integer, got {seed!r}.")
    return {"model": req["model"], "messages": messages, "n": n, "temperature": float(temperature)} | {
        "max_tokens": max_tokens,
        "seed": seed,
    }


@dataclasses.dataclass(frozen=True)
class _Reply:
    status: int
    """HTTP status; 0 means close the connection without answering."""
    data: bytes
    headers: Mapping[str, str]


def _reply(status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), headers or {})


def _send(handler: _Handler, reply: _Reply) -> None:
    try:
        if reply.status == 0:
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(reply.data)))
        for key, value in reply.headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(reply.data)
        handler.wfile.flush()
    except OSError:  # the client hung up (e.g. its timeout fired first)
        handler.close_connection = True


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (closing its keep-alive connections) is normal, not an error to print."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "gsa-prompt-fake/1"

    def _fake(self) -> FakeServer:
        return cast(_HTTPServer, self.server).fake

    def setup(self) -> None:
        super().setup()
        self._fake()._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._fake()._track(self.connection, False)

    def do_GET(self) -> None:
        self._fake()._handle(self, "GET")

    def do_POST(self) -> None:
        self._fake()._handle(self, "POST")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)
