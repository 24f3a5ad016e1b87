"""Command line interface of adapref: ``adapref COMMAND`` (also ``python -m adapref``).

Only the standard library is imported at module level, so ``adapref --help`` and
``adapref --version`` answer in well under half a second; each command imports what it needs.
Tables go to stdout, logs and progress to stderr; bad arguments exit 2 with one line.
"""

from __future__ import annotations

import argparse
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

from adapref._version import __version__

_TRAIN_FIELDS = {
    "loss": str, "rho0": float, "tau0": float, "tau_max": float, "solver": str, "n_iter": int, "tau_init": float,
    "clamp_tau_max": bool, "temperature": float, "beta": float, "epochs": int, "lr": float, "batch_size": int, "weight_decay": float,
    "seed": int, "device": str,
}  # fmt: skip
_RESUMABLE = ("train-reward", "dpo")  # commands that checkpoint into --out
# Library argument names whose value a command's flag of another name passes (make-data's --n is n_pairs):
# an error or warning names the flag, not the argument.
_PARAM_ALIASES = {
    "make-data": {"n_pairs": "n", "dim": "D", "env_id": "env", "eps": "teacher_param", "temperature": "teacher_param"},
    "dpo": {"n_pairs": "pairs"},
}
_PACKAGE_DIR = Path(__file__).resolve().parent
# dpo's settings of the language-model run, which --toy refuses: a --toy message does not name them
_TOY_REFUSED = ("tau0", "solver", "n_iter", "clamp_tau_max", "lr", "batch_size", "max_length", "model")
_INSTALL_LOCK = threading.Lock()
_INSTALLED: list[Any] = []  # the formatter and log handler of the outermost main() running, while it runs


