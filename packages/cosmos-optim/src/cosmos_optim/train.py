"""Character-level GPT training with any of the compared optimizers: a thin shell for the CLI and benchmarks.

One run = a :class:`~cosmos_optim.model.GPT` on a :class:`~cosmos_optim.data.TextData` corpus, an
optimizer from :func:`cosmos_optim.baselines.make_optimizer`, linear warm-up then cosine decay to
``min_lr_ratio`` of every group's learning rate, optional gradient clipping, the validation loss on
fixed windows every ``eval_every`` steps, the wall-clock time of every training step (evaluation
excluded), atomic checkpoints, and ``resume`` that continues bit-identically on the same machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import math
import os
import pickle
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from cosmos_optim._version import __version__
from cosmos_optim.data import TextData, load_corpus
from cosmos_optim.model import GPT, GPTConfig

logger = logging.getLogger(__name__)

OPTIMIZERS: tuple[str, ...] = ("adamw", "muon", "soap", "cosmos")
"""Names accepted by :func:`cosmos_optim.baselines.make_optimizer` and ``TrainConfig.optimizer``."""

DEFAULT_LR: dict[str, float] = {"adamw": 6e-3, "muon": 0.05, "soap": 1.6e-2, "cosmos": 4e-3}
"""Best learning rate of each optimizer on the default model after 200 steps (the ``lm`` benchmark's
seed-0 grid, ``benchmarks/results/lm.md``)."""

CHECKPOINT = "checkpoint.pt"
RESULT = "result.json"
_RESUME_FREE = ("checkpoint_every", "threads")
"""Fields that may differ between a run and its resumption: the checkpoint cadence, and the thread count
(which can change the last bits of a float reduction, so bit-identical resumption needs the same count)."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run (defaults: the spec §6 benchmark model, 4096 tokens per step)."""

    optimizer: str = "cosmos"
    """``adamw``, ``muon``, ``soap`` or ``cosmos``."""
    lr: float | None = None
    """step size of the hidden matrices (AdamW, SOAP: of every parameter); None: :data:`DEFAULT_LR`."""
    adam_lr: float = 2e-3
    """AdamW lr (η0) of embeddings, head, norms and biases for ``muon`` and ``cosmos`` (spec §6 B4)."""
    rank: int = 32
    """COSMOS rank r (d/4 at the default width, the spec §6 B4 setting; the authors' default is 64)."""
    gamma: float | None = None
    """weight γ of the Muon part of COSMOS; None: the paper's heuristic γ = η/η0 = lr/adam_lr."""
    weight_decay: float = 0.0
    """decoupled weight decay λ (0, as in the paper's LLaMA runs)."""
    steps: int = 200
    """optimizer steps."""
    warmup: int = 30
    """steps of linear warm-up before the cosine decay."""
    min_lr_ratio: float = 0.1
    """the cosine decay ends at this fraction of every group's learning rate."""
    batch_size: int = 32
    """sequences per step."""
    seq_len: int = 128
    """characters per sequence (and the model's block size)."""
    d_model: int = 128
    """model width d."""
    n_layer: int = 4
    """transformer blocks."""
    n_head: int = 4
    """attention heads (must divide ``d_model``)."""
    grad_clip: float = 1.0
    """clip the global gradient norm to this value before each step; 0 turns clipping off."""
    seed: int = 0
    """seed of the initial weights and of the batch order."""
    eval_every: int = 25
    """steps between validation losses (also taken before the first step and after the last)."""
    eval_batches: int = 4
    """batches of fixed, evenly spaced validation windows per evaluation."""
    checkpoint_every: int = 50
    """steps between checkpoints when the run has an output folder (one is always written at the end)."""
    threads: int | None = None
    """``torch.set_num_threads`` for the run (restored afterwards); None leaves it as it is."""
    device: str = "cpu"
    """``cpu``, ``cuda`` or ``auto``."""
    text: str | None = None
    """UTF-8 text file to train on; None: the bundled ``pydoc_data.topics`` corpus."""

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _check_real("lr", self.lr, positive=True, optional=True)
        _check_real("adam_lr", self.adam_lr, positive=True)
        _check_real("gamma", self.gamma, optional=True)
        _check_real("weight_decay", self.weight_decay)
        _check_real("grad_clip", self.grad_clip)
        _check_real("min_lr_ratio", self.min_lr_ratio)
        if self.min_lr_ratio > 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        for name in ("steps", "batch_size", "seq_len", "d_model", "n_layer", "n_head", "eval_every",
                     "eval_batches", "checkpoint_every"):  # fmt: skip
            _check_int(name, getattr(self, name), low=1)
        _check_int("rank", self.rank, low=0)
        _check_int("warmup", self.warmup, low=0)
        _check_int("seed", self.seed, low=0)
        if self.threads is not None:
            _check_int("threads", self.threads, low=1)
        if self.d_model % self.n_head:
            raise ValueError(f"d_model must be divisible by n_head, got d_model={self.d_model}, n_head={self.n_head}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")
        if self.text is not None and not isinstance(self.text, str):
            raise ValueError(f"text must be a file path (str) or None, got {self.text!r}")

    @property
    def resolved_lr(self) -> float:
        """``lr``, or the optimizer's default from :data:`DEFAULT_LR` when ``lr`` is None."""
        return DEFAULT_LR[self.optimizer] if self.lr is None else float(self.lr)

    def model_config(self, vocab_size: int) -> GPTConfig:
        """The :class:`GPTConfig` of this run for a corpus of ``vocab_size`` ids."""
        return GPTConfig(vocab_size=vocab_size, block_size=self.seq_len, n_layer=self.n_layer, n_head=self.n_head,
                         d_model=self.d_model)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"unknown TrainConfig key(s) {unknown}; known: {sorted(fields)}")
        return cls(**data)


