"""Ada-DPO on a causal language model through TRL, CPU-sized by default.

Three pieces (the first two live in :mod:`adapref.lm_text` and are re-exported here):

- :func:`make_text_preferences`: a synthetic text preference task with a known answer (small
  additions, ``"3+4="`` → chosen ``"7"``, rejected a wrong sum) in TRL's explicit-prompt format, with
  an exact number of flipped pairs.
- :func:`build_tiny_model` (a small GPT-2 from its config and a character-level tokenizer built in
  memory; nothing is downloaded) and :func:`load_local_model` (a user's model directory, offline).
- :func:`train_lm_dpo`: one DPO run with Ada-DPO (:class:`adapref.integrations.trl.AdaDPOTrainer`,
  linear or quadratic penalty) or a stock ``trl.DPOTrainer`` loss (``sigmoid``, ``ipo``, ``hinge``),
  then a final pass with the trained policy and the reference over every pair: implicit-reward
  accuracy and, for the Ada losses, the per-pair scaling factors τ_i at the final margins.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from adapref.lm_text import (
    SPECIAL_TOKENS,
    build_tiny_model,
    check_records,
    load_local_model,
    make_text_preferences,
    record_list,
)
from adapref.metrics import spearman
from adapref.scaling import Solver, check_scaling_args, solve_tau

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

LM_LOSSES = ("ada", "ada-quad", "sigmoid", "ipo", "hinge")
"""Losses of :func:`train_lm_dpo`: ours (``ada``, ``ada-quad``) and TRL's stock loss types."""
_ADA_LOSSES = ("ada", "ada-quad")
_AT_BOUND_RTOL = 1e-6
"""τ within this relative distance of a bound counts as at it (as ``AdaDPOTrainer`` logs ``ada/frac_*``)."""

ProgressFn = Callable[[int, int, Mapping[str, float]], None]
"""``progress(global_step, max_steps, logs)``, called at every logging step (each optimizer step)."""

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


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


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 < value < math.inf):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


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


def _logratio_margins(trainer: Any, dataset: Any, batch_size: int) -> FloatArray:
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


def _pair_accuracy(z: FloatArray) -> float:
    """Share of pairs with z_i > 0, a tie z_i = 0 counting one half."""
    return float(np.mean(z > 0) + 0.5 * np.mean(z == 0))


def _record_strength(records: Sequence[Mapping[str, Any]]) -> FloatArray | None:
    """The optional ``strength`` key of the train records (on every record or none; finite, ≥ 0)."""
    has = [isinstance(r, Mapping) and "strength" in r for r in records]
    if not any(has):
        return None
    if not all(has):
        first, missing = has.index(True), has.index(False)
        raise ValueError(
            f"train_records[{first}] has a 'strength' but train_records[{missing}] has none; give it on every record or none"
        )
    values = []
    for i, record in enumerate(records):
        v = record["strength"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"train_records[{i}]['strength'] must be a finite number >= 0, got {v!r}")
        values.append(float(v))
    return np.asarray(values, dtype=np.float64)


def _write_taus(path: Path, z: FloatArray, tau: FloatArray, strength: FloatArray | None = None) -> None:
    """``index,z,tau[,strength]`` per train pair, written atomically (a temporary file, then ``os.replace``)."""
    columns = [z, tau] if strength is None else [z, tau, strength]
    header = "index,z,tau" if strength is None else "index,z,tau,strength"
    rows = zip(*columns, strict=True)
    lines = [header, *(",".join([str(i), *(f"{v:.9g}" for v in row)]) for i, row in enumerate(rows))]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)


RUN_ARGS = "run_args.json"
"""File in ``out_dir`` with the arguments of a run (and a fingerprint of its records), checked on resume."""


_RESUMED = ("model", "loss", "beta", "batch_size", "lr", "max_length", "n_layer", "n_embd", "seed")
"""The arguments of :func:`train_lm_dpo` that a resume must repeat, with :data:`_ADA_ARGS` for an Ada loss
(``epochs`` may grow, ``device`` change)."""


