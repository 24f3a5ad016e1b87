#!/usr/bin/env python3
"""The one script to run on a lent GPU machine (``make gpu-check``), stdlib only.

The GPU machine has a Python with CUDA torch but no network and no venv, so nothing is installed:
each package is put on ``PYTHONPATH`` from its ``src/``. For each selected torch package this
records the environment report, runs the package's GPU tests (files ``tests/test_gpu*.py``,
marker ``gpu``) and then, when it exists, ``benchmarks/gpu_check.py --out DIR`` (the package's
own CUDA correctness and throughput script). Everything printed is also written under ``--out``
as ``gpu_check.json`` and ``gpu_check.md`` so it can be copied into the packages' results folders.

Usage: python ci/gpu_check.py --out build/gpu-check [--pkg NAMES] [--allow-cpu] [--wheels DIR]
       python ci/gpu_check.py --fetch-wheels DIR   (here, with the dev venv's python: see below)
Exit: 0 all green, 1 a check failed, 2 no CUDA device (unless --allow-cpu).

The device image lacks TRL and its ``datasets`` (and their pure-Python dependencies ``dill`` and
``multiprocess``), which the TRL trainer timings need. ``make gpu-wheels`` downloads those wheels, at the
dev venv's versions and for the device's Python 3.12, into ``.gpu-wheels/`` (ignored by git); carry that
folder to the device (the ``carry`` list) and this script installs them into ``--out``/site, without
network or dependencies, and puts that folder on the packages' ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from matrix import Package, Stopwatch, read_packages, select
from suites import run_pytest

CARRIED = ("trl", "datasets", "dill", "multiprocess")
"""Pure-Python packages the device image lacks (TRL and what it needs beyond the image), carried as wheels."""
DEVICE_PYTHON = "3.12"


def fetch_wheels(folder: Path) -> int:
    """Download :data:`CARRIED` at this interpreter's installed versions, as wheels for the device's Python."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pins = [f"{name}=={version(name)}" for name in CARRIED]
    except PackageNotFoundError as exc:
        print(f"gpu-wheels: {exc.name} is not installed here; run with the dev venv's python (make gpu-wheels)")
        return 2
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
           DEVICE_PYTHON, "-d", str(folder), *pins]  # fmt: skip
    return subprocess.run(cmd, check=False).returncode


def install_wheels(folder: Path, target: Path) -> Path | None:
    """Install the carried wheels into ``target`` (no network, no dependencies); None when there are none."""
    wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    if not wheels:
        return None
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--upgrade", "--target",
           str(target), *map(str, wheels)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        print(f"gpu-check: installing the wheels of {folder} failed: {res.stderr.strip()[-400:]}")
        return None
    print(f"gpu-check: {len(wheels)} carried wheels installed into {target}")
    return target


def package_env(pkg: Package, site: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(pkg.path() / "src"), *([str(site)] if site is not None else [])]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def check_package(pkg: Package, out: Path, site: Path | None = None) -> dict[str, object]:
    env = package_env(pkg, site)
    watch = Stopwatch()
    record: dict[str, object] = {"package": pkg.name}
    info = subprocess.run(
        [sys.executable, "-c", f"import json; from {pkg.import_name}.environment import collect; print(json.dumps(collect()))"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    record["info"] = json.loads(info.stdout) if info.returncode == 0 else {"error": info.stderr.strip()[-2000:]}
    gpu_tests = sorted(str(p.relative_to(pkg.path())) for p in (pkg.path() / "tests").glob("test_gpu*.py"))
    if gpu_tests:
        res = run_pytest(pkg.name, sys.executable, pkg.path(), out / f"{pkg.name}-gpu.xml",
                         ["-m", "gpu", "-p", "no:randomly", *gpu_tests], env=env)  # fmt: skip
        record["tests"] = {"passed": res.passed, "failed": res.failed, "skipped": res.skipped, "ok": res.ok}
    else:
        record["tests"] = "no tests/test_gpu*.py yet"
    script = pkg.path() / "benchmarks" / "gpu_check.py"
    if script.is_file():
        # written to a file as it runs, so that what a cut-off run printed is still there
        log = out / f"{pkg.name}-bench.log"
        with log.open("w", encoding="utf-8") as fh:
            bench = subprocess.run([sys.executable, str(script), "--out", str(out / pkg.name)],
                                   env={**env, "PYTHONUNBUFFERED": "1"}, check=False, stdout=fh,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        text = log.read_text(encoding="utf-8", errors="replace")
        print(text, end="")
        record["benchmark"] = {"returncode": bench.returncode, "log": str(log), "output_tail": text[-4000:]}
    else:
        record["benchmark"] = "no benchmarks/gpu_check.py yet"
    record["seconds"] = round(watch.seconds(), 1)
    return record


def failed(record: dict[str, object]) -> bool:
    tests, bench, info = record["tests"], record["benchmark"], record["info"]
    return (
        (isinstance(info, dict) and "error" in info)
        or (isinstance(tests, dict) and not (tests["ok"] or (tests["failed"] == 0 and tests["passed"] == 0)))
        or (isinstance(bench, dict) and bench["returncode"] != 0)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("build/gpu-check"))
    parser.add_argument("--pkg", default="", help="comma/space separated pip names (default: all torch packages)")
    parser.add_argument("--allow-cpu", action="store_true", help="run even without CUDA (to test this script)")
    parser.add_argument("--wheels", type=Path, default=Path(".gpu-wheels"),
                        help="carried wheels to install first (default .gpu-wheels, when it exists)")  # fmt: skip
    parser.add_argument("--fetch-wheels", type=Path, default=None, metavar="DIR",
                        help="only download the wheels to carry into DIR (run here, with the dev venv)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.fetch_wheels is not None:
        return fetch_wheels(args.fetch_wheels)

    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    has_cuda = probe.stdout.strip() == "True"
    if not has_cuda and not args.allow_cpu:
        print(f"gpu-check: no CUDA device visible to {sys.executable} ({probe.stderr.strip()[-200:] or 'cpu only'})")
        return 2
    packages = [p for p in select(read_packages(), args.pkg) if "no-torch" not in p.flags]
    args.out.mkdir(parents=True, exist_ok=True)
    site = install_wheels(args.wheels, args.out / "site")
    records = [check_package(pkg, args.out, site) for pkg in packages]
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    (args.out / "gpu_check.json").write_text(
        json.dumps({"date": stamp, "cuda": has_cuda, "packages": records}, indent=2)
    )
    lines = [
        f"# gpu-check, {stamp}",
        "",
        "| package | device | GPU tests | benchmark | seconds |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        info = r["info"] if isinstance(r["info"], dict) else {}
        device = ", ".join(info.get("cuda_devices", [])) or "cpu"
        tests = (
            r["tests"]
            if isinstance(r["tests"], str)
            else f"{r['tests']['passed']} passed, {r['tests']['failed']} failed"
        )
        bench = r["benchmark"] if isinstance(r["benchmark"], str) else f"exit {r['benchmark']['returncode']}"
        lines.append(f"| {r['package']} | {device} | {tests} | {bench} | {r['seconds']} |")
    (args.out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    bad = [r["package"] for r in records if failed(r)]
    if bad:
        print(f"gpu-check failed for: {', '.join(map(str, bad))}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
