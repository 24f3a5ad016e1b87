"""Training (early stopping on dev, atomic checkpoints, bit-identical resume) and evaluation in original units.

:class:`Trainer` fits the time normaliser on the training gaps only (log for SMURF-THP, mean-scaling for the
MLE baselines and the EasyTPP anchors, read from the model's ``space`` attribute; a model with a ``prepare(train,
normalizer)`` method then takes the statistics it keeps itself), trains with Adam (betas 0.9/0.999, eps 1e-5, the
official choice) and a cosine learning-rate schedule, evaluates the loss on the dev split after every epoch
with a fixed noise seed, keeps the best dev state and stops after ``patience`` epochs without improvement.
A checkpoint (model, best state, optimiser, schedule, history, normaliser, configs, RNG state) is written
atomically after every epoch, so ``fit(..., resume=True)`` continues bit-identically.

:func:`predict` samples every predicted event of a data set (one row per event, in original units) and
:func:`evaluate` scores them with :func:`smurf_thp.metrics.summarize`, against the true process's oracle when
one is given; :func:`choose_steps` picks the Langevin step count on the **dev** split (the official code picks
it on test, spec §1.10).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from smurf_thp._version import __version__
from smurf_thp.data import Batch, EventDataset, batches
from smurf_thp.metrics import (
    calibration_score,
    oracle_calibration,
    pit,
    pit_histogram,
    pit_ks,
    quantile_levels,
    summarize,
)
from smurf_thp.normalize import TimeNormalizer
from smurf_thp.smurf import SamplerConfig

__all__ = ["History", "Prediction", "TrainConfig", "Trainer", "choose_steps", "evaluate", "load_checkpoint", "predict"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (``cpu-small`` defaults of the spec: batch 32, lr 1e-3, 20 epochs)."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    cosine_t_max: int = 64
    """``CosineAnnealingLR(T_max)`` in epochs (official: 64)."""
    patience: int = 5
    """epochs without a better dev loss before stopping."""
    grad_clip: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "cosine_t_max", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be None or > 0, got {self.grad_clip!r}")


_RESUME_FIXED = ("batch_size", "lr", "weight_decay", "cosine_t_max")
"""TrainConfig fields a resume must not change: the restored optimiser and schedule carry them (epochs,
patience and grad_clip may change, e.g. to extend a run)."""


@dataclasses.dataclass
class History:
    """One record per epoch: ``epoch``, ``train_loss``, ``train_time``, ``train_type``, ``dev_loss``, ``seconds``."""

    records: list[dict[str, float]] = dataclasses.field(default_factory=list)
    best_epoch: int = -1
    best_dev: float = float("inf")
    stopped_early: bool = False


def _space(model: nn.Module) -> str:
    return str(getattr(model, "space", "log"))


def _targets(batch: Batch, norm: TimeNormalizer) -> Tensor:
    """Normalised gaps of events ``1..L−1`` (padded positions hold a harmless 1 before transforming)."""
    gaps = torch.where(batch.mask[:, 1:], batch.gaps[:, 1:], torch.ones_like(batch.gaps[:, 1:]))
    return norm.transform(gaps)


class Trainer:
    """Fit a SMURF-THP (or baseline) model on a training set with early stopping on a dev set.

    Args:
        model: :class:`~smurf_thp.smurf.SMURFTHP` or a baseline with the same ``loss`` signature.
        config: :class:`TrainConfig`.
        device: ``"cpu"``, ``"cuda"`` or a ``torch.device``.
    """

    def __init__(self, model: nn.Module, config: TrainConfig | None = None, device: str | torch.device = "cpu") -> None:
        self.model: Any = model.to(device)
        self.config = config or TrainConfig()
        self.device = torch.device(device)
        self.normalizer: TimeNormalizer | None = None
        self.history = History()

    def _loss(self, ds: EventDataset, generator: torch.Generator, train: bool, opt: Any = None) -> dict[str, float]:
        assert self.normalizer is not None
        totals = {"loss": 0.0, "time": 0.0, "type": 0.0}
        n = 0
        self.model.train(train)
        shuffle_gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        for batch in batches(ds, self.config.batch_size, shuffle=train, generator=shuffle_gen, device=self.device):
            if int(batch.mask[:, 1:].sum()) == 0:
                continue
            with torch.set_grad_enabled(train or getattr(self.model.config, "objective", "dsm") == "hyvarinen"):
                out = self.model.loss(batch.types, batch.times, batch.mask, _targets(batch, self.normalizer), generator)
                if train:
                    opt.zero_grad()
                    out.total.backward()
                    if self.config.grad_clip is not None:
                        nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
                    opt.step()
            k = out.n_events
            totals["loss"] += float(out.total.detach()) * (k if self.model.config.reduction == "mean" else 1)
            totals["time"] += float(out.time) * k
            totals["type"] += float(out.type) * k
            n += k
        return {key: value / max(n, 1) for key, value in totals.items()}

    def fit(self, train: EventDataset, dev: EventDataset | None = None, *, checkpoint: str | Path | None = None,
            resume: bool = False, progress: bool = True) -> History:  # fmt: skip
        """Train; returns the :class:`History` and leaves the best dev state in the model.

        Raises:
            ValueError: a non-finite loss (with a hint), or a checkpoint of another model or data.
        """
        cfg = self.config
        torch.manual_seed(cfg.seed)
        opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-5,
                               weight_decay=cfg.weight_decay)  # fmt: skip
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.cosine_t_max)
        gen = torch.Generator().manual_seed(cfg.seed)
        best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        start, stale = 0, 0
        path = Path(checkpoint) if checkpoint is not None else None
        if resume and path is not None and path.is_file():
            # on the CPU: the generator states must stay CPU byte tensors (load_state_dict moves the rest)
            state = torch.load(path, weights_only=False, map_location="cpu")
            if state.get("model_class") != type(self.model).__name__ or state["model_config"] != dataclasses.asdict(
                self.model.config
            ):
                raise ValueError(f"checkpoint {path} was written for another model ({state.get('model_class')}) or "
                                 "configuration; not resuming")  # fmt: skip
            saved = state.get("train_config", {})
            changed = [k for k in _RESUME_FIXED if k in saved and saved[k] != getattr(cfg, k)]
            if changed:  # the optimiser and schedule would keep the saved values while config.json says otherwise
                shown = ", ".join(f"{k} {saved[k]!r} -> {getattr(cfg, k)!r}" for k in changed)
                raise ValueError(f"checkpoint {path} was trained with other settings ({shown}); not resuming")
            self.model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            self.normalizer = TimeNormalizer.from_state(state["normalizer"])
            self.history = state["history"]
            best_state, start, stale = state["best_state"], state["epoch"], state["stale"]
            if stale >= cfg.patience:  # the run had stopped early: nothing left to train
                start = cfg.epochs
        else:
            self.normalizer = TimeNormalizer(_space(self.model)).fit(train.all_gaps())
            prepare = getattr(self.model, "prepare", None)
            if callable(prepare):  # a model that keeps train statistics of its own (the EasyTPP anchors)
                prepare(train, self.normalizer)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.epochs, initial=start, desc="train", unit="epoch", disable=None)
        for epoch in range(start, cfg.epochs):
            t0 = time.perf_counter()
            tr = self._loss(train, gen, True, opt)
            sched.step()
            dev_loss = tr["loss"]
            if dev is not None:  # a fixed noise seed, so dev losses of different epochs compare
                dev_loss = self._loss(dev, torch.Generator().manual_seed(cfg.seed + 10_000), False)["loss"]
            if not np.isfinite(dev_loss):
                raise ValueError(f"non-finite loss at epoch {epoch}: lower the learning rate or raise sigma")
            record = {"epoch": float(epoch), "train_loss": tr["loss"], "train_time": tr["time"], "train_type": tr["type"],
                      "dev_loss": dev_loss, "seconds": time.perf_counter() - t0}  # fmt: skip
            self.history.records.append(record)
            if dev_loss < self.history.best_dev:
                self.history.best_dev, self.history.best_epoch, stale = dev_loss, epoch, 0
                best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            else:
                stale += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(train=f"{tr['loss']:.4f}", dev=f"{dev_loss:.4f}")
            if path is not None:
                self._save(path, opt, sched, gen, best_state, epoch + 1, stale)
            if stale >= cfg.patience:
                self.history.stopped_early = True
                break
        if bar is not None:
            bar.close()
        self.model.load_state_dict(best_state)
        self.model.eval()
        return self.history

    def _save(self, path: Path, opt: Any, sched: Any, gen: torch.Generator, best_state: dict[str, Tensor], epoch: int,
              stale: int) -> None:  # fmt: skip
        assert self.normalizer is not None
        state = {
            "package": "smurf-thp", "version": __version__, "model_class": type(self.model).__name__,
            "model_config": dataclasses.asdict(self.model.config), "train_config": dataclasses.asdict(self.config),
            "model": self.model.state_dict(), "best_state": best_state, "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
            "normalizer": self.normalizer.state_dict(), "history": self.history, "epoch": epoch, "stale": stale,
        }  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)


def load_checkpoint(path: str | Path, model_classes: dict[str, type[nn.Module]] | None = None,
                    device: str | torch.device = "cpu") -> tuple[Any, TimeNormalizer, dict[str, Any]]:  # fmt: skip
    """The best model, its normaliser and the checkpoint's record (configs, history, version).

    Raises:
        ValueError: not a smurf-thp checkpoint, another major version, or an unknown model class.
    """
    from smurf_thp.smurf import SMURFTHP, SMURFConfig

    state = torch.load(Path(path), weights_only=False, map_location=device)
    if not isinstance(state, dict) or state.get("package") != "smurf-thp":
        raise ValueError(f"{path} is not a smurf-thp checkpoint")
    if str(state["version"]).split(".")[0] != __version__.split(".")[0]:
        raise ValueError(f"{path} was written by smurf-thp {state['version']}, this is {__version__}")
    classes: dict[str, type[nn.Module]] = {"SMURFTHP": SMURFTHP, **(model_classes or {})}
    try:
        from smurf_thp import baselines

        classes.setdefault("FlexibleIntensityMLE", baselines.FlexibleIntensityMLE)
        classes.setdefault("THPIntensity", baselines.THPIntensity)
    except (ImportError, AttributeError):  # pragma: no cover - the baselines module is optional here
        pass
    config_class: Any = SMURFConfig
    if state["model_class"] == "EasyTPPAnchor" and "EasyTPPAnchor" not in classes:
        from smurf_thp.easytpp import EasyTPPAnchor, EasyTPPConfig  # building it raises ImportError without easy_tpp

        classes["EasyTPPAnchor"], config_class = EasyTPPAnchor, EasyTPPConfig
    cls = classes.get(state["model_class"])
    if cls is None:
        raise ValueError(f"{path}: unknown model class {state['model_class']!r}")
    model: Any = cls(config_class(**state["model_config"]))
    model.load_state_dict(state["best_state"])
    model.to(device).eval()
    return model, TimeNormalizer.from_state(state["normalizer"]), state


@dataclasses.dataclass
class Prediction:
    """Samples of every predicted event of a data set, one row per event, in original units."""

    tau: Tensor
    """``(N, S)`` sampled gaps."""
    types: Tensor
    """``(N, S)`` sampled types."""
    y: Tensor
    """``(N,)`` true gaps."""
    y_types: Tensor
    """``(N,)`` true types."""
    where: list[tuple[int, int]]
    """``(sequence index, j)`` of each row: the row predicts event ``j + 1`` of that sequence."""
    records: list[Tensor] = dataclasses.field(default_factory=list)
    """``(N, S)`` samples at every ``record_every`` Langevin steps (when asked)."""


@torch.no_grad()
def predict(model: Any, normalizer: TimeNormalizer, ds: EventDataset, sampler: SamplerConfig, *,
            seed: int = 0, batch_size: int = 64, device: str | torch.device = "cpu") -> Prediction:  # fmt: skip
    """Sample every predicted event of ``ds`` (gaps mapped back to original units)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    q05, q95 = normalizer.quantiles
    taus, kinds, ys, yk, where = [], [], [], [], []
    start = 0
    for batch in batches(ds, batch_size, device=device):
        out = model.sample(batch.types, batch.times, batch.mask, sampler, (q05, q95), gen)
        valid = batch.mask[:, 1:]
        taus.append(normalizer.inverse(out.tau)[valid])
        kinds.append(out.types[valid])
        ys.append(batch.gaps[:, 1:][valid])
        yk.append(batch.types[:, 1:][valid])
        for b in range(batch.types.shape[0]):
            where += [(start + b, j) for j in range(int(valid[b].sum()))]
        start += batch.types.shape[0]
    return Prediction(torch.cat(taus), torch.cat(kinds), torch.cat(ys).double(), torch.cat(yk), where)


