"""Tests of smurf_thp.data and smurf_thp.formats: sequences, data sets, batches, file round trips, bad input."""

from __future__ import annotations

import dataclasses
import doctest
import json
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from smurf_thp import data, formats
from smurf_thp.data import (
    TYPE_PAD,
    Batch,
    DataWarning,
    EventDataset,
    EventSequence,
    batches,
    collate,
    from_tick,
    to_tick,
)
from smurf_thp.formats import FORMATS, load, load_splits, save, save_splits

SUFFIX = {"easytpp-pkl": ".pkl", "easytpp-json": ".json", "ifl": ".pt", "csv": ".csv"}


def _seq(times: list[float], types: list[int], **kw: Any) -> EventSequence:
    return EventSequence(np.asarray(times), np.asarray(types), **kw)


@pytest.fixture
def ds() -> EventDataset:
    """K = 3 with 0-based types (0 and 2 present), awkward floats, a tie, windows for ifl."""
    rng = np.random.default_rng(0)
    seqs = [
        _seq([0.1, 0.1 + 0.2, 1.0 / 3.0, 2.0], [0, 2, 2, 1], t_start=0.0, t_end=2.5),
        _seq([1e6 + 0.125, 1e6 + 0.125, 1e6 + 7.0], [2, 0, 0], t_start=1e6, t_end=1e6 + 7.0),
        _seq(np.cumsum(rng.exponential(size=7)).tolist(), rng.integers(0, 3, size=7).tolist(), t_start=0.0, t_end=50.0),
    ]
    return EventDataset(seqs, 3)


def _same(a: EventDataset, b: EventDataset, window: bool = False) -> None:
    assert a.num_types == b.num_types
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.times, y.times)  # exact, bit for bit
        assert np.array_equal(x.types, y.types)
        assert y.times.dtype == np.float64
        assert y.types.dtype == np.int64
        if window:
            assert (x.t_start, x.t_end) == (y.t_start, y.t_end)


def _pkl(path: Path, obj: Any) -> Path:
    path.write_bytes(pickle.dumps(obj))
    return path


def _events(times: list[float], types: list[int], gaps: list[float] | None = None) -> list[dict[str, Any]]:
    if gaps is None:
        gaps = [times[0], *np.diff(times).tolist()]
    return [
        {"time_since_start": t, "time_since_last_event": g, "type_event": k}
        for t, g, k in zip(times, gaps, types, strict=True)
    ]


GOOD = _events([0.0, 1.0, 3.0], [0, 1, 2])


def _message(err: pytest.ExceptionInfo[ValueError]) -> str:
    return str(err.value)


# --------------------------------------------------------------------------------- EventSequence


