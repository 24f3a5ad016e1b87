"""Command line interface of cosmos-optim: ``cosmos-optim COMMAND`` (also ``python -m cosmos_optim``).

Only the standard library is imported at module level, so ``cosmos-optim --help`` and
``cosmos-optim --version`` answer in well under half a second; each command imports what it needs.
"""

from __future__ import annotations

import argparse
import json
import sys

from cosmos_optim._version import __version__

EXIT_NOT_READY = 3
"""Exit status of a command whose method has not landed yet (``make demo`` reports it)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cosmos-optim``, one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="cosmos-optim",
        description="COSMOS, a drop-in torch.optim.Optimizer: SOAP on the leading eigensubspace, Muon on the rest.",
        epilog='Paper: Liu, Xu, Zhang, Kang, Li, Liang, Chen, Zhao, "COSMOS: A Hybrid Adaptive Optimizer for Memory-Efficient Training of LLMs", arXiv:2502.17410 (2025).',
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = sub.add_parser("info", help="print package, python and dependency versions, threads and CUDA")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    sub.add_parser("demo", help="a short real run on built-in data (not yet available)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``cosmos-optim`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "info":
        from cosmos_optim.environment import collect, format_table

        report = collect()
        print(json.dumps(report, indent=2) if args.json else format_table(report))
        return 0
    if args.command == "demo":
        print(
            "cosmos-optim demo: the method is not implemented yet (it lands with issue #3); nothing was run.",
            file=sys.stderr,
        )
        return EXIT_NOT_READY
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown commands