def _oracle_cdf(process: Any, ds: EventDataset, where: Sequence[tuple[int, int]]) -> Any:
    def true_cdf_at(values: np.ndarray) -> np.ndarray:
        return np.stack([process.next_cdf(ds[i], j, values[r]) for r, (i, j) in enumerate(where)])

    return true_cdf_at


def evaluate(model: Any, normalizer: TimeNormalizer, ds: EventDataset, sampler: SamplerConfig, *,
             process: Any = None, seed: int = 0, quantiles: Sequence[float] | None = None,
             device: str | torch.device = "cpu") -> dict[str, Any]:  # fmt: skip
    """Every metric of :func:`smurf_thp.metrics.summarize` on ``ds`` (original units), with the oracle's when
    ``process`` (a :mod:`smurf_thp.simulate` process) is given, plus the PIT of the true gaps under the samples
    (randomised ranks): ``pit_hist`` (density in 10 bins, 1 everywhere when calibrated) and ``pit_ks`` (its
    Kolmogorov-Smirnov distance from uniform)."""
    pred = predict(model, normalizer, ds, sampler, seed=seed, device=device)
    q = tuple(quantiles) if quantiles is not None else quantile_levels(0.05)
    true_cdf = _oracle_cdf(process, ds, pred.where) if process is not None else None
    out = summarize(pred.tau, pred.y, types_sampled=pred.types, types_true=pred.y_types, quantiles=q,
                    true_cdf=true_cdf)  # fmt: skip
    u = pit(pred.tau, pred.y, randomized=True, generator=torch.Generator().manual_seed(seed))
    out["pit_hist"] = [float(v) for v in pit_histogram(u, bins=10)[0]]
    out["pit_ks"] = pit_ks(u)
    return out


