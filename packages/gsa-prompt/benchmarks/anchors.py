#!/usr/bin/env python3
"""Benchmark B2 (spec §6): optillm's and DSPy's aggregation approaches next to the package's methods, same world.

The toy arithmetic world and the server policies of ``benchmarks/run.py``'s fidelity benchmark (p = 0.6, 6
uniform distractors, the same questions): the package's methods are run exactly as there, and the anchors
talk to the same :class:`~gsa_prompt.testing.FakeServer`:

- optillm (its own OpenAI-compatible proxy, started as a subprocess with ``--base-url`` = the fake server):
  ``bon``, ``moa``, ``self_consistency`` and the plugin ``majority_voting``, each chosen by the model-name
  prefix (``bon-fake-model``), with its own defaults;
- DSPy ``ChainOfThought("question -> answer", n=3)`` then ``MultiChainComparison(M=3)`` through ``dspy.LM``
  with ``api_base`` = the fake server (LiteLLM underneath, ``LITELLM_LOCAL_MODEL_COST_MAP=True``).

Every method gets the same user message (the question and the package's "The answer is N." instruction) and
is scored by the same extractor (:func:`gsa_prompt.data.score`); requests, generations and tokens are what the
server counted. The world decides correctness from the prompt it sees, and it does not know the anchors'
prompts, so each anchor runs twice: with the world answering unknown prompts as fresh questions
(``foreign="fresh"``, the fake server's default) and with the world reading the answers such prompts state
(``foreign="read"``: aggregated with the same table as the package's GSA, rated 9 / 3 like the package's judge).
**A plumbing check on a scripted toy world: it shows how each approach spends calls and what it passes
along, not how good its prompts are with a real model.**

Neither optillm nor DSPy is a dependency of gsa-prompt: run this from a separate venv that has them and
gsa-prompt (editable), e.g. ``pip install -c ci/constraints.txt optillm dspy -e packages/gsa-prompt``.
An anchor that cannot be imported or started is recorded with its error; the package's rows still run.

Usage: python benchmarks/anchors.py [--quick] [--items N] [--out DIR] [--concurrency C]
                                    [--skip-optillm] [--skip-dspy]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the fidelity benchmark's world and policies

from gsa_prompt._version import __version__
from gsa_prompt.client import Client, Endpoint, run_sync
from gsa_prompt.data import EvalItem, score
from gsa_prompt.harness import evaluate, wilson_interval
from gsa_prompt.policies import AGGREGATE_TABLE, pass_at_n, table_accuracy, table_probability
from gsa_prompt.prompts import ANSWER_IS, build_sample_messages
from gsa_prompt.tasks import task_kind
from gsa_prompt.testing import FakeServer
from gsa_prompt.worlds import ArithmeticWorld, stable_rng
from run import EXPECTED, M, P, _items

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "fake-model"
OPTILLM_APPROACHES = ("bon", "moa", "self_consistency", "majority_voting")
MODES = ("fresh", "read")
VERSIONS = ("optillm", "dspy", "litellm", "openai", "flask", "torch", "transformers", "gsa-prompt")
ANCHOR_SERVER = {"aggregator": "table"}
"""The anchors' server policy: GSA's aggregation table (read mode), the default judge (right 9, wrong 3)."""

PACKAGE_ROWS: tuple[tuple[str, str, int, dict[str, Any]], ...] = (
    *((m, m, 4, {}) for m in EXPECTED),
    ("sc@5", "sc", 5, {}),
    ("sc@8", "sc", 8, {}),
    ("bon 3+3", "bon", 6, {}),
)
"""(row name, method, budget in generations, extra server policy): the fidelity rows at a 4-call budget, and
SC / BoN at the budgets of optillm's self_consistency (5), majority_voting (8) and bon (3 + 3)."""


