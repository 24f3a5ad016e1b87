"""The work behind each ``r3m`` command (the argument parsing lives in :mod:`r3m.cli`)."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from r3m._version import __version__
from r3m.config import TrainConfig
from r3m.data import PreferenceData
from r3m.functional import check_lam
from r3m.synthetic import RewardKind, TrueReward, make_preference_data, pair_segments, sample_segments
from r3m.teachers import Flip, Irrational, Mistake, Myopic, Oracle, Stochastic, Teacher
from r3m.trainer import CHECKPOINT, RewardTrainer

TEACHERS = ("oracle", "flip", "stochastic", "myopic", "irrational", "mistake")


def json_text(obj: Any, indent: int | None = None) -> str:
    """Strict JSON of ``obj``: scalars (numpy, torch) as floats, NaN and ±inf as ``null`` (bare NaN is not JSON)."""
    plain = json.loads(json.dumps(obj, default=float), parse_constant=lambda _: None)
    return json.dumps(plain, indent=indent, allow_nan=False)


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json_text(obj, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def format_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (floats to 4 significant digits, None as ``-``)."""

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def make_teacher(kind: str, param: float | None) -> Teacher:
    """A teacher by name with its parameter (defaults: flip 0.2, stochastic τ 1, myopic γ 0.5, irrational p 1/3)."""
    if kind == "oracle":
        return Oracle()
    if kind == "flip":
        return Flip(0.2 if param is None else param)
    if kind == "mistake":
        return Mistake(0.2 if param is None else param)
    if kind == "stochastic":
        return Stochastic(1.0 if param is None else param)
    if kind == "myopic":
        return Myopic(0.5 if param is None else param)
    if kind == "irrational":
        return Irrational(1 / 3 if param is None else param)
    raise ValueError(f"teacher must be one of {TEACHERS}, got {kind!r}")


def clean_test_pairs(truth: TrueReward, n: int, T: int, D: int, generator: torch.Generator) -> PreferenceData:
    """Held-out pairs over the same true reward, labelled by the noiseless oracle (D0' of the paper)."""
    segments = sample_segments(2 * n, T, D, generator)
    return pair_segments(segments, truth(segments), n, Oracle(), generator)


