#!/usr/bin/env python3
"""Reproduce the paper's comparison (GSM8K / MATH / MMLU / GPQA / HumanEval / MBPP) on your own endpoint.

Run it where a model is reachable (vLLM, an API); see ``benchmarks/reproduce.md`` for the data files.
Every task runs greedy, self-consistency, choose-from-N, USC, self-refine and GSA at the paper's
4-call budget through :func:`gsa_prompt.harness.evaluate` (resumable: rerun the same command after an
interruption), then one table with accuracy per task and method is written to ``<out>/table.md``.

Usage:
    python benchmarks/reproduce.py --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct \\
        --data gsm8k=data/gsm8k_test.jsonl --data math=data/math500.jsonl --out runs/paper [--limit 500]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gsa_prompt.client import Client, Endpoint, run_sync
from gsa_prompt.data import TASKS, load_task
from gsa_prompt.harness import evaluate

METHODS = ("greedy", "sc", "cfn", "usc", "self-refine", "gsa")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY")
    parser.add_argument("--data", action="append", required=True, metavar="TASK=FILE", help="repeat per task")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--budget", type=int, default=4)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("runs/paper"))
    parser.add_argument("--judge-model", default=None, help="judge of chat answers (default: --model)")
    parser.add_argument("--judge-base-url", default=None, help="the judge's endpoint (default: --base-url)")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds must be a comma list of integers, got {args.seeds!r}")
    table: dict[str, dict[str, float]] = {}
    for spec in args.data:
        task, _, file = spec.partition("=")
        if task not in TASKS or not file:
            parser.error(f"--data must be TASK=FILE with TASK in {', '.join(TASKS)}, got {spec!r}")
        items = load_task(task, file, limit=args.limit)
        out = args.out / task
        endpoint = Endpoint(args.base_url, args.model, api_key_env=args.api_key_env,
                            max_concurrency=args.concurrency, cache=str(args.out / "cache.sqlite"))  # fmt: skip
        task_methods = [m for m in methods if not (m == "sc" and task in ("humaneval", "mbpp", "chat"))]
        judge = None
        if any(it.kind == "open" for it in items):
            judge = Client(Endpoint(args.judge_base_url or args.base_url, args.judge_model or args.model,
                                    api_key_env=args.api_key_env, cache=str(args.out / "cache.sqlite")))  # fmt: skip
        report = run_sync(evaluate(Client(endpoint), task, items, task_methods, budget=args.budget, seeds=seeds,
                                   out=out, judge=judge))  # fmt: skip
        table[task] = {m: row["accuracy"] for m, row in report.summary["methods"].items()}
    lines = ["| method | " + " | ".join(table) + " |", "|---|" + "---|" * len(table)]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(f"{100 * table[t][m]:.2f}" if m in table[t] else "-" for t in table)
                     + " |")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (args.out / "table.json").write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
