"""Benchmarks of COSMOS against AdamW, Muon and SOAP, side by side (``cosmos-optim bench``, ``benchmarks/run.py``).

Every benchmark runs all optimizers in one process with the same model, data, seeds and thread
count, and returns a table; :func:`run` writes ``<name>.json`` (package, version, git commit,
command, date, machine, threads, config, targets, rows) and ``<name>.md`` under the output folder
and prints the Markdown. The claims tested are the issue's (spec §6):

- ``lm``: a character-level GPT (d=128, 4 layers, 4 heads, seq 128, batch 32) on the bundled
  ``pydoc_data`` corpus; a per-optimizer lr grid on seed 0, chosen on the validation loss, then more
  seeds at the chosen lr; validation loss at equal steps and at equal wall-clock, step time, state bytes.
- ``steptime``: full training step (forward, backward, clipping, update) and optimizer step alone at
  d=512, 2 layers, 4096 tokens per step, interleaved repeats.
- ``memory``: optimizer-state bytes of the LLaMA 60M-1B shapes, computed from shapes (no training).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from cosmos_optim._version import __version__
from cosmos_optim.data import TextData, load_corpus
from cosmos_optim.model import GPT
from cosmos_optim.report import (
    Table,
    fmt_pm,
    git_describe,
    machine,
    mean_std,
    plot_curves,
    render_markdown,
    target,
    write_json,
)
from cosmos_optim.train import (
    CHECKPOINT,
    DEFAULT_LR,
    OPTIMIZERS,
    RESULT,
    TrainConfig,
    TrainResult,
    build,
    state_bytes,
    train,
)

logger = logging.getLogger(__name__)

LM_GRID: dict[str, tuple[float, ...]] = {
    "adamw": (3e-3, 6e-3, 1.2e-2),
    "muon": (0.025, 0.05, 0.1),
    "soap": (8e-3, 1.6e-2, 3.2e-2),
    "cosmos": (2e-3, 4e-3, 6e-3),
}
"""Learning rates tried on seed 0: three per optimizer around its best in the spec §6 B4 grid, widened
until the best of this benchmark sat inside the grid for every optimizer (the table flags a best lr at a
grid edge), so that no optimizer is held back by its grid."""

LM_ADAM_LR = 2e-3
"""AdamW lr η0 of embeddings, head and norms for Muon and COSMOS (spec §6 B4); γ = η/η0 for COSMOS."""

LM_RANK = 32
"""COSMOS rank on the d=128 model (d/4, the spec §6 B4 setting)."""

LM_STEPS = 200
"""Steps per ``lm`` run (spec §6 B4)."""

ABLATION: tuple[tuple[int, float | None], ...] = ((0, None), (8, None), (128, None), (LM_RANK, 0.5), (LM_RANK, 1.0))
"""``(rank, gamma)`` of the COSMOS ablation runs (``None``: γ = η/η0 as in ``lm``); rank 128 is full rank on
the d=128 model (no Muon part), rank 0 is normalised Muon (no SOAP part)."""

DEFAULT_THREADS = 2
"""torch threads of every benchmark by default (the 2-core development machine, not shared while benchmarking)."""

LLAMA: dict[str, tuple[int, int, int, int]] = {
    "60M": (512, 8, 1376, 64),
    "130M": (768, 12, 2048, 64),
    "350M": (1024, 24, 2736, 128),
    "1B": (2048, 24, 5461, 256),
}
"""LLaMA sizes of the paper's C4 runs: ``(d, layers, ffn, COSMOS rank)``; d, layers and ffn as in GaLore's
``configs/llama_*.json`` (vocabulary 32000, untied head), rank as chosen for this benchmark."""

MEMORY_METHODS: tuple[str, ...] = ("adamw", "muon", "soap", "soap-gg", "galore", "cosmos")


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """Settings shared by the benchmarks."""

    quick: bool = False
    """smallest settings: a smoke test of a few seconds."""
    out: Path = Path("bench-results")
    """folder for the JSON, Markdown and PNG files (and the ``lm`` runs)."""
    resume: bool = False
    """``lm``: reuse finished runs found under ``out`` and continue an interrupted one."""
    threads: int = DEFAULT_THREADS
    """``torch.set_num_threads`` for every benchmark."""
    steps: int | None = None
    """``lm`` steps per run (default :data:`LM_STEPS`; quick 6)."""
    seeds: int | None = None
    """``lm`` seeds at the chosen lr, seed 0 included (default 3; quick 2)."""
    optimizers: tuple[str, ...] = OPTIMIZERS
    """optimizers to compare."""
    repeats: int | None = None
    """``steptime`` timed repeats per optimizer (default 8; quick 2)."""
    progress: bool = True
    """tqdm bars on stderr."""


# ----------------------------------------------------------------------------------------------- lm


def lm_config(optimizer: str, lr: float, seed: int, opts: BenchOptions) -> TrainConfig:
    """The ``lm`` benchmark's run of ``optimizer`` at ``lr`` and ``seed`` (quick: a 6-step toy)."""
    if opts.quick:
        return TrainConfig(optimizer=optimizer, lr=lr, adam_lr=LM_ADAM_LR, rank=8, steps=opts.steps or 6, warmup=2,
                           batch_size=4, seq_len=32, d_model=32, n_layer=1, n_head=2, seed=seed, eval_every=3,
                           eval_batches=1, threads=opts.threads)  # fmt: skip
    steps = opts.steps or LM_STEPS
    return TrainConfig(optimizer=optimizer, lr=lr, adam_lr=LM_ADAM_LR, rank=LM_RANK, steps=steps,
                       eval_every=max(1, steps // 6), seed=seed, threads=opts.threads)  # fmt: skip


def run_in_folder(
    config: TrainConfig, folder: Path, data: TextData, *, resume: bool = False, progress: bool = True
) -> TrainResult:
    """One run in ``folder``; with ``resume``, reuse its finished result or continue its checkpoint.

    A finished run keeps only ``config.json`` and ``result.json`` (the checkpoint is removed); a result or
    checkpoint written with another configuration is run again from the start.
    """
    if resume and (folder / RESULT).is_file():
        try:
            done = TrainResult.from_dict(json.loads((folder / RESULT).read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring unreadable %s: %s", folder / RESULT, exc)
        else:
            if done.config == config:
                logger.info("reusing the finished run %s", folder)
                return done
    resume = resume and (folder / CHECKPOINT).is_file()
    try:
        result = train(config, folder, resume=resume, progress=progress, data=data)
    except ValueError as exc:
        if not resume:
            raise
        logger.warning("cannot resume %s (%s); running it again", folder, exc)
        result = train(config, folder, progress=progress, data=data)
    (folder / CHECKPOINT).unlink(missing_ok=True)  # the result file is what a later --resume needs
    return result


def _lm_run(config: TrainConfig, data: TextData, runs_dir: Path, opts: BenchOptions) -> TrainResult:
    folder = runs_dir / f"{config.optimizer}-lr{config.resolved_lr:g}-seed{config.seed}"
    return run_in_folder(config, folder, data, resume=opts.resume, progress=opts.progress)


def summarize(runs: dict[str, list[TrainResult]]) -> tuple[list[dict[str, Any]], float]:
    """Side-by-side rows of several optimizers' runs (same steps and seeds) and the equal wall-clock ``T*``.

    "val loss @ equal steps" is the final validation loss after ``config.steps`` steps, mean ± sample std
    over the runs; "val loss @ equal wall-clock" the validation loss at ``T*`` seconds of training.

    ``T*`` is the shortest total training time of any run that did not diverge; each run's validation
    loss at ``T*`` is interpolated between its evaluations. Step time: median over every step of the runs.
    Ratios are to the ``adamw`` and ``soap`` entries when present.

    Returns:
        ``(rows, T*)``, one row per entry of ``runs`` (keys: the optimizer names).
    """
    finished = [r.train_seconds for rs in runs.values() for r in rs if not r.diverged]
    t_star = min(finished) if finished else math.nan
    step_ms = {
        n: 1e3 * statistics.median([s for r in rs for s in r.step_seconds] or [math.nan]) for n, rs in runs.items()
    }
    state = {n: rs[0].state_bytes for n, rs in runs.items()}
    rows = []
    for n, rs in runs.items():
        cfg = rs[0].config
        lr_text = f"{cfg.resolved_lr:g}"
        if cfg.optimizer in ("muon", "cosmos"):
            gamma = cfg.gamma if cfg.gamma is not None else cfg.resolved_lr / cfg.adam_lr
            lr_text += f" (adam {cfg.adam_lr:g}" + (f", γ {gamma:g})" if cfg.optimizer == "cosmos" else ")")
        rows.append({
            "optimizer": n, "lr": lr_text,
            "val loss @ equal steps": fmt_pm([r.final_val_loss for r in rs]),
            "val loss @ equal wall-clock": fmt_pm([r.val_loss_at_seconds(t_star) for r in rs]),
            "step ms (median)": round(step_ms[n], 1), "step × AdamW": _ratio(step_ms, n, "adamw"),
            "tokens/s": round(statistics.fmean(r.tokens_per_second for r in rs)),
            "state MiB": round(state[n] / 2**20, 3), "state × AdamW": _ratio(state, n, "adamw"),
            "state × SOAP": _ratio(state, n, "soap"),
        })  # fmt: skip
    return rows, t_star


def run_summary(result: TrainResult) -> dict[str, Any]:
    """The numbers of a run worth keeping in a benchmark record (no per-step lists)."""
    return {
        "optimizer": result.config.optimizer, "lr": result.config.resolved_lr, "seed": result.config.seed,
        "final_val_loss": result.final_val_loss, "val_steps": result.val_steps, "val_loss": result.val_loss,
        "val_seconds": result.val_seconds, "train_seconds": result.train_seconds,
        "step_seconds_median": statistics.median(result.step_seconds) if result.step_seconds else math.nan,
        "tokens_per_second": result.tokens_per_second, "state_bytes": result.state_bytes, "diverged": result.diverged,
    }  # fmt: skip


def bench_lm(opts: BenchOptions) -> Table:
    """Loss at equal steps and at equal wall-clock, step time and state of every optimizer on the GPT.

    Protocol: for each optimizer, one run per lr of :data:`LM_GRID` on seed 0; the lr with the lowest
    final validation loss is kept and ``seeds - 1`` more seeds run at it. Runs are interleaved over the
    optimizers (grid first, then seeds). Equal wall-clock: ``T*`` is the shortest total training time of
    any kept run (the time the fastest run needed for all its steps); each kept run's validation loss at
    ``T*`` is interpolated linearly between its evaluations. Step time is the median over all steps of
    the kept runs.

    Budget (measured on the 2-core development machine, two threads, torch 2.13 CPU): about 0.17-0.19 s
    per step at the default size, so 20 runs of 200 steps plus evaluations take about 13 minutes.
    """
    data = load_corpus()
    names = list(opts.optimizers)
    n_seeds = opts.seeds if opts.seeds is not None else (2 if opts.quick else 3)
    runs_dir = opts.out / ("lm-quick-runs" if opts.quick else "lm-runs")
    grid: dict[str, dict[float, TrainResult]] = {n: {} for n in names}
    for i in range(max(len(LM_GRID[n]) for n in names)):
        for n in names:
            if i < len(LM_GRID[n]):
                lr = LM_GRID[n][i]
                grid[n][lr] = _lm_run(lm_config(n, lr, 0, opts), data, runs_dir, opts)
    best_lr = {n: _best_lr(grid[n]) for n in names}
    kept: dict[str, list[TrainResult]] = {n: [grid[n][best_lr[n]]] for n in names}
    for seed in range(1, n_seeds):
        for n in names:
            kept[n].append(_lm_run(lm_config(n, best_lr[n], seed, opts), data, runs_dir, opts))

    rows, t_star = summarize(kept)
    for i, n in enumerate(names):
        per_lr = ", ".join(f"{lr:g}: {r.final_val_loss:.4f}" for lr, r in grid[n].items())
        edge = len(grid[n]) > 1 and best_lr[n] in (min(grid[n]), max(grid[n]))
        rows[i] = {
            "optimizer": n,
            "seed-0 val loss per lr": per_lr,
            "best lr at grid edge": "yes" if edge else "no",
            **{k: v for k, v in rows[i].items() if k != "optimizer"},
        }
    final = {n: [r.final_val_loss for r in kept[n]] for n in names}
    targets = _lm_targets(final, names)
    stem = "lm-quick" if opts.quick else "lm"
    figures = {"loss_vs_step": f"{stem}-loss-vs-step.png", "loss_vs_seconds": f"{stem}-loss-vs-seconds.png"}
    labels = {f"{n} lr={best_lr[n]:g}": kept[n] for n in names}
    plot_curves(labels, steps_png=opts.out / figures["loss_vs_step"], seconds_png=opts.out / figures["loss_vs_seconds"],
                title=f"char-GPT on pydoc_data, {n_seeds} seed(s)", equal_seconds=t_star)  # fmt: skip
    c0 = kept[names[0]][0].config
    return {
        "title": "lm: validation loss of a character-level GPT at equal steps and equal wall-clock",
        "setup": f"pre-LN GPT d={c0.d_model}, {c0.n_layer} layers, {c0.n_head} heads, seq {c0.seq_len}, batch "
        f"{c0.batch_size} ({c0.batch_size * c0.seq_len} tokens/step), tied head, {kept[names[0]][0].n_params:,} params; "
        f"{data.source} ({len(data.train):,} train / {len(data.val):,} val chars, {data.tokenizer.vocab_size} symbols); "
        f"{c0.steps} steps, warm-up {c0.warmup} + cosine to {c0.min_lr_ratio:g}, grad clip {c0.grad_clip:g}, wd "
        f"{c0.weight_decay:g}; COSMOS rank {c0.rank}, γ = η/η0; lr per optimizer chosen on seed 0's final "
        f"validation loss ({c0.eval_batches * c0.batch_size} fixed windows), then {n_seeds} seed(s) at that lr, "
        f"mean ± sample std; equal wall-clock = the training time of the fastest kept run ({t_star:.2f} s), "
        f"losses interpolated between evaluations every {c0.eval_every} steps; runs sequential on "
        f"{opts.threads} thread(s), so step times carry the machine's load (see steptime for interleaved timing)",
        "targets": targets,
        "figures": figures,
        "config": {
            "grid": {n: list(LM_GRID[n]) for n in names},
            "adam_lr": LM_ADAM_LR,
            "seeds": n_seeds,
            "train": c0.to_dict(),
            "equal_wall_clock_seconds": t_star,
        },
        "grid": {n: [run_summary(r) for r in grid[n].values()] for n in names},
        "runs": {n: [run_summary(r) for r in kept[n]] for n in names},
        "rows": rows,
    }


def _best_lr(runs: dict[float, TrainResult]) -> float:
    """The lr whose run has the lowest final validation loss (a diverged run counts as +inf)."""
    return min(runs, key=lambda lr: math.inf if math.isnan(runs[lr].final_val_loss) else runs[lr].final_val_loss)


def _ratio(values: dict[str, float] | dict[str, int], n: str, ref: str) -> float | None:
    if ref not in values or not values[ref]:
        return None
    return round(values[n] / values[ref], 3)


def _lm_targets(final: dict[str, list[float]], names: list[str]) -> list[dict[str, Any]]:
    mean = {n: mean_std(final[n])[0] for n in names}
    out = []
    if "cosmos" in mean and "adamw" in mean:
        c, a = mean["cosmos"], mean["adamw"]
        out.append(target("COSMOS final val loss ≤ AdamW's (means at equal steps)", f"{c:.4f} vs {a:.4f}", c <= a))
    if "cosmos" in mean and "soap" in mean:
        c, s = mean["cosmos"], mean["soap"]
        out.append(target("COSMOS final val loss within 1 % of SOAP's (≤ 1.01 × SOAP)",
                          f"{c:.4f} vs {s:.4f} (ratio {c / s:.4f})", c <= 1.01 * s))  # fmt: skip
    return out


# ----------------------------------------------------------------------------------------- steptime


def _full_step(model: GPT, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    _, loss = model(x, y)
    assert loss is not None  # targets were given
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


def steptime_config(*, quick: bool = False, threads: int | None = None) -> TrainConfig:
    """The ``steptime`` model: d=512, 2 layers, 8 heads, seq 128, batch 32, COSMOS rank 64 (quick: a toy)."""
    if quick:
        return TrainConfig(d_model=64, n_layer=1, n_head=2, seq_len=16, batch_size=4, rank=16, threads=threads)
    return TrainConfig(d_model=512, n_layer=2, n_head=8, seq_len=128, batch_size=32, rank=64, threads=threads)


def measure_steptime(
    base: TrainConfig, optimizers: Sequence[str], repeats: int, *, warmup: int = 2
) -> dict[str, dict[str, Any]]:
    """Full training step and optimizer step alone of each optimizer, interleaved.

    Each optimizer gets its own seeded model (the same initial weights) and the same batch; lr from
    :data:`~cosmos_optim.train.DEFAULT_LR`, AdamW lr :data:`LM_ADAM_LR` for the rest of Muon and COSMOS.
    ``warmup`` untimed steps each, then ``repeats`` rounds that time one full step (forward, backward,
    clipping, update) of every optimizer, the order rotated by one each round; then ``repeats`` rounds
    that time ``optimizer.step()`` alone on the gradients of the last step.

    Returns:
        Per optimizer: ``full`` and ``optimizer`` (lists of seconds) and ``state_bytes``.
    """
    names = list(optimizers)
    data = load_corpus(base.text)
    x, y = data.get_batch(base.batch_size, base.seq_len, torch.Generator().manual_seed(0))
    built = {n: build(dataclasses.replace(base, optimizer=n, lr=DEFAULT_LR[n], adam_lr=LM_ADAM_LR),
                      data.tokenizer.vocab_size) for n in names}  # fmt: skip
    dev = next(built[names[0]][0].parameters()).device
    x, y = x.to(dev), y.to(dev)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    out: dict[str, dict[str, Any]] = {n: {"full": [], "optimizer": []} for n in names}
    previous = torch.get_num_threads()
    if base.threads is not None:
        torch.set_num_threads(base.threads)
    try:
        for _ in range(warmup):
            for n in names:
                _full_step(*built[n], x, y)
        for kind in ("full", "optimizer"):
            for r in range(repeats):
                for n in names[r % len(names) :] + names[: r % len(names)]:
                    model, optimizer = built[n]
                    sync()
                    t0 = time.perf_counter()
                    if kind == "full":
                        _full_step(model, optimizer, x, y)
                    else:
                        optimizer.step()
                    sync()
                    out[n][kind].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(previous)
    for n in names:
        out[n]["state_bytes"] = state_bytes(built[n][1])
    return out


def steptime_rows(times: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Min, median and mean in ms of the full and the optimizer-only step, and ratios to AdamW."""
    stat = {n: {f"{k}_{f.__name__}": f(t[k]) for k in ("full", "optimizer") for f in (min, statistics.median, statistics.fmean)}
            for n, t in times.items()}  # fmt: skip
    ref = stat.get("adamw")
    rows = []
    for n, s in stat.items():
        rows.append({
            "optimizer": n, "full step ms min": round(1e3 * s["full_min"], 1),
            "median": round(1e3 * s["full_median"], 1), "mean": round(1e3 * s["full_fmean"], 1),
            "median × AdamW": round(s["full_median"] / ref["full_median"], 3) if ref else None,
            "min × AdamW": round(s["full_min"] / ref["full_min"], 3) if ref else None,
            "opt step ms min": round(1e3 * s["optimizer_min"], 2), "opt median": round(1e3 * s["optimizer_median"], 2),
            "opt mean": round(1e3 * s["optimizer_fmean"], 2),
            "opt median × AdamW": round(s["optimizer_median"] / ref["optimizer_median"], 1) if ref else None,
            "state MiB": round(times[n]["state_bytes"] / 2**20, 2),
        })  # fmt: skip
    return rows


def bench_steptime(opts: BenchOptions) -> Table:
    """Full training step and optimizer step alone at d=512 (:func:`measure_steptime`), ratios to AdamW."""
    names = list(opts.optimizers)
    repeats = opts.repeats or (2 if opts.quick else 8)
    base = steptime_config(quick=opts.quick, threads=opts.threads)
    times = measure_steptime(base, names, repeats)
    targets = []
    if "cosmos" in times and "adamw" in times:
        ratio = statistics.median(times["cosmos"]["full"]) / statistics.median(times["adamw"]["full"])
        met = None if base.d_model < 512 else ratio <= 1.5
        targets.append(target(f"COSMOS full step ≤ 1.5 × AdamW at width ≥ 512, {base.batch_size * base.seq_len} "
                              "tokens/step (medians)", f"{ratio:.3f}" + (" (quick: width < 512)" if met is None else ""),
                              met))  # fmt: skip
    lrs = {n: DEFAULT_LR[n] for n in names}
    return {
        "title": "steptime: full training step and optimizer step, ratio to AdamW",
        "setup": f"pre-LN GPT d={base.d_model}, {base.n_layer} layers, {base.n_head} heads, seq {base.seq_len}, batch "
        f"{base.batch_size} ({base.batch_size * base.seq_len} tokens/step); lr {lrs}, AdamW lr {LM_ADAM_LR:g} for the "
        f"rest of Muon and COSMOS, COSMOS rank {base.rank}; {opts.threads} thread(s); 2 warm-up steps, then "
        f"{repeats} interleaved rounds (order rotated each round); full step = forward + backward + clip + update; "
        "opt step = step() alone on fixed gradients; SOAP refreshes its eigenbases every few steps, which shows "
        "in the mean rather than the min or median",
        "targets": targets,
        "config": {
            "train": base.to_dict(),
            "repeats": repeats,
            "lr": lrs,
            "seconds": {n: {k: times[n][k] for k in ("full", "optimizer")} for n in names},
        },
        "rows": steptime_rows(times),
    }


# ------------------------------------------------------------------------------------------- memory


def llama_shapes(
    d: int, layers: int, ffn: int, vocab: int = 32000
) -> tuple[list[tuple[int, int]], list[tuple[int, ...]]]:
    """``(hidden matrices, the rest)`` of a LLaMA model: q, k, v, o, gate, up, down; embedding, head, RMSNorms."""
    block = [(d, d)] * 4 + [(ffn, d), (ffn, d), (d, ffn)]
    rest: list[tuple[int, ...]] = [(vocab, d), (vocab, d)] + [(d,)] * (2 * layers + 1)
    return block * layers, rest


def bench_memory(opts: BenchOptions) -> Table:
    """Optimizer-state bytes of LLaMA 60M-1B from shapes (:func:`cosmos_optim.memory.predict`), float32 state."""
    from cosmos_optim.memory import predict

    sizes = dict(list(LLAMA.items())[:2]) if opts.quick else LLAMA
    rows, targets = [], []
    detail: dict[str, dict[str, Any]] = {}
    for size, (d, layers, ffn, rank) in sizes.items():
        mats, rest = llama_shapes(d, layers, ffn)
        total = {m: predict(mats, m, rank=rank, adam_shapes=rest) for m in MEMORY_METHODS}
        hidden = {m: predict(mats, m, rank=rank) for m in MEMORY_METHODS}
        n_params = sum(math.prod(s) for s in mats) + sum(math.prod(s) for s in rest)
        detail[size] = {"d": d, "layers": layers, "ffn": ffn, "rank": rank, "params": n_params, "total_bytes": total,
                        "hidden_bytes": hidden}  # fmt: skip
        row: dict[str, Any] = {"model": size, "d / layers / ffn": f"{d} / {layers} / {ffn}", "rank": rank,
                               "params (M)": round(n_params / 1e6, 1)}  # fmt: skip
        row.update({f"{m} GiB": round(total[m] / 2**30, 3) for m in MEMORY_METHODS})
        for ref in ("adamw", "soap", "soap-gg", "muon"):
            row[f"cosmos / {ref}"] = round(total["cosmos"] / total[ref], 3)
        for ref in ("adamw", "soap", "muon"):
            row[f"hidden only: cosmos / {ref}"] = round(hidden["cosmos"] / hidden[ref], 3)
        rows.append(row)
        for ref, label in (("soap", "SOAP (GG and Q stored, as nikhilvyas/SOAP)"),
                           ("soap-gg", "SOAP counted with one set of factors (the paper's count)")):  # fmt: skip
            ratio = total["cosmos"] / total[ref]
            targets.append(target(f"{size}: COSMOS state ≤ 0.6 × {label}, rank {rank}", f"{ratio:.3f}", ratio <= 0.6))
    return {
        "title": "memory: optimizer-state bytes of LLaMA shapes (from shapes, no training)",
        "setup": "float32 state; hidden matrices (q, k, v, o, gate, up, down) take the method, embedding, untied "
        "head and RMSNorm weights take AdamW (2 entries per weight) for every method, as in the paper's routing; "
        "d, layers and ffn from GaLore's configs/llama_{60m,130m,350m,1b}.json (vocab 32000); COSMOS and GaLore "
        "rank 64 / 64 / 128 / 256 (the spec anchors r=64 for 130M only; the others are this benchmark's choice); "
        "SOAP factors every side ≤ 10000; 'hidden only' leaves the AdamW part out",
        "targets": targets,
        "config": {"methods": list(MEMORY_METHODS), "sizes": detail},
        "rows": rows,
    }


# ---------------------------------------------------------------------------------------------- run


# ----------------------------------------------------------------------------------------- ablation


def bench_ablation(opts: BenchOptions) -> Table:
    """COSMOS's rank and γ on the ``lm`` model, seed 0, at the lr ``lm`` chose (spec §6: r and γ ablation).

    The reference row (rank :data:`LM_RANK`, γ = η/η0) is the ``lm`` seed-0 run, reused from ``lm-runs``
    when ``lm`` ran in the same output folder; rank 0 is normalised Muon, full rank has no Muon part.
    """
    data = load_corpus()
    lr = DEFAULT_LR["cosmos"]
    lm_json = opts.out / ("lm-quick.json" if opts.quick else "lm.json")
    if lm_json.is_file():
        try:
            lr = float(json.loads(lm_json.read_text(encoding="utf-8"))["runs"]["cosmos"][0]["lr"])
        except (KeyError, IndexError, TypeError, ValueError):
            logger.warning("no COSMOS run in %s; the ablation uses lr %g", lm_json, lr)
    base = lm_config("cosmos", lr, 0, opts)
    runs_dir = opts.out / ("lm-quick-runs" if opts.quick else "lm-runs")
    reference = run_in_folder(base, runs_dir / f"cosmos-lr{base.resolved_lr:g}-seed0", data, resume=True,
                              progress=opts.progress)  # fmt: skip
    settings: list[tuple[int, float | None, TrainResult]] = [(base.rank, None, reference)]
    for rank, gamma in ABLATION:
        rank = min(rank, base.d_model) if not opts.quick else min(rank, 8)
        if (rank, gamma) == (base.rank, None):
            continue
        config = dataclasses.replace(base, rank=rank, gamma=gamma)
        tag = f"cosmos-lr{lr:g}-r{rank}-g{'auto' if gamma is None else f'{gamma:g}'}-seed0"
        folder = opts.out / ("ablation-quick-runs" if opts.quick else "ablation-runs") / tag
        settings.append((rank, gamma, run_in_folder(config, folder, data, resume=opts.resume, progress=opts.progress)))
    auto = lr / base.adam_lr
    rows = [
        {"rank": r, "γ": f"{auto:g} (η/η0)" if g is None else f"{g:g}",
         "role": "reference (lm)" if res is reference else ("normalised Muon" if r == 0 else
                                                             ("full rank: no Muon part" if r >= base.d_model else "")),
         "final val loss": round(res.final_val_loss, 4), "× reference": round(res.final_val_loss / reference.final_val_loss, 4),
         "state MiB": round(res.state_bytes / 2**20, 3), "step ms (median)": round(1e3 * statistics.median(res.step_seconds), 1)}
        for r, g, res in settings
    ]  # fmt: skip
    return {
        "title": "ablation: COSMOS rank and γ on the lm model (seed 0)",
        "setup": f"the lm benchmark's model, data and schedule ({base.steps} steps), COSMOS at η = {lr:g} "
        f"(η0 = {base.adam_lr:g}), one seed; rank 0 = normalised Muon, rank {base.d_model} = full rank on every "
        "matrix of the d=128 model (one-sided SOAP, no Muon part); differences below the lm benchmark's seed "
        "std are noise",
        "targets": [],
        "config": {"lr": lr, "settings": [[r, g] for r, g, _ in settings], "train": base.to_dict()},
        "runs": [run_summary(res) | {"rank": r, "gamma": g} for r, g, res in settings],
        "rows": rows,
    }


BENCHMARKS: dict[str, Callable[[BenchOptions], Table]] = {
    "lm": bench_lm,
    "ablation": bench_ablation,
    "steptime": bench_steptime,
    "memory": bench_memory,
}
"""Benchmark name -> function."""


def run(
    only: str | None = None,
    quick: bool = False,
    out: Path | None = None,
    *,
    resume: bool = False,
    threads: int | None = None,
    steps: int | None = None,
    seeds: int | None = None,
    optimizers: Sequence[str] | None = None,
    repeats: int | None = None,
    progress: bool = True,
) -> int:
    """Run the benchmarks (all, or ``only``), print each table and write JSON + Markdown (+ PNG) to ``out``.

    Args:
        only: one name of :data:`BENCHMARKS`, or None for all.
        quick: a smoke test of a few seconds; results go to ``<name>-quick.*``.
        out: output folder (default ``bench-results``).
        resume: ``lm`` reuses finished runs under ``out`` and continues an interrupted one.
        threads: torch threads for every benchmark (default :data:`DEFAULT_THREADS`; 1 with ``quick``).
        steps, seeds: ``lm`` steps per run and seeds at the chosen lr.
        optimizers: subset of ``adamw, muon, soap, cosmos``.
        repeats: ``steptime`` rounds.
        progress: tqdm bars on stderr.

    Returns:
        0.

    Raises:
        ValueError: an unknown benchmark or optimizer, or a bad count.
    """
    if only is not None and only not in BENCHMARKS:
        raise ValueError(f"--only must be one of {sorted(BENCHMARKS)}, got {only!r}")
    names = tuple(optimizers) if optimizers is not None else OPTIMIZERS
    unknown = [n for n in names if n not in OPTIMIZERS]
    if unknown or not names:
        raise ValueError(f"--optimizers must be a non-empty subset of {list(OPTIMIZERS)}, got {list(names)}")
    for flag, value in (("--threads", threads), ("--steps", steps), ("--seeds", seeds), ("--repeats", repeats)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    opts = BenchOptions(quick=quick, out=out or Path("bench-results"), resume=resume, threads=threads or (1 if quick else DEFAULT_THREADS),
                        steps=steps, seeds=seeds, optimizers=names, repeats=repeats, progress=progress)  # fmt: skip
    opts.out.mkdir(parents=True, exist_ok=True)
    sha = git_describe()  # read before the run: the tree may change while a long benchmark runs
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    previous = torch.get_num_threads()
    torch.set_num_threads(opts.threads)
    try:
        for name in [only] if only else list(BENCHMARKS):
            t0 = time.perf_counter()
            table = BENCHMARKS[name](opts)
            record = {
                "benchmark": name, "package": "cosmos-optim", "version": __version__, "git_sha": sha,
                "command": command, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "machine": machine(), "threads": opts.threads, "quick": quick,
                "seconds": time.perf_counter() - t0, **table,
            }  # fmt: skip
            stem = f"{name}-quick" if quick else name
            write_json(opts.out / f"{stem}.json", record)
            md = render_markdown(table, record)
            (opts.out / f"{stem}.md").write_text(md, encoding="utf-8")
            print(md, flush=True)
    finally:
        torch.set_num_threads(previous)
    return 0
