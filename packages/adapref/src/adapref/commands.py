"""The work behind each ``adapref`` command (the argument parsing lives in :mod:`adapref.cli`)."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from adapref._version import __version__
from adapref.config import TrainConfig
from adapref.data import PreferenceData
from adapref.scaling import check_scaling_args
from adapref.synthetic import (
    Flip,
    Oracle,
    RewardKind,
    Stochastic,
    TrueReward,
    make_preference_data,
    pair_segments,
    sample_segments,
)
from adapref.trainer import CHECKPOINT, RewardTrainer


def json_text(obj: Any, indent: int | None = None) -> str:
    """Strict JSON of ``obj``: scalars (numpy, torch) as floats, NaN and ±inf as ``null`` (bare NaN is not JSON)."""
    plain = json.loads(json.dumps(obj, default=float), parse_constant=lambda _: None)
    return json.dumps(plain, indent=indent, allow_nan=False)


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented strict JSON (see :func:`json_text`), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json_text(obj, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def format_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (floats to 4 significant digits; None, a metric that does not apply, as ``-``)."""

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def clean_test_pairs(truth: TrueReward, n: int, T: int, D: int, generator: torch.Generator) -> PreferenceData:
    """Held-out pairs over the same true reward, labelled by the noiseless oracle."""
    segments = sample_segments(2 * n, T, D, generator)
    return pair_segments(segments, truth.returns(segments), n, Oracle(), generator)


def _teacher(kind: str, param: float | None) -> Oracle | Stochastic | Flip:
    if kind == "oracle":
        return Oracle()
    if kind == "flip":
        return Flip(0.1 if param is None else param)
    return Stochastic(1.0 if param is None else param)