def choose_steps(model: Any, normalizer: TimeNormalizer, dev: EventDataset, sampler: SamplerConfig, *,
                 record_every: int = 100, seed: int = 0, process: Any = None,
                 device: str | torch.device = "cpu") -> tuple[int, dict[int, float]]:  # fmt: skip
    """The Langevin step count (a multiple of ``record_every`` up to ``sampler.n_steps``) with the best dev
    calibration score (the empirical one by default; the oracle's when ``process`` is given — only for studies,
    since it tunes on the truth); returns ``(steps, {steps: CS})``."""
    from smurf_thp.sampling import draw, langevin
    from smurf_thp.smurf import SMURFTHP

    if not isinstance(model, SMURFTHP):
        raise ValueError(f"model must be a SMURFTHP (a Langevin sampler), got {type(model).__name__}, which samples "
                         "arrival times exactly")  # fmt: skip
    q = quantile_levels(0.05)
    q05, q95 = normalizer.quantiles
    gen = torch.Generator().manual_seed(seed)
    scores: dict[int, float] = {}
    rows: dict[int, list[Tensor]] = {}
    ys, where = [], []
    start = 0
    with torch.no_grad():
        for batch in batches(dev, 64, device=device):
            h = model.encode(batch.types, batch.times, batch.mask)
            shape = (*h.shape[:-1], sampler.n_samples)
            x0 = q05 + (q95 - q05) * draw("uniform", shape, h, gen)

            def score(x: Tensor, h: Tensor = h) -> Tensor:
                out: Tensor = model.time_head.score(h, x)
                return out

            _, recs = langevin(score, x0, sampler.step, sampler.n_steps,
                               denoise_sigma=model.config.sigma if sampler.denoise else None,
                               boundary=sampler.boundary, lower=sampler.lower, generator=gen,
                               record_every=record_every)  # fmt: skip
            valid = batch.mask[:, 1:]
            for k, rec in enumerate(recs, start=1):
                rows.setdefault(k * record_every, []).append(normalizer.inverse(rec)[valid])
            ys.append(batch.gaps[:, 1:][valid])
            for b in range(batch.types.shape[0]):
                where += [(start + b, j) for j in range(int(valid[b].sum()))]
            start += batch.types.shape[0]
    y = torch.cat(ys).double()
    for steps, parts in rows.items():
        samples = torch.cat(parts)
        if process is not None:
            scores[steps] = float(oracle_calibration(samples, _oracle_cdf(process, dev, where), q))
        else:
            from smurf_thp.metrics import coverage

            scores[steps] = float(calibration_score(coverage(samples, y, q), q))
    if not scores:
        raise ValueError(f"record_every ({record_every}) must be at most sampler.n_steps ({sampler.n_steps})")
    best = min(scores, key=lambda s: (scores[s], s))
    return best, scores
