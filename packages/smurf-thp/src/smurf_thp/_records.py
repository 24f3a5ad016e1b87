"""Checks of parsed event records shared by the file readers of :mod:`smurf_thp.formats` (private).

Each check raises a ``ValueError`` whose message starts with ``where`` (file, split, sequence and, where
relevant, event), as the module docstring of :mod:`smurf_thp.formats` promises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from smurf_thp.data import EventSequence

_ALIASES = {"validation": "dev"}

# Each reader returns (sequences before dropping, num_types) for one split of one file.
_Split = tuple[list[EventSequence], int]


def _sequence(where: str, times: Any, types: Any, t_start: Any = 0.0, t_end: Any = None) -> EventSequence:
    try:
        return EventSequence(np.asarray(times, dtype=np.float64), np.asarray(types), float(t_start), t_end)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: {err}") from None


def _num_types(where: str, value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or int(value) != value or value < 1:
        raise ValueError(f"{where}: {key} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_type_range(where: str, seq: EventSequence, num_types: int, key: str) -> None:
    high = np.flatnonzero(seq.types >= num_types)
    if high.size:
        j = int(high[0])
        raise ValueError(
            f"{where}, event {j}: type {seq.types[j]} outside [0, {num_types}) ({key} = {num_types}; max type "
            f"{int(seq.types.max())})"
        )


def _need(where: str, record: Any, keys: Sequence[str]) -> None:
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: expected a dict with keys {list(keys)}, got {type(record).__name__}")
    missing = [key for key in keys if key not in record]
    if missing:
        raise ValueError(f"{where}: missing key {missing[0]!r} (has {sorted(map(str, record))})")


def _list(where: str, value: Any, what: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where}: {what} must be a list, got {type(value).__name__}")
    return list(value)
