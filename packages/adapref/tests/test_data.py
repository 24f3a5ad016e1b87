"""Tests of adapref.data: PreferenceData validation, subset/split, JSONL round trips and TRL records."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from adapref.data import PreferenceData, from_trl_dataset, read_trl_jsonl, write_trl_jsonl


def _data(n: int = 6, t: int = 3, d: int = 2, *, extras: bool = True) -> PreferenceData:
    g = torch.Generator().manual_seed(0)
    chosen = torch.randn(n, t, d, generator=g)
    rejected = torch.randn(n, t, d, generator=g)
    return PreferenceData(
        chosen=chosen,
        rejected=rejected,
        ids=[f"p{i}" for i in range(n)],
        strength=torch.rand(n, generator=g) if extras else None,
        corrupted=(torch.arange(n) % 3 == 0) if extras else None,
    )


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _rec(**overrides: Any) -> str:
    record: dict[str, Any] = {"id": "a", "chosen": [[1.0, 2.0], [3.0, 4.0]], "rejected": [[0.0, 0.0], [0.0, 1.0]]}
    record.update(overrides)
    return json.dumps({k: v for k, v in record.items() if v is not _DROP})


_DROP = object()


class TestPreferenceDataValidation:
    def test_valid_data_reports_its_length(self) -> None:
        # Length is the leading dimension N, set to 6 by construction.
        assert len(_data()) == 6

    @pytest.mark.parametrize(
        ("kwargs", "pattern"),
        [
            ({"chosen": torch.zeros(2, 3)}, r"chosen must have shape \(N, T, D\), got \(2, 3\)"),
            ({"rejected": torch.zeros(2, 3, 4)}, r"same shape .*\(2, 3, 2\) and \(2, 3, 4\)"),
            ({"chosen": torch.zeros(2, 3, 2, dtype=torch.long)}, r"chosen must be a floating-point tensor"),
            ({"chosen": torch.full((2, 3, 2), float("nan"))}, r"chosen contains NaN"),
            ({"rejected": torch.full((2, 3, 2), float("inf"))}, r"rejected contains NaN or infinite"),
            ({"ids": ["a"]}, r"ids must have length N=2, got 1"),
            ({"ids": ["a", "a"]}, r"ids must be unique, 'a'"),
            ({"ids": ["a", 3]}, r"ids must be a list of str"),
            ({"strength": torch.tensor([1.0, -0.5])}, r"strength must be >= 0, got minimum -0.5"),
            ({"strength": torch.zeros(3)}, r"strength must be a floating tensor of shape \(N,\)=\(2,\), got \(3,\)"),
            ({"corrupted": torch.zeros(2)}, r"corrupted must be a bool tensor .*torch.float32"),
        ],
    )
    def test_bad_field_raises_naming_it(self, kwargs: dict[str, Any], pattern: str) -> None:
        fields: dict[str, Any] = {"chosen": torch.zeros(2, 3, 2), "rejected": torch.zeros(2, 3, 2), "ids": ["a", "b"]}
        fields.update(kwargs)
        with pytest.raises(ValueError, match=pattern):
            PreferenceData(**fields)

    def test_empty_data_raises(self) -> None:
        with pytest.raises(ValueError, match=r"N >= 1"):
            PreferenceData(torch.zeros(0, 3, 2), torch.zeros(0, 3, 2), [])


class TestSubsetAndSplit:
    def test_subset_by_positions_matches_manual_indexing(self) -> None:
        # Compared with plain tensor indexing of every field.
        data = _data()
        sub = data.subset(torch.tensor([4, 0, -1]))
        assert sub.ids == ["p4", "p0", "p5"]
        torch.testing.assert_close(sub.chosen, data.chosen[[4, 0, 5]])
        torch.testing.assert_close(sub.rejected, data.rejected[[4, 0, 5]])
        assert sub.strength is not None
        assert data.strength is not None
        torch.testing.assert_close(sub.strength, data.strength[[4, 0, 5]])
        assert sub.corrupted is not None
        assert sub.corrupted.tolist() == [False, True, False]

    def test_subset_by_mask_and_slice_agree(self) -> None:
        # A mask of the even positions and the slice ::2 pick the same pairs.
        data = _data()
        by_mask = data.subset(torch.arange(6) % 2 == 0)
        by_slice = data.subset(slice(None, None, 2))
        assert by_mask.ids == by_slice.ids == ["p0", "p2", "p4"]
        torch.testing.assert_close(by_mask.chosen, by_slice.chosen)

    @pytest.mark.parametrize(
        ("index", "pattern"),
        [
            (torch.tensor([1, 1]), r"ids must be unique"),
            (torch.zeros(6, dtype=torch.bool), r"selects no pairs"),
            (torch.tensor([True, False]), r"bool index must have length N=6, got 2"),
            (torch.tensor([9]), r"outside \[0, 6\)"),
            (torch.tensor([[0]]), r"index must be 1-D"),
            (torch.tensor([0.0]), r"integer or bool tensor"),
        ],
    )
    def test_subset_bad_index_raises(self, index: torch.Tensor, pattern: str) -> None:
        with pytest.raises(ValueError, match=pattern):
            _data().subset(index)

    def test_split_partitions_the_pairs(self) -> None:
        # round(10 * 0.3) = 3 validation pairs; the union of ids is the original set, no overlap.
        data = _data(n=10)
        train, val = data.split(0.3, torch.Generator().manual_seed(1))
        assert (len(train), len(val)) == (7, 3)
        assert sorted(train.ids + val.ids) == sorted(data.ids)
        assert not set(train.ids) & set(val.ids)
        assert train.ids == sorted(train.ids, key=data.ids.index)  # original order kept

    def test_split_same_seed_same_split(self) -> None:
        # Determinism: the permutation comes only from the generator passed in.
        data = _data(n=10)
        a = data.split(0.5, torch.Generator().manual_seed(7))[1].ids
        b = data.split(0.5, torch.Generator().manual_seed(7))[1].ids
        assert a == b

    @pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 0.05, 0.95])
    def test_split_leaving_a_part_empty_raises(self, fraction: float) -> None:
        # N = 6: 0.05 and 0.95 round to 0 and 6 validation pairs.
        with pytest.raises(ValueError, match=r"val_fraction"):
            _data().split(fraction, torch.Generator())


class TestJsonl:
    @pytest.mark.parametrize("extras", [True, False])
    def test_round_trip_is_exact(self, tmp_path: Path, extras: bool) -> None:
        # float32 -> JSON (float64 repr) -> float32 is lossless, so the tensors compare equal.
        data = _data(extras=extras)
        path = tmp_path / "pairs.jsonl"
        data.to_jsonl(path)
        back = PreferenceData.from_jsonl(path)
        assert back.ids == data.ids
        assert torch.equal(back.chosen, data.chosen)
        assert torch.equal(back.rejected, data.rejected)
        if extras:
            assert back.strength is not None
            assert data.strength is not None
            assert torch.equal(back.strength, data.strength)
            assert back.corrupted is not None
            assert data.corrupted is not None
            assert torch.equal(back.corrupted, data.corrupted)
        else:
            assert back.strength is None
            assert back.corrupted is None
        assert [p.name for p in tmp_path.iterdir()] == ["pairs.jsonl"]  # no temp file left behind

    def test_record_format_by_hand(self, tmp_path: Path) -> None:
        # The first line, decoded, is the documented record of pair 0.
        data = _data(n=1, t=1, d=2)
        path = tmp_path / "one.jsonl"
        data.to_jsonl(path)
        record = json.loads(path.read_text().splitlines()[0])
        assert set(record) == {"id", "chosen", "rejected", "strength", "corrupted"}
        assert record["chosen"] == data.chosen[0].tolist()
        assert record["corrupted"] is True

    def test_one_dimensional_arrays_read_as_t1_and_blank_lines_skipped(self, tmp_path: Path) -> None:
        # Hand-made file: two records of D = 3 floats, separated by a blank line.
        path = _write(
            tmp_path / "t1.jsonl",
            [
                json.dumps({"id": "x", "chosen": [1, 2, 3], "rejected": [0, 0, 0]}),
                "",
                json.dumps({"id": "y", "chosen": [4, 5, 6], "rejected": [1, 1, 1]}),
            ],
        )
        data = PreferenceData.from_jsonl(path)
        assert data.chosen.shape == (2, 1, 3)
        assert data.chosen.dtype == torch.float32
        assert data.chosen[1, 0].tolist() == [4.0, 5.0, 6.0]

    def test_write_is_atomic_when_interrupted(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        # If os.replace fails, the old file is untouched and the temporary file is removed.
        path = tmp_path / "pairs.jsonl"
        path.write_text("old\n")

        def fail(*_: object) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", fail)
        with pytest.raises(OSError, match="disk full"):
            _data().to_jsonl(path)
        assert path.read_text() == "old\n"
        assert [p.name for p in tmp_path.iterdir()] == ["pairs.jsonl"]

    @pytest.mark.parametrize(
        ("second_line", "pattern"),
        [
            ("{not json", r"invalid JSON"),
            ("[1, 2]", r"must be a JSON object, got list"),
            (_rec(id=_DROP), r"missing key 'id'"),
            (_rec(rejected=_DROP), r"missing key 'rejected'"),
            (_rec(id=7), r"'id' must be a string"),
            (_rec(id="first"), r"duplicate id 'first' \(first on line 1\)"),
            (_rec(chosen=[[1.0, "x"], [3.0, 4.0]]), r"'chosen' holds a non-numeric value 'x'"),
            (_rec(chosen=[[1.0, True], [3.0, 4.0]]), r"non-numeric value True"),
            (_rec(chosen=[[1.0, 2.0], [3.0]]), r"'chosen' is ragged"),
            (_rec(chosen=[]), r"'chosen' must be a non-empty list"),
            (_rec(chosen=[[1.0, 2.0], 3.0]), r"mixes lists and numbers"),
            (_rec(rejected=[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), r"'rejected' has shape \(T, D\)=\(2, 3\)"),
            (
                _rec(chosen=[[1.0, 2.0]] * 3, rejected=[[0.0, 0.0]] * 3),
                r"shape \(T, D\)=\(3, 2\) but line 1 has \(2, 2\)",
            ),
            ('{"id": "a", "chosen": [[NaN, 2.0], [3.0, 4.0]], "rejected": [[0, 0], [0, 1]]}', r"non-finite value nan"),
            ('{"id": "a", "chosen": [[Infinity, 2.0], [3, 4]], "rejected": [[0, 0], [0, 1]]}', r"non-finite value inf"),
            (_rec(strength=1.0), r"'strength' is absent on line 1"),
            (_rec(corrupted=False), r"'corrupted' is absent on line 1"),
        ],
    )
    def test_malformed_record_names_file_and_line(self, tmp_path: Path, second_line: str, pattern: str) -> None:
        path = _write(tmp_path / "bad.jsonl", [_rec(id="first"), second_line])
        with pytest.raises(ValueError, match=re.escape(f"{path}:2: ") + ".*" + pattern):
            PreferenceData.from_jsonl(path)

    @pytest.mark.parametrize(
        ("second_line", "pattern"),
        [
            (_rec(strength=_DROP, corrupted=False), r"'strength' is present on line 1"),
            (_rec(strength="big", corrupted=False), r"'strength' must be a number"),
            (
                _rec(strength=-1.0, corrupted=False),
                r"'strength' must be finite, >= 0 and within float32's range, got -1.0",
            ),
            (_rec(strength=1.0, corrupted="no"), r"'corrupted' must be true or false"),
        ],
    )
    def test_malformed_optional_fields(self, tmp_path: Path, second_line: str, pattern: str) -> None:
        path = _write(tmp_path / "bad.jsonl", [_rec(id="first", strength=0.5, corrupted=True), second_line])
        with pytest.raises(ValueError, match=re.escape(f"{path}:2: ") + ".*" + pattern):
            PreferenceData.from_jsonl(path)

    def test_line_numbers_count_blank_lines(self, tmp_path: Path) -> None:
        # The bad record sits on physical line 3, after a blank line 2.
        path = _write(tmp_path / "bad.jsonl", [_rec(id="first"), "", "{oops"])
        with pytest.raises(ValueError, match=re.escape(f"{path}:3: invalid JSON")):
            PreferenceData.from_jsonl(path)

    def test_empty_file_raises_naming_it(self, tmp_path: Path) -> None:
        path = _write(tmp_path / "empty.jsonl", ["", "  "])
        with pytest.raises(ValueError, match=re.escape(f"{path}: no records")):
            PreferenceData.from_jsonl(path)


class TestRagged:
    """Segments of different lengths: refused by default, padded at the end with masks on request."""

    LINES: ClassVar[list[str]] = [
        _rec(id="a", chosen=[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], rejected=[[0.0, 1.0]]),
        _rec(id="b", chosen=[[7.0, 8.0]], rejected=[[1.0, 1.0], [2.0, 2.0]]),
    ]

    def test_unequal_lengths_are_refused_without_ragged(self, tmp_path: Path) -> None:
        path = _write(tmp_path / "r.jsonl", self.LINES)
        with pytest.raises(ValueError, match=re.escape(f"{path}:1: ") + r".*\(1, 2\).*\(3, 2\).*ragged=True"):
            PreferenceData.from_jsonl(path)
        path = _write(tmp_path / "r2.jsonl", [_rec(id="a"), _rec(id="b", chosen=[[1.0, 2.0]], rejected=[[0.0, 0.0]])])
        with pytest.raises(ValueError, match=re.escape(f"{path}:2: ") + r".*line 1 has \(2, 2\).*--ragged"):
            PreferenceData.from_jsonl(path)

    def test_ragged_read_pads_at_the_end_and_masks_the_padding(self, tmp_path: Path) -> None:
        data = PreferenceData.from_jsonl(_write(tmp_path / "r.jsonl", self.LINES), ragged=True)
        assert data.chosen.shape == (2, 3, 2)
        assert data.ragged
        assert data.chosen_mask is not None
        assert data.rejected_mask is not None
        assert data.chosen_mask.tolist() == [[True, True, True], [True, False, False]]
        assert data.rejected_mask.tolist() == [[True, False, False], [True, True, False]]
        assert data.chosen[1].tolist() == [[7.0, 8.0], [0.0, 0.0], [0.0, 0.0]]
        assert data.rejected[1].tolist() == [[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]]
        len_c, len_r = data.lengths()
        assert len_c.tolist() == [3, 1]
        assert len_r.tolist() == [1, 2]

    def test_round_trip_writes_each_segment_at_its_own_length(self, tmp_path: Path) -> None:
        src = _write(tmp_path / "r.jsonl", self.LINES)
        data = PreferenceData.from_jsonl(src, ragged=True)
        data.to_jsonl(tmp_path / "out.jsonl")
        written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert written == [json.loads(line) for line in self.LINES]
        again = PreferenceData.from_jsonl(tmp_path / "out.jsonl", ragged=True)
        for name in ("chosen", "rejected", "chosen_mask", "rejected_mask"):
            assert torch.equal(getattr(again, name), getattr(data, name))
        sub = data.subset(torch.tensor([1]))
        assert sub.chosen_mask is not None
        assert sub.chosen_mask.tolist() == [[True, False, False]]

    def test_a_one_dimensional_step_pads_and_split_keeps_the_masks(self, tmp_path: Path) -> None:
        lines = [*self.LINES, _rec(id="c", chosen=[9.0, 9.0], rejected=[[1.0, 0.0], [0.0, 1.0]])]  # chosen: T = 1
        data = PreferenceData.from_jsonl(_write(tmp_path / "r.jsonl", lines), ragged=True)
        assert data.chosen_mask is not None
        assert data.chosen_mask[2].tolist() == [True, False, False]
        assert data.chosen[2].tolist() == [[9.0, 9.0], [0.0, 0.0], [0.0, 0.0]]
        data.to_jsonl(tmp_path / "out.jsonl")
        assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[2])["chosen"] == [[9.0, 9.0]]
        train, val = data.split(1 / 3, torch.Generator().manual_seed(0))
        for part in (train, val):
            rows = [data.ids.index(i) for i in part.ids]
            assert part.chosen_mask is not None
            assert part.rejected_mask is not None
            assert torch.equal(part.chosen_mask, data.chosen_mask[rows])
            assert torch.equal(part.rejected_mask, data.rejected_mask[rows])  # type: ignore[index]

    def test_equal_lengths_under_ragged_make_no_mask(self, tmp_path: Path) -> None:
        data = PreferenceData.from_jsonl(_write(tmp_path / "e.jsonl", [_rec(id="a"), _rec(id="b")]), ragged=True)
        assert data.chosen_mask is None
        assert data.rejected_mask is None
        assert not data.ragged

    def test_feature_width_must_still_agree(self, tmp_path: Path) -> None:
        path = _write(
            tmp_path / "w.jsonl", [_rec(id="a"), _rec(id="b", chosen=[[1.0, 2.0, 3.0]], rejected=[[0.0] * 3])]
        )
        with pytest.raises(
            ValueError,
            match=re.escape(f"{path}:2: ") + r"segments have D=3 features per step but line 1 has 2$",
        ):
            PreferenceData.from_jsonl(path, ragged=True)

    @pytest.mark.parametrize(
        ("mask", "pattern"),
        [
            (
                torch.ones(2, 3),
                r"chosen_mask must be a bool tensor of shape \(N, T\)=\(2, 3\), got \(2, 3\) torch.float32",
            ),
            (torch.ones(2, 2, dtype=torch.bool), r"chosen_mask must be a bool tensor of shape \(N, T\)=\(2, 3\)"),
            (torch.tensor([[True, True, True], [False, True, True]]), r"chosen_mask row 1 has no real first step"),
            (
                torch.tensor([[True, False, True], [True, True, True]]),
                r"chosen_mask row 0 has a real step after padding",
            ),
        ],
    )
    def test_bad_mask_raises_naming_it(self, mask: torch.Tensor, pattern: str) -> None:
        x = torch.zeros(2, 3, 2)
        with pytest.raises(ValueError, match=pattern):
            PreferenceData(x, x, ["a", "b"], chosen_mask=mask)


class TestTrl:
    STANDARD: ClassVar[list[dict[str, Any]]] = [
        {"prompt": "2+2?", "chosen": "4", "rejected": "5", "margin": 1.0},
        {"prompt": "Capital of France?", "chosen": "Paris", "rejected": "Lyon"},
    ]
    CONVERSATIONAL: ClassVar[list[dict[str, Any]]] = [
        {
            "prompt": [{"role": "user", "content": "Hi"}],
            "chosen": [{"role": "assistant", "content": "Hello!"}],
            "rejected": [{"role": "assistant", "content": "Go away."}],
        }
    ]
    IMPLICIT: ClassVar[list[dict[str, Any]]] = [{"chosen": "Q: hi A: hello", "rejected": "Q: hi A: no", "id": 3}]

    @pytest.mark.parametrize("records", [STANDARD, CONVERSATIONAL, IMPLICIT])
    def test_round_trip(self, tmp_path: Path, records: list[dict[str, Any]]) -> None:
        # Write then read gives back the same records (key order: prompt, chosen, rejected, extras).
        path = tmp_path / "trl.jsonl"
        write_trl_jsonl(records, path)
        assert read_trl_jsonl(path) == records

    def test_normalised_key_order(self, tmp_path: Path) -> None:
        # A hand-written line with extras first comes back with prompt/chosen/rejected first.
        path = _write(tmp_path / "trl.jsonl", ['{"id": 1, "rejected": "b", "chosen": "a", "prompt": "p"}'])
        assert list(read_trl_jsonl(path)[0]) == ["prompt", "chosen", "rejected", "id"]

    @pytest.mark.parametrize(
        ("line", "pattern"),
        [
            ('{"prompt": "p", "chosen": "a"}', r"missing key 'rejected'"),
            ('{"prompt": "p", "chosen": "", "rejected": "b"}', r"'chosen' is an empty string"),
            (
                '{"prompt": "p", "chosen": 3, "rejected": "b"}',
                r"'chosen' must be a string or a list of messages, got int",
            ),
            ('{"prompt": [], "chosen": "a", "rejected": "b"}', r"'prompt' is an empty list of messages"),
            ('{"prompt": [{"role": "user"}], "chosen": "a", "rejected": "b"}', r"message 0 is missing 'content'"),
            (
                '{"prompt": [{"role": "", "content": "x"}], "chosen": [{"role": "a", "content": "y"}], '
                '"rejected": [{"role": "a", "content": "z"}]}',
                r"'prompt' message 0 has an empty 'role'",
            ),
            ('{"prompt": [{"role": "user", "content": "x"}], "chosen": "a", "rejected": "b"}', r"mixes plain strings"),
            ('{"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"}', r"'margin' must be a finite number"),
            ('{"chosen": "a", "rejected": "b"}', r"lacks a 'prompt' key but line 1 has one"),
            ('"just a string"', r"must be a JSON object"),
        ],
    )
    def test_bad_record_names_file_and_line(self, tmp_path: Path, line: str, pattern: str) -> None:
        path = _write(tmp_path / "trl.jsonl", [json.dumps(self.STANDARD[0]), line])
        with pytest.raises(ValueError, match=re.escape(f"{path}:2: ") + ".*" + pattern):
            read_trl_jsonl(path)

    def test_mixed_standard_and_conversational_lines_raise(self, tmp_path: Path) -> None:
        path = _write(tmp_path / "trl.jsonl", [json.dumps(self.STANDARD[0]), json.dumps(self.CONVERSATIONAL[0])])
        with pytest.raises(ValueError, match=re.escape(f"{path}:2: record is conversational but line 1 is standard")):
            read_trl_jsonl(path)

    def test_write_rejects_bad_record_naming_its_index(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"record 1: 'rejected' is an empty string"):
            write_trl_jsonl([self.STANDARD[0], {"prompt": "p", "chosen": "a", "rejected": " "}], tmp_path / "x.jsonl")
        assert not (tmp_path / "x.jsonl").exists()


def test_a_huge_json_integer_is_reported_with_its_line(tmp_path: Path) -> None:
    # A 400-digit integer overflows float: a ValueError naming file and line, not an OverflowError.
    path = tmp_path / "big.jsonl"
    path.write_text('{"id": "a", "chosen": [[' + "9" * 400 + ', 1]], "rejected": [[0, 0]]}\n')
    with pytest.raises(ValueError, match=rf"{path}:1: 'chosen' holds a non-finite value"):
        PreferenceData.from_jsonl(path)


class TestFromTrlDataset:
    RECORDS: ClassVar[list[dict[str, Any]]] = [
        {"id": 1, "rejected": "5", "chosen": "4", "prompt": "2+2?"},
        {"prompt": "Capital of France?", "chosen": "Paris", "rejected": "Lyon", "id": 2},
    ]

    @pytest.mark.parametrize("records", [RECORDS, TestTrl.CONVERSATIONAL, TestTrl.IMPLICIT])
    def test_list_gives_what_the_file_reader_gives(self, tmp_path: Path, records: list[dict[str, Any]]) -> None:
        # The second implementation: the same records through a JSONL file and read_trl_jsonl.
        path = tmp_path / "trl.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        got = from_trl_dataset(records)
        assert got == read_trl_jsonl(path)
        assert [list(r)[:2] for r in got] == [list(r)[:2] for r in read_trl_jsonl(path)]  # key order too
        assert got[0] is not records[0]  # new dicts: the caller's rows are not modified

    def test_hugging_face_dataset_split(self) -> None:
        datasets = pytest.importorskip("datasets")
        split = datasets.Dataset.from_list(self.RECORDS)
        assert from_trl_dataset(split) == from_trl_dataset(self.RECORDS)
        with pytest.raises(
            ValueError, match=r"got a mapping with keys 'train': pass one split, e\.g\. dataset\['train'\]"
        ):
            from_trl_dataset(datasets.DatasetDict({"train": split}))

    def test_columns_a_split_lacks_on_some_rows_are_absent_there(self, tmp_path: Path) -> None:
        # review finding: a datasets split fills a missing margin with None, which was refused as "not a
        # finite number"; the JSONL reader accepts the same rows, so the split must too.
        datasets = pytest.importorskip("datasets")
        rows = [
            {"prompt": "a", "chosen": "b", "rejected": "c", "margin": 1.0},
            {"prompt": "d", "chosen": "e", "rejected": "f"},
        ]
        path = tmp_path / "trl.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        split = datasets.Dataset.from_list(rows)
        assert split[1]["margin"] is None
        assert from_trl_dataset(split) == read_trl_jsonl(path) == rows
        no_prompt = datasets.Dataset.from_list([rows[0], {"chosen": "e", "rejected": "f"}])
        with pytest.raises(ValueError, match=r"^dataset row 1: record lacks a 'prompt' key but row 0 has one"):
            from_trl_dataset(no_prompt)

    def test_iterator_is_read_once(self) -> None:
        assert from_trl_dataset(iter(self.RECORDS)) == from_trl_dataset(self.RECORDS)

    @pytest.mark.parametrize(
        ("dataset", "pattern"),
        [
            (
                [RECORDS[0], {"prompt": "p", "chosen": "a", "rejected": ""}],
                r"^dataset row 1: 'rejected' is an empty string",
            ),
            ([RECORDS[0], {"prompt": "p", "chosen": "a"}], r"^dataset row 1: missing key 'rejected'"),
            (
                [RECORDS[0], {"chosen": "a", "rejected": "b"}],
                r"^dataset row 1: record lacks a 'prompt' key but row 0 has one",
            ),
            ([RECORDS[0], 3], r"^dataset row 1 must be a dict with 'chosen' and 'rejected', got int$"),
            (
                ["prompt", "chosen"],
                r"^dataset row 0 must be a dict .* got str \(a pandas DataFrame .*to_dict\('records'\)\)",
            ),
            ([], r"^dataset has no rows$"),
            (
                "prefs.jsonl",
                r"^dataset must be loaded records, got the path 'prefs\.jsonl': read a file with read_trl_jsonl",
            ),
            (Path("prefs.jsonl"), r"^dataset must be loaded records, got the path"),
            (
                {"chosen": "a", "rejected": "b"},
                r"^dataset must be an iterable of records, got a mapping with keys 'chosen', 'rejected' \(a split's "
                r"columns, or one record\): pass a list of row dicts, or datasets\.Dataset\.from_dict\(columns\)$",
            ),
            ({"train": [], "test": []}, r"^dataset must be one split .* keys 'train', 'test': pass one split"),
            (7, r"^dataset must be an iterable of records .* got int$"),
        ],
    )
    def test_bad_input_named(self, dataset: Any, pattern: str) -> None:
        with pytest.raises(ValueError, match=pattern):
            from_trl_dataset(dataset)


def test_values_beyond_float32_and_non_utf8_lines_are_named(tmp_path: Path) -> None:
    # 1e39 is a finite Python float but inf in the float32 tensors; bytes that are not UTF-8 stopped the
    # reader with a bare codec error. Both now name the file and the line (review finding).
    good = '{"id": "a", "chosen": [[1.0, 2.0]], "rejected": [[0.0, 1.0]]}'
    big = tmp_path / "big.jsonl"
    big.write_text(good + '\n{"id": "b", "chosen": [[1e39, 2.0]], "rejected": [[0.0, 1.0]]}\n')
    with pytest.raises(ValueError, match=r"big\.jsonl:2: 'chosen' holds 1e\+39 at step 0, beyond float32's range"):
        PreferenceData.from_jsonl(big)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(good.encode() + b'\n{"id": "caf\xe9", "chosen": [[1.0, 2.0]], "rejected": [[0.0, 1.0]]}\n')
    with pytest.raises(ValueError, match=r"latin\.jsonl:2: not UTF-8 text"):
        PreferenceData.from_jsonl(latin)
    text = tmp_path / "text.jsonl"
    text.write_bytes(
        b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "\xff", "chosen": "a", "rejected": "b"}\n'
    )
    with pytest.raises(ValueError, match=r"text\.jsonl:2: not UTF-8 text"):
        read_trl_jsonl(text)


def test_writers_create_missing_folders(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "deeper" / "pairs.jsonl"
    write_trl_jsonl([{"prompt": "p", "chosen": "a", "rejected": "b"}], out)
    assert read_trl_jsonl(out)[0]["chosen"] == "a"