def _warm_up() -> None:
    """Pay torch's one-time start-up costs before anything is timed (the first optimizer imports torch._dynamo:
    seconds, which the first loss in a table would otherwise be charged)."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([p])
    p.sum().backward()  # type: ignore[no-untyped-call]
    opt.step()


def demo(args: argparse.Namespace) -> int:
    """Bradley-Terry against the adaptive loss on 4000 synthetic pairs; prints a table."""
    seed = 0 if args.seed is None else args.seed
    gen = torch.Generator().manual_seed(seed)
    train, truth = make_preference_data(4000, T=10, D=8, reward="mlp", teacher=Stochastic(1.0), generator=gen)
    test = clean_test_pairs(truth, 2000, 10, 8, gen)
    configs = {
        "bt": TrainConfig(loss="bt", seed=seed, device=args.device or "cpu"),
        "ada (ρ0 .1, τmax 1)": TrainConfig(seed=seed, device=args.device or "cpu"),
        "ada (ρ0 .3, τmax 3)": TrainConfig(rho0=0.3, tau_max=3.0, seed=seed, device=args.device or "cpu"),
    }
    rows, result = [], {}
    quintiles = None
    _warm_up()
    for name, cfg in configs.items():
        t0 = time.perf_counter()
        trainer = RewardTrainer(cfg)
        trainer.fit(train, progress=False)
        seconds = time.perf_counter() - t0
        acc = trainer.accuracy(test)
        spearman = frac_max = tau_mean = math.nan
        if cfg.loss == "ada":
            rep = trainer.tau_report(train)
            spearman = rep.spearman if rep.spearman is not None else math.nan
            frac_max, tau_mean = rep.histogram["frac_at_tau_max"], float(rep.tau.mean())
            quintiles = quintiles or rep.quantile_table
        rows.append([name, acc, spearman, tau_mean, frac_max, seconds])
        result[name] = {"test_accuracy": acc, "spearman_tau_strength": spearman, "tau_mean": tau_mean,
                        "frac_taumax": frac_max, "seconds": seconds}  # fmt: skip
    table = (
        "adapref demo: 4000 pairs from a random tanh-MLP reward (T=10, D=8), Bradley-Terry teacher at\n"
        "temperature 1, 2×64 MLP reward model, 5 epochs; accuracy on 2000 clean held-out pairs.\n\n"
        + format_table(["loss", "test acc", "Spearman(τ, strength)", "mean τ", "share τ=τmax", "seconds"], rows)
    )
    if quintiles:
        table += "\n\nMean τ per quintile of true preference strength (ada, ρ0 .1, τmax 1; paper Fig. 5b):\n"
        table += format_table(["strength from", "to", "pairs", "mean τ"],
                              [[q["lo"], q["hi"], q["n"], q["mean_tau"]] for q in quintiles])  # fmt: skip
    print(json_text(result, indent=2) if args.json else table)
    return 0


# make-data's flags that only one --source reads: (flag, destination)
_SOURCE_FLAGS = {
    "synthetic": (("--T", "T"), ("--D", "D"), ("--reward", "reward")),
    "gym": (("--env", "env"), ("--seg-len", "seg_len"), ("--policy", "policy")),
}
# train-reward's flags that only some losses read: (flag, destination, the losses, the name of the losses)
_LOSS_FLAGS = (
    *((flag, dest, ("ada", "ada-quad"), "ada or ada-quad") for flag, dest in
      (("--rho0", "rho0"), ("--tau0", "tau0"), ("--tau-max", "tau_max"), ("--solver", "solver"),
       ("--n-iter", "n_iter"), ("--tau-init", "tau_init"))),
    ("--temperature", "temperature", ("bt",), "bt"),
    ("--beta", "beta", ("hinge", "ipo"), "hinge or ipo"),
)  # fmt: skip


def make_data(args: argparse.Namespace) -> int:
    """Write pairs (chosen, rejected, strength, corrupted) as JSONL."""
    seed = 0 if args.seed is None else args.seed
    out = args.out or Path("pairs.jsonl")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give the file to write, e.g. {out / 'pairs.jsonl'}")
    for source, flags in _SOURCE_FLAGS.items():  # a flag of another source would be ignored: say so instead
        given = [flag for flag, dest in flags if getattr(args, dest) is not None]
        if args.source != source and given:
            verb = "applies" if len(given) == 1 else "apply"
            raise ValueError(f"{', '.join(given)} {verb} to --source {source}, not to --source {args.source}")
    if args.teacher == "oracle" and args.teacher_param is not None:
        raise ValueError(f"--teacher oracle takes no --teacher-param, got {args.teacher_param}")
    teacher = _teacher(args.teacher, args.teacher_param)
    gen = torch.Generator().manual_seed(seed)
    if args.source == "synthetic":
        T, D = 10 if args.T is None else args.T, 8 if args.D is None else args.D  # an explicit 0 is refused
        reward: RewardKind = args.reward or "linear"
        data, truth = make_preference_data(args.n, T=T, D=D, reward=reward, teacher=teacher, generator=gen)
        meta: dict[str, Any] = {"source": "synthetic", "reward": reward, "truth": truth.state_dict()}
    else:
        from adapref.envs import Policy, collect_segments

        policy: Policy = args.policy or "noisy-sine"
        env, seg_len = args.env or "Pendulum-v1", 25 if args.seg_len is None else args.seg_len
        pool = collect_segments(env, n_segments=2 * args.n, seg_len=seg_len, policy=policy, seed=seed)
        data = pair_segments(pool.features, pool.returns, args.n, teacher, gen)
        meta = {"source": "gym", "env": env, "seg_len": seg_len, "policy": policy}
    data.to_jsonl(out)
    meta.update({"n": len(data), "teacher": repr(teacher), "seed": seed, "version": __version__})
    meta_path = out.with_suffix(out.suffix + ".meta.pt")
    tmp = meta_path.with_name(f".{meta_path.name}.tmp")
    torch.save(meta, tmp)
    tmp.replace(meta_path)
    corrupted = float(data.corrupted.float().mean()) if data.corrupted is not None else math.nan
    result = {"out": str(out), "pairs": len(data), "shape": list(data.chosen.shape[1:]), "corrupted_share": corrupted}
    print(json_text(result) if args.json else f"wrote {len(data)} pairs {tuple(data.chosen.shape[1:])} to {out} "
          f"(labels disagreeing with the true reward: {corrupted:.1%})")  # fmt: skip
    return 0


def train_reward(args: argparse.Namespace) -> int:
    """Train a reward model; write config.json, model.pt, history.json, taus.csv under --out."""
    config: TrainConfig = args.train_config
    out = args.out or Path("runs") / "reward"
    val_fraction, ragged = 0.1 if args.val_fraction is None else args.val_fraction, args.ragged
    if args.resume:  # the run's split and data reading, unless given
        recorded = _read_record(out / "config.json")
        if args.val_fraction is None and isinstance(recorded.get("val_fraction"), (int, float)):
            val_fraction = float(recorded["val_fraction"])
        ragged = ragged or recorded.get("ragged") is True
    for flag, dest, losses, named in _LOSS_FLAGS:  # it would be ignored: say so instead
        if getattr(args, dest) is not None and config.loss not in losses:
            raise ValueError(f"{flag} applies to --loss {named}, not to --loss {config.loss}")
    newton = config.solver.startswith("newton")
    if config.loss.startswith("ada") and not newton and (args.n_iter is not None or args.tau_init is not None):
        given = "--n-iter" if args.n_iter is not None else "--tau-init"
        raise ValueError(f"{given} sets up a Newton solver: give --solver newton or newton-official (exact has none)")
    data = PreferenceData.from_jsonl(args.data, ragged=ragged)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    split_gen = torch.Generator().manual_seed(config.seed)
    train, val = data.split(val_fraction, split_gen) if val_fraction > 0 else (data, None)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the run")
    if args.resume and not (out / CHECKPOINT).is_file():  # the trainer's test, made before anything is written to --out
        raise ValueError(f"--resume needs a checkpoint at {out / CHECKPOINT}; none was found")
    if not args.resume and (out / CHECKPOINT).is_file():
        raise ValueError(
            f"--out {out} holds a run ({CHECKPOINT}); pass --resume to continue it, or choose another --out"
        )
    trainer = RewardTrainer(config)  # an unavailable device is refused here, before anything is written
    out.mkdir(parents=True, exist_ok=True)
    record = {"train": config.to_dict(), "data": str(args.data), "ragged": ragged, "val_fraction": val_fraction,
              "version": __version__}  # fmt: skip
    if not args.resume:
        write_json(out / "config.json", record)
    history = trainer.fit(train, val, out_dir=out, resume=args.resume)
    if args.resume:  # written only once the checkpoint accepted it (a resume may change epochs and device)
        write_json(out / "config.json", record)
    last = history.epochs[-1]
    if config.loss.startswith("ada"):
        rep = trainer.tau_report(data)
        _write_taus(out / "taus.csv", data, rep.tau, rep.margins)
        last = {**last, "tau_spearman_strength": rep.spearman if rep.spearman is not None else math.nan}
    rows = [[k, v] for k, v in last.items()]
    print(json_text(last) if args.json else format_table(["metric", "value"], rows) + f"\n\nrun: {out}")
    return 0


def _write_taus(path: Path, data: PreferenceData, tau: torch.Tensor, margins: torch.Tensor) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "margin", "tau", "strength"])
        strength = data.strength.tolist() if data.strength is not None else [""] * len(data)
        for row in zip(data.ids, margins.tolist(), tau.tolist(), strength, strict=True):
            w.writerow(row)
    tmp.replace(path)


def make_train_config(values: dict[str, Any], given: dict[str, Any]) -> TrainConfig:
    """``TrainConfig`` from ``values``; the quadratic penalty's note that it ignores ``tau_max`` only when the user
    set ``tau_max`` (in ``given``: flags and config file), not for the default every ada-quad run has."""
    with warnings.catch_warnings():
        if "tau_max" not in given:
            warnings.filterwarnings("ignore", message=r"tau_max = .* is ignored by the quadratic", category=UserWarning)
        return TrainConfig.from_dict(values)


def check_run_dir(run: Path) -> None:
    """``--run``: a folder train-reward wrote, holding the run's ``model.pt``."""
    if not run.exists():
        raise ValueError(f"--run {run}: no such folder")
    if not run.is_dir():
        raise ValueError(f"--run {run} is a file; give the run's folder (train-reward's --out)")
    if not (run / "model.pt").is_file():
        if (run / CHECKPOINT).is_file():
            raise ValueError(
                f"--run {run} holds no model.pt yet: the run was interrupted; finish it with `adapref train-reward "
                f"--resume --out {run}` (same data and settings)"
            )
        raise ValueError(f"--run {run} holds no model.pt: give a folder written by train-reward")