def _warm_up() -> None:
    """Pay torch's one-time start-up costs before anything is timed (the first optimizer imports torch._dynamo:
    seconds, which the first loss in a table would otherwise be charged)."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([p])
    p.sum().backward()  # type: ignore[no-untyped-call]
    opt.step()


def demo(args: argparse.Namespace) -> int:
    """Bradley-Terry, conservative BT and R³M on 5000 pairs with 20 % flipped labels; prints a table."""
    seed = 0 if args.seed is None else args.seed
    gen = torch.Generator().manual_seed(seed)
    data, truth = make_preference_data(5000, T=10, D=8, reward="smooth-mlp", teacher=Flip(0.2), generator=gen)
    train, val = data.split(0.1, gen)
    test = clean_test_pairs(truth, 2000, 10, 8, gen)
    device = args.device or "cpu"
    configs = {
        "bt": TrainConfig(loss="bt", seed=seed, device=device),
        "conservative bt ε=.1": TrainConfig(loss="cbt", eps=0.1, seed=seed, device=device),
        "r3m λ=.5": TrainConfig(loss="r3m", lam=0.5, seed=seed, device=device),
    }
    rows, result = [], {}
    _warm_up()
    for name, cfg in configs.items():
        t0 = time.perf_counter()
        trainer = RewardTrainer(cfg)
        trainer.fit(train, val, progress=False)
        rep = trainer.outlier_report(train, lam=0.5)
        metrics = {"test_accuracy": trainer.accuracy(test), "flag_precision": rep.precision,
                   "flag_recall": rep.recall, "auroc": rep.auroc, "seconds": time.perf_counter() - t0}  # fmt: skip
        result[name] = metrics
        rows.append([name, *metrics.values()])
    table = (
        "r3m demo: 5000 pairs from a random smooth tanh-MLP reward (T=10, D=8; B1's) with 20 % of the labels flipped;\n"
        "2×64 MLP reward model, up to 5 epochs with early stopping on a noisy validation split; accuracy on\n"
        "2000 clean held-out pairs; outliers flagged where δ > 0 at λ = 0.5 (for BT: the same rule on its margins).\n\n"
        + format_table(["loss", "clean test acc", "flag precision", "flag recall", "AUROC", "seconds"], rows)
    )
    print(json_text(result, indent=2) if args.json else table)
    return 0


def typed(args: argparse.Namespace, dest: str) -> bool:
    """Whether option ``dest`` was given on the command line; a ``--config`` file's value is a default, which a
    command drops where it does not apply (a file may serve several sources or modes), as its own defaults."""
    value = getattr(args, dest, None)
    return value is not None and value is not False and dest not in getattr(args, "from_config", ())


# make-data's flags that only one --source reads: (flag, destination)
_SOURCE_FLAGS = {
    "synthetic": (("--T", "T"), ("--D", "D"), ("--reward", "reward")),
    "gym": (("--env", "env"), ("--seg-len", "seg_len"), ("--policy", "policy")),
}


def make_data(args: argparse.Namespace) -> int:
    """Write corrupted pairs (chosen, rejected, strength, corrupted) as JSONL, or TRL text pairs."""
    seed = 0 if args.seed is None else args.seed
    out = args.out or Path("pairs.jsonl")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give the file to write, e.g. {out / 'pairs.jsonl'}")
    gen = torch.Generator().manual_seed(seed)
    for source, flags in _SOURCE_FLAGS.items():  # a flag of another source would be ignored: say so instead
        given = [flag for flag, dest in flags if typed(args, dest)]
        if args.source != source and given:
            verb = "applies" if len(given) == 1 else "apply"
            raise ValueError(f"{', '.join(given)} {verb} to --source {source}, not to --source {args.source}")
    if args.teacher == "oracle" and typed(args, "teacher_param"):
        raise ValueError(f"--teacher oracle takes no --teacher-param, got {args.teacher_param}")
    if args.source == "text":
        from r3m.data import write_trl_jsonl
        from r3m.lm_dpo import make_text_preferences

        if args.teacher not in ("flip", "oracle"):
            raise ValueError(
                f"--source text takes --teacher flip or oracle, got {args.teacher!r}: its pairs (a correct and a "
                "wrong answer) have no graded reward for stochastic, myopic, irrational or mistake labels"
            )
        flip = 0.0 if args.teacher == "oracle" else 0.2 if args.teacher_param is None else args.teacher_param
        records, corrupted = make_text_preferences(args.n, flip_rate=flip, seed=seed)
        write_trl_jsonl([{**r, "corrupted": c} for r, c in zip(records, corrupted, strict=True)], out)
        share = sum(corrupted) / max(len(corrupted), 1)
        meta: dict[str, Any] = {"source": "text", "n": len(records), "flip_rate": flip, "seed": seed}
    else:
        teacher = make_teacher(args.teacher, args.teacher_param)
        if args.source == "synthetic":
            T, D = 10 if args.T is None else args.T, 8 if args.D is None else args.D  # an explicit 0 is refused
            reward: RewardKind = args.reward or "mlp"
            data, truth = make_preference_data(args.n, T=T, D=D, reward=reward, teacher=teacher, generator=gen)
            meta = {"source": "synthetic", "reward": reward, "truth": truth.state_dict()}
        else:
            from r3m.envs import Policy, collect_segments

            policy: Policy = args.policy or "noisy-sine"
            env, seg_len = args.env or "Pendulum-v1", 25 if args.seg_len is None else args.seg_len
            pool = collect_segments(env, n_segments=2 * args.n, seg_len=seg_len, policy=policy, seed=seed)
            rewards = pool.step_rewards if pool.step_rewards is not None else pool.returns
            data = pair_segments(pool.features, rewards, args.n, teacher, gen)
            meta = {"source": "gym", "env": env, "seg_len": seg_len, "policy": policy}
        data.to_jsonl(out)
        share = int(data.corrupted.sum()) / len(data) if data.corrupted is not None else math.nan
        meta.update({"n": len(data), "teacher": repr(teacher), "seed": seed})
    meta["version"] = __version__
    meta_path = out.with_suffix(out.suffix + ".meta.pt")
    tmp = meta_path.with_name(f".{meta_path.name}.tmp")
    torch.save(meta, tmp)
    tmp.replace(meta_path)
    result = {"out": str(out), "pairs": meta["n"], "corrupted_share": share}
    print(json_text(result) if args.json else f"wrote {meta['n']} pairs to {out} (corrupted labels: {share:.1%})")
    return 0


def check_run_folder(out: Path, resume: bool) -> None:
    """``--out`` of ``train-reward``: a folder; with ``--resume`` it holds a checkpoint, without it none."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the run")
    if resume and not (out / CHECKPOINT).is_file():
        raise ValueError(f"--resume needs a checkpoint at {out / CHECKPOINT}; none was found")
    if not resume and (out / CHECKPOINT).is_file():
        raise ValueError(
            f"--out {out} holds a run ({CHECKPOINT}); pass --resume to continue it, or choose another --out"
        )


