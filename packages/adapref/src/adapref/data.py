"""Preference data: segment pairs with labels, their JSONL format, and TRL's text preference format.

A preference pair is a *chosen* segment ``z_w`` and a *rejected* segment ``z_l`` (the paper's
``z_w ≻ z_l``), each a ``(T, D)`` array of per-step features. :class:`PreferenceData` holds ``N`` of
them as ``(N, T, D)`` tensors, with the true preference strength ``|R*(z_w) − R*(z_l)|`` and a
corruption flag when the data are synthetic (``adapref.synthetic``) or come from an environment
whose reward is known.

JSONL record format (one JSON object per line, blank lines skipped)::

    {"id": "pair000001", "chosen": [[...D floats] x T], "rejected": [[...] x T],
     "strength": 0.7, "corrupted": false}

``strength`` and ``corrupted`` are optional, but present on every line or on none. A 1-D list of
``D`` floats is read as a segment of length ``T = 1`` (the official control code compares single
transitions). Files are written atomically (a temporary file, then ``os.replace``).

Segments of different lengths are refused unless the reader is asked for them
(``from_jsonl(path, ragged=True)``, the CLI's ``--ragged``): a summed reward grows with the number of
steps, so unequal lengths are a modelling choice, not a default. Read that way, every segment is padded
at its end to the longest one and :class:`PreferenceData` carries ``chosen_mask``/``rejected_mask``
(True on the real steps); the reward model sums only those, and :meth:`PreferenceData.to_jsonl`
writes each segment at its own length again.

TRL's text format (``{"prompt", "chosen", "rejected"}``, standard or conversational, explicit or
implicit prompt) is read and written by :func:`read_trl_jsonl` and :func:`write_trl_jsonl`, and
checked in memory (a ``datasets.Dataset`` split, a list of dicts) by :func:`from_trl_dataset`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

__all__ = ["PreferenceData", "from_trl_dataset", "read_trl_jsonl", "write_trl_jsonl"]


@dataclass
class PreferenceData:
    """``N`` labelled segment pairs, ``chosen ≻ rejected``.

    Args:
        chosen: ``(N, T, D)`` floating tensor, the preferred segments ``z_w``.
        rejected: ``(N, T, D)`` floating tensor of the same shape and dtype, the segments ``z_l``.
        ids: ``N`` unique strings naming the pairs.
        strength: optional ``(N,)`` tensor ``|R*(z_w) − R*(z_l)| ≥ 0``, the true preference
            strength, when the ground-truth reward is known.
        corrupted: optional ``(N,)`` bool tensor, True where the label disagrees with the true
            ordering (``R*(z_w) < R*(z_l)``), when known.
        chosen_mask: optional ``(N, T)`` bool tensor, True on the real steps of each chosen segment
            and False on the padding after them (segments of different lengths; None: every step
            counts). Padding comes after the steps, because the reward model's discount ``γ^t``
            keeps each step's position.
        rejected_mask: the same for the rejected segments.

    Raises:
        ValueError: naming the field and the expected and received shape or value, when the
            tensors are not 3-D with equal shapes, ``N < 1``, a value is NaN or infinite, the ids are
            not ``N`` unique strings, ``strength`` is negative, ``corrupted`` is not bool, or a mask
            is not ``(N, T)`` bool with at least one real step per segment and its padding at the end.

    Example:
        >>> x = torch.zeros(2, 3, 4)
        >>> data = PreferenceData(x + 1, x, ids=["a", "b"])
        >>> len(data), tuple(data.chosen.shape)
        (2, (2, 3, 4))
    """

    chosen: torch.Tensor
    rejected: torch.Tensor
    ids: list[str]
    strength: torch.Tensor | None = None
    corrupted: torch.Tensor | None = None
    chosen_mask: torch.Tensor | None = None
    rejected_mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        for name in ("chosen", "rejected"):
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"{name} must be a torch.Tensor of shape (N, T, D), got {type(value).__name__}")
            if value.ndim != 3:
                raise ValueError(f"{name} must have shape (N, T, D), got {tuple(value.shape)}")
            if not value.is_floating_point():
                raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
        if self.chosen.shape != self.rejected.shape:
            raise ValueError(
                f"chosen and rejected must have the same shape (N, T, D), got {tuple(self.chosen.shape)} "
                f"and {tuple(self.rejected.shape)}"
            )
        if self.chosen.dtype != self.rejected.dtype:
            raise ValueError(
                f"chosen and rejected must share a dtype, got {self.chosen.dtype} and {self.rejected.dtype}"
            )
        n, t, d = self.chosen.shape
        if n < 1 or t < 1 or d < 1:
            raise ValueError(f"chosen must have N >= 1, T >= 1 and D >= 1, got shape {(n, t, d)}")
        for name in ("chosen", "rejected"):
            if not bool(torch.isfinite(getattr(self, name)).all()):
                raise ValueError(f"{name} contains NaN or infinite values")
        if not isinstance(self.ids, list) or not all(isinstance(i, str) for i in self.ids):
            raise ValueError("ids must be a list of str")
        if len(self.ids) != n:
            raise ValueError(f"ids must have length N={n}, got {len(self.ids)}")
        if len(set(self.ids)) != n:
            seen: set[str] = set()
            for pair_id in self.ids:
                if pair_id in seen:
                    raise ValueError(f"ids must be unique, {pair_id!r} occurs more than once")
                seen.add(pair_id)
        if self.strength is not None:
            s = self.strength
            if not isinstance(s, torch.Tensor) or s.shape != (n,) or not s.is_floating_point():
                shown = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(f"strength must be a floating tensor of shape (N,)=({n},), got {shown}")
            if not bool(torch.isfinite(s).all()):
                raise ValueError("strength contains NaN or infinite values")
            if bool((s < 0).any()):
                raise ValueError(f"strength must be >= 0, got minimum {float(s.min())}")
        if self.corrupted is not None:
            c = self.corrupted
            if not isinstance(c, torch.Tensor) or c.shape != (n,) or c.dtype != torch.bool:
                got = f"{tuple(c.shape)} {c.dtype}" if isinstance(c, torch.Tensor) else type(c).__name__
                raise ValueError(f"corrupted must be a bool tensor of shape (N,)=({n},), got {got}")
        for name in ("chosen_mask", "rejected_mask"):
            _check_mask(getattr(self, name), name, n, t)

    @property
    def ragged(self) -> bool:
        """True when a mask marks padding (some segment is shorter than ``T``)."""
        return any(m is not None and not bool(m.all()) for m in (self.chosen_mask, self.rejected_mask))

    def lengths(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N,)`` step counts of the chosen and of the rejected segments (``T`` where there is no mask)."""
        n, t = self.chosen.shape[:2]
        full = torch.full((n,), t, dtype=torch.long)
        return tuple(full if m is None else m.sum(dim=1).cpu() for m in (self.chosen_mask, self.rejected_mask))  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self.chosen.shape[0])

    def subset(self, index: torch.Tensor | slice) -> PreferenceData:
        """The pairs selected by ``index``.

        Args:
            index: a slice, a 1-D integer tensor of positions, or a ``(N,)`` bool mask.

        Returns:
            A new :class:`PreferenceData` with the selected pairs, in the order of ``index``.

        Raises:
            ValueError: if ``index`` is not 1-D, a mask has the wrong length, a position repeats
                (ids would not be unique) or the selection is empty.
        """
        n = len(self)
        if isinstance(index, slice):
            positions = list(range(n))[index]
        elif isinstance(index, torch.Tensor):
            if index.ndim != 1:
                raise ValueError(f"index must be 1-D, got shape {tuple(index.shape)}")
            if index.dtype == torch.bool:
                if index.shape[0] != n:
                    raise ValueError(f"a bool index must have length N={n}, got {index.shape[0]}")
                positions = torch.nonzero(index).flatten().tolist()
            elif not index.is_floating_point() and not index.is_complex():
                positions = [p + n if p < 0 else p for p in index.tolist()]
                if any(p < 0 or p >= n for p in positions):
                    raise ValueError(f"index has positions outside [0, {n})")
            else:
                raise ValueError(f"index must be an integer or bool tensor, got dtype {index.dtype}")
        else:
            raise ValueError(f"index must be a slice or a torch.Tensor, got {type(index).__name__}")
        if not positions:
            raise ValueError("index selects no pairs; a PreferenceData needs N >= 1")
        idx = torch.tensor(positions, dtype=torch.long, device=self.chosen.device)
        return PreferenceData(
            chosen=self.chosen[idx],
            rejected=self.rejected[idx],
            ids=[self.ids[p] for p in positions],
            strength=None if self.strength is None else self.strength[idx.to(self.strength.device)],
            corrupted=None if self.corrupted is None else self.corrupted[idx.to(self.corrupted.device)],
            chosen_mask=None if self.chosen_mask is None else self.chosen_mask[idx.to(self.chosen_mask.device)],
            rejected_mask=None if self.rejected_mask is None else self.rejected_mask[idx.to(self.rejected_mask.device)],
        )

    def split(self, val_fraction: float, generator: torch.Generator) -> tuple[PreferenceData, PreferenceData]:
        """Split at random into a training and a validation part.

        Args:
            val_fraction: share of pairs in the validation part, in ``(0, 1)``; the count is
                ``round(N · val_fraction)``.
            generator: the source of the random permutation.

        Returns:
            ``(train, val)``, both non-empty, each in the original order of the pairs.

        Raises:
            ValueError: if ``val_fraction`` is outside ``(0, 1)`` or leaves either part empty.

        Note:
            The split is by pair, not by segment. The synthetic generators (``make-data``) pair segments
            drawn with replacement from one pool, so most validation pairs share a segment with a
            training pair (160 to 175 of 200 at N = 1000): validation accuracy then overstates accuracy on
            unseen segments. It serves early stopping and comparisons between runs; for a held-out
            estimate, score a separately generated file (another ``--seed``).

        Example:
            >>> data = PreferenceData(torch.ones(10, 1, 2), torch.zeros(10, 1, 2), [str(i) for i in range(10)])
            >>> train, val = data.split(0.2, torch.Generator().manual_seed(0))
            >>> len(train), len(val)
            (8, 2)
        """
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        n = len(self)
        n_val = round(n * val_fraction)
        if n_val < 1 or n_val > n - 1:
            raise ValueError(
                f"val_fraction={val_fraction} with N={n} gives {n_val} validation pairs; both parts must be non-empty"
            )
        perm = torch.randperm(n, generator=generator)
        val_idx, _ = torch.sort(perm[:n_val])
        train_idx, _ = torch.sort(perm[n_val:])
        return self.subset(train_idx), self.subset(val_idx)

    def to_jsonl(self, path: str | os.PathLike[str]) -> None:
        """Write one JSON record per pair to ``path``, atomically; a masked segment without its padding.

        Args:
            path: the output file; its folder must exist.
        """
        len_c, len_r = (x.tolist() for x in self.lengths())
        chosen = [seg[:k] for seg, k in zip(self.chosen.detach().cpu().tolist(), len_c, strict=True)]
        rejected = [seg[:k] for seg, k in zip(self.rejected.detach().cpu().tolist(), len_r, strict=True)]
        strength = None if self.strength is None else self.strength.detach().cpu().tolist()
        corrupted = None if self.corrupted is None else self.corrupted.cpu().tolist()

        def lines() -> Iterator[str]:
            for k, pair_id in enumerate(self.ids):
                record: dict[str, Any] = {"id": pair_id, "chosen": chosen[k], "rejected": rejected[k]}
                if strength is not None:
                    record["strength"] = strength[k]
                if corrupted is not None:
                    record["corrupted"] = corrupted[k]
                yield json.dumps(record, allow_nan=False, separators=(",", ":"))

        _atomic_write_lines(Path(path), lines())
        logger.debug("wrote %d pairs to %s", len(self), path)

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike[str], *, ragged: bool = False) -> PreferenceData:
        """Read pairs written by :meth:`to_jsonl` (or by hand, in the same format).

        Args:
            path: a JSONL file, one record per line; blank lines are skipped.
            ragged: accept segments of different lengths ``T`` (the feature width ``D`` must still
                agree): each is padded with zeros at its end to the longest, and the masks mark
                the real steps. When every segment has the same length, no mask is made.

        Returns:
            A :class:`PreferenceData` with float32 ``(N, T, D)`` tensors.

        Raises:
            ValueError: naming the file, the 1-based line number and the fault, for bad JSON, a
                record that is not an object, a missing or mistyped key, a non-numeric, ragged, empty
                or non-finite array, a shape differing from the first record (a length ``T`` only
                without ``ragged``), a duplicate id, a negative strength, or ``strength``/``corrupted``
                on some lines but not others.
            FileNotFoundError: if ``path`` does not exist.
        """
        path = Path(path)
        chosen: list[list[list[float]]] = []
        rejected: list[list[list[float]]] = []
        ids: list[str] = []
        strength: list[float] = []
        corrupted: list[bool] = []
        first_line = 0
        shape: tuple[int, int] = (0, 0)
        has_strength = has_corrupted = False
        id_lines: dict[str, int] = {}
        for lineno, line in _lines(path):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            record = _load_object(line, where)
            if isinstance(record.get("chosen"), str) or "prompt" in record:
                raise ValueError(
                    f"{where}: a text preference (prompt/chosen/rejected), not a pair of feature segments: text "
                    "pairs are for `adapref dpo --data`"
                )
            for key in ("id", "chosen", "rejected"):
                if key not in record:
                    raise ValueError(f"{where}: missing key {key!r}")
            pair_id = record["id"]
            if not isinstance(pair_id, str):
                raise ValueError(f"{where}: 'id' must be a string, got {type(pair_id).__name__}")
            if pair_id in id_lines:
                raise ValueError(f"{where}: duplicate id {pair_id!r} (first on line {id_lines[pair_id]})")
            id_lines[pair_id] = lineno
            seg_c = _parse_segment(record["chosen"], "chosen", where)
            seg_r = _parse_segment(record["rejected"], "rejected", where)
            shape_c = (len(seg_c), len(seg_c[0]))
            shape_r = (len(seg_r), len(seg_r[0]))
            if shape_r[1] != shape_c[1]:
                raise ValueError(f"{where}: 'rejected' has shape (T, D)={shape_r} but 'chosen' has {shape_c}")
            if shape_r != shape_c and not ragged:
                raise ValueError(
                    f"{where}: 'rejected' has shape (T, D)={shape_r} but 'chosen' has {shape_c}; {_RAGGED_HINT}"
                )
            if not first_line:
                first_line, shape = lineno, shape_c
                has_strength, has_corrupted = "strength" in record, "corrupted" in record
            elif ragged and shape_c[1] != shape[1]:  # lengths may differ, the features per step may not
                raise ValueError(
                    f"{where}: segments have D={shape_c[1]} features per step but line {first_line} has {shape[1]}"
                )
            elif shape_c != shape and not ragged:
                hint = f"; {_RAGGED_HINT}" if shape_c[1] == shape[1] else ""
                raise ValueError(
                    f"{where}: segments have shape (T, D)={shape_c} but line {first_line} has {shape}{hint}"
                )
            for key, expected in (("strength", has_strength), ("corrupted", has_corrupted)):
                if (key in record) != expected:
                    state = "present" if expected else "absent"
                    raise ValueError(
                        f"{where}: {key!r} is {state} on line {first_line} and must be on every line or none"
                    )
            if has_strength:
                strength.append(_parse_strength(record["strength"], where))
            if has_corrupted:
                flag = record["corrupted"]
                if not isinstance(flag, bool):
                    raise ValueError(f"{where}: 'corrupted' must be true or false, got {flag!r}")
                corrupted.append(flag)
            ids.append(pair_id)
            chosen.append(seg_c)
            rejected.append(seg_r)
        if not ids:
            raise ValueError(f"{path}: no records (the file is empty or blank)")
        steps = [len(seg) for seg in chosen + rejected]
        masks: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
        if min(steps) != max(steps):
            t_max, width = max(steps), shape[1]
            masks = tuple(torch.tensor([[True] * len(seg) + [False] * (t_max - len(seg)) for seg in segs])
                          for segs in (chosen, rejected))  # type: ignore[assignment]  # fmt: skip
            for segs in (chosen, rejected):
                for seg in segs:
                    seg.extend([[0.0] * width] * (t_max - len(seg)))
            logger.debug(
                "read %d pairs of %d to %d steps (padded, with masks) from %s", len(ids), min(steps), t_max, path
            )
        else:
            logger.debug("read %d pairs of shape (T, D)=%s from %s", len(ids), shape, path)
        return cls(
            chosen=torch.tensor(chosen, dtype=torch.float32),
            rejected=torch.tensor(rejected, dtype=torch.float32),
            ids=ids,
            strength=torch.tensor(strength, dtype=torch.float32) if has_strength else None,
            corrupted=torch.tensor(corrupted, dtype=torch.bool) if has_corrupted else None,
            chosen_mask=masks[0],
            rejected_mask=masks[1],
        )


