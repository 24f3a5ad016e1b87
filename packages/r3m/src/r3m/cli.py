"""Command line interface of r3m: ``r3m COMMAND`` (also ``python -m r3m``).

Only the standard library is imported at module level, so ``r3m --help`` and ``r3m --version``
answer in well under half a second; each command imports what it needs. Tables go to stdout, logs
and progress to stderr; bad arguments exit 2 with one line.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import os
import re
import shlex
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from r3m._version import __version__

_TRAIN_FIELDS = ("loss", "lam", "eps", "beta", "epochs", "lr", "batch_size", "weight_decay", "discount",
                 "early_stopping", "patience", "seed", "device")  # fmt: skip
_RESUMABLE = ("train-reward", "dpo")  # commands that checkpoint into --out


# Library argument names whose value a command's flag of another name passes (make-data's --n is n_pairs):
# an error or warning names the flag, not the argument.
_PARAM_ALIASES = {
    "make-data": {"n_pairs": "n", "dim": "D", "env_id": "env", "eps": "teacher_param", "temperature": "teacher_param",
                  "gamma": "teacher_param", "p": "teacher_param", "flip_rate": "teacher_param"},
    "dpo": {"n_pairs": "pairs"},
}  # fmt: skip
_PACKAGE_DIR = Path(__file__).resolve().parent
# dpo's settings of the language-model run, which --toy refuses: a --toy message does not name them
_TOY_REFUSED = ("lr", "batch_size", "max_length", "model")
_INSTALL_LOCK = threading.Lock()
_INSTALLED: list[Any] = []  # the formatter and log handler of the outermost main() running, while it runs


class _Parser(argparse.ArgumentParser):
    """``ArgumentParser`` without abbreviations: ``--n`` must not quietly mean another command's ``--n-iter``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub: argparse.ArgumentParser = action.choices[command]
    return sub


def _flag_names(
    parser: argparse.ArgumentParser, command: str, message: str, args: argparse.Namespace | None = None
) -> str:
    """``message`` with the library's argument names replaced by the command's flags (``n_pairs`` -> ``--n``).

    The name that opens the message is replaced (``T must be an int >= 1``); elsewhere only names with ``_``
    or a digit (``seg_len``), which cannot be ordinary words. A message that came from a --config file, or
    already names a flag, opens with ``--`` and is left as it is.
    """
    if message.startswith("--"):
        return message
    # the paths the user gave are theirs, whatever they contain (seed=1.jsonl, runs/lr=0.01): masked meanwhile
    given = (
        [v for k, v in vars(args).items() if isinstance(v, Path) or (k == "model" and isinstance(v, str))]
        if args
        else []
    )
    paths = sorted({str(v) for v in given}, key=len)[::-1]  # --model is a folder too, given as a string
    for i, path in enumerate(paths):
        message = message.replace(path, f"\x00{i}\x00")
    refused = _TOY_REFUSED if command == "dpo" and getattr(args, "toy", False) else ()  # --toy refuses these flags
    actions = {a.dest: a for a in _subparser(parser, command)._actions
               if a.option_strings and a.dest != "help" and a.type is not Path and a.dest not in refused}  # fmt: skip
    names = {dest: dest for dest in actions}
    names.update({k: v for k, v in _PARAM_ALIASES.get(command, {}).items() if v in actions})

    def flag(name: str) -> str:
        return next(o for o in actions[names[name]].option_strings if o.startswith("--"))

    opening = re.match(r"(\w+) ", message)
    if opening is not None and opening.group(1) in names:
        message = flag(opening.group(1)) + message[opening.end(1) :]
    for name in names:
        # a whole word, not part of a path, a file name, a quoted key or a flag; a name with "_" or a digit
        # (seg_len, tau0) anywhere, an ordinary word (seed, lam) only where it reads as the argument:
        # "seed (0 there, 1 here)", "epochs=1"
        distinctive = "_" in name or any(c.isdigit() for c in name)
        after = r"(?=[\s,;:)]|=|$)" if distinctive else r"(?=\s\(|=)"
        pattern = rf"(?<![\w/.'\"-]){re.escape(name)}(?:=True(?=[\s,;:)]|$)|{after})"
        message = re.sub(pattern, flag(name), message)  # a flag holds no backslash
    message = re.sub(r"(--[\w-]+) \(CLI: \1\)", r"\1", message)  # "pass resume=True (CLI: --resume)"
    for i, path in enumerate(paths):
        message = message.replace(f"\x00{i}\x00", path)
    return message


