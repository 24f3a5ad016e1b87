#!/usr/bin/env python3
"""CUDA throughput and memory of COSMOS against AdamW, Muon and SOAP (run by ``make gpu-check``).

Two measurements, side by side in one process, written as ``gpu_check.json`` and ``gpu_check.md``
under ``--out``:

1. optimizer step alone for the six matrices of one GPT block (q, k, v, o: d x d; fc: 4d x d;
   proj: d x 4d) at d = 768, 1024, 2048 (COSMOS rank 64, bf16 Newton-Schulz), CUDA-synchronised,
   median of interleaved repeats;
2. a GPT-2-small-sized model (d = 768, 12 layers, 12 heads, vocab 50257, sequence 512, batch 8;
   bfloat16 weights): peak ``torch.cuda.max_memory_allocated`` after a few full training steps,
   optimizer-state bytes (``memory_report``), and tokens per second.

``--quick --device cpu`` runs tiny sizes on the CPU so the script can be tested anywhere.
Usage: python benchmarks/gpu_check.py --out DIR [--quick] [--device cuda|cpu]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cosmos_optim import make_optimizer, memory_report
from cosmos_optim.model import GPT, GPTConfig

OPTIMIZERS = ("adamw", "muon", "soap", "cosmos")
LRS = {"adamw": 6e-4, "muon": 0.02, "soap": 3e-3, "cosmos": 1e-3}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _block_params(d: int, device: str) -> torch.nn.Module:
    layers = [torch.nn.Linear(d, d, bias=False) for _ in range(4)]
    layers += [torch.nn.Linear(d, 4 * d, bias=False), torch.nn.Linear(4 * d, d, bias=False)]
    return torch.nn.Sequential(*layers).to(device)


def optimizer_step_times(widths: list[int], repeats: int, device: str) -> list[dict[str, Any]]:
    rows = []
    for d in widths:
        steppers: dict[str, Callable[[], None]] = {}
        for name in OPTIMIZERS:
            block = _block_params(d, device)
            for p in block.parameters():
                p.grad = torch.randn_like(p) * 1e-2
            opt = make_optimizer(name, block, lr=LRS[name], rank=64)
            for _ in range(3):  # warm-up; SOAP's first call only initialises its factors
                opt.step()
            steppers[name] = opt.step
        times: dict[str, list[float]] = {n: [] for n in OPTIMIZERS}
        for i in range(repeats):
            order = OPTIMIZERS[i % len(OPTIMIZERS) :] + OPTIMIZERS[: i % len(OPTIMIZERS)]
            for name in order:
                _sync(device)
                t0 = time.perf_counter()
                steppers[name]()
                _sync(device)
                times[name].append(time.perf_counter() - t0)
        med = {n: statistics.median(v) * 1e3 for n, v in times.items()}
        rows.append({"d": d, **{f"{n} ms": round(med[n], 3) for n in OPTIMIZERS},
                     "cosmos / muon": round(med["cosmos"] / med["muon"], 2),
                     "cosmos / soap": round(med["cosmos"] / med["soap"], 2)})  # fmt: skip
    return rows


def gpt_memory_and_throughput(config: GPTConfig, batch: int, steps: int, device: str) -> list[dict[str, Any]]:
    rows = []
    for name in OPTIMIZERS:
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        torch.manual_seed(0)
        model = GPT(config).to(device)
        if device == "cuda":
            model = model.bfloat16()
        opt = make_optimizer(name, model, lr=LRS[name], rank=64)
        idx = torch.randint(0, config.vocab_size, (batch, config.block_size + 1), device=device)
        seconds = []
        for _ in range(steps):
            _sync(device)
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            _, loss = model(idx[:, :-1], idx[:, 1:])
            assert loss is not None
            loss.backward()
            opt.step()
            _sync(device)
            seconds.append(time.perf_counter() - t0)
        step = statistics.median(seconds[2:] or seconds)
        peak = torch.cuda.max_memory_allocated() if device == "cuda" else 0
        rows.append({"optimizer": name, "state MiB": round(memory_report(opt).total_bytes / 2**20, 1),
                     "peak MiB": round(peak / 2**20, 1), "step s": round(step, 4),
                     "tokens/s": round(batch * config.block_size / step), "final loss": round(loss.item(), 3)})  # fmt: skip
        del model, opt
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[h]) for h in header) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available (use --device cpu --quick to test the script)")
    if args.quick:
        widths, repeats = [64], 3
        config, batch, steps = GPTConfig(vocab_size=97, block_size=32, n_layer=2, n_head=2, d_model=64), 2, 3
    else:
        widths, repeats = [768, 1024, 2048], 10
        config, batch, steps = GPTConfig(vocab_size=50257, block_size=512, n_layer=12, n_head=12, d_model=768), 8, 8
    t0 = time.perf_counter()
    step_rows = optimizer_step_times(widths, repeats, args.device)
    gpt_rows = gpt_memory_and_throughput(config, batch, steps, args.device)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device_name, "torch": torch.__version__, "quick": args.quick,
        "optimizer_step": step_rows, "gpt": gpt_rows, "gpt_config": vars(config) | {"batch": batch},
        "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    md = (
        f"# cosmos-optim GPU check ({device_name}, torch {torch.__version__}, {record['date']})\n\n"
        f"Optimizer step, six matrices of one GPT block, median ms (COSMOS rank 64):\n\n{_table(step_rows)}\n\n"
        f"GPT d={config.d_model}, {config.n_layer} layers, vocab {config.vocab_size}, seq {config.block_size}, "
        f"batch {batch}:\n\n{_table(gpt_rows)}\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (args.out / "gpu_check.md").write_text(md, encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