def default_file_mode() -> int:
    """The mode ``open()`` gives a new file under the process umask (``mkstemp`` would give 0o600).

    The umask is read from ``/proc/self/status`` where Linux offers it; elsewhere it is read by setting
    and restoring it (``os.umask``), which other threads could briefly observe.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            umask = next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0)
        os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_replace(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write; on success it replaces ``path``, on failure it is removed.

    The file gets the mode a plain ``open()`` gives under the umask (not ``mkstemp``'s owner-only 0o600),
    and missing parent folders are created. Every atomic writer of the package goes through here.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, default_file_mode())
        os.close(fd)
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _atomic_write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write ``lines`` (newline-terminated, synced to disk) to ``path`` atomically (:func:`atomic_replace`)."""
    with atomic_replace(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _load_object(line: str, where: str) -> dict[str, Any]:
    """Parse one JSON line that must hold an object."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}: invalid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{where}: a record must be a JSON object, got {type(record).__name__}")
    return record


_FLOAT32_MAX = torch.finfo(torch.float32).max  # larger values become inf in the tensors
_RAGGED_HINT = (
    "segments of different lengths need ragged=True (CLI: --ragged), which pads them at the end and masks the padding"
)


def _check_mask(mask: object, name: str, n: int, t: int) -> None:
    """A mask is None or ``(N, T)`` bool, True on each segment's first step and never True after a False."""
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.shape != (n, t) or mask.dtype != torch.bool:
        got = f"{tuple(mask.shape)} {mask.dtype}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{name} must be a bool tensor of shape (N, T)=({n}, {t}), got {got}")
    empty = ~mask[:, 0]
    if bool(empty.any()):
        row = int(torch.nonzero(empty)[0])
        raise ValueError(f"{name} row {row} has no real first step; every segment needs at least one")
    gaps = mask[:, 1:] & ~mask[:, :-1]  # a real step after padding
    if bool(gaps.any()):
        row = int(torch.nonzero(gaps.any(dim=1))[0])
        raise ValueError(
            f"{name} row {row} has a real step after padding; pad at the end (the discount keeps each step's position)"
        )


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(1-based line number, text)`` of a UTF-8 file; a line that is not UTF-8 is a ``ValueError`` naming it."""
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_segment(value: object, key: str, where: str) -> list[list[float]]:
    """A ``(T, D)`` list of finite floats from a 2-D list, or from a 1-D list read as ``T = 1``."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: {key!r} must be a non-empty list of numbers or of lists of numbers")
    rows: list[Any] = value if isinstance(value[0], list) else [value]
    width = len(rows[0])
    if width == 0:
        raise ValueError(f"{where}: {key!r} has an empty step (D = 0)")
    for t, row in enumerate(rows):
        if not isinstance(row, list):
            raise ValueError(f"{where}: {key!r} mixes lists and numbers (step {t} is {type(row).__name__})")
        if len(row) != width:
            raise ValueError(f"{where}: {key!r} is ragged: step 0 has {width} values, step {t} has {len(row)}")
        for v in row:
            if not _is_number(v):
                raise ValueError(f"{where}: {key!r} holds a non-numeric value {v!r} at step {t}")
            if not _finite(v):
                raise ValueError(f"{where}: {key!r} holds a non-finite value {v!r} at step {t}")
            if abs(v) > _FLOAT32_MAX:
                raise ValueError(f"{where}: {key!r} holds {v!r} at step {t}, beyond float32's range (|x| <= 3.4e38)")
    return rows


