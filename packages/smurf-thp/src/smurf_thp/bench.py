"""The benchmark of the issue: SMURF-THP (exact and semi-gradient), the SMURF head by MLE, the THP head by MLE and
the true process, side by side on the spec's synthetic processes (``make bench PKG=smurf-thp``); with
``--anchors`` (suite ``anchors``, extra ``[easytpp]``), EasyTPP's THP, SAHP, NHP and IntensityFree beside
SMURF-THP, the two MLE heads and the true process.

Each (process, model, seed) run simulates train/dev/test splits from the process (seeded), trains the model with
early stopping on dev, and scores the test split in original units against the true process's next-event CDF
(oracle calibration). SMURF-THP's Langevin step count is chosen on the **dev** split among multiples of
``record_every`` (never on test). The true process is scored with its own exact samples. Every finished run is
saved to ``<out>/<suite>-runs/<id>.json`` at once, so an interrupted bench resumes; runs execute in
single-threaded worker processes.

The EasyTPP anchors (:mod:`smurf_thp.easytpp`) get ``ANCHOR_EPOCH_FACTOR`` times the setting's epochs at learning
rate ``ANCHOR_LR`` (with the same early stopping on dev): at the cpu-small recipe (12 epochs, 1e-3) EasyTPP's THP
and SAHP are far from converged (hawkes3 dev NLL 2.87 and 2.22 per event against 1.93 for the SMURF head by MLE).
THP, SAHP and NHP are scored twice from the same trained model: sampled by EasyTPP's thinning sampler (the row
named after the model) and by the exact inverse CDF of their intensity (the ``(inverse CDF)`` row).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from smurf_thp._version import __version__
from smurf_thp.commands import ANCHOR_MODELS

MODELS = ("smurf", "smurf-semi", "flexible-mle", "thp-mle", "oracle")
"""the models of the ``cpu-small`` and ``quick`` suites."""

ANCHOR_SUITE_MODELS = ("smurf", "flexible-mle", "thp-mle", "oracle", *ANCHOR_MODELS)
"""the models of the ``anchors`` suite (SMURF-THP, the MLE heads, the truth and the EasyTPP anchors)."""

ANCHOR_EPOCH_FACTOR, ANCHOR_LR = 5, 5e-3
"""the anchors' training budget: this many times the setting's epochs, at this learning rate."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """One benchmark cell: the process, the data sizes and the training budget."""

    process: str
    n_seqs: tuple[int, int, int]
    t_end: float
    epochs: int
    seeds: tuple[int, ...]


SUITES: dict[str, list[Setting]] = {
    "cpu-small": [
        Setting("hawkes3", (400, 100, 100), 40.0, 12, (0, 1, 2)),
        Setting("hawkes1", (200, 50, 60), 50.0, 8, (0, 1, 2)),
        Setting("hawkes2", (200, 50, 60), 50.0, 8, (0, 1, 2)),
        Setting("self-correcting", (200, 50, 60), 50.0, 8, (0, 1, 2)),
        Setting("renewal-lognormal", (200, 50, 60), 50.0, 8, (0, 1, 2)),
        Setting("time-marks", (200, 50, 60), 50.0, 8, (0, 1, 2)),
    ],
    "quick": [Setting("hawkes3", (40, 10, 10), 10.0, 1, (0,))],
}
ANCHOR_PROCESSES = ("hawkes3", "hawkes2", "self-correcting", "time-marks")
"""the processes of the ``anchors`` suite: the cpu-small cells of these four keep one run under ~10 min on 2 cores."""
SUITES["anchors"] = [
    s if s.process == "hawkes3" else dataclasses.replace(s, seeds=(0,))
    for s in SUITES["cpu-small"]
    if s.process in ANCHOR_PROCESSES
]
SUITES["anchors-quick"] = SUITES["quick"]
"""``cpu-small``: every process with 3 seeds (hawkes3 carries the targets); ``quick``: the smoke test;
``anchors``: the cpu-small cells of :data:`ANCHOR_PROCESSES` with :data:`ANCHOR_SUITE_MODELS` (one seed except
hawkes3's three, to keep a run under ~10 minutes); ``anchors-quick``:
the quick cell with the MLE head, the truth and the anchors."""

SUITE_MODELS: dict[str, tuple[str, ...]] = {"cpu-small": MODELS, "quick": MODELS, "anchors": ANCHOR_SUITE_MODELS,
                                            "anchors-quick": ("flexible-mle", "oracle", *ANCHOR_MODELS)}  # fmt: skip

N_SAMPLES, STEP, MAX_STEPS, RECORD_EVERY = 50, 0.02, 300, 100


def run_one(setting: Setting, model_name: str, seed: int) -> dict[str, Any]:
    """Simulate, train and evaluate one cell; returns the metrics and timings."""
    import numpy as np
    import torch

    from smurf_thp.commands import build_model
    from smurf_thp.metrics import quantile_levels, summarize
    from smurf_thp.simulate import PRESETS
    from smurf_thp.smurf import SamplerConfig
    from smurf_thp.train import TrainConfig, Trainer, _oracle_cdf, choose_steps, predict

    torch.set_num_threads(1)
    process = PRESETS[setting.process]
    n_train, n_dev, n_test = setting.n_seqs
    train = process.simulate(n_train, t_end=setting.t_end, seed=1000 * seed + 1)
    dev = process.simulate(n_dev, t_end=setting.t_end, seed=1000 * seed + 2)
    test = process.simulate(n_test, t_end=setting.t_end, seed=1000 * seed + 3)
    q = quantile_levels(0.05)
    out: dict[str, Any] = {"process": setting.process, "model": model_name, "seed": seed}
    if model_name == "oracle":
        from smurf_thp.data import batches

        where = [(i, j) for i, s in enumerate(test) for j in range(len(s) - 1)]
        rng = np.random.default_rng(seed)
        t0 = time.perf_counter()
        draws = [process.next_sample(test[i], j, N_SAMPLES, rng) for i, j in where]
        y = np.concatenate([b.gaps[:, 1:][b.mask[:, 1:]].double().numpy() for b in batches(test, 64)])
        yk = np.concatenate([b.types[:, 1:][b.mask[:, 1:]].numpy() for b in batches(test, 64)])
        out["metrics"] = summarize(np.stack([d[0] for d in draws]), y, types_sampled=np.stack([d[1] for d in draws]),
                                   types_true=yk, quantiles=q, true_cdf=_oracle_cdf(process, test, where))  # fmt: skip
        out.update(train_s=0.0, sample_s=time.perf_counter() - t0, steps=None)
        return out
    torch.manual_seed(seed)
    model = build_model(model_name, process.num_types, "cpu-small", {})
    t0 = time.perf_counter()
    anchor = model_name in ANCHOR_MODELS
    epochs, lr = (setting.epochs * ANCHOR_EPOCH_FACTOR, ANCHOR_LR) if anchor else (setting.epochs, 1e-3)
    trainer = Trainer(model, TrainConfig(epochs=epochs, batch_size=32, lr=lr, patience=5, seed=seed))
    history = trainer.fit(train, dev, progress=False)
    out["train_s"] = time.perf_counter() - t0
    assert trainer.normalizer is not None
    sampler = SamplerConfig(n_samples=N_SAMPLES, step=STEP, n_steps=MAX_STEPS)
    steps = None
    if hasattr(trainer.model, "time_head") and model_name.startswith("smurf"):
        # chosen on dev by the empirical calibration score: the oracle's would tune on the truth being measured
        steps, _ = choose_steps(trainer.model, trainer.normalizer, dev, sampler, record_every=RECORD_EVERY, seed=seed)
        sampler = dataclasses.replace(sampler, n_steps=steps)
    t0 = time.perf_counter()
    pred = predict(trainer.model, trainer.normalizer, test, sampler, seed=seed)
    out["sample_s"] = time.perf_counter() - t0
    out["metrics"] = summarize(pred.tau, pred.y, types_sampled=pred.types, types_true=pred.y_types, quantiles=q,
                               true_cdf=_oracle_cdf(process, test, pred.where))  # fmt: skip
    out.update(steps=steps, epochs=len(history.records), best_epoch=history.best_epoch, best_dev=history.best_dev)
    if anchor and trainer.model.config.model_id != "IntensityFree":
        stats = trainer.model.thinning_stats
        out["thinning_at_dtime_max"] = stats["at_dtime_max"] / max(stats["samples"], 1)
        sorted_tau = pred.tau.sort(dim=1).values  # EasyTPP's draws of one event share their proposals: count ties
        out["thinning_distinct"] = float(((sorted_tau.diff(dim=1) != 0).sum(1) + 1).double().mean()) / N_SAMPLES
        trainer.model.sampler_method = "inverse-cdf"
        t0 = time.perf_counter()
        pred = predict(trainer.model, trainer.normalizer, test, sampler, seed=seed)
        sample_s = time.perf_counter() - t0
        metrics = summarize(pred.tau, pred.y, types_sampled=pred.types, types_true=pred.y_types, quantiles=q,
                            true_cdf=_oracle_cdf(process, test, pred.where))  # fmt: skip
        out["variants"] = {"inverse CDF": {"metrics": metrics, "sample_s": sample_s}}
    return out


def _task(args: tuple[Setting, str, int, str]) -> dict[str, Any]:
    setting, model_name, seed, path = args
    record = run_one(setting, model_name, seed)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(json.dumps(record, default=float) + "\n", encoding="utf-8")
    os.replace(tmp, p)
    return record


KEYS = ("oracle_cs", "cs", "crps", "accuracy", "rmse_median", "frac_negative")


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    vals = [float(v) for v in values]
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def summarize_runs(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{process: {model: {metric: (mean, sd), ...}}}`` over seeds."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for r in runs:
        table.setdefault(r["process"], {}).setdefault(r["model"], {"runs": []})["runs"].append(r)
        for name, variant in r.get("variants", {}).items():  # another sampler of the same trained model
            row = {**r, "metrics": variant["metrics"], "sample_s": variant["sample_s"]}
            table[r["process"]].setdefault(f"{r['model']} ({name})", {"runs": []})["runs"].append(row)
    for models in table.values():
        for cell in models.values():
            rs = cell.pop("runs")
            for key in KEYS:
                vals = [r["metrics"][key] for r in rs if key in r["metrics"]]
                if vals:
                    cell[key] = _mean_sd(vals)
            cell["seeds"] = len(rs)
            cell["train_s"] = _mean_sd([r["train_s"] for r in rs])[0]
            cell["sample_s"] = _mean_sd([r["sample_s"] for r in rs])[0]
            cell["steps"] = [r.get("steps") for r in rs]
            if "best_dev" in rs[0]:
                cell["best_dev"] = _mean_sd([r["best_dev"] for r in rs])[0]
    return table


def targets(table: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The issue's targets on hawkes3 (means over seeds)."""
    h = table.get("hawkes3", {})
    s, o, thp = h.get("smurf"), h.get("oracle"), h.get("thp-mle")
    if s is None or o is None:
        return []
    rows = [
        {"target": "SMURF-THP oracle CS ≤ 0.035", "measured": s["oracle_cs"][0], "met": s["oracle_cs"][0] <= 0.035},
        {"target": "CRPS ≤ 1.03 × the true process's", "measured": s["crps"][0] / o["crps"][0],
         "met": s["crps"][0] <= 1.03 * o["crps"][0]},
        {"target": "accuracy ≥ 0.9 × the oracle's", "measured": s["accuracy"][0] / o["accuracy"][0],
         "met": s["accuracy"][0] >= 0.9 * o["accuracy"][0]},
        {"target": "no negative sampled times", "measured": s["frac_negative"][0], "met": s["frac_negative"][0] == 0},
    ]  # fmt: skip
    if thp is not None:
        ratio = thp["oracle_cs"][0] / max(s["oracle_cs"][0], 1e-12)
        rows.append({"target": "THP head oracle CS ≥ 2 × SMURF-THP's", "measured": ratio, "met": ratio >= 2})
    return rows


_ANCHOR_TEXT = (
    "EasyTPP anchors (easy-tpp {easy_tpp}, extra [easytpp]): THP, SAHP, NHP and IntensityFree with hidden size 32, "
    "2 layers, 2 heads, dropout 0.1, trained by their own log-likelihood in the mean-scaled space (u = τ / mean "
    "train gap) for {factor}× the epochs at Adam {lr:g}, batch 32, early stopping on dev; the row named after the "
    "model samples by EasyTPP's thinning sampler (num_exp 500, over_sample_rate 5), the '(inverse CDF)' row samples "
    "the same trained model by the exact inverse CDF of its intensity (1025-point grid); IntensityFree samples its "
    "log-normal mixture exactly. Types are drawn from p(k | τ) at each sampled τ. 'dev NLL' = best dev negative "
    "log-likelihood per event in the mean-scaled space (comparable between the MLE heads and the anchors)."
)


def markdown(report: dict[str, Any]) -> str:
    """The side-by-side tables (one per process) with the targets and the record."""
    lines = [f"# smurf-thp benchmark ({report['suite']}): calibration of next-arrival intervals", "",
             "Models: SMURF-THP (DSM, exact gradient), SMURF-THP with the official semi-gradient, the SMURF intensity "
             "head trained by maximum likelihood and sampled by inverse CDF, THP's own intensity head by maximum "
             "likelihood, and the true process sampled exactly. cpu-small model (d_model 32, 2 layers), Adam 1e-3, "
             "batch 32, early stopping on dev; Langevin step 0.02 with the step count chosen on dev by the empirical CS "
             f"among {RECORD_EVERY}..{MAX_STEPS}; {N_SAMPLES} samples per event; quantiles 0.05..0.95. "
             "oracle CS = RMS over q ≥ 0.5 of (mean_i F_i(Q_q,i) − q) with F_i the true next-event CDF; CS = the "
             "official empirical calibration score; CRPS fair, in original units. Mean ± sd over seeds.", ""]  # fmt: skip
    if report["suite"].startswith("anchors"):
        lines[2] = lines[2].replace(" SMURF-THP with the official semi-gradient,", "")
        lines += [_ANCHOR_TEXT.format(easy_tpp=report.get("easy_tpp", "?"), factor=ANCHOR_EPOCH_FACTOR, lr=ANCHOR_LR),
                  ""]  # fmt: skip
    if report["targets"]:
        lines += ["Targets (hawkes3):", "", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['measured']:.4g} | {'yes' if t['met'] else 'no'} |" for t in report["targets"]]
        lines.append("")
    anchors = report["suite"].startswith("anchors")
    for process, models in report["table"].items():
        lines += [f"## {process}", "", "| model | oracle CS | CS | CRPS | accuracy | RMSE (median) | neg. | steps | "
                  "train s | sample s | seeds |" + (" dev NLL |" if anchors else ""),
                  "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if anchors else "")]  # fmt: skip
        for model, cell in models.items():

            def f(key: str, cell: dict[str, Any] = cell) -> str:
                if key not in cell:
                    return "-"
                m, sd = cell[key]
                return f"{m:.4f}" + (f" ± {sd:.4f}" if cell["seeds"] > 1 else "")

            dev = f" {cell['best_dev']:.4f} |" if "best_dev" in cell and model != "smurf" else " - |"
            lines.append(f"| {model} | {f('oracle_cs')} | {f('cs')} | {f('crps')} | {f('accuracy')} | "
                         f"{f('rmse_median')} | {f('frac_negative')} | {cell['steps']} | {cell['train_s']:.0f} | "
                         f"{cell['sample_s']:.0f} | {cell['seeds']} |" + (dev if anchors else ""))  # fmt: skip
        lines.append("")
        thinned = [r for r in report["runs"] if r["process"] == process and "thinning_at_dtime_max" in r]
        if thinned:
            worst = max(r["thinning_at_dtime_max"] for r in thinned)
            distinct = {m: statistics.fmean(r["thinning_distinct"] for r in thinned if r["model"] == m)
                        for m in dict.fromkeys(r["model"] for r in thinned)}  # fmt: skip
            lines += ["EasyTPP's thinning: draws that rejected every proposal (returned dtime_max): at most "
                      f"{worst:.2%} per run; distinct values among the {N_SAMPLES} draws of an event (the draws share "
                      "one set of proposals): " + ", ".join(f"{m} {v:.0%}" for m, v in distinct.items()) + ".", ""]  # fmt: skip
    lines += [f"Command: `{report['command']}`  ", f"Date: {report['date']}  ",
              f"Machine: {report['machine']}, {report['jobs']} worker process(es) of 1 thread  ",
              f"smurf-thp {__version__}, commit {report['commit'] or '-'}, {report['wall_s']:.0f} s", ""]  # fmt: skip
    return "\n".join(lines)


def run_bench(suite: str, out: Path, *, jobs: int = 2, fresh: bool = False, command: str = "smurf-thp bench",
              progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Run every cell of ``suite``; write ``<out>/<suite>.json`` and ``.md``; returns the report."""
    import multiprocessing
    import platform
    import subprocess

    if suite not in SUITES:
        raise ValueError(f"suite must be one of {', '.join(SUITES)}, got {suite!r}")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    models = SUITE_MODELS[suite]
    easy_tpp = None
    if any(m in ANCHOR_MODELS for m in models):
        from smurf_thp.easytpp import require_easy_tpp

        easy_tpp = require_easy_tpp()  # before any worker starts: one clear error naming the extra
    started = time.time()
    runs_dir = out / f"{suite}-runs"
    tasks, done = [], []
    for setting in SUITES[suite]:
        for model_name in models:
            for seed in setting.seeds:
                parts: list[Any] = [dataclasses.asdict(setting), model_name, seed, __version__]
                if model_name in ANCHOR_MODELS:
                    parts += ["easy-tpp", easy_tpp, ANCHOR_EPOCH_FACTOR, ANCHOR_LR]
                key = json.dumps(parts, sort_keys=True)
                path = (
                    runs_dir
                    / f"{setting.process}-{model_name}-s{seed}-{hashlib.sha1(key.encode()).hexdigest()[:8]}.json"
                )
                if path.is_file() and not fresh:
                    done.append(json.loads(path.read_text(encoding="utf-8")))
                else:
                    tasks.append((setting, model_name, seed, str(path)))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks) + len(done), initial=len(done), desc=f"bench {suite}", disable=None,
                   file=sys.stderr)  # fmt: skip
    if jobs == 1:
        for t in tasks:
            done.append(_task(t))
            if bar is not None:
                bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for record in pool.map(_task, tasks):
                done.append(record)
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    order = {m: i for i, m in enumerate(models)}
    done.sort(key=lambda r: ([s.process for s in SUITES[suite]].index(r["process"]), order[r["model"]], r["seed"]))
    table = summarize_runs(done)
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
                         cwd=Path(__file__).parent)  # fmt: skip
    report = {"suite": suite, "table": table, "targets": [] if easy_tpp else targets(table), "runs": done,
              "command": command, "easy_tpp": easy_tpp,
              "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": git.stdout.strip() or None,
              "machine": f"{platform.platform()}, {os.cpu_count()} CPUs", "jobs": jobs,
              "wall_s": time.time() - started}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{suite}.json").write_text(json.dumps(report, indent=1, default=float) + "\n", encoding="utf-8")
    (out / f"{suite}.md").write_text(markdown(report), encoding="utf-8")
    if not all(math.isfinite(float(r["metrics"]["crps"])) for r in done):
        raise ValueError("a run produced a non-finite CRPS")
    return report