class TestEventSequence:
    def test_fields_dtypes_and_gaps(self) -> None:
        seq = EventSequence(np.array([1, 2, 4]), np.array([0.0, 2.0, 1.0]), t_start=0, t_end=5)
        assert seq.times.dtype == np.float64
        assert seq.types.dtype == np.int64
        assert len(seq) == 3
        assert seq.gaps.tolist() == [1.0, 2.0]  # by hand: 2-1, 4-2; the first event's gap is not predicted
        assert (seq.t_start, seq.t_end) == (0.0, 5.0)

    def test_ties_allowed_and_frozen(self) -> None:
        seq = _seq([1.0, 1.0], [0, 0])
        assert seq.gaps.tolist() == [0.0]
        with pytest.raises(dataclasses.FrozenInstanceError):
            seq.t_start = 1.0  # type: ignore[misc]
        with pytest.raises(ValueError, match="read-only"):
            seq.times[0] = 5.0

    def test_empty_sequence_allowed(self) -> None:
        seq = EventSequence(np.zeros(0), np.zeros(0))
        assert len(seq) == 0
        assert seq.gaps.size == 0

    @pytest.mark.parametrize(
        ("times", "types", "kw", "match"),
        [
            ([[0.0, 1.0]], [[0, 0]], {}, "times must be 1-D"),
            ([0.0, 1.0], [0], {}, "same length"),
            ([0.0, np.nan], [0, 0], {}, r"times\[1\] \(event 1\) is nan"),
            ([0.0, np.inf], [0, 0], {}, "finite"),
            ([0.0, 2.0, 1.0], [0, 0, 0], {}, r"non-decreasing.*times\[2\] \(event 2\)"),
            ([0.0, 1.0], [0, -1], {}, r"types must be >= 0.*event 1"),
            ([0.0, 1.0], [0, 0.5], {}, r"types must be integers; types\[1\]"),
            ([0.0, 1.0], [0, 0], {"t_start": 0.5}, "t_start must be <= times"),
            ([0.0, 1.0], [0, 0], {"t_end": 0.5}, "t_end must be >= times"),
            ([0.0, 1.0], [0, 0], {"t_end": float("nan")}, "t_end must be finite"),
            (["a", "b"], [0, 0], {}, "times must hold real numbers"),
        ],
    )
    def test_bad_input_names_argument(self, times: Any, types: Any, kw: dict[str, Any], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            EventSequence(np.asarray(times), np.asarray(types), **kw)


# ---------------------------------------------------------------------------------- EventDataset


class TestEventDataset:
    def test_counts_and_gaps_by_hand(self) -> None:
        d = EventDataset([_seq([0.0, 1.0], [0, 1]), _seq([0.0, 0.5, 2.0], [1, 1, 0]), _seq([3.0], [0])], 2)
        assert (len(d), d.num_events, d.num_predicted, d.max_len) == (3, 6, 3, 3)
        assert d.all_gaps().tolist() == [1.0, 0.5, 1.5]  # 1-0 | 0.5-0, 2-0.5 | (none)
        assert d.all_types().tolist() == [0, 1, 1, 1, 0, 0]
        assert isinstance(d[1], EventSequence)
        assert isinstance(d[1:], EventDataset)
        assert len(d[1:]) == 2
        assert [len(s) for s in d] == [2, 3, 1]
        assert "n_seqs=3" in repr(d)

    def test_list_stored_as_tuple(self) -> None:
        d = EventDataset([_seq([0.0, 1.0], [0, 0])], 1)
        assert isinstance(d.seqs, tuple)

    @pytest.mark.parametrize(
        ("seqs", "k", "match"),
        [
            ([], 2, "empty"),
            ([_seq([0.0, 1.0], [0, 0])], 0, "num_types must be >= 1"),
            ([_seq([0.0, 1.0], [0, 0])], 1.5, "num_types must be an integer"),
            (
                [_seq([0.0, 1.0], [0, 0]), _seq([0.0, 1.0, 2.0], [0, 1, 2])],
                2,
                r"sequence 1, event 2: type 2 outside \[0, 2\)",
            ),
            (["not a sequence"], 2, r"seqs\[0\] must be an EventSequence"),
        ],
    )
    def test_bad_input(self, seqs: list[Any], k: Any, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            EventDataset(seqs, k)

    def test_split_partition_and_determinism(self) -> None:
        d = EventDataset([_seq([0.0, float(i + 1)], [0, 0]) for i in range(23)], 1)
        parts = d.split((0.6, 0.2, 0.2), seed=3)
        assert [len(p) for p in parts] == [13, 4, 6]  # floor(13.8), floor(4.6), remainder
        ends = sorted(s.times[-1] for p in parts for s in p)
        assert ends == [float(i + 1) for i in range(23)]  # a partition: each sequence exactly once
        again = d.split((0.6, 0.2, 0.2), seed=3)
        assert [s.times[-1] for s in again[0]] == [s.times[-1] for s in parts[0]]
        other = d.split((0.6, 0.2, 0.2), seed=4)
        assert [s.times[-1] for s in other[0]] != [s.times[-1] for s in parts[0]]

    @pytest.mark.parametrize(
        ("fractions", "match"),
        [((), "non-empty"), ((0.5, 0.6), "sum to 1"), ((1.2, -0.2), "positive"), ((0.01, 0.99), "empty part")],
    )
    def test_split_bad_fractions(self, fractions: tuple[float, ...], match: str) -> None:
        d = EventDataset([_seq([0.0, 1.0], [0, 0]) for _ in range(5)], 1)
        with pytest.raises(ValueError, match=match):
            d.split(fractions)


# -------------------------------------------------------------------------------- collate/batches


class TestCollate:
    def test_shapes_dtypes_padding_mask(self) -> None:
        b = collate([_seq([1.0, 3.0, 3.5], [2, 0, 1]), _seq([0.5, 0.75], [1, 1]), _seq([4.0], [0])])
        assert isinstance(b, Batch)
        assert b.times.shape == b.gaps.shape == b.types.shape == b.mask.shape == (3, 3)
        assert (b.times.dtype, b.gaps.dtype, b.types.dtype, b.mask.dtype, b.lengths.dtype) == (
            torch.float32,
            torch.float32,
            torch.int64,
            torch.bool,
            torch.int64,
        )
        assert b.times.tolist() == [[1.0, 3.0, 3.5], [0.5, 0.75, 0.0], [4.0, 0.0, 0.0]]
        assert b.gaps.tolist() == [[0.0, 2.0, 0.5], [0.0, 0.25, 0.0], [0.0, 0.0, 0.0]]  # gaps[:, 0] = 0
        assert b.types.tolist() == [[2, 0, 1], [1, 1, TYPE_PAD], [0, TYPE_PAD, TYPE_PAD]]
        assert TYPE_PAD == -1
        assert b.mask.tolist() == [[True, True, True], [True, True, False], [True, False, False]]
        assert b.lengths.tolist() == [3, 2, 1]
        assert b.target_mask.tolist() == [[True, True], [True, False], [False, False]]
        assert b.num_predicted == 3  # (3-1) + (2-1) + 0

    def test_gaps_computed_in_float64(self) -> None:
        # float32 cannot hold 1e6 + 0.001 - 1e6 exactly; the gap is taken in float64 first, then cast.
        b = collate([_seq([1e6, 1e6 + 0.001], [0, 0])])
        assert b.gaps[0, 1].item() == pytest.approx(0.001, rel=1e-6)
        assert (b.times[0, 1] - b.times[0, 0]).item() != pytest.approx(0.001, rel=1e-3)

    def test_dataset_input_device_and_to(self, ds: EventDataset) -> None:
        b = collate(ds, device="cpu")
        assert b.lengths.tolist() == [4, 3, 7]
        moved = b.to("cpu")
        assert torch.equal(moved.types, b.types)
        assert moved.types.device.type == "cpu"

    @pytest.mark.parametrize(("seqs", "match"), [([], "at least one"), ([1.0], "EventSequence")])
    def test_bad_input(self, seqs: list[Any], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            collate(seqs)


class TestBatches:
    @staticmethod
    def _ds(n: int = 10) -> EventDataset:
        return EventDataset([_seq([0.0, float(i + 1)], [0, 0]) for i in range(n)], 1)

    @staticmethod
    def _order(it: Any) -> list[float]:
        return [float(t) for b in it for t in b.times[:, 1].tolist()]

    def test_in_order_without_shuffle(self) -> None:
        sizes = [b.lengths.numel() for b in batches(self._ds(), 4)]
        assert sizes == [4, 4, 2]
        assert self._order(batches(self._ds(), 4)) == [float(i + 1) for i in range(10)]
        assert [b.lengths.numel() for b in batches(self._ds(), 4, drop_last=True)] == [4, 4]

    def test_shuffle_seeded_generator_is_deterministic(self) -> None:
        first = self._order(batches(self._ds(), 3, shuffle=True, generator=torch.Generator().manual_seed(7)))
        second = self._order(batches(self._ds(), 3, shuffle=True, generator=torch.Generator().manual_seed(7)))
        assert first == second
        assert sorted(first) == [float(i + 1) for i in range(10)]  # a permutation
        assert first != [float(i + 1) for i in range(10)]
        other = self._order(batches(self._ds(), 3, shuffle=True, generator=torch.Generator().manual_seed(8)))
        assert other != first

    @pytest.mark.parametrize("size", [0, -1, 1.5, True])
    def test_bad_batch_size(self, size: Any) -> None:
        with pytest.raises(ValueError, match="batch_size"):
            batches(self._ds(), size)


# --------------------------------------------------------------------------------------------- tick


class TestTick:
    def test_from_tick_merges_and_round_trips(self) -> None:
        stamps = [[np.array([0.5, 2.0]), np.array([1.0, 2.0])], [np.array([0.1, 0.2, 0.3]), np.array([])]]
        d = from_tick(stamps, t_end=3.0)
        assert d.num_types == 2
        assert d[0].times.tolist() == [0.5, 1.0, 2.0, 2.0]
        assert d[0].types.tolist() == [0, 1, 0, 1]  # tie at 2.0 ordered by type
        assert d[1].t_end == 3.0
        back = to_tick(d)
        assert [a.tolist() for a in back[0]] == [[0.5, 2.0], [1.0, 2.0]]
        assert [a.tolist() for a in back[1]] == [[0.1, 0.2, 0.3], []]

    def test_from_tick_drops_short_with_one_warning(self) -> None:
        stamps = [[np.array([0.5]), np.array([])], [np.array([0.1, 0.2])], [np.array([]), np.array([])]]
        stamps[1].append(np.array([]))
        with pytest.warns(DataWarning, match="dropped 2 sequences") as record:
            d = from_tick(stamps)
        assert len(record) == 1
        assert len(d) == 1

    @pytest.mark.parametrize(
        ("stamps", "match"),
        [
            ([], "non-empty"),
            ([np.array([0.1, 0.2])], "list of 1-D per-type arrays"),
            ([[np.array([0.1, 0.2])], [np.array([0.1, 0.2]), np.array([0.3])]], "has 2 types"),
            ([[np.array([0.1, np.nan])]], r"timestamps_list\[0\] \(sequence 0\).*finite"),
        ],
    )
    def test_from_tick_bad_input(self, stamps: Any, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            from_tick(stamps)


# -------------------------------------------------------------------------------------- round trips


class TestRoundTrips:
    @pytest.mark.parametrize("fmt", FORMATS)
    def test_save_load_exact(self, ds: EventDataset, tmp_path: Path, fmt: str) -> None:
        path = save(ds, tmp_path / f"train{SUFFIX[fmt]}")
        assert path.exists()
        _same(ds, load(path), window=fmt == "ifl")
        _same(ds, load(path, format=fmt))
        _same(ds, load(tmp_path, split="train"))  # a directory of split files, format from the suffix

    def test_ifl_window_and_missing_t_end(self, tmp_path: Path) -> None:
        d = EventDataset([_seq([2.0, 3.0], [0, 1], t_start=1.5, t_end=4.0), _seq([0.0, 1.0], [1, 1])], 2)
        back = load(save(d, tmp_path / "x.pt"))
        assert (back[0].t_start, back[0].t_end) == (1.5, 4.0)
        assert back[1].t_end == 1.0  # ifl-tpp needs a number: t_end=None is written as the last event time
        obj = torch.load(tmp_path / "x.pt", weights_only=True)
        assert set(obj) == {"sequences", "num_marks"}
        assert obj["num_marks"] == 2
        assert set(obj["sequences"][0]) == {"arrival_times", "marks", "t_start", "t_end"}

    def test_pkl_layout_is_gatech(self, ds: EventDataset, tmp_path: Path) -> None:
        obj = pickle.loads(save(ds, tmp_path / "d.pkl", split="dev").read_bytes())
        assert set(obj) == {"dim_process", "dev"}
        assert obj["dim_process"] == 3
        first = obj["dev"][1][0]
        assert set(first) == {"time_since_start", "time_since_last_event", "type_event"}
        assert first["type_event"] == 2  # 0-based, unshifted
        assert first["time_since_last_event"] == 0.125  # times[0] - t_start
        assert obj["dev"][0][1]["time_since_last_event"] == (0.1 + 0.2) - 0.1

    def test_json_layout_is_easytpp(self, ds: EventDataset, tmp_path: Path) -> None:
        records = json.loads(save(ds, tmp_path / "d.json").read_text())
        assert isinstance(records, list)
        assert set(records[2]) == {
            "time_since_start",
            "time_since_last_event",
            "type_event",
            "dim_process",
            "seq_len",
            "seq_idx",
        }
        assert (records[2]["dim_process"], records[2]["seq_len"], records[2]["seq_idx"]) == (3, 7, 2)

    def test_csv_layout_and_num_types(self, tmp_path: Path) -> None:
        d = EventDataset([_seq([0.5, 1.0], [0, 1])], 4)
        path = save(d, tmp_path / "d.csv")
        assert path.read_text().splitlines() == ["seq_id,time,type", "0,0.5,0", "0,1.0,1"]
        assert load(path).num_types == 2  # CSV stores no K: max type + 1
        assert load(path, num_types=4).num_types == 4

    @pytest.mark.parametrize(
        ("fmt", "target"),
        [
            ("easytpp-pkl", "all.pkl"),
            ("easytpp-json", "all.json"),
            ("easytpp-pkl", "dir"),
            ("easytpp-json", "dir"),
            ("ifl", "dir"),
            ("csv", "dir"),
        ],
    )
    def test_save_splits_load_splits(self, ds: EventDataset, tmp_path: Path, fmt: str, target: str) -> None:
        splits = {"train": ds, "dev": ds[1:], "test": ds[:1]}
        out = save_splits(splits, tmp_path / target, format=fmt)
        back = load_splits(out)
        assert list(back) == ["train", "dev", "test"]
        for name in splits:
            _same(splits[name], back[name], window=fmt == "ifl")
            _same(splits[name], load(out, split=name))

    def test_validation_is_dev(self, ds: EventDataset, tmp_path: Path) -> None:
        save(ds, tmp_path / "train.json")
        save(ds[:1], tmp_path / "validation.json")
        assert list(load_splits(tmp_path)) == ["train", "dev"]
        _same(ds[:1], load(tmp_path, split="validation"))
        _same(ds[:1], load(tmp_path, split="dev"))

    def test_data_module_reexports_readers(self) -> None:
        assert data.load is load
        assert data.save_splits is save_splits
        with pytest.raises(AttributeError):
            _ = data.no_such_name


# -------------------------------------------------------------------------------------- bad files


def _raises(path: Path, *fragments: str, **kw: Any) -> None:
    """Loading ``path`` raises a ValueError whose message contains the file name and every fragment."""
    with pytest.raises(ValueError, match=re.escape(path.name)) as err:
        load(path, **kw)
    text = _message(err)
    for fragment in (path.name, *fragments):
        assert fragment in text, f"{fragment!r} not in {text!r}"


class TestBadFiles:
    def _file(self, tmp_path: Path, seqs: list[Any], k: int = 3, split: str = "train") -> Path:
        return _pkl(tmp_path / "bad.pkl", {"dim_process": k, split: seqs})

    def test_unsorted_times(self, tmp_path: Path) -> None:
        bad = _events([0.0, 2.0, 1.0], [0, 0, 0], gaps=[0.0, 2.0, 1.0])
        _raises(self._file(tmp_path, [GOOD, bad]), "split 'train'", "sequence 1", "event 2", "non-decreasing")

    def test_negative_gap(self, tmp_path: Path) -> None:
        bad = _events([0.0, 1.0, 3.0], [0, 0, 0], gaps=[0.0, 1.0, -2.0])
        _raises(self._file(tmp_path, [GOOD, bad]), "sequence 1", "event 2", "negative gap")

    @pytest.mark.parametrize("value", [float("nan"), float("inf")])
    def test_non_finite_time(self, tmp_path: Path, value: float) -> None:
        bad = _events([0.0, 1.0, value], [0, 0, 0], gaps=[0.0, 1.0, 1.0])
        _raises(self._file(tmp_path, [bad]), "sequence 0", "finite", "event 2")

    def test_non_finite_gap(self, tmp_path: Path) -> None:
        bad = _events([0.0, 1.0], [0, 0], gaps=[0.0, float("nan")])
        _raises(self._file(tmp_path, [bad]), "sequence 0", "event 1", "time_since_last_event")

    def test_type_outside_range(self, tmp_path: Path) -> None:
        bad = _events([0.0, 1.0, 3.0], [0, 3, 1])
        _raises(
            self._file(tmp_path, [GOOD, GOOD, bad]), "sequence 2", "event 1", "type 3 outside [0, 3)", "dim_process"
        )

    def test_negative_type(self, tmp_path: Path) -> None:
        _raises(self._file(tmp_path, [_events([0.0, 1.0], [0, -1])]), "sequence 0", "types must be >= 0")

    def test_missing_event_key(self, tmp_path: Path) -> None:
        bad = [dict(e) for e in GOOD]
        del bad[1]["type_event"]
        _raises(self._file(tmp_path, [bad]), "sequence 0", "event 1", "missing key 'type_event'")

    def test_missing_dim_process_and_split(self, tmp_path: Path) -> None:
        _raises(_pkl(tmp_path / "a.pkl", {"train": [GOOD]}), "missing key 'dim_process'")
        _raises(_pkl(tmp_path / "b.pkl", {"dim_process": 3, "train": [GOOD]}), "missing split key 'test'", split="test")

    def test_inconsistent_gaps_and_trust_gaps(self, tmp_path: Path) -> None:
        bad = _events([0.0, 1.0, 3.0], [0, 0, 0], gaps=[0.0, 1.0, 2.5])
        path = self._file(tmp_path, [GOOD, bad])
        _raises(path, "sequence 1", "event 2", "disagrees", "trust_gaps=True")
        d = load(path, trust_gaps=True)
        assert d[1].times.tolist() == [0.0, 1.0, 3.0]  # time_since_start is the truth

    def test_gap_tolerance_is_relative(self, tmp_path: Path) -> None:
        close = _events([0.0, 1.0, 3.0], [0, 0, 0], gaps=[0.0, 1.0, 2.0 * (1 + 5e-7)])
        assert len(load(self._file(tmp_path, [close]))) == 1
        far = _events([0.0, 1.0, 3.0], [0, 0, 0], gaps=[0.0, 1.0, 2.0 * (1 + 2e-6)])
        _raises(self._file(tmp_path, [far]), "disagrees")

    def test_first_gap_not_checked(self, tmp_path: Path) -> None:
        # EasyTPP writes 0 for the first event, Gatech the time since start: both load.
        seqs = [_events([5.0, 6.0], [0, 0], gaps=[0.0, 1.0]), _events([5.0, 6.0], [0, 0], gaps=[5.0, 1.0])]
        assert len(load(self._file(tmp_path, seqs))) == 2

    def test_dim_process_disagrees_across_splits(self, tmp_path: Path) -> None:
        _pkl(tmp_path / "train.pkl", {"dim_process": 3, "train": [GOOD]})
        _pkl(tmp_path / "dev.pkl", {"dim_process": 4, "dev": [GOOD]})
        with pytest.raises(
            ValueError, match=r"dev\.pkl: split 'dev': dim_process/num_marks = 4 disagrees with 3 of split 'train'"
        ):
            load_splits(tmp_path)

    def test_dim_process_below_max_type_across_split_file(self, tmp_path: Path) -> None:
        path = _pkl(tmp_path / "all.pkl", {"dim_process": 2, "train": [_events([0.0, 1.0], [0, 1])], "test": [GOOD]})
        with pytest.raises(ValueError, match=r"all\.pkl: split 'test', sequence 0, event 2: type 2 outside \[0, 2\)"):
            load_splits(path)

    def test_json_errors(self, tmp_path: Path) -> None:
        rec = {
            "time_since_start": [0.0, 1.0],
            "time_since_last_event": [0.0, 1.0],
            "type_event": [0, 1],
            "dim_process": 2,
        }
        path = tmp_path / "dev.json"
        path.write_text(json.dumps([rec, {**rec, "dim_process": 3}]))
        _raises(path, "split 'dev'", "sequence 1", "dim_process = 3 disagrees with 2", split="dev")
        path.write_text(json.dumps([rec, {k: v for k, v in rec.items() if k != "time_since_start"}]))
        _raises(path, "sequence 1", "missing key 'time_since_start'")
        path.write_text(json.dumps([{**rec, "seq_len": 3}]))
        _raises(path, "sequence 0", "lengths disagree")
        path.write_text(json.dumps([{**rec, "type_event": [0, 2]}]))
        _raises(path, "sequence 0", "event 1", "type 2 outside [0, 2)")
        path.write_text("{not json")
        _raises(path, "not valid JSON")

    def test_ifl_errors(self, tmp_path: Path) -> None:
        seq = {"arrival_times": [0.0, 1.0], "marks": [0, 1], "t_start": 0.0, "t_end": 2.0}
        path = tmp_path / "x.pt"
        torch.save({"sequences": [seq]}, path)
        _raises(path, "missing key 'num_marks'")
        torch.save({"sequences": [seq, {**seq, "marks": [0, 5]}], "num_marks": 2}, path)
        _raises(path, "sequence 1", "event 1", "type 5 outside [0, 2)", "num_marks")
        torch.save({"sequences": [{**seq, "t_end": 0.5}], "num_marks": 2}, path)
        _raises(path, "sequence 0", "t_end must be >= times[-1]")
        torch.save({"sequences": [{k: v for k, v in seq.items() if k != "t_start"}], "num_marks": 2}, path)
        _raises(path, "sequence 0", "missing key 't_start'")
        path.write_bytes(b"garbage")
        _raises(path, "not a torch.save file")

    def test_ifl_numpy_arrays_load(self, tmp_path: Path) -> None:
        # ifl-tpp's own files can hold numpy arrays, which torch's weights-only loader refuses.
        path = tmp_path / "np.pt"
        seq = {"arrival_times": np.array([0.5, 1.5]), "marks": np.array([1, 0]), "t_start": 0.0, "t_end": 2.0}
        torch.save({"sequences": [seq], "num_marks": 2}, path)
        d = load(path)
        assert d[0].times.tolist() == [0.5, 1.5]
        assert d[0].types.tolist() == [1, 0]

    def test_ifl_unmarked(self, tmp_path: Path) -> None:
        path = tmp_path / "u.pt"
        torch.save(
            {"sequences": [{"arrival_times": [0.0, 1.0], "t_start": 0.0, "t_end": 2.0}], "num_marks": None}, path
        )
        d = load(path)
        assert d.num_types == 1
        assert d[0].types.tolist() == [0, 0]

    def test_csv_errors(self, tmp_path: Path) -> None:
        path = tmp_path / "x.csv"
        path.write_text("seq,time,type\n0,0.0,0\n")
        _raises(path, "missing CSV column 'seq_id'")
        path.write_text("seq_id,time,type\na,0.0,0\nb,0.0,0\nb,2.0,0\nb,1.0,1\n")
        _raises(path, "sequence 1 (seq_id 'b')", "event 2", "non-decreasing")
        path.write_text("seq_id,time,type\na,0.0,0\na,x,0\n")
        _raises(path, "sequence 0", "line 3", "must be numbers")
        path.write_text("seq_id,time,type\na,0.0,0\na,1.0,3\n")
        _raises(path, "type 3 outside [0, 2)", num_types=2)

    def test_num_types_disagrees_with_file(self, tmp_path: Path) -> None:
        _raises(self._file(tmp_path, [GOOD]), "num_types=5 disagrees with the file's 3", num_types=5)


class TestDropsAndFormats:
    def test_short_sequences_dropped_with_one_counted_warning(self, tmp_path: Path) -> None:
        path = _pkl(
            tmp_path / "d.pkl", {"dim_process": 3, "train": [GOOD, [], _events([1.0], [0]), GOOD, _events([2.0], [2])]}
        )
        with pytest.warns(
            DataWarning, match=r"d\.pkl: dropped 3 sequences with fewer than 2 events \(3 in split 'train'\)"
        ) as record:
            d = load(path)
        assert len(record) == 1
        assert len(d) == 2

    def test_no_warning_when_nothing_dropped(self, tmp_path: Path) -> None:
        path = _pkl(tmp_path / "d.pkl", {"dim_process": 3, "train": [GOOD]})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            load(path)

    def test_load_splits_one_warning(self, tmp_path: Path) -> None:
        path = _pkl(tmp_path / "d.pkl", {"dim_process": 3, "train": [GOOD, []], "test": [GOOD, [], []]})
        with pytest.warns(DataWarning, match=r"dropped 3 sequences.*1 in split 'train', 2 in split 'test'") as record:
            load_splits(path)
        assert len(record) == 1

    def test_all_short_is_empty_error(self, tmp_path: Path) -> None:
        _raises(
            _pkl(tmp_path / "d.pkl", {"dim_process": 3, "train": [[], _events([1.0], [0])]}), "split 'train'", "empty"
        )

    def test_unknown_format_and_suffix(self, ds: EventDataset, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=re.escape("format must be 'auto' or one of")):
            load(tmp_path / "x.pkl", format="hdf5")
        (tmp_path / "x.txt").write_text("")
        with pytest.raises(ValueError, match=r"x\.txt: cannot infer the format"):
            load(tmp_path / "x.txt")
        with pytest.raises(ValueError, match="is a directory: pass format="):
            save(ds, tmp_path)
        with pytest.raises(ValueError, match="one split per file"):
            save_splits({"train": ds}, tmp_path / "x.csv")
        with pytest.raises(ValueError, match="share num_types"):
            save_splits({"train": ds, "test": EventDataset(list(ds), 4)}, tmp_path / "y.pkl")
        with pytest.raises(ValueError, match="ds must be an EventDataset"):
            save([1], tmp_path / "z.pkl")  # type: ignore[arg-type]

    def test_missing_files(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match="no such file"):
            load(tmp_path / "nope.pkl")
        with pytest.raises(FileNotFoundError, match="no split files"):
            load(tmp_path)
        (tmp_path / "train.json").write_text("[]")
        with pytest.raises(FileNotFoundError, match="no file for split 'test'"):
            load(tmp_path, split="test")


@pytest.mark.parametrize("module", [data, formats])
def test_docstring_examples(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0
