"""The work behind each ``smurf-thp`` command (argument parsing lives in :mod:`smurf_thp.cli`).

Each function takes the parsed namespace, prints a table (or one JSON object with ``--json``) and returns the
exit status; bad input raises ``ValueError`` naming the flag (the CLI prints one line, exit 2).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

ANCHOR_MODELS = ("easytpp-thp", "easytpp-sahp", "easytpp-nhp", "easytpp-intensityfree")
"""the EasyTPP anchors (:data:`smurf_thp.easytpp.ANCHORS`; extra ``[easytpp]``), named here so that ``--help``
imports no torch."""

MODELS = ("smurf", "smurf-semi", "flexible-mle", "thp-mle", *ANCHOR_MODELS)
"""``--model`` choices: SMURF-THP (exact DSM gradient), SMURF-THP with the official semi-gradient, the two
MLE baselines (:mod:`smurf_thp.baselines`) and the EasyTPP anchors (:mod:`smurf_thp.easytpp`)."""


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=float) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _sizes(text: str) -> tuple[int, int, int]:
    try:
        parts = [int(v) for v in str(text).split(",")]
    except ValueError:
        raise ValueError(f"--n-seqs must be three integers TRAIN,DEV,TEST, got {text!r}") from None
    if len(parts) != 3 or min(parts) < 1:
        raise ValueError(f"--n-seqs must be three integers >= 1 (TRAIN,DEV,TEST), got {text!r}")
    return parts[0], parts[1], parts[2]


# -- simulate --------------------------------------------------------------------------------------
def simulate(args: argparse.Namespace) -> int:
    """Simulate train/dev/test splits of a preset or a process given as JSON; write them and ground_truth.json."""
    from smurf_thp.formats import save_splits
    from smurf_thp.simulate import PRESET_T_END, PRESETS, process_from_dict

    if args.params is not None:
        try:
            process = process_from_dict(json.loads(args.params))
        except json.JSONDecodeError as exc:
            raise ValueError(f"--params is not valid JSON: {exc.msg}") from None
        t_end = args.t_end if args.t_end is not None else 40.0
    else:
        if args.process not in PRESETS:
            raise ValueError(f"--process must be one of {', '.join(PRESETS)}, got {args.process!r}")
        process = PRESETS[args.process]
        t_end = args.t_end if args.t_end is not None else PRESET_T_END[args.process]
    if not t_end > 0:
        raise ValueError(f"--t-end must be > 0, got {t_end}")
    n_train, n_dev, n_test = _sizes(args.n_seqs)
    splits = {name: process.simulate(n, t_end=t_end, seed=args.seed + k)
              for k, (name, n) in enumerate((("train", n_train), ("dev", n_dev), ("test", n_test)))}  # fmt: skip
    out = Path(args.out)
    save_splits(splits, out, format=args.format)
    _write_json(out / "ground_truth.json", process.to_dict())
    summary = {name: {"sequences": len(ds), "events": ds.num_events} for name, ds in splits.items()}
    if args.json:
        print(json.dumps({"out": str(out), "process": process.to_dict(), "splits": summary}))
    else:
        for name, row in summary.items():
            print(f"{name:>5}: {row['sequences']} sequences, {row['events']} events")
        print(f"wrote {out} ({args.format}) and {out / 'ground_truth.json'}")
    return 0


# -- train -----------------------------------------------------------------------------------------
def _load_data(path: str | Path, fmt: str, trust_gaps: bool = False) -> dict[str, Any]:
    from smurf_thp.formats import load_splits

    p = Path(path)
    if not p.exists():
        raise ValueError(f"--data: no such file or directory {p}")
    splits = load_splits(p, format=fmt, trust_gaps=trust_gaps)
    if "train" not in splits:
        raise ValueError(f"--data: {p} has no train split (found {', '.join(splits)})")
    return splits


def _overrides(pairs: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set must be KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _check_settings(overrides: dict[str, Any], config: Any, fixed: set[str], what: str) -> None:
    """``--set`` keys must be fields of the dataclass ``config`` other than the ``fixed`` ones."""
    fields = {f.name for f in dataclasses.fields(config)} - fixed
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"--set: unknown {what} setting(s) {unknown}; known: {', '.join(sorted(fields))}")


def build_model(kind: str, num_types: int, preset: str, overrides: dict[str, Any]) -> Any:
    """A model of ``kind`` (:data:`MODELS`) with the ``preset``'s sizes and ``--set`` overrides."""
    from smurf_thp.smurf import PRESETS, SMURFTHP, SMURFConfig

    if kind not in MODELS:
        raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {kind!r}")
    if preset not in PRESETS:
        raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if kind in ANCHOR_MODELS:
        return _build_anchor(kind, num_types, preset, overrides)
    _check_settings(overrides, SMURFConfig, {"num_types"}, "model")
    if "normalize" in overrides and kind not in ("smurf", "smurf-semi"):
        raise ValueError(f"--set normalize: only SMURF-THP takes a gap space; {kind} works in mean-scaled gaps")
    settings: dict[str, Any] = {**PRESETS[preset], **overrides}
    if kind == "smurf-semi":
        settings["grad_mode"] = "semi"
    config = SMURFConfig(num_types=num_types, **settings)
    if kind in ("smurf", "smurf-semi"):
        return SMURFTHP(config)
    from smurf_thp import baselines

    return (baselines.FlexibleIntensityMLE if kind == "flexible-mle" else baselines.THPIntensity)(config)