def tau_report(args: argparse.Namespace) -> int:
    """Histogram of τ and, when the data carry the true strength, τ per strength quintile."""
    check_run_dir(args.run)
    plot = args.plot
    if plot is not None:  # checked before the work; matplotlib writes "x" as x.png: say the file it writes
        plot = plot if plot.suffix else plot.with_suffix(".png")
        if plot.is_dir():
            raise ValueError(f"--plot {plot} is a folder; give the image file to write, e.g. {plot / 'tau.png'}")
        supported = _plot_types()  # matplotlib would refuse a type (or be missing) only after the work
        if plot.suffix.lower().lstrip(".") not in supported:
            raise ValueError(
                f"--plot {plot}: the file type must be one of matplotlib's ({', '.join(sorted(supported))}), "
                f"got {plot.suffix!r}"
            )
    trainer = RewardTrainer.load(args.run / "model.pt")
    if not trainer.config.loss.startswith("ada"):
        raise ValueError(
            f"--run {args.run} was trained with --loss {trainer.config.loss}: τ exists for ada and ada-quad"
        )
    data = PreferenceData.from_jsonl(args.data, ragged=args.ragged)
    model_dim = trainer.model.in_dim if trainer.model is not None else None
    if model_dim is not None and int(data.chosen.shape[-1]) != model_dim:
        raise ValueError(
            f"{args.data} has {int(data.chosen.shape[-1])} features per step; the run in {args.run} was trained on "
            f"{model_dim}: report on data of the run's kind"
        )
    rep = trainer.tau_report(data)
    hist = rep.histogram
    text = format_table(["τ from", "to", "pairs"], [[lo, hi, c] for lo, hi, c in
                        zip(hist["edges"][:-1], hist["edges"][1:], hist["counts"], strict=True)])  # fmt: skip
    at_max = hist["frac_at_tau_max"]
    at_max_text = "- (ada-quad has no τmax)" if math.isnan(at_max) else f"{at_max:.3f}"
    text += f"\n\nshare at τ0: {hist['frac_at_tau0']:.3f}   share at τmax: {at_max_text}"
    if rep.quantile_table is not None:
        text += (
            f"\n\nSpearman(τ, true strength) = {rep.spearman:.3f}   (ceiling with these shares at the bounds: "
            f"{rep.spearman_ceiling:.3f})\n"
        )
        if rep.spearman is not None and math.isnan(rep.spearman):
            why = "every pair has one τ" if bool((rep.tau == rep.tau[0]).all()) else "the strength is constant"
            text = text.rstrip("\n") + f"   undefined: {why}\n"
        text += format_table(["strength from", "to", "pairs", "mean τ"],
                             [[q["lo"], q["hi"], q["n"], q["mean_tau"]] for q in rep.quantile_table])  # fmt: skip
    else:
        text += "\n\n(no strength in the data: the τ-per-strength-quintile table needs a 'strength' on every record)"
    if plot is not None:
        plot.parent.mkdir(parents=True, exist_ok=True)
        _plot_histogram(rep.tau, trainer.config, plot)
        text += f"\n\nplot: {plot}"
    print(json_text(rep.to_dict(), indent=2) if args.json else text)
    return 0