def _warning_formatter(parser: argparse.ArgumentParser, command: str, args: argparse.Namespace) -> Any:
    """``warnings.formatwarning`` of a command: ``r3m COMMAND: warning: ...`` on one line, each message once,
    naming flags (the default shows the library's file and source line, once per line of code that warns)."""
    seen: set[tuple[type[Warning], str]] = set()

    def format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                       line: str | None = None) -> str:  # fmt: skip
        text = str(message)
        if filename.startswith("<") or Path(filename).resolve().is_relative_to(_PACKAGE_DIR):
            text = _flag_names(parser, command, text, args)
        text = " ".join(part.strip() for part in text.splitlines() if part.strip())  # one line
        if (category, text) in seen:
            return ""
        seen.add((category, text))
        return f"r3m {command}: warning: {text}\n"

    return format_warning


class _CommandLog(logging.Handler):
    """The package's log records as ``r3m COMMAND: warning: ...`` on stderr, each message once (the metrics
    warn per call: once per loss, once per metric, for one cause)."""

    def __init__(self, command: str) -> None:
        super().__init__(logging.WARNING)
        self.command = command
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        text = " ".join(part.strip() for part in record.getMessage().splitlines() if part.strip())
        if text not in self.seen:
            self.seen.add(text)
            print(f"r3m {self.command}: {record.levelname.lower()}: {text}", file=sys.stderr)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:  # argparse would name this function ("invalid _seed value")
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not -(2**63) <= value < 2**63:  # torch's generators take a 64-bit seed
        raise argparse.ArgumentTypeError(f"must be a 64-bit integer, got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:  # argparse would name this function ("invalid _positive_int value")
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


_CONFIG_HELP = (
    "TOML or JSON file of this command's options (keys: the long flag names, - or _), used as defaults that the "
    "command line overrides (a switch set true there stays on; --resume and required options only on the line)"
)


def _add_common(p: argparse.ArgumentParser, *, out: str | None = "output folder", device: bool = True) -> None:
    p.add_argument("--config", type=Path, default=None, help=_CONFIG_HELP)
    p.add_argument("--seed", type=_seed, default=None, help="random seed (default 0)")
    if device:
        p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None, help="device (default cpu)")
    if out is not None:
        p.add_argument("--out", type=Path, default=None, help=out)
    p.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``r3m``, one sub-parser per command."""
    parser = _Parser(
        prog="r3m",
        description="Robust reward learning and DPO from corrupted preferences (R3M, l1-sparse outliers).",
        epilog='Paper: Bukharin, Hong, Jiang, Li, Zhang, Zhang, Zhao, "Robust Reinforcement Learning from '
        'Corrupted Human Feedback", NeurIPS 2024, arXiv:2406.15568.',
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = sub.add_parser("info", help="print package, python and dependency versions, threads and CUDA")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    demo = sub.add_parser("demo", help="BT vs conservative BT vs R³M with 20%% flipped labels (seconds)")
    _add_common(demo, out=None)

    make = sub.add_parser("make-data", help="write corrupted preference pairs with known truth (JSONL)")
    make.add_argument("--source", choices=("synthetic", "gym", "text"), default="synthetic",
                      help="feature segments over a known reward, control-env segments, or TRL text pairs (for dpo --data); default %(default)s")  # fmt: skip
    make.add_argument("--n", type=_positive_int, default=5000, help="number of pairs (default %(default)s)")
    make.add_argument("--T", type=int, default=None, help="steps per segment (synthetic; default 10)")
    make.add_argument("--D", type=int, default=None, help="features per step (synthetic; default 8)")
    make.add_argument(
        "--reward",
        choices=("linear", "mlp", "smooth-mlp"),
        default=None,
        help="true reward (synthetic; r3m.TrueReward; default mlp, saturated: smooth-mlp is the B1 main table's)",
    )
    make.add_argument("--env", default=None, help="gymnasium id (gym; default Pendulum-v1), e.g. HalfCheetah-v5")
    make.add_argument("--seg-len", type=int, default=None, help="segment length (gym; default 25)")
    make.add_argument("--policy", choices=("noisy-sine", "random"), default=None,
                      help="policy that rolls out the segments (gym; default noisy-sine, a noise-scaled scripted one)")  # fmt: skip
    make.add_argument("--teacher", choices=("oracle", "flip", "stochastic", "myopic", "irrational", "mistake"),
                      default="flip", help="labeller / corruption model (B-Pref names; default %(default)s; text: flip or oracle)")  # fmt: skip
    make.add_argument("--teacher-param", "--rate", dest="teacher_param", type=float, default=None,
                      help="flip/mistake rate (0.2), stochastic τ (1), myopic γ (0.5), irrational p (1/3); "
                      "text: flip rate (--rate: the spec's name)")  # fmt: skip
    _add_common(make, out="JSONL file to write (default pairs.jsonl)", device=False)

    train = sub.add_parser("train-reward", help="train a segment reward model on a JSONL file")
    train.add_argument("--data", type=Path, required=True, help="pairs from make-data (JSONL)")
    train.add_argument("--val-fraction", type=float, default=None,
                       help="noisy validation share (early stopping; default 0.1; on --resume: the run's)")  # fmt: skip
    train.add_argument("--ragged", action="store_true",
                       help="accept segments of different lengths (padded at the end; the reward sums the real steps)")  # fmt: skip
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its checkpoint (same settings and data; --epochs may grow)")  # fmt: skip
    g = train.add_argument_group("loss and optimiser (defaults: TrainConfig)")
    g.add_argument("--loss", choices=("r3m", "bt", "cbt", "rbt", "ipo", "hinge"), default=None, help="default r3m")
    g.add_argument("--lam", type=float, default=None, help="per-sample λ ∈ (0, 1) (default 0.5)")
    g.add_argument("--eps", type=float, default=None, help="noise rate of cbt / rbt (default 0.1)")
    g.add_argument("--beta", type=float, default=None, help="scale of ipo / hinge (default 1)")
    g.add_argument("--epochs", type=int, default=None, help="maximum epochs (default 5)")
    g.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 3e-3)")
    g.add_argument("--batch-size", dest="batch_size", type=int, default=None, help="default 64")
    g.add_argument("--discount", type=float, default=None, help="γ of the segment score (default 1)")
    g.add_argument("--early-stopping", dest="early_stopping", choices=("val_accuracy", "none"), default=None,
                   help="keep the epoch of the best validation accuracy (default val_accuracy), or none")  # fmt: skip
    _add_common(train, out="run folder (default runs/reward)")

    aud = sub.add_parser("audit", help="outlier report of a trained run: which labels R³M flags")
    aud.add_argument("--run", type=Path, required=True, help="folder written by train-reward")
    aud.add_argument("--data", type=Path, required=True, help="pairs to audit (JSONL)")
    aud.add_argument("--top", type=_positive_int, default=20,
                     help="rows of the table (largest δ first, then the smallest margins; default %(default)s)")  # fmt: skip
    aud.add_argument("--lam", type=float, default=None, help="λ of the flagging rule (default: the run's)")
    aud.add_argument("--csv", type=Path, default=None, help="also write every pair's δ as CSV")
    aud.add_argument("--ragged", action="store_true", help="accept segments of different lengths (as train-reward)")
    aud.add_argument(
        "--device", choices=("cpu", "cuda", "auto"), default="cpu", help="device of the model (default cpu)"
    )
    aud.add_argument("--json", action="store_true", help="print one JSON object")
    aud.add_argument("--config", type=Path, default=None, help=_CONFIG_HELP)

    dpo = sub.add_parser("dpo", help="R³M-DPO vs DPO baselines: a small causal LM (--data) or the exact toy (--toy)")
    dpo.add_argument("--data", type=Path, default=None, help="TRL preference JSONL (prompt, chosen, rejected)")
    dpo.add_argument("--eval-data", type=Path, default=None, help="held-out TRL JSONL for implicit-reward accuracy")
    dpo.add_argument("--model", default=None, help="local model folder (default: a tiny GPT-2 built from scratch)")
    dpo.add_argument("--toy", action="store_true", help="the exact toy DPO bandit instead of a language model")
    dpo.add_argument(
        "--losses",
        default=None,
        help="comma list: r3m, sigmoid, conservative, robust, ipo (--toy: also hinge); default r3m,sigmoid",
    )
    dpo.add_argument("--lam", type=float, default=None,
                     help="R³M λ on the β-scaled logit (default 0.75 with --data, the middle of the paper's DPO grid "
                     "0.65-0.85; 0.5 with --toy, as in the spec's toy)")  # fmt: skip
    dpo.add_argument("--beta", type=float, default=None, help="DPO β (default 0.1)")
    dpo.add_argument("--epochs", type=_positive_int, default=None, help="epochs (default 3; the paper's 7B runs: 1)")
    dpo.add_argument("--pairs", type=int, default=None, help="labelled pairs of the toy (default 6000; --toy only)")
    dpo.add_argument("--flip-rate", type=float, default=None, help="flipped labels of the toy (default 0; --toy only)")
    dpo.add_argument(
        "--lr",
        type=float,
        default=None,
        help="AdamW learning rate of the LM run (default 5e-3 for the tiny model, 5e-6 with --model)",
    )
    dpo.add_argument("--batch-size", type=int, default=None, help="pairs per optimizer step of the LM run (default 16)")
    dpo.add_argument("--max-length", type=int, default=None,
                     help="truncate prompt + completion to this many tokens (LM run; default: keep whole)")  # fmt: skip
    dpo.add_argument("--resume", action="store_true",
                     help="resume each loss's run in --out from its checkpoint, with the run's settings where not given")  # fmt: skip
    _add_common(
        dpo,
        out="folder: config.json, results.json and one run subfolder per loss (default runs/dpo); --toy: the two "
        "files, when given",
    )

    bench = sub.add_parser("bench", help="the paper's claims side by side (see benchmarks/)")
    bench.add_argument("--quick", action="store_true", help="smallest settings (seconds to a minute each)")
    bench.add_argument("--only", default=None, help="run one benchmark: synthetic, dpo, control or overhead")
    bench.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5; quick 1)")
    bench.add_argument(
        "--out", type=Path, default=Path("bench-results"), help="folder for JSON and Markdown (default %(default)s)"
    )
    bench.add_argument(
        "--fresh", action="store_true", help="start over: ignore the finished cells an interrupted run left in --out"
    )
    return parser


def _load_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"--config: cannot read {path}: {exc.strerror}") from exc
    if path.suffix.lower() == ".toml":
        try:
            tomllib = importlib.import_module("tomllib")
        except ModuleNotFoundError as exc:  # Python 3.10
            raise ValueError("--config: TOML needs Python >= 3.11; use a JSON file") from exc
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"--config: {path} is not valid TOML: {exc}") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--config: {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"--config: {path} must hold one table/object of options")
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name in values:
            raise ValueError(f"--config: {path} sets {name!r} twice (keys differing only in - and _)")
        values[name] = value
    return values


def _config_default(action: argparse.Action, key: str, value: object, path: Path) -> object:
    """A file value for ``action``, converted and checked as the command line would."""
    where = f"--config: {path}: {key}"
    if action.nargs == 0:  # a switch such as --json or --resume
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{where} must be a string or a number, got {value!r}")
    try:
        converted = action.type(str(value)) if callable(action.type) else str(value)
    except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
        raise ValueError(f"{where}={value!r} is not valid: {exc}") from exc
    if action.choices is not None and converted not in action.choices:
        raise ValueError(f"{where} must be one of {', '.join(map(str, action.choices))}, got {value!r}")
    return converted


def _apply_config(
    parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str] | None
) -> argparse.Namespace:
    """Parse again with the ``--config`` file's values as the command's defaults (the command line wins).

    ``train-reward`` reads the TrainConfig fields of the file itself (``_train_config``: any field, also those
    without a flag); the other keys must be options of the command. Required options stay on the command line.
    """
    sub = _subparser(parser, args.command)
    # every long flag (--teacher-param, its alias --rate) and the destination name, - read as _
    names = {name: a for a in sub._actions if a.dest not in ("help", "config") and a.option_strings
             for name in {a.dest, *(o.lstrip("-").replace("-", "_") for o in a.option_strings)}}  # fmt: skip
    loaded = _load_config_file(args.config)
    values = loaded
    if args.command == "train-reward":
        from r3m.config import TrainConfig

        values = {k: v for k, v in loaded.items() if k not in {f.name for f in dataclasses.fields(TrainConfig)}}
    unknown = sorted(set(values) - set(names))
    if unknown:
        known = sorted(n.replace("_", "-") for n, a in names.items() if not a.required and a.dest != "resume")
        known += ["any TrainConfig field"] if args.command == "train-reward" else []
        raise ValueError(f"--config: {args.config}: unknown key(s) {unknown} for {args.command}; known: {known}")
    defaults: dict[str, tuple[str, object]] = {}
    for key, value in values.items():
        action = names[key]
        flag = action.option_strings[0]
        if action.required or action.dest == "resume":
            why = "required" if action.required else "a file that always resumes could never start the run"
            raise ValueError(f"--config: {args.config}: {key} belongs on the command line ({flag}; {why})")
        if action.dest in defaults:
            raise ValueError(f"--config: {args.config}: {defaults[action.dest][0]} and {key} both set {flag}")
        defaults[action.dest] = (key, _config_default(action, key, value, args.config))
    unset = object()  # which of the file's options the command line also gives: parse once with a marker
    sub.set_defaults(**dict.fromkeys(defaults, unset))
    probe = parser.parse_args(argv)
    sub.set_defaults(**{dest: value for dest, (_, value) in defaults.items()})
    reparsed = parser.parse_args(argv)
    reparsed.config_values = loaded  # read once: train-reward's TrainConfig fields come from here too
    # the options the file set and the command line did not: a command drops those that do not apply
    reparsed.from_config = {dest for dest in defaults if getattr(probe, dest) is unset}
    return reparsed


def _train_config(args: argparse.Namespace) -> Any:
    from r3m.config import TrainConfig

    kinds = {f.name: str(f.type) for f in dataclasses.fields(TrainConfig)}
    values: dict[str, Any] = {k: v for k, v in getattr(args, "config_values", {}).items() if k in kinds}
    for name, value in values.items():  # a quoted number converts, as the file's option keys do ("5" for --epochs 5)
        if kinds[name] in ("int", "float") and isinstance(value, str):
            try:
                values[name] = int(value) if kinds[name] == "int" else float(value)
            except ValueError:
                expected = "an integer" if kinds[name] == "int" else "a number"
                raise ValueError(f"--config: {args.config}: {name} must be {expected}, got {value!r}") from None
    from_file = set(values)
    for name in _TRAIN_FIELDS:
        flag = getattr(args, name, None)
        if flag is not None:
            values[name] = flag
            from_file.discard(name)
    args.train_values = dict(values)  # what the file and the flags set (a resume takes the rest from the run)
    values = _resumed_values(args, values)
    try:
        return TrainConfig.from_dict(values)
    except ValueError as exc:  # TrainConfig's messages begin with the field's name: say when it came from the file
        if str(exc).split(" ", 1)[0] in from_file:
            raise ValueError(f"--config: {args.config}: {exc}") from exc
        raise


def _resumed_values(args: argparse.Namespace, values: dict[str, Any]) -> dict[str, Any]:
    """With ``--resume``, the run's own settings under those given (a bare ``--resume`` finishes the run as
    begun); checked as one config, so a setting valid only with the run's others (``--tau0 2`` with its
    ``tau_max``) is not refused against the defaults. The device is the run's unless given or unavailable."""
    out = args.out or Path("runs") / "reward"
    if not args.resume or not (out / "checkpoint.pt").is_file():
        return values
    import torch

    from r3m.trainer import read_checkpoint

    saved = dict(read_checkpoint(out / "checkpoint.pt")["config"])
    if "device" not in values and saved.get("device") == "cuda" and not torch.cuda.is_available():
        warnings.warn(f"the run in {out} trained on cuda, which is not available here: it continues on the cpu",
                      UserWarning, stacklevel=2)  # fmt: skip
        saved["device"] = "cpu"
    return {**saved, **values}


