"""The evaluation harness: every method on every item and seed, scored, resumable, summarised side by side.

``evaluate`` runs ``methods × items × seeds`` through one :class:`~gsa_prompt.client.Client` with bounded
concurrency, scores each final response (:func:`gsa_prompt.data.score`: answer extraction and
equivalence, or the code sandbox), and appends one JSON line per (item, method, seed) to
``<out>/items.jsonl`` as it finishes (open-ended items are judged pairwise instead, see below), so a killed run resumes where it stopped (together with the
response cache, a rerun costs no request). Each record carries a fingerprint of its item (question, answer,
tests, reference): a record is reused only for the same item, so a different data file run into the same
folder is evaluated afresh, never answered from another file's records. Run seed ``s`` sends the request
seeds ``s·2¹⁶ + i`` (:data:`SEED_STRIDE`; sample ``i`` adds ``i``, as vLLM does for the ``n`` samples of
one request), so the samples of seeds 0, 1, 2 are independent rather than shifted copies of each other. A record whose method produced no candidate
(:class:`~gsa_prompt.methods.NoCandidates`) is kept, flagged and counted wrong; an endpoint that fails
for good stops the run (what is done stays on disk).

Open-ended items (task kind ``open``) have no checkable answer: a judge model compares each method's
response with the item's reference response (the data set's, else the greedy response to the same item
and seed), in both orders (:func:`gsa_prompt.judge.judge_pairwise`), and the method's score is its mean
win rate (a tie counts one half). For those tasks "accuracy" below is that win rate, its interval the
normal-approximation interval of the mean score, and McNemar pairs wins (score > 1/2).

The summary per method: accuracy with a Wilson 95 % interval over items (with several seeds an item counts
once, scored by its mean over the seeds: seeds of one item are not independent trials), calls, prompt and completion tokens and
dollars per question (a sample served from the cache counts its share of the request that made it, so a
resumed run reports about the same; methods that send the same sample prompt, such as SC and GSA, share
samples through the cache, which moves the split between them a little), the flags, and an exact McNemar test (two-sided binomial test on the discordant
pairs, paired by item and seed) of GSA against each other method (with several seeds it treats the seeds of
an item as independent pairs, which overstates significance: use one seed for a strict test).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gsa_prompt.client import Client, EndpointRejected
from gsa_prompt.data import EvalItem, score
from gsa_prompt.judge import judge_pairwise
from gsa_prompt.methods import METHODS, MethodResult, NoCandidates, budget_split

log = logging.getLogger(__name__)

__all__ = ["EvalReport", "evaluate", "mcnemar_exact", "summarize", "wilson_interval"]


def wilson_interval(successes: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95 % by default); ``successes`` may be a
    sum of per-item mean scores (items scored over several seeds).

    .. math::
        \\frac{\\hat p + z^2/2n \\pm z\\sqrt{\\hat p(1-\\hat p)/n + z^2/4n^2}}{1 + z^2/n}

    Example:
        >>> [round(v, 4) for v in wilson_interval(8, 10)]
        [0.4902, 0.9433]
    """
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> dict[str, float | int]:
    """Exact McNemar test of paired outcomes: ``b01`` (a wrong, b right), ``b10`` and the two-sided p-value.

    Example:
        >>> mcnemar_exact([True] * 8 + [False] * 2, [False] * 8 + [True] * 2)["p_value"]
        0.109375
    """
    if len(a) != len(b):
        raise ValueError(f"a and b must pair up, got {len(a)} and {len(b)} outcomes")
    b10 = sum(x and not y for x, y in zip(a, b, strict=True))
    b01 = sum(y and not x for x, y in zip(a, b, strict=True))
    n = b10 + b01
    if n == 0:
        return {"b10": 0, "b01": 0, "p_value": 1.0}
    k = min(b10, b01)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return {"b10": b10, "b01": b01, "p_value": min(1.0, 2 * tail)}


@dataclasses.dataclass
class EvalReport:
    """What :func:`evaluate` returns (also written as ``summary.json`` / ``summary.md`` under ``out``)."""

    task: str
    methods: list[str]
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    resumed: int = 0
    """records read back from an earlier, interrupted run."""


SEED_STRIDE = 2**16
"""Run seed ``s`` becomes the request seed ``s * SEED_STRIDE``; a method's ``n`` samples then use
``s * SEED_STRIDE + i`` (``i < n ≤ SEED_STRIDE``), disjoint across run seeds."""