def _plot_types() -> set[str]:
    """The file types matplotlib writes (``png``, ``pdf``, ``eps``...); ``ImportError`` naming the extra if absent."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError as exc:
        raise ImportError('--plot needs matplotlib: pip install "adapref[plot]"') from exc
    return set(FigureCanvasBase.get_supported_filetypes())


def _plot_histogram(tau: torch.Tensor, config: TrainConfig, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError('--plot needs matplotlib: pip install "adapref[plot]"') from exc
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(tau.numpy(), bins=30, range=(config.tau0, max(config.tau_max, float(tau.max()))))
    ax.set_xlabel("τ")
    ax.set_ylabel("pairs")
    ax.set_title(f"learned τ (ρ0={config.rho0}, τ0={config.tau0}, τmax={config.tau_max})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_epochs(run_dir: Path) -> int | None:
    """The epochs a language-model DPO run in ``run_dir`` was started with (its last checkpoint's
    ``trainer_state.json``), or None: a bare ``--resume`` finishes the run as begun, not to the default."""
    if not run_dir.is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint as _get_last_checkpoint

    get_last_checkpoint: Any = _get_last_checkpoint  # untyped
    last = get_last_checkpoint(str(run_dir))  # looked up once (has_checkpoint's own test)
    if last is None:
        return None
    try:
        state = json.loads((Path(last) / "trainer_state.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    epochs = state.get("num_train_epochs") if isinstance(state, dict) else None
    return int(epochs) if isinstance(epochs, (int, float)) and epochs >= 1 else None


def has_checkpoint(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a ``checkpoint-<step>`` folder (TRL's own test, ``get_last_checkpoint``)."""
    if not run_dir.is_dir():
        return False
    from transformers.trainer_utils import get_last_checkpoint as _get_last_checkpoint

    get_last_checkpoint: Any = _get_last_checkpoint  # untyped
    return get_last_checkpoint(str(run_dir)) is not None