def _run_arguments(
    train_rows: Sequence[Mapping[str, Any]], eval_rows: Sequence[Mapping[str, Any]] | None, arguments: Mapping[str, Any]
) -> dict[str, Any]:
    """What ``run_args.json`` records: the :data:`_RESUMED` values of ``arguments`` (``model`` as a string), the
    Ada settings for an Ada loss (``clamp_tau_max`` only when on, so that earlier runs' files match) and SHA-256
    fingerprints of the train and eval records."""

    def fingerprint(rows: Sequence[Mapping[str, Any]] | None) -> str | None:
        if rows is None:
            return None
        text = json.dumps([dict(r) for r in rows], sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    model = arguments["model"]
    recorded = {k: arguments[k] for k in _RESUMED} | {"model": None if model is None else str(model)}
    if arguments["loss"] in _ADA_LOSSES:  # the stock losses do not use them
        recorded |= {k: arguments[k] for k in _ADA_ARGS if k != "clamp_tau_max" or arguments[k]}
    return {**recorded, "train_records": fingerprint(train_rows), "eval_records": fingerprint(eval_rows)}


def _mean_logged_loss(log_history: Sequence[Mapping[str, Any]], fallback: float) -> float:
    """Mean training loss over every optimizer step of the run, resumed parts included.

    With ``logging_steps=1`` each step logs its loss and the history is restored from the checkpoint;
    ``TrainOutput.training_loss`` counts only the steps of the current call (0 for a finished run resumed).
    """
    losses = [float(h["loss"]) for h in log_history if "loss" in h]
    return float(np.mean(losses)) if losses else fallback


_ADA_ARGS = ("rho0", "tau0", "tau_max", "solver", "n_iter", "clamp_tau_max")
"""The Ada-DPO settings, recorded in ``run_args.json`` of an ada run only."""


def _check_resume_arguments(path: Path, run_args: dict[str, Any]) -> None:
    """``ValueError`` naming every argument that differs from the run's ``run_args.json`` (none: nothing to check)."""
    if not path.is_file():  # a run from a version without the file: nothing to compare with
        return
    saved = json.loads(path.read_text(encoding="utf-8"))
    if run_args.get("loss") not in ("ada", "ada-quad"):  # a stock loss's run of an earlier version recorded them
        saved = {k: v for k, v in saved.items() if k not in _ADA_ARGS}
    differ = [k for k in sorted(set(saved) | set(run_args)) if saved.get(k) != run_args.get(k)]
    if differ:
        shown = ", ".join(
            f"{k}={run_args.get(k)!r} (the run has {saved.get(k)!r})"
            if not k.endswith("_records")
            else f"{k} (other content)"
            for k in differ
        )
        raise ValueError(
            f"resume=True with other arguments than the run in {path.parent}: {shown}; "
            "resume with the run's arguments, or start a new run in another out_dir"
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
    epochs: int | None = None,
    **arguments: Any,
) -> None:
    """The checks of ``train_lm_dpo(..., resume=True)`` against the run in ``out_dir``, on their own.

    ``arguments`` are :func:`train_lm_dpo`'s keywords among :data:`_RESUMED` and :data:`_ADA_ARGS`, its defaults
    filling the rest; they are compared with the run's ``run_args.json``, and ``epochs`` (unless ``None``) with its
    last checkpoint's. For a caller that resumes several runs and must refuse before any of them trains
    (``adapref dpo --resume``): ``train_lm_dpo`` checks its own run only, when the runs before it have trained.
    """
    unknown = sorted(set(arguments) - {*_RESUMED, *_ADA_ARGS})
    if unknown:
        raise TypeError(f"_check_resume got arguments that a resume does not compare: {unknown}")
    parameters = inspect.signature(train_lm_dpo).parameters
    settings = {**{k: parameters[k].default for k in (*_RESUMED, *_ADA_ARGS)}, **arguments}
    train_rows = check_records(record_list(train_records, "train_records"), "train_records")
    eval_rows = None if eval_records is None else check_records(eval_records, "eval_records")
    _check_resume_arguments(Path(out_dir) / RUN_ARGS, _run_arguments(train_rows, eval_rows, settings))
    if epochs is not None:
        from transformers.trainer_utils import get_last_checkpoint as _get_last_checkpoint

        get_last_checkpoint: Any = _get_last_checkpoint  # untyped
        checkpoint = get_last_checkpoint(str(out_dir)) if Path(out_dir).is_dir() else None
        if checkpoint is not None:
            _check_resume_epochs(checkpoint, epochs)


def train_lm_dpo(
    train_records: Iterable[Mapping[str, Any]],
    *,
    out_dir: str | os.PathLike[str],
    eval_records: Iterable[Mapping[str, Any]] | None = None,
    model: str | os.PathLike[str] | None = None,
    loss: str = "ada",
    rho0: float = 0.1,
    tau0: float = 0.1,
    tau_max: float = 5.0,
    solver: Solver = "exact",
    n_iter: int = 5,
    clamp_tau_max: bool = False,
    beta: float = 0.1,
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
    """Train a causal LM with Ada-DPO or a DPO baseline through TRL; return the final metrics.

    Paper symbols: ``beta`` = β, ``rho0`` = ρ0, ``tau0`` = τ0, ``tau_max`` = τ_max, ``n_iter`` = K
    (Newton solvers only); h_i = (log π − log π_ref)(y_w) − (log π − log π_ref)(y_l) and z_i = β·h_i.
    The reference π_ref is a frozen copy of the initial policy. ``"ada"`` minimises (§3.5, eq. 6
    with d_i = z_i)

    .. math::

        \\mathcal L = \\frac1B \\sum_i -\\tau_i \\log\\sigma(z_i/\\tau_i), \\qquad
        \\tau_i = \\arg\\min_{\\tau_0\\le\\tau\\le\\tau_{\\max}} -\\tau\\log\\sigma(z_i/\\tau) + (\\rho_0 - \\log 2)\\,\\tau,

    through :class:`~adapref.integrations.trl.AdaDPOTrainer`; ``"ada-quad"`` is the same trainer
    with the quadratic penalty ρ0τ² − (log 2)τ of §3.6 (eq. 12; ``tau_max`` is then ignored, as in the
    paper, unless ``clamp_tau_max``, as in the authors' DPO trainer). TRL's stock losses: ``"sigmoid"`` (DPO,
    −logσ(z_i)), ``"ipo"`` (TRL's length-normalised IPO) and ``"hinge"`` (SLiC, relu(1 − z_i)).
    Training runs in float32 (``bf16=False``), ``report_to="none"``, and saves a checkpoint (policy,
    tokenizer, optimizer, RNG state) into ``out_dir/checkpoint-<step>`` at the end of every epoch
    (the last one holds the final policy; two are kept).

    After training, one pass over every pair with the trained policy and the reference gives z_i:
    ``train_accuracy`` (share of train pairs with z_i > 0, against the observed labels) and, with
    ``eval_records``, ``eval_accuracy`` and ``eval_margin_mean`` (mean z_i) on them; a tie z_i = 0
    counts one half in both accuracies. For the Ada losses τ_i is solved at the final train z_i
    with :func:`adapref.scaling.solve_tau` (the trainer's hyperparameters): ``tau_mean``,
    ``frac_tau0`` and ``frac_taumax`` (share within a relative 1e-6 of τ0, of τ_max; NaN for ``"ada-quad"``
    without ``clamp_tau_max``, which has no upper bound), and
    ``out_dir/taus.csv`` (``index,z,tau`` per train pair, written atomically). When the train records carry a
    ``strength`` (a known preference strength ≥ 0, on every record or none; the text is trained without it),
    ``taus.csv`` gets a ``strength`` column and the metrics ``spearman_tau_strength`` and
    ``spearman_abs_z_strength`` (Spearman of τ_i and of |z_i| with it: the paper's Fig. 5b diagnostic).

    Args:
        train_records: ``{"prompt","chosen","rejected"}`` string records (TRL explicit-prompt format): a
            list of dicts or a ``datasets.Dataset`` split (:func:`adapref.data.from_trl_dataset` checks one;
            :func:`adapref.lm_text.explicit_prompt_records` splits off an implicit prompt).
        out_dir: run directory for TRL's checkpoints and ``taus.csv`` (created).
        eval_records: held-out records for ``eval_accuracy``; ``None`` skips it.
        model: a local model directory (:func:`load_local_model`); ``None`` builds a tiny GPT-2 and a
            character tokenizer from the records (:func:`build_tiny_model` with ``n_layer``, ``n_embd``, ``seed``).
        loss: one of :data:`LM_LOSSES`.
        rho0: KL radius ρ0 > 0 of the Ada losses (ρ0 ≥ log 2 makes τ ≡ τ0, with a warning).
        tau0: lower bound τ0 > 0 of τ, in units of β·h.
        tau_max: upper bound τ_max ≥ τ0 of τ (``"ada"`` only).
        solver: ``"exact"`` (closed form), ``"newton"`` (safeguarded Algorithm 1) or ``"newton-official"``.
        n_iter: Newton iterations K ≥ 1 (Newton solvers only; τ^(0) = 1).
        clamp_tau_max: ``"ada-quad"`` only: also clamp τ at ``tau_max``, as the authors' DPO trainer does.
        beta: β > 0.
        epochs: passes over ``train_records`` ≥ 1.
        batch_size: pairs per optimizer step ≥ 1.
        lr: AdamW learning rate > 0 (TRL's linear decay to 0); 5e-3 suits the tiny model, use ~5e-7
            to 5e-6 for a pretrained one.
        max_length: truncation length of prompt + completion in tokens; ``None`` keeps whole sequences.
        n_layer, n_embd: size of the tiny model (ignored with ``model``).
        seed: an int in [0, 2**32), seed of the model initialisation and data order (global RNG states are
            restored afterwards).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
        num_threads: torch intra-op threads during the run (restored afterwards); ``None`` means 1 for the
            tiny model (its kernels are too small to split; on a loaded 2-core machine two OpenMP
            threads ran far slower) and the current setting for a user's ``model``.
        resume: continue from the last ``checkpoint-*`` in ``out_dir``, to ``epochs`` in all. The other arguments
            and the records must be the run's: they are kept in ``out_dir/run_args.json`` and a difference is
            a ``ValueError`` naming it. Without ``resume``, a folder holding an earlier run's ``checkpoint-*``
            is refused. With the run's ``epochs`` a resume equals the uninterrupted run; fewer than the
            checkpoint has trained are refused; with more, training goes on under TRL's restored linear decay
            (its first step at the old schedule's final lr, 0, then a new decay), not as one longer run.
        progress: called as ``progress(global_step, max_steps, logs)`` after each optimizer step.

    Returns:
        Metrics: ``train_loss`` (mean training loss), ``train_runtime_s``, ``global_step``,
        ``train_accuracy``; with ``eval_records`` ``eval_accuracy`` and ``eval_margin_mean``; for the
        Ada losses ``tau_mean``, ``frac_tau0`` and ``frac_taumax``, and with a ``strength`` on the records
        ``spearman_tau_strength`` and ``spearman_abs_z_strength``.

    Raises:
        ValueError: a bad argument, named; records that ``max_length`` would drop, or a pair longer
            than the model's positions that ``max_length`` does not cut; a CUDA device
            asked for but absent; ``resume`` with other arguments or records than the run's, or with fewer
            ``epochs`` than it has trained.
        FileNotFoundError: ``model`` is not a directory, or ``resume`` with no checkpoint in ``out_dir``.
        ImportError: the ``[trl]`` extra is missing or TRL is outside ``>=1.0,<2``.

    Example (not run here; a few seconds on one CPU core)::

        train, _ = make_text_preferences(1000, flip_rate=0.2, seed=0)
        held_out, _ = make_text_preferences(400, seed=99)
        metrics = train_lm_dpo(train, eval_records=held_out, loss="ada", epochs=3, out_dir="runs/ada")
        metrics["eval_accuracy"], metrics["tau_mean"]

    Note:
        The τ statistics come from the final policy in a separate pass, not from the per-step τ of
        training (TRL logs those as ``ada/tau_mean`` etc. through ``progress``). TRL's ``Trainer``
        seeds Python, NumPy and torch globally; this function restores their states (and torch's
        thread count) on return. TRL's ``"ipo"`` divides each log-ratio by the completion length
        (its own choice, confirmed with the IPO authors); the accuracies here use the plain summed
        log-ratios for every loss.

    References:
        Hong et al., "Adaptive Preference Scaling for Reinforcement Learning with Human Feedback",
        NeurIPS 2024, arXiv:2406.02764, §3.5-3.6; Rafailov et al. (2023) for DPO; TRL ``DPOTrainer``.
    """
    train_records = record_list(train_records, "train_records")  # a generator is read once, for both uses
    train_rows = check_records(train_records, "train_records")
    strength = _record_strength(train_records)
    eval_rows = None if eval_records is None else check_records(eval_records, "eval_records")
    if loss not in LM_LOSSES:
        raise ValueError(f"loss must be one of {LM_LOSSES}, got {loss!r}")
    ada = loss in _ADA_LOSSES
    quadratic = loss == "ada-quad"
    if not isinstance(clamp_tau_max, bool):
        raise ValueError(f"clamp_tau_max must be a bool, got {clamp_tau_max!r}")
    if clamp_tau_max and not quadratic:
        raise ValueError(f"clamp_tau_max applies to loss 'ada-quad' only, got loss {loss!r}")
    with warnings.catch_warnings():  # AdaDPOConfig warns about rho0 >= log 2 below, for the Ada losses only
        warnings.simplefilter("ignore", UserWarning)
        check_scaling_args(rho0, tau0, tau_max, solver, n_iter, 1.0, quadratic)  # ValueError naming the argument
    beta = _check_number("beta", beta)
    lr = _check_number("lr", lr)
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    if max_length is not None:
        max_length = _check_int("max_length", max_length, 2)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32) (TRL seeds NumPy with it), got {seed!r}")
    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f"device must be one of ('cpu', 'cuda', 'auto'), got {device!r}")
    if not isinstance(resume, bool):
        raise ValueError(f"resume must be a bool, got {resume!r}")

    if num_threads is not None:
        num_threads = _check_int("num_threads", num_threads, 1)
    elif model is None:
        num_threads = 1  # the tiny model's ops are too small to share between threads
    # The imports below and TRL's Trainer draw from and seed the global RNGs; progress goes to ``progress``.
    with _global_state_restored(num_threads), _progress_bars_off(), warnings.catch_warnings():
        # TRL 1.16 reads transformers 5's deprecated alias on every step; the message is noise to our users
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                "device must be 'cpu' or 'auto' here: device='cuda' was asked for but CUDA is not available"
            )
        from adapref.integrations.trl import AdaDPOConfig, AdaDPOTrainer  # checks the TRL version first

        use_cpu = device == "cpu" or not torch.cuda.is_available()
        from transformers.trainer_callback import PrinterCallback
        from transformers.trainer_utils import get_last_checkpoint as _get_last_checkpoint
        from trl.trainer.dpo_config import DPOConfig
        from trl.trainer.dpo_trainer import DPOTrainer

        dataset_cls: Any = importlib.import_module("datasets").Dataset  # datasets ships no type information
        get_last_checkpoint: Any = _get_last_checkpoint  # untyped

        run_dir = Path(out_dir)
        if run_dir.exists() and not run_dir.is_dir():
            raise ValueError(f"out_dir {str(run_dir)!r} is a file; give a folder for the run")
        run_args = _run_arguments(train_rows, eval_rows, locals())  # the checked values of _RESUMED, _ADA_ARGS
        existing: str | None = get_last_checkpoint(str(run_dir)) if run_dir.is_dir() else None
        if resume:
            if existing is None:
                raise FileNotFoundError(f"resume=True but out_dir {str(run_dir)!r} holds no checkpoint-* directory")
            _check_resume_arguments(run_dir / RUN_ARGS, run_args)
            _check_resume_epochs(existing, epochs)
        elif existing is not None:  # TRL would mix them: the next resume would pick up the old run's last one
            raise ValueError(
                f"out_dir {str(run_dir)!r} holds the checkpoints of an earlier run ({Path(existing).name}); "
                "pass resume=True (CLI: --resume) to continue it, or choose another out_dir"
            )
        checkpoint = existing if resume else None

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
            loss_type=["sigmoid" if ada else loss],  # AdaDPOTrainer replaces the sigmoid loss
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
        trainer: Any
        # the τ solve of the trainer and of the report below (taus.csv, tau_mean, ...): one set of settings
        scaling: dict[str, Any] = {"rho0": rho0, "tau0": tau0, "tau_max": tau_max, "solver": solver, "n_iter": n_iter,
                                   "tau_init": 1.0, "quadratic": quadratic, "clamp_tau_max": clamp_tau_max}  # fmt: skip
        trainer = AdaDPOTrainer(ada=AdaDPOConfig(**scaling), **trainer_kwargs) if ada else DPOTrainer(**trainer_kwargs)
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

        logger.info("lm dpo: loss=%s, %d train pairs, %d epochs, resume=%s", loss, len(train_rows), epochs, checkpoint)
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
        metrics["train_accuracy"] = _pair_accuracy(z_train)
        if eval_rows is not None:
            z_eval = beta * _logratio_margins(trainer, trainer.eval_dataset, eval_batch)
            metrics["eval_accuracy"] = _pair_accuracy(z_eval)
            metrics["eval_margin_mean"] = float(np.mean(z_eval))
        if ada:
            with warnings.catch_warnings():  # a rho0 >= log 2 warning was given by AdaDPOConfig already
                warnings.simplefilter("ignore", UserWarning)
                # float64 in, float64 out; newton-official with the DPO trainer's eps, as ada_dpo_loss
                tau = solve_tau(torch.from_numpy(z_train), **scaling, official_eps=1e-6).numpy()
            _write_taus(run_dir / "taus.csv", z_train, tau, strength)
            metrics["tau_mean"] = float(np.mean(tau))
            if strength is not None:  # a rank correlation needs two pairs; one gives NaN, as a constant input does
                two = len(tau) >= 2
                metrics["spearman_tau_strength"] = spearman(tau, strength) if two else math.nan
                metrics["spearman_abs_z_strength"] = spearman(np.abs(z_train), strength) if two else math.nan
            metrics["frac_tau0"] = float(np.mean(np.abs(tau - tau0) <= _AT_BOUND_RTOL * tau0))
            metrics["frac_taumax"] = (
                math.nan if quadratic and not clamp_tau_max  # no upper bound (paper §3.6): no share at one
                else float(np.mean(np.abs(tau - tau_max) <= _AT_BOUND_RTOL * tau_max))
            )  # fmt: skip
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