class _Parser(argparse.ArgumentParser):
    """``ArgumentParser`` without abbreviations: ``dpo --n`` quietly meant ``--n-iter``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


class _CommandLog(logging.Handler):
    """The package's log records as ``adapref COMMAND: warning: ...`` on stderr, each message once (the metrics
    warn per call: once per loss, once per metric, for one cause)."""

    def __init__(self, command: str) -> None:
        super().__init__(logging.WARNING)
        self.command = command
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        text = " ".join(part.strip() for part in record.getMessage().splitlines() if part.strip())
        if text not in self.seen:
            self.seen.add(text)
            print(f"adapref {self.command}: {record.levelname.lower()}: {text}", file=sys.stderr)


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


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub: argparse.ArgumentParser = action.choices[command]
    return sub


def _flag_names(
    parser: argparse.ArgumentParser, command: str, message: str, args: argparse.Namespace | None = None
) -> str:
    """``message`` with the library's argument names replaced by the command's flags (``tau_max`` -> ``--tau-max``).

    The name that opens the message is replaced (``T must be an int >= 1``); elsewhere only names with ``_``
    or a digit (``tau0``), which cannot be ordinary words, and ``name=True`` of a switch becomes the switch. A
    message that already names a flag (it opens with ``--``) is left as it is.
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
    """``warnings.formatwarning`` of a command: ``adapref COMMAND: warning: ...`` on one line, each message once,
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
        return f"adapref {command}: warning: {text}\n"

    return format_warning


def _add_common(p: argparse.ArgumentParser, *, out: str | None = "output folder", device: bool = True) -> None:
    p.add_argument("--seed", type=_seed, default=None, help="random seed (default 0)")
    if device:
        p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None, help="device (default cpu)")
    if out is not None:
        p.add_argument("--out", type=Path, default=None, help=out)
    p.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")


def _add_loss_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("loss (defaults: the paper's control setting)")
    g.add_argument("--loss", choices=("ada", "ada-quad", "bt", "hinge", "ipo"), default=None, help="default ada")
    g.add_argument("--rho0", type=float, default=None, help="KL radius ρ0 (default 0.1)")
    g.add_argument("--tau0", type=float, default=None, help="lower bound τ0 (default 0.1)")
    g.add_argument("--tau-max", dest="tau_max", type=float, default=None, help="upper bound τ_max (default 1)")
    g.add_argument("--solver", choices=("exact", "newton", "newton-official"), default=None, help="default exact")
    g.add_argument("--n-iter", dest="n_iter", type=int, default=None, help="Newton iterations K (default 3)")
    g.add_argument("--tau-init", dest="tau_init", type=float, default=None, help="Newton start τ^(0) (default 1)")
    g.add_argument("--clamp-tau-max", dest="clamp_tau_max", action="store_const", const=True, default=None,
                   help="ada-quad: also clamp τ at --tau-max, as the authors' DPO trainer (paper: no upper bound)")  # fmt: skip
    g.add_argument("--temperature", type=float, default=None, help="temperature of the bt loss (default 1)")
    g.add_argument("--beta", type=float, default=None, help="scale of the hinge/ipo losses (default 1)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``adapref``, one sub-parser per command."""
    parser = _Parser(
        prog="adapref",
        description="Adaptive preference scaling (DRO) for reward learning and DPO.",
        epilog='Paper: Hong, Li, Bukharin, Li, Jiang, Yang, Zhao, "Adaptive Preference Scaling for Reinforcement '
        'Learning with Human Feedback", NeurIPS 2024, arXiv:2406.02764.',
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = sub.add_parser("info", help="print package, python and dependency versions, threads and CUDA")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    demo = sub.add_parser("demo", help="Bradley-Terry vs the adaptive loss on synthetic pairs (seconds)")
    _add_common(demo, out=None)

    make = sub.add_parser("make-data", help="write preference pairs with a known reward as JSONL")
    make.add_argument("--source", choices=("synthetic", "gym"), default="synthetic", help="default %(default)s")
    make.add_argument("--n", type=_positive_int, default=4000, help="number of pairs (default %(default)s)")
    make.add_argument("--T", type=int, default=None, help="steps per segment (synthetic; default 10)")
    make.add_argument("--D", type=int, default=None, help="features per step (synthetic; default 8)")
    make.add_argument(
        "--reward",
        choices=("linear", "mlp", "smooth-mlp"),
        default=None,
        help="true reward (synthetic; see adapref.TrueReward; default linear)",
    )
    make.add_argument("--env", default=None, help="gymnasium id (gym; default Pendulum-v1), e.g. HalfCheetah-v5")
    make.add_argument(
        "--seg-len", type=int, default=None, help="segment length (gym; default 25; the official code uses 1)"
    )
    make.add_argument("--policy", choices=("noisy-sine", "random"), default=None,
                      help="policy that rolls out the segments (gym; default noisy-sine, a noise-scaled scripted one)")  # fmt: skip
    make.add_argument(
        "--teacher", choices=("stochastic", "oracle", "flip"), default="stochastic", help="default %(default)s"
    )
    make.add_argument("--teacher-param", type=float, default=None,
                      help="temperature of stochastic (default 1) or flip rate of flip (default 0.1)")  # fmt: skip
    _add_common(make, out="JSONL file to write (default pairs.jsonl)", device=False)

    train = sub.add_parser("train-reward", help="train a segment reward model on a JSONL file")
    train.add_argument("--data", type=Path, required=True, help="pairs from make-data (JSONL)")
    train.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="held-out share for validation accuracy (default 0.1; on --resume: the run's)",
    )
    train.add_argument("--ragged", action="store_true",
                       help="accept segments of different lengths (padded at the end; the reward sums the real steps)")  # fmt: skip
    train.add_argument("--epochs", type=int, default=None, help="default 5")
    train.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-3)")
    train.add_argument("--batch-size", dest="batch_size", type=int, default=None, help="default 64")
    train.add_argument("--config", type=Path, default=None, help="TOML or JSON file of TrainConfig fields")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint (same settings and data; --epochs may grow)",
    )
    _add_loss_flags(train)
    _add_common(train, out="run folder (default runs/reward)")

    report = sub.add_parser("tau-report", help="τ histogram and τ against preference strength for a trained run")
    report.add_argument("--run", type=Path, required=True, help="folder written by train-reward")
    report.add_argument("--data", type=Path, required=True, help="pairs (JSONL); strength enables the quintile table")
    report.add_argument("--plot", type=Path, default=None, help="write a PNG histogram of τ (needs matplotlib)")
    report.add_argument("--ragged", action="store_true", help="accept segments of different lengths (as train-reward)")
    report.add_argument("--json", action="store_true", help="print one JSON object")

    dpo = sub.add_parser("dpo", help="Ada-DPO vs DPO baselines: a small causal LM (--data) or the exact toy (--toy)")
    dpo.add_argument("--data", type=Path, default=None, help="TRL preference JSONL (prompt, chosen, rejected)")
    dpo.add_argument("--eval-data", type=Path, default=None, help="held-out TRL JSONL for implicit-reward accuracy")
    dpo.add_argument("--model", default=None, help="local model folder (default: a tiny GPT-2 built from scratch)")
    dpo.add_argument("--toy", action="store_true", help="the exact toy DPO bandit instead of a language model")
    dpo.add_argument(
        "--losses",
        default=None,
        help="comma list of sigmoid, ada, ipo, hinge, cdpo, rdpo (toy) or ada, ada-quad, sigmoid, ipo, hinge (LM); "
        "default sigmoid,ada",
    )
    dpo.add_argument("--beta", type=float, default=None, help="DPO β (default 0.1)")
    dpo.add_argument("--rho0", type=float, default=None, help="Ada-DPO ρ0 (default 0.1)")
    dpo.add_argument(
        "--tau-max",
        dest="tau_max",
        type=float,
        default=None,
        help="Ada-DPO τ_max (default 5, the authors' DPO setting)",
    )
    dpo.add_argument("--tau0", type=float, default=None, help="Ada-DPO τ0 of the LM run (default 0.1)")
    dpo.add_argument("--solver", choices=("exact", "newton", "newton-official"), default=None,
                     help="τ solver of the LM run's Ada losses (default exact)")  # fmt: skip
    dpo.add_argument("--n-iter", dest="n_iter", type=int, default=None,
                     help="Newton iterations K of the LM run (default 5, the authors' DPO setting)")  # fmt: skip
    dpo.add_argument("--clamp-tau-max", dest="clamp_tau_max", action="store_const", const=True, default=None,
                     help="ada-quad LM run: clamp τ at --tau-max, as the authors' DPO trainer (paper: no bound)")  # fmt: skip
    dpo.add_argument("--flip-rate", type=float, default=None, help="share of flipped labels (default 0; --toy only)")
    dpo.add_argument("--epochs", type=_positive_int, default=None,
                     help="epochs (default 3; a --resume without it: the run's own)")  # fmt: skip
    dpo.add_argument("--pairs", type=int, default=None, help="number of labelled pairs (default 6000; --toy only)")
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
                     help="resume each loss's LM run in --out from its checkpoint, with the run's settings where not given")  # fmt: skip
    _add_common(
        dpo,
        out="folder: config.json, results.json and one run subfolder per loss (default runs/dpo); --toy: the two "
        "files, when given",
    )

    bench = sub.add_parser("bench", help="the paper's claims side by side (see benchmarks/)")
    bench.add_argument("--quick", action="store_true", help="smallest settings (seconds to a minute each)")
    bench.add_argument("--only", default=None, help="run one benchmark: synthetic, dpo, control, flips or overhead")
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
    if path.suffix == ".toml":
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
        raise ValueError(f"--config: {path} must hold one table/object of TrainConfig fields")
    return data


