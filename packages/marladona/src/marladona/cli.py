"""Command line interface of marladona: ``marladona COMMAND`` (also ``python -m marladona``).

Only the standard library is imported at module level, so ``marladona --help`` and
``marladona --version`` answer in well under half a second; each command imports what it needs.
"""

from __future__ import annotations

import argparse
import json
import sys

from marladona._version import __version__

EXIT_NOT_READY = 3
"""Exit status of a command whose method has not landed yet (``make demo`` reports it)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``marladona``, one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="marladona",
        description="Multi-agent RL robot soccer: batched torch simulator, PettingZoo API, PPO with a global entity encoder.",
        epilog='Paper: Li, Bjelonic, Klemm, Hutter, "MARLadona: Towards Cooperative Team Play Using Multi-Agent Reinforcement Learning", ICRA 2025, arXiv:2409.20326.',
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = sub.add_parser("info", help="print package, python and dependency versions, threads and CUDA")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    sub.add_parser("demo", help="a short real run on built-in data (not yet available)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``marladona`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "info":
        from marladona.environment import collect, format_table

        report = collect()
        print(json.dumps(report, indent=2) if args.json else format_table(report))
        return 0
    if args.command == "demo":
        print(
            "marladona demo: the method is not implemented yet (it lands with issue #8); nothing was run.",
            file=sys.stderr,
        )
        return EXIT_NOT_READY
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown commands
