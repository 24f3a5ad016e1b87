"""On-disk response cache: SQLite, keyed by endpoint, model, messages, sampling parameters and sample index.

A rerun of an evaluation (or a resumed one after a kill) is served from here and costs no request. The key
is the SHA-256 of a canonical JSON of everything that determines a response (spec §7, pitfall 1: the
sample index and seed are part of it, so the ``n`` samples of self-consistency or GSA never collapse into
one). The API key is never part of a key or a value. The file is safe under concurrent writers (threads
and processes): WAL journal, a busy timeout, and ``INSERT OR IGNORE`` (the first writer of a key wins;
every writer of a key wrote an equivalent response).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ResponseCache", "cache_key"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    base_url TEXT NOT NULL,
    model TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(base_url: str, model: str, request: Mapping[str, Any], index: int) -> str:
    """The cache key of sample ``index`` of ``request`` (messages or prompt and sampling parameters).

    Args:
        base_url: the endpoint (trailing ``/`` ignored).
        model: the model name.
        request: the request body less ``n`` (messages/prompt, temperature, top_p, max_tokens, seed, ...).
        index: the sample's index ``i`` among the ``n`` asked for (``>= 0``).

    Returns:
        64 hex digits.

    Example:
        >>> a = cache_key("http://h/v1", "m", {"messages": [{"role": "user", "content": "hi"}], "seed": 0}, 0)
        >>> b = cache_key("http://h/v1/", "m", {"seed": 0, "messages": [{"role": "user", "content": "hi"}]}, 0)
        >>> a == b, a == cache_key("http://h/v1", "m", {"messages": [], "seed": 0}, 1)
        (True, False)
    """
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ValueError(f"index must be an integer >= 0, got {index!r}")
    body = json.dumps([base_url.rstrip("/"), model, dict(request), index], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class ResponseCache:
    """A SQLite file of responses (JSON values) by :func:`cache_key`.

    Args:
        path: the database file (created with its folder); ``":memory:"`` for a private in-memory cache.

    Example:
        >>> cache = ResponseCache(":memory:")
        >>> cache.put("k", "http://h/v1", "m", {"text": "4"})
        >>> cache.get("k"), cache.get("other"), len(cache)
        ({'text': '4'}, None, 1)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self.path = str(Path(self.path).expanduser())
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 60000")
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(SCHEMA)
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any | None:
        """The value stored under ``key``, or None (counted as a hit or a miss)."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, base_url: str, model: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable) under ``key`` unless the key is already there."""
        text = json.dumps(value, ensure_ascii=False)
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO responses (key, base_url, model, value, created) VALUES (?, ?, ?, ?, ?)",
                (key, base_url, model, text, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        """Entries, this object's hits and misses, and the entries per (endpoint, model)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT base_url, model, COUNT(*) FROM responses GROUP BY base_url, model ORDER BY 3 DESC"
            ).fetchall()
        return {
            "path": self.path,
            "entries": sum(int(r[2]) for r in rows),
            "hits": self.hits,
            "misses": self.misses,
            "by_model": [{"base_url": r[0], "model": r[1], "entries": int(r[2])} for r in rows],
        }

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        with self._lock:
            n = int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
            self._conn.execute("DELETE FROM responses")
        return n

    def close(self) -> None:
        """Close the connection (the object is unusable afterwards)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
