"""Marked event sequences, data sets of them, and padded batches for the model.

A sequence ``S = {(t_j, k_j)}_{j=1..L}`` holds absolute event times ``t_j`` (float64, non-decreasing)
and 0-based event types ``k_j ∈ {0, ..., K-1}``. The model predicts the inter-event time
``τ_{j+1} = t_{j+1} - t_j`` and type ``k_{j+1}`` from the history of events ``1..j``; the first
event is never predicted, so a sequence of ``L`` events has ``L - 1`` predicted gaps
(:attr:`EventSequence.gaps`) and sequences with fewer than two events carry no training signal.

Readers and writers for files live in :mod:`smurf_thp.formats` (``load``, ``save``, ``load_splits``,
``save_splits``); they can also be reached from this module. :func:`from_tick` and :func:`to_tick`
convert tick's in-memory realisations.

Note:
    Types are 0-based everywhere in the data objects, as in EasyTPP's and ifl-tpp's files. The
    authors' code shifts them by +1 so that 0 can be the embedding's padding index; :func:`collate`
    pads types with ``-1`` instead (see :data:`TYPE_PAD`), so ``batch.types + 1`` is exactly the
    authors' convention (real types ``1..K``, padding 0). EasyTPP pads with ``K`` instead.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

TYPE_PAD = -1
"""Value of :attr:`Batch.types` at padded positions (real types are ``0..K-1``)."""

TIME_PAD = 0.0
"""Value of :attr:`Batch.times` and :attr:`Batch.gaps` at padded positions."""


def _as_times(times: ArrayLike) -> np.ndarray:
    arr = np.asarray(times)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"times must hold real numbers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def _as_types(types: ArrayLike) -> np.ndarray:
    arr = np.asarray(types)
    if arr.size == 0 and arr.dtype.kind not in "iu":
        return np.zeros(arr.shape, dtype=np.int64)
    if arr.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))
        if bad.size:
            j = int(bad[0])
            raise ValueError(f"types must be integers; types[{j}] is {arr.flat[j]!r}")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"types must hold integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class EventSequence:
    """One marked event sequence on the observation window ``[t_start, t_end]``.

    Args:
        times: ``(L,)`` absolute event times ``t_j``, finite and non-decreasing (ties allowed);
            stored as float64.
        types: ``(L,)`` 0-based event types ``k_j >= 0``; integer-valued floats are accepted;
            stored as int64.
        t_start: start of the observation window, ``t_start <= times[0]`` (default 0).
        t_end: end of the window, ``t_end >= times[-1]``, or None when unknown.

    Raises:
        ValueError: arrays not 1-D or of different lengths, non-finite or decreasing times, negative
            or non-integer types, or a window that does not contain the events; the message names
            the argument and the first offending event index.

    Example:
        >>> seq = EventSequence([0.5, 1.0, 2.5], [0, 2, 1], t_end=3.0)
        >>> len(seq), seq.gaps.tolist(), seq.types.dtype
        (3, [0.5, 1.5], dtype('int64'))
    """

    times: np.ndarray
    """``(L,)`` float64 absolute event times, non-decreasing."""
    types: np.ndarray
    """``(L,)`` int64 0-based event types."""
    t_start: float = 0.0
    """start of the observation window."""
    t_end: float | None = None
    """end of the observation window, or None when unknown."""

    def __post_init__(self) -> None:
        times = _as_times(self.times)
        types = _as_types(self.types)
        if times.ndim != 1:
            raise ValueError(f"times must be 1-D, got shape {times.shape}")
        if types.ndim != 1:
            raise ValueError(f"types must be 1-D, got shape {types.shape}")
        if times.shape != types.shape:
            raise ValueError(f"times and types must have the same length, got {times.size} and {types.size}")
        bad = np.flatnonzero(~np.isfinite(times))
        if bad.size:
            j = int(bad[0])
            raise ValueError(f"times must be finite; times[{j}] (event {j}) is {times[j]}")
        if times.size > 1:
            down = np.flatnonzero(times[1:] < times[:-1])
            if down.size:
                j = int(down[0]) + 1
                raise ValueError(
                    f"times must be non-decreasing (negative gap); times[{j}] (event {j}) = {times[j]!r} "
                    f"< times[{j - 1}] = {times[j - 1]!r}"
                )
        neg = np.flatnonzero(types < 0)
        if neg.size:
            j = int(neg[0])
            raise ValueError(f"types must be >= 0 (0-based); types[{j}] (event {j}) is {types[j]}")
        t_start = float(self.t_start)
        if not math.isfinite(t_start):
            raise ValueError(f"t_start must be finite, got {t_start}")
        if times.size and t_start > times[0]:
            raise ValueError(f"t_start must be <= times[0] = {times[0]!r}, got {t_start!r}")
        t_end = None if self.t_end is None else float(self.t_end)
        if t_end is not None:
            if not math.isfinite(t_end):
                raise ValueError(f"t_end must be finite or None, got {t_end}")
            if t_end < t_start:
                raise ValueError(f"t_end must be >= t_start = {t_start!r}, got {t_end!r}")
            if times.size and t_end < times[-1]:
                raise ValueError(f"t_end must be >= times[-1] = {times[-1]!r}, got {t_end!r}")
        times.flags.writeable = False
        types.flags.writeable = False
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "types", types)
        object.__setattr__(self, "t_start", t_start)
        object.__setattr__(self, "t_end", t_end)

    def __len__(self) -> int:
        return int(self.times.size)

    @property
    def gaps(self) -> np.ndarray:
        """``(L-1,)`` float64 predicted inter-event times ``t_{j+1} - t_j`` (the first event's gap is never predicted)."""
        gaps: np.ndarray = self.times[1:] - self.times[:-1]
        return gaps

    def __repr__(self) -> str:
        end = "None" if self.t_end is None else f"{self.t_end:g}"
        return f"EventSequence(len={len(self)}, t_start={self.t_start:g}, t_end={end})"


@dataclasses.dataclass(frozen=True, eq=False)
class EventDataset:
    """A non-empty collection of event sequences whose types lie in ``[0, num_types)``.

    Args:
        seqs: the sequences (any iterable; stored as a tuple). Sequences of any length are kept
            here; the file readers drop those with fewer than two events.
        num_types: number of event types ``K >= 1``.

    Raises:
        ValueError: no sequences, ``num_types < 1``, an element that is not an :class:`EventSequence`,
            or a type outside ``[0, num_types)`` (the message names the sequence and event index).

    Example:
        >>> ds = EventDataset([EventSequence([0.0, 1.0], [0, 1]), EventSequence([0.0, 0.5, 2.0], [1, 1, 0])], 2)
        >>> len(ds), ds.num_events, ds.num_predicted, ds.all_gaps().tolist()
        (2, 5, 3, [1.0, 0.5, 1.5])
    """

    seqs: Sequence[EventSequence]
    """the sequences (any sequence is accepted; stored as a tuple)."""
    num_types: int
    """number of event types ``K``."""

    def __post_init__(self) -> None:
        seqs = tuple(self.seqs)
        if isinstance(self.num_types, bool) or int(self.num_types) != self.num_types:
            raise ValueError(f"num_types must be an integer, got {self.num_types!r}")
        num_types = int(self.num_types)
        if num_types < 1:
            raise ValueError(f"num_types must be >= 1, got {num_types}")
        if not seqs:
            raise ValueError("seqs must hold at least one sequence (the data set is empty)")
        for i, seq in enumerate(seqs):
            if not isinstance(seq, EventSequence):
                raise ValueError(f"seqs[{i}] must be an EventSequence, got {type(seq).__name__}")
            high = np.flatnonzero(seq.types >= num_types)
            if high.size:
                j = int(high[0])
                raise ValueError(
                    f"sequence {i}, event {j}: type {seq.types[j]} outside [0, {num_types}) (num_types={num_types})"
                )
        object.__setattr__(self, "seqs", seqs)
        object.__setattr__(self, "num_types", num_types)

    def __len__(self) -> int:
        return len(self.seqs)

    def __iter__(self) -> Iterator[EventSequence]:
        return iter(self.seqs)

    @overload
    def __getitem__(self, index: int) -> EventSequence: ...

    @overload
    def __getitem__(self, index: slice) -> EventDataset: ...

    def __getitem__(self, index: int | slice) -> EventSequence | EventDataset:
        if isinstance(index, slice):
            return EventDataset(self.seqs[index], self.num_types)
        return self.seqs[index]

    def __repr__(self) -> str:
        return f"EventDataset(n_seqs={len(self)}, num_types={self.num_types}, num_events={self.num_events})"

    @property
    def num_events(self) -> int:
        """Total number of events over all sequences."""
        return sum(len(seq) for seq in self.seqs)

    @property
    def num_predicted(self) -> int:
        """Number of predicted events, ``sum_i max(L_i - 1, 0)`` (the first event of each sequence is not predicted)."""
        return sum(max(len(seq) - 1, 0) for seq in self.seqs)

    @property
    def max_len(self) -> int:
        """Length of the longest sequence."""
        return max(len(seq) for seq in self.seqs)

    def all_gaps(self) -> np.ndarray:
        """All predicted gaps, concatenated in sequence order (fit a normaliser on the train split's).

        Returns:
            ``(num_predicted,)`` float64 array.
        """
        parts = [seq.gaps for seq in self.seqs]
        return np.concatenate(parts) if parts else np.zeros(0)

    def all_types(self) -> np.ndarray:
        """All event types, concatenated in sequence order, ``(num_events,)`` int64."""
        return np.concatenate([seq.types for seq in self.seqs])

    def subset(self, indices: Sequence[int] | np.ndarray) -> EventDataset:
        """The data set of the sequences at ``indices`` (in that order), same ``num_types``."""
        return EventDataset(tuple(self.seqs[int(i)] for i in indices), self.num_types)

    def split(self, fractions: Sequence[float], seed: int = 0) -> tuple[EventDataset, ...]:
        """Shuffle the sequences with a seeded generator and cut them into parts.

        Args:
            fractions: positive fractions summing to 1 (within 1e-6), e.g. ``(0.6, 0.2, 0.2)``;
                part ``i`` gets ``floor(f_i n)`` sequences and the last part the remainder.
            seed: seed of the ``numpy.random.Generator`` that draws the permutation.

        Returns:
            One :class:`EventDataset` per fraction, all with this ``num_types``.

        Raises:
            ValueError: fractions empty, not positive, not summing to 1, or a part would be empty.

        Example:
            >>> ds = EventDataset([EventSequence([0.0, float(i + 1)], [0, 0]) for i in range(10)], 1)
            >>> [len(part) for part in ds.split((0.6, 0.2, 0.2), seed=0)]
            [6, 2, 2]
        """
        fracs = [float(f) for f in fractions]
        if not fracs or any(not (f > 0) for f in fracs):
            raise ValueError(f"fractions must be a non-empty list of positive numbers, got {list(fractions)}")
        if abs(sum(fracs) - 1.0) > 1e-6:
            raise ValueError(f"fractions must sum to 1, got sum {sum(fracs)!r}")
        n = len(self)
        sizes = [math.floor(f * n + 1e-9) for f in fracs[:-1]]
        sizes.append(n - sum(sizes))
        if min(sizes) < 1:
            raise ValueError(f"fractions {fracs} of {n} sequences leave an empty part (sizes {sizes})")
        perm = np.random.default_rng(seed).permutation(n)
        cuts = np.cumsum([0, *sizes])
        return tuple(self.subset(perm[a:b]) for a, b in itertools.pairwise(cuts))


@dataclasses.dataclass(frozen=True, eq=False)
class Batch:
    """Right-padded tensors of ``B`` sequences, as produced by :func:`collate`.

    Position ``j`` holds event ``j`` of each sequence; the encoder output at ``j`` conditions the
    prediction of event ``j + 1``, so the predicted targets are ``gaps[:, 1:]`` and ``types[:, 1:]``
    where ``mask[:, 1:]`` (see :attr:`target_mask`).
    """

    times: Tensor
    """``(B, L)`` float32 absolute event times; ``TIME_PAD`` (0) at padding."""
    gaps: Tensor
    """``(B, L)`` float32 gaps ``t_j - t_{j-1}`` (computed in float64, then cast); ``gaps[:, 0] = 0``; 0 at padding."""
    types: Tensor
    """``(B, L)`` int64 0-based types; ``TYPE_PAD`` (-1) at padding."""
    mask: Tensor
    """``(B, L)`` bool, True at real events."""
    lengths: Tensor
    """``(B,)`` int64 number of events per sequence."""

    @property
    def target_mask(self) -> Tensor:
        """``(B, L-1)`` bool, True where event ``j+1`` is real, i.e. where ``gaps[:, 1:]`` and ``types[:, 1:]`` are targets."""
        return self.mask[:, 1:]

    @property
    def num_predicted(self) -> int:
        """Number of predicted events in the batch, ``sum_b max(L_b - 1, 0)``."""
        return int(self.target_mask.sum())

    def to(self, device: torch.device | str) -> Batch:
        """The same batch with every tensor on ``device``."""
        return Batch(*(getattr(self, f.name).to(device) for f in dataclasses.fields(self)))


def collate(seqs: Sequence[EventSequence] | EventDataset, device: torch.device | str | None = None) -> Batch:
    """Pad sequences on the right into a :class:`Batch`.

    Args:
        seqs: ``B >= 1`` sequences (a list, a tuple or an :class:`EventDataset`).
        device: where the tensors go (default: CPU).

    Returns:
        A :class:`Batch` with ``L = max_b L_b``: ``times``/``gaps`` float32 padded with 0, ``types``
        int64 padded with ``-1``, ``mask`` bool, ``lengths`` int64.

    Raises:
        ValueError: no sequences, or an element that is not an :class:`EventSequence`.

    Example:
        >>> b = collate([EventSequence([1.0, 3.0], [2, 0]), EventSequence([0.5], [1])])
        >>> b.gaps.tolist(), b.types.tolist(), b.mask.tolist(), b.lengths.tolist()
        ([[0.0, 2.0], [0.0, 0.0]], [[2, 0], [1, -1]], [[True, True], [True, False]], [2, 1])
    """
    items = list(seqs)
    if not items:
        raise ValueError("seqs must hold at least one sequence")
    for i, seq in enumerate(items):
        if not isinstance(seq, EventSequence):
            raise ValueError(f"seqs[{i}] must be an EventSequence, got {type(seq).__name__}")
    lengths = np.array([len(seq) for seq in items], dtype=np.int64)
    n, width = len(items), int(lengths.max())
    times = np.full((n, width), TIME_PAD, dtype=np.float64)
    gaps = np.full((n, width), TIME_PAD, dtype=np.float64)
    types = np.full((n, width), TYPE_PAD, dtype=np.int64)
    for b, seq in enumerate(items):
        length = len(seq)
        times[b, :length] = seq.times
        gaps[b, 1:length] = seq.gaps
        types[b, :length] = seq.types
    mask = np.arange(width)[None, :] < lengths[:, None]
    return Batch(
        times=torch.as_tensor(times, dtype=torch.float32, device=device),
        gaps=torch.as_tensor(gaps, dtype=torch.float32, device=device),
        types=torch.as_tensor(types, dtype=torch.int64, device=device),
        mask=torch.as_tensor(mask, dtype=torch.bool, device=device),
        lengths=torch.as_tensor(lengths, dtype=torch.int64, device=device),
    )


def batches(
    ds: EventDataset,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
    device: torch.device | str | None = None,
) -> Iterator[Batch]:
    """Iterate over ``ds`` in padded batches of ``batch_size`` sequences.

    Args:
        ds: the data set.
        batch_size: sequences per batch, ``>= 1`` (the last batch may be smaller).
        shuffle: draw a fresh permutation of the sequences (with ``torch.randperm``) on each call.
        generator: the ``torch.Generator`` for the permutation (None: torch's global generator);
            the same seeded generator state gives the same order.
        drop_last: skip a last batch smaller than ``batch_size``.
        device: where the tensors go (default: CPU).

    Returns:
        An iterator of :class:`Batch`.

    Raises:
        ValueError: ``batch_size < 1``.

    Example:
        >>> ds = EventDataset([EventSequence([0.0, 1.0 + i], [0, 0]) for i in range(5)], 1)
        >>> [b.lengths.numel() for b in batches(ds, batch_size=2)]
        [2, 2, 1]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if not isinstance(ds, EventDataset):
        raise ValueError(f"ds must be an EventDataset, got {type(ds).__name__}")
    n = len(ds)
    # The permutation is drawn here, at the call, not at the first next(): the generator's state
    # is consumed in call order, whatever the caller does with the iterator.
    order = torch.randperm(n, generator=generator).tolist() if shuffle else list(range(n))
    stop = n - n % batch_size if drop_last else n
    chunks = [order[start : start + batch_size] for start in range(0, stop, batch_size)]
    return (collate([ds.seqs[i] for i in chunk], device=device) for chunk in chunks)


class DataWarning(UserWarning):
    """Issued when sequences are dropped (fewer than two events carry nothing to predict)."""


def drop_short(seqs: Sequence[EventSequence], num_types: int, where: str = "data") -> tuple[EventDataset, int]:
    """Keep the sequences with at least two events (the first event is never predicted).

    Args:
        seqs: the sequences.
        num_types: ``K`` of the resulting data set.
        where: what the sequences came from (a file and split), for the error message.

    Returns:
        ``(dataset, n_dropped)``; warn with :func:`warn_dropped`.

    Raises:
        ValueError: no sequence has two events (the data set would be empty), or as :class:`EventDataset`.

    Example:
        >>> ds, n = drop_short([EventSequence([0.0], [0]), EventSequence([0.0, 1.0], [0, 0])], 1)
        >>> len(ds), n
        (1, 1)
    """
    kept = [seq for seq in seqs if len(seq) >= 2]
    if not kept:
        raise ValueError(f"{where}: no sequence with at least 2 events ({len(seqs)} read; the data set is empty)")
    return EventDataset(kept, num_types), len(seqs) - len(kept)


def warn_dropped(where: str, dropped: dict[str, int], stacklevel: int = 2) -> None:
    """Issue one :class:`DataWarning` counting the dropped sequences per split (nothing when none were dropped).

    ``stacklevel`` counts from the caller of this function, as in :func:`warnings.warn`.
    """
    counts = {split: n for split, n in dropped.items() if n}
    if counts:
        text = ", ".join(f"{n} in split {split!r}" for split, n in counts.items())
        warnings.warn(
            f"{where}: dropped {sum(counts.values())} sequences with fewer than 2 events ({text}); "
            "the first event is never predicted, so they carry nothing to learn",
            DataWarning,
            stacklevel=stacklevel + 1,
        )


def from_tick(
    timestamps_list: Sequence[Sequence[Any]], t_end: float | None = None, t_start: float = 0.0
) -> EventDataset:
    """Convert tick's realisations (``SimuHawkesMulti.timestamps``) into an :class:`EventDataset`.

    Args:
        timestamps_list: one entry per sequence, each a list of ``K`` 1-D arrays holding the times
            of the events of type ``k`` (tick's layout); for a single realisation pass ``[timestamps]``.
        t_end: the simulation's ``end_time`` (None: unknown).
        t_start: the window start (tick starts at 0).

    Returns:
        An :class:`EventDataset` with ``num_types = K``; events merged in time order (ties ordered by
        type); sequences with fewer than two events are dropped with one :class:`DataWarning`.

    Raises:
        ValueError: an entry that is not a list of 1-D arrays, ``K`` differing between entries, or
            bad times (the message names the sequence).

    Example:
        >>> ds = from_tick([[np.array([0.5, 2.0]), np.array([1.0])]], t_end=3.0)
        >>> ds.num_types, ds[0].times.tolist(), ds[0].types.tolist()
        (2, [0.5, 1.0, 2.0], [0, 1, 0])
    """
    if not isinstance(timestamps_list, (list, tuple)) or not timestamps_list:
        raise ValueError("timestamps_list must be a non-empty list of realisations (lists of per-type arrays)")
    num_types = 0
    seqs = []
    for i, realisation in enumerate(timestamps_list):
        where = f"timestamps_list[{i}]"
        if not isinstance(realisation, (list, tuple)) or not all(np.ndim(a) == 1 for a in realisation):
            raise ValueError(f"{where} must be a list of 1-D per-type arrays; for one realisation pass [timestamps]")
        if i == 0:
            num_types = len(realisation)
        elif len(realisation) != num_types:
            raise ValueError(f"{where} has {len(realisation)} types, timestamps_list[0] has {num_types}")
        times = np.concatenate([np.asarray(a, dtype=np.float64) for a in realisation])
        types = np.concatenate([np.full(len(a), k, dtype=np.int64) for k, a in enumerate(realisation)])
        order = np.lexsort((types, times))
        try:
            seqs.append(EventSequence(times[order], types[order], t_start, t_end))
        except ValueError as err:
            raise ValueError(f"{where} (sequence {i}): {err}") from None
    ds, dropped = drop_short(seqs, max(num_types, 1), where="timestamps_list")
    warn_dropped("timestamps_list", {"train": dropped}, stacklevel=2)
    return ds


def to_tick(ds: EventDataset) -> list[list[np.ndarray]]:
    """The inverse of :func:`from_tick`: per sequence, ``num_types`` float64 arrays of event times.

    Example:
        >>> ds = EventDataset([EventSequence([0.5, 1.0, 2.0], [0, 1, 0])], 2)
        >>> [a.tolist() for a in to_tick(ds)[0]]
        [[0.5, 2.0], [1.0]]
    """
    if not isinstance(ds, EventDataset):
        raise ValueError(f"ds must be an EventDataset, got {type(ds).__name__}")
    return [[seq.times[seq.types == k].copy() for k in range(ds.num_types)] for seq in ds]


_FORMAT_NAMES = ("load", "save", "load_splits", "save_splits", "FORMATS")


def __getattr__(name: str) -> Any:
    # The readers live in smurf_thp.formats, which imports this module; resolve them lazily.
    if name in _FORMAT_NAMES:
        from smurf_thp import formats

        return getattr(formats, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
