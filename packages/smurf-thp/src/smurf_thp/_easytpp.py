"""EasyTPP layouts: its records (the ``easytpp-pkl`` and ``easytpp-json`` files of :mod:`smurf_thp.formats`) and
its model inputs (the padded batch of :mod:`smurf_thp.easytpp`), read and built.

The readers turn a parsed pickle or JSON object into the sequences of one split (validating keys, lengths,
``dim_process``, types and ``time_since_last_event``); the builders turn an :class:`~smurf_thp.data.EventDataset`
into the records those files hold. Opening and writing the files is :mod:`smurf_thp.formats`' business.
:func:`to_easytpp_batch` and :func:`from_easytpp_batch` convert smurf-thp's padded batch to and from the tensors
EasyTPP's models read (pure functions; no ``easy_tpp`` import).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

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


# -- batch conversion (pure) ------------------------------------------------------------------------------------------
def to_easytpp_batch(types: Tensor, times: Tensor, mask: Tensor, num_types: int, time_scale: float = 1.0,
                     gaps: Tensor | None = None) -> dict[str, Tensor]:  # fmt: skip
    """smurf-thp's padded batch -> the keyword inputs of EasyTPP's models (``model.loglike_loss(**batch)``).

    Args:
        types: ``(B, L)`` int 0-based types (any value at padding; :func:`~smurf_thp.data.collate` puts ``-1``).
        times: ``(B, L)`` absolute times (any value at padding).
        mask: ``(B, L)`` bool, ``True`` at real events, right-padded.
        num_types: ``K >= 1``; the pad index is ``K``.
        time_scale: ``> 0``; times and gaps are divided by it.
        gaps: optional ``(B, L − 1)`` gaps of events ``1..L−1`` in the *scaled* units (the trainer's ``u_next``);
            default ``diff(times) / time_scale``.

    Returns:
        ``time_seqs``, ``time_delta_seqs`` ``(B, L)`` float32 padded with ``float(K)``, ``time_delta_seqs[:, 0] = 0``;
        ``type_seqs`` ``(B, L)`` int64 padded with ``K``; ``seq_non_pad_mask`` ``(B, L)`` bool; ``attention_mask``
        ``(B, L, L)`` bool, ``True`` where query ``i`` may not attend key ``j`` (``j > i`` or ``j`` padded).

    Raises:
        ValueError: shapes disagree, ``mask`` is not right-padded, a real type is outside ``[0, K)``,
            ``num_types < 1`` or ``time_scale <= 0``.

    Example:
        >>> out = to_easytpp_batch(
        ...     torch.tensor([[1, 0], [2, -1]]),
        ...     torch.tensor([[0.5, 2.5], [1.0, 0.0]]),
        ...     torch.tensor([[True, True], [True, False]]),
        ...     num_types=3,
        ...     time_scale=0.5,
        ... )
        >>> out["time_seqs"].tolist(), out["time_delta_seqs"].tolist(), out["type_seqs"].tolist()
        ([[1.0, 5.0], [2.0, 3.0]], [[0.0, 4.0], [0.0, 3.0]], [[1, 0], [2, 3]])
        >>> out["attention_mask"][1].tolist()
        [[False, True], [False, True]]
    """
    if isinstance(num_types, bool) or not isinstance(num_types, int) or num_types < 1:
        raise ValueError(f"num_types must be an integer >= 1, got {num_types!r}")
    if not (isinstance(time_scale, (int, float)) and math.isfinite(time_scale) and time_scale > 0):
        raise ValueError(f"time_scale must be a finite number > 0, got {time_scale!r}")
    if types.ndim != 2 or times.shape != types.shape or mask.shape != types.shape:
        raise ValueError(f"types, times and mask must share a (B, L) shape, got {tuple(types.shape)}, "
                         f"{tuple(times.shape)}, {tuple(mask.shape)}")  # fmt: skip
    B, L = types.shape
    mask = mask.bool()
    if L > 1 and bool((mask[:, 1:] & ~mask[:, :-1]).any()):
        raise ValueError("mask must be right-padded (True for the first events of each row, then False)")
    real = types[mask]
    if real.numel() and (int(real.min()) < 0 or int(real.max()) >= num_types):
        raise ValueError(f"types must lie in [0, {num_types}) at real events, got {int(real.min())}..{int(real.max())}")
    t = times.double() / time_scale
    if gaps is None:
        d = torch.diff(t, dim=1)
    elif gaps.shape != (B, L - 1):
        raise ValueError(f"gaps must have shape ({B}, {L - 1}), got {tuple(gaps.shape)}")
    else:
        d = gaps.double()
    dt = torch.cat([torch.zeros_like(t[:, :1]), d], dim=1)  # (B, L): EasyTPP's first gap is 0
    pad = torch.full_like(t, float(num_types))
    later = torch.triu(torch.ones(L, L, dtype=torch.bool, device=mask.device), diagonal=1)
    return {
        "time_seqs": torch.where(mask, t, pad).float(),
        "time_delta_seqs": torch.where(mask, dt, pad).float(),
        "type_seqs": torch.where(mask, types.long(), torch.full_like(types.long(), num_types)),
        "seq_non_pad_mask": mask,
        "attention_mask": later.unsqueeze(0) | (~mask).unsqueeze(1),  # (B, L, L)
    }


def from_easytpp_batch(batch: dict[str, Tensor], time_scale: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """EasyTPP's padded inputs -> smurf-thp's ``(types, times, mask)`` (``-1`` and ``0`` at padding, times × scale).

    The inverse of :func:`to_easytpp_batch` (up to float32 rounding of the times); also reads a batch of EasyTPP's
    own data loader. ``time_delta_seqs`` and ``attention_mask`` are not needed.

    Example:
        >>> b = to_easytpp_batch(
        ...     torch.tensor([[2, 0]]), torch.tensor([[1.0, 3.0]]), torch.ones(1, 2, dtype=torch.bool), 3
        ... )
        >>> [x.tolist() for x in from_easytpp_batch(b)]
        [[[2, 0]], [[1.0, 3.0]], [[True, True]]]
    """
    mask = batch["seq_non_pad_mask"].bool()
    types = torch.where(mask, batch["type_seqs"].long(), torch.full_like(batch["type_seqs"].long(), -1))
    times = torch.where(mask, batch["time_seqs"].double() * time_scale, torch.zeros_like(batch["time_seqs"].double()))
    return types, times.float(), mask
