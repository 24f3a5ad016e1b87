"""EasyTPP records: the ``easytpp-pkl`` and ``easytpp-json`` layouts of :mod:`smurf_thp.formats`, read and built.

The readers turn a parsed pickle or JSON object into the sequences of one split (validating keys, lengths,
``dim_process``, types and ``time_since_last_event``); the builders turn an :class:`~smurf_thp.data.EventDataset`
into the records those files hold. Opening and writing the files is :mod:`smurf_thp.formats`' business.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from smurf_thp._records import _ALIASES, _check_type_range, _list, _need, _num_types, _sequence, _Split
from smurf_thp.data import EventDataset, EventSequence

GAP_RTOL = 1e-6
"""Relative tolerance of ``time_since_last_event`` against ``diff(time_since_start)``."""

_EASYTPP_KEYS = ("time_since_start", "time_since_last_event", "type_event")


def _check_gaps(where: str, seq: EventSequence, gaps: Any, trust_gaps: bool) -> None:
    try:
        g = np.asarray(gaps, dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: time_since_last_event must hold numbers ({err})") from None
    bad = np.flatnonzero(~np.isfinite(g))
    if bad.size:
        raise ValueError(f"{where}, event {bad[0]}: time_since_last_event is {g[bad[0]]} (must be finite)")
    neg = np.flatnonzero(g < 0)
    if neg.size:
        raise ValueError(f"{where}, event {neg[0]}: negative gap, time_since_last_event = {g[neg[0]]!r}")
    if trust_gaps or len(seq) < 2:
        return
    diff = seq.gaps
    tol = GAP_RTOL * np.maximum(np.abs(g[1:]), np.abs(diff)) + 1e-12 * np.maximum(1.0, np.abs(seq.times[1:]))
    off = np.flatnonzero(np.abs(g[1:] - diff) > tol)
    if off.size:
        j = int(off[0]) + 1
        raise ValueError(
            f"{where}, event {j}: time_since_last_event = {g[j]!r} disagrees with "
            f"time_since_start[{j}] - time_since_start[{j - 1}] = {diff[j - 1]!r} (relative tolerance {GAP_RTOL}); "
            "pass trust_gaps=True to skip this check"
        )


def _split_value(file: Path, obj: Any, split: str, top_keys: Sequence[str]) -> Any:
    _need(f"{file}", obj, top_keys)
    for key in (split, *[alias for alias, name in _ALIASES.items() if name == split]):
        if key in obj:
            return obj[key]
    splits = [k for k in obj if k not in top_keys]
    raise ValueError(f"{file}: missing split key {split!r} (splits in the file: {splits})")


def _read_pkl_split(file: Path, obj: Any, split: str, trust_gaps: bool) -> _Split:
    value = _split_value(file, obj, split, ("dim_process",))
    num_types = _num_types(f"{file}: split {split!r}", obj["dim_process"], "dim_process")
    seqs = []
    for i, raw in enumerate(_list(f"{file}: split {split!r}", value, "the split")):
        where = f"{file}: split {split!r}, sequence {i}"
        events = _list(where, raw, "a sequence")
        for j, event in enumerate(events):
            _need(f"{where}, event {j}", event, _EASYTPP_KEYS)
        seq = _sequence(where, [e["time_since_start"] for e in events], [e["type_event"] for e in events])
        _check_gaps(where, seq, [e["time_since_last_event"] for e in events], trust_gaps)
        _check_type_range(where, seq, num_types, "dim_process")
        seqs.append(seq)
    return seqs, num_types


def _read_json_split(file: Path, obj: Any, split: str, trust_gaps: bool) -> _Split:
    records = obj if isinstance(obj, list) else _split_value(file, obj, split, ())
    seqs: list[EventSequence] = []
    num_types = 0
    for i, record in enumerate(_list(f"{file}: split {split!r}", records, "the split")):
        where = f"{file}: split {split!r}, sequence {i}"
        _need(where, record, (*_EASYTPP_KEYS, "dim_process"))
        k = _num_types(where, record["dim_process"], "dim_process")
        if i == 0:
            num_types = k
        elif k != num_types:
            raise ValueError(f"{where}: dim_process = {k} disagrees with {num_types} of sequence 0")
        lists = [_list(where, record[key], key) for key in _EASYTPP_KEYS]
        lens = [len(x) for x in lists]
        if len(set(lens)) > 1 or ("seq_len" in record and record["seq_len"] != lens[0]):
            raise ValueError(
                f"{where}: lengths disagree: {dict(zip(_EASYTPP_KEYS, lens, strict=True))}, "
                f"seq_len = {record.get('seq_len')}"
            )
        seq = _sequence(where, lists[0], lists[2])
        _check_gaps(where, seq, lists[1], trust_gaps)
        _check_type_range(where, seq, num_types, "dim_process")
        seqs.append(seq)
    if not seqs:
        raise ValueError(f"{file}: split {split!r} is empty (the data set is empty)")
    return seqs, num_types


def _gap_list(seq: EventSequence) -> list[float]:
    return [float(seq.times[0] - seq.t_start), *seq.gaps.tolist()] if len(seq) else []


def _pkl_records(ds: EventDataset) -> list[list[dict[str, float | int]]]:
    return [
        [
            {"time_since_start": t, "time_since_last_event": g, "type_event": k}
            for t, g, k in zip(seq.times.tolist(), _gap_list(seq), seq.types.tolist(), strict=True)
        ]
        for seq in ds
    ]


def _json_records(ds: EventDataset) -> list[dict[str, Any]]:
    return [
        {
            "time_since_start": seq.times.tolist(),
            "time_since_last_event": _gap_list(seq),
            "type_event": seq.types.tolist(),
            "dim_process": ds.num_types,
            "seq_len": len(seq),
            "seq_idx": i,
        }
        for i, seq in enumerate(ds)
    ]
