"""R³M-DPO on a causal language model through TRL: the backend of ``r3m dpo``.

:func:`train_lm_dpo` runs one DPO training with R³M-DPO (:class:`r3m.integrations.trl.R3MDPOTrainer`),
cDPO (the same trainer, ``loss="conservative"``) or a stock ``trl.DPOTrainer`` loss (``sigmoid``,
``robust``, ``ipo``), then a final pass with the trained policy and the reference over every pair:
implicit-reward accuracy on clean held-out pairs and the outlier flags δ_i > 0 ⇔ z_i < t_λ against
the known corruption. CPU-sized by default.

The text task and the model builders (:func:`make_text_preferences`, :func:`build_tiny_model`,
:func:`load_local_model`, :data:`SPECIAL_TOKENS`) live in :mod:`r3m.lm_text` and are re-exported here.

Needs the ``[trl]`` extra (TRL, transformers, datasets, tokenizers); they are imported inside the
functions, so importing this module stays light.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import dataclasses
import hashlib
import importlib
import inspect
import json
import logging
import math
import os
import random
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from r3m.functional import check_lam, r3m_threshold
from r3m.lm_text import SPECIAL_TOKENS, _check_records, build_tiny_model, load_local_model, make_text_preferences
from r3m.metrics import outlier_precision_recall

if TYPE_CHECKING:
    import torch

__all__ = [
    "LM_LOSSES",
    "SPECIAL_TOKENS",
    "ProgressFn",
    "build_tiny_model",
    "load_local_model",
    "make_text_preferences",
    "train_lm_dpo",
]

logger = logging.getLogger(__name__)

LM_LOSSES = ("r3m", "sigmoid", "conservative", "robust", "ipo")
"""Losses of :func:`train_lm_dpo`: ours (``r3m``, ``conservative`` = cDPO) and TRL's stock loss types."""

ProgressFn = Callable[[int, int, Mapping[str, float]], None]
"""``progress(global_step, max_steps, logs)``, called at every logging step (each optimizer step)."""


@contextlib.contextmanager
def _global_state_restored(num_threads: int | None) -> Iterator[None]:
    """Restore the Python, NumPy and torch RNG states (``transformers.Trainer`` seeds them globally) and torch's
    intra-op thread count (set to ``num_threads`` inside, unless ``None``) on exit."""
    import torch

    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002  (saved, not used)
    threads = torch.get_num_threads()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        torch.set_num_threads(threads)
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002


@contextlib.contextmanager
def _tied_keys_not_reported(model: Any) -> Iterator[None]:
    """Drop transformers' "There were missing keys in the checkpoint model loaded: ['lm_head.weight']" on a resume
    when every key named is a tied parameter (the checkpoint stores the shared tensor once, under its other name;
    loading that name restores both), which reads like a corrupt checkpoint but is not one."""
    seen: dict[int, str] = {}
    tied: set[str] = set()
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if id(parameter) in seen:
            tied.add(name)
        seen.setdefault(id(parameter), name)

    def keep(record: logging.LogRecord) -> bool:
        text = record.getMessage()
        prefix = "There were missing keys in the checkpoint model loaded: "
        if not text.startswith(prefix):
            return True
        try:
            missing = ast.literal_eval(text[len(prefix) :].rstrip("."))
        except (ValueError, SyntaxError):
            return True
        return not (isinstance(missing, list) and missing and set(missing) <= tied)

    trainer_logger = logging.getLogger("transformers.trainer")
    trainer_logger.addFilter(keep)
    try:
        yield
    finally:
        trainer_logger.removeFilter(keep)


@contextlib.contextmanager
def _progress_bars_off() -> Iterator[None]:
    """Silence the ``datasets`` (map) and ``transformers`` (checkpoint shards) progress bars, then restore them."""
    from transformers.utils import logging as transformers_logging

    datasets: Any = importlib.import_module("datasets")  # ships no type information
    hf_logging: Any = transformers_logging  # untyped functions

    datasets_on, transformers_on = datasets.is_progress_bar_enabled(), hf_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if datasets_on:
            datasets.enable_progress_bars()
        if transformers_on:
            hf_logging.enable_progress_bar()