def _finite(value: Any) -> bool:
    """A finite number that fits a float (a 400-digit JSON integer does not)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _parse_strength(value: object, where: str) -> float:
    if not _is_number(value):
        raise ValueError(f"{where}: 'strength' must be a number, got {value!r}")
    if not _finite(value):
        raise ValueError(f"{where}: 'strength' must be finite and >= 0, got {value!r}")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number) or number < 0 or number > _FLOAT32_MAX:
        raise ValueError(f"{where}: 'strength' must be finite, >= 0 and within float32's range, got {number}")
    return number


_TRL_KEYS = ("prompt", "chosen", "rejected")


def _check_text(value: object, key: str, where: str) -> tuple[str, Any]:
    """Classify a TRL field as ``"standard"`` (a string) or ``"conversational"`` (messages), checked."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{where}: {key!r} is an empty string")
        return "standard", value
    if isinstance(value, list):
        if not value:
            raise ValueError(f"{where}: {key!r} is an empty list of messages")
        messages = []
        for m, message in enumerate(value):
            if not isinstance(message, dict):
                if isinstance(message, (list, int, float)):  # numbers: feature segments, not messages
                    raise ValueError(
                        f"{where}: {key!r} holds numbers: a pair of feature segments, not a text preference; "
                        "segment pairs are for `adapref train-reward --data`"
                    )
                raise ValueError(f"{where}: {key!r} message {m} must be an object, got {type(message).__name__}")
            for field in ("role", "content"):
                if field not in message:
                    raise ValueError(f"{where}: {key!r} message {m} is missing {field!r}")
                if not isinstance(message[field], str):
                    raise ValueError(
                        f"{where}: {key!r} message {m} {field!r} must be a string, got {type(message[field]).__name__}"
                    )
                if not message[field].strip():
                    raise ValueError(f"{where}: {key!r} message {m} has an empty {field!r}")
            messages.append(dict(message))
        return "conversational", messages
    raise ValueError(f"{where}: {key!r} must be a string or a list of messages, got {type(value).__name__}")


