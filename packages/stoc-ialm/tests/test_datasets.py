"""Tests of stoc_ialm.datasets: bundled and generated data, the Adult preprocessing script, the LIBSVM reader."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from stoc_ialm import datasets
from stoc_ialm.datasets import Dataset, load, load_svmlight, synthetic

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_adult.py"


def _make_adult_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_adult", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_standardized(X: torch.Tensor) -> None:
    """Every non-bias column has mean 0 and population std 1 (or is constant 0); the last column is ones."""
    feats = X[:, :-1]
    torch.testing.assert_close(feats.mean(0), torch.zeros(feats.shape[1], dtype=torch.float64), atol=1e-12, rtol=0)
    std = feats.std(0, unbiased=False)
    assert bool(((std - 1).abs() < 1e-12).logical_or(std == 0).all())
    assert bool((X[:, -1] == 1).all())


class TestSklearnSets:
    # Sizes and class counts from the data sets' descriptions (UCI / scikit-learn DESCR).
    @pytest.mark.parametrize(
        ("name", "n", "d", "n_pos"),
        [("breast_cancer", 569, 31, 212), ("digits", 1797, 65, 178), ("wine", 178, 14, 59)],
    )
    def test_load_sizes_and_standardization(self, name: str, n: int, d: int, n_pos: int) -> None:
        data = load(name)
        assert (data.n, data.d, data.n_pos) == (n, d, n_pos)
        assert data.X.dtype == torch.float64
        assert data.y.dtype == torch.int64
        assert data.feature_names[-1] == "bias"
        assert len(data.feature_names) == d
        assert data.group is None
        _assert_standardized(data.X)

    def test_load_breast_cancer_positive_is_malignant(self) -> None:
        from sklearn.datasets import load_breast_cancer

        bunch = load_breast_cancer()
        malignant = list(bunch.target_names).index("malignant")
        assert torch.equal(load("breast_cancer").y, torch.from_numpy((bunch.target == malignant).astype(np.int64)))

    def test_load_without_sklearn_names_the_install_line(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for module in ("sklearn", "sklearn.datasets"):
            monkeypatch.setitem(sys.modules, module, None)  # makes the import raise ImportError
        with pytest.raises(ImportError, match=r"pip install .*scikit-learn"):
            load("wine")
        assert "missing" in datasets.available()["wine"]


class TestAdult:
    def test_load_adult_matches_the_uci_counts(self) -> None:
        # UCI adult.names: 32,561 training rows; 7,841 with income >50K; 21,790 male.
        data = load("adult")
        assert (data.n, data.d, data.n_pos) == (32561, 109, 7841)
        assert data.group is not None
        assert int(data.group.sum()) == 21790
        _assert_standardized(data.X[:, [*list(range(6)), 108]])

    def test_load_adult_one_hot_blocks_sum_to_one(self) -> None:
        data = load("adult")
        onehot = data.X[:, 6:-1]  # (n, 102)
        assert bool(((onehot == 0) | (onehot == 1)).all())
        names = data.feature_names[6:-1]
        for column in ("workclass", "education", "marital-status", "occupation", "relationship", "race", "sex"):
            cols = [j for j, nm in enumerate(names) if nm.startswith(column + "=")]
            assert bool((onehot[:, cols].sum(1) == 1).all()), column
        male = names.index("sex=Male")
        assert data.group is not None
        assert torch.equal(data.group, onehot[:, male].long())

    def test_adult_file_metadata_and_size(self) -> None:
        meta = datasets.adult_metadata()
        assert meta["source_sha256"] == _make_adult_module().EXPECTED_SHA256
        assert meta["rows"] == 32561
        assert meta["positives"] == 7841
        assert "CC BY 4.0" in str(meta["license"])
        assert datasets.adult_path().stat().st_size <= 2_000_000

    def test_load_adult_missing_file_says_how_to_rebuild(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setattr(datasets, "adult_path", lambda: tmp_path / "none.npz")
        with pytest.raises(FileNotFoundError, match=r"make_adult\.py"):
            load("adult")

    def test_make_adult_build_hand_worked_rows(self, tmp_path: Path) -> None:
        # Three rows worked by hand: levels are the sorted distinct values, '?' kept; the test file's '.' dropped.
        raw = (
            b"39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0,"
            b" 40, United-States, <=50K\n"
            b"50, ?, 83311, Bachelors, 13, Married-civ-spouse, ?, Husband, White, Male, 0, 0, 13, Cuba, >50K.\n"
            b"38, Private, 215646, HS-grad, 9, Divorced, Handlers-cleaners, Not-in-family, Black, Female, 0, 0, 40,"
            b" United-States, <=50K\n\n"
        )
        module = _make_adult_module()
        arrays = module.build(raw, "hand")
        assert arrays["num"].tolist() == [
            [39, 77516, 13, 2174, 0, 40],
            [50, 83311, 13, 0, 0, 13],
            [38, 215646, 9, 0, 0, 40],
        ]
        assert arrays["income"].tolist() == [0, 1, 0]
        assert arrays["level_counts"].tolist() == [3, 2, 3, 3, 2, 2, 2, 2]
        assert list(arrays["levels"][:3]) == ["?", "Private", "State-gov"]
        assert arrays["cat"][:, 0].tolist() == [2, 0, 1]  # State-gov, ?, Private
        meta = json.loads(str(arrays["meta"]))
        assert meta["source_sha256"] == hashlib.sha256(raw).hexdigest()
        assert meta["rows"] == 3
        src = tmp_path / "adult.data"
        src.write_bytes(raw)
        out = tmp_path / "adult.npz"
        assert module.main(["--source", str(src), "--out", str(out)]) == 0
        with np.load(out) as z:
            assert z["cat"].shape == (3, 8)
            assert json.loads(str(z["meta"]))["rows"] == 3


class TestSynthetic:
    def test_synthetic_is_seeded(self) -> None:
        a, b, c = synthetic(seed=3), synthetic(seed=3), synthetic(seed=4)
        assert torch.equal(a.X, b.X)
        assert torch.equal(a.y, b.y)
        assert a.group is not None
        assert b.group is not None
        assert torch.equal(a.group, b.group)
        assert not torch.equal(a.X, c.X)
        gen = torch.Generator().manual_seed(3)
        assert torch.equal(synthetic(generator=gen).X, a.X)  # a fresh generator seeded alike draws the same

    def test_synthetic_shapes_and_correlations(self) -> None:
        data = synthetic(n=3000, d=6, pos_fraction=0.25)
        assert (data.n, data.d, data.n_pos) == (3000, 7, 750)
        _assert_standardized(data.X)
        assert data.group is not None
        corr = torch.corrcoef(torch.stack([data.group.double(), data.X[:, 0], data.y.double()]))
        assert corr[0, 1] > 0.3
        assert corr[1, 2] > 0.1
        independent = synthetic(n=3000, d=6, group_strength=0.0)
        assert independent.group is not None
        assert abs(float(torch.corrcoef(torch.stack([independent.group.double(), independent.X[:, 0]]))[0, 1])) < 0.06

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [({"n": 3}, "n"), ({"d": 1}, "d"), ({"pos_fraction": 1.0}, "pos_fraction"), ({"separation": -1.0}, "separation"),
         ({"group_strength": -0.5}, "group_strength")],
    )  # fmt: skip
    def test_synthetic_bad_arguments(self, kwargs: dict[str, float], name: str) -> None:
        with pytest.raises(ValueError, match=name):
            synthetic(**kwargs)  # type: ignore[arg-type]


class TestLoad:
    def test_available_lists_every_loadable_name(self) -> None:
        names = datasets.available()
        assert set(names) == {"breast_cancer", "digits", "wine", "adult", "synthetic"}
        assert load("synthetic").n == 2000

    def test_load_unknown_name(self) -> None:
        with pytest.raises(ValueError, match="name must be one of"):
            load("iris")

    def test_dataset_validates_its_fields(self) -> None:
        X = torch.ones(3, 2, dtype=torch.float64)
        data = Dataset("mine", X, torch.tensor([0, 1, 1]))
        assert data.feature_names == ("f0", "bias")
        assert data.n_pos == 2
        with pytest.raises(ValueError, match="y must have shape"):
            Dataset("mine", X, torch.tensor([0, 1]))
        with pytest.raises(ValueError, match="y must hold labels"):
            Dataset("mine", X, torch.tensor([0, 2, 1]))
        with pytest.raises(ValueError, match="group must hold"):
            Dataset("mine", X, torch.tensor([0, 1, 1]), group=torch.tensor([0, 1, 3]))
        with pytest.raises(ValueError, match="X must be a 2-D float64"):
            Dataset("mine", X.float(), torch.tensor([0, 1, 1]))


class TestSvmlight:
    def test_load_svmlight_hand_file(self, tmp_path: Path) -> None:
        path = tmp_path / "tiny.svm"
        path.write_text("# a comment line\n+1 1:0.5 3:2\n-1 qid:7 2:1.5  # trailing comment\n\n+1 3:-1\n")
        data = load_svmlight(path, standardize_features=False)
        expected = torch.tensor([[0.5, 0, 2, 1], [0, 1.5, 0, 1], [0, 0, -1, 1]], dtype=torch.float64)
        assert torch.equal(data.X, expected)
        assert data.y.tolist() == [1, 0, 1]
        assert data.name == "tiny"
        assert data.feature_names == ("f1", "f2", "f3", "bias")
        wide = load_svmlight(path, n_features=5)
        assert wide.d == 6
        _assert_standardized(wide.X)

    def test_load_svmlight_zero_based_and_multiclass(self, tmp_path: Path) -> None:
        path = tmp_path / "multi.txt"
        path.write_text("3 0:1\n1 1:2\n2 0:3 1:1\n")
        with pytest.raises(ValueError, match="positive_label"):
            load_svmlight(path)
        data = load_svmlight(path, positive_label=2, standardize_features=False)
        assert data.X[:, :-1].tolist() == [[1, 0], [0, 2], [3, 1]]
        assert data.y.tolist() == [0, 0, 1]
        with pytest.raises(ValueError, match="positive_label 5"):
            load_svmlight(path, positive_label=5)

    def test_load_svmlight_bad_files(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.svm"
        bad.write_text("1 1:2\n0 x:y\n")
        with pytest.raises(ValueError, match="line 2"):
            load_svmlight(bad)
        empty = tmp_path / "empty.svm"
        empty.write_text("# nothing\n")
        with pytest.raises(ValueError, match="no samples"):
            load_svmlight(empty)
        with pytest.raises(ValueError, match="path: cannot read"):
            load_svmlight(tmp_path / "missing.svm")
        ok = tmp_path / "ok.svm"
        ok.write_text("1 4:1\n0 1:1\n")
        with pytest.raises(ValueError, match="n_features must be"):
            load_svmlight(ok, n_features=2)