def _build_anchor(kind: str, num_types: int, preset: str, overrides: dict[str, Any]) -> Any:
    """An EasyTPP anchor with the ``preset``'s width, depth, heads and dropout, and ``--set`` overrides."""
    from smurf_thp import easytpp

    _check_settings(overrides, easytpp.EasyTPPConfig, {"num_types", "model_id"}, "EasyTPP anchor")
    settings = {**easytpp.preset_settings(preset), **overrides}
    config = easytpp.EasyTPPConfig(num_types=num_types, model_id=easytpp.ANCHORS[kind], **settings)
    return easytpp.EasyTPPAnchor(config)


def train(args: argparse.Namespace) -> int:
    """Train a model on ``--data``'s train split with early stopping on dev; write model.pt, config.json, log."""
    import torch

    from smurf_thp.train import TrainConfig, Trainer

    splits = _load_data(args.data, args.format, args.trust_gaps)
    out = Path(args.out)
    torch.manual_seed(args.seed)
    model = build_model(args.model, splits["train"].num_types, args.preset, _overrides(args.set))
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                         seed=args.seed)  # fmt: skip
    trainer = Trainer(model, config, device=args.device)
    history = trainer.fit(splits["train"], splits.get("dev"), checkpoint=out / "model.pt", resume=args.resume,
                          progress=not args.json)  # fmt: skip
    _write_json(out / "config.json", {"model": args.model, "preset": args.preset, "model_config":
                                      dataclasses.asdict(model.config), "train_config": dataclasses.asdict(config),
                                      "data": str(args.data)})  # fmt: skip
    with (out / "train_log.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history.records[0]) if history.records else ["epoch"])
        writer.writeheader()
        writer.writerows(history.records)
    summary = {"out": str(out), "epochs": len(history.records), "best_epoch": history.best_epoch,
               "best_dev_loss": history.best_dev, "stopped_early": history.stopped_early}  # fmt: skip
    print(json.dumps(summary) if args.json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return 0


def _check_types(model: Any, ds: Any, flag: str) -> None:
    if ds.num_types != model.config.num_types:
        raise ValueError(f"{flag}: the data has {ds.num_types} event types, the checkpoint's model "
                         f"{model.config.num_types}")  # fmt: skip


# -- evaluate / sample / predict ------------------------------------------------------------------
def _sampler(args: argparse.Namespace, model: Any) -> Any:
    from smurf_thp.smurf import SamplerConfig

    boundary = args.boundary
    if boundary == "auto":  # a Langevin model in a bounded space reflects at 0; the exact samplers ignore it
        boundary = "reflect" if getattr(model, "space", "log") != "log" else "none"
    return SamplerConfig(n_samples=args.n_samples, step=args.step_size, n_steps=args.steps, boundary=boundary)


def evaluate(args: argparse.Namespace) -> int:
    """Metrics of a checkpoint on a split (original units), against the true process when it is known."""
    from smurf_thp.simulate import process_from_dict
    from smurf_thp.train import choose_steps, evaluate, load_checkpoint

    model, norm, _ = load_checkpoint(args.ckpt, device=args.device)
    splits = _load_data(args.data, args.format, args.trust_gaps)
    if args.split not in splits:
        raise ValueError(f"--split: {args.data} has no {args.split!r} split (found {', '.join(splits)})")
    _check_types(model, splits[args.split], "--data")
    truth = Path(args.ground_truth) if args.ground_truth else Path(args.data) / "ground_truth.json"
    process = process_from_dict(json.loads(truth.read_text())) if truth.is_file() else None
    if process is not None and process.num_types != model.config.num_types:
        raise ValueError(f"--ground-truth: {truth} has {process.num_types} types, the model {model.config.num_types}")
    sampler = _sampler(args, model)
    chosen = None
    if args.choose_steps:
        from smurf_thp.smurf import SMURFTHP

        if not isinstance(model, SMURFTHP):
            raise ValueError(f"--choose-steps: the checkpoint holds a {type(model).__name__}, which draws arrival "
                             "times exactly: it has no Langevin steps to choose")  # fmt: skip
        if "dev" not in splits:
            raise ValueError(f"--choose-steps: {args.data} has no 'dev' split to choose the steps on "
                             f"(found {', '.join(splits)})")  # fmt: skip
        chosen, _ = choose_steps(model, norm, splits["dev"], sampler, record_every=max(1, args.steps // 5),
                                 device=args.device)  # fmt: skip
        sampler = dataclasses.replace(sampler, n_steps=chosen)
    metrics = evaluate(model, norm, splits[args.split], sampler, process=process, seed=args.seed, device=args.device)
    metrics["langevin_steps"] = sampler.n_steps
    metrics["steps_chosen_on_dev"] = chosen is not None
    if args.out:
        _write_json(Path(args.out), metrics)
    if args.json:
        print(json.dumps(metrics, default=float))
        return 0
    keys = ("n_events", "cs", "cs_all", "oracle_cs", "il", "crps", "rmse_median", "rmse_mean", "accuracy",
            "frac_negative", "pit_ks", "langevin_steps")  # fmt: skip
    for key in keys:
        if key in metrics:
            value = metrics[key]
            print(f"{key:>16}  {value:.4f}" if isinstance(value, float) else f"{key:>16}  {value}")
    return 0


def sample(args: argparse.Namespace) -> int:
    """Samples of every predicted event of a split, saved as ``.npz`` (tau, types, y, y_types, where)."""
    import numpy as np

    from smurf_thp.train import load_checkpoint, predict

    model, norm, _ = load_checkpoint(args.ckpt, device=args.device)
    splits = _load_data(args.data, args.format, args.trust_gaps)
    if args.split not in splits:
        raise ValueError(f"--split: {args.data} has no {args.split!r} split")
    _check_types(model, splits[args.split], "--data")
    pred = predict(model, norm, splits[args.split], _sampler(args, model), seed=args.seed, device=args.device)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, tau=pred.tau.cpu().numpy(), types=pred.types.cpu().numpy(), y=pred.y.cpu().numpy(),
                        y_types=pred.y_types.cpu().numpy(), where=np.asarray(pred.where))  # fmt: skip
    print(json.dumps({"out": str(out), "events": int(pred.tau.shape[0]), "samples": int(pred.tau.shape[1])}))
    return 0


def predict(args: argparse.Namespace) -> int:
    """The next event after one history: median gap, an interval and type probabilities (JSON)."""
    import torch

    from smurf_thp.data import EventDataset, EventSequence
    from smurf_thp.metrics import sample_quantiles
    from smurf_thp.train import load_checkpoint
    from smurf_thp.train import predict as predict_all

    model, norm, _ = load_checkpoint(args.ckpt, device=args.device)
    try:
        history = json.loads(Path(args.history).read_text(encoding="utf-8"))
        times, types = history["times"], history["types"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"--history must be a JSON file with 'times' and 'types' lists: {exc}") from None
    if not 0 < args.confidence < 1:
        raise ValueError(f"--confidence must be in (0, 1), got {args.confidence}")
    # one dummy event after the history makes the last position a prediction target
    import numpy as np

    if not isinstance(times, list) or not isinstance(types, list) or not times or len(times) != len(types):
        raise ValueError("--history: 'times' and 'types' must be non-empty lists of equal length")
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in times) or not all(
        isinstance(k, int) and not isinstance(k, bool) and 0 <= k < model.config.num_types for k in types
    ):
        raise ValueError(f"--history: times must be numbers and types integers in [0, {model.config.num_types})")
    seq = EventSequence(np.asarray([*times, times[-1] + 1.0], dtype=np.float64), np.asarray([*types, 0]))
    ds = EventDataset([seq], model.config.num_types)
    pred = predict_all(model, norm, ds, _sampler(args, model), seed=args.seed, device=args.device)
    tau = pred.tau[-1:].double()
    c = args.confidence
    levels = (0.5, (1 - c) / 2, (1 + c) / 2) if args.kind == "central" else (0.5, 0.0, c)
    q = sample_quantiles(tau, [lv for lv in levels if lv > 0])[0].tolist()
    lo = q[1] if args.kind == "central" else 0.0
    hi = q[-1]
    probs = torch.bincount(pred.types[-1], minlength=model.config.num_types).double() / pred.types.shape[1]
    result = {"median_gap": q[0], "interval": [lo, hi], "confidence": c, "kind": args.kind,
              "next_time_median": float(times[-1]) + q[0], "type_probs": probs.tolist()}  # fmt: skip
    print(json.dumps(result))
    return 0


# -- report --------------------------------------------------------------------------------------
def report(args: argparse.Namespace) -> int:
    """Reliability diagram, PIT histogram and a metrics table of sample files (needs matplotlib)."""
    from smurf_thp.report import write_report

    labels = [s.strip() for s in args.labels.split(",")] if args.labels else None
    results = write_report(args.samples, args.out, labels)
    if args.json:
        print(json.dumps(results, default=float))
    else:
        print(f"wrote {Path(args.out) / 'report.md'}, reliability.png, pit_hist.png ({len(results)} run(s))")
    return 0


# -- demo ------------------------------------------------------------------------------------------
def demo(args: argparse.Namespace) -> int:
    """Simulate a small 3-type Hawkes data set, train SMURF-THP (cpu-small, a few epochs), compare with the truth."""
    import tempfile

    import numpy as np
    import torch

    from smurf_thp.metrics import quantile_levels, summarize
    from smurf_thp.simulate import PRESETS
    from smurf_thp.smurf import SMURFTHP, SamplerConfig, SMURFConfig
    from smurf_thp.train import TrainConfig, Trainer, _oracle_cdf, predict

    process = PRESETS["hawkes3"]
    train_ds = process.simulate(150, t_end=20.0, seed=0)
    dev_ds = process.simulate(30, t_end=20.0, seed=1)
    test_ds = process.simulate(30, t_end=20.0, seed=2)
    torch.manual_seed(0)
    model = SMURFTHP(SMURFConfig(num_types=3, d_model=16, d_inner=32, n_layers=1, n_head=2, d_k=8, d_v=8,
                                 num_noise=10, loss_lambda=5.0))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, TrainConfig(epochs=args.epochs, batch_size=16, lr=3e-3))
        trainer.fit(train_ds, dev_ds, checkpoint=Path(tmp) / "model.pt", progress=not args.json)
    assert trainer.normalizer is not None
    sampler = SamplerConfig(n_samples=50, step=0.02, n_steps=200)
    pred = predict(trainer.model, trainer.normalizer, test_ds, sampler, seed=0)
    q = quantile_levels(0.05)
    true_cdf = _oracle_cdf(process, test_ds, pred.where)
    ours = summarize(pred.tau, pred.y, types_sampled=pred.types, types_true=pred.y_types, quantiles=q,
                     true_cdf=true_cdf)  # fmt: skip
    rng = np.random.default_rng(0)
    draws = [process.next_sample(test_ds[i], j, 50, rng) for i, j in pred.where]
    oracle = summarize(np.stack([d[0] for d in draws]), pred.y.numpy(), types_sampled=np.stack([d[1] for d in draws]),
                       types_true=pred.y_types.numpy(), quantiles=q, true_cdf=true_cdf)  # fmt: skip
    rows = {"SMURF-THP (demo size)": ours, "true process (oracle)": oracle}
    if args.json:
        print(json.dumps({"smurf_thp": ours, "oracle": oracle}, default=float))
        return 0
    print("smurf-thp demo: 3-type exponential Hawkes (spec hawkes3), 150 training sequences, "
          f"{args.epochs} epochs of a small model; metrics on {ours['n_events']} test events\n")  # fmt: skip
    print(f"{'model':<24}{'CS (q>=.5)':>12}{'oracle CS':>12}{'CRPS':>10}{'accuracy':>10}{'neg. samples':>14}")
    for name, m in rows.items():
        print(f"{name:<24}{m['cs']:>12.4f}{m['oracle_cs']:>12.4f}{m['crps']:>10.4f}{m['accuracy']:>10.4f}"
              f"{m['frac_negative']:>14.3f}")  # fmt: skip
    print("\n'oracle CS' compares the model's quantiles with the true process's next-event CDF (0 is perfect).")
    if not math.isfinite(ours["cs"]):
        return 1
    return 0


def bench_suite(quick: bool, anchors: bool) -> str:
    """The suite of ``bench [--quick] [--anchors]``: ``cpu-small``, ``quick``, ``anchors`` or ``anchors-quick``."""
    if anchors:
        return "anchors-quick" if quick else "anchors"
    return "quick" if quick else "cpu-small"


def bench(args: argparse.Namespace) -> int:
    """``smurf-thp bench``: :func:`smurf_thp.bench.run_bench` on the ``cpu-small`` suite (``--quick``: one cell;
    ``--anchors``: the EasyTPP anchors' suite)."""
    from smurf_thp.bench import markdown, run_bench

    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    flags = (" --quick" if args.quick else "") + (" --anchors" if args.anchors else "")
    command = f"smurf-thp bench{flags} --jobs {args.jobs} --out {args.out}"
    report = run_bench(bench_suite(args.quick, args.anchors), Path(args.out), jobs=args.jobs, fresh=args.fresh,
                       command=command)  # fmt: skip
    print(markdown(report))
    return 0