# -- exact expectations (pure) -------------------------------------------------------------------------------
def sc_exact(p: float, m: int, n: int) -> float:
    """Exact majority-vote accuracy of ``n`` samples (``m`` uniform distractors), ties to the first seen.

    Sums over count vectors instead of answer sequences, so ``n = 8`` is cheap: given the counts every order is
    equally likely, so among answers tied at the top count each is seen first with probability 1 / ties.

    Example:
        >>> round(sc_exact(0.6, 6, 3), 4)  # gsa_prompt.policies.sc_accuracy(0.6, 6, 3)
        0.728
    """
    if not 0.0 <= p <= 1.0 or m < 1 or n < 1:
        raise ValueError(f"need p in [0, 1], m >= 1, n >= 1; got p={p}, m={m}, n={n}")
    q = (1.0 - p) / m
    total = 0.0
    for counts in _compositions(n, m + 1):
        top = max(counts)
        if counts[0] == top:
            ways = math.factorial(n) // math.prod(math.factorial(c) for c in counts)
            total += ways * p ** counts[0] * q ** (n - counts[0]) / sum(c == top for c in counts)
    return total


def _compositions(n: int, parts: int) -> Iterator[tuple[int, ...]]:
    if parts == 1:
        yield (n,)
        return
    for first in range(n + 1):
        for rest in _compositions(n - first, parts - 1):
            yield (first, *rest)


def moa_read_expected(p: float, table: Sequence[float] = AGGREGATE_TABLE) -> float:
    """optillm ``moa`` under ``foreign="read"``: 3 samples, a critique that states one answer, a final answer.

    The critique is aggregated from the 3 candidates (``table[k]`` for ``k`` right); the final request states
    4 answers (3 candidates + the critique's), read at ``k' / 4`` on the same table.

    Example:
        >>> round(moa_read_expected(0.6, (0.0, 1.0)), 4)  # linear table: P(final right) = E[k'] / 4 = p
        0.6
    """
    total = 0.0
    for k in range(4):
        weight = math.comb(3, k) * p**k * (1 - p) ** (3 - k)
        critique = table_probability(table, k, 3)
        total += weight * (
            critique * table_probability(table, k + 1, 4) + (1 - critique) * table_probability(table, k, 4)
        )
    return total


def anchor_expected(name: str, mode: str, p: float = P, m: int = M) -> float | None:
    """The exact accuracy of an anchor under the world's policy, or None where no closed form applies.

    ``fresh``: bon's ratings are unparsable ("I cannot answer that question.") so all are 0 and it returns its
    first sample (p); moa's critique and final prompt and MultiChainComparison's comparison prompt are answered
    as fresh questions (p). ``read``: bon rates right 9, wrong 3 and keeps the first best (pass@3); moa see
    :func:`moa_read_expected`; MultiChainComparison aggregates its 3 attempts with GSA's table. majority_voting
    (k = 8, answers extracted by regex) is SC@8 in both. optillm's self_consistency clusters whole texts by
    string similarity: no closed form.

    Example:
        >>> round(anchor_expected("optillm bon", "read"), 4)
        0.936
    """
    if name == "optillm majority_voting":
        return sc_exact(p, m, 8)
    if name == "optillm self_consistency":
        return None
    if mode == "fresh":
        return p
    return {"optillm bon": pass_at_n(p, 3), "optillm moa": moa_read_expected(p),
            "dspy MultiChainComparison": table_accuracy(p, 3, AGGREGATE_TABLE)}[name]  # fmt: skip


def package_expected(row: str) -> float:
    """The exact accuracy of one of :data:`PACKAGE_ROWS` (the fidelity benchmark's value at budget 4)."""
    extra = {"sc@5": sc_exact(P, M, 5), "sc@8": sc_exact(P, M, 8), "bon 3+3": pass_at_n(P, 3)}
    return extra[row] if row in extra else EXPECTED[row][0]


def similarity_of_toy_responses(threshold: float = 0.8) -> dict[str, Any]:
    """How alike the world's responses to one question are (``difflib.SequenceMatcher.ratio``, as optillm's
    self_consistency compares whole texts): ranges for pairs with the same and with different answers.

    Example:
        >>> sim = similarity_of_toy_responses()
        >>> sim["different_answer"][1] > sim["same_answer"][0]  # wording weighs more than the answer
        True
    """
    import difflib

    world = ArithmeticWorld(P, M)
    question = world.questions(1, seed=7)[0].question
    keys = [world.reference(question) or "", *world.distractors(question)]
    texts = sorted({(k, world.render(question, k, "answer_is", stable_rng(i))) for k in keys for i in range(30)})
    same, different = [], []
    for i, (ka, a) in enumerate(texts):
        for kb, b in texts[i + 1 :]:
            (same if ka == kb else different).append(difflib.SequenceMatcher(None, a, b).ratio())
    return {"question": question, "responses": len(texts), "threshold": threshold,
            "same_answer": [round(min(same), 3), round(max(same), 3)],
            "different_answer": [round(min(different), 3), round(max(different), 3)],
            "different_answer_at_or_above_threshold": round(sum(r >= threshold for r in different) / len(different), 3)}  # fmt: skip