def _train_config(args: argparse.Namespace) -> Any:
    from adapref.commands import make_train_config

    values: dict[str, Any] = _load_config_file(args.config) if getattr(args, "config", None) else {}
    from_file = set(values)
    for name in _TRAIN_FIELDS:
        flag = getattr(args, name, None)
        if flag is not None:
            values[name] = flag
            from_file.discard(name)
    args.train_values = dict(values)  # what the file and the flags set (a resume takes the rest from the run)
    values = _resumed_values(args, values)
    try:
        return make_train_config(values, args.train_values)
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

    from adapref.trainer import read_checkpoint

    saved = dict(read_checkpoint(out / "checkpoint.pt")["config"])
    if "device" not in values and saved.get("device") == "cuda" and not torch.cuda.is_available():
        warnings.warn(f"the run in {out} trained on cuda, which is not available here: it continues on the cpu",
                      UserWarning, stacklevel=2)  # fmt: skip
        saved["device"] = "cpu"
    return {**saved, **values}


def main(argv: list[str] | None = None) -> int:
    """Run ``adapref`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    log = logging.getLogger("adapref")
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
        from adapref.environment import collect, format_table

        report = collect()
        print(json.dumps(report, indent=2) if args.json else format_table(report))
        return 0
    from adapref import commands

    handlers = {
        "demo": commands.demo,
        "make-data": commands.make_data,
        "train-reward": commands.train_reward,
        "tau-report": commands.tau_report,
        "dpo": commands.dpo,
        "bench": commands.bench,
    }
    try:
        if args.command == "train-reward":
            args.train_config = _train_config(args)
        if args.command == "bench":  # the command line its records name
            args.command_line = shlex.join(["adapref", *(sys.argv[1:] if argv is None else argv)])
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
        print(f"adapref {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
