"""Command line interface of smurf-thp: ``smurf-thp COMMAND`` (also ``python -m smurf_thp``).

Only the standard library is imported at module level, so ``smurf-thp --help`` and
``smurf-thp --version`` answer in well under half a second; each command imports what it needs.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys

from smurf_thp._version import __version__

FORMATS = ("auto", "easytpp-pkl", "easytpp-json", "ifl", "csv")
EXIT_USAGE = 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _sampling(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-samples", type=int, default=100, help="samples per event (default 100)")
    p.add_argument("--steps", type=int, default=300, help="Langevin steps (default 300)")
    p.add_argument("--step-size", type=float, default=0.02, help="Langevin step size (default 0.02)")
    p.add_argument("--boundary", choices=("auto", "none", "reflect", "truncate"), default="auto",
                   help="Langevin boundary at 0 (default auto: none in log space, reflect in the bounded mean/none "
                        "spaces of a model trained with --set normalize=mean|none)")  # fmt: skip


def _trust_gaps(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-gaps", action="store_true",
                   help="use time_since_last_event as given (EasyTPP files that round it apart from the "
                   "absolute times), without checking it against diff(time_since_start)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``smurf-thp``, one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="smurf-thp",
        allow_abbrev=False,
        description="Score-matching Transformer Hawkes process with calibrated arrival-time intervals (SMURF-THP).",
        epilog='Paper: Li, Xu, Zuo, Jiang, Zhang, Zhao, Zha, "SMURF-THP: Score Matching-based UnceRtainty '
        'quantiFication for Transformer Hawkes Process", ICML 2023, arXiv:2310.16336. Exit status: 0 ok, '
        "2 bad argument or data.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sim = sub.add_parser("simulate", allow_abbrev=False, help="simulate train/dev/test splits with a known truth")
    sim.add_argument("--process", default="hawkes3",
                     help="preset: hawkes3, hawkes1, hawkes2, self-correcting, renewal-lognormal, time-marks")  # fmt: skip
    sim.add_argument("--params", default=None, help='a process as JSON, e.g. \'{"process": "hawkes-exp", ...}\'')
    sim.add_argument("--t-end", type=float, default=None, help="observation window per sequence")
    sim.add_argument("--n-seqs", default="600,100,200", help="TRAIN,DEV,TEST sequences (default 600,100,200)")
    sim.add_argument("--format", choices=FORMATS[1:], default="easytpp-pkl", help="file format (default easytpp-pkl)")
    sim.add_argument("--out", required=True, help="output directory")
    _common(sim)

    tr = sub.add_parser("train", allow_abbrev=False, help="train SMURF-THP or a baseline; checkpoints, --resume")
    tr.add_argument("--data", required=True, help="a data directory or file with train (and dev) splits")
    tr.add_argument("--format", choices=FORMATS, default="auto")
    _trust_gaps(tr)
    tr.add_argument("--model", default="smurf",
                    help="smurf, smurf-semi, flexible-mle, thp-mle, or an EasyTPP anchor (extra [easytpp]): "
                    "easytpp-thp, easytpp-sahp, easytpp-nhp, easytpp-intensityfree (default smurf)")  # fmt: skip
    tr.add_argument("--preset", default="cpu-small", help="cpu-small, so, retweet, mimic or financial")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a model setting (repeatable)")
    tr.add_argument("--epochs", type=int, default=20)
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--patience", type=int, default=5, help="epochs without a better dev loss before stopping")
    tr.add_argument("--out", required=True, help="run folder: model.pt, config.json, train_log.csv")
    tr.add_argument("--resume", action="store_true", help="continue from --out/model.pt")
    _common(tr)

    for name, text in (("evaluate", "metrics of a checkpoint on a split (vs the truth when known)"),
                       ("sample", "sample every predicted event of a split to .npz")):  # fmt: skip
        p = sub.add_parser(name, allow_abbrev=False, help=text)
        p.add_argument("--ckpt", required=True, help="a model.pt written by train")
        p.add_argument("--data", required=True)
        p.add_argument("--format", choices=FORMATS, default="auto")
        _trust_gaps(p)
        p.add_argument("--split", default="test")
        _sampling(p)
        _common(p)
        if name == "evaluate":
            p.add_argument("--ground-truth", default=None, help="ground_truth.json (default: the one in --data)")
            p.add_argument(
                "--choose-steps", action="store_true", help="pick the Langevin steps on the dev split (SMURF-THP only)"
            )
            p.add_argument("--out", default=None, help="write the metrics as JSON")
        else:
            p.add_argument("--out", required=True, help="the .npz file")

    pr = sub.add_parser("predict", allow_abbrev=False, help="interval and type probabilities of the next event")
    pr.add_argument("--ckpt", required=True)
    pr.add_argument("--history", required=True, help='JSON file {"times": [...], "types": [...]}')
    pr.add_argument("--confidence", type=float, default=0.9)
    pr.add_argument("--kind", choices=("central", "upper"), default="central")
    _sampling(pr)
    _common(pr)

    rep = sub.add_parser("report", allow_abbrev=False, help="reliability diagram, PIT histogram and metrics (PNG, md)")
    rep.add_argument("samples", nargs="+", help="samples .npz files written by `smurf-thp sample`")
    rep.add_argument("--labels", default=None, help="comma list, one per file (default: the file names)")
    rep.add_argument("--out", required=True, help="folder for reliability.png, pit_hist.png, report.md")
    rep.add_argument("--json", action="store_true")

    demo = sub.add_parser("demo", allow_abbrev=False, help="simulate, train a small SMURF-THP, compare with the truth")
    demo.add_argument("--epochs", type=int, default=8)
    demo.add_argument("--json", action="store_true")

    be = sub.add_parser(
        "bench", allow_abbrev=False, help="the benchmark of the spec (same as make bench): JSON + Markdown results"
    )
    be.add_argument("--quick", action="store_true", help="one tiny cell (a smoke run, seconds), not a measurement")
    be.add_argument("--out", default="smurf-thp-bench", help="results folder (default ./smurf-thp-bench)")
    be.add_argument("--jobs", type=int, default=2, help="worker processes of one thread each (default 2)")
    be.add_argument("--fresh", action="store_true", help="ignore per-run files of an interrupted run")
    be.add_argument("--anchors", action="store_true",
                    help="the EasyTPP anchors (THP, SAHP, NHP, IntensityFree; extra [easytpp]) beside SMURF-THP, the "
                    "MLE heads and the truth, instead of the main suite")  # fmt: skip

    info = sub.add_parser(
        "info", allow_abbrev=False, help="print package, python and dependency versions, threads and CUDA"
    )
    info.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``smurf-thp`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "info":
        from smurf_thp.environment import collect, format_table

        report = collect()
        print(json.dumps(report, indent=2) if args.json else format_table(report))
        return 0
    device = getattr(args, "device", "cpu")
    if device not in ("cpu", "auto") and not str(device).startswith("cuda"):
        print(f"smurf-thp {args.command}: error: --device must be cpu, cuda, cuda:N or auto, got {device!r}",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    if getattr(args, "device", "cpu") == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif getattr(args, "device", "cpu") not in ("cpu",):
        import torch

        if str(args.device).startswith("cuda") and not torch.cuda.is_available():
            print(f"smurf-thp {args.command}: error: --device {args.device}: CUDA is not available", file=sys.stderr)
            return EXIT_USAGE
    from smurf_thp import commands

    handlers = {"simulate": commands.simulate, "train": commands.train, "evaluate": commands.evaluate,
                "sample": commands.sample, "predict": commands.predict, "demo": commands.demo,
                "report": commands.report, "bench": commands.bench}  # fmt: skip
    try:
        return handlers[args.command](args)
    except (ValueError, OSError, ImportError) as exc:
        print(f"smurf-thp {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    except (RuntimeError, TypeError, IndexError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        # torch.load / torch.device refusals, a corrupt pickle
        where = f" (--ckpt {args.ckpt})" if getattr(args, "ckpt", None) else ""
        print(f"smurf-thp {args.command}: error{where}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
