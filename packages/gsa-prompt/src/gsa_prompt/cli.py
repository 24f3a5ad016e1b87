"""Command line interface of gsa-prompt: ``gsa-prompt COMMAND`` (also ``python -m gsa_prompt``).

Only the standard library is imported at module level, so ``gsa-prompt --help`` and
``gsa-prompt --version`` answer in well under half a second; each command imports what it needs.

Commands: ``ask`` (one question, one method), ``eval`` (methods side by side on a JSONL data set,
resumable), ``serve-test`` (the local OpenAI-compatible fake server the tests use), ``demo`` (a toy-world
run over real HTTP, no account needed), ``info``. Exit status: 0 ok, 2 bad argument or data (one line
naming the cause, and the file and line for data), 3 the endpoint failed (unreachable after retries, or
it rejected the request: unknown model, bad key), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from gsa_prompt._version import __version__

EXIT_USAGE = 2
EXIT_ENDPOINT = 3
METHOD_NAMES = ("greedy", "sc", "usc", "cfn", "bon", "self-refine", "gsa")
"""The names of :data:`gsa_prompt.methods.METHODS` (kept here so ``--help`` imports nothing; a test checks them)."""
TASK_KINDS = ("math", "gsm8k", "answer_is", "multiple_choice", "code", "open")
"""The names of :data:`gsa_prompt.tasks.TASK_KINDS` (``ask --task``)."""


def _endpoint_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("endpoint")
    g.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL"),
                   help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL)")  # fmt: skip
    g.add_argument("--model", required=True, help="model name at that endpoint")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY",
                   help="environment variable holding the API key (default OPENAI_API_KEY; never pass a key itself)")  # fmt: skip
    g.add_argument("--concurrency", type=int, default=16, help="requests in flight at most (default 16)")
    g.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")
    g.add_argument("--retries", type=int, default=4, help="retries of 429/5xx/timeouts (default 4)")
    g.add_argument("--n-mode", choices=("auto", "native", "loop"), default="auto",
                   help="send n in one request (native), one request per sample (loop), or detect (auto)")  # fmt: skip
    g.add_argument("--cache", default=None, metavar="FILE", help="SQLite response cache (reruns cost nothing)")
    g.add_argument("--price", default="0,0", metavar="IN,OUT", help="dollars per million prompt,completion tokens")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gsa-prompt``, one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="gsa-prompt",
        allow_abbrev=False,
        description="Generative Self-Aggregation (GSA) and its baselines over any OpenAI-compatible endpoint, "
        "with an evaluation harness.",
        epilog='Paper: Li, Feng, Cai, Zhang, Liu, Liang, Chen, Wang, Zhao, "LLMs Can Generate a Better Answer by '
        'Aggregating Their Own Responses", arXiv:2503.04104 (2025). Exit status: 0 ok, 2 bad argument or data, '
        "3 endpoint failed.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ask = sub.add_parser("ask", allow_abbrev=False, help="answer one question with one method; -v shows the samples")
    ask.add_argument("question", help="the question")
    ask.add_argument("--method", choices=METHOD_NAMES, default="gsa", help="method (default gsa)")
    ask.add_argument("--task", choices=TASK_KINDS, default="open", help="answer format and extraction (default open)")
    ask.add_argument("-n", type=int, default=None, help="samples (default: the method's; gsa 3)")
    ask.add_argument("--budget", type=int, default=None, help="calls per question instead of -n (paper: 4)")
    ask.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    ask.add_argument("-v", "--verbose", action="store_true", help="print every sample and the method's trace")
    ask.add_argument("--json", action="store_true", help="print the result as one JSON object")
    _endpoint_flags(ask)

    ev = sub.add_parser("eval", allow_abbrev=False, help="methods side by side on a JSONL data set (resumable)")
    ev.add_argument("--task", required=True,
                    help="gsm8k, math, mmlu, gpqa, humaneval, mbpp, chat (judged pairwise), arithmetic")  # fmt: skip
    src = ev.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, metavar="FILE.jsonl", help="the data set, in the benchmark's public format")
    src.add_argument("--sample", action="store_true", help="the task's small built-in sample (for trying the tool)")
    ev.add_argument("--methods", default="greedy,sc,usc,gsa", help="comma list (default greedy,sc,usc,gsa)")
    ev.add_argument("--budget", type=int, default=4, help="calls per question for every method (default 4)")
    ev.add_argument("-n", "--n", type=int, default=None, dest="n",
                    help="samples for sc, usc, cfn, bon and gsa instead of the budget's split")  # fmt: skip
    ev.add_argument("--seeds", default="0", help="comma list of base seeds (default 0)")
    ev.add_argument("--limit", type=int, default=None, help="first N items only")
    ev.add_argument("--out", type=Path, default=None, metavar="DIR",
                    help="run folder: items.jsonl (resume), summary.json/.md, cache.sqlite (default runs/<task>)")  # fmt: skip
    ev.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    ev.add_argument("--judge-model", default=None,
                    help="judge of open-ended (chat) answers, compared pairwise with position swap (default: --model)")  # fmt: skip
    ev.add_argument("--judge-base-url", default=None, help="the judge's endpoint (default: --base-url)")
    _endpoint_flags(ev)

    serve = sub.add_parser(
        "serve-test", allow_abbrev=False, help="run the local OpenAI-compatible fake server (Ctrl-C stops it)"
    )
    serve.add_argument("--world", default="arithmetic", help="arithmetic, multiple_choice, code or chat")
    serve.add_argument("--persona", default="openai", help="openai, vllm, ollama, llamacpp or flaky")
    serve.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    serve.add_argument("--latency", type=float, default=0.0, help="seconds of fake latency per request")
    serve.add_argument(
        "--aggregator", default="copy-majority", help="GSA policy (copy-majority, copy-first, oracle, table)"
    )
    serve.add_argument("--selector", default="majority", help="USC/choose policy (majority, first, oracle, table)")

    demo = sub.add_parser(
        "demo", allow_abbrev=False, help="greedy, SC, USC and GSA on a toy world over real HTTP (a plumbing check)"
    )
    demo.add_argument("--items", type=int, default=60, help="questions (default 60)")
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    info = sub.add_parser("info", allow_abbrev=False, help="print package, python and dependency versions")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def _fail(command: str, message: str, status: int) -> int:
    print(f"gsa-prompt {command}: error: {' '.join(message.split())}", file=sys.stderr)
    return status


FLAG_OF = {"base_url": "--base-url", "model": "--model", "max_concurrency": "--concurrency", "timeout_s": "--timeout",
           "max_retries": "--retries", "input_per_mtok": "--price", "output_per_mtok": "--price",
           "n_mode": "--n-mode", "limit": "--limit", "budget": "--budget", "n": "-n", "seeds": "--seeds"}  # fmt: skip
"""Library argument -> the flag that sets it (errors name the flag)."""


def _flagged(exc: Exception) -> str:
    """``"max_concurrency must be ..."`` -> ``"--concurrency: max_concurrency must be ..."``."""
    text = str(exc)
    if text.startswith("out: "):
        return "--out: " + text[5:]
    flag = FLAG_OF.get(text.split(" ", 1)[0])
    return f"{flag}: {text}" if flag else text


def _client(args: argparse.Namespace, cache: str | None) -> Any:
    from gsa_prompt.client import Client, Endpoint
    from gsa_prompt.ledger import Price

    if not args.base_url:
        raise ValueError("--base-url is required (or set OPENAI_BASE_URL)")

    try:
        price_in, price_out = (float(v) for v in str(args.price).split(","))
    except ValueError:
        raise ValueError(f"--price must be two numbers IN,OUT, got {args.price!r}") from None
    endpoint = Endpoint(base_url=args.base_url, model=args.model, api_key_env=args.api_key_env,
                        max_concurrency=args.concurrency, timeout_s=args.timeout, max_retries=args.retries,
                        n_mode=args.n_mode, cache=cache, price=Price(price_in, price_out))  # fmt: skip
    return Client(endpoint)


def _ask(args: argparse.Namespace) -> int:
    from gsa_prompt.api import aaggregate
    from gsa_prompt.client import run_sync

    settings: dict[str, Any] = {"seed": args.seed}
    if args.n is not None:
        if args.method in ("greedy", "self-refine"):
            raise ValueError(f"-n does not apply to {args.method}")
        settings["n"] = args.n
    client = _client(args, args.cache)
    result = run_sync(aaggregate(args.question, method=args.method, task=args.task, client=client,
                                 budget=args.budget, **settings))  # fmt: skip
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    if args.verbose:
        for i, text in enumerate(result.candidates, 1):
            print(f"--- sample {i} ---\n{text}\n")
        for step in result.trace:
            print(f"--- {step.get('role')} ---\n{step.get('text')}\n")
        print(f"--- {result.method} ---")
    print(result.text if result.text is not None else "(no answer)")
    usage = result.usage
    print(f"[{result.method}: {result.calls} calls, {usage.get('prompt_tokens', 0)} prompt + "
          f"{usage.get('completion_tokens', 0)} completion tokens, ${usage.get('cost_usd', 0.0):.6f}"
          + (f", answer {result.answer}" if result.answer is not None else "")
          + (f", flags {','.join(result.flags)}" if result.flags else "") + "]", file=sys.stderr)  # fmt: skip
    return 0


def _eval(args: argparse.Namespace) -> int:
    from gsa_prompt.client import run_sync
    from gsa_prompt.data import TASKS, load_task, sample_path
    from gsa_prompt.harness import evaluate, markdown

    if args.task not in TASKS:
        raise ValueError(f"--task must be one of {', '.join(TASKS)}, got {args.task!r}")
    methods = [m.strip() for m in str(args.methods).split(",") if m.strip()]
    bad = [m for m in methods if m not in METHOD_NAMES]
    if bad or not methods:
        raise ValueError(f"--methods must be a comma list of {', '.join(METHOD_NAMES)}, got {args.methods!r}")
    try:
        seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds must be a comma list of integers, got {args.seeds!r}") from None
    from gsa_prompt.methods import budget_split

    for method in methods:  # fail before any file is written
        budget_split(method, args.budget)
    settings: dict[str, dict[str, Any]] = {}
    if args.n is not None:
        if isinstance(args.n, bool) or args.n < 1:
            raise ValueError(f"-n must be >= 1, got {args.n}")
        settings = {m: {"n": args.n} for m in methods if m in ("sc", "usc", "cfn", "bon", "gsa")}
    path = sample_path(args.task) if args.sample else args.data
    if not Path(path).is_file():
        raise ValueError(f"--data: no such file {path}")
    items = load_task(args.task, path, limit=args.limit)
    out = args.out if args.out is not None else Path("runs") / args.task
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} exists and is not a folder")
    cache = args.cache if args.cache is not None else str(out / "cache.sqlite")
    client = _client(args, cache)
    judge = None
    if any(it.kind == "open" for it in items):
        from gsa_prompt.client import Client, Endpoint

        ep = client.endpoint
        judge = Client(Endpoint(args.judge_base_url or ep.base_url, args.judge_model or ep.model,
                                api_key_env=ep.api_key_env, max_concurrency=ep.max_concurrency, timeout_s=ep.timeout_s,
                                max_retries=ep.max_retries, cache=cache))  # fmt: skip
    report = run_sync(evaluate(client, args.task, items, methods, budget=args.budget, seeds=seeds, out=out,
                               progress=not args.json, judge=judge, settings=settings))  # fmt: skip
    if args.json:
        print(json.dumps(report.summary))
        return 0
    print(markdown(report.summary))
    print(f"\nwrote {out}/items.jsonl, summary.json, summary.md" + (f" (resumed {report.resumed} records)"
                                                                      if report.resumed else ""))  # fmt: skip
    return 0


def _serve(args: argparse.Namespace) -> int:
    import threading

    from gsa_prompt.testing import FakeServer

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    try:
        server = FakeServer(args.world, persona=args.persona, port=args.port, latency_s=args.latency,
                            aggregator=args.aggregator, selector=args.selector)  # fmt: skip
    except OSError as exc:
        raise ValueError(f"--port {args.port}: cannot listen on 127.0.0.1 ({exc.strerror or exc})") from None
    print(f"fake OpenAI-compatible server ({args.world} world, {args.persona} persona) at {server.base_url}; "
          f"model 'fake-model', any API key; Ctrl-C stops it", flush=True)  # fmt: skip
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gsa_prompt.client import Client, Endpoint, run_sync
    from gsa_prompt.data import EvalItem
    from gsa_prompt.harness import evaluate, markdown
    from gsa_prompt.policies import sc_accuracy, table_accuracy
    from gsa_prompt.testing import FakeServer
    from gsa_prompt.worlds import ArithmeticWorld

    if args.items < 1:
        raise ValueError(f"--items must be >= 1, got {args.items}")
    world = ArithmeticWorld(p=0.6, m=6)
    items = [EvalItem(id=q.id, question=q.question, answer=q.answer, kind="answer_is")
             for q in world.questions(args.items, seed=0)]  # fmt: skip
    with FakeServer(world, aggregator="table", selector="majority") as server:
        client = Client(Endpoint(server.base_url, "fake-model"))
        report = run_sync(evaluate(client, "arithmetic (toy world)", items, ["greedy", "sc", "usc", "gsa"],
                                   budget=4, progress=not args.json))  # fmt: skip
    expected = {"greedy": 0.6, "sc": sc_accuracy(0.6, 6, 4), "usc": sc_accuracy(0.6, 6, 3),
                "gsa": table_accuracy(0.6, 3, (0.1, 0.5, 0.9, 1.0))}  # fmt: skip
    if args.json:
        print(json.dumps({"summary": report.summary, "analytic": expected}))
        return 0
    print(markdown(report.summary))
    print("\nAnalytic accuracy of the scripted policies (per-sample accuracy 0.6, 6 distractors): "
          + ", ".join(f"{m} {v:.4f}" for m, v in expected.items()))  # fmt: skip
    print("This is a toy world over real HTTP: a check of the plumbing, not evidence for GSA. "
          "Point `gsa-prompt eval` at a real endpoint for that.")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``gsa-prompt`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "info":
        from gsa_prompt.environment import collect, format_table

        report = collect()
        print(json.dumps(report, indent=2) if args.json else format_table(report))
        return 0
    handlers = {"ask": _ask, "eval": _eval, "serve-test": _serve, "demo": _demo}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return _fail(args.command, "interrupted (an eval resumes from its run folder)", 130)
    except (ValueError, TypeError) as exc:
        return _fail(args.command, _flagged(exc), EXIT_USAGE)
    except Exception as exc:
        from gsa_prompt.client import EndpointError
        from gsa_prompt.methods import NoCandidates

        if isinstance(exc, (EndpointError, NoCandidates)):
            return _fail(args.command, str(exc), EXIT_ENDPOINT)
        if isinstance(exc, OSError):  # an unwritable --out, a missing parent folder, a full disk
            return _fail(args.command, f"cannot write or read a file: {exc}", EXIT_USAGE)
        import sqlite3

        if isinstance(exc, sqlite3.Error):  # --cache: the response cache's database
            return _fail(args.command, f"the response cache (--cache) cannot be used: {exc}", EXIT_USAGE)
        raise
