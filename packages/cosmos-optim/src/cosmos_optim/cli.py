"""Command line interface of cosmos-optim: ``cosmos-optim COMMAND`` (also ``python -m cosmos_optim``).

Only the standard library is imported at module level, so ``cosmos-optim --help`` and
``cosmos-optim --version`` answer in well under half a second; each command imports what it needs.
Tables go to stdout, logs and progress bars to stderr; bad arguments exit 2 with one line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from pathlib import Path
from typing import Any

from cosmos_optim._version import __version__

OPTIMIZER_NAMES = ("adamw", "muon", "soap", "cosmos")

_TRAIN_FLAGS: dict[str, tuple[type, str]] = {
    "optimizer": (str, "adamw, muon, soap or cosmos (default cosmos)"),
    "lr": (float, "step size of the hidden matrices (all parameters for adamw/soap); default: the optimizer's "
                  "best on the default model (adamw 6e-3, muon 0.05, soap 1.6e-2, cosmos 4e-3)"),
    "adam_lr": (float, "AdamW lr of embeddings, head and norms for muon and cosmos (default 2e-3)"),
    "rank": (int, "COSMOS rank r (default 32)"),
    "gamma": (float, "weight of COSMOS's Muon part (default lr/adam_lr, the paper's heuristic)"),
    "weight_decay": (float, "decoupled weight decay (default 0)"),
    "steps": (int, "optimizer steps (default 200)"),
    "warmup": (int, "linear warm-up steps before the cosine decay (default 30)"),
    "min_lr_ratio": (float, "the cosine ends at this fraction of the lr (default 0.1)"),
    "batch_size": (int, "sequences per step (default 32)"),
    "seq_len": (int, "characters per sequence (default 128)"),
    "d_model": (int, "model width (default 128)"),
    "n_layer": (int, "transformer blocks (default 4)"),
    "n_head": (int, "attention heads (default 4)"),
    "grad_clip": (float, "global gradient-norm clip, 0 = off (default 1)"),
    "seed": (int, "seed of the weights and batches (default 0)"),
    "eval_every": (int, "steps between validation losses (default 25)"),
    "eval_batches": (int, "validation batches per evaluation (default 4)"),
    "checkpoint_every": (int, "steps between checkpoints (default 50)"),
    "threads": (int, "torch threads for the run (default: torch's)"),
    "device": (str, "cpu, cuda or auto (default cpu)"),
    "text": (str, "UTF-8 text file to train on (default: the bundled pydoc_data corpus)"),
}  # fmt: skip
"""Every ``TrainConfig`` field as a flag (``--adam-lr`` for ``adam_lr``): type and help."""

_CHOICES = {"optimizer": OPTIMIZER_NAMES, "device": ("cpu", "cuda", "auto")}


def _add_train_flags(p: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    g = p.add_argument_group("run settings (flags override --config, which overrides the defaults)")
    for name, (kind, text) in _TRAIN_FLAGS.items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        metavar = "FILE" if name == "text" else None
        g.add_argument(flag, dest=name, type=kind, default=None, choices=_CHOICES.get(name), metavar=metavar, help=text)
    g.add_argument("--config", type=Path, default=None, help="TOML or JSON file of run settings")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cosmos-optim``, one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="cosmos-optim",
        description="COSMOS, a drop-in torch.optim.Optimizer: SOAP on the leading eigensubspace, Muon on the rest.",
        epilog='Paper: Liu, Xu, Zhang, Kang, Li, Liang, Chen, Zhao, "COSMOS: A Hybrid Adaptive Optimizer for '
        'Memory-Efficient Training of LLMs", arXiv:2502.17410 (2025).',
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = sub.add_parser("info", help="print package, python and dependency versions, threads and CUDA")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    demo = sub.add_parser("demo", help="COSMOS vs AdamW on a small GPT and the bundled text (about a minute)")
    demo.add_argument("--steps", type=int, default=None, help="steps per optimizer (default 200)")
    demo.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    demo.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    demo.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None, help="device (default cpu)")
    demo.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")

    train = sub.add_parser("train", help="train a character-level GPT with one optimizer; checkpoints, --resume")
    _add_train_flags(train)
    train.add_argument("--out", type=Path, default=None, help="run folder (default runs/<optimizer>)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    train.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")

    compare = sub.add_parser("compare", help="several optimizers on the same model, data and seeds; table + PNG")
    compare.add_argument("--optimizers", default="adamw,muon,soap,cosmos", help="comma list (default: all four)")
    compare.add_argument("--lrs", default=None, help="per-optimizer lr, e.g. adamw=1e-2,cosmos=4e-3 "
                         "(default: each optimizer's best on the default model)")  # fmt: skip
    compare.add_argument("--seeds", type=int, default=1, help="seeds from --seed on (default 1)")
    _add_train_flags(compare, skip=("optimizer", "lr"))
    compare.add_argument("--out", type=Path, default=None, help="folder for runs, JSON and PNGs (default runs/compare)")
    compare.add_argument("--resume", action="store_true", help="reuse finished runs and continue interrupted ones")
    compare.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")

    memory = sub.add_parser("memory", help="optimizer-state bytes per optimizer for a GPT shape (from shapes)")
    memory.add_argument("--d-model", type=int, default=512, help="width (default 512)")
    memory.add_argument("--layers", type=int, default=12, help="transformer blocks (default 12)")
    memory.add_argument("--rank", type=int, default=64, help="COSMOS and GaLore rank (default 64)")
    memory.add_argument("--vocab", type=int, default=50257, help="vocabulary (default 50257, GPT-2)")
    memory.add_argument("--seq-len", type=int, default=1024, help="positions (default 1024)")
    memory.add_argument("--untied", action="store_true", help="a separate output head (default: tied)")
    memory.add_argument("--json", action="store_true", help="print one JSON object")

    steptime = sub.add_parser("steptime", help="full-step and optimizer-step time per optimizer, interleaved")
    steptime.add_argument("--optimizers", default="adamw,muon,soap,cosmos", help="comma list (default: all four)")
    steptime.add_argument("--d-model", type=int, default=512, help="width (default 512)")
    steptime.add_argument("--layers", type=int, default=2, help="transformer blocks (default 2)")
    steptime.add_argument("--heads", type=int, default=8, help="attention heads (default 8)")
    steptime.add_argument("--seq-len", type=int, default=128, help="sequence length (default 128)")
    steptime.add_argument("--batch-size", type=int, default=32, help="sequences per step (default 32)")
    steptime.add_argument("--rank", type=int, default=64, help="COSMOS rank (default 64)")
    steptime.add_argument("--repeats", type=int, default=8, help="timed rounds (default 8)")
    steptime.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    steptime.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None, help="device (default cpu)")
    steptime.add_argument("--json", action="store_true", help="print the rows as JSON")

    bench = sub.add_parser("bench", help="the benchmarks of benchmarks/run.py: lm, steptime, memory")
    bench.add_argument("--quick", action="store_true", help="smallest settings (seconds)")
    bench.add_argument("--only", default=None, help="run one benchmark: lm, ablation, steptime or memory")
    bench.add_argument("--out", type=Path, default=Path("bench-results"), help="folder for JSON, Markdown and PNG")
    bench.add_argument("--resume", action="store_true", help="lm: reuse finished runs found in --out")
    bench.add_argument("--threads", type=int, default=None, help="torch threads (default 2)")
    bench.add_argument("--steps", type=int, default=None, help="lm steps per run (default 200)")
    bench.add_argument("--seeds", type=int, default=None, help="lm seeds at the chosen lr (default 3)")
    bench.add_argument("--optimizers", default=None, help="comma list (default: all four)")
    return parser


def load_config_file(path: Path) -> dict[str, Any]:
    """The table of a TOML (``.toml``) or JSON file; unreadable or malformed files raise ``ValueError``."""
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
        raise ValueError(f"--config: {path} must hold one table/object of run settings")
    return data


def _train_config(args: argparse.Namespace) -> Any:
    from cosmos_optim.train import TrainConfig

    values: dict[str, Any] = load_config_file(args.config) if args.config is not None else {}
    for name in _TRAIN_FLAGS:
        flag = getattr(args, name, None)
        if flag is not None:
            values[name] = flag
    if args.command == "compare":
        values.pop("optimizer", None)
        values.pop("lr", None)
    return TrainConfig.from_dict(values)


def main(argv: list[str] | None = None) -> int:
    """Run ``cosmos-optim`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        from cosmos_optim.environment import collect, format_table

        report = collect()
        print(json.dumps(report, indent=2) if args.json else format_table(report))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from cosmos_optim import commands

    handlers = {
        "demo": commands.demo,
        "train": commands.train_command,
        "compare": commands.compare,
        "memory": commands.memory,
        "steptime": commands.steptime,
        "bench": commands.bench,
    }
    try:
        if args.command in ("train", "compare"):
            args.train_config = _train_config(args)
        return handlers[args.command](args)
    except (ValueError, ImportError, OSError, FloatingPointError) as exc:
        parser.error(f"{args.command}: {exc}")