def _normalise_trl(record: object, where: str) -> tuple[dict[str, Any], str, bool]:
    """Check one TRL preference record; return ``(record, kind, explicit_prompt)``."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: a record must be a JSON object, got {type(record).__name__}")
    for key in ("chosen", "rejected"):
        if key not in record:
            raise ValueError(f"{where}: missing key {key!r}")
    explicit = "prompt" in record
    out: dict[str, Any] = {}
    kinds = set()
    for key in _TRL_KEYS:
        if key in record:
            kind, out[key] = _check_text(record[key], key, where)
            kinds.add(kind)
    if len(kinds) > 1:
        raise ValueError(f"{where}: mixes plain strings and message lists across {list(out)}")
    if "margin" in record:
        margin = record["margin"]
        if not _is_number(margin) or not _finite(margin):
            raise ValueError(f"{where}: 'margin' must be a finite number, got {margin!r}")
    for key, value in record.items():
        if key not in out:
            out[key] = value
    return out, kinds.pop(), explicit


def _check_trl_records(located: Iterable[tuple[str, str, object]]) -> list[dict[str, Any]]:
    """Normalise ``(where, name, record)`` triples, all in the first one's form (standard/conversational, prompt)."""
    out: list[dict[str, Any]] = []
    first: tuple[str, bool, str] | None = None
    for where, name, raw in located:
        record, kind, explicit = _normalise_trl(raw, where)
        if first is None:
            first = (kind, explicit, name)
        elif kind != first[0]:
            raise ValueError(f"{where}: record is {kind} but {first[2]} is {first[0]}")
        elif explicit != first[1]:
            ours, theirs = ("has", "lacks") if explicit else ("lacks", "has")
            raise ValueError(f"{where}: record {ours} a 'prompt' key but {first[2]} {theirs} one")
        out.append(record)
    return out