def train_reward(args: argparse.Namespace) -> int:
    """Train a reward model; write config.json, model.pt, history.json and deltas.csv under --out."""
    config: TrainConfig = args.train_config
    out = args.out or Path("runs") / "reward"
    check_run_folder(out, args.resume)  # before anything is written to --out
    val_fraction, ragged = 0.1 if args.val_fraction is None else args.val_fraction, args.ragged
    if args.resume:  # the run's split and data reading, unless given
        recorded = _read_record(out / "config.json")
        if args.val_fraction is None and isinstance(recorded.get("val_fraction"), (int, float)):
            val_fraction = float(recorded["val_fraction"])
        ragged = ragged or recorded.get("ragged") is True
    for flag, value, losses in (("--eps", args.eps, ("cbt", "rbt")), ("--beta", args.beta, ("ipo", "hinge"))):
        if value is not None and config.loss not in losses:  # it would be ignored: say so instead
            raise ValueError(f"{flag} applies to --loss {' or '.join(losses)}, not to --loss {config.loss}")
    if val_fraction == 0 and typed(args, "early_stopping") and args.early_stopping == "val_accuracy":
        raise ValueError("--early-stopping val_accuracy needs validation pairs, and --val-fraction 0 leaves none")
    data = PreferenceData.from_jsonl(args.data, ragged=ragged)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    split_gen = torch.Generator().manual_seed(config.seed)
    train, val = data.split(val_fraction, split_gen) if val_fraction > 0 else (data, None)
    trainer = RewardTrainer(config)  # an unavailable device is refused here, also before writing
    out.mkdir(parents=True, exist_ok=True)
    record = {"train": config.to_dict(), "data": str(args.data), "ragged": ragged, "val_fraction": val_fraction,
              "version": __version__}  # fmt: skip
    if not args.resume:
        write_json(out / "config.json", record)
    history = trainer.fit(train, val, out_dir=out, resume=args.resume)
    if args.resume:  # written only once the checkpoint accepted it (a resume may change epochs and device)
        write_json(out / "config.json", record)
    rep = trainer.outlier_report(data)
    write_deltas(out / "deltas.csv", rep, data)
    # the epoch kept by early stopping (the saved model), not the last one trained
    kept = history.epochs[(history.best_epoch or len(history.epochs)) - 1]
    last = {**kept, "best_epoch": history.best_epoch, "epochs_run": len(history.epochs),
            "flagged_share": int(rep.flagged.sum()) / len(rep.flagged), "flag_precision": rep.precision,
            "flag_recall": rep.recall, "auroc": rep.auroc, "margin_auroc": rep.margin_auroc}  # fmt: skip
    rows = [[k, v] for k, v in last.items()]
    print(json_text(last) if args.json else format_table(["metric", "value"], rows) + f"\n\nrun: {out}")
    return 0


def write_deltas(path: Path, rep: Any, data: PreferenceData) -> None:
    """``id, margin, delta, flagged, corrupted`` per pair, atomically (missing parent folders are created)."""
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the CSV file to write, e.g. {path / 'deltas.csv'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    corrupted = data.corrupted.tolist() if data.corrupted is not None else [""] * len(data)
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "margin", "delta", "flagged", "corrupted"])
        for row in zip(rep.ids, rep.margins.tolist(), rep.delta.tolist(), rep.flagged.tolist(), corrupted, strict=True):
            w.writerow(row)
    tmp.replace(path)


def check_run_dir(run: Path) -> None:
    """``--run``: a folder train-reward wrote, holding the run's ``model.pt``."""
    if not run.exists():
        raise ValueError(f"--run {run}: no such folder")
    if not run.is_dir():
        raise ValueError(f"--run {run} is a file; give the run's folder (train-reward's --out)")
    if not (run / "model.pt").is_file():
        if (run / CHECKPOINT).is_file():
            raise ValueError(
                f"--run {run} holds no model.pt yet: the run was interrupted; finish it with `r3m train-reward "
                f"--resume --out {run}` (same data and settings)"
            )
        raise ValueError(f"--run {run} holds no model.pt: give a folder written by train-reward")