def _check_number(name: str, value: object, *, low: float, high: float = math.inf, low_open: bool = True) -> float:
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    if bad or (value <= low if low_open else value < low) or value >= high:  # type: ignore[operator]
        lo = "(" if low_open else "["
        raise ValueError(f"{name} must lie in {lo}{low}, {high}), got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def _check_context(policy: Any, max_length: int | None, train: Any, held_out: Any) -> None:
    """``ValueError`` when a tokenized pair is longer than the model's learned position table (GPT-2's ``wpe``),
    whose lookup would fail inside torch. Rotary models (Llama, Qwen) have no table to overflow: not checked."""
    import torch

    limit = getattr(policy.config, "max_position_embeddings", None)
    if not isinstance(limit, int) or (max_length is not None and max_length <= limit):
        return  # TRL truncates every sequence to max_length
    tokens = policy.get_input_embeddings()
    if not any(  # GPT-2's wpe has limit rows, OPT's limit + 2 (an offset of 2)
        isinstance(m, torch.nn.Embedding) and m is not tokens and limit <= m.num_embeddings <= limit + 2
        for m in policy.modules()
    ):
        return
    for name, dataset in (("train_records", train), ("eval_records", held_out)):
        if dataset is None:
            continue
        columns = dataset.select_columns(["prompt_ids", "chosen_ids", "rejected_ids"])
        longest = max(
            len(p) + max(len(c), len(r))
            for p, c, r in zip(columns["prompt_ids"], columns["chosen_ids"], columns["rejected_ids"], strict=True)
        )
        if longest > limit:
            raise ValueError(
                f"{name} holds a pair of {longest} tokens (prompt + completion + EOS), longer than the model's "
                f"{limit} positions; set max_length <= {limit} to truncate it"
            )


def _sequence_logps(model: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``(2B,)`` summed completion log-probs ``Σ_t mask_t (logit_t[y_t] − logsumexp(logit_t))`` (TRL's layout), in
    float32 over 8 sequences at a time: one float32 copy of (8, T−1, V) logits, not two of (2B, T−1, V)."""
    import torch

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    labels, mask = batch["input_ids"][:, 1:], batch["completion_mask"][:, 1:]
    sums = []
    for start in range(0, logits.shape[0], 8):
        rows = logits[start : start + 8, :-1].float()  # (≤8, T-1, V)
        token_logps = rows.gather(-1, labels[start : start + 8, :, None])[..., 0] - torch.logsumexp(rows, dim=-1)
        sums.append((token_logps * mask[start : start + 8]).sum(dim=1))
    return torch.cat(sums)


def _logratio_margins(trainer: Any, dataset: Any, batch_size: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """``(N,)`` h_i = logratio(chosen) − logratio(rejected) of every pair of a TRL-tokenized dataset, in order."""
    import torch

    policy, ref = trainer.model, trainer.ref_model
    device = trainer.args.device
    columns = dataset.select_columns(["prompt_ids", "chosen_ids", "rejected_ids"])
    margins = []
    was_training = policy.training
    policy.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(columns), batch_size):
                examples = [columns[i] for i in range(start, min(start + batch_size, len(columns)))]
                batch = {k: v.to(device) for k, v in trainer.data_collator(examples).items()}
                ratio = _sequence_logps(policy, batch) - _sequence_logps(ref, batch)  # (2B,)
                chosen, rejected = ratio.double().chunk(2)  # the collator puts the B chosen rows first
                margins.append((chosen - rejected).cpu().numpy())
    finally:
        policy.train(was_training)
    return np.concatenate(margins)


def _auroc(scores: np.ndarray[Any, np.dtype[np.float64]], positive: np.ndarray[Any, np.dtype[np.bool_]]) -> float:
    """Area under the ROC curve of ``scores`` for ``positive`` (Mann-Whitney, ties count one half)."""
    pos, neg = scores[positive], scores[~positive]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def _accuracy(z: np.ndarray[Any, np.dtype[np.float64]]) -> float:
    """Share of pairs ranked as labelled, ``mean(1[z_i > 0] + ½·1[z_i = 0])``: the tie convention of
    :func:`r3m.metrics.preference_accuracy` (which refuses non-finite input; a diverged run's NaN counts 0 here)."""
    return float(np.mean((z > 0) + 0.5 * (z == 0)))


RUN_ARGS = "run_args.json"
"""File in ``out_dir`` with the arguments of a run (and fingerprints of its records), checked on resume."""


_RESUMED = ("model", "loss", "lam", "beta", "eps", "batch_size", "lr", "max_length", "n_layer", "n_embd", "seed")
"""The arguments of :func:`train_lm_dpo` that a resume must repeat (``epochs`` may grow, ``device`` change)."""


def _run_arguments(
    train_rows: Sequence[Mapping[str, Any]],
    eval_rows: Sequence[Mapping[str, Any]] | None,
    corrupted: Sequence[bool] | None,
    arguments: Mapping[str, Any],
) -> dict[str, Any]:
    """What ``run_args.json`` records: the :data:`_RESUMED` values of ``arguments`` (``model`` as a string) with
    SHA-256 fingerprints of the records and the corruption flags."""

    def fingerprint(rows: object) -> str | None:
        if rows is None:
            return None
        text = json.dumps(rows, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    model = arguments["model"]
    return {
        **{k: arguments[k] for k in _RESUMED},
        "model": None if model is None else str(model),
        "train_records": fingerprint([dict(r) for r in train_rows]),
        "eval_records": None if eval_rows is None else fingerprint([dict(r) for r in eval_rows]),
        "corrupted": None if corrupted is None else fingerprint([bool(c) for c in corrupted]),
    }


def _check_resume_arguments(run_dir: Path, run_args: Mapping[str, Any]) -> None:
    """``ValueError`` naming every argument that differs from the run's ``run_args.json`` (none: nothing to check)."""
    path = run_dir / RUN_ARGS
    if not path.is_file():  # a run from a version without the file: nothing to compare with
        return
    saved = json.loads(path.read_text(encoding="utf-8"))
    differ = [k for k in sorted(set(saved) | set(run_args)) if saved.get(k) != run_args.get(k)]
    if differ:
        shown = "; ".join(
            f"{k} ({saved.get(k)!r} there, {run_args.get(k)!r} here)"
            if k not in ("train_records", "eval_records", "corrupted")
            else f"{k} (other content)"
            for k in differ
        )
        raise ValueError(
            f"resume=True with other arguments than the run in {str(run_dir)!r}: {shown}. Only epochs and "
            "device may change on resume; start a new run in another out_dir"
        )


def _check_resume_epochs(checkpoint: str, epochs: int) -> None:
    """``ValueError`` for a resume to fewer epochs than ``checkpoint`` has trained, as ``train-reward`` refuses one:
    TRL would train nothing and the metrics would be those of the longer run. The same number is a finished run."""
    try:
        state = json.loads((Path(checkpoint) / "trainer_state.json").read_text("utf-8"))
    except (OSError, ValueError):  # not TRL's: TRL's own resume reports it
        return
    done = state.get("epoch") if isinstance(state, dict) else None
    if isinstance(done, (int, float)) and not isinstance(done, bool) and round(done) > epochs:
        raise ValueError(
            f"epochs must be >= {round(done)} to resume the run in {str(Path(checkpoint).parent)!r}: it has trained "
            f"{round(done)} epoch(s), got {epochs}"
        )


def _check_resume(
    out_dir: str | os.PathLike[str],
    train_records: Iterable[Mapping[str, Any]],
    *,
    eval_records: Iterable[Mapping[str, Any]] | None = None,
    corrupted: Sequence[bool] | None = None,
    epochs: int | None = None,
    **arguments: Any,
) -> None:
    """The checks of ``train_lm_dpo(..., resume=True)`` against the run in ``out_dir``, on their own.

    ``arguments`` are :func:`train_lm_dpo`'s keywords among :data:`_RESUMED`, its defaults filling the rest; they
    are compared with the run's ``run_args.json``, and ``epochs`` (unless ``None``) with its last checkpoint's.
    For a caller that resumes several runs and must refuse before any of them trains (``r3m dpo --resume``):
    ``train_lm_dpo`` checks its own run only, when the runs before it have trained.
    """
    unknown = sorted(set(arguments) - set(_RESUMED))
    if unknown:
        raise TypeError(f"_check_resume got arguments that a resume does not compare: {unknown}")
    parameters = inspect.signature(train_lm_dpo).parameters
    settings = {**{k: parameters[k].default for k in _RESUMED}, **arguments}
    train_rows = _check_records(train_records, "train_records")
    eval_rows = None if eval_records is None else _check_records(eval_records, "eval_records")
    _check_resume_arguments(Path(out_dir), _run_arguments(train_rows, eval_rows, corrupted, settings))
    if epochs is not None:
        from transformers.trainer_utils import get_last_checkpoint as _get_last_checkpoint

        get_last_checkpoint: Any = _get_last_checkpoint  # untyped
        checkpoint = get_last_checkpoint(str(out_dir)) if Path(out_dir).is_dir() else None
        if checkpoint is not None:
            _check_resume_epochs(checkpoint, epochs)


def _check_run_dir(
    run_dir: Path, run_args: dict[str, Any], epochs: int, resume: bool, get_last_checkpoint: Any
) -> str | None:
    """The checkpoint to resume from (``None`` for a new run), after checking ``run_dir`` fits the request.

    A new run refuses a folder that holds an earlier run's ``checkpoint-*`` (TRL would resume or mix them);
    a resume refuses a folder without one, arguments that differ from the run's ``run_args.json`` and fewer
    ``epochs`` than the checkpoint has trained.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"out_dir {str(run_dir)!r} is a file; give a folder for the run")
    checkpoint = get_last_checkpoint(str(run_dir)) if run_dir.is_dir() else None
    if not resume:
        if checkpoint is not None:
            raise ValueError(
                f"out_dir {str(run_dir)!r} holds the checkpoints of an earlier run ({Path(checkpoint).name}); "
                "pass resume=True (CLI: --resume) to continue it, or choose another out_dir"
            )
        return None
    if checkpoint is None:
        raise FileNotFoundError(f"resume=True but out_dir {str(run_dir)!r} holds no checkpoint-* directory")
    _check_resume_arguments(run_dir, run_args)
    _check_resume_epochs(checkpoint, epochs)
    return str(checkpoint)


def _mean_logged_loss(log_history: Sequence[Mapping[str, Any]], fallback: float) -> float:
    """Mean training loss over every optimizer step of the run, resumed parts included.

    With ``logging_steps=1`` each step logs its loss and the history is restored from the checkpoint;
    ``TrainOutput.training_loss`` counts only the steps of the current call (0 for a finished run resumed).
    """
    losses = [float(h["loss"]) for h in log_history if "loss" in h]
    return float(np.mean(losses)) if losses else fallback


def _write_deltas(
    path: Path, z: np.ndarray[Any, np.dtype[np.float64]], lam: float, corrupted: Sequence[bool] | None
) -> None:
    """``index,z,delta,flagged[,corrupted]`` per train pair (δ_i = max(t_λ − z_i, 0), eq. 3.4), atomically."""
    t = r3m_threshold(lam)
    header = "index,z,delta,flagged" + (",corrupted" if corrupted is not None else "")
    lines = [header]
    for i, zi in enumerate(z.tolist()):
        row = f"{i},{zi:.9g},{max(t - zi, 0.0):.9g},{int(zi < t)}"
        lines.append(row if corrupted is None else f"{row},{int(bool(corrupted[i]))}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _outlier_report(
    z: np.ndarray[Any, np.dtype[np.float64]], lam: float, corrupted: Sequence[bool] | None
) -> dict[str, float]:
    """Flags δ_i > 0 ⇔ z_i < t_λ and, with the true corruption flags, their precision / recall / AUROC."""
    flagged = z < r3m_threshold(lam)
    out = {"outlier_frac": float(flagged.mean())}
    if corrupted is None:
        return out
    truth = np.asarray(corrupted, dtype=bool)
    out["train_true_accuracy"] = _accuracy(np.where(truth, -z, z))  # a swapped pair is ranked right when z_i < 0
    if truth.any():
        out["outlier_precision"], out["outlier_recall"] = outlier_precision_recall(
            flagged, truth
        )  # nan if none flagged
        if not truth.all():
            out["outlier_auroc"] = _auroc(-z, truth)
    return out


def train_lm_dpo(
    train_records: Iterable[Mapping[str, Any]],
    *,
    out_dir: str | os.PathLike[str],
    eval_records: Iterable[Mapping[str, Any]] | None = None,
    corrupted: Sequence[bool] | None = None,
    model: str | os.PathLike[str] | None = None,
    loss: str = "r3m",
    lam: float = 0.5,
    beta: float = 0.1,
    eps: float = 0.1,
    epochs: int = 1,
    batch_size: int = 16,
    lr: float = 5e-3,
    max_length: int | None = None,
    n_layer: int = 2,
    n_embd: int = 64,
    seed: int = 0,
    device: str = "cpu",
    num_threads: int | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> dict[str, float]:
    """Train a causal LM with R³M-DPO or a DPO baseline through TRL; return the final metrics.

    Paper symbols: ``beta`` = β, ``lam`` = λ (per sample, on the β-scaled logit z_i = β·h_i, §3.4),
    h_i = (log π − log π_ref)(y_w) − (log π − log π_ref)(y_l). The reference π_ref is a frozen copy
    of the initial policy. Losses: ``"r3m"`` (:class:`~r3m.integrations.trl.R3MDPOTrainer`),
    ``"conservative"`` (cDPO with label smoothing ``eps``, the same trainer), and TRL's stock
    ``"sigmoid"`` (DPO), ``"robust"`` (rDPO, ``label_smoothing=eps``) and ``"ipo"`` (TRL's
    length-normalised IPO). Training runs in float32 (``bf16=False``), ``report_to="none"``, and
    saves a checkpoint (policy, tokenizer, optimizer, RNG state) into ``out_dir/checkpoint-<step>``
    at the end of every epoch (the last one holds the final policy; two are kept). The per-pair
    audit of the final pass goes to ``out_dir/deltas.csv`` (written atomically).

    After training, one pass over every pair with the trained policy and the reference gives z_i:

    - ``eval_accuracy`` = share of ``eval_records`` with z_i > 0, i.e. β·logratio(chosen) >
      β·logratio(rejected) (pass clean held-out pairs; a tie z_i = 0 counts ½, as in
      :func:`r3m.metrics.preference_accuracy`), and ``eval_margin_mean`` = mean z_i;
    - ``train_accuracy`` (against the observed, possibly flipped labels; ties ½) and ``outlier_frac`` =
      share of train pairs with δ_i > 0 ⇔ z_i < t_λ = log(1/λ − 1) (eq. 3.4), for any loss (for
      the baselines this is the margin-threshold detector at the same t_λ);
    - with ``corrupted``: ``train_true_accuracy`` (z_i > 0 on clean pairs, z_i < 0 on swapped ones,
      ties ½), ``outlier_precision`` and ``outlier_recall`` of the δ_i > 0 flags (present when at
      least one pair is corrupted; precision is NaN when nothing is flagged, as in
      :func:`r3m.metrics.outlier_precision_recall`) and ``outlier_auroc`` of −z_i (when both
      classes occur).

    Args:
        train_records: ``{"prompt","chosen","rejected"}`` string records (TRL explicit-prompt format): a
            list of dicts or a ``datasets.Dataset`` split (:func:`r3m.data.from_trl_dataset` checks one;
            :func:`r3m.lm_text.explicit_prompt_records` splits off an implicit prompt).
        out_dir: run directory for TRL's checkpoints (created).
        eval_records: held-out records for ``eval_accuracy``; ``None`` skips it.
        corrupted: per-train-pair flags (``True`` = label swapped) for the outlier precision / recall.
        model: a local model directory (:func:`load_local_model`); ``None`` builds a tiny GPT-2 and a
            character tokenizer from the records (:func:`build_tiny_model` with ``n_layer``, ``n_embd``, ``seed``).
        loss: one of :data:`LM_LOSSES`.
        lam: λ ∈ (0, 1) of ``"r3m"`` and of the outlier flags.
        beta: β > 0.
        eps: ε ∈ [0, 0.5) of ``"conservative"`` and ``"robust"``.
        epochs: passes over ``train_records`` ≥ 1.
        batch_size: pairs per optimizer step ≥ 1.
        lr: AdamW learning rate > 0 (TRL's linear decay to 0); 5e-3 suits the tiny model, use ~5e-6
            to 5e-5 for a pretrained one (the paper's grid).
        max_length: truncation length of prompt + completion in tokens; ``None`` keeps whole sequences.
        n_layer, n_embd: size of the tiny model (ignored with ``model``).
        seed: an int in [0, 2**32), seed of the model initialisation and data order (global RNG states are
            restored afterwards).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
        num_threads: torch intra-op threads during the run (restored afterwards); ``None`` means 1 for the
            tiny model (its kernels are too small to split, and on a loaded 2-core machine two OpenMP
            threads ran ~50× slower) and the current setting for a user's ``model``.
        resume: continue from the last ``checkpoint-*`` in ``out_dir``, to ``epochs`` in all. The other
            arguments (``device`` aside) and the records must be the run's: they are kept in
            ``out_dir/run_args.json`` and a difference is a ``ValueError`` naming it. Without ``resume``, a
            folder holding an earlier run's ``checkpoint-*`` is refused. With the run's ``epochs`` a resume
            equals the uninterrupted run; fewer than the checkpoint has trained are refused; with more, training
            goes on under TRL's restored linear decay (its first step at the old schedule's final lr, 0, then a
            new decay), not as one longer run.
        progress: called as ``progress(global_step, max_steps, logs)`` after each optimizer step.

    Returns:
        Metrics: ``train_loss`` (mean training loss over every step, resumed runs included), ``train_runtime_s``, ``global_step``,
        ``train_accuracy``, ``outlier_frac``, the ``corrupted``-dependent ones above and, with
        ``eval_records``, ``eval_accuracy`` and ``eval_margin_mean``.

    Raises:
        ValueError: a bad argument, named; records that ``max_length`` would drop, or a pair longer
            than the model's positions that ``max_length`` does not cut; a CUDA device
            asked for but absent; ``out_dir`` a file, or holding an earlier run without ``resume``; a resume
            with other arguments or records than the run's, or with fewer ``epochs`` than it has trained.
        FileNotFoundError: ``model`` is not a directory, or ``resume`` with no checkpoint in ``out_dir``.
        ImportError: the ``[trl]`` extra is missing or TRL is outside ``>=1.0,<2``.

    Example (not run here; about 3 s on one CPU core)::

        train, corrupted = make_text_preferences(1000, flip_rate=0.2, seed=0)
        held_out, _ = make_text_preferences(400, seed=99)
        metrics = train_lm_dpo(train, eval_records=held_out, corrupted=corrupted, epochs=3, out_dir="runs/dpo")
        metrics["eval_accuracy"], metrics["outlier_precision"], metrics["outlier_recall"]

    Note:
        The outlier report uses the final policy in a separate pass, not the stale per-step δ of
        training (an over-fitted policy gives outliers positive margins; spec §7). TRL's
        ``Trainer`` seeds Python, NumPy and torch globally; this function restores their states (and
        torch's thread count) on return. TRL's ``"ipo"`` divides each log-ratio by the completion
        length (its own choice, confirmed with the IPO authors); the accuracies here use the plain
        summed log-ratios for every loss.

    References:
        Bukharin et al., "Robust Reinforcement Learning from Corrupted Human Feedback", NeurIPS 2024,
        arXiv:2406.15568, §3.4 and §5.2; Rafailov et al. (2023) for DPO; TRL ``DPOTrainer``.
    """
    train_rows = _check_records(train_records, "train_records")
    eval_rows = None if eval_records is None else _check_records(eval_records, "eval_records")
    if loss not in LM_LOSSES:
        raise ValueError(f"loss must be one of {LM_LOSSES}, got {loss!r}")
    check_lam(lam)  # ValueError naming lam; warns for a λ that looks like 1/n
    beta = _check_number("beta", beta, low=0.0)
    eps = _check_number("eps", eps, low=0.0, high=0.5, low_open=False)
    lr = _check_number("lr", lr, low=0.0)
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    if max_length is not None:
        max_length = _check_int("max_length", max_length, 2)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32) (TRL seeds NumPy with it), got {seed!r}")
    if corrupted is not None and len(corrupted) != len(train_rows):
        raise ValueError(f"corrupted must have one flag per train record ({len(train_rows)}), got {len(corrupted)}")
    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f"device must be one of ('cpu', 'cuda', 'auto'), got {device!r}")
    if not isinstance(resume, bool):
        raise ValueError(f"resume must be a bool, got {resume!r}")

    if num_threads is not None:
        num_threads = _check_int("num_threads", num_threads, 1)
    elif model is None:
        num_threads = 1  # the tiny model's ops are too small to share; two busy cores made 2 threads ~50x slower
    # The imports below and TRL's Trainer draw from and seed the global RNGs; progress goes to ``progress``.
    with _global_state_restored(num_threads), _progress_bars_off(), warnings.catch_warnings():
        # TRL 1.16 reads transformers 5's deprecated alias on every step; the message is noise to our users
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                "device must be 'cpu' or 'auto' here: device='cuda' was asked for but CUDA is not available"
            )
        from r3m.integrations.trl import R3MDPOConfig, R3MDPOTrainer  # checks the TRL version first

        use_cpu = device == "cpu" or not torch.cuda.is_available()
        from transformers.trainer_callback import PrinterCallback
        from transformers.trainer_utils import get_last_checkpoint as _get_last_checkpoint
        from trl.trainer.dpo_config import DPOConfig
        from trl.trainer.dpo_trainer import DPOTrainer

        dataset_cls: Any = importlib.import_module("datasets").Dataset  # datasets ships no type information
        get_last_checkpoint: Any = _get_last_checkpoint  # untyped

        run_dir = Path(out_dir)
        run_args = _run_arguments(train_rows, eval_rows, corrupted, locals())  # the checked values of _RESUMED
        checkpoint = _check_run_dir(run_dir, run_args, epochs, resume, get_last_checkpoint)

        if model is None:
            policy, tokenizer = build_tiny_model(
                train_rows + (eval_rows or []), n_layer=n_layer, n_embd=n_embd, seed=seed
            )
        else:
            policy, tokenizer = load_local_model(model)
        # written once the model loads: a bad --model leaves no half-made run folder behind
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume or not (run_dir / RUN_ARGS).is_file():  # (a run from a version without it: checked from now on)
            (run_dir / RUN_ARGS).write_text(json.dumps(run_args, indent=2) + "\n", encoding="utf-8")
        ref_model = copy.deepcopy(policy)  # π_ref = the initial policy (TRL would reload it by name)
        ref_model.train(False).requires_grad_(False)  # frozen, no dropout (TRL leaves a passed-in one as it is)

        # TRL turns activation checkpointing on by default; transformers 5 renamed the flag (old name deprecated)
        fields = {f.name for f in dataclasses.fields(DPOConfig)}
        checkpointing = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
        off: dict[str, Any] = {checkpointing: False}
        args = DPOConfig(
            output_dir=str(run_dir),
            **off,
            beta=beta,
            loss_type=["sigmoid" if loss in ("r3m", "conservative") else loss],
            label_smoothing=eps if loss == "robust" else 0.0,
            learning_rate=lr,
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            max_length=max_length,
            seed=seed,
            data_seed=seed,
            use_cpu=use_cpu,
            bf16=False,
            fp16=False,
            report_to="none",
            logging_strategy="steps",
            logging_steps=1,
            eval_strategy="no",
            save_strategy="epoch",
            save_total_limit=2,
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        callbacks = [] if progress is None else [_progress_callback(progress)]
        trainer_kwargs: dict[str, Any] = {
            "model": policy,
            "ref_model": ref_model,
            "args": args,
            "train_dataset": dataset_cls.from_list(train_rows),
            "eval_dataset": None if eval_rows is None else dataset_cls.from_list(eval_rows),
            "processing_class": tokenizer,
            "callbacks": callbacks,
        }
        if loss in ("r3m", "conservative"):
            own_loss: Literal["r3m", "conservative"] = "conservative" if loss == "conservative" else "r3m"
            with warnings.catch_warnings():  # a small λ was warned about by check_lam above, once
                warnings.simplefilter("ignore", UserWarning)
                config = R3MDPOConfig(lam=lam, loss=own_loss, eps=eps)
            trainer: Any = R3MDPOTrainer(r3m=config, **trainer_kwargs)
        else:
            trainer = DPOTrainer(**trainer_kwargs)
        trainer.remove_callback(PrinterCallback)  # with disable_tqdm, Trainer prints every log to stdout
        for name, rows, dataset in (
            ("train_records", train_rows, trainer.train_dataset),
            ("eval_records", eval_rows, trainer.eval_dataset),
        ):
            if rows is not None and len(dataset) != len(rows):
                raise ValueError(
                    f"max_length={max_length} drops {len(rows) - len(dataset)} of the {name} whose prompt alone "
                    "fills it; raise max_length"
                )
        _check_context(policy, max_length, trainer.train_dataset, trainer.eval_dataset)

        logger.info("r3m dpo: loss=%s, %d train pairs, %d epochs, resume=%s", loss, len(train_rows), epochs, checkpoint)
        with _tied_keys_not_reported(policy):
            result = trainer.train(resume_from_checkpoint=checkpoint)
        if checkpoint is not None and trainer.state.global_step <= int(Path(checkpoint).name.rsplit("-", 1)[-1]):
            done = round(float(trainer.state.epoch or epochs))
            warnings.warn(  # say so, rather than report the same run again in silence
                f"nothing to resume in {str(run_dir)!r}: it already trained {done} epoch(s); resume with "
                f"epochs > {done} to train on",
                UserWarning,
                stacklevel=2,
            )

        metrics: dict[str, float] = {
            "train_loss": _mean_logged_loss(trainer.state.log_history, float(result.training_loss)),
            "train_runtime_s": float(result.metrics.get("train_runtime", math.nan)),
            "global_step": float(trainer.state.global_step),
        }
        eval_batch = batch_size  # the user's: a larger one could run out of memory after training
        z_train = beta * _logratio_margins(trainer, trainer.train_dataset, eval_batch)
        _write_deltas(run_dir / "deltas.csv", z_train, lam, corrupted)
        metrics["train_accuracy"] = _accuracy(z_train)
        metrics.update(_outlier_report(z_train, lam, corrupted))
        if eval_rows is not None:
            z_eval = beta * _logratio_margins(trainer, trainer.eval_dataset, eval_batch)
            metrics["eval_accuracy"] = _accuracy(z_eval)
            metrics["eval_margin_mean"] = float(np.mean(z_eval))
    return metrics


def _progress_callback(progress: ProgressFn) -> Any:
    """A ``transformers.TrainerCallback`` that forwards each log to ``progress``."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def on_log(
            self, args: Any, state: Any, control: Any, logs: Mapping[str, float] | None = None, **_: Any
        ) -> None:
            progress(int(state.global_step), int(state.max_steps), dict(logs or {}))

    return _Progress()
