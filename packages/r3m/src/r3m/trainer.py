"""Reward-model training with R³M or a baseline, and the outlier report: a thin shell over the losses.

Minibatch Adam steps on the eliminated R³M loss (the alternating δ-step / φ-step of eqs. 3.4-3.5
in one pass: δ is closed-form), optional early stopping on validation accuracy (an over-trained
model memorises outliers, spec §7), tqdm progress, an atomic checkpoint after every epoch and a
``resume`` that continues bit-identically. The outlier report is computed with the final model in
a separate pass, never from stale per-step δ.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import numbers
import os
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from r3m._version import __version__
from r3m.baselines import bt_loss, conservative_loss, hinge_loss, ipo_loss, unbiased_loss
from r3m.config import TrainConfig
from r3m.data import PreferenceData, atomic_replace
from r3m.functional import NonFiniteMarginsError, r3m_delta, r3m_loss
from r3m.metrics import outlier_auroc, outlier_precision_recall, preference_accuracy
from r3m.reward_model import SegmentRewardModel

logger = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]
CHECKPOINT = "checkpoint.pt"


def make_loss(config: TrainConfig) -> LossFn:
    """``(chosen_rewards, rejected_rewards) -> (mean loss, δ or None)`` for ``config.loss``."""
    if config.loss == "r3m":

        def r3m(c: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            out = r3m_loss(c, r, lam=config.lam, check_finite=True)  # the trainer syncs every step anyway
            return out.loss, out.delta

        return r3m
    per_pair: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "bt": bt_loss,
        "cbt": lambda c, r: conservative_loss(c, r, eps=config.eps),
        "rbt": lambda c, r: unbiased_loss(c, r, eps=config.eps),
        "ipo": lambda c, r: ipo_loss(c, r, beta=config.beta),
        "hinge": lambda c, r: hinge_loss(c, r, beta=config.beta),
    }
    fn = per_pair[config.loss]
    return lambda c, r: (fn(c, r).mean(), None)


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when available; an unavailable ``cuda`` is a ``ValueError``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available; use 'cpu' or 'auto'")
    return torch.device(device)


@dataclasses.dataclass
class History:
    """Per-epoch records of a run and the epoch kept by early stopping."""

    epochs: list[dict[str, float]] = dataclasses.field(default_factory=list)
    best_epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "best_epoch": self.best_epoch}


@dataclasses.dataclass(frozen=True)
class OutlierReport:
    """Which pairs R³M flags as label outliers under the trained model, for a label audit."""

    ids: list[str]
    """pair ids, in data order."""
    margins: torch.Tensor
    """``(N,)`` d_i = r(z_w) − r(z_l) under the trained model."""
    delta: torch.Tensor
    """``(N,)`` δ_i = max(t_λ − d_i, 0) (eq. 3.4)."""
    flagged: torch.Tensor
    """``(N,)`` bool, δ_i > 0."""
    precision: float | None
    """share of flagged pairs that are corrupted (when the truth is known)."""
    recall: float | None
    """share of corrupted pairs that are flagged (when the truth is known)."""
    auroc: float | None
    """AUROC of δ as a corruption score (ties at δ = 0 count ½)."""
    margin_auroc: float | None
    """AUROC of −d (the detection baseline any model gives, e.g. Bradley-Terry's margin)."""

    def top(self, k: int = 20) -> list[dict[str, Any]]:
        """The ``k`` pairs with the largest δ: id, margin, δ (``k`` ≥ 0; all pairs when ``k`` exceeds them).

        Ordered by margin, smallest first: for the flagged pairs that is δ = max(t_λ − d, 0) largest first, and
        the unflagged (δ = 0) ones follow, the most nearly flagged first (in data order they said nothing).
        """
        value: object = k  # checked as given: numpy integers are Integral, bools and floats are refused
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"k must be an integer >= 0, got {k!r}")
        k = int(value)
        order = torch.argsort(self.margins, stable=True)[:k]
        return [
            {"id": self.ids[i], "margin": float(self.margins[i]), "delta": float(self.delta[i])} for i in order.tolist()
        ]

    def to_dict(self, k: int = 20) -> dict[str, Any]:
        return {
            "n": len(self.ids), "flagged": int(self.flagged.sum()), "flagged_share": int(self.flagged.sum()) / len(self.ids),
            "precision": self.precision, "recall": self.recall, "auroc": self.auroc,
            "margin_auroc": self.margin_auroc, "top": self.top(k),
        }  # fmt: skip


