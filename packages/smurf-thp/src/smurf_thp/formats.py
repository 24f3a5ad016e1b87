"""Readers and writers for the event-sequence files of EasyTPP, ifl-tpp, tick and plain CSV.

=================  ================================================================  =====================
format             layout                                                            splits
=================  ================================================================  =====================
``easytpp-pkl``    pickle ``{'dim_process': K, 'train': [[{'time_since_start',       a key per split; a
                   'time_since_last_event', 'type_event'}, ...], ...], ...}``        directory of
                   (the Gatech/NHP/THP pickles; types 0-based)                      ``<split>.pkl`` files
``easytpp-json``   JSON list of ``{'time_since_start': [...], 'time_since_last_      one list per file
                   event': [...], 'type_event': [...], 'dim_process': K,             (``<split>.json`` in a
                   'seq_len': L, 'seq_idx': i}`` (EasyTPP's HF layout)               directory), or a dict
                                                                                     keyed by split
``ifl``            ``torch.save({'sequences': [{'arrival_times', 'marks',            one per file
                   't_start', 't_end'}, ...], 'num_marks': K})`` (ifl-tpp)           (``<split>.pt``)
``csv``            header ``seq_id,time,type``, one row per event                    one per file
                                                                                     (``<split>.csv``)
=================  ================================================================  =====================

Split names are ``train``, ``dev`` and ``test``; ``validation`` (the name Hugging Face gives
EasyTPP's ``dev.json``) is read as ``dev``. ``format="auto"`` picks the format from the suffix
(``.pkl``/``.pickle``, ``.json``, ``.pt``/``.pth``, ``.csv``) or, for a directory, from the split
files in it. Every reader validates the data and raises a ``ValueError`` naming the file, the split,
the sequence index and, where relevant, the event index; sequences with fewer than two events are
dropped with one :class:`~smurf_thp.data.DataWarning` stating how many.

Note:
    Round trips are exact for times (float64) and 0-based types. EasyTPP files have no
    observation window: they load with ``t_start = 0`` and ``t_end = None``, and the first event's
    ``time_since_last_event`` is written as ``times[0] - t_start`` (the Gatech convention) and never
    checked on reading (EasyTPP writes 0 there). ifl-tpp needs a numeric ``t_end``: a sequence with
    ``t_end=None`` is written with ``t_end = times[-1]``. CSV keeps neither window.
    Pickle and ``torch.load`` can run code hidden in a file: read only files you trust.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

# The EasyTPP record readers and builders live in _easytpp, the checks all readers share in _records.
from smurf_thp._easytpp import GAP_RTOL as GAP_RTOL
from smurf_thp._easytpp import _json_records, _pkl_records, _read_json_split, _read_pkl_split
from smurf_thp._records import _ALIASES, _check_type_range, _list, _need, _num_types, _sequence, _Split
from smurf_thp.data import EventDataset, EventSequence, drop_short, warn_dropped

FORMATS = ("easytpp-pkl", "easytpp-json", "ifl", "csv")
"""The file formats :func:`load` and :func:`save` know."""

SPLITS = ("train", "dev", "test")
"""The canonical split names."""

_SUFFIXES = {"easytpp-pkl": (".pkl", ".pickle"), "easytpp-json": (".json",), "ifl": (".pt", ".pth"), "csv": (".csv",)}

PathLike = str | os.PathLike[str]


def _canonical(split: str) -> str:
    return _ALIASES.get(split, split)


def _check_format(format: str) -> None:
    if format != "auto" and format not in FORMATS:
        raise ValueError(f"format must be 'auto' or one of {FORMATS}, got {format!r}")


def _format_of_file(path: Path) -> str:
    for fmt, suffixes in _SUFFIXES.items():
        if path.suffix.lower() in suffixes:
            return fmt
    raise ValueError(f"{path}: cannot infer the format from the suffix {path.suffix!r}; pass format= one of {FORMATS}")


def _split_files(directory: Path, format: str) -> dict[str, Path]:
    """Canonical split name -> file, for the ``<split><suffix>`` files in ``directory``."""
    found: dict[str, Path] = {}
    formats_seen: set[str] = set()
    for fmt, suffixes in _SUFFIXES.items():
        if format not in ("auto", fmt):
            continue
        for name in (*SPLITS, *_ALIASES):
            for suffix in suffixes:
                file = directory / f"{name}{suffix}"
                if file.is_file() and _canonical(name) not in found:
                    found[_canonical(name)] = file
                    formats_seen.add(fmt)
    if len(formats_seen) > 1:
        raise ValueError(f"{directory}: split files of several formats {sorted(formats_seen)}; pass format=")
    return found


def _resolve(path: PathLike, format: str) -> tuple[Path, str]:
    _check_format(format)
    p = Path(path)
    if p.is_dir():
        files = _split_files(p, format)
        if not files:
            raise FileNotFoundError(
                f"{p}: no split files (train/dev/validation/test with {_SUFFIXES}) in the directory"
            )
        return p, format if format != "auto" else _format_of_file(next(iter(files.values())))
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    return p, format if format != "auto" else _format_of_file(p)


def _read_ifl_split(file: Path, obj: Any, split: str, trust_gaps: bool) -> _Split:
    _need(f"{file}", obj, ("sequences", "num_marks"))
    unmarked = obj["num_marks"] is None
    num_types = 1 if unmarked else _num_types(f"{file}", obj["num_marks"], "num_marks")
    seqs = []
    for i, raw in enumerate(_list(f"{file}", obj["sequences"], "sequences")):
        where = f"{file}: split {split!r}, sequence {i}"
        _need(
            where,
            raw,
            ("arrival_times", "t_start", "t_end") if unmarked else ("arrival_times", "marks", "t_start", "t_end"),
        )
        times = np.asarray(raw["arrival_times"], dtype=np.float64)
        marks = np.zeros(times.shape, dtype=np.int64) if unmarked else raw["marks"]
        seq = _sequence(where, times, marks, raw["t_start"], raw["t_end"])
        _check_type_range(where, seq, num_types, "num_marks")
        seqs.append(seq)
    return seqs, num_types


def _read_csv_split(file: Path, rows: list[dict[str, str]], split: str, trust_gaps: bool) -> _Split:
    groups: dict[str, tuple[list[float], list[float]]] = {}
    for line, row in enumerate(rows, start=2):
        times, types = groups.setdefault(row["seq_id"], ([], []))
        try:
            times.append(float(row["time"]))
            types.append(float(row["type"]))
        except (TypeError, ValueError):
            raise ValueError(
                f"{file}: split {split!r}, sequence {list(groups).index(row['seq_id'])} (seq_id {row['seq_id']!r}), "
                f"line {line}: time {row['time']!r} and type {row['type']!r} must be numbers"
            ) from None
    seqs = []
    for i, (seq_id, (times, types)) in enumerate(groups.items()):
        seqs.append(_sequence(f"{file}: split {split!r}, sequence {i} (seq_id {seq_id!r})", times, types))
    if not seqs:
        raise ValueError(f"{file}: split {split!r} has no rows (the data set is empty)")
    return seqs, max(int(seq.types.max()) + 1 for seq in seqs if len(seq))


def _open(file: Path, fmt: str) -> Any:
    """The parsed content of ``file``: a pickled/JSON/torch object, or CSV rows."""
    if fmt == "easytpp-pkl":
        with file.open("rb") as f:
            try:
                return pickle.load(f, encoding="latin1")  # the Gatech pickles were written by Python 2
            except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as err:
                raise ValueError(f"{file}: not a readable pickle ({type(err).__name__}: {err})") from None
    if fmt == "easytpp-json":
        with file.open(encoding="utf-8") as f:
            try:
                return json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(f"{file}: not valid JSON ({err})") from None
    if fmt == "ifl":
        try:
            return torch.load(file, weights_only=True)
        except pickle.UnpicklingError:
            pass  # ifl-tpp's own files may hold numpy arrays, which the safe loader refuses
        except (RuntimeError, EOFError) as err:
            raise ValueError(f"{file}: not a torch.save file ({err})") from None
        try:
            return torch.load(file, weights_only=False)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
            raise ValueError(f"{file}: not a torch.save file ({err})") from None
    with file.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [key for key in ("seq_id", "time", "type") if key not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{file}: missing CSV column {missing[0]!r} (header {reader.fieldnames}; need seq_id,time,type)"
            )
        return list(reader)


_READERS: dict[str, Callable[[Path, Any, str, bool], _Split]] = {
    "easytpp-pkl": _read_pkl_split,
    "easytpp-json": _read_json_split,
    "ifl": _read_ifl_split,
    "csv": _read_csv_split,
}


def _read(file: Path, fmt: str, split: str, trust_gaps: bool, num_types: int | None) -> tuple[EventDataset, int]:
    seqs, k = _READERS[fmt](file, _open(file, fmt), split, trust_gaps)
    if num_types is not None:
        if fmt != "csv" and num_types != k:
            raise ValueError(f"{file}: split {split!r}: num_types={num_types} disagrees with the file's {k}")
        if fmt == "csv":
            for i, seq in enumerate(seqs):
                _check_type_range(f"{file}: split {split!r}, sequence {i}", seq, num_types, "num_types")
            k = num_types
    return drop_short(seqs, k, where=f"{file}: split {split!r}")


def load(
    path: PathLike, format: str = "auto", split: str = "train", trust_gaps: bool = False, num_types: int | None = None
) -> EventDataset:
    """Read one split of an event-sequence file or directory (layouts in the module docstring).

    Args:
        path: a file, or a directory holding ``<split><suffix>`` files.
        format: ``"auto"`` (from the suffix) or one of :data:`FORMATS`.
        split: ``"train"``, ``"dev"`` (``"validation"`` is the same) or ``"test"``; for the
            one-split files (a JSON list, ifl, CSV) it only names the split in error messages.
        trust_gaps: skip the check of ``time_since_last_event`` against ``diff(time_since_start)``.
        num_types: ``K``; required to agree with the file's ``dim_process``/``num_marks``; for CSV
            (which stores no ``K``) it replaces the default ``max type + 1``.

    Returns:
        An :class:`EventDataset` of the sequences with at least two events.

    Raises:
        ValueError: bad data (message names file, split, sequence and event) or an unknown format.
        FileNotFoundError: no such file, or no split file in the directory.

    Example:
        >>> import tempfile, os
        >>> ds = EventDataset([EventSequence([0.0, 0.5, 2.0], [1, 0, 1])], num_types=2)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = save(ds, os.path.join(tmp, "train.json"))
        ...     back = load(path)
        >>> back.num_types, back[0].times.tolist(), back[0].types.tolist()
        (2, [0.0, 0.5, 2.0], [1, 0, 1])
    """
    p, fmt = _resolve(path, format)
    split = _canonical(split)
    if p.is_dir():
        files = _split_files(p, fmt)
        if split not in files:
            raise FileNotFoundError(f"{p}: no file for split {split!r} (found {sorted(files)})")
        p = files[split]
    ds, dropped = _read(p, fmt, split, trust_gaps, num_types)
    warn_dropped(f"{p}", {split: dropped}, stacklevel=2)
    return ds


def load_splits(
    path: PathLike, format: str = "auto", trust_gaps: bool = False, num_types: int | None = None
) -> dict[str, EventDataset]:
    """Read every split of a file (a pickle or JSON dict keyed by split) or directory of split files.

    Args:
        path: a file or a directory of ``<split><suffix>`` files.
        format: ``"auto"`` or one of :data:`FORMATS`.
        trust_gaps: as in :func:`load`.
        num_types: as in :func:`load`; for CSV, None takes ``max type + 1`` over all splits.

    Returns:
        Split name (``validation`` read as ``dev``) -> :class:`EventDataset`, train/dev/test first.
        A one-split file gives one entry, named after its stem when that is a split name, else ``train``.

    Raises:
        ValueError: as :func:`load`, and when ``dim_process``/``num_marks`` disagree across splits.
        FileNotFoundError: as :func:`load`.

    Example:
        >>> import tempfile, os
        >>> a = EventDataset([EventSequence([0.0, 1.0], [0, 1])], 2)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = save_splits({"train": a, "dev": a, "test": a}, os.path.join(tmp, "data.pkl"))
        ...     sorted(load_splits(path))
        ['dev', 'test', 'train']
    """
    p, fmt = _resolve(path, format)
    sources: list[tuple[str, Path, Any]]  # (split key, file, parsed content)
    if p.is_dir():
        sources = [(split, file, _open(file, fmt)) for split, file in _split_files(p, fmt).items()]
    else:
        obj = _open(p, fmt)
        if fmt in ("easytpp-pkl", "easytpp-json") and isinstance(obj, Mapping):
            keys = [str(k) for k, v in obj.items() if k != "dim_process" and isinstance(v, (list, tuple))]
            if not keys:
                raise ValueError(f"{p}: no split key holding a list of sequences (keys: {sorted(map(str, obj))})")
            sources = [(key, p, obj) for key in keys]
        else:
            stem = _canonical(p.stem)
            sources = [(stem if stem in SPLITS else "train", p, obj)]
    raw: dict[str, tuple[Path, list[EventSequence], int]] = {}
    for split, file, content in sorted(sources, key=lambda s: (*SPLITS, _canonical(s[0])).index(_canonical(s[0]))):
        if _canonical(split) in raw:
            raise ValueError(f"{file}: split {_canonical(split)!r} appears twice (as 'dev' and 'validation')")
        seqs, k = _READERS[fmt](file, content, split, trust_gaps)
        raw[_canonical(split)] = (file, seqs, k)
    if fmt == "csv":
        k_all = num_types if num_types is not None else max(k for _, _, k in raw.values())
        raw = {s: (f, seqs, k_all) for s, (f, seqs, _) in raw.items()}
    first_split, (first_file, _, first_k) = next(iter(raw.items()))
    for split, (file, seqs, k) in raw.items():
        if k != first_k:
            raise ValueError(
                f"{file}: split {split!r}: dim_process/num_marks = {k} disagrees with {first_k} of split "
                f"{first_split!r} in {first_file}"
            )
        if num_types is not None and k != num_types:
            raise ValueError(f"{file}: split {split!r}: num_types={num_types} disagrees with the file's {k}")
        for i, seq in enumerate(seqs):
            _check_type_range(f"{file}: split {split!r}, sequence {i}", seq, k, "num_types")
    out: dict[str, EventDataset] = {}
    dropped: dict[str, int] = {}
    for split, (file, seqs, k) in raw.items():
        out[split], dropped[split] = drop_short(seqs, k, where=f"{file}: split {split!r}")
    warn_dropped(f"{p}", dropped, stacklevel=2)
    return out


# ----------------------------------------------------------------------------------------- writers


def _ifl_object(ds: EventDataset) -> dict[str, Any]:
    def end(seq: EventSequence) -> float:
        return seq.t_end if seq.t_end is not None else (float(seq.times[-1]) if len(seq) else seq.t_start)

    sequences = [
        {"arrival_times": seq.times.tolist(), "marks": seq.types.tolist(), "t_start": seq.t_start, "t_end": end(seq)}
        for seq in ds
    ]
    return {"sequences": sequences, "num_marks": ds.num_types}


def _atomic_write(path: Path, write: Callable[[Any], None], binary: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write(path: Path, fmt: str, obj: Any) -> None:
    if fmt == "easytpp-pkl":
        _atomic_write(path, lambda f: pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL), binary=True)
    elif fmt == "easytpp-json":
        _atomic_write(path, lambda f: json.dump(obj, f), binary=False)
    elif fmt == "ifl":
        _atomic_write(path, lambda f: torch.save(obj, f), binary=True)
    else:

        def rows(f: Any) -> None:
            writer = csv.writer(f)
            writer.writerow(["seq_id", "time", "type"])
            for i, seq in enumerate(obj):
                writer.writerows([i, repr(t), k] for t, k in zip(seq.times.tolist(), seq.types.tolist(), strict=True))

        _atomic_write(path, rows, binary=False)


def _check_dataset(ds: Any, name: str) -> EventDataset:
    if not isinstance(ds, EventDataset):
        raise ValueError(f"{name} must be an EventDataset, got {type(ds).__name__}")
    return ds


def save(ds: EventDataset, path: PathLike, format: str = "auto", split: str = "train") -> Path:
    """Write one split to a file (layouts in the module docstring); the file is replaced atomically.

    Args:
        ds: the data set.
        path: the file, or an existing directory (then ``<dir>/<split><suffix>`` is written).
        format: ``"auto"`` (from the suffix) or one of :data:`FORMATS`.
        split: the split's key in a pickle (``{'dim_process': K, split: [...]}``) and the file name
            in a directory; the JSON, ifl and CSV files hold one split without its name.

    Returns:
        The path written.

    Raises:
        ValueError: ``ds`` not an :class:`EventDataset`, or an unknown or uninferable format.

    Example:
        >>> import tempfile
        >>> ds = EventDataset([EventSequence([0.0, 1.0], [0, 0], t_end=2.0)], 1)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     save(ds, tmp, format="ifl", split="dev").name
        'dev.pt'
    """
    _check_dataset(ds, "ds")
    _check_format(format)
    p = Path(path)
    if p.is_dir():
        if format == "auto":
            raise ValueError(f"{p} is a directory: pass format= one of {FORMATS}")
        p = p / f"{_canonical(split)}{_SUFFIXES[format][0]}"
    fmt = format if format != "auto" else _format_of_file(p)
    obj: Any = ds  # CSV rows are written from the data set itself
    if fmt == "easytpp-pkl":
        obj = {"dim_process": ds.num_types, _canonical(split): _pkl_records(ds)}
    elif fmt == "easytpp-json":
        obj = _json_records(ds)
    elif fmt == "ifl":
        obj = _ifl_object(ds)
    _write(p, fmt, obj)
    return p


def save_splits(splits: Mapping[str, EventDataset], path: PathLike, format: str = "auto") -> Path:
    """Write several splits: one pickle or JSON file keyed by split, or a directory of split files.

    Args:
        splits: split name -> data set, all with the same ``num_types``.
        path: a ``.pkl``/``.json`` file (all splits in one dict), or a directory (created if needed)
            that receives ``<split><suffix>`` files — the only choice for ifl and CSV.
        format: ``"auto"`` (from the suffix; required for a directory) or one of :data:`FORMATS`.

    Returns:
        The file or directory written.

    Raises:
        ValueError: no splits, ``num_types`` differing between splits, a file path for ifl/CSV, or
            an unknown format.

    Example:
        >>> import tempfile, os
        >>> a = EventDataset([EventSequence([0.0, 1.0], [0, 1])], 2)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     out = save_splits({"train": a, "test": a}, os.path.join(tmp, "d"), format="csv")
        ...     sorted(f.name for f in out.iterdir())
        ['test.csv', 'train.csv']
    """
    _check_format(format)
    if not splits:
        raise ValueError("splits must hold at least one split")
    items = {_canonical(name): _check_dataset(ds, f"splits[{name!r}]") for name, ds in splits.items()}
    ks = {name: ds.num_types for name, ds in items.items()}
    if len(set(ks.values())) > 1:
        raise ValueError(f"splits must share num_types (dim_process), got {ks}")
    p = Path(path)
    is_file = not p.is_dir() and any(p.suffix.lower() in s for s in _SUFFIXES.values())
    if not is_file:
        if format == "auto":
            raise ValueError(f"{p} is a directory: pass format= one of {FORMATS}")
        p.mkdir(parents=True, exist_ok=True)
        for name, ds in items.items():
            save(ds, p / f"{name}{_SUFFIXES[format][0]}", format=format, split=name)
        return p
    fmt = format if format != "auto" else _format_of_file(p)
    if fmt == "easytpp-pkl":
        _write(p, fmt, {"dim_process": next(iter(ks.values())), **{n: _pkl_records(ds) for n, ds in items.items()}})
    elif fmt == "easytpp-json":
        _write(p, fmt, {name: _json_records(ds) for name, ds in items.items()})
    else:
        raise ValueError(f"{p}: format {fmt!r} holds one split per file; give a directory for save_splits")
    return p
