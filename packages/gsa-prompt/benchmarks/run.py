#!/usr/bin/env python3
"""Benchmarks of gsa-prompt that can be measured honestly without a real model (``make bench PKG=gsa-prompt``).

No model is reachable here, so these are **plumbing checks, not evidence for GSA** (spec §6, pitfall 15):

- ``fidelity`` (spec B1): every method on toy arithmetic questions over real HTTP against the fake server's
  scripted policies, measured accuracy vs the analytic value (target: within 3σ); then the same run again,
  served entirely from the cache (target: 0 requests); then a run killed with SIGKILL mid-way and resumed
  (target: no record lost, none duplicated, the same accuracies as the uninterrupted run).
- ``overhead`` (spec B3): the package's client against a raw ``openai.AsyncOpenAI`` loop with the same
  concurrency, on the same server with fake latency, interleaved (target: < 5 % wall-time overhead), plus the
  latency of a cache hit.
- ``sandbox``: code-sandbox throughput (programs per second, 2 at a time).

Each writes ``results/<name>.json`` and ``.md`` with the command, machine and date. The paper's table on a
real endpoint: ``benchmarks/reproduce.md``.

Usage: python benchmarks/run.py [--quick] [--only NAME] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gsa_prompt._version import __version__
from gsa_prompt.client import Client, Endpoint, run_sync
from gsa_prompt.data import EvalItem, write_jsonl
from gsa_prompt.harness import evaluate
from gsa_prompt.testing import FakeServer
from gsa_prompt.worlds import (
    AGGREGATE_TABLE,
    SELECT_TABLE,
    ArithmeticWorld,
    pass_at_n,
    refine_accuracy,
    sc_accuracy,
    table_accuracy,
)

RESULTS = Path(__file__).resolve().parent / "results"
P, M = 0.6, 6


def _record(name: str, args: argparse.Namespace, started: float, body: dict[str, Any], md: list[str]) -> int:
    """Write ``results/<name>.json`` and ``.md`` with the command, machine and date."""
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    record = {
        "benchmark": name, "package": "gsa-prompt", "version": __version__,
        "git_commit": git.stdout.strip() or None,
        "command": " ".join(["python benchmarks/run.py", *args.argv]), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()},
        "quick": args.quick, "wall_s": time.time() - started, **body,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-quick" if args.quick else name
    (args.out / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    mach = record["machine"]
    md += ["", f"Command: `{record['command']}`  ", f"Date: {record['date']}  ",
           f"Machine: {mach['platform']}, {mach['cpus']} CPUs, Python {mach['python']}  ",
           f"gsa-prompt {__version__}, commit {record['git_commit']}, {record['wall_s']:.0f} s", ""]  # fmt: skip
    (args.out / f"{stem}.md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md))
    return 0


# -- B1: harness fidelity ----------------------------------------------------------------------------
EXPECTED = {
    "greedy": (P, {}),
    "sc": (sc_accuracy(P, M, 4), {}),
    "usc": (sc_accuracy(P, M, 3), {"selector": "majority"}),
    "cfn": (table_accuracy(P, 3, SELECT_TABLE), {"selector": "table"}),
    "bon": (pass_at_n(P, 2), {}),
    "self-refine": (refine_accuracy(P, 0.5), {"refine_fix": 0.5}),
    "gsa": (table_accuracy(P, 3, AGGREGATE_TABLE), {"aggregator": "table"}),
}
"""Method -> (analytic accuracy at a 4-call budget under the server policy, that policy)."""


def _items(k: int) -> list[EvalItem]:
    return [EvalItem(id=q.id, question=q.question, answer=q.answer, kind="answer_is")
            for q in ArithmeticWorld(p=P, m=M).questions(k, seed=7)]  # fmt: skip


def fidelity(args: argparse.Namespace) -> int:
    started = time.time()
    k = 100 if args.quick else 1000
    items = _items(k)
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for method, (expected, policy) in EXPECTED.items():
            with FakeServer(**policy) as server:
                cache = str(Path(tmp) / f"{method}.sqlite")
                client = Client(Endpoint(server.base_url, "fake-model", max_concurrency=32, cache=cache))
                t0 = time.perf_counter()
                report = run_sync(evaluate(client, "arithmetic", items, [method], budget=4, progress=False))
                first_s = time.perf_counter() - t0
                requests = server.stats()["completions"]
                server.reset()
                again = Client(Endpoint(server.base_url, "fake-model", max_concurrency=32, cache=cache))
                t0 = time.perf_counter()
                report2 = run_sync(evaluate(again, "arithmetic", items, [method], budget=4, progress=False))
                cached_s = time.perf_counter() - t0
                cached_requests = server.stats()["completions"]
            acc = report.summary["methods"][method]["accuracy"]
            sigma = math.sqrt(expected * (1 - expected) / k)
            within = abs(acc - expected) <= 3 * sigma
            same = report2.summary["methods"][method]["correct"] == report.summary["methods"][method]["correct"]
            ok &= within and cached_requests == 0 and same
            rows.append({"method": method, "measured": acc, "analytic": expected, "sigma": sigma,
                         "z": (acc - expected) / sigma, "within_3_sigma": within, "requests": requests,
                         "calls_per_q": report.summary["methods"][method]["calls_per_q"], "first_run_s": first_s,
                         "rerun_requests": cached_requests, "rerun_s": cached_s, "rerun_same_result": same})  # fmt: skip
        kill = _kill_and_resume(Path(tmp), items[: min(k, 300)])
    ok &= kill["lost"] == 0 and kill["duplicated"] == 0 and kill["same_as_clean"]
    md = [f"# fidelity: every method over real HTTP vs its analytic accuracy ({k} toy questions)", "",
          "**A plumbing check on a scripted toy world, not evidence for GSA.** Per-sample accuracy p = 0.6 with 6 "
          "uniform distractors; budget 4 calls; the server's policy per method makes its accuracy computable "
          "(USC: majority selector; choose-from-N and GSA: the spec's tables; BoN: judge rates right 9, wrong 3; "
          "self-refine: fixes a wrong answer with probability 0.5). Rerun = a fresh client on the same cache.", "",
          "| method | measured | analytic | z | within 3σ | requests | calls/q | run s | rerun requests | rerun s |",
          "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    md += [f"| {r['method']} | {r['measured']:.4f} | {r['analytic']:.4f} | {r['z']:+.2f} | "
           f"{'yes' if r['within_3_sigma'] else 'NO'} | {r['requests']} | {r['calls_per_q']:.0f} | "
           f"{r['first_run_s']:.1f} | {r['rerun_requests']} | {r['rerun_s']:.2f} |" for r in rows]  # fmt: skip
    md += ["", f"Kill and resume (`gsa-prompt eval` in a subprocess, SIGKILL after {kill['killed_after_records']} of "
           f"{kill['expected_records']} records, then rerun): lost {kill['lost']}, duplicated {kill['duplicated']}, "
           f"accuracies equal to an uninterrupted run: {'yes' if kill['same_as_clean'] else 'NO'}; the resumed run "
           f"sent {kill['resume_requests']} requests (the killed run's cached responses were reused).", "",
           f"All targets met: {'yes' if ok else 'NO'}."]  # fmt: skip
    return _record("fidelity", args, started, {"rows": rows, "kill_resume": kill, "targets_met": ok}, md)


def _kill_and_resume(tmp: Path, items: list[EvalItem]) -> dict[str, Any]:
    data = tmp / "kill.jsonl"
    write_jsonl(data, [{"id": it.id, "question": it.question, "answer": it.answer} for it in items])
    methods = "greedy,sc,gsa"
    expected = 3 * len(items)
    with FakeServer(latency_s=0.01) as server:
        base = [sys.executable, "-m", "gsa_prompt", "eval", "--task", "arithmetic", "--data", str(data),
                "--methods", methods, "--base-url", server.base_url, "--model", "fake-model", "--json",
                "--concurrency", "8"]  # fmt: skip
        clean = subprocess.run([*base, "--out", str(tmp / "clean")], capture_output=True, text=True, check=True)
        clean_summary = json.loads(clean.stdout.strip().splitlines()[-1])
        run = tmp / "killed"
        proc = subprocess.Popen([*base, "--out", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log = run / "items.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline and (not log.is_file() or len(log.read_text().splitlines()) < expected // 3):
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_after = len(log.read_text().splitlines()) if log.is_file() else 0
        server.reset()
        resumed = subprocess.run([*base, "--out", str(run)], capture_output=True, text=True, check=True)
        resume_requests = server.stats()["completions"]
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    keys = []
    for line in log.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        keys.append((r["item"], r["method"], r["seed"]))
    same = all(summary["methods"][m]["correct"] == clean_summary["methods"][m]["correct"] for m in methods.split(","))
    return {"expected_records": expected, "killed_after_records": killed_after, "lost": expected - len(set(keys)),
            "duplicated": len(keys) - len(set(keys)), "same_as_clean": same, "resume_requests": resume_requests}  # fmt: skip


# -- B3: client overhead ----------------------------------------------------------------------------
class _ServerProcess:
    """``gsa-prompt serve-test`` in its own process, so this process's CPU time is the client's alone."""

    def __init__(self, latency_s: float) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "gsa_prompt", "serve-test", "--latency", str(latency_s)],
                                     stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.base_url = line.split(" at ", 1)[1].split(";", 1)[0]

    def close(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def overhead(args: argparse.Namespace) -> int:
    import openai

    started = time.time()
    calls = 300 if args.quick else 2000
    settings = [("endpoint-bound", 0.05 if args.quick else 0.2, 32), ("client-bound (saturated)", 0.0, 64)]
    rounds = 3

    async def ours(base_url: str, tag: str, conc: int) -> tuple[float, float]:
        client = Client(Endpoint(base_url, "fake-model", max_concurrency=conc))
        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client.complete([{"role": "user", "content": f"What is {i} + {tag}?"}], n=1,
                                               temperature=0.7, seed=i) for i in range(calls)))  # fmt: skip
        out = (time.perf_counter() - t0, time.process_time() - c0)
        await client.aclose()
        return out

    async def raw(base_url: str, tag: str, conc: int) -> tuple[float, float]:
        oa = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0)
        sem = asyncio.Semaphore(conc)

        async def one(i: int) -> Any:
            async with sem:
                return await oa.chat.completions.create(
                    model="fake-model", messages=[{"role": "user", "content": f"What is {i} + {tag}?"}],
                    temperature=0.7, seed=i)  # fmt: skip

        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(i) for i in range(calls)))
        out = (time.perf_counter() - t0, time.process_time() - c0)
        await oa.close()
        return out

    rows = []
    for name, latency, conc in settings:
        server = _ServerProcess(latency)
        try:
            runs: dict[str, list[tuple[float, float]]] = {"raw openai": [], "gsa-prompt client": []}
            for r in range(rounds):  # interleaved, so drift of the machine hits both
                runs["raw openai"].append(asyncio.run(raw(server.base_url, f"{name[0]}r{r}", conc)))
                runs["gsa-prompt client"].append(asyncio.run(ours(server.base_url, f"{name[0]}o{r}", conc)))
        finally:
            server.close()
        wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
        cpu_ms = {k: 1000 * statistics.median(c for _, c in v) / calls for k, v in runs.items()}
        rows.append({"setting": name, "latency_s": latency, "concurrency": conc, "calls": calls,
                     "ideal_s": calls * latency / conc, "wall_s": wall, "client_cpu_ms_per_call": cpu_ms,
                     "wall_ratio": wall["gsa-prompt client"] / wall["raw openai"],
                     "cpu_ratio": cpu_ms["gsa-prompt client"] / cpu_ms["raw openai"], "runs": runs})  # fmt: skip
    with FakeServer() as server:
        cache_ms = _cache_hit_ms(server, [{"role": "user", "content": "What is 2 + 3?"}], 200 if args.quick else 2000)
    met = all(r["wall_ratio"] < 1.05 for r in rows)
    md = [f"# overhead: the package's client vs a raw AsyncOpenAI loop ({calls} calls each, {rounds} interleaved "
          "rounds, the fake server in its own process)", "",
          "| setting | latency | concurrency | ideal s | raw openai wall s | gsa-prompt wall s | wall ratio | "
          "raw CPU ms/call | gsa-prompt CPU ms/call | CPU ratio |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    md += [f"| {r['setting']} | {r['latency_s'] * 1000:.0f} ms | {r['concurrency']} | {r['ideal_s']:.2f} | "
           f"{r['wall_s']['raw openai']:.3f} | {r['wall_s']['gsa-prompt client']:.3f} | {r['wall_ratio']:.3f} | "
           f"{r['client_cpu_ms_per_call']['raw openai']:.3f} | {r['client_cpu_ms_per_call']['gsa-prompt client']:.3f} "
           f"| {r['cpu_ratio']:.3f} |" for r in rows]  # fmt: skip
    md += ["", "The package's client adds a retry layer, the ledger, the semaphore and the cache lookup (cache off "
           f"here). Target: wall-time overhead < 5 % in both settings: {'met' if met else 'NOT met'}. With no "
           "latency the endpoint is saturated and the run is bound by the client's CPU (2 cores shared with the "
           f"server process), so that row measures the client's own cost. A cache hit costs {cache_ms:.3f} ms "
           "(median)."]  # fmt: skip
    body = {"rows": rows, "cache_hit_ms": cache_ms, "target_met": met}
    return _record("overhead", args, started, body, md)


def _cache_hit_ms(server: FakeServer, messages: list[dict[str, str]], k: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        client = Client(Endpoint(server.base_url, "fake-model", cache=str(Path(tmp) / "c.sqlite")))
        run_sync(client.complete(messages, n=1, temperature=0.7, seed=0))

        async def hits() -> list[float]:
            out = []
            for _ in range(k):
                t0 = time.perf_counter()
                await client.complete(messages, n=1, temperature=0.7, seed=0)
                out.append((time.perf_counter() - t0) * 1000)
            return out

        return statistics.median(run_sync(hits()))


# -- sandbox throughput -----------------------------------------------------------------------------
def sandbox(args: argparse.Namespace) -> int:
    from gsa_prompt.sandbox import mbpp_program, run_many

    started = time.time()
    k = 20 if args.quick else 100
    good = mbpp_program("def f(x):\n    return 2 * x + 1\n", ["assert f(1) == 3", "assert f(5) == 11"])
    bad = mbpp_program("def f(x):\n    return 2 * x\n", ["assert f(1) == 3"])
    programs = [good if i % 2 == 0 else bad for i in range(k)]
    t0 = time.perf_counter()
    results = run_many(programs, jobs=2, timeout_s=5.0)
    wall = time.perf_counter() - t0
    right = sum((r.status == "passed") == (i % 2 == 0) for i, r in enumerate(results))
    md = [f"# sandbox: {k} MBPP-style programs (half correct), 2 at a time", "",
          f"{k / wall:.1f} programs/s ({wall:.2f} s); statuses as expected for {right}/{k}."]  # fmt: skip
    return _record("sandbox", args, started, {"programs": k, "wall_s_run": wall, "per_s": k / wall,
                                              "as_expected": right}, md)  # fmt: skip


BENCHMARKS: dict[str, Callable[[argparse.Namespace], int]] = {
    "fidelity": fidelity, "overhead": overhead, "sandbox": sandbox,
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smallest settings, for the smoke test")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), help="run one benchmark")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and Markdown results")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    names = [args.only] if args.only else list(BENCHMARKS)
    return max(BENCHMARKS[n](args) for n in names)


if __name__ == "__main__":
    raise SystemExit(main())