def audit(args: argparse.Namespace) -> int:
    """The outlier report of a trained run: largest δ first, with precision/recall when labels are known."""
    if args.csv is not None and args.csv.is_dir():  # before the work, not after it
        raise ValueError(f"--csv {args.csv} is a folder; give the CSV file to write, e.g. {args.csv / 'deltas.csv'}")
    check_run_dir(args.run)
    if args.lam is not None:
        check_lam(args.lam)  # validated, and a λ that looks like eq. 3.2's 1/n warned about, before the work
    trainer = RewardTrainer.load(args.run / "model.pt", device=args.device)
    data = PreferenceData.from_jsonl(args.data, ragged=args.ragged)
    model_dim = trainer.model.in_dim if trainer.model is not None else None
    if model_dim is not None and int(data.chosen.shape[-1]) != model_dim:
        raise ValueError(
            f"{args.data} has {int(data.chosen.shape[-1])} features per step; the run in {args.run} was trained on "
            f"{model_dim}: audit it with data of the run's kind"
        )
    rep = trainer.outlier_report(data, lam=args.lam)
    if args.csv is not None:
        write_deltas(args.csv, rep, data)
    summary = rep.to_dict(args.top)
    text = (
        f"{summary['flagged']} of {summary['n']} pairs flagged (δ > 0 at λ = {args.lam or trainer.config.lam})\n"
        + (
            f"precision {rep.precision:.3f}   recall {rep.recall:.3f}   AUROC {rep.auroc:.3f}   "
            f"(margin AUROC {rep.margin_auroc:.3f})\n"
            if rep.precision is not None
            else ""
        )
        + "\n"
        + format_table(["id", "margin", "δ"], [[r["id"], r["margin"], r["delta"]] for r in summary["top"]])
    )
    print(json_text(summary, indent=2) if args.json else text)
    return 0


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


# dpo's settings that a --resume of a language-model run takes from the run when not given (option = record key)
_DPO_RESUMED = ("data", "eval_data", "model", "losses", "lam", "beta", "seed", "batch_size", "lr", "max_length")


