"""Reward-model training with the adaptive loss or a baseline: a thin shell around the pure losses.

One SGD (Adam) step per minibatch, τ re-solved on every visit from the current margins (the
paper's Algorithm 1 keeps no τ across steps), progress with tqdm, an atomic checkpoint after every
epoch and ``resume`` that continues bit-identically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import pickle
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from adapref._version import __version__
from adapref.baselines import bt_loss, hinge_loss, ipo_loss
from adapref.config import TrainConfig
from adapref.data import PreferenceData, atomic_replace
from adapref.functional import adaptive_preference_loss
from adapref.metrics import preference_accuracy, spearman, spearman_ceiling, strength_quantile_table, tau_histogram
from adapref.reward_model import SegmentRewardModel
from adapref.scaling import LOG2, NonFiniteMarginsError, solve_tau

logger = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]
CHECKPOINT = "checkpoint.pt"


@contextlib.contextmanager
def _rho0_warned() -> Iterator[None]:
    """Silence the solver's ``rho0 >= log 2`` warning, which the ``TrainConfig`` already gave once."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"rho0 = .* >= log 2", category=UserWarning)
        yield


def make_loss(config: TrainConfig) -> LossFn:
    """``(chosen_rewards, rejected_rewards) -> (mean loss, τ or None)`` for ``config.loss``."""
    if config.loss in ("ada", "ada-quad"):

        def ada(c: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            out = adaptive_preference_loss(
                c,
                r,
                rho0=config.rho0,
                tau0=config.tau0,
                tau_max=config.tau_max,
                solver=config.solver,  # type: ignore[arg-type]  # validated by TrainConfig
                n_iter=config.n_iter,
                tau_init=config.tau_init,
                quadratic=config.loss == "ada-quad",
                clamp_tau_max=config.clamp_tau_max,
                check_finite=True,  # the trainer syncs every step anyway
            )
            return out.loss, out.tau

        return ada
    if config.loss == "bt":
        return lambda c, r: (bt_loss(c, r, temperature=config.temperature).mean(), None)
    if config.loss == "hinge":
        return lambda c, r: (hinge_loss(c, r, beta=config.beta).mean(), None)
    return lambda c, r: (ipo_loss(c, r, beta=config.beta).mean(), None)


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when available; an unavailable ``cuda`` is a ``ValueError``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available; use 'cpu' or 'auto'")
    return torch.device(device)


@dataclasses.dataclass
class History:
    """Per-epoch records of a run (JSON-serialisable)."""

    epochs: list[dict[str, float]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs}


@dataclasses.dataclass(frozen=True)
class TauReport:
    """The learned scaling factors of a data set and their relation to preference strength."""

    tau: torch.Tensor
    """``(N,)`` τ_i solved at the trained model's margins."""
    margins: torch.Tensor
    """``(N,)`` d_i = r(z_w) − r(z_l) of the trained model."""
    histogram: dict[str, Any]
    """:func:`adapref.metrics.tau_histogram` of τ over [τ0, τ_max]."""
    quantile_table: list[dict[str, float | int]] | None
    """mean τ per strength quintile (paper Fig. 5b), when the data carry the true strength."""
    spearman: float | None
    """Spearman correlation of τ with the true strength, when known."""
    spearman_ceiling: float | None = None
    """The largest Spearman any τ with the same numbers of pairs at τ0 and at τmax could reach
    (:func:`adapref.metrics.spearman_ceiling`), when the strength is known."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "histogram": self.histogram,
            "quantile_table": self.quantile_table,
            "spearman": self.spearman,
            "spearman_ceiling": self.spearman_ceiling,
            "tau_mean": float(self.tau.mean()),
        }


def _divergence_hint(cfg: TrainConfig) -> str:
    """What to change after a diverged run: the learning rate, or the loss's own scale where it has one."""
    names = {
        "ada": ("rho0", "tau0", "tau_max"),
        "ada-quad": ("rho0", "tau0", "tau_max"),
        "ipo": ("beta",),
        "hinge": ("beta",),
    }.get(cfg.loss, ())
    settings = ", ".join(f"{name}={getattr(cfg, name):g}" for name in names)
    return f"lower lr (now {cfg.lr:g})" + (f" or check the loss's settings ({settings})" if settings else "")


class RewardTrainer:
    """Train a :class:`~adapref.reward_model.SegmentRewardModel` on preference pairs.

    Args:
        config: :class:`~adapref.config.TrainConfig` (loss, τ hyperparameters, optimiser).

    Example:
        >>> from adapref.synthetic import make_preference_data
        >>> data, truth = make_preference_data(256, T=2, D=3, generator=torch.Generator().manual_seed(0))
        >>> trainer = RewardTrainer(TrainConfig(epochs=1))
        >>> history = trainer.fit(data, progress=False)
        >>> len(history.epochs)
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
        model = SegmentRewardModel(obs_dim, act_dim, hidden=self.config.hidden, generator=gen).to(self.device)
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
        """Train for ``config.epochs`` epochs; checkpoint to ``out_dir`` after each epoch.

        Args:
            train: training pairs (chosen preferred).
            val: optional validation pairs: accuracy is recorded after each epoch.
            out_dir: folder for ``checkpoint.pt`` (atomic, after every epoch; it holds the history so far),
                and, once training ends, ``history.json`` and ``model.pt``.
            resume: continue from ``out_dir/checkpoint.pt`` (model, optimiser, RNG, history);
                the result equals an uninterrupted run bit for bit. Only ``epochs`` (train on to
                more) and ``device`` may differ from the checkpoint's config. A run that already trained
                all ``epochs`` is kept as it is, with a ``UserWarning`` saying so.
            overwrite: start a new run in an ``out_dir`` that holds one (without it, that is an error).
            progress: show a tqdm bar (None: only on a terminal).
            callback: called as ``callback(epoch, record)`` after each epoch (and its checkpoint);
                it may raise to stop the run, which ``resume`` then continues.

        Returns:
            :class:`History` of per-epoch train loss, train/val accuracy and mean τ.

        Raises:
            ValueError: ``resume`` without a checkpoint, or a checkpoint whose settings (``epochs`` and
                ``device`` aside), feature dimension or data differ from this run's, or that completed
                more epochs than ``epochs``; ``out_dir`` holding a run without ``resume`` or ``overwrite``.
        """
        obs_dim = int(train.chosen.shape[-1])
        if val is not None and int(val.chosen.shape[-1]) != obs_dim:  # else it fails after an epoch, naming x
            raise ValueError(
                f"val has {int(val.chosen.shape[-1])} features per step and train {obs_dim}: they must match"
            )
        model, opt, gen = self._build(obs_dim)
        history = History()
        start = 0
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
            _check_resumable(state, self.config, obs_dim, out / CHECKPOINT)
            if state.get("data") != _fingerprint(train, val):
                raise ValueError(
                    f"checkpoint at {out / CHECKPOINT} was written for other training/validation data; "
                    "resume with the same data and split, or start a new run in another folder"
                )
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            history = History(state["history"]["epochs"])
            start = state["epoch"]
            logger.info("resumed from %s at epoch %d", out / CHECKPOINT, start)
            if start >= self.config.epochs:  # say so, rather than return the same model silently
                warnings.warn(
                    f"nothing to resume in {out}: it already trained all {start} epoch(s); resume with epochs > "
                    f"{start} to train on",
                    UserWarning,
                    stacklevel=2,
                )
        self.model = model
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)

        n = len(train)
        bs = self.config.batch_size
        chosen = train.chosen.to(self.device, torch.float32)
        rejected = train.rejected.to(self.device, torch.float32)
        mask_c, mask_r = (None if m is None else m.to(self.device) for m in (train.chosen_mask, train.rejected_mask))
        fingerprint = _fingerprint(train, val)
        # TrainConfig warned that τ ≡ τ0 (ρ0 ≥ log 2) when it was made: the loss need not, every step
        with _rho0_warned() if self.config.loss == "ada" and self.config.rho0 >= LOG2 else contextlib.nullcontext():
            for epoch in range(start, self.config.epochs):
                model.train()
                order = torch.randperm(n, generator=gen)
                total, taus = 0.0, []
                disable = None if progress is None else not progress  # None: only on a terminal
                for i in tqdm(
                    range(0, n, bs), desc=f"epoch {epoch + 1}/{self.config.epochs}", disable=disable, leave=False
                ):
                    idx = order[i : i + bs].to(self.device)
                    r_w = model(chosen[idx], None if mask_c is None else mask_c[idx])
                    r_l = model(rejected[idx], None if mask_r is None else mask_r[idx])
                    try:
                        loss, tau = self.loss_fn(r_w, r_l)
                    except NonFiniteMarginsError as exc:  # the run diverged: say where and what to change
                        raise ValueError(
                            f"training diverged in epoch {epoch + 1}: {exc}; {_divergence_hint(self.config)}"
                        ) from exc
                    opt.zero_grad(set_to_none=True)
                    loss.backward()  # type: ignore[no-untyped-call]
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                    if tau is not None:
                        taus.append(tau)
                if not math.isfinite(total) or not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                    raise ValueError(  # before the accuracy below reads the broken model ("scores contain NaN")
                        f"training diverged in epoch {epoch + 1}: the loss or the weights are no longer finite; "
                        f"{_divergence_hint(self.config)}"
                    )
                record: dict[str, float] = {"epoch": epoch + 1, "train_loss": total / n}
                record["train_accuracy"] = self.accuracy(train)
                if val is not None:
                    record["val_accuracy"] = self.accuracy(val)
                if taus:
                    record["tau_mean"] = float(torch.cat(taus).mean())
                history.epochs.append(record)
                logger.info("epoch %d: %s", epoch + 1, record)
                if out is not None:
                    self._checkpoint(out, model, opt, gen, history, epoch + 1, obs_dim, fingerprint)
                if callback is not None:
                    callback(epoch + 1, record)
        if out is not None:
            _atomic_save({"model": model.state_dict(), "config": self.config.to_dict(), "obs_dim": obs_dim,
                          "version": __version__}, out / "model.pt")  # fmt: skip
            _atomic_write_text(out / "history.json", json.dumps(history.to_dict(), indent=2))
        return history

    def _checkpoint(
        self,
        out: Path,
        model: SegmentRewardModel,
        opt: torch.optim.Optimizer,
        gen: torch.Generator,
        history: History,
        epoch: int,
        obs_dim: int,
        fingerprint: str,
    ) -> None:
        state = {
            "data": fingerprint,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "generator": gen.get_state(),
            "history": history.to_dict(),
            "epoch": epoch,
            "config": self.config.to_dict(),
            "obs_dim": obs_dim,
            "version": __version__,
        }
        _atomic_save(state, out / CHECKPOINT)

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

    def tau_report(self, data: PreferenceData, *, strength: torch.Tensor | None = None, bins: int = 10) -> TauReport:
        """τ_i of every pair at the trained model's margins, with histogram and strength relation.

        Args:
            data: the pairs.
            strength: ``(N,)`` true preference strength of each pair (default: ``data.strength``), for the
                quintile table and the Spearman correlation; neither is computed without one.
            bins: histogram bins over [τ0, τmax].

        Raises:
            ValueError: if the configured loss is not adaptive (no τ to report), or ``strength`` is not ``(N,)``
                finite numbers.
        """
        cfg = self.config
        if not cfg.loss.startswith("ada"):
            raise ValueError(f"tau_report needs loss 'ada' or 'ada-quad', this trainer uses {cfg.loss!r}")
        if strength is not None:
            if not isinstance(strength, torch.Tensor) or strength.shape != (len(data),):
                got = tuple(strength.shape) if isinstance(strength, torch.Tensor) else type(strength).__name__
                raise ValueError(f"strength must be a tensor of shape ({len(data)},), one per pair, got {got}")
            if not bool(torch.isfinite(strength).all()):
                raise ValueError("strength must be finite numbers")
        strength = data.strength if strength is None else strength.detach().cpu().double()
        d = self.margins(data)
        with _rho0_warned():  # TrainConfig warned when it was made
            tau = solve_tau(d, rho0=cfg.rho0, tau0=cfg.tau0, tau_max=cfg.tau_max, solver=cfg.solver,  # type: ignore[arg-type]
                            n_iter=cfg.n_iter, tau_init=cfg.tau_init, quadratic=cfg.loss == "ada-quad",
                            clamp_tau_max=cfg.clamp_tau_max)  # fmt: skip
        bounded = cfg.loss == "ada" or cfg.clamp_tau_max  # τ ≤ τmax; the unclamped quadratic has no upper bound
        upper = cfg.tau_max if bounded else max(float(tau.max()), cfg.tau0 * (1 + 1e-6))
        hist = tau_histogram(tau, cfg.tau0, upper, bins=bins)
        if not bounded:  # no upper bound (Prop. 3.2): the top edge is the largest τ, not a τmax
            hist["frac_at_tau_max"] = math.nan
        table = rho = ceiling = None
        if strength is not None:
            table = strength_quantile_table(tau, strength, q=5)
            if bool((tau == tau[0]).all()):  # one τ for all (ρ0 ≥ log 2: τ ≡ τ0): no ranking, both undefined
                rho = ceiling = math.nan  # (without the metrics' "an input is constant" log line, twice)
            else:
                rho = spearman(tau, strength)  # nan for a constant strength; then the ceiling is undefined too
                bound = cfg.tau_max if bounded else math.inf
                ceiling = math.nan if math.isnan(rho) else spearman_ceiling(tau, strength, cfg.tau0, bound)
        return TauReport(tau, d, hist, table, rho, ceiling)

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
        raise ValueError(f"{path} is not an adapref checkpoint (no 'model' and 'config' entries)")
    return state


# Settings a resume may change: the number of epochs (train on), and the device (then the continuation
# is no longer bit-identical to an uninterrupted run on one device).
_RESUME_MAY_CHANGE = ("epochs", "device")


def _check_resumable(state: dict[str, Any], config: TrainConfig, obs_dim: int, path: Path) -> None:
    """Refuse a checkpoint written with another config (``epochs``/``device`` aside) or feature dimension."""
    # a field the checkpoint's version did not have yet takes its default (the value that version used)
    saved = {k: v for k, v in {**TrainConfig().to_dict(), **state["config"]}.items() if k not in _RESUME_MAY_CHANGE}
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
