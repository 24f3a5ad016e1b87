"""The work behind each ``cosmos-optim`` command (the argument parsing lives in :mod:`cosmos_optim.cli`).

Every function takes the parsed ``argparse.Namespace``, prints a table (or one JSON object with
``--json``) to stdout and returns the exit status; bad input raises ``ValueError``, which the CLI
turns into a one-line usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from cosmos_optim._version import __version__
from cosmos_optim.bench import LM_ADAM_LR, measure_steptime, run_in_folder, steptime_rows, summarize
from cosmos_optim.data import load_corpus
from cosmos_optim.report import format_table, plot_curves, write_json
from cosmos_optim.train import DEFAULT_LR, OPTIMIZERS, TrainConfig, TrainResult, train

DEMO = {"d_model": 128, "n_layer": 2, "n_head": 4, "steps": 200, "warmup": 30, "eval_every": 25}
"""The demo's model and schedule: about 32 s per optimizer on one CPU thread (2-core development machine)."""


def parse_optimizers(text: str) -> list[str]:
    """``"adamw,cosmos"`` -> ``["adamw", "cosmos"]``; unknown or repeated names raise ``ValueError``."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [n for n in names if n not in OPTIMIZERS]
    if bad or not names or len(set(names)) != len(names):
        raise ValueError(f"--optimizers must be distinct names from {','.join(OPTIMIZERS)}, got {text!r}")
    return names


def parse_lrs(text: str | None) -> dict[str, float]:
    """``"adamw=1e-2,cosmos=4e-3"`` -> a dict; unknown names or non-positive values raise ``ValueError``."""
    lrs: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        try:
            lr = float(value)
        except ValueError:
            lr = math.nan
        if not sep or name.strip() not in OPTIMIZERS or not lr > 0 or not math.isfinite(lr):
            raise ValueError(f"--lrs must look like adamw=1e-2,cosmos=4e-3 with known names and lr > 0, got {item!r}")
        lrs[name.strip()] = lr
    return lrs


def _result_json(result: TrainResult) -> dict[str, Any]:
    return {
        "optimizer": result.config.optimizer,
        "lr": result.config.resolved_lr,
        "seed": result.config.seed,
        "steps_done": result.steps_done,
        "final_val_loss": result.final_val_loss,
        "initial_val_loss": result.val_loss[0] if result.val_loss else math.nan,
        "train_seconds": result.train_seconds,
        "tokens_per_second": result.tokens_per_second,
        "state_bytes": result.state_bytes,
        "n_params": result.n_params,
        "diverged": result.diverged,
    }


def demo(args: argparse.Namespace) -> int:
    """COSMOS against AdamW on the bundled corpus (a small GPT, about a minute); prints a table."""
    steps = DEMO["steps"] if args.steps is None else args.steps
    if steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    seed = 0 if args.seed is None else args.seed
    data = load_corpus()
    rows, out = [], {}
    for name in ("adamw", "cosmos"):
        config = TrainConfig(optimizer=name, d_model=DEMO["d_model"], n_layer=DEMO["n_layer"], n_head=DEMO["n_head"],
                             steps=steps, warmup=min(DEMO["warmup"], max(steps // 5, 1)),
                             eval_every=min(DEMO["eval_every"], steps), seed=seed, device=args.device or "cpu",
                             threads=args.threads)  # fmt: skip
        result = train(config, progress=not args.json, data=data)
        out[name] = _result_json(result)
        rows.append([name, f"{config.resolved_lr:g}", result.val_loss[0], result.final_val_loss, result.train_seconds,
                     round(result.tokens_per_second), round(result.state_bytes / 1024, 1)])  # fmt: skip
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    c = TrainConfig(d_model=DEMO["d_model"], n_layer=DEMO["n_layer"], n_head=DEMO["n_head"])
    print(
        f"cosmos-optim demo: a character-level GPT (d={c.d_model}, {c.n_layer} layers, {c.n_head} heads, seq "
        f"{c.seq_len}, batch {c.batch_size}) trained for {steps} steps on {data.source}\n({len(data.train):,} train / "
        f"{len(data.val):,} validation characters), same seed and batches for both optimizers; COSMOS rank {c.rank}, "
        f"AdamW lr {LM_ADAM_LR:g} for its embeddings and norms.\n"
    )
    print(format_table(["optimizer", "lr", "val loss at start", f"val loss after {steps} steps", "train s",
                        "tokens/s", "state KiB"], rows))  # fmt: skip
    a, c = out["adamw"]["final_val_loss"], out["cosmos"]["final_val_loss"]
    word = "lower" if c < a else "higher"
    print(f"\nAfter {steps} steps COSMOS reaches {c:.3f} nats/char and AdamW {a:.3f}: COSMOS is "
          f"{100 * abs(a - c) / a:.1f} % {word} (one seed; each optimizer at its tuned lr, spec §6 B4).")  # fmt: skip
    return 0


def train_command(args: argparse.Namespace) -> int:
    """Train one GPT; write config.json, checkpoint.pt and result.json under --out."""
    config: TrainConfig = args.train_config
    out = args.out or Path("runs") / config.optimizer
    result = train(config, out, resume=args.resume, progress=not args.json)
    metrics = {**_result_json(result), "out": str(out)}
    if args.json:
        print(json.dumps(metrics, default=float))
    else:
        print(format_table(["metric", "value"], [[k, v] for k, v in metrics.items()]))
    return 0


def compare(args: argparse.Namespace) -> int:
    """Several optimizers on the same model, data and seeds; a table, JSON and two PNGs under --out."""
    names = parse_optimizers(args.optimizers)
    lrs = {**DEFAULT_LR, **parse_lrs(args.lrs)}
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    base: TrainConfig = args.train_config
    out = args.out or Path("runs") / "compare"
    data = load_corpus(base.text)
    write_json(out / "config.json", {"train": base.to_dict(), "optimizers": names, "lrs": {n: lrs[n] for n in names},
                                     "seeds": args.seeds, "version": __version__})  # fmt: skip
    runs: dict[str, list[TrainResult]] = {n: [] for n in names}
    for seed in range(base.seed, base.seed + args.seeds):
        for n in names:
            config = dataclasses.replace(base, optimizer=n, lr=lrs[n], seed=seed)
            folder = out / f"{n}-seed{seed}"
            runs[n].append(run_in_folder(config, folder, data, resume=args.resume, progress=not args.json))
    rows, t_star = summarize(runs)
    plot_curves(runs, steps_png=out / "loss-vs-step.png", seconds_png=out / "loss-vs-seconds.png",
                title=f"{data.source}: {base.steps} steps, {args.seeds} seed(s)", equal_seconds=t_star)  # fmt: skip
    record = {
        "optimizers": names, "lrs": {n: lrs[n] for n in names}, "seeds": args.seeds, "train": base.to_dict(),
        "equal_wall_clock_seconds": t_star, "rows": rows,
        "runs": {n: [_result_json(r) for r in rs] for n, rs in runs.items()}, "version": __version__,
    }  # fmt: skip
    write_json(out / "compare.json", record)
    if args.json:
        print(json.dumps(record["runs"], default=float))
    else:
        header = list(rows[0])
        print(format_table(header, [[row[h] for h in header] for row in rows]))
        print(f"\nequal wall-clock = {t_star:.2f} s (the fastest run's training time); plots and JSON in {out}")
    return 0


def memory(args: argparse.Namespace) -> int:
    """Optimizer-state bytes of one GPT shape per optimizer, from shapes (no model is built)."""
    from cosmos_optim.memory import METHODS, predict
    from cosmos_optim.model import GPTConfig, parameter_shapes

    config = GPTConfig(vocab_size=args.vocab, block_size=args.seq_len, n_layer=args.layers, n_head=1,
                       d_model=args.d_model, tie_weights=not args.untied)  # fmt: skip
    if args.rank < 0:
        raise ValueError(f"--rank must be >= 0, got {args.rank}")
    shapes = parameter_shapes(config)
    mats = [s for name, s in shapes.items() if name.startswith("blocks.") and len(s) == 2]
    rest = [s for name, s in shapes.items() if not (name.startswith("blocks.") and len(s) == 2)]
    total = {m: predict(mats, m, rank=args.rank, adam_shapes=rest) for m in METHODS}
    hidden = {m: predict(mats, m, rank=args.rank) for m in METHODS}
    n_params = sum(math.prod(s) for s in shapes.values())
    if args.json:
        print(json.dumps({"params": n_params, "rank": args.rank, "total_bytes": total, "hidden_bytes": hidden}))
        return 0
    print(f"GPT d={args.d_model}, {args.layers} layers, vocab {args.vocab}, positions {args.seq_len}, "
          f"{'untied' if args.untied else 'tied'} head: {n_params:,} parameters; rank {args.rank}; float32 state; "
          "embeddings, head and norms take AdamW for every method\n")  # fmt: skip
    rows = [[m, round(total[m] / 2**20, 2), round(total[m] / total["adamw"], 3), round(hidden[m] / 2**20, 2),
             round(hidden[m] / hidden["adamw"], 3)] for m in METHODS]  # fmt: skip
    print(format_table(["method", "state MiB", "× AdamW", "hidden matrices MiB", "hidden × AdamW"], rows))
    return 0


def steptime(args: argparse.Namespace) -> int:
    """Full training step and optimizer step per optimizer, interleaved; ratios to AdamW."""
    names = parse_optimizers(args.optimizers)
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    base = TrainConfig(d_model=args.d_model, n_layer=args.layers, n_head=args.heads, seq_len=args.seq_len,
                       batch_size=args.batch_size, rank=args.rank, threads=args.threads,
                       device=args.device or "cpu")  # fmt: skip
    rows = steptime_rows(measure_steptime(base, names, args.repeats))
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"d={base.d_model}, {base.n_layer} layers, {base.batch_size * base.seq_len} tokens/step, COSMOS rank "
          f"{base.rank}, {args.repeats} interleaved repeats\n")  # fmt: skip
    header = list(rows[0])
    print(format_table(header, [[row[h] for h in header] for row in rows]))
    return 0


def bench(args: argparse.Namespace) -> int:
    """Run the benchmark suite of :mod:`cosmos_optim.bench`."""
    from cosmos_optim.bench import run

    optimizers = parse_optimizers(args.optimizers) if args.optimizers else None
    return run(only=args.only, quick=args.quick, out=args.out, resume=args.resume, threads=args.threads,
               steps=args.steps, seeds=args.seeds, optimizers=optimizers)  # fmt: skip