def main(argv: list[str] | None = None) -> int:
    """Run ``r3m`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    log = logging.getLogger("r3m")
    with _INSTALL_LOCK:  # a main() inside another (or in another thread) keeps the outer one's: restored once
        outermost = not _INSTALLED
        if outermost:
            _INSTALLED[:] = [warnings.formatwarning, _CommandLog(args.command), log.propagate]
            warnings.formatwarning = _warning_formatter(parser, args.command, args)
            log.addHandler(_INSTALLED[1])
            log.propagate = False
    try:
        return _dispatch(parser, args, argv)
    except BrokenPipeError:  # stdout closed early (`| head`): stop quietly, as command-line tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        return 141
    finally:
        if outermost:
            with _INSTALL_LOCK:
                warnings.formatwarning, handler, log.propagate = _INSTALLED
                log.removeHandler(handler)
                _INSTALLED.clear()


# Files the commands read, named by their flag when missing (not as "[Errno 2] ... 'x.jsonl'").
_INPUT_FILES = (("data", "--data"), ("eval_data", "--eval-data"), ("run", "--run"), ("config", "--config"))


_OUTPUTS = (("out", "--out"), ("csv", "--csv"), ("plot", "--plot"))


def _unwritable_output(args: argparse.Namespace, exc: OSError) -> str | None:
    """``--out PATH: cannot write there (reason)`` when ``exc`` is about an output named by its flag (the path
    itself, a file in it, or the hidden temporary sibling an atomic write renames into place)."""
    names = [Path(n) for n in (exc.filename, exc.filename2) if isinstance(n, (str, os.PathLike))]
    for dest, flag in _OUTPUTS:
        path = getattr(args, dest, None)
        if path is None:
            continue
        out = Path(path)
        blocking = next((a for a in out.parents if a.is_file()), None)  # a file where a folder must be
        for name in names:
            sibling = name.parent == out.parent and name.name.startswith(f".{out.name}.")  # an atomic write's
            on_the_way = name.is_relative_to(out) or out.is_relative_to(name)  # the output, in it, a folder above
            # a missing file in --out is a read (a run's damaged checkpoint), not a write: left as it is
            writing = not isinstance(exc, FileNotFoundError) or name.name.endswith(".tmp") or blocking is not None
            if sibling or (on_the_way and writing):
                reason = f"{blocking} is a file" if blocking is not None else exc.strerror or type(exc).__name__
                return f"{flag} {path}: cannot write there ({reason})"
    return None


def _missing_input(args: argparse.Namespace, exc: OSError) -> str | None:
    """``--data x.jsonl: no such file`` (or ``is a folder``) when ``exc`` is about an input named by its flag."""
    if not isinstance(exc, (FileNotFoundError, IsADirectoryError)) or exc.filename is None:
        return None
    for dest, flag in _INPUT_FILES:
        path = getattr(args, dest, None)
        if path is None:
            continue
        if isinstance(exc, FileNotFoundError) and not Path(path).exists() and Path(exc.filename).is_relative_to(path):
            return f"{flag} {path}: no such file or folder"
        if isinstance(exc, IsADirectoryError) and Path(exc.filename) == Path(path):
            return f"{flag} {path} is a folder; give the file"
    return None


# what to change when a command runs out of memory (the options that size its work)
_SIZE_FLAGS = {
    "make-data": "lower --n, --T or --D (or --seg-len)",
    "dpo": "lower --pairs (--toy) or --batch-size / --max-length",
    "train-reward": "lower --batch-size or the size of --data",
    "bench": "try --quick",
    "demo": "free some memory (the demo's sizes are fixed)",
}


def _out_of_memory(exc: BaseException) -> str | None:
    """``""`` or ``" (tried to allocate N GiB)"`` when ``exc`` is an allocation failure of Python or torch, else None."""
    text = str(exc)
    if not (isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text):
        return None
    tried = re.search(r"allocate (\d+) bytes", text)
    return f" (tried to allocate {int(tried.group(1)) / 2**30:.3g} GiB)" if tried else ""


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str] | None) -> int:
    if args.command == "info":
        from r3m.environment import collect, format_table

        report = collect()
        print(json.dumps(report, indent=2) if args.json else format_table(report))
        return 0
    from r3m import commands

    handlers = {
        "demo": commands.demo,
        "make-data": commands.make_data,
        "train-reward": commands.train_reward,
        "audit": commands.audit,
        "dpo": commands.dpo,
        "bench": commands.bench,
    }
    try:
        if getattr(args, "config", None) is not None:
            args = _apply_config(parser, args, argv)
        if args.command == "train-reward":
            args.train_config = _train_config(args)
        if args.command == "bench":  # the command line its records name
            args.command_line = shlex.join(["r3m", *(sys.argv[1:] if argv is None else argv)])
        return handlers[args.command](args)
    except BrokenPipeError:
        raise
    except (ValueError, ImportError, OSError) as exc:
        missing = (_missing_input(args, exc) or _unwritable_output(args, exc)) if isinstance(exc, OSError) else None
        message = (
            _flag_names(parser, args.command, str(exc), args)
            if type(exc) in (ValueError, FileNotFoundError)
            else str(exc)
        )
        message = " ".join(line.strip() for line in (missing or message).splitlines() if line.strip())  # one line
        _subparser(parser, args.command).error(message)  # its usage, as for a parse error
    except (MemoryError, RuntimeError) as exc:  # a size too large for this machine: one line naming the sizes
        size = _out_of_memory(exc)
        if size is None:
            raise
        _subparser(parser, args.command).error(
            f"not enough memory{size}; {_SIZE_FLAGS.get(args.command, 'use a smaller --data')}"
        )
    except KeyboardInterrupt:  # one line, not a traceback; the checkpoints written so far stay
        resumable = args.command in _RESUMABLE and not getattr(args, "toy", False)
        hint = (
            "; rerun with --resume to continue from the last checkpoint in --out (one per epoch)" if resumable else ""
        )
        if args.command == "bench":
            hint = "; the same command again resumes from the finished seeds kept in --out (--fresh starts over)"
        print(f"r3m {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