def item_fingerprint(item: EvalItem) -> str:
    """A short sha256 of what defines an item's grading (question, answer, kind, tests, reference)."""
    fields = [item.question, item.answer, item.kind, list(item.tests), item.entry_point, item.code_prompt,
              item.test_setup_code, item.reference_text]  # fmt: skip
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def _key(record: dict[str, Any]) -> tuple[str, str, int]:
    return (str(record["item"]), str(record["method"]), int(record["seed"]))


def _load_done(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    done = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            done.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill: its item is simply run again
            continue
    return done


async def evaluate(
    client: Client,
    task: str,
    items: Sequence[EvalItem],
    methods: Sequence[str],
    *,
    budget: int = 4,
    seeds: Sequence[int] = (0,),
    out: str | Path | None = None,
    progress: bool = True,
    settings: dict[str, dict[str, Any]] | None = None,
    timeout_s: float = 5.0,
    judge: Client | None = None,
) -> EvalReport:
    """Run and score ``methods`` on ``items`` for every seed; resumable through ``out/items.jsonl``.

    Args:
        client: the endpoint's client (its cache makes reruns free).
        task: the task name (recorded).
        items: the questions.
        methods: names from :data:`~gsa_prompt.methods.METHODS`.
        budget: calls per question for every method (the paper's equal-budget rule, :func:`budget_split`).
        seeds: base seeds (one run of every item per seed).
        out: a run folder for ``items.jsonl``, ``summary.json`` and ``summary.md``; None keeps all in memory.
        progress: a tqdm bar over (item, method, seed).
        settings: per-method keyword arguments overriding the defaults (``{"gsa": {"sample_temperature": 1.0}}``).
        timeout_s: the code sandbox's time limit per program.
        judge: the judge model's client for open-ended items (required when there are any).

    Returns:
        :class:`EvalReport`.

    Raises:
        ValueError: an unknown method, no items, or no seeds.
        EndpointError: the endpoint failed for good (finished records stay in ``items.jsonl``).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty list from {', '.join(METHODS)}, got {list(methods)}")
    if not items:
        raise ValueError("items must not be empty")
    if not seeds:
        raise ValueError("seeds must not be empty")
    if judge is None and any(it.kind == "open" for it in items):
        raise ValueError("open-ended items need a judge: pass judge=Client(...) (CLI: --judge-model)")
    settings = settings or {}
    for method in methods:
        budget_split(method, budget)  # a budget too small for a method fails before any work
    folder = Path(out) if out is not None else None
    log_path = folder / "items.jsonl" if folder is not None else None
    run_config = {"task": task, "base_url": client.endpoint.base_url, "model": client.endpoint.model,
                  "budget": budget, "settings": settings}  # fmt: skip
    if folder is not None:
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"out: {folder} exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        _check_config(folder / "config.json", run_config)
    fingerprints = {it.id: item_fingerprint(it) for it in items}
    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    stale = 0  # records of a current item id whose item differs (another data file in the same folder)
    for r in _load_done(log_path) if log_path is not None else []:
        expected = fingerprints.get(str(r["item"]))
        if r.get("fingerprint") == expected:
            done[_key(r)] = r
        elif expected is not None:
            stale += 1
    if stale:
        log.warning("%s: %d record(s) belong to a different item with the same id (another data file?); "
                    "those items are run again", log_path, stale)  # fmt: skip
    planned = {(it.id, m, s) for s in seeds for m in methods for it in items}
    resumed = sum(k in planned for k in done)
    todo = [(it, m, s) for s in seeds for m in methods for it in items if (it.id, m, s) not in done]
    cpu = asyncio.Semaphore(max(1, min(4, os.cpu_count() or 1)))  # sandbox runs at once
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo) + resumed, initial=resumed, desc=f"eval {task}", unit="q", disable=None)
    handle = log_path.open("a", encoding="utf-8") if log_path is not None else None
    if handle is not None and log_path is not None and log_path.stat().st_size > 0:
        with log_path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a line cut by a kill: end it, so the next record starts a line of its own
                handle.write("\n")

    async def _judge(item: EvalItem, text: str, seed: int) -> tuple[float, list[str], dict[str, Any]]:
        assert judge is not None
        reference = item.reference_text
        if reference is None:
            baseline = await METHODS["greedy"](client, item.question, item.kind, seed=seed)
            reference = baseline.text or ""
        with judge.track() as led:  # this task's judge requests only (the ledger scope is per asyncio task)
            verdict = await judge_pairwise(judge, item.question, text, reference, seed=seed)
        return verdict.score, ["judge_unparsable"] * verdict.unparsable, led.totals()

    async def one(item: EvalItem, method: str, seed: int) -> dict[str, Any]:
        request_seed = seed * SEED_STRIDE
        kw = {**budget_split(method, budget), "seed": request_seed, **settings.get(method, {})}
        t0 = time.perf_counter()
        try:
            result: MethodResult | None = await METHODS[method](client, item.question, item.kind, **kw)
            error = None
        except NoCandidates as exc:
            result, error = None, str(exc)
        except EndpointRejected as exc:
            if exc.status not in (400, 413, 422):  # a bad key or an unknown model: stop the run
                raise
            result, error = None, str(exc)  # this item's request is refused (e.g. over the context): flag it
        graded, value = None, 0.0
        judge_flags: list[str] = []
        judge_usage: dict[str, Any] = {}
        if result is not None and result.text and item.kind == "open":
            value, judge_flags, judge_usage = await _judge(item, result.text, request_seed)
        elif result is not None and result.text:
            if item.kind == "code":  # a subprocess: keep the event loop (and every other request) running
                async with cpu:
                    graded = await asyncio.to_thread(score, item, result.text, timeout_s=timeout_s)
            else:
                graded = score(item, result.text, timeout_s=timeout_s)
            value = 1.0 if graded.correct else 0.0
        record = {
            "item": item.id, "fingerprint": fingerprints[item.id], "method": method, "seed": seed, "score": value,
            "correct": value > 0.5,
            "judged": item.kind == "open", "extracted": graded.extracted if graded else None,
            "reference": item.answer, "text": result.text if result else None,
            "candidates": result.candidates if result else [], "calls": result.calls if result else 0,
            "usage": result.usage if result else {}, "judge_usage": judge_usage,
            "flags": (result.flags if result else []) + (["error"] if error else []) + judge_flags,
            "error": error, "detail": graded.detail if graded else None, "wall_s": time.perf_counter() - t0,
        }  # fmt: skip
        if handle is not None:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if bar is not None:
            bar.update(1)
        return record

    async def in_turn(jobs: list[tuple[EvalItem, str, int]]) -> list[dict[str, Any]]:
        # one (item, seed)'s methods one after another: a method whose sample prompt an earlier one sent
        # (SC, USC, CfN, GSA) finds those samples in the cache instead of requesting them again
        return [await one(it, m, s) for it, m, s in jobs]

    groups: dict[tuple[str, int], list[tuple[EvalItem, str, int]]] = {}
    for it, m, s in todo:
        groups.setdefault((it.id, s), []).append((it, m, s))
    tasks = [asyncio.ensure_future(in_turn(jobs)) for jobs in groups.values()]
    try:
        fresh = [r for rs in await asyncio.gather(*tasks) for r in rs]
    except BaseException:
        for t in tasks:  # stop the siblings before the log closes, so no finished record is lost
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        if handle is not None:
            handle.close()
        if bar is not None:
            bar.close()
    for r in fresh:
        done[_key(r)] = r
    order = {
        (it.id, m, s): i for i, (it, m, s) in enumerate((it, m, s) for s in seeds for m in methods for it in items)
    }
    records = sorted((r for k, r in done.items() if k in order), key=lambda r: order[_key(r)])
    summary = summarize(records, list(methods))
    summary.update(task=task, items=len(items), seeds=list(seeds), budget=budget, model=client.endpoint.model,
                   base_url=client.endpoint.base_url, ledger=client.ledger.totals(),
                   judge_ledger=judge.ledger.totals() if judge is not None else None)  # fmt: skip
    report = EvalReport(task=task, methods=list(methods), records=records, summary=summary, resumed=resumed)
    if folder is not None:
        (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        (folder / "summary.md").write_text(markdown(summary) + "\n", encoding="utf-8")
    return report


def _check_config(path: Path, config: dict[str, Any]) -> None:
    """Write the run's settings, or refuse to resume a run made with other ones (records would mix)."""
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            saved = None
        if saved != json.loads(json.dumps(config)):
            diff = sorted(
                k for k in config if not isinstance(saved, dict) or saved.get(k) != json.loads(json.dumps(config))[k]
            )
            raise ValueError(f"out: {path.parent} holds a run made with other settings ({', '.join(diff)}); "
                             "use another folder to start a new run")  # fmt: skip
        return
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def summarize(records: Sequence[dict[str, Any]], methods: Sequence[str]) -> dict[str, Any]:
    """Per method: accuracy and Wilson interval, calls/tokens/cost per question, flags; McNemar of GSA vs each."""
    rows: dict[str, Any] = {}
    outcomes: dict[str, dict[tuple[str, int], bool]] = {}
    for method in methods:
        rs = [r for r in records if r["method"] == method]
        n = len(rs)
        right = sum(bool(r["correct"]) for r in rs)
        scores = [float(r.get("score", float(r["correct"]))) for r in rs]
        total = sum(scores)
        # the units of the interval: items, each scored by the mean over its seeds (the seeds of one item are
        # not independent trials: a greedy method gives every seed the same outcome)
        per_item: dict[str, list[float]] = {}
        for r, x in zip(rs, scores, strict=True):
            per_item.setdefault(str(r["item"]), []).append(x)
        units = [sum(v) / len(v) for v in per_item.values()]
        k = len(units)
        if any(r.get("judged") for r in rs) and k > 1:  # win rates with ties: a normal interval of the mean
            mu = sum(units) / k
            half = 1.959963984540054 * math.sqrt(sum((x - mu) ** 2 for x in units) / (k - 1) / k)
            lo, hi = max(0.0, mu - half), min(1.0, mu + half)
        else:
            lo, hi = wilson_interval(sum(units), k)
        flags: dict[str, int] = {}
        for r in rs:
            for f in r["flags"]:
                flags[f] = flags.get(f, 0) + 1

        def mean(key: str, rs: list[dict[str, Any]] = rs) -> float:  # fresh + cached: what the method costs
            return sum(float(r["usage"].get(key, 0)) + float(r["usage"].get(f"cached_{key}", 0)) for r in rs) / max(
                1, len(rs)
            )

        rows[method] = {
            "n": n, "items": k, "correct": right, "accuracy": total / n if n else 0.0, "ci95": [lo, hi],
            "calls_per_q": sum(r["calls"] for r in rs) / max(1, n), "prompt_tokens_per_q": mean("prompt_tokens"),
            "completion_tokens_per_q": mean("completion_tokens"), "cost_usd_per_q": sum(float(r["usage"].get("cost_usd_uncached", 0)) for r in rs) / max(1, n),
            "cached_calls": int(sum(r["usage"].get("cached_calls", 0) for r in rs)), "flags": flags,
        }  # fmt: skip
        outcomes[method] = {(r["item"], r["seed"]): bool(r["correct"]) for r in rs}
    tests = {}
    if "gsa" in outcomes:
        for method in methods:
            if method == "gsa":
                continue
            keys = sorted(set(outcomes["gsa"]) & set(outcomes[method]))
            tests[method] = mcnemar_exact([outcomes["gsa"][k] for k in keys], [outcomes[method][k] for k in keys])
    return {"methods": rows, "mcnemar_gsa_vs": tests}


def markdown(summary: dict[str, Any]) -> str:
    """The side-by-side table of a summary (accuracy, interval, calls, tokens, cost, McNemar p vs GSA)."""
    lines = [
        f"# {summary.get('task', 'eval')}: {summary.get('items', '?')} items × {len(summary.get('seeds', [0]))} "
        f"seed(s), budget {summary.get('budget', '?')} calls, model {summary.get('model', '?')}",
        "",
        "| method | accuracy | 95 % CI | calls/q | prompt tok/q | completion tok/q | $/q | p vs GSA (McNemar) | flags |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    tests = summary.get("mcnemar_gsa_vs", {})
    for method, row in summary["methods"].items():
        p = tests.get(method, {}).get("p_value")
        flags = ", ".join(f"{k} {v}" for k, v in sorted(row["flags"].items())) or "-"
        lines.append(
            f"| {method} | {row['accuracy']:.3f} | {row['ci95'][0]:.3f}–{row['ci95'][1]:.3f} | {row['calls_per_q']:.2f} "
            f"| {row['prompt_tokens_per_q']:.0f} | {row['completion_tokens_per_q']:.0f} | {row['cost_usd_per_q']:.2e} "
            f"| {'-' if p is None else f'{p:.3g}'} | {flags} |"
        )
    judged = summary.get("judge_ledger")
    if judged:  # the judge's requests are not in the methods' columns: they cost the evaluation, not the method
        lines += ["", f"Judge (pairwise, both orders): {judged['calls']} calls ({judged['cached_calls']} from the cache), "
                  f"{judged['prompt_tokens']} prompt and {judged['completion_tokens']} completion tokens, "
                  f"${judged['cost_usd']:.2e}; per record in `judge_usage` of items.jsonl."]  # fmt: skip
    return "\n".join(lines)