def _read_record(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or ``{}`` when it is missing or unreadable."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _resumed_dpo_settings(args: argparse.Namespace, base: Path) -> None:
    """Fill the options a language-model ``dpo --resume`` leaves out from the run in ``base``: a flag, then a
    ``--config`` file's value, then the run's (as ``train-reward --resume``).

    The run's ``config.json`` (written at its first step) gives every setting. A run of an earlier version
    wrote it only at the end, without the batch size, lr and max length and with the tiny model described in
    words; those come from each loss's ``run_args.json`` (which also serves a run without ``config.json``,
    its losses then the folders that hold a run).
    """
    from r3m.lm_dpo import LM_LOSSES, RUN_ARGS

    record = _read_record(base / "config.json")
    if "toy" in record:
        return  # the toy's results, refused below
    recorded = record.get("losses")
    runs = [n for n in (recorded if isinstance(recorded, list) else LM_LOSSES) if (base / str(n) / RUN_ARGS).is_file()]
    run_args = _read_record(base / str(runs[0]) / RUN_ARGS) if runs else {}
    record = {**run_args, "losses": runs or None, **record}
    if record.get("model") == "tiny GPT-2 from scratch":  # how an earlier version's config.json said None
        record["model"] = None
    for dest in _DPO_RESUMED:  # each option's record key is its own name
        value = record.get(dest)
        if getattr(args, dest, None) is not None or value is None:  # given (flag or --config), or not recorded
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
    """R³M-DPO and the baselines: on the exact toy bandit (``--toy``) or a causal LM on TRL data (``--data``)."""
    base = args.out or Path("runs") / "dpo"
    if args.resume and not args.toy:  # the run's own settings for what the command line does not give
        _resumed_dpo_settings(args, base)
    seed = 0 if args.seed is None else args.seed
    beta = 0.1 if args.beta is None else args.beta
    losses = [s.strip() for s in (args.losses if args.losses is not None else "r3m,sigmoid").split(",") if s.strip()]
    if args.data is None and not args.toy:
        raise ValueError("give --data FILE.jsonl (TRL prompt/chosen/rejected) or --toy (the exact bandit)")
    if args.toy:
        from r3m.bench import TOY_DPO_LOSSES

        known: tuple[str, ...] = TOY_DPO_LOSSES
    else:
        from r3m.lm_dpo import LM_LOSSES

        known = LM_LOSSES
    if not losses or any(n not in known for n in losses):  # before any training, not after the losses before it
        raise ValueError(f"--losses must be a comma list of {', '.join(known)}, got {args.losses!r}")
    twice = next((n for n in losses if losses.count(n) > 1), None)
    if twice is not None:  # one run folder (and one table row) per loss
        raise ValueError(f"--losses names {twice} twice: give each loss once, got {args.losses!r}")
    toy_from = f" (--toy set by --config {args.config})" if "toy" in getattr(args, "from_config", ()) else ""
    if args.toy:
        ignored = [flag for flag, dest in (("--data", "data"), ("--eval-data", "eval_data"), ("--model", "model"),
                   ("--lr", "lr"), ("--max-length", "max_length"), ("--batch-size", "batch_size")) if typed(args, dest)]  # fmt: skip
        if ignored:
            verb = "applies" if len(ignored) == 1 else "apply"
            raise ValueError(f"{', '.join(ignored)} {verb} only to the language-model run, not to --toy{toy_from}")
    elif typed(args, "pairs") or typed(args, "flip_rate"):
        raise ValueError("--pairs and --flip-rate set up the toy (--toy); with --data the labels are the file's")
    if args.toy and typed(args, "device") and args.device != "cpu":
        raise ValueError(f"--device {args.device} applies to the language-model run (--data); the toy runs on the CPU")
    if args.toy and args.resume:
        raise ValueError(f"--resume applies to the language-model run (--data); the toy trains in seconds{toy_from}")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; give a folder (one subfolder per loss)")
    _check_dpo_out_kind(args.out if args.toy else base, toy=args.toy)
    lam = args.lam if args.lam is not None else (0.5 if args.toy else 0.75)
    if args.toy and "r3m" not in losses and typed(args, "lam"):
        raise ValueError(f"--lam applies to the r3m loss, which --losses does not name ({','.join(losses)}){toy_from}")
    if "r3m" in losses or not args.toy:  # the LM run's outlier report of every loss uses λ; the toy's r3m only
        check_lam(lam)  # before any training; a λ that looks like eq. 3.2's 1/n is warned about
    epochs = args.epochs if args.epochs is not None else 3
    if args.toy:
        from r3m.bandit import BanditConfig, make_bandit, oracle_teacher, train_dpo
        from r3m.bench import dpo_loss_fn

        config = BanditConfig(beta=beta, epochs=epochs, n_pairs=6000 if args.pairs is None else args.pairs,
                              flip_rate=args.flip_rate or 0.0, seed=seed)  # fmt: skip
        problem = make_bandit(config, torch.Generator().manual_seed(seed), teacher=oracle_teacher)
        _warm_up()
        rows, result = [], {}
        for name in losses:
            t0 = time.perf_counter()
            try:
                res = train_dpo(problem, dpo_loss_fn(name, beta=beta, lam=lam), config,
                                torch.Generator().manual_seed(seed))  # fmt: skip
            except ValueError as exc:  # a non-finite loss: name the loss and the setting to change
                raise ValueError(
                    f"loss {name}: {str(exc).replace('loss_fn returned', 'returned')}; try another --beta"
                ) from exc
            result[name] = {"normalised_reward": res.normalised_reward, "win_rate_vs_ref": res.win_rate_vs_ref,
                            "implicit_accuracy": res.implicit_accuracy, "seconds": time.perf_counter() - t0}  # fmt: skip
            rows.append([name, *result[name].values()])
        table = format_table(["loss", "normalised reward", "win rate vs ref", "implicit acc", "seconds"], rows)
        config_record: dict[str, Any] = {"toy": dataclasses.asdict(config)}
    else:
        from r3m.data import read_trl_jsonl
        from r3m.lm_dpo import train_lm_dpo
        from r3m.lm_text import explicit_prompt_records

        records = explicit_prompt_records(read_trl_jsonl(args.data), str(args.data))
        eval_records = (
            explicit_prompt_records(read_trl_jsonl(args.eval_data), str(args.eval_data)) if args.eval_data else None
        )
        flags = [r.get("corrupted") for r in records]
        corrupted = None  # the outlier precision / recall need a bool flag on every record
        if any(f is not None for f in flags):
            bad = next((k for k, f in enumerate(flags) if not isinstance(f, bool)), None)
            if bad is not None:
                raise ValueError(
                    f"{args.data}: 'corrupted' must be true or false on every record when one has it; record {bad + 1} "
                    f"(counting from 1) has {flags[bad]!r}"
                )
            corrupted = [bool(f) for f in flags]
        result, rows = {}, []
        # Every loss's folder checked before the first trains. With --resume a loss resumes from its last
        # checkpoint, and one interrupted before its first checkpoint (or never started) starts afresh.
        # The run's recorded losses count too: a resume may add a loss, and a new run may not replace their records.
        run_record = _read_record(base / "config.json")  # read once: nothing writes it before training
        recorded = run_record.get("losses")
        run_losses = [*(n for n in (recorded if isinstance(recorded, list) else []) if isinstance(n, str)), *losses]
        run_held = {name: has_checkpoint(base / name) for name in dict.fromkeys(run_losses)}
        held = {name: run_held[name] for name in losses}
        if args.resume and not any(run_held.values()):
            raise ValueError(f"--resume needs the checkpoints of a run in {base}/<loss>; none were found")
        if not args.resume and any(run_held.values()):
            first = next(name for name in run_held if run_held[name])
            raise ValueError(
                f"{base / first} holds the checkpoints of an earlier run; pass --resume to continue it (or to add "
                "a loss to it), or choose another --out"
            )
        batch_size = 16 if args.batch_size is None else args.batch_size
        lr = args.lr if args.lr is not None else (5e-3 if args.model is None else 5e-6)  # 5e-6: the paper's grid
        # a bare --resume finishes each held loss to its own epochs (losses of one run may have been resumed to
        # different ones), and a loss added to the run trains to the first held loss's
        own = {n: run_epochs(base / n) for n in losses if held[n]} if args.resume and args.epochs is None else {}
        epochs = next((e for e in own.values() if e is not None), epochs)
        loss_epochs = {n: own.get(n) or epochs for n in losses}
        most = max(loss_epochs.values())  # config.json's epochs: the most any loss trains to
        settings = {"data": str(args.data), "eval_data": None if args.eval_data is None else str(args.eval_data),
                    "model": args.model, "losses": losses, "lam": lam, "beta": beta, "seed": seed, "epochs": most,
                    "batch_size": batch_size, "lr": lr, "max_length": args.max_length, "version": __version__}  # fmt: skip
        common = {"model": args.model, "lam": lam, "beta": beta, "seed": seed, "batch_size": batch_size, "lr": lr,
                  "max_length": args.max_length}  # fmt: skip
        if args.resume:  # every held loss checked before the first trains (a refusal at the second came too late)
            from r3m.lm_dpo import _check_resume

            for name in (n for n in losses if held[n]):
                _check_resume(base / name, records, eval_records=eval_records, corrupted=corrupted,
                              epochs=loss_epochs[name], loss=name, **common)  # fmt: skip
        earlier = _read_record(base / "results.json") if args.resume else {}
        if args.resume:  # a resume of some of the run's losses keeps the others in the records
            settings["losses"] = list(run_held)  # the recorded losses, then the new ones
        progress = _LMProgress(base / "config.json", settings)  # the settings are written at the first step
        for name in losses:
            metrics = train_lm_dpo(records, eval_records=eval_records, corrupted=corrupted, loss=name,
                                   epochs=loss_epochs[name], out_dir=base / name, device=args.device or "cpu",
                                   resume=held[name], progress=progress.of(name), **common)  # fmt: skip
            result[name] = metrics
            rows.append([name, *(metrics.get(k) for k in ("eval_accuracy", "train_accuracy", "outlier_precision",
                                                           "outlier_recall"))])  # fmt: skip
        table = format_table(["loss", "held-out implicit acc", "train acc", "flag precision", "flag recall"], rows)
        progress.close()
        write_json(base / "config.json", settings)
        write_json(base / "results.json", {**earlier, **result})
    if args.toy and args.out is not None:
        write_json(args.out / "config.json", {**config_record, "losses": losses, "lam": lam, "beta": beta,
                                              "seed": seed, "version": __version__})  # fmt: skip
        write_json(args.out / "results.json", result)
    print(json_text(result, indent=2) if args.json else table)
    return 0


def bench(args: argparse.Namespace) -> int:
    """Run the benchmark suite of :mod:`r3m.bench`."""
    from r3m.bench import run

    return run(only=args.only, quick=args.quick, seeds=args.seeds, out=args.out, fresh=args.fresh,
               command=getattr(args, "command_line", None))  # fmt: skip