def _divergence_hint(cfg: TrainConfig) -> str:
    """What to change after a diverged run: the learning rate, or the loss's own scale where it has one."""
    names = {"r3m": ("lam",), "cbt": ("eps",), "rbt": ("eps",), "ipo": ("beta",), "hinge": ("beta",)}.get(cfg.loss, ())
    settings = ", ".join(f"{name}={getattr(cfg, name):g}" for name in names)
    return f"lower lr (now {cfg.lr:g})" + (f" or check the loss's settings ({settings})" if settings else "")


class RewardTrainer:
    """Train a :class:`~r3m.reward_model.SegmentRewardModel` on (possibly corrupted) preference pairs.

    Args:
        config: :class:`~r3m.config.TrainConfig` (loss, λ, optimiser, early stopping).

    Example:
        >>> from r3m.synthetic import make_preference_data
        >>> data, truth = make_preference_data(256, T=2, D=3, generator=torch.Generator().manual_seed(0))
        >>> trainer = RewardTrainer(TrainConfig(epochs=1, early_stopping="none"))
        >>> len(trainer.fit(data, progress=False).epochs)
        1
    """

    def __init__(self, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()
        self.device = resolve_device(self.config.device)
        self.loss_fn = make_loss(self.config)
        self.model: SegmentRewardModel | None = None

    def _build(
        self, obs_dim: int, act_dim: int = 0
    ) -> tuple[SegmentRewardModel, torch.optim.Optimizer, torch.Generator]:
        gen = torch.Generator().manual_seed(self.config.seed)
        model = SegmentRewardModel(
            obs_dim, act_dim, hidden=self.config.hidden, discount=self.config.discount, generator=gen
        )
        model = model.to(self.device)
        opt = torch.optim.Adam(model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        return model, opt, gen

    def fit(
        self,
        train: PreferenceData,
        val: PreferenceData | None = None,
        *,
        out_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        overwrite: bool = False,
        progress: bool | None = None,
        callback: Callable[[int, dict[str, float]], None] | None = None,
    ) -> History:
        """Train; with ``early_stopping="val_accuracy"`` and ``val``, keep the best epoch's weights.

        Args:
            train: training pairs (chosen preferred by the possibly corrupted label).
            val: validation pairs (the paper selects λ and the epoch on a *noisy* split).
            out_dir: folder for ``checkpoint.pt`` (atomic, every epoch), ``model.pt``, ``history.json``.
            resume: continue from ``out_dir/checkpoint.pt``; equals an uninterrupted run bit for bit.
                Only ``epochs`` (train on to more; a run that stopped early stays stopped) and
                ``device`` may differ from the checkpoint's config. A run with nothing left to train (all
                ``epochs`` done, or stopped early) is kept as it is, with a ``UserWarning`` saying so.
            overwrite: start a new run in an ``out_dir`` that holds one (without it, that is an error).
            progress: tqdm bar (None: only on a terminal).
            callback: ``callback(epoch, record)`` after each epoch and its checkpoint; may raise to stop.

        Returns:
            :class:`History` (per-epoch loss, accuracies, flagged share; the epoch kept).

        Raises:
            ValueError: ``resume`` without a checkpoint, or with other settings (``epochs`` and ``device``
                aside), feature dimension or data, or with fewer ``epochs`` than it completed; ``out_dir``
                holding a run without ``resume`` or ``overwrite``.
        """
        cfg = self.config
        obs_dim = int(train.chosen.shape[-1])
        if val is not None and int(val.chosen.shape[-1]) != obs_dim:  # else it fails after an epoch, naming x
            raise ValueError(
                f"val has {int(val.chosen.shape[-1])} features per step and train {obs_dim}: they must match"
            )
        model, opt, gen = self._build(obs_dim)
        history = History()
        start, best_val, bad_epochs = 0, -math.inf, 0
        best_state: dict[str, torch.Tensor] | None = None
        out = Path(out_dir) if out_dir is not None else None
        if resume and overwrite:
            raise ValueError("resume=True continues the run in out_dir and overwrite=True replaces it: pass one")
        if resume and out is None:
            raise ValueError("resume=True continues the run in out_dir: pass the out_dir of the run")
        if out is not None and out.exists() and not out.is_dir():
            raise ValueError(f"out_dir {out} is a file; give a folder for the run")
        if out is not None and not resume and (out / CHECKPOINT).is_file():
            if not overwrite:
                raise ValueError(
                    f"out_dir {out} holds a run ({CHECKPOINT}); pass resume=True to continue it, overwrite=True to "
                    "replace it, or another out_dir"
                )
            for name in (CHECKPOINT, "model.pt", "history.json"):  # none of the old run may outlive the new one
                (out / name).unlink(missing_ok=True)
        if resume:
            if out is None or not (out / CHECKPOINT).is_file():
                raise ValueError(f"resume=True needs a checkpoint at {out}/{CHECKPOINT}; none was found")
            state = _load(out / CHECKPOINT)
            _check_resumable(state, cfg, obs_dim, out / CHECKPOINT)
            if state.get("data") != _fingerprint(train, val):
                raise ValueError(
                    f"checkpoint at {out / CHECKPOINT} was written for other training/validation data; "
                    "resume with the same data and split, or start a new run in another folder"
                )
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            history = History(state["history"]["epochs"], state["history"]["best_epoch"])
            start, best_val, bad_epochs, best_state = (
                state["epoch"],
                state["best_val"],
                state["bad_epochs"],
                state["best_state"],
            )
            _warn_if_finished(out, cfg, start, bad_epochs, history.best_epoch, val is not None)
        self.model = model
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        stopping = cfg.early_stopping == "val_accuracy" and val is not None
        n, bs = len(train), cfg.batch_size
        chosen, rejected = train.chosen.to(self.device, torch.float32), train.rejected.to(self.device, torch.float32)
        mask_c, mask_r = (None if m is None else m.to(self.device) for m in (train.chosen_mask, train.rejected_mask))
        fingerprint = _fingerprint(train, val)
        for epoch in range(start, cfg.epochs):
            if stopping and bad_epochs >= cfg.patience:
                break
            model.train()
            order = torch.randperm(n, generator=gen)
            total, flagged = 0.0, 0
            disable = None if progress is None else not progress
            for i in tqdm(range(0, n, bs), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=disable, leave=False):
                idx = order[i : i + bs].to(self.device)
                r_w = model(chosen[idx], None if mask_c is None else mask_c[idx])
                r_l = model(rejected[idx], None if mask_r is None else mask_r[idx])
                try:
                    loss, delta = self.loss_fn(r_w, r_l)
                except NonFiniteMarginsError as exc:  # the run diverged: say where and what to change
                    raise ValueError(
                        f"training diverged in epoch {epoch + 1}: {exc}; {_divergence_hint(self.config)}"
                    ) from exc
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                total += float(loss.detach()) * len(idx)
                if delta is not None:
                    flagged += int((delta > 0).sum())
            if not math.isfinite(total) or not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                raise ValueError(  # before the accuracy below reads the broken model ("scores contain NaN")
                    f"training diverged in epoch {epoch + 1}: the loss or the weights are no longer finite; "
                    f"{_divergence_hint(self.config)}"
                )
            record: dict[str, float] = {
                "epoch": epoch + 1,
                "train_loss": total / n,
                "train_accuracy": self.accuracy(train),
            }
            if delta is not None:
                record["flagged_share_during_epoch"] = flagged / n
            if val is not None:
                record["val_accuracy"] = self.accuracy(val)
            history.epochs.append(record)
            if stopping:
                if record["val_accuracy"] > best_val:
                    best_val, bad_epochs, history.best_epoch = record["val_accuracy"], 0, epoch + 1
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    bad_epochs += 1
            logger.info("epoch %d: %s", epoch + 1, record)
            if out is not None:
                _atomic_save({"data": fingerprint, "model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                              "history": history.to_dict(), "epoch": epoch + 1, "best_val": best_val,
                              "bad_epochs": bad_epochs, "best_state": best_state, "config": cfg.to_dict(),
                              "obs_dim": obs_dim, "version": __version__}, out / CHECKPOINT)  # fmt: skip
            if callback is not None:
                callback(epoch + 1, record)
        if stopping and best_state is not None:
            model.load_state_dict(best_state)
        if history.best_epoch is None:
            history.best_epoch = len(history.epochs)
        if out is not None:
            self.save(out / "model.pt")
            _atomic_write_text(out / "history.json", json.dumps(history.to_dict(), indent=2))
        return history

    def _require_model(self) -> SegmentRewardModel:
        if self.model is None:
            raise RuntimeError("the trainer has no model yet: call fit() or load() first")
        return self.model

    @torch.no_grad()
    def predict(self, segments: torch.Tensor, batch_size: int = 4096, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Segment scores r_φ(z), ``(N, T, D) -> (N,)``, on the CPU; ``mask`` ``(N, T)`` marks the real steps."""
        model = self._require_model()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if not isinstance(segments, torch.Tensor) or segments.ndim != 3 or segments.shape[-1] != model.in_dim:
            shown = tuple(segments.shape) if isinstance(segments, torch.Tensor) else type(segments).__name__
            raise ValueError(f"segments must have shape (N, T, D={model.in_dim}) as in training, got {shown}")
        model.eval()
        parts = [
            model(
                segments[i : i + batch_size].to(self.device, torch.float32),
                None if mask is None else mask[i : i + batch_size].to(self.device),
            ).cpu()
            for i in range(0, len(segments), batch_size)
        ]
        return torch.cat(parts)

    def margins(self, data: PreferenceData) -> torch.Tensor:
        """``(N,)`` margins r(z_w) − r(z_l) of the trained model (over each segment's real steps)."""
        return self.predict(data.chosen, mask=data.chosen_mask) - self.predict(data.rejected, mask=data.rejected_mask)

    def accuracy(self, data: PreferenceData) -> float:
        """Share of pairs ranked as labelled (ties count 0.5)."""
        return preference_accuracy(
            self.predict(data.chosen, mask=data.chosen_mask), self.predict(data.rejected, mask=data.rejected_mask)
        )

    def outlier_report(self, data: PreferenceData, lam: float | None = None) -> OutlierReport:
        """δ_i of every pair under the trained model; precision/recall/AUROC when ``data.corrupted`` is known.

        Args:
            data: the (training) pairs to audit.
            lam: λ defining the threshold t_λ (default: the config's λ; any model, BT included, can be audited).
        """
        lam = self.config.lam if lam is None else lam
        d = self.margins(data)
        delta = r3m_delta(d, lam)
        flagged = delta > 0
        precision = recall = auroc = margin_auroc = None
        if data.corrupted is not None:
            precision, recall = outlier_precision_recall(flagged, data.corrupted)
            auroc = outlier_auroc(delta, data.corrupted)
            margin_auroc = outlier_auroc(-d, data.corrupted)
        return OutlierReport(list(data.ids), d, delta, flagged, precision, recall, auroc, margin_auroc)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model, config and package version atomically."""
        model = self._require_model()
        _atomic_save({"model": model.state_dict(), "config": self.config.to_dict(), "obs_dim": model.obs_dim,
                      "act_dim": model.act_dim, "version": __version__}, Path(path))  # fmt: skip

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str = "cpu") -> RewardTrainer:
        """A trainer holding the model saved at ``path`` (``model.pt`` of a run)."""
        state = _load(Path(path))
        with warnings.catch_warnings():  # the run's settings were warned about when it trained
            warnings.simplefilter("ignore", UserWarning)
            config = dataclasses.replace(TrainConfig.from_dict(state["config"]), device=device)
        trainer = cls(config)
        model, _, _ = trainer._build(int(state["obs_dim"]), int(state.get("act_dim", 0)))  # no act_dim before 0.1.0
        model.load_state_dict(state["model"])
        trainer.model = model
        return trainer


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The dict a run's ``checkpoint.pt`` or ``model.pt`` holds (``config``, ``model``, ...), read on the CPU."""
    return _load(Path(path))


def _load(path: Path) -> dict[str, Any]:
    """``torch.load`` on the CPU (the generator state must stay a CPU tensor); unreadable -> ValueError."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # no pickled code
    except OSError as exc:
        raise ValueError(f"cannot read the checkpoint {path}: {exc.strerror or exc}") from exc
    except (RuntimeError, EOFError, pickle.UnpicklingError) as exc:  # torch's text runs to several lines
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ValueError(
            f"cannot read the checkpoint {path}: not a file torch.save wrote, or damaged ({first})"
        ) from exc
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"{path} is not an r3m checkpoint (no 'model' and 'config' entries)")
    return state


def _warn_if_finished(out: Path, cfg: TrainConfig, done: int, bad_epochs: int, best: int | None, val: bool) -> None:
    """A resumed run with nothing left to train says so, instead of returning the same model silently."""
    if cfg.early_stopping == "val_accuracy" and val and bad_epochs >= cfg.patience:  # more epochs would not help
        why = (f"it stopped early after epoch {done} (no better validation accuracy for {bad_epochs} epoch(s), "
               f"patience {cfg.patience}; the model kept is epoch {best}'s). A run that stopped stays stopped: to "
               "train longer, start a new one with a larger patience (TrainConfig.patience; CLI: in a --config file)")  # fmt: skip
    elif done >= cfg.epochs:
        why = f"it already trained all {done} epoch(s); resume with epochs > {done} to train on"
    else:
        return
    warnings.warn(f"nothing to resume in {out}: {why}", UserWarning, stacklevel=3)


# Settings a resume may change: the number of epochs (train on), and the device (then the continuation
# is no longer bit-identical to an uninterrupted run on one device).
_RESUME_MAY_CHANGE = ("epochs", "device")


def _check_resumable(state: dict[str, Any], config: TrainConfig, obs_dim: int, path: Path) -> None:
    """Refuse a checkpoint written with another config (``epochs``/``device`` aside) or feature dimension."""
    saved = {k: v for k, v in state["config"].items() if k not in _RESUME_MAY_CHANGE}
    wanted = {k: v for k, v in config.to_dict().items() if k not in _RESUME_MAY_CHANGE}
    differ = [f"{k} ({saved.get(k)!r} there, {wanted.get(k)!r} here)" for k in sorted(saved.keys() | wanted.keys())
              if saved.get(k) != wanted.get(k)]  # fmt: skip
    if state["obs_dim"] != obs_dim:
        differ.append(f"feature dimension ({state['obs_dim']} there, {obs_dim} here)")
    if differ:
        raise ValueError(
            f"checkpoint at {path} was written with other settings: {'; '.join(differ)}. Only "
            f"{' and '.join(_RESUME_MAY_CHANGE)} may change on resume; start a new run in another folder"
        )
    if int(state["epoch"]) > config.epochs:
        raise ValueError(
            f"checkpoint at {path} has completed {state['epoch']} epochs, more than epochs={config.epochs}; "
            f"resume with epochs >= {state['epoch']}"
        )


def _fingerprint(train: PreferenceData, val: PreferenceData | None) -> str:
    """A digest of the ids, features, masks and corruption flags of the training (and validation) data."""
    h = hashlib.sha256()
    for part in (train, val):
        if part is not None:
            h.update(repr((len(part), tuple(part.chosen.shape))).encode())
            h.update("\x1f".join(part.ids).encode())
            for tag, t in (("", part.chosen), ("", part.rejected), ("", part.corrupted),
                           ("chosen_mask", part.chosen_mask), ("rejected_mask", part.rejected_mask)):  # fmt: skip
                if t is not None:
                    h.update(tag.encode())  # masks are tagged by name; data without them hash as before
                    t = t.detach().cpu().contiguous()
                    h.update(
                        (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
                    )  # numpy has no bf16
    return h.hexdigest()


def _atomic_save(obj: object, path: Path) -> None:
    with atomic_replace(path) as tmp:
        torch.save(obj, tmp)


def _atomic_write_text(path: Path, text: str) -> None:
    with atomic_replace(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