def read_trl_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSONL file in TRL's preference format.

    Each line is ``{"prompt", "chosen", "rejected"}`` (explicit prompt) or ``{"chosen", "rejected"}``
    (implicit prompt), with plain strings (standard) or lists of ``{"role", "content"}`` messages
    (conversational). Every record must use the same form. Extra keys (an id, TRL's optional
    ``margin``) are kept.

    Args:
        path: the JSONL file; blank lines are skipped.

    Returns:
        The records, normalised: new dicts with ``prompt`` (when present), ``chosen`` and
        ``rejected`` first, then the other keys in file order; messages are copied dicts.

    Raises:
        ValueError: naming the file and the 1-based line for bad JSON, a missing key, a wrong type,
            an empty string, message list or message field, a non-numeric ``margin``, a record mixing
            strings and messages, a form differing from the first record, or an empty file.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "trl.jsonl"
        >>> write_trl_jsonl([{"prompt": "2+2?", "chosen": "4", "rejected": "5"}], p)
        >>> read_trl_jsonl(p)[0]["chosen"]
        '4'
    """
    path = Path(path)
    located = [
        (f"{path}:{lineno}", f"line {lineno}", _load_object(line, f"{path}:{lineno}"))
        for lineno, line in _lines(path)
        if line.strip()
    ]
    if not located:
        raise ValueError(f"{path}: no records (the file is empty or blank)")
    return _check_trl_records(located)


def from_trl_dataset(dataset: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Check an in-memory TRL preference dataset and return its records, normalised.

    The in-memory twin of :func:`read_trl_jsonl`, for data that is already loaded: one split of a
    Hugging Face ``datasets.Dataset`` (``load_dataset(...)["train"]``; iterating it gives one dict
    per row) or any iterable of dicts. The same rules apply: ``chosen`` and ``rejected`` on every
    row, an optional ``prompt`` on every row or on none, plain strings (standard) or lists of
    ``{"role", "content"}`` messages (conversational) throughout, a finite ``margin`` where given;
    other columns are kept. A ``None`` value (what a ``datasets`` split holds where a row lacks a
    column) counts as the key being absent, as in a JSONL line without it. The text stays text: pass
    the result (standard form) to :func:`adapref.lm_dpo.train_lm_dpo`, after
    :func:`adapref.lm_text.explicit_prompt_records` for implicit prompts, or write it with
    :func:`write_trl_jsonl`.

    Args:
        dataset: one split of preference records.

    Returns:
        New dicts with ``prompt`` (when present), ``chosen`` and ``rejected`` first, then the other
        keys in row order.

    Raises:
        ValueError: naming the 0-based row for a row that is not a dict or that
            :func:`read_trl_jsonl` would reject; a path (use :func:`read_trl_jsonl`), a mapping of
            splits (a ``DatasetDict``: pick one) or a non-iterable ``dataset``; no rows.

    Example:
        >>> rows = [{"prompt": "2+2=", "chosen": " 4", "rejected": " 5", "source": "math"}]
        >>> from_trl_dataset(rows)[0]
        {'prompt': '2+2=', 'chosen': ' 4', 'rejected': ' 5', 'source': 'math'}
    """
    if isinstance(dataset, (str, bytes, os.PathLike)):
        raise ValueError(
            f"dataset must be loaded records, got the path {str(dataset)!r}: read a file with read_trl_jsonl"
        )
    if isinstance(dataset, Mapping):
        keys = ", ".join(repr(k) for k in list(dataset)[:5])
        if "chosen" in dataset or "rejected" in dataset:  # columns (ds[:], ds.to_dict()) or one record
            raise ValueError(
                f"dataset must be an iterable of records, got a mapping with keys {keys} (a split's columns, or one "
                "record): pass a list of row dicts, or datasets.Dataset.from_dict(columns)"
            )
        raise ValueError(
            f"dataset must be one split (an iterable of records), got a mapping with keys {keys}: pass one split, "
            "e.g. dataset['train'], or a list of records"
        )
    try:
        rows: Iterator[object] = iter(dataset)
    except TypeError:
        raise ValueError(
            f"dataset must be an iterable of records (a datasets.Dataset split or a list of dicts), "
            f"got {type(dataset).__name__}"
        ) from None

    def located() -> Iterator[tuple[str, str, object]]:
        for k, row in enumerate(rows):
            if not isinstance(row, Mapping):
                hint = " (a pandas DataFrame iterates over its column names: pass df.to_dict('records'))"
                raise ValueError(
                    f"dataset row {k} must be a dict with 'chosen' and 'rejected', got {type(row).__name__}"
                    + (hint if isinstance(row, str) else "")
                )
            # a datasets split fills a column a row lacks with None: read that as the key being absent,
            # so rows mean what the same lines of a JSONL file mean
            yield f"dataset row {k}", f"row {k}", {key: value for key, value in row.items() if value is not None}

    records = _check_trl_records(located())
    if not records:
        raise ValueError("dataset has no rows")
    return records


def write_trl_jsonl(records: Iterable[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Check ``records`` as :func:`read_trl_jsonl` does and write them to ``path``, atomically.

    Args:
        records: TRL preference records (see :func:`read_trl_jsonl`), all of one form.
        path: the output file; its folder must exist.

    Raises:
        ValueError: naming the record's 0-based index for any fault :func:`read_trl_jsonl` rejects,
            or if a value cannot be written as JSON.
    """
    checked = _check_trl_records((f"record {k}", f"record {k}", record) for k, record in enumerate(records))
    if not checked:
        raise ValueError("records is empty; nothing to write")
    lines = []
    for k, out in enumerate(checked):
        try:
            lines.append(json.dumps(out, ensure_ascii=False, allow_nan=False))
        except (TypeError, ValueError) as err:
            raise ValueError(f"record {k}: cannot be written as JSON ({err})") from None
    _atomic_write_lines(Path(path), lines)
    logger.debug("wrote %d TRL records to %s", len(lines), path)
