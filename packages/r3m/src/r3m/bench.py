"""Benchmarks of R³M against the baselines of its spec, side by side (``r3m bench``).

Each benchmark runs R³M and the baselines in one loop with the same data, seeds and thread count
and returns a table; ``run`` writes ``<name>.json`` (package, version, git commit, command, date,
machine, config, rows) and ``<name>.md``. Benchmarks (spec §6):

- ``synthetic`` (B1): segment preferences over a random tanh-MLP reward under the paper's
  corruption models; clean-test accuracy, reward correlation, outlier precision / recall / AUROC
  (with BT's margin as the detection baseline); λ chosen on a noisy validation split; the same
  over a saturated tanh-MLP truth; beside them, a linear true reward and 10 epochs without early
  stopping, with the precision bound that each model's accuracy on the clean training pairs sets
  for the λ = .5 flags.
- ``dpo`` (B2): the exact toy DPO bandit with 0 / 20 / 40 % flipped labels.
- ``control`` (B3): segments of real control environments (gymnasium, MuJoCo when installed).
- ``overhead`` (B4): time per step against Bradley-Terry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from r3m._version import __version__
from r3m.baselines import bt_loss, dpo_baseline
from r3m.commands import clean_test_pairs, format_table, write_json
from r3m.config import TrainConfig
from r3m.data import PreferenceData
from r3m.functional import r3m_dpo_loss, r3m_loss
from r3m.metrics import flag_precision, reward_correlation
from r3m.reward_model import SegmentRewardModel
from r3m.synthetic import RewardKind, make_preference_data, pair_segments, sample_segments
from r3m.teachers import Flip, Irrational, Myopic, Oracle, Stochastic, Teacher
from r3m.trainer import RewardTrainer

logger = logging.getLogger(__name__)

Table = dict[str, Any]


TOY_DPO_LOSSES = ("r3m", "sigmoid", "conservative", "robust", "ipo", "hinge")
"""The losses :func:`dpo_loss_fn` builds (the toy bandit's ``--losses``)."""


def dpo_loss_fn(
    name: str, *, beta: float = 0.1, lam: float = 0.5, eps: float = 0.1
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """Per-pair DPO-family loss by name: ``r3m``, ``sigmoid``, ``conservative``, ``robust``, ``ipo``, ``hinge``."""
    if name == "r3m":
        return lambda pc, pr, rc, rr: r3m_dpo_loss(pc, pr, rc, rr, beta=beta, lam=lam).losses
    if name in ("sigmoid", "conservative", "robust", "ipo", "hinge"):
        return lambda pc, pr, rc, rr: dpo_baseline(name, pc, pr, rc, rr, beta=beta, eps=eps)[0]
    raise ValueError(f"unknown DPO loss {name!r}; choose from {', '.join(TOY_DPO_LOSSES)}")


SE = "mean ± s.e. over the seeds (the sample standard deviation, ddof 1, over √seeds)"
"""How the tables' ``±`` reads."""


def _mean_se(values: list[float]) -> tuple[float, float]:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return math.nan, math.nan
    m = statistics.fmean(vals)
    return m, (statistics.stdev(vals) / math.sqrt(len(vals)) if len(vals) > 1 else math.nan)


def _pm(values: list[float], digits: int = 4) -> str:
    """``mean ± s.e.``; NaN values are left out and counted."""
    m, se = _mean_se(values)
    text = f"{m:.{digits}f}" if math.isnan(se) else f"{m:.{digits}f} ± {se:.{digits}f}"
    n_nan = sum(math.isnan(v) for v in values)
    return f"{text} ({n_nan} nan)" if n_nan else text


def _pm2(a: list[float], b: list[float], digits: int = 3) -> str:
    """Two methods' ``mean ± s.e.`` in one column, ``a / b`` (``-`` when no seed had the value)."""
    return f"{_pm(a, digits)} / {_pm(b, digits)}" if a or b else "-"


Cell = dict[str, float]
"""The raw values of one seed of one table row (accuracy per method, correlations, flag statistics...)."""


def _col(cells: list[Cell], key: str) -> list[float]:
    """``key``'s value in every cell that has it (a cell leaves out what its seed could not measure)."""
    return [c[key] for c in cells if key in c]


def _per_seed(cells: list[Cell]) -> dict[str, list[float]]:
    """The cells of one row as one list per value, for the JSON record (``per_seed``)."""
    keys = list(dict.fromkeys(k for c in cells for k in c))
    return {k: _col(cells, k) for k in keys}


class CellStore:
    """The finished cells of one benchmark, so that an interrupted run resumes where it stopped.

    A cell is one seed of one table row; its raw values are kept in ``path`` (JSON, rewritten after
    every cell to a temporary file in the same folder and moved into place with :func:`os.replace`,
    so an interrupt leaves the previous complete file). The file names the package version, git commit
    and size (``quick``) of the run that wrote it: cells from another version, commit or size are not
    mixed in (the file is set aside as ``<name>.partial.stale``). A checkout with uncommitted changes to the
    package reads as the same commit (``<sha>-dirty``): after editing the benchmark code, pass ``fresh``.
    ``path=None`` keeps the cells in memory.
    :func:`run` deletes the file once the benchmark's record is written.
    """

    def __init__(self, path: Path | None = None, meta: dict[str, Any] | None = None, *, fresh: bool = False) -> None:
        self.path, self.meta = path, dict(meta or {})
        self.cells: dict[str, Cell] = {}
        self.reused = 0
        if path is None or not path.exists():
            return
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            ok = isinstance(saved, dict) and saved.get("meta") == self.meta and isinstance(saved.get("cells"), dict)
        except (OSError, ValueError):
            ok = False
        if fresh or not ok:
            why = "--fresh" if fresh else "another version, commit or size, or unreadable"
            logger.warning("%s: not resumed (%s); set aside as %s", path, why, path.with_suffix(".stale"))
            path.replace(path.with_suffix(".stale"))
            return
        self.cells = {
            k: {m: math.nan if v is None else float(v) for m, v in c.items()} for k, c in saved["cells"].items()
        }
        logger.warning("%s: resuming, %d finished cell(s) kept", path, len(self.cells))

    def get(self, key: str, compute: Callable[[], Cell]) -> Cell:
        """The cell ``key``: from the store when a previous run finished it, else ``compute()``, then saved."""
        if key in self.cells:
            self.reused += 1
            return self.cells[key]
        cell = {k: float(v) for k, v in compute().items()}
        self.cells[key] = cell
        if self.path is not None:
            write_json(self.path, {"meta": self.meta, "cells": self.cells})
        return cell

    def seeds(self, desc: str, seeds: int, compute: Callable[[int], Cell]) -> list[Cell]:
        """The cells ``<desc>/seed 0`` … ``<desc>/seed <seeds − 1>`` of one table row, each from the store or from
        ``compute(seed)`` (:meth:`get`), with a progress bar named ``desc``."""
        return [self.get(f"{desc}/seed {seed}", functools.partial(compute, seed))
                for seed in tqdm(range(seeds), desc=desc, disable=None)]  # fmt: skip

    def discard(self) -> None:
        """Delete the file (the benchmark's record is written)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- B1

CORRUPTIONS: dict[str, Callable[[], Teacher]] = {
    "none": Oracle,
    "flip 10%": lambda: Flip(0.1),
    "flip 20%": lambda: Flip(0.2),
    "flip 30%": lambda: Flip(0.3),
    "flip 40%": lambda: Flip(0.4),
    "stochastic τ=3": lambda: Stochastic(3.0),
    "myopic γ=.5": lambda: Myopic(0.5),
    "irrational p=1/3": lambda: Irrational(1 / 3),
    "irrational p=2/3": lambda: Irrational(2 / 3),  # 25 % of the largest gaps flipped: reported, no target (spec)
}
LAMBDA_GRID = (0.3, 0.5, 0.7)


@dataclasses.dataclass(frozen=True)
class B1Setting:
    """One B1 setting: the true reward and the reward model's training budget."""

    reward: RewardKind = "smooth-mlp"
    """true reward (:class:`~r3m.synthetic.TrueReward`): ``smooth-mlp`` (a random tanh-MLP at torch's
    default init, the difficulty of the spec's prototype), ``mlp`` (a saturated tanh-MLP) or ``linear``."""
    epochs: int = 5
    """maximum epochs (the spec's 5; the paper trains 1-5)."""
    early_stopping: bool = True
    """keep the epoch with the best accuracy on the noisy validation split (else the last epoch)."""

    @property
    def truth(self) -> str:
        return {"smooth-mlp": "smooth tanh-MLP", "mlp": "saturated tanh-MLP", "linear": "linear"}[self.reward]

    @property
    def training(self) -> str:
        return f"≤ {self.epochs} ep., early stop" if self.early_stopping else f"{self.epochs} ep., no early stop"

    def config(self, loss: str, seed: int, **kw: Any) -> TrainConfig:
        """The :class:`TrainConfig` of ``loss`` in this setting (the spec's defaults otherwise)."""
        stop = "val_accuracy" if self.early_stopping else "none"
        return TrainConfig(loss=loss, seed=seed, epochs=self.epochs, early_stopping=stop, **kw)


B1_DEFAULT = B1Setting()
B1_SATURATED = B1Setting("mlp")
"""The second full B1 table: the main table's protocol over a saturated tanh-MLP truth, which the reward model fits
worse (≈ 0.89 clean accuracy without flips against ≈ 0.95)."""
B1_VARIANTS = (B1Setting("smooth-mlp", 10, False), B1Setting("mlp", 10, False), B1Setting("linear", 5, True),
               B1Setting("linear", 10, False))  # fmt: skip
"""Side tables of B1: a linear truth (which the reward model fits best) and 10 epochs without early stopping."""
B1_VARIANT_CORRUPTIONS = ("none", "flip 20%", "flip 30%", "flip 40%")
"""The flip rates of the targets (0 % and 20-40 %); 10 % is left out (the whole B1 run takes 10-25 min on 2 cores)."""
B1_VARIANT_COLUMNS = ("truth", "training", "corruption", "bt", "cbt ε=.1", "r3m λ by val", "r3m(val) − bt, points",
                      "λ=.5 precision", "λ=.5 recall", "clean train acc. (bt / r3m λ=.5)",
                      "λ=.5 P bound (bt / r3m λ=.5)")  # fmt: skip
B1_BOUND_NOTE = (
    "Precision bound. At λ = .5 the threshold t_λ = log(1/λ − 1) is 0, so a pair is flagged (δ > 0) exactly "
    "when the model ranks it against its label. With ρ the share of corrupted training pairs, R the recall and "
    "e the share of clean training pairs flagged (= 1 − the model's accuracy on the clean training pairs), the "
    "flagged set holds ρR·N corrupted and (1 − ρ)e·N clean pairs, so precision = ρR / (ρR + (1 − ρ)e) exactly, "
    "and ≤ ρ / (ρ + (1 − ρ)e) at R = 1 (`r3m.metrics.flag_precision`). The columns give, per seed then averaged, "
    "1 − e on the training split (corrupted pairs excluded, labels = truth there) of BT and of R³M λ = .5, and the "
    "bound ρ / (ρ + (1 − ρ)e) with each model's e (R³M's own e is the one that binds its flags; BT's shows what "
    "an ordinary reward model allows). At ρ = .2 the targets P ≥ .75 and R ≥ .85 together need e ≤ .0708, i.e. a "
    "clean-pair training accuracy ≥ .929"
)


def _fit_methods(
    train: PreferenceData, val: PreferenceData, config: Callable[..., TrainConfig]
) -> tuple[dict[str, RewardTrainer], float]:
    """B1's and B3's methods on one split, each from ``config(loss, **fields)``: BT, cBT, rBT, and R³M at every λ of
    :data:`LAMBDA_GRID`, λ picked by accuracy on the noisy validation split (the first of equal ones).

    Returns the trainers ``bt``, ``cbt``, ``rbt``, ``r3m λ=.5``, ``r3m λ by val`` and the λ picked.
    """
    trainers: dict[str, RewardTrainer] = {}
    for name in ("bt", "cbt", "rbt"):
        trainers[name] = RewardTrainer(config(name))
        trainers[name].fit(train, val, progress=False)
    by_lam: dict[float, RewardTrainer] = {}
    for lam in LAMBDA_GRID:
        by_lam[lam] = RewardTrainer(config("r3m", lam=lam))
        by_lam[lam].fit(train, val, progress=False)
    best_lam = max(by_lam, key=lambda lam: by_lam[lam].accuracy(val))
    trainers["r3m λ=.5"], trainers["r3m λ by val"] = by_lam[0.5], by_lam[best_lam]
    return trainers, best_lam


def _synthetic_cell(setting: B1Setting, make: Callable[[], Teacher], seed: int, n_train: int, n_test: int) -> Cell:
    """One seed of one B1 row: every method trained on the same data; accuracy, correlations, flag statistics."""
    gen = torch.Generator().manual_seed(3000 + seed)
    data, truth = make_preference_data(n_train, reward=setting.reward, teacher=make(), generator=gen)
    train, val = data.split(0.1, gen)  # a *noisy* validation split, as in the paper
    test = clean_test_pairs(truth, n_test, 10, 8, gen)
    probe = sample_segments(4000, 10, 8, gen)
    trainers, best_lam = _fit_methods(train, val, functools.partial(setting.config, seed=seed))
    cell: Cell = {"λ by val": best_lam}
    for name, t in trainers.items():
        cell[f"acc {name}"] = t.accuracy(test)
    true = truth.returns(probe)
    for name in ("bt", "r3m λ by val"):
        pred = trainers[name].predict(probe)
        cell[f"pearson {name}"] = reward_correlation(pred, true, "pearson")
        cell[f"spearman {name}"] = reward_correlation(pred, true, "spearman")
    rep = trainers["r3m λ=.5"].outlier_report(train)
    bt_rep = trainers["bt"].outlier_report(train, lam=0.5)
    if rep.precision is not None:
        for key, value in (("P", rep.precision), ("R", rep.recall), ("auroc", rep.auroc),
                           ("r3m_margin_auroc", rep.margin_auroc), ("bt_margin_auroc", bt_rep.margin_auroc),
                           ("bt_P", bt_rep.precision), ("bt_R", bt_rep.recall)):  # fmt: skip
            cell[key] = math.nan if value is None else value
    if train.corrupted is not None:
        rho = float(train.corrupted.float().mean())
        cell["share"] = rho
        for key, report in (("bt", bt_rep), ("r3m", rep)):
            e = float(report.flagged[~train.corrupted].float().mean())  # clean pairs ranked against the truth
            cell[f"{key} clean acc"] = 1.0 - e
            cell[f"{key} bound"] = flag_precision(rho, 1.0, e)
    return cell


def _lam_counts(cells: list[Cell]) -> str:
    chosen = _col(cells, "λ by val")
    return ", ".join(f"{lam:g}×{chosen.count(lam)}" for lam in LAMBDA_GRID if lam in chosen)


def _synthetic_rows(setting: B1Setting, corruptions: dict[str, Callable[[], Teacher]], seeds: int, n_train: int,
                    n_test: int, store: CellStore) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """One B1 table: a row per corruption, each method trained on the same data and seeds; and each row's per-seed
    values."""
    rows, raw = [], []
    for cname, make in corruptions.items():
        desc = f"synthetic/{setting.reward}/{setting.epochs}{'es' if setting.early_stopping else ''}/{cname}"
        cells = store.seeds(desc, seeds, lambda seed: _synthetic_cell(setting, make, seed, n_train, n_test))  # noqa: B023
        acc = {k: _col(cells, f"acc {k}") for k in ("bt", "cbt", "rbt", "r3m λ=.5", "r3m λ by val")}
        det = {k: _col(cells, k) for k in ("P", "R", "auroc", "r3m_margin_auroc", "bt_margin_auroc", "bt_P", "bt_R")}
        rows.append({
            "corruption": cname, "actual_corrupted": _pm(_col(cells, "share"), 3), "bt": _pm(acc["bt"]),
            "cbt ε=.1": _pm(acc["cbt"]), "rbt ε=.1": _pm(acc["rbt"]), "r3m λ=.5": _pm(acc["r3m λ=.5"]),
            "r3m λ by val": _pm(acc["r3m λ by val"]),
            "r3m(val) − bt, points": _pm([100 * (a - b) for a, b in zip(acc["r3m λ by val"], acc["bt"], strict=True)], 2),
            "pearson r̂ vs r* (bt / r3m)": _pm2(_col(cells, "pearson bt"), _col(cells, "pearson r3m λ by val")),
            "spearman r̂ vs r* (bt / r3m)": _pm2(_col(cells, "spearman bt"), _col(cells, "spearman r3m λ by val")),
            "λ by val (seeds)": _lam_counts(cells),
            "λ=.5 precision": _pm(det["P"], 3) if det["P"] else "-",
            "λ=.5 recall": _pm(det["R"], 3) if det["R"] else "-",
            "bt's flags d < 0: P / R": _pm2(det["bt_P"], det["bt_R"]),
            "δ AUROC (r3m λ=.5)": _pm(det["auroc"], 3) if det["auroc"] else "-",
            "margin AUROC (r3m / bt)": _pm2(det["r3m_margin_auroc"], det["bt_margin_auroc"]),
            "clean train acc. (bt / r3m λ=.5)": _pm2(_col(cells, "bt clean acc"), _col(cells, "r3m clean acc")),
            "λ=.5 P bound (bt / r3m λ=.5)": _pm2(_col(cells, "bt bound"), _col(cells, "r3m bound")),
        })  # fmt: skip
        raw.append({"corruption": cname, **_per_seed(cells)})
    return rows, raw


def bench_synthetic(seeds: int, quick: bool, store: CellStore | None = None) -> Table:
    """B1: clean accuracy and outlier detection under the paper's corruption models, and variants.

    The main table is the spec's setting (:data:`B1_DEFAULT`: a random tanh-MLP truth at torch's
    default init, on which Bradley-Terry reaches the spec prototype's clean accuracy); a second full
    table repeats it over a saturated tanh-MLP truth (:data:`B1_SATURATED`); a third sets both beside
    a linear true reward and 10 epochs without early stopping (:data:`B1_VARIANTS`) at the flip rates
    of the targets, with each model's clean-pair training accuracy and the precision bound it
    implies (:data:`B1_BOUND_NOTE`).
    """
    store = store or CellStore()
    n_train, n_test = (1500, 500) if quick else (5000, 2000)
    corruptions = {k: CORRUPTIONS[k] for k in (("none", "flip 20%", "myopic γ=.5") if quick else CORRUPTIONS)}
    rows, rows_raw = _synthetic_rows(B1_DEFAULT, corruptions, seeds, n_train, n_test, store)
    saturated, saturated_raw = _synthetic_rows(B1_SATURATED, corruptions, seeds, n_train, n_test, store)
    variant_corruptions = {k: CORRUPTIONS[k] for k in (("flip 20%",) if quick else B1_VARIANT_CORRUPTIONS)}
    by_setting = {B1_DEFAULT: (rows, rows_raw), B1_SATURATED: (saturated, saturated_raw)}
    for setting in B1_VARIANTS:
        by_setting[setting] = _synthetic_rows(setting, variant_corruptions, seeds, n_train, n_test, store)
    variant_rows, variant_raw = [], []
    for c in variant_corruptions:
        for s, (s_rows, s_raw) in by_setting.items():
            i = [row["corruption"] for row in s_rows].index(c)
            variant_rows.append({"truth": s.truth, "training": s.training, **s_rows[i]})
            variant_raw.append({"truth": s.truth, "training": s.training, **s_raw[i]})
    protocol = (
        "10 % of the pairs a noisy validation split; 2×64 MLP reward model, Adam 3e-3, batch 64, up to 5 epochs "
        f"with early stopping on validation accuracy; R³M λ from {LAMBDA_GRID} by noisy validation accuracy; "
        f"{n_test} clean test pairs; Pearson and Spearman of r̂ with r* on 4000 fresh segments; outliers = δ > 0 at "
        "λ = .5 on the training pairs, detection AUROC of each model's −margin (δ ranks flagged pairs as −margin "
        "does) and of δ itself (ties every unflagged pair at 0); the detection baseline: BT's own flags at the same "
        "threshold (pairs it ranks against their label, d < 0), precision / recall; cBT / rBT keep "
        f"ε = .1 while R³M's λ is tuned; {seeds} seed(s), {SE}"
    )
    return {
        "title": "B1: reward learning from corrupted preferences (synthetic segments)",
        "setup": f"{n_train} pairs over a random tanh-MLP reward r*: D=8 → 32 → 32 → 1 at torch.nn.Linear's default "
        "init, scaled to unit variance (`TrueReward(kind='smooth-mlp')`: the difficulty of the spec's prototype, "
        f"whose Bradley-Terry reached .958 clean accuracy without flips), T=10, D=8; {protocol}",
        "targets": "R³M ≥ BT and ≥ cBT at every flip rate, ≥ +0.8 points at 20-40 % flips, within 0.3 points at 0 %; "
        "P ≥ 0.75 and R ≥ 0.85 at 20 % flips with λ = .5; where rBT wins (stochastic noise), say so; irrational "
        "p = 2/3 (25 % of the largest gaps flipped, which reverses every method in the spec's prototype): reported, "
        "no target",
        "rows": rows,
        "per_seed": rows_raw,
        "notes": B1_BOUND_NOTE,
        "sections": [
            {
                "title": "B1 over a saturated tanh-MLP truth",
                "setup": "as the main table, with r* a tanh-MLP whose hidden weights have torch's tanh gain 5/3 and "
                "biases N(0, .5²) (`TrueReward(kind='mlp')`): the tanh units saturate, and the same reward model "
                "ranks fewer clean pairs right, which bounds the precision of the λ = .5 flags (notes)",
                "rows": saturated,
                "per_seed": saturated_raw,
            },
            {
                "title": "B1 variants: linear truth, and 10 epochs without early stopping",
                "setup": f"as the main table ({n_train} pairs, same seeds, methods and λ selection), with the true "
                "reward the main table's smooth tanh-MLP, the saturated one, or linear r*(x) = x·w (still fitted by "
                "the 2×64 MLP), and training either the main table's (up to 5 epochs, the epoch with the best "
                "noisy-validation accuracy kept) or 10 epochs and the last one kept (the paper trains to "
                "convergence); the early-stopping rows of the two tanh-MLP truths are those of the full tables; the "
                "JSON rows hold every column of the main table",
                "columns": list(B1_VARIANT_COLUMNS),
                "rows": variant_rows,
                "per_seed": variant_raw,
            },
        ],
    }


# ---------------------------------------------------------------------------------------------- B2


def _dpo_cell(methods: dict[str, tuple[str, dict[str, float]]], flip: float, seed: int, quick: bool) -> Cell:
    """One seed of one B2 row: every method on the same bandit; normalised reward, win rate, implicit accuracy."""
    from r3m.bandit import BanditConfig, make_bandit, oracle_teacher, train_dpo

    cfg = BanditConfig(n_pairs=1500 if quick else 6000, flip_rate=flip, seed=seed)
    problem = make_bandit(cfg, torch.Generator().manual_seed(seed), teacher=oracle_teacher)
    cell: Cell = {}
    for name, (kind, kw) in methods.items():
        out = train_dpo(problem, dpo_loss_fn(kind, beta=cfg.beta, **kw), cfg, torch.Generator().manual_seed(seed))
        cell[f"reward {name}"] = out.normalised_reward
        cell[f"win {name}"] = out.win_rate_vs_ref
        cell[f"implicit {name}"] = out.implicit_accuracy
    return cell


def bench_dpo(seeds: int, quick: bool, store: CellStore | None = None) -> Table:
    """B2: the exact toy DPO bandit with flipped labels."""
    store = store or CellStore()
    methods = {"dpo (sigmoid)": ("sigmoid", {}), "cdpo ε=.1": ("conservative", {}), "rdpo ε=.1": ("robust", {}),
               "ipo": ("ipo", {}), "r3m-dpo λ=.5": ("r3m", {"lam": 0.5})}  # fmt: skip
    rows: list[dict[str, Any]] = []
    win_rows: list[dict[str, Any]] = []
    imp_rows: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    for flip in (0.0, 0.2, 0.4):
        desc = f"dpo/{flip:.0%}"
        cells = store.seeds(desc, seeds, lambda seed: _dpo_cell(methods, flip, seed, quick))  # noqa: B023
        res, dpo = {m: _col(cells, f"reward {m}") for m in methods}, _col(cells, "reward dpo (sigmoid)")
        label = {"flipped labels": f"{flip:.0%}"}
        rows.append({**label, **{m: _pm(v) for m, v in res.items()},
                     "r3m − dpo, points": _pm([100 * (a - b) for a, b in zip(res["r3m-dpo λ=.5"], dpo, strict=True)], 2)})  # fmt: skip
        win_rows.append({**label, **{m: _pm(_col(cells, f"win {m}")) for m in methods}})
        imp_rows.append({**label, **{m: _pm(_col(cells, f"implicit {m}")) for m in methods}})
        raw.append({**label, **_per_seed(cells)})
    return {
        "title": "B2: toy DPO bandit (exact expectations), normalised true reward",
        "setup": f"400 contexts × 8 candidates, {1500 if quick else 6000} pairs from π_ref, oracle labels flipped at "
        f"random, β = 0.1, Adam 1e-2, 3 epochs (the bandit's defaults); normalised reward (E_π r* − E_ref r*) / "
        f"(max r* − E_ref r*); {seeds} seed(s), {SE}",
        "targets": "R³M-DPO ≥ DPO + 5 points at 40 % flips and ≥ rDPO",
        "rows": rows,
        "per_seed": raw,
        "sections": [
            {
                "title": "B2: win rate against π_ref",
                "rows": win_rows,
                "setup": "the same runs: probability that a response drawn from the trained policy has a larger true "
                "reward than one drawn from π_ref, ties counted one half (`r3m.bandit.win_rate`), exact",
            },
            {
                "title": "B2: implicit-reward accuracy",
                "rows": imp_rows,
                "setup": "the same runs: share of all candidate pairs of every context whose implicit reward "
                "β log π/π_ref orders them as the true reward does (`r3m.bandit.implicit_accuracy`), exact",
            },
        ],
    }


# ---------------------------------------------------------------------------------------------- B3


def _standardise(mu: torch.Tensor, sd: torch.Tensor, *datasets: PreferenceData) -> list[PreferenceData]:
    """Each data set's features as ``(x − mu) / sd`` (the scale of :func:`_feature_scale` on the training pairs)."""
    return [PreferenceData((d.chosen - mu) / sd, (d.rejected - mu) / sd, d.ids, d.strength, d.corrupted,
                           d.chosen_mask, d.rejected_mask) for d in datasets]  # fmt: skip


def _feature_scale(train: PreferenceData) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [
        x if m is None else x[m] for x, m in ((train.chosen, train.chosen_mask), (train.rejected, train.rejected_mask))
    ]
    feats = torch.cat([x.reshape(-1, x.shape[-1]) for x in parts])  # the real steps only
    return feats.mean(0), feats.std(0).clamp_min(1e-6)


def _control_cell(pool: Any, make: Callable[[], Teacher], seed: int, n_pairs: int) -> Cell:
    """One seed of one B3 row: B1's methods on pairs of control segments, labels from ``make``."""
    rewards = pool.step_rewards if pool.step_rewards is not None else pool.returns
    half = len(pool) // 2
    gen = torch.Generator().manual_seed(seed)
    data = pair_segments(pool.features[:half], rewards[:half], n_pairs, make(), gen)
    test = pair_segments(pool.features[half:], rewards[half:], n_pairs // 2, Oracle(), gen)
    mu, sd = _feature_scale(data)
    data, test = _standardise(mu, sd, data, test)
    held_out = (pool.features[half:] - mu) / sd
    train, val = data.split(0.1, gen)  # a noisy validation split, as in B1
    trainers, best_lam = _fit_methods(train, val, functools.partial(TrainConfig, seed=seed))
    cell: Cell = {"λ by val": best_lam}
    for name, t in trainers.items():
        cell[f"acc {name}"] = t.accuracy(test)
    for name in ("bt", "r3m λ by val"):
        cell[f"pearson {name}"] = reward_correlation(trainers[name].predict(held_out), pool.returns[half:], "pearson")
    rep, bt_rep = trainers["r3m λ=.5"].outlier_report(train), trainers["bt"].outlier_report(train, lam=0.5)
    if rep.precision is not None:
        for key, value in (("P", rep.precision), ("R", rep.recall), ("bt_P", bt_rep.precision),
                           ("bt_R", bt_rep.recall), ("r3m_auroc", rep.margin_auroc),
                           ("bt_auroc", bt_rep.margin_auroc)):  # fmt: skip
            cell[key] = math.nan if value is None else value
    return cell


def _control_row(pool: Any, corruption: str, make: Callable[[], Teacher], seeds: int, n_pairs: int, desc: str,
                 store: CellStore) -> tuple[dict[str, Any], dict[str, list[float]]]:  # fmt: skip
    """One B3 row: B1's methods and metrics on a pool of control segments, labels from ``make``; and its per-seed
    values. ``desc`` names the row (environment, policy, segment length, labels) in the progress bar and the store."""
    cells = store.seeds(desc, seeds, lambda seed: _control_cell(pool, make, seed, n_pairs))
    acc = {k: _col(cells, f"acc {k}") for k in ("bt", "cbt", "rbt", "r3m λ=.5", "r3m λ by val")}
    row = {
        "labels": corruption, "bt": _pm(acc["bt"]), "cbt ε=.1": _pm(acc["cbt"]), "rbt ε=.1": _pm(acc["rbt"]),
        "r3m λ=.5": _pm(acc["r3m λ=.5"]), "r3m λ by val": _pm(acc["r3m λ by val"]),
        "r3m(val) − bt, points": _pm([100 * (a - b) for a, b in zip(acc["r3m λ by val"], acc["bt"], strict=True)], 2),
        "pearson r̂ vs R* (bt / r3m)": _pm2(_col(cells, "pearson bt"), _col(cells, "pearson r3m λ by val")),
        "λ by val (seeds)": _lam_counts(cells),
        "λ=.5 P / R": _pm2(_col(cells, "P"), _col(cells, "R")),
        "bt's flags d < 0: P / R": _pm2(_col(cells, "bt_P"), _col(cells, "bt_R")),
        "margin AUROC (r3m / bt)": _pm2(_col(cells, "r3m_auroc"), _col(cells, "bt_auroc")),
    }  # fmt: skip
    return row, _per_seed(cells)


B3_SIDE_CORRUPTIONS = ("flip 20%",)
"""The labels of B3's side table (segment length 1 and a random policy), to keep B3 under ten minutes on 2 cores."""


def bench_control(seeds: int, quick: bool, store: CellStore | None = None) -> Table:
    """B3: control segments scored by the environment's reward, with B1's labels, methods and metrics.

    The main table: segments of 25 steps of a noisy-sine policy under every corruption of B1 (quick:
    two); a side table at 20 % flips: segments of length 1 and 25 from the scripted and a random policy
    (quick: length 1, random policy).
    """
    from r3m.envs import Policy, collect_segments

    store = store or CellStore()
    envs = ["Pendulum-v1"]
    try:
        import mujoco  # noqa: F401

        envs.append("HalfCheetah-v5")
    except ImportError:
        logger.warning("mujoco is not installed: HalfCheetah-v5 left out (pip install 'r3m[mujoco]')")
    n_pairs = 1000 if quick else 4000
    corruptions = {k: CORRUPTIONS[k] for k in ("flip 20%", "myopic γ=.5")} if quick else CORRUPTIONS
    rows: list[dict[str, Any]] = []
    side: list[dict[str, Any]] = []
    rows_raw: list[dict[str, Any]] = []
    side_raw: list[dict[str, Any]] = []
    for env_id in envs:
        pool = collect_segments(env_id, n_segments=4 * n_pairs, seg_len=25, policy="noisy-sine", seed=0)
        main = {
            c: _control_row(pool, c, make, seeds, n_pairs, f"control/{env_id}/{c}", store)
            for c, make in corruptions.items()
        }
        rows += [{"env": env_id, **row} for row, _ in main.values()]
        rows_raw += [{"env": env_id, "labels": c, **raw} for c, (_, raw) in main.items()]
        combos: tuple[tuple[Policy, int], ...] = (
            (("random", 1),) if quick else (("noisy-sine", 1), ("random", 1), ("noisy-sine", 25), ("random", 25))
        )
        for policy, seg_len in combos:
            scripted_25 = (policy, seg_len) == ("noisy-sine", 25)
            other = (
                pool
                if scripted_25
                else collect_segments(env_id, n_segments=4 * n_pairs, seg_len=seg_len, policy=policy, seed=0)
            )
            for cname in B3_SIDE_CORRUPTIONS:
                row, raw = (
                    main[cname]
                    if scripted_25 and cname in main
                    else _control_row(
                        other,
                        cname,
                        CORRUPTIONS[cname],
                        seeds,
                        n_pairs,
                        f"control/{env_id}/{policy}/{seg_len}/{cname}",
                        store,
                    )
                )
                setting = {"env": env_id, "policy": policy, "segment length": seg_len}
                side.append({**setting, **row})
                side_raw.append({**setting, "labels": cname, **raw})
    protocol = (
        f"{n_pairs} training pairs (10 % of them a noisy validation split) and {n_pairs // 2} clean held-out pairs "
        "from disjoint halves of one rollout pool per environment, policy and segment length (rollout seed 0; the "
        "seeds vary the pairing, labels and initialisation); features standardised on the training pairs; 2×64 MLP, "
        f"Adam 3e-3, up to 5 epochs with early stopping on validation accuracy; R³M λ from {LAMBDA_GRID} by noisy "
        "validation accuracy, cBT / rBT at ε = .1; pearson: predicted score against the true return of every "
        "held-out segment; P / R of the flags at λ = .5 on the training pairs, and of BT's own flags (d < 0); "
        f"margin AUROC of each model's −margin; {seeds} seed(s), {SE}"
    )
    return {
        "title": "B3: control segments (gymnasium) with corrupted labels",
        "setup": f"segments of 25 steps of a noisy-sine scripted policy, the labels of B1 (flips 10-40 %, stochastic, "
        f"myopic, irrational) on the environment's own returns; {protocol}",
        "targets": "report (the paper's claims are PPO returns, out of CPU scope)",
        "rows": rows,
        "per_seed": rows_raw,
        "sections": [
            {
                "title": "B3 at 20 % flips: segments of length 1 and 25, scripted and random policy",
                "setup": "as the main table, with segments of 1 step (the length of the authors' control code) and "
                "25 steps (App. C) rolled out by the noisy-sine scripted policy and by a uniformly random one; the "
                "scripted 25-step rows repeat the main table's",
                "rows": side,
                "per_seed": side_raw,
            }
        ],
    }


# ---------------------------------------------------------------------------------------------- B4


def _block_time(fn: Callable[[], object], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def _round_ratios(
    fns: dict[str, Callable[[], object]], rounds: int, calls: int
) -> dict[str, tuple[float, float, float]]:
    """Median and quartiles over ``rounds`` of each function's time relative to the first one's.

    Each round times a block of ``calls`` back-to-back calls of every function, in an order rotated
    from round to round, and divides by the first function's block of the same round: the machine's
    drift (other load, clocks) cancels in the ratio instead of landing on whichever method ran then.
    """
    names = list(fns)
    blocks: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            blocks[name].append(_block_time(fns[name], calls))
    out = {}
    for name in names:
        ratios = [a / b for a, b in zip(blocks[name], blocks[names[0]], strict=True)]
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
        out[name] = (statistics.median(ratios), q1, q3)
    return out


def _train_step(model: SegmentRewardModel, opt: torch.optim.Optimizer,
                loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x_c: torch.Tensor,
                x_r: torch.Tensor) -> None:  # fmt: skip
    loss = loss_fn(model(x_c), model(x_r))
    opt.zero_grad()
    loss.backward()  # type: ignore[no-untyped-call]
    opt.step()


def bench_overhead(seeds: int, quick: bool, store: CellStore | None = None) -> Table:
    """B4: time per call (loss only) and per optimiser step (2×64 MLP, T=25, D=8) relative to BT.

    Not resumable (``store`` is unused): a timing run is only meaningful whole, and it takes about a minute."""
    del seeds, store
    rounds, calls = (3, 3) if quick else (15, 10)
    rows = []
    gen = torch.Generator().manual_seed(0)
    for batch in (64, 1024, 4096):
        c, r = torch.randn(batch, generator=gen), torch.randn(batch, generator=gen)
        x_c, x_r = torch.randn(batch, 25, 8, generator=gen), torch.randn(batch, 25, 8, generator=gen)
        model = SegmentRewardModel(8, generator=gen)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
            "bt": lambda a, b: bt_loss(a, b).mean(),
            "r3m": lambda a, b: r3m_loss(a, b, lam=0.5).loss,
            "bt (plain -logsigmoid)": lambda a, b: -F.logsigmoid(a - b).mean(),
        }
        for fn in losses.values():  # warm-up
            fn(c, r)
            _train_step(model, opt, fn, x_c, x_r)
        loss_only = _round_ratios({k: functools.partial(fn, c, r) for k, fn in losses.items()}, rounds, calls)
        step = _round_ratios(
            {k: functools.partial(_train_step, model, opt, fn, x_c, x_r) for k, fn in losses.items()}, rounds, calls
        )
        for name in losses:
            rows.append({"batch": batch, "loss": name, "loss_only_ratio_to_bt": loss_only[name][0],
                         "full_step_ratio_to_bt": step[name][0],
                         "full_step_ratio_quartiles": f"{step[name][1]:.3f} – {step[name][2]:.3f}"})  # fmt: skip
    return {
        "title": "B4: overhead against Bradley-Terry (ratios per round, interleaved)",
        "setup": f"torch threads {torch.get_num_threads()}; loss only, and a full Adam step of a 2×64 MLP on T=25, "
        f"D=8 segments; {rounds} rounds of {calls}-call blocks in an order rotated each round, the ratio to bt taken "
        "within each round: median and quartiles over the rounds; 'bt' includes the package's input validation like "
        "'r3m', the plain row does not",
        "targets": "≤ 1.05× per step at batch ≥ 1024 and ≤ 1.2× at 64",
        "rows": rows,
    }


BENCHMARKS: dict[str, Callable[[int, bool, CellStore], Table]] = {
    "synthetic": bench_synthetic,
    "dpo": bench_dpo,
    "control": bench_control,
    "overhead": bench_overhead,
}


def machine() -> dict[str, Any]:
    """CPU model, cores, threads, torch version and CUDA device of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}  # fmt: skip


def _git_sha(package_root: Path | None = None) -> str | None:
    """The commit of the checkout (``git describe --always``), with ``-dirty`` when the package's code differs from it.

    Only the package's ``src``, ``benchmarks`` (results left out) and ``pyproject.toml`` are compared, so the result
    files an earlier benchmark of the same run wrote, or edits elsewhere in the repository, do not mark a record
    dirty. ``package_root`` defaults to this installed package's folder; None outside a git checkout.
    """
    root = package_root or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "describe", "--always"], capture_output=True, text=True, check=False,
                             cwd=root).stdout.strip()  # fmt: skip
        if not sha:
            return None
        paths = ["src", "benchmarks", ":(exclude)benchmarks/results", "pyproject.toml"]
        status = subprocess.run(["git", "status", "--porcelain", "--", *paths], capture_output=True, text=True,
                                check=False, cwd=root)  # fmt: skip
        if status.returncode != 0:  # no verdict (a locked index, permissions): say so rather than "clean"
            return f"{sha}-status-unknown"
        return f"{sha}-dirty" if status.stdout.strip() else sha
    except OSError:
        return None


def render_markdown(table: Table, record: dict[str, Any]) -> str:
    """The Markdown page of one benchmark: title, setup, targets, table, command, machine, date."""
    rows = table["rows"]
    header = list(rows[0].keys()) if rows else []
    md = [f"# {table['title']}", "", f"Setup: {table['setup']}.", "", f"Targets: {table['targets']}.", ""]
    md.append(format_table(header, [[row[h] for h in header] for row in rows]))
    if table.get("notes"):
        md += ["", f"{table['notes']}."]
    for section in table.get("sections", []):
        columns = section.get("columns") or list(section["rows"][0].keys())
        md += ["", f"## {section['title']}", "", f"Setup: {section['setup']}.", ""]
        md.append(format_table(columns, [[row[h] for h in columns] for row in section["rows"]]))
    m = record["machine"]
    md += ["", f"Command: `{record['command']}`  ", f"Date: {record['date']}  ",
           f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), "
           f"CUDA: {m['cuda'] or 'none'}  ", f"r3m {record['version']}, commit {record['git_sha'] or 'unknown (not a git checkout)'}, "
           f"{record['seconds']:.0f} s"
           + (f" (this run; {record['resumed_cells']} seed cell(s) resumed from an interrupted one)"
              if record.get("resumed_cells") else ""), ""]  # fmt: skip
    return "\n".join(md)


class _Once(logging.Filter):
    """Lets each distinct message through once: a benchmark meets the same "undefined (nan)" warning of the metrics
    for every seed of a row, and its table already counts the NaNs."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


def check_run_args(
    *, only: str | None = None, quick: bool = False, seeds: int | None = None, out: Path | None = None
) -> tuple[int, Path]:
    """The seed count and output folder of :func:`run` from its arguments; ``ValueError`` naming the flag if one is
    bad (``--only``, ``--seeds``, ``--out``). Called by :func:`run` before anything runs, and by ``benchmarks/run.py``
    to turn only these errors into a usage error."""
    if only is not None and only not in BENCHMARKS:
        raise ValueError(f"--only must be one of {sorted(BENCHMARKS)}, got {only!r}")
    n_seeds = seeds if seeds is not None else (1 if quick else 5)
    if n_seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {n_seeds}")
    out = out or Path("bench-results")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder for the results, got the file {str(out)!r}")
    return n_seeds, out


def run(
    *,
    only: str | None = None,
    quick: bool = False,
    seeds: int | None = None,
    out: Path | None = None,
    fresh: bool = False,
    command: str | None = None,
) -> int:
    """Run the benchmarks (all, or ``only``), print each table and write JSON + Markdown to ``out``.

    Each benchmark keeps its finished cells (one seed of one row) in ``out/<name>.partial.json`` until its record is
    written, so the same command run again after an interrupt resumes where it stopped (:class:`CellStore`);
    ``fresh`` starts over. ``command`` is the command line the record names (default: this process's arguments).
    """
    n_seeds, out = check_run_args(only=only, quick=quick, seeds=seeds, out=out)
    out.mkdir(parents=True, exist_ok=True)
    names = [only] if only else list(BENCHMARKS)
    sha = _git_sha()  # read before the run: the tree may change while a long benchmark runs
    command = command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    once = _Once()
    metrics_log = logging.getLogger("r3m.metrics")
    metrics_log.addFilter(once)
    try:
        return _run(names, n_seeds, quick, out, fresh, sha, command)
    finally:
        metrics_log.removeFilter(once)


def _run(names: list[str], n_seeds: int, quick: bool, out: Path, fresh: bool, sha: str | None, command: str) -> int:
    """The loop of :func:`run`: each benchmark in turn, its cells kept by a :class:`CellStore` until its record is written."""
    for name in names:
        stem = f"{name}-quick" if quick else name
        meta = {"benchmark": name, "package": "r3m", "version": __version__, "git_sha": sha, "quick": quick}
        store = CellStore(out / f"{stem}.partial.json", meta, fresh=fresh)
        t0 = time.perf_counter()
        table = BENCHMARKS[name](n_seeds, quick, store)
        record = {
            "benchmark": name, "package": "r3m", "version": __version__, "git_sha": sha, "command": command,
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
            "seeds": n_seeds, "quick": quick, "seconds": time.perf_counter() - t0,
            "resumed_cells": store.reused, **table,
        }  # fmt: skip
        write_json(out / f"{stem}.json", record)
        md = render_markdown(table, record)
        (out / f"{stem}.md").write_text(md, encoding="utf-8")
        store.discard()
        print(md, flush=True)
    print(json.dumps({"written": str(out), "benchmarks": names}))
    return 0