def lenient_fields(text: str, names: Sequence[str]) -> dict[str, str]:
    """Output fields of a DSPy signature from a free-text reply: the last field the extracted answer, the others
    the whole text (what a model following DSPy's field format would have written).

    Example:
        >>> lenient_fields("2 + 3 = 5. The answer is 5.", ["reasoning", "answer"])
        {'reasoning': '2 + 3 = 5. The answer is 5.', 'answer': '5'}
    """
    body = text.strip()
    lines = [line for line in body.splitlines() if line.strip()]
    answer = task_kind("answer_is").answer(body) or (lines[-1].strip() if lines else "")
    return {**dict.fromkeys(names[:-1], body), names[-1]: answer}


# -- rows ---------------------------------------------------------------------------------------------------
def _row(name: str, library: str, mode: str, correct: list[bool], stats: dict[str, Any], wall: float,
         expected: float | None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    n = len(correct)
    right = sum(correct)
    lo, hi = wilson_interval(right, n)
    acc = right / n if n else 0.0
    z = (
        None
        if expected is None or expected in (0.0, 1.0)
        else (acc - expected) / math.sqrt(expected * (1 - expected) / n)
    )
    return {"method": name, "library": library, "foreign": mode, "items": n, "correct": right, "accuracy": acc,
            "ci95": [lo, hi], "analytic": expected, "z": z, "requests_per_q": stats["completions"] / n,
            "generations_per_q": stats["choices"] / n, "prompt_tokens_per_q": stats["usage"]["prompt_tokens"] / n,
            "completion_tokens_per_q": stats["usage"]["completion_tokens"] / n, "wall_s": wall, **extra}  # fmt: skip


def run_package(items: list[EvalItem], concurrency: int) -> list[dict[str, Any]]:
    """The package's methods, each on its own server with the fidelity benchmark's policy."""
    rows = []
    for name, method, budget, extra in PACKAGE_ROWS:
        policy = {**(EXPECTED[method][1] if method in EXPECTED else {}), **extra}
        with FakeServer(**policy) as server:
            client = Client(Endpoint(server.base_url, MODEL, max_concurrency=concurrency))
            t0 = time.perf_counter()
            report = run_sync(evaluate(client, "arithmetic", items, [method], budget=budget, progress=False))
            wall = time.perf_counter() - t0
            stats = server.stats()
        correct = [bool(r["correct"]) for r in report.records]
        rows.append(_row(name, "gsa-prompt", "-", correct, stats, wall, package_expected(name),
                         budget=budget, policy=policy))  # fmt: skip
        print(f"  {name:<28} {rows[-1]['accuracy']:.3f}  ({wall:.1f} s)", flush=True)
    return rows


def _question(item: EvalItem) -> str:
    return build_sample_messages(item.question, ANSWER_IS)[0]["content"]


def _map(fn: Callable[[EvalItem], tuple[bool, dict[str, Any]]], items: list[EvalItem], workers: int
         ) -> tuple[list[bool], list[dict[str, Any]]]:  # fmt: skip
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        out = list(pool.map(fn, items))
    return [c for c, _ in out], [d for _, d in out]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def optillm_proxy(upstream: str, log_path: Path, timeout_s: float = 180.0) -> Iterator[str]:
    """optillm's own proxy (``optillm.server.main``) in a subprocess, upstream = ``upstream``; yields its base URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPTILLM_", "AZURE_", "CEREBRAS_", "LITELLM_"))}
    env.update(OPENAI_API_KEY="sk-fake", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    code = "import sys; from optillm.server import main; sys.argv[0] = 'optillm'; sys.exit(main())"
    cmd = [sys.executable, "-c", code, "--base-url", upstream, "--host", "127.0.0.1", "--port", str(port),
           "--log", "warning"]  # fmt: skip
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + timeout_s
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    tail = log_path.read_text(errors="replace")[-1500:]
                    raise RuntimeError(f"the optillm proxy did not start (exit {proc.poll()}): {tail}") from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_optillm(items: list[EvalItem], mode: str, workers: int, tmp: Path) -> list[dict[str, Any]]:
    """optillm's approaches through its proxy, in front of a fake server with ``foreign=mode``."""
    import openai

    rows = []
    with FakeServer(**ANCHOR_SERVER, foreign=mode) as server:
        t_start = time.perf_counter()
        with optillm_proxy(server.base_url, tmp / f"optillm-{mode}.log") as proxy_url:
            startup = time.perf_counter() - t_start
            client = openai.OpenAI(base_url=proxy_url, api_key="sk-fake", max_retries=0, timeout=300)
            for approach in OPTILLM_APPROACHES:
                server.reset()

                def one(item: EvalItem, approach: str = approach) -> tuple[bool, dict[str, Any]]:
                    try:
                        reply = client.chat.completions.create(
                            model=f"{approach}-{MODEL}", messages=[{"role": "user", "content": _question(item)}]
                        )
                    except openai.OpenAIError as err:
                        return False, {"error": f"{type(err).__name__}: {err}"[:300]}
                    text = reply.choices[0].message.content if reply.choices else None
                    reported = reply.usage.completion_tokens if reply.usage else None
                    return bool(score(item, text).correct), {"reported_completion_tokens": reported}

                t0 = time.perf_counter()
                correct, details = _map(one, items, workers)
                wall = time.perf_counter() - t0
                errors = [d["error"] for d in details if "error" in d]
                reported = sum(d.get("reported_completion_tokens") or 0 for d in details)
                name = f"optillm {approach}"
                rows.append(_row(name, "optillm", mode, correct, server.stats(), wall, anchor_expected(name, mode),
                                 errors=len(errors), first_error=errors[0] if errors else None,
                                 reported_completion_tokens_per_q=reported / len(items),
                                 proxy_startup_s=startup))  # fmt: skip
                print(f"  {name:<28} {mode:<5} {rows[-1]['accuracy']:.3f}  ({wall:.1f} s)", flush=True)
    return rows


def _dspy() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of LiteLLM's price list
    os.environ.setdefault("DSPY_CACHEDIR", tempfile.mkdtemp(prefix="anchors-dspy-cache-"))
    import dspy

    return dspy


def dspy_default_adapter_probe(item: EvalItem) -> dict[str, Any]:
    """DSPy's default ChatAdapter on one question: the toy world's free text is not in its field format."""
    dspy = _dspy()
    with FakeServer(**ANCHOR_SERVER) as server:
        lm = dspy.LM(f"openai/{MODEL}", api_base=server.base_url, api_key="sk-fake", cache=False, num_retries=0)
        try:
            with dspy.context(lm=lm):
                dspy.ChainOfThought("question -> answer", n=3)(question=_question(item))
            error = None
        except Exception as err:  # whatever DSPy raises is the finding
            error = f"{type(err).__name__}: {' '.join(str(err).split())}"[:400]
        return {"error": error, "requests": server.stats()["completions"]}


def run_dspy(items: list[EvalItem], mode: str, workers: int) -> list[dict[str, Any]]:
    """``ChainOfThought(n=3)`` + ``MultiChainComparison(M=3)`` with ChatAdapter's prompts and a lenient parse."""
    dspy = _dspy()

    class FreeTextChatAdapter(dspy.ChatAdapter):  # type: ignore[misc, name-defined]
        """ChatAdapter's prompts unchanged; a reply that is not in its field format is read as free text."""

        def parse(self, signature: Any, completion: str) -> dict[str, Any]:
            try:
                return dict(super().parse(signature, completion))
            except Exception:  # AdapterParseError: the toy world writes free text
                return lenient_fields(completion, list(signature.output_fields))

    with FakeServer(**ANCHOR_SERVER, foreign=mode) as server:
        lm = dspy.LM(f"openai/{MODEL}", api_base=server.base_url, api_key="sk-fake", cache=False, num_retries=0)
        adapter = FreeTextChatAdapter()
        cot = dspy.ChainOfThought("question -> answer", n=3, temperature=0.7)
        mcc = dspy.MultiChainComparison("question -> answer", M=3)  # temperature 0.7 (its default)

        def one(item: EvalItem) -> tuple[bool, dict[str, Any]]:
            try:
                with dspy.context(lm=lm, adapter=adapter):
                    completions = cot(question=_question(item)).completions
                    final = mcc(completions, question=_question(item))
            except Exception as err:
                return False, {"error": f"{type(err).__name__}: {' '.join(str(err).split())}"[:300]}
            return bool(score(item, f"The answer is {final.answer}.").correct), {}

        t0 = time.perf_counter()
        correct, details = _map(one, items, workers)
        wall = time.perf_counter() - t0
        errors = [d["error"] for d in details if "error" in d]
        name = "dspy MultiChainComparison"
        row = _row(name, "dspy", mode, correct, server.stats(), wall, anchor_expected(name, mode),
                   errors=len(errors), first_error=errors[0] if errors else None)  # fmt: skip
    print(f"  {name:<28} {mode:<5} {row['accuracy']:.3f}  ({wall:.1f} s)", flush=True)
    return [row]


# -- record -------------------------------------------------------------------------------------------------
def versions() -> dict[str, str | None]:
    """Installed versions of the anchors and their stack (None: not installed)."""
    out: dict[str, str | None] = {}
    for name in VERSIONS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def markdown_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The side-by-side table: one line per row of :func:`_row`.

    Example:
        >>> row = {
        ...     "method": "sc",
        ...     "library": "gsa-prompt",
        ...     "foreign": "-",
        ...     "accuracy": 0.8,
        ...     "ci95": [0.7, 0.9],
        ...     "analytic": 0.8133,
        ...     "z": -0.3,
        ...     "requests_per_q": 1.0,
        ...     "generations_per_q": 4.0,
        ...     "prompt_tokens_per_q": 30.0,
        ...     "completion_tokens_per_q": 70.0,
        ...     "wall_s": 1.2,
        ... }
        >>> markdown_table([row])[-1]
        '| sc | gsa-prompt | - | 0.800 | 0.700–0.900 | 0.8133 | -0.30 | 1.00 | 4.00 | 30 | 70 | 1.2 |'
    """
    lines = ["| method | library | world reads foreign prompts | accuracy | 95 % Wilson | analytic | z | requests/q | "
             "generations/q | prompt tok/q | completion tok/q | wall s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        analytic = "–" if r["analytic"] is None else f"{r['analytic']:.4f}"
        z = "–" if r["z"] is None else f"{r['z']:+.2f}"
        lines.append(f"| {r['method']} | {r['library']} | {r['foreign']} | {r['accuracy']:.3f} | "
                     f"{r['ci95'][0]:.3f}–{r['ci95'][1]:.3f} | {analytic} | {z} | {r['requests_per_q']:.2f} | "
                     f"{r['generations_per_q']:.2f} | {r['prompt_tokens_per_q']:.0f} | "
                     f"{r['completion_tokens_per_q']:.0f} | {r['wall_s']:.1f} |")  # fmt: skip
    return lines


PAIRS: tuple[tuple[str, str, str], ...] = (
    ("optillm self_consistency", "5 samples, string clusters", "sc@5"),
    ("optillm majority_voting", "8 samples, regex vote", "sc@8"),
    ("optillm bon", "3 samples + 3 ratings", "bon 3+3"),
    ("optillm moa", "3 samples + critique + final", "gsa"),
    ("dspy MultiChainComparison", "3 attempts + comparison", "gsa"),
)
"""(anchor, what it spends, the package's row at the same or the nearest budget)."""


def pairs_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Each anchor next to the package's method at the same (or nearest) budget, from the rows of one run."""
    acc = {(r["method"], r["foreign"]): r for r in rows}

    def cell(key: tuple[str, str]) -> str:
        r = acc.get(key)
        return "–" if r is None else f"{r['accuracy']:.3f} ({r['ci95'][0]:.3f}–{r['ci95'][1]:.3f})"

    lines = ["| anchor | what it spends | world: fresh | world: read | gsa-prompt at that budget |",
             "|---|---|---|---|---|"]  # fmt: skip
    for anchor, spends, ours in PAIRS:
        if (anchor, "fresh") in acc or (anchor, "read") in acc:
            lines.append(f"| {anchor} | {spends} | {cell((anchor, 'fresh'))} | {cell((anchor, 'read'))} | "
                         f"{ours}: {cell((ours, '-'))} |")  # fmt: skip
    return lines


NOTES = """\
How the world saw each anchor. The fake server recognises the package's own prompts by their opening sentence;
every other prompt is *foreign*. With `foreign = fresh` (its default, what the package's tests use) a foreign
prompt is answered as a fresh sample of the question it contains, correct with probability p = 0.6, whatever
responses it also shows; a foreign prompt without the question (optillm bon's "Rate the above response:") gets
"I cannot answer that question.". With `foreign = read` the world reads the final answers stated anywhere in the
conversation: a request whose last user message asks to rate or score gets the judge's rating of the last
stated answer as a bare number (right 9, wrong 3, as the package's judge), any other gets a response around
the key that GSA's aggregation table (0.1, 0.5, 0.9, 1.0 for 0..3 right) gives for the stated answers. Neither
mode was tuned to any library: `read` applies to foreign prompts the same scripted aggregator and judge as to
the package's own, so an anchor's number there reflects how many calls it makes and which answers it passes
along, not the quality of its wording, which a toy world cannot measure.

- optillm `bon` (3 samples at T = 1 in one request with n = 3, then one 0-10 rating call per sample, argmax):
  fresh, its ratings are unparsable, all count 0 and it returns its first sample (p); read, the first right
  sample wins whenever there is one (pass@3). The package's BoN at the same 3 + 3 budget is the `bon 3+3` row.
- optillm `moa` (3 samples in one request, a critique call, a final call; both show the candidates as
  "Candidate i:" blocks): fresh, the final call is a fresh sample (p); read, the critique states an answer
  too, so the final call aggregates 4 stated answers.
- optillm `self_consistency` (5 sequential samples at T = 1, clustered by difflib similarity >= 0.8 of the whole
  text, returns the first text of the largest cluster): the toy responses differ only in an opener sentence
  and the number (similarities below), so clusters form mostly by wording, not by answer, and the text it
  returns is close to a single sample (about p) in both modes. The package's SC votes over extracted answers:
  `sc@5` at the same 5 samples.
- optillm plugin `majority_voting` (k = 8 samples at T = 0.6 in one request, answers extracted by regex such as
  "the answer is", normalised, most common): SC@8 in both modes; the package's `sc@8` is the same rule.
- DSPy `MultiChainComparison` (M = 3) after `ChainOfThought("question -> answer", n = 3)`: DSPy's ChatAdapter
  writes the prompts (field markers `[[ ## question ## ]]`, "Student Attempt #i: «I'm trying to ... my
  prediction is ...»"); the toy world answers in free text, which DSPy's own parser rejects (see below), so the
  adapter here keeps ChatAdapter's prompts and only reads a free-text reply as fields (reasoning = the text,
  answer = the extracted answer). Fresh, the comparison call is a fresh sample (p); read, it aggregates the
  3 attempts' answers like GSA. Scored on its `answer` field."""


def write(args: argparse.Namespace, started: float, body: dict[str, Any]) -> None:
    """``results/anchors.json`` and ``.md`` (``anchors-quick.*`` with ``--quick``)."""
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    record = {
        "benchmark": "anchors", "package": "gsa-prompt", "version": __version__, "git_commit": git.stdout.strip() or None,
        "command": " ".join(["python benchmarks/anchors.py", *args.argv]), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()},
        "versions": versions(), "quick": args.quick, "wall_s": time.time() - started,
        "config": {"items": args.items, "p": P, "m": M, "question_seed": 7, "concurrency": args.concurrency,
                   "anchor_server": ANCHOR_SERVER, "answer_format": ANSWER_IS}, **body,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "anchors-quick" if args.quick else "anchors"
    (args.out / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    v, mach = record["versions"], record["machine"]
    md = [f"# anchors: optillm and DSPy next to gsa-prompt on the same toy questions ({args.items} items)", "",
          "**A plumbing check on a scripted toy world, not evidence for GSA or against any library.** Arithmetic "
          f"questions, per-sample accuracy p = {P} with {M} uniform distractors, the fidelity benchmark's questions "
          "and server policies; every method gets the same user message and the same scorer; requests, "
          "generations (choices) and tokens (ceil(chars / 4)) as the fake server counted them. analytic = the "
          "exact accuracy under the world's policy, z = (measured − analytic) / σ.", ""]  # fmt: skip
    md += markdown_table(body["rows"])
    pairs = pairs_table(body["rows"])
    if len(pairs) > 2:
        md += ["", "Each anchor next to the package at the same budget (95 % Wilson intervals; the two use "
               "different samples, so the comparison is unpaired):", "", *pairs]  # fmt: skip
    md += ["", NOTES, ""]
    sim = body["toy_similarity"]
    md += [f"difflib similarity of the world's {sim['responses']} distinct responses to one question: "
           f"{sim['same_answer'][0]}–{sim['same_answer'][1]} for the same answer, {sim['different_answer'][0]}–"
           f"{sim['different_answer'][1]} for different answers ({100 * sim['different_answer_at_or_above_threshold']:.0f} % "
           f"of those at or above optillm's {sim['threshold']} threshold).", ""]  # fmt: skip
    reported = [r for r in body["rows"] if r.get("reported_completion_tokens_per_q") is not None]
    if reported:
        md += ["Tokens optillm itself reports (its `usage` holds completion tokens only, summed over its calls) "
               "against the server's count, completion tokens per question: "
               + "; ".join(f"{r['method'][8:]} ({r['foreign']}) {r['reported_completion_tokens_per_q']:.0f} vs "
                           f"{r['completion_tokens_per_q']:.0f}" for r in reported) + ".", ""]  # fmt: skip
    probe = body.get("dspy_default_adapter")
    if probe:
        md += [f"DSPy with its default adapter (ChatAdapter, JSONAdapter fallback) on one question: "
               f"{probe['error'] or 'no error'} ({probe['requests']} requests, its JSONAdapter retry included).", ""]  # fmt: skip
    for name, status in body["anchors"].items():
        md += [f"- {name}: {status}"]
    md += ["", f"Command: `{record['command']}` (in a venv with the anchors and gsa-prompt editable)  ",
           f"Date: {record['date']}  ",
           f"Machine: {mach['platform']}, {mach['cpus']} CPUs, Python {mach['python']}  ",
           "Versions: " + ", ".join(f"{k} {v[k] or 'not installed'}" for k in VERSIONS) + "  ",
           f"gsa-prompt {__version__}, commit {record['git_commit']}, {record['wall_s']:.0f} s", ""]  # fmt: skip
    (args.out / f"{stem}.md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="40 items (a smoke run)")
    parser.add_argument("--items", type=int, default=None, help="questions per method (default 300; --quick 40)")
    parser.add_argument("--concurrency", type=int, default=8, help="questions in flight per anchor (default 8)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for anchors.json and anchors.md")
    parser.add_argument("--skip-optillm", action="store_true", help="do not run optillm")
    parser.add_argument("--skip-dspy", action="store_true", help="do not run DSPy")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.items is None:
        args.items = 40 if args.quick else 300
    if args.items < 1 or args.concurrency < 1:
        parser.error(f"--items and --concurrency must be >= 1, got {args.items} and {args.concurrency}")
    started = time.time()
    items = _items(args.items)
    print(f"gsa-prompt methods ({args.items} items)", flush=True)
    rows = run_package(items, 32)
    anchors: dict[str, str] = {}
    body: dict[str, Any] = {"rows": rows, "anchors": anchors, "toy_similarity": similarity_of_toy_responses()}
    with tempfile.TemporaryDirectory(prefix="anchors-") as tmp:
        for mode in MODES:
            if args.skip_optillm:
                anchors["optillm"] = "skipped (--skip-optillm)"
                break
            print(f"optillm proxy, foreign={mode}", flush=True)
            try:
                rows += run_optillm(items, mode, args.concurrency, Path(tmp))
                anchors["optillm"] = "run through its own proxy (optillm.server.main, upstream = the fake server)"
            except Exception as err:  # not installed, or the proxy did not start: record why
                anchors["optillm"] = f"not run: {type(err).__name__}: {' '.join(str(err).split())[:600]}"
                print(anchors["optillm"], flush=True)
                break
    if args.skip_dspy:
        anchors["dspy"] = "skipped (--skip-dspy)"
    else:
        try:
            body["dspy_default_adapter"] = dspy_default_adapter_probe(items[0])
            for mode in MODES:
                print(f"dspy, foreign={mode}", flush=True)
                rows += run_dspy(items, mode, args.concurrency)
            anchors["dspy"] = (
                "run in-process: dspy.LM(api_base = the fake server, cache off) with ChatAdapter's prompts"
            )
        except Exception as err:
            anchors["dspy"] = f"not run: {type(err).__name__}: {' '.join(str(err).split())[:600]}"
            print(anchors["dspy"], flush=True)
    write(args, started, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
