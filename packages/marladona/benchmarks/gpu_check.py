#!/usr/bin/env python3
"""CUDA throughput of the soccer simulator and a short run of the ``paper`` preset (run by ``make gpu-check``).

Two measurements, written as ``gpu_check.json`` and ``gpu_check.md`` under ``--out``:

1. simulator throughput in agent-steps/s (env-steps x all 2T players), 3v3 with random actions, at
   4096 / 16384 / 65536 games (the issue's GPU target: >= 1e7 at 65k games), eager and with
   ``SoccerEnv(compile=True)``, CUDA-synchronised, median of repeats; the same on the CPU at 4096 games
   for the ratio;
2. the ``paper`` preset (1-3 a side, field curriculum, self-play) trained for ``--minutes`` on the
   device, then W/D/L against RoleBot (strength 1.0) in 3v3 and 1v1 at field level 0 with Wilson
   intervals (the issue's GPU target: progress toward >= 67 % wins in 3v3; the paper: 66.8 % vs HELIOS).

Usage: python benchmarks/gpu_check.py --out DIR [--minutes 1.5] [--quick] [--device cuda|cpu]
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

from marladona.config import SoccerConfig
from marladona.env import SoccerEnv


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def throughput(device: str, num_envs: int, compile: bool, steps: int, repeats: int) -> dict[str, Any]:
    cfg = SoccerConfig(num_envs=num_envs, max_team_size=3, team_size_range=(3, 3), device=device)
    env = SoccerEnv(cfg, final_obs=False, check_actions=False, compile=compile)
    env.reset(seed=0)
    g = torch.Generator(device=env.device).manual_seed(0)
    shape = (num_envs, 6, 5)
    for _ in range(5):
        env.step(torch.rand(shape, generator=g, device=env.device) * 2 - 1)
    rates = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            env.step(torch.rand(shape, generator=g, device=env.device) * 2 - 1)
        _sync(device)
        rates.append(num_envs * 6 * steps / (time.perf_counter() - t0))
    return {"device": device, "num_envs": num_envs, "compile": compile, "agent_steps_per_s": statistics.median(rates)}


def paper_run(device: str, minutes: float, out: Path, quick: bool) -> dict[str, Any]:
    from marladona.evaluate import evaluate
    from marladona.players import PolicyPlayer
    from marladona.train import make_train_config, resume_or_start

    overrides: dict[str, Any] = {"device": device, "checkpoint_every": 20}
    if quick:
        overrides["num_envs"] = 32
    cfg = make_train_config("paper", **overrides)
    run_dir = out / "paper-run"
    compile = device.startswith("cuda")  # the eager simulator is launch-bound on a GPU
    trainer = resume_or_start(cfg, run_dir, resume=(run_dir / "checkpoint.pt").exists(), progress=False,
                              compile=compile)  # fmt: skip
    trainer.learn(minutes=minutes)
    player = PolicyPlayer(trainer.model.eval())
    episodes = 32 if quick else 1024
    result = evaluate(player, "heuristic", team_sizes=((3, 3), (1, 1)), episodes=episodes, level=0,
                      cfg=SoccerConfig(max_team_size=3, device=device))  # fmt: skip
    return {"minutes": minutes, "compile": compile, "iterations": trainer.iteration, "env_steps": trainer.env_steps,
            "opponent": trainer.opponent.name, "promotions": trainer.opponent.promotions, "eval": result}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument(
        "--minutes",
        type=float,
        default=1.5,
        help="training time of the paper preset (1.5: the repo's whole GPU check fits one 10-minute call)",
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test that runs anywhere)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = (256,) if args.quick else (4096, 16384, 65536)
    steps, repeats = (3, 1) if args.quick else (50, 3)
    rows = [throughput("cpu", sizes[0], False, steps, repeats)]
    for n in sizes:
        for comp in (False, True):
            rows.append(throughput(args.device, n, comp, steps, repeats))
            print(json.dumps(rows[-1]), flush=True)
    train = paper_run(args.device, 0.1 if args.quick else args.minutes, out, args.quick)
    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__, "throughput": rows, "paper_run": train,
    }  # fmt: skip
    (out / "gpu_check.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    lines = ["# marladona GPU check", "", f"{record['device']}, torch {record['torch']}, {record['date']}", "",
             "| device | games | compiled | agent-steps/s |", "| --- | --- | --- | --- |"]  # fmt: skip
    lines += [f"| {r['device']} | {r['num_envs']} | {r['compile']} | {r['agent_steps_per_s']:,.0f} |" for r in rows]
    lines += ["", f"paper preset, {train['minutes']} min: {train['iterations']} iterations, {train['env_steps']} env steps, "
              f"opponent {train['opponent']}", ""]  # fmt: skip
    for key, r in train["eval"]["per_size"].items():
        lines.append(
            f"- vs RoleBot {key}: win {r['win_rate']:.1%} {r['win_ci']}, draw {r['draw_rate']:.1%}, loss {r['loss_rate']:.1%}"
        )
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
