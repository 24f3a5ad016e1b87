"""Command line interface of marladona: ``marladona COMMAND`` (also ``python -m marladona``).

Only the standard library is imported at module level, so ``marladona --help`` and
``marladona --version`` answer in well under half a second; each command imports what it needs
(:mod:`marladona.commands` holds the work). Tables go to stdout, progress bars to stderr.

Exit status: 0 ok, 2 bad argument or input (one line), 130 interrupted (a training run keeps its last
periodic checkpoint; ``--resume`` continues from it).
"""

from __future__ import annotations

import argparse
import json
import sys

from marladona._version import __version__

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

TRAIN_PRESETS = ("cpu-small", "cpu-idle", "cpu-3v3", "paper")
"""Names of :data:`marladona.train.TRAIN_PRESETS` (kept here so ``--help`` needs no import; a test checks them)."""


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return v


def team_sizes_arg(text: str) -> tuple[tuple[int, int], ...]:
    """``1v1,3v3,2v3`` -> ((1, 1), (3, 3), (2, 3))."""
    out = []
    for part in text.split(","):
        b, sep, r = part.strip().lower().partition("v")
        if not sep or not b.isdigit() or not r.isdigit() or int(b) < 1 or int(r) < 1:
            raise argparse.ArgumentTypeError(f"team sizes must look like 1v1,3v3 (each >= 1), got {text!r}")
        out.append((int(b), int(r)))
    return tuple(out)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``marladona``, one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="marladona",
        description="Multi-agent RL robot soccer: batched torch simulator, PettingZoo API, PPO with a global entity encoder.",
        epilog='Paper: Li, Bjelonic, Klemm, Hutter, "MARLadona: Towards Cooperative Team Play Using Multi-Agent Reinforcement Learning", ICRA 2025, arXiv:2409.20326.',
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    tr = sub.add_parser("train", help="train a policy with PPO + GEE (tqdm progress, CSV/JSONL logs, checkpoints)")
    tr.add_argument("--preset", choices=TRAIN_PRESETS, default="cpu-small", help="training preset (default cpu-small)")
    tr.add_argument("--out", required=True, help="run directory (log.csv, log.jsonl, checkpoint.pt)")
    tr.add_argument("--minutes", type=_positive_float, help="training time budget in total, counting resumed time")
    tr.add_argument("--iterations", type=_positive_int, help="PPO iterations in total, counting resumed ones")
    tr.add_argument("--num-envs", type=_positive_int, help="games in parallel (default: the preset's)")
    tr.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 (default cpu)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--checkpoint-every", type=_positive_int, default=50, help="iterations between checkpoints")
    tr.add_argument("--keep-checkpoints", action="store_true", help="also keep model_<iteration>.pt snapshots")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    tr.add_argument("--compile", action="store_true",
                    help="torch.compile the simulator's physics (the same dynamics up to float rounding, so runs "
                         "diverge from eager ones; ~4x faster simulator on a GPU)")  # fmt: skip

    ev = sub.add_parser("eval", help="W/D/L of a checkpoint against an opponent, with Wilson 95%% intervals")
    ev.add_argument("checkpoint", help="policy checkpoint (checkpoint.pt of a run, or a shipped policy)")
    ev.add_argument("--opponent", default="heuristic", help="idle | random | heuristic[:strength] | marladona | CKPT")
    ev.add_argument("--team-sizes", type=team_sizes_arg, default=((1, 1),), help="e.g. 1v1,3v3 (default 1v1)")
    ev.add_argument("--episodes", type=_positive_int, default=1000, help="games per team size (default 1000)")
    ev.add_argument("--level", type=int, default=0, help="field level 0-3 (default 0)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--json", help="also write the result as JSON to this path")

    rp = sub.add_parser("replay", help="write an animated GIF (or MP4) of one game between two players")
    rp.add_argument("blue", help="blue player: a checkpoint or idle | random | heuristic[:s] | marladona")
    rp.add_argument("red", help="red player (same choices)")
    rp.add_argument("--out", required=True, help="output file, .gif or .mp4")
    rp.add_argument("--team-sizes", type=team_sizes_arg, default=((1, 1),), help="one size pair, e.g. 2v2")
    rp.add_argument("--level", type=int, default=0)
    rp.add_argument("--steps", type=_positive_int, default=375, help="policy steps at most (default 375 = 30 s)")
    rp.add_argument("--seed", type=int, default=0)

    be = sub.add_parser("bench", help="simulator throughput (the full benchmark beside VMAS: make bench PKG=marladona)")
    be.add_argument("--num-envs", type=_positive_int, default=4096)
    be.add_argument("--team-size", type=_positive_int, default=3)
    be.add_argument("--steps", type=_positive_int, default=50, help="timed policy steps (after 5 warm-up steps)")
    be.add_argument("--threads", type=_positive_int, help="torch intra-op threads (default: torch's)")
    be.add_argument("--device", default="cpu")

    de = sub.add_parser("demo", help="the shipped 1v1 policy against idle and heuristic opponents, W/D/L and a GIF")
    de.add_argument("--out", default="marladona-demo.gif", help="GIF of one game against the heuristic")
    de.add_argument("--episodes", type=_positive_int, default=200, help="games per opponent (default 200)")
    de.add_argument("--train", action="store_true", help="retrain the 1v1 policy briefly instead of the shipped one")
    de.add_argument("--minutes", type=_positive_float, default=2.0, help="training time with --train (default 2)")

    info = sub.add_parser("info", help="print package, python and dependency versions, threads and CUDA")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``marladona`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        from marladona.environment import collect, format_table

        report = collect()
        print(json.dumps(report, indent=2) if args.json else format_table(report))
        return EXIT_OK
    from marladona import commands

    try:
        return int(getattr(commands, f"cmd_{args.command}")(args))
    except ValueError as exc:
        print(f"marladona {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as exc:
        print(f"marladona {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"marladona {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
