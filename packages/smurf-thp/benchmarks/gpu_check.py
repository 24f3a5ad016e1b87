#!/usr/bin/env python3
"""CUDA throughput of SMURF-THP's Langevin sampler and training step against the CPU (run by ``make gpu-check``).

Two measurements, side by side in one process, written as ``gpu_check.json`` and ``gpu_check.md`` under ``--out``:
Langevin sampling throughput (events × samples × steps per second) and training-step time, for the cpu-small
model and a paper-size model (the ``retweet`` preset: d_model 64, 3 layers, 100 noise copies), on hawkes3 data,
CUDA-synchronised, median of repeats. ``--quick --device cpu`` runs tiny sizes so the script can be tested anywhere.

Usage: python benchmarks/gpu_check.py --out DIR [--quick] [--device cuda|cpu]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from smurf_thp.data import collate
from smurf_thp.normalize import TimeNormalizer
from smurf_thp.simulate import PRESETS
from smurf_thp.smurf import PRESETS as MODEL_PRESETS
from smurf_thp.smurf import SMURFTHP, SamplerConfig, SMURFConfig


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(preset: str, device: str, n_seqs: int, n_samples: int, n_steps: int, repeats: int) -> dict[str, Any]:
    process = PRESETS["hawkes3"]
    ds = process.simulate(n_seqs, t_end=40.0, seed=0)
    norm = TimeNormalizer("log").fit(ds.all_gaps())
    torch.manual_seed(0)
    model = SMURFTHP(SMURFConfig(num_types=3, **MODEL_PRESETS[preset])).to(device)  # type: ignore[arg-type]
    batch = collate(list(ds), device=device)
    u = norm.transform(torch.where(batch.mask[:, 1:], batch.gaps[:, 1:], torch.ones_like(batch.gaps[:, 1:])))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    step_s = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        opt.zero_grad()
        model.loss(batch.types, batch.times, batch.mask, u, torch.Generator().manual_seed(0)).total.backward()
        opt.step()
        _sync(device)
        step_s.append(time.perf_counter() - t0)
    model.eval()
    sampler = SamplerConfig(n_samples=n_samples, step=0.02, n_steps=n_steps)
    sample_s = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        model.sample(batch.types, batch.times, batch.mask, sampler, norm.quantiles, torch.Generator().manual_seed(0))
        _sync(device)
        sample_s.append(time.perf_counter() - t0)
    events = int(batch.mask[:, 1:].sum())
    med = statistics.median(sample_s)
    return {"preset": preset, "device": device, "events": events, "samples": n_samples, "steps": n_steps,
            "train_step_s": statistics.median(step_s), "sample_s": med,
            "langevin_evals_per_s": events * n_samples * n_steps / med}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA device")
        return 2
    n_seqs, n_samples, n_steps, repeats = (8, 10, 20, 2) if args.quick else (200, 100, 300, 3)
    rows = []
    for preset in ("cpu-small", "retweet"):
        for device in dict.fromkeys(["cpu", args.device]):
            # the CPU reference runs an eighth of the sequences once: the rates are per event
            small = device == "cpu" and device != args.device
            rows.append(measure(preset, device, max(n_seqs // 8, 2) if small else n_seqs, n_samples, n_steps,
                                1 if small else repeats))  # fmt: skip
            print(rows[-1], flush=True)
    lines = ["# smurf-thp gpu_check: training step and Langevin sampling, CPU vs " + args.device, "",
             "| preset | device | events | samples × steps | train step s | sampling s | Langevin evals/s |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    lines += [f"| {r['preset']} | {r['device']} | {r['events']} | {r['samples']} × {r['steps']} | "
              f"{r['train_step_s']:.4f} | {r['sample_s']:.3f} | {r['langevin_evals_per_s']:.3g} |" for r in rows]  # fmt: skip
    device_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    lines += ["", f"Date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}  ",
              f"CUDA device: {device_name}; torch {torch.__version__}", ""]  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps({"rows": rows, "device": device_name}, indent=2) + "\n")
    (args.out / "gpu_check.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