def _check_real(name: str, value: object, *, positive: bool = False, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")


def _check_int(name: str, value: object, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def lr_factor(step: int, *, steps: int, warmup: int, min_ratio: float) -> float:
    r"""Learning-rate multiplier of step ``step`` (0-based): linear warm-up, then cosine to ``min_ratio``.

    .. math::
        f(s) = \frac{s+1}{w} \; (s < w), \qquad
        f(s) = \rho + (1-\rho)\,\tfrac12\big(1 + \cos(\pi \tfrac{s-w}{\max(1, S-1-w)})\big) \; (s \ge w)

    with ``w = warmup``, ``S = steps``, ``rho = min_ratio``: the last step runs at exactly ``min_ratio``.

    Example:
        >>> [round(lr_factor(s, steps=5, warmup=2, min_ratio=0.1), 3) for s in range(5)]
        [0.5, 1.0, 1.0, 0.55, 0.1]
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - 1 - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclasses.dataclass
class TrainResult:
    """What a run measured (JSON-serialisable through :meth:`to_dict`)."""

    config: TrainConfig
    """the run's configuration."""
    train_loss: list[float] = dataclasses.field(default_factory=list)
    """training loss (nats per character) of every step, before its update."""
    step_seconds: list[float] = dataclasses.field(default_factory=list)
    """wall-clock seconds of every training step (batch, forward, backward, clipping, update)."""
    val_steps: list[int] = dataclasses.field(default_factory=list)
    """steps after which the validation loss was taken (0 = the initial model)."""
    val_loss: list[float] = dataclasses.field(default_factory=list)
    """validation loss (nats per character) at ``val_steps``."""
    n_params: int = 0
    """distinct model parameters."""
    state_bytes: int = 0
    """optimizer-state bytes at the end (:func:`cosmos_optim.memory.memory_report`)."""
    vocab_size: int = 0
    """character vocabulary, unknown symbol included."""
    source: str = ""
    """the corpus."""
    diverged: bool = False
    """the training loss became NaN or infinite; the run stopped there."""

    @property
    def steps_done(self) -> int:
        """Steps completed."""
        return len(self.train_loss)

    @property
    def final_val_loss(self) -> float:
        """The last validation loss (NaN when the run diverged)."""
        return math.nan if self.diverged or not self.val_loss else self.val_loss[-1]

    @property
    def train_seconds(self) -> float:
        """Total wall-clock seconds spent in training steps."""
        return math.fsum(self.step_seconds)

    @property
    def tokens_per_second(self) -> float:
        """Training throughput, tokens per second of step time."""
        tokens = self.config.batch_size * self.config.seq_len * len(self.step_seconds)
        return tokens / self.train_seconds if self.step_seconds else math.nan

    @property
    def val_seconds(self) -> list[float]:
        """Cumulative training seconds at each of ``val_steps``."""
        return [math.fsum(self.step_seconds[:s]) for s in self.val_steps]

    def val_loss_at_seconds(self, seconds: float) -> float:
        """Validation loss reached after ``seconds`` of training, linearly interpolated between evaluations.

        NaN when ``seconds`` is beyond the run's last evaluation (the run never got there) or the run diverged.
        """
        if self.diverged:
            return math.nan
        times, losses = self.val_seconds, self.val_loss
        points = list(zip(times, losses, strict=True))
        for (t0, l0), (t1, l1) in itertools.pairwise(points):
            if t0 <= seconds <= t1:
                return l0 if t1 == t0 else l0 + (l1 - l0) * (seconds - t0) / (t1 - t0)
        return losses[0] if times and seconds <= times[0] else math.nan

    def to_dict(self) -> dict[str, Any]:
        """Config, histories and summary numbers as plain JSON types."""
        return {
            "config": self.config.to_dict(), "lr": self.config.resolved_lr, "train_loss": self.train_loss,
            "step_seconds": self.step_seconds, "val_steps": self.val_steps, "val_loss": self.val_loss,
            "val_seconds": self.val_seconds, "final_val_loss": self.final_val_loss,
            "train_seconds": self.train_seconds, "tokens_per_second": self.tokens_per_second,
            "n_params": self.n_params, "state_bytes": self.state_bytes, "vocab_size": self.vocab_size,
            "source": self.source, "diverged": self.diverged, "steps_done": self.steps_done,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        """Inverse of :meth:`to_dict` (derived numbers are recomputed)."""
        return cls(
            TrainConfig.from_dict(data["config"]), list(data["train_loss"]), list(data["step_seconds"]),
            list(data["val_steps"]), list(data["val_loss"]), int(data["n_params"]), int(data["state_bytes"]),
            int(data["vocab_size"]), str(data["source"]), bool(data["diverged"]),
        )  # fmt: skip


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when available; an unavailable ``cuda`` is a ``ValueError``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available; use 'cpu' or 'auto'")
    return torch.device(device)


def build(config: TrainConfig, vocab_size: int) -> tuple[GPT, torch.optim.Optimizer]:
    """The seeded model (on ``config.device``) and its optimizer, exactly as :func:`train` makes them."""
    from cosmos_optim.baselines import make_optimizer

    model = GPT(config.model_config(vocab_size), seed=config.seed).to(resolve_device(config.device))
    optimizer = make_optimizer(config.optimizer, model, lr=config.resolved_lr, adam_lr=config.adam_lr,
                               weight_decay=config.weight_decay, rank=config.rank, gamma=config.gamma)  # fmt: skip
    return model, optimizer


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Optimizer-state bytes (:func:`cosmos_optim.memory.memory_report`)."""
    from cosmos_optim.memory import memory_report

    return int(memory_report(optimizer).total_bytes)


@torch.no_grad()
def evaluate(model: GPT, batches: list[tuple[torch.Tensor, torch.Tensor]], device: torch.device) -> float:
    """Mean cross-entropy (nats per character) of ``model`` over ``batches`` of equal size."""
    was_training = model.training
    model.eval()
    total = 0.0
    for x, y in batches:
        _, loss = model(x.to(device), y.to(device))
        assert loss is not None  # targets were given
        total += float(loss)
    model.train(was_training)
    return total / len(batches)


@contextmanager
def _num_threads(threads: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train(
    config: TrainConfig,
    out_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    *,
    data: TextData | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train a GPT on the corpus with ``config.optimizer``; checkpoint and resume under ``out_dir``.

    Args:
        config: the run.
        out_dir: folder for ``config.json``, ``checkpoint.pt`` (atomic, every ``checkpoint_every`` steps
            and at the end) and ``result.json``; None writes nothing.
        resume: continue from ``out_dir/checkpoint.pt`` (model, optimizer, schedule, batch generator,
            history): the parameters equal those of an uninterrupted run bit for bit. A finished
            run is returned as it is.
        progress: a tqdm bar on stderr (shown on a terminal only).
        data: the corpus (default: :func:`~cosmos_optim.data.load_corpus` of ``config.text``).
        stop_after: stop after this many steps (a checkpoint is written), as an interruption would;
            ``resume`` then carries on. None runs all ``config.steps``.

    Returns:
        :class:`TrainResult` with the loss, validation and timing histories.

    Raises:
        ValueError: a text too short for ``seq_len``, ``resume`` without a checkpoint, or a checkpoint
            written with another configuration or corpus.
    """
    corpus = data if data is not None else load_corpus(config.text)
    corpus.check_seq_len(config.seq_len)
    device = resolve_device(config.device)
    out = Path(out_dir) if out_dir is not None else None
    fingerprint = _fingerprint(corpus)
    with _num_threads(config.threads):
        model, optimizer = build(config, corpus.tokenizer.vocab_size)
        base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        gen = torch.Generator().manual_seed(config.seed)
        result = TrainResult(config, n_params=model.num_parameters(), vocab_size=corpus.tokenizer.vocab_size,
                             source=corpus.source)  # fmt: skip
        if resume:
            _restore(out, config, fingerprint, model, optimizer, gen, result)
        elif out is not None:
            out.mkdir(parents=True, exist_ok=True)
            for stale in (CHECKPOINT, RESULT):  # a fresh run must not leave an older run's files behind
                (out / stale).unlink(missing_ok=True)
            _atomic_write_text(out / "config.json", json.dumps(_config_record(config, corpus, model), indent=2))
        eval_set = corpus.eval_batches(config.eval_batches, config.batch_size, config.seq_len)
        if not result.val_steps:
            result.val_steps.append(0)
            result.val_loss.append(evaluate(model, eval_set, device))
        last = config.steps if stop_after is None else min(config.steps, stop_after)
        start = result.steps_done
        bar = tqdm(total=config.steps, initial=start, desc=f"{config.optimizer} lr={config.resolved_lr:g}",
                   disable=None if progress else True, leave=False)  # fmt: skip
        model.train()
        for step in range(start, last):
            if result.diverged:
                break
            factor = lr_factor(step, steps=config.steps, warmup=config.warmup, min_ratio=config.min_lr_ratio)
            for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = base * factor
            t0 = time.perf_counter()
            x, y = corpus.get_batch(config.batch_size, config.seq_len, gen)
            _, loss = model(x.to(device), y.to(device))
            assert loss is not None  # targets were given
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            try:
                optimizer.step()
            except FloatingPointError as exc:  # COSMOS refuses a non-finite gradient before touching anything
                logger.warning("%s lr=%g: %s", config.optimizer, config.resolved_lr, exc)
                loss = torch.full_like(loss, math.nan)
            value = float(loss.detach())  # synchronises a CUDA device before the clock is read
            result.step_seconds.append(time.perf_counter() - t0)
            result.train_loss.append(value)
            bar.update(1)
            if not math.isfinite(value):
                result.diverged = True
                logger.warning("%s lr=%g: training loss is %s at step %d; the run stops here",
                               config.optimizer, config.resolved_lr, value, step + 1)  # fmt: skip
            done = step + 1
            if done % config.eval_every == 0 or done == config.steps or result.diverged:
                result.val_steps.append(done)
                result.val_loss.append(math.nan if result.diverged else evaluate(model, eval_set, device))
                bar.set_postfix(val=f"{result.val_loss[-1]:.3f}")
                logger.info("%s step %d: val loss %.4f", config.optimizer, done, result.val_loss[-1])
            if out is not None and (done % config.checkpoint_every == 0 or done == last or result.diverged):
                result.state_bytes = state_bytes(optimizer)
                _checkpoint(out / CHECKPOINT, config, fingerprint, model, optimizer, gen, base_lrs, result)
        bar.close()
        result.state_bytes = state_bytes(optimizer)
    if out is not None and (result.steps_done == config.steps or result.diverged):
        _atomic_write_text(out / RESULT, json.dumps(result.to_dict(), indent=2))
    return result


def _config_record(config: TrainConfig, corpus: TextData, model: GPT) -> dict[str, Any]:
    return {
        "train": config.to_dict(), "lr": config.resolved_lr,
        "model": {**dataclasses.asdict(model.config), "n_params": model.num_parameters()},
        "data": {"source": corpus.source, "vocab_size": corpus.tokenizer.vocab_size, "train_chars": len(corpus.train),
                 "val_chars": len(corpus.val)},
        "version": __version__, "torch": torch.__version__,
    }  # fmt: skip


def _fingerprint(corpus: TextData) -> str:
    """A digest of the corpus: alphabet and both splits' ids."""
    h = hashlib.sha256(corpus.tokenizer.alphabet.encode("utf-8"))
    for ids in (corpus.train, corpus.val):
        h.update(ids.numpy().tobytes())
    return h.hexdigest()


def _checkpoint(
    path: Path,
    config: TrainConfig,
    fingerprint: str,
    model: GPT,
    optimizer: torch.optim.Optimizer,
    gen: torch.Generator,
    base_lrs: list[float],
    result: TrainResult,
) -> None:
    state = {
        "config": config.to_dict(), "data": fingerprint, "model": model.state_dict(),
        "optimizer": optimizer.state_dict(), "scheduler": {"step": result.steps_done, "base_lrs": base_lrs},
        "generator": gen.get_state(), "history": result.to_dict(), "version": __version__,
    }  # fmt: skip
    _atomic_save(state, path)


def _restore(
    out: Path | None,
    config: TrainConfig,
    fingerprint: str,
    model: GPT,
    optimizer: torch.optim.Optimizer,
    gen: torch.Generator,
    result: TrainResult,
) -> None:
    if out is None or not (out / CHECKPOINT).is_file():
        raise ValueError(f"resume needs a checkpoint at {out}/{CHECKPOINT}; none was found")
    path = out / CHECKPOINT
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)  # our own file: configs, lists, tensors
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise ValueError(f"cannot read the checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict) or not {"config", "model", "optimizer", "history"} <= set(state):
        raise ValueError(f"{path} is not a cosmos-optim training checkpoint")
    saved = {k: v for k, v in state["config"].items() if k not in _RESUME_FREE}
    wanted = {k: v for k, v in config.to_dict().items() if k not in _RESUME_FREE}
    if saved != wanted:
        diff = sorted(k for k in wanted if saved.get(k) != wanted[k])
        raise ValueError(f"checkpoint {path} was written with another configuration (differs in {diff}); "
                         "resume with the same settings or start a new run in another folder")  # fmt: skip
    if state["data"] != fingerprint:
        raise ValueError(f"checkpoint {path} was written for another corpus; resume with the same text")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    gen.set_state(state["generator"])
    saved_result = TrainResult.from_dict(state["history"])
    for f in ("train_loss", "step_seconds", "val_steps", "val_loss", "state_bytes", "diverged"):
        setattr(result, f, getattr(saved_result, f))
    logger.info("resumed %s at step %d", path, result.steps_done)


def _atomic_save(obj: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