# dpo's settings that a --resume of a language-model run takes from the run when not given (option = record key);
# the ada losses' own only when the run trains one, --n-iter only with a Newton solver
_DPO_RESUMED = ("data", "eval_data", "model", "losses", "beta", "seed", "batch_size", "lr", "max_length")
_DPO_ADA_RESUMED = ("rho0", "tau0", "tau_max", "solver", "n_iter", "clamp_tau_max")


def _read_record(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or ``{}`` when it is missing or unreadable."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _resumed_dpo_settings(args: argparse.Namespace, base: Path) -> None:
    """Fill the options a language-model ``dpo --resume`` leaves out (``None``) from the run in ``base``.

    The run's ``config.json`` (written at its first step) gives every setting. A run of an earlier version
    wrote it only at the end, without the batch size, lr and max length and with the tiny model described in
    words; those come from each loss's ``run_args.json`` (which also serves a run without ``config.json``,
    its losses then the folders that hold a run).
    """
    from adapref.lm_dpo import LM_LOSSES, RUN_ARGS

    record = _read_record(base / "config.json")
    if "toy" in record:
        return  # the toy's results, refused below
    recorded = record.get("losses")
    runs = [n for n in (recorded if isinstance(recorded, list) else LM_LOSSES) if (base / str(n) / RUN_ARGS).is_file()]
    ada = next((n for n in runs if n in ("ada", "ada-quad")), None)  # its file holds the ada settings
    run_args = _read_record(base / str(ada or runs[0]) / RUN_ARGS) if runs else {}
    record = {**run_args, "losses": runs or None, **record}
    if record.get("model") == "tiny GPT-2 from scratch":  # how an earlier version's config.json said None
        record["model"] = None
    losses = args.losses if args.losses is not None else record.get("losses")
    names = losses.split(",") if isinstance(losses, str) else losses if isinstance(losses, list) else []
    dests = _DPO_RESUMED + (_DPO_ADA_RESUMED if {"ada", "ada-quad"} & {str(n).strip() for n in names} else ())
    for dest in dests:
        value = record.get(dest)
        if getattr(args, dest, None) is not None or value is None:  # (no option here defaults to False)
            continue  # typed (0 included), or not in the record
        if dest == "n_iter" and (args.solver or record.get("solver")) not in ("newton", "newton-official"):
            continue
        if dest == "clamp_tau_max" and "ada-quad" not in names:
            continue
        if dest == "losses":
            value = ",".join(value) if isinstance(value, list) else value
        elif dest in ("data", "eval_data"):
            value = Path(value)
        setattr(args, dest, value)


class _LMProgress:
    """A tqdm bar per loss of a language-model dpo run, and the run's settings written to ``config.json`` at its
    first optimizer step: once the arguments passed ``train_lm_dpo``'s checks (a refused run leaves no folder),
    and before the first checkpoint that a ``--resume`` needs."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path, self.settings, self.written = path, settings, False
        self.bar: Any = None
        self.name: str | None = None

    def of(self, name: str) -> Callable[[int, int, Mapping[str, float]], None]:
        """The ``progress`` callback of the run of loss ``name``."""

        def progress(step: int, total: int, logs: Mapping[str, float]) -> None:
            if not self.written:
                write_json(self.path, self.settings)
                self.written = True
            if self.name != name:
                self.close()
                self.bar, self.name = tqdm(total=total, desc=name, unit="step", disable=None, leave=False), name
                self.bar.n = 0
            if self.bar is None:  # this loss's bar closed at its last step (TRL logs once more after it)
                return
            self.bar.update(step - self.bar.n)
            if "loss" in logs:
                self.bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)
            if step >= total:  # closed before the final scoring pass and its warnings
                self.close()

        return progress

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _check_dpo_out_kind(out: Path | None, *, toy: bool) -> None:
    """Refuse an ``--out`` that holds the other kind of dpo run (the toy's records would replace an LM run's)."""
    if out is None:
        return
    record = _read_record(out / "config.json")
    if record and ("toy" in record) != toy:
        held = "the toy's results (--toy)" if "toy" in record else "a language-model run (--data)"
        raise ValueError(f"--out {out} holds {held}; choose another --out")


def dpo(args: argparse.Namespace) -> int:
    """DPO-family losses: on the exact toy bandit (``--toy``) or a small causal LM on TRL data (``--data``)."""
    base = args.out or Path("runs") / "dpo"
    if args.resume and not args.toy:  # the run's own settings for what the command line does not give
        _resumed_dpo_settings(args, base)
    seed = 0 if args.seed is None else args.seed
    beta = 0.1 if args.beta is None else args.beta
    names = [s.strip() for s in (args.losses if args.losses is not None else "sigmoid,ada").split(",") if s.strip()]
    if args.data is None and not args.toy:
        raise ValueError("give --data FILE.jsonl (TRL prompt/chosen/rejected) or --toy (the exact bandit)")
    if args.toy:
        ignored = [flag for flag, value in (("--data", args.data), ("--eval-data", args.eval_data), ("--model", args.model),
                   ("--lr", args.lr), ("--max-length", args.max_length), ("--batch-size", args.batch_size), ("--tau0", args.tau0),
                   ("--solver", args.solver), ("--n-iter", args.n_iter), ("--clamp-tau-max", args.clamp_tau_max))
                   if value is not None]  # fmt: skip
        if ignored:
            verb = "applies" if len(ignored) == 1 else "apply"
            raise ValueError(f"{', '.join(ignored)} {verb} only to the language-model run, not to --toy")
    elif args.pairs is not None or args.flip_rate is not None:
        raise ValueError("--pairs and --flip-rate set up the toy (--toy); with --data the labels are the file's")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; give a folder (one subfolder per loss)")
    _check_dpo_out_kind(args.out if args.toy else base, toy=args.toy)
    if args.toy:
        if args.device not in (None, "cpu"):
            raise ValueError(
                f"--device {args.device} applies to the language-model run (--data); the toy runs on the CPU"
            )
        if args.resume:
            raise ValueError("--resume applies to the language-model run (--data); the toy trains in seconds")
        from adapref.bench import TOY_DPO_LOSSES

        known: tuple[str, ...] = TOY_DPO_LOSSES
    else:
        from adapref.lm_dpo import LM_LOSSES

        known = LM_LOSSES
    if not names or any(n not in known for n in names):  # before any training, not after the losses before it
        raise ValueError(f"--losses must be a comma list of {', '.join(known)}, got {args.losses!r}")
    if args.toy and args.pairs is not None and args.pairs < 2 and "ada" in names:  # its τ-strength Spearman needs 2
        raise ValueError(f"--pairs must be an int >= 2 with the ada loss, got {args.pairs}")
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:  # one run folder (and one table row) per loss
        raise ValueError(f"--losses names {twice} twice: give each loss once, got {args.losses!r}")
    if args.clamp_tau_max and "ada-quad" not in names:
        raise ValueError("--clamp-tau-max applies to the ada-quad loss, which --losses does not name")
    ada_flags = [flag for flag, value in (("--rho0", args.rho0), ("--tau0", args.tau0), ("--tau-max", args.tau_max),
                 ("--solver", args.solver), ("--n-iter", args.n_iter)) if value is not None]  # fmt: skip
    if ada_flags and not {"ada", "ada-quad"} & set(names):
        verb = "applies" if len(ada_flags) == 1 else "apply"
        raise ValueError(f"{', '.join(ada_flags)} {verb} to the ada losses, which --losses does not name")
    if args.n_iter is not None and args.solver not in ("newton", "newton-official"):
        raise ValueError("--n-iter is the number of Newton iterations: give --solver newton or newton-official")
    rho0 = 0.1 if args.rho0 is None else args.rho0
    tau_max = 5.0 if args.tau_max is None else args.tau_max
    epochs = 3 if args.epochs is None else args.epochs
    if {"ada", "ada-quad"} & set(names):  # every setting checked before the first loss trains, not at the ada one
        if args.toy and not tau_max >= 0.1:
            raise ValueError(f"--tau-max must be >= 0.1 (the toy's τ0), got {tau_max}")
        with warnings.catch_warnings():  # the loss warns about rho0 >= log 2 when it is configured
            warnings.simplefilter("ignore", UserWarning)
            check_scaling_args(rho0, 0.1 if args.tau0 is None else args.tau0, tau_max, args.solver or "exact",
                               5 if args.n_iter is None else args.n_iter, 1.0, False)  # fmt: skip
    rows, result = [], {}
    if args.toy:
        from adapref.bandit import BanditConfig, make_bandit, train_dpo
        from adapref.bench import _dpo_tau_vs_strength, dpo_loss_fn

        config = BanditConfig(
            beta=beta,
            epochs=epochs,
            n_pairs=6000 if args.pairs is None else args.pairs,
            flip_rate=args.flip_rate or 0.0,
            seed=seed,
        )
        problem = make_bandit(config, torch.Generator().manual_seed(seed))
        _warm_up()
        for name in names:
            fn = dpo_loss_fn(name, beta=beta, rho0=rho0, tau_max=tau_max)
            t0 = time.perf_counter()
            try:
                res = train_dpo(problem, fn, config, torch.Generator().manual_seed(seed))
            except ValueError as exc:  # a non-finite loss: name the loss and the setting to change
                raise ValueError(
                    f"loss {name}: {str(exc).replace('loss_fn returned', 'returned')}; try another --beta"
                ) from exc
            result[name] = {"normalised_reward": res.normalised_reward, "win_rate_vs_ref": res.win_rate_vs_ref,
                            "implicit_accuracy": res.implicit_accuracy, "seconds": time.perf_counter() - t0}  # fmt: skip
            if name == "ada" and res.log_probs is not None:  # τ at the trained margins against the true gap (A3)
                taus = _dpo_tau_vs_strength(problem, res.log_probs, beta, {"rho0": rho0, "tau_max": tau_max})
                result[name].update({"spearman_tau_strength": taus["rho"], "share_tau0": taus["f0"],
                                     "share_tau_max": taus["fmax"]})  # fmt: skip
            r = result[name]
            rows.append([name, r["normalised_reward"], r["win_rate_vs_ref"], r["implicit_accuracy"],
                         r.get("spearman_tau_strength"), r["seconds"]])  # fmt: skip
        table = format_table(
            ["loss", "normalised reward", "win rate vs ref", "implicit acc", "Spearman(τ, true gap)", "seconds"], rows
        )
        record: dict[str, Any] = {"toy": dataclasses.asdict(config)}
    else:
        from adapref.data import read_trl_jsonl
        from adapref.lm_dpo import _record_strength, train_lm_dpo
        from adapref.lm_text import explicit_prompt_records

        records = explicit_prompt_records(read_trl_jsonl(args.data), str(args.data))
        try:  # the optional strength, checked here to name the file (train_lm_dpo names a record's index)
            _record_strength(records)
        except ValueError as exc:
            raise ValueError(f"{args.data}: {exc} (records count from 0, blank lines skipped)") from exc
        eval_records = (
            explicit_prompt_records(read_trl_jsonl(args.eval_data), str(args.eval_data)) if args.eval_data else None
        )
        # Every loss's folder checked before the first trains. With --resume a loss resumes from its last
        # checkpoint, and one interrupted before its first checkpoint (or never started) starts afresh.
        # The run's recorded losses count too: a resume may add a loss, and a new run may not replace their records.
        run_record = _read_record(base / "config.json")  # read once: nothing writes it before training
        recorded = run_record.get("losses")
        run_losses = [*(n for n in (recorded if isinstance(recorded, list) else []) if isinstance(n, str)), *names]
        run_held = {name: has_checkpoint(base / name) for name in dict.fromkeys(run_losses)}
        held = {name: run_held[name] for name in names}
        if args.resume and not any(run_held.values()):
            raise ValueError(f"--resume needs the checkpoints of a run in {base}/<loss>; none were found")
        if not args.resume and any(run_held.values()):
            first = next(name for name in run_held if run_held[name])
            raise ValueError(
                f"{base / first} holds the checkpoints of an earlier run; pass --resume to continue it (or to add "
                "a loss to it), or choose another --out"
            )
        tau0 = 0.1 if args.tau0 is None else args.tau0
        batch_size = 16 if args.batch_size is None else args.batch_size
        lr = args.lr if args.lr is not None else (5e-3 if args.model is None else 5e-6)  # 5e-6: the paper's grid
        solver_args: dict[str, Any] = {
            "solver": args.solver or "exact",
            "n_iter": 5 if args.n_iter is None else args.n_iter,
        }
        # a bare --resume finishes each held loss to its own epochs (losses of one run may have been resumed to
        # different ones), and a loss added to the run trains to the first held loss's
        own = {n: run_epochs(base / n) for n in names if held[n]} if args.resume and args.epochs is None else {}
        epochs = next((e for e in own.values() if e is not None), epochs)
        loss_epochs = {n: own.get(n) or epochs for n in names}
        most = max(loss_epochs.values())  # config.json's epochs: the most any loss trains to
        newton = solver_args["solver"] in ("newton", "newton-official")
        settings = {"data": str(args.data), "eval_data": None if args.eval_data is None else str(args.eval_data),
                    "model": args.model, "losses": names, "beta": beta, "rho0": rho0, "tau0": tau0,
                    "tau_max": tau_max, "solver": solver_args["solver"], "n_iter": solver_args["n_iter"] if newton else None,
                    "clamp_tau_max": bool(args.clamp_tau_max), "seed": seed, "epochs": most, "batch_size": batch_size,
                    "lr": lr, "max_length": args.max_length, "version": __version__}  # fmt: skip
        common = {"model": args.model, "rho0": rho0, "tau0": tau0, "tau_max": tau_max, "beta": beta, "seed": seed,
                  "batch_size": batch_size, "max_length": args.max_length, "lr": lr}  # fmt: skip

        def arguments(name: str) -> dict[str, Any]:  # those of loss `name`'s run (the stock losses: defaults)
            return {**common, "loss": name, **(solver_args if name in ("ada", "ada-quad") else {}),
                    "clamp_tau_max": bool(args.clamp_tau_max) and name == "ada-quad"}  # fmt: skip

        if args.resume:  # every held loss checked before the first trains (a refusal at the second came too late)
            from adapref.lm_dpo import _check_resume

            for name in (n for n in names if held[n]):
                _check_resume(base / name, records, eval_records=eval_records, epochs=loss_epochs[name],
                              **arguments(name))  # fmt: skip
            kept = [k for k in _DPO_ADA_RESUMED if k in run_record and not (  # those of a resume training no ada loss
                {"ada", "ada-quad"} & set(names) if k != "clamp_tau_max" else "ada-quad" in names)]  # fmt: skip
            settings.update({k: run_record[k] for k in kept})
        earlier = _read_record(base / "results.json") if args.resume else {}
        if args.resume:  # a resume of some of the run's losses keeps the others in the records
            settings["losses"] = list(run_held)  # the recorded losses, then the new ones
        progress = _LMProgress(base / "config.json", settings)  # the settings are written at the first step
        for name in names:
            metrics = train_lm_dpo(records, eval_records=eval_records, epochs=loss_epochs[name],
                                   device=args.device or "cpu", out_dir=base / name, resume=held[name],
                                   progress=progress.of(name), **arguments(name))  # fmt: skip
            result[name] = metrics
            rows.append([name, metrics.get("eval_accuracy"), metrics.get("train_accuracy"), metrics.get("tau_mean"),
                         metrics.get("spearman_tau_strength")])  # fmt: skip
        table = format_table(["loss", "held-out implicit acc", "train acc", "mean τ", "Spearman(τ, strength)"], rows)
        progress.close()
        write_json(base / "config.json", settings)
        write_json(base / "results.json", {**earlier, **result})
    if args.toy and args.out is not None:
        write_json(args.out / "config.json", {**record, "losses": names, "beta": beta, "rho0": rho0,
                                              "tau_max": tau_max, "seed": seed, "version": __version__})  # fmt: skip
        write_json(args.out / "results.json", result)
    print(json_text(result, indent=2) if args.json else table)
    return 0


def bench(args: argparse.Namespace) -> int:
    """Run the benchmark suite of :mod:`adapref.bench`."""
    from adapref.bench import run

    return run(only=args.only, quick=args.quick, seeds=args.seeds, out=args.out, fresh=args.fresh,
               command=getattr(args, "command_line", None))  # fmt: skip


__all__ = ["bench", "demo", "dpo", "make_data", "tau_report", "train_reward", "write_json"]
