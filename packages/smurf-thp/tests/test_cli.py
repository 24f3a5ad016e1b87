"""Tests of the ``smurf-thp`` command line: --version, --help, info, and the console script."""

from __future__ import annotations

import json
import pickle
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata, resources
from pathlib import Path

import pytest

from smurf_thp.cli import EXIT_USAGE, main


def _version_from_file() -> str:
    # Read _version.py as text, independently of the import machinery.
    text = resources.files("smurf_thp").joinpath("_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    assert match is not None
    return match.group(1)


def test_version_flag_prints_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    # Two independent sources: the installed distribution metadata and the text of _version.py.
    assert capsys.readouterr().out.strip() == f"smurf-thp {metadata.version('smurf-thp')}"
    assert metadata.version("smurf-thp") == _version_from_file()


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("simulate", "train", "evaluate", "sample", "predict", "demo", "bench", "info"):
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), command


def test_missing_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "required" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_info_json_reports_this_interpreter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["package"] == "smurf-thp"
    assert report["version"] == _version_from_file()
    assert report["python"] == platform.python_version()
    assert report["executable"] == sys.executable
    import numpy
    import torch

    assert report["torch"] == torch.__version__
    assert report["numpy"] == numpy.__version__
    assert report["torch_threads"] == torch.get_num_threads()
    assert report["cuda_available"] is torch.cuda.is_available()
    assert report["cuda_version"] == torch.version.cuda


def test_info_table_has_one_row_per_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert main(["info", "--json"]) == 0
    keys = list(json.loads(capsys.readouterr().out))
    assert [row.split()[0] for row in rows] == keys


SMALL = ["--set", "d_model=8", "--set", "d_inner=16", "--set", "n_layers=1", "--set", "n_head=2", "--set",
         "num_noise=4", "--epochs", "2", "--batch-size", "8"]  # fmt: skip
SAMPLING = ["--n-samples", "10", "--steps", "20"]


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert isinstance(out, dict)
    return out


def test_simulate_train_evaluate_sample_predict_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["simulate", "--process", "hawkes3", "--t-end", "8", "--n-seqs", "24,8,8", "--out", str(data),
                 "--json"]) == 0  # fmt: skip
    made = _json(capsys)
    assert made["process"] == json.loads((data / "ground_truth.json").read_text())  # the truth is written
    assert main(["train", "--data", str(data), "--out", str(run), *SMALL, "--json"]) == 0
    trained = _json(capsys)
    assert trained["epochs"] == 2
    assert {p.name for p in run.iterdir()} >= {"model.pt", "config.json", "train_log.csv"}
    assert len((run / "train_log.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    assert main(["evaluate", "--ckpt", str(run / "model.pt"), "--data", str(data), *SAMPLING, "--json",
                 "--out", str(tmp_path / "metrics.json")]) == 0  # fmt: skip
    metrics = _json(capsys)
    assert "oracle_cs" in metrics
    assert metrics["frac_negative"] == 0.0
    assert json.loads((tmp_path / "metrics.json").read_text())["crps"] == metrics["crps"]
    assert main(["sample", "--ckpt", str(run / "model.pt"), "--data", str(data), *SAMPLING,
                 "--out", str(tmp_path / "s.npz")]) == 0  # fmt: skip
    import numpy as np

    npz = np.load(tmp_path / "s.npz")
    assert npz["tau"].shape == (metrics["n_events"], 10)
    history = tmp_path / "h.json"
    history.write_text(json.dumps({"times": [0.5, 1.0, 2.2], "types": [0, 2, 1]}))
    assert main(["predict", "--ckpt", str(run / "model.pt"), "--history", str(history), *SAMPLING]) == 0
    pred = _json(capsys)
    lo, hi = pred["interval"]  # type: ignore[misc]
    assert 0 <= lo <= pred["median_gap"] <= hi  # type: ignore[operator]
    assert abs(sum(pred["type_probs"]) - 1) < 1e-9  # type: ignore[arg-type]
    # resume: a finished run continues to 3 epochs from its checkpoint
    assert main(["train", "--data", str(data), "--out", str(run), *SMALL[:-4], "--epochs", "3", "--batch-size", "8",
                 "--resume", "--json"]) == 0  # fmt: skip
    assert _json(capsys)["epochs"] == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--process", "hawkes9", "--out", "x"], "--process must be one of"),
        (["simulate", "--n-seqs", "10,5", "--out", "x"], "--n-seqs must be three integers"),
        (["train", "--data", "/no/such/dir", "--out", "x"], "--data: no such file or directory"),
        (["simulate", "--params", "{not json", "--out", "x"], "--params is not valid JSON"),
    ],
)
def test_bad_arguments_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


def test_mismatches_and_bad_devices_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, one, run = tmp_path / "d", tmp_path / "one", tmp_path / "r"
    assert main(["simulate", "--t-end", "6", "--n-seqs", "12,4,4", "--out", str(data)]) == 0
    assert main(["simulate", "--process", "hawkes1", "--t-end", "8", "--n-seqs", "12,4,4", "--out", str(one)]) == 0
    assert main(["train", "--data", str(data), "--out", str(run), *SMALL]) == 0
    capsys.readouterr()
    ckpt = str(run / "model.pt")
    assert main(["evaluate", "--ckpt", ckpt, "--data", str(one), *SAMPLING]) == EXIT_USAGE
    assert "the data has 1 event types, the checkpoint's model 3" in capsys.readouterr().err
    assert main(["train", "--data", str(data), "--out", str(run), "--device", "foo"]) == EXIT_USAGE
    assert "--device must be cpu, cuda" in capsys.readouterr().err
    assert main(["evaluate", "--ckpt", str(run), "--data", str(data)]) == EXIT_USAGE  # a directory
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"times": ["a", "b"], "types": [0, 1]}))
    assert main(["predict", "--ckpt", ckpt, "--history", str(bad)]) == EXIT_USAGE
    assert "times must be numbers" in capsys.readouterr().err


def test_corrupt_pickles_and_checkpoints_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, run = tmp_path / "d", tmp_path / "r"
    assert main(["simulate", "--t-end", "6", "--n-seqs", "12,4,4", "--out", str(data)]) == 0
    assert main(["train", "--data", str(data), "--out", str(run), *SMALL]) == 0
    capsys.readouterr()
    garbage = tmp_path / "bad.pt"
    garbage.write_bytes(b"garbage")
    assert main(["evaluate", "--ckpt", str(garbage), "--data", str(data), *SAMPLING]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("smurf-thp evaluate: error (--ckpt")
    assert len(err.strip().splitlines()) == 1
    (data / "train.pkl").write_bytes(b"garbage")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r2"), *SMALL]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "train.pkl: not a readable pickle" in err
    assert len(err.strip().splitlines()) == 1


def test_trust_gaps_reaches_the_reader(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # EasyTPP rows whose time_since_last_event was rounded apart from the absolute times: refused by default,
    # read with --trust-gaps (the absolute times stay the truth).
    def seq(shift: float) -> list[dict[str, float]]:
        times = [0.0, 1.0 + shift, 3.0 + shift, 4.5 + shift]
        gaps = [0.0, 1.0 + shift, 2.0001, 1.5]
        return [{"time_since_start": t, "time_since_last_event": g, "type_event": i % 2}
                for i, (t, g) in enumerate(zip(times, gaps, strict=True))]  # fmt: skip

    data = tmp_path / "d"
    data.mkdir()
    for split in ("train", "dev", "test"):
        rows = {"dim_process": 2, split: [seq(0.1 * i) for i in range(8)]}
        (data / f"{split}.pkl").write_bytes(pickle.dumps(rows))
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--epochs", "1", *SMALL]) == EXIT_USAGE
    assert "trust_gaps" in capsys.readouterr().err
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--epochs", "1", "--trust-gaps",
                 *SMALL]) == 0  # fmt: skip


@pytest.mark.parametrize("space", ["mean", "none"])
def test_train_in_a_bounded_space_samples_with_a_reflecting_boundary(
    space: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --set normalize=mean|none: the normaliser is fitted in that space and stored; evaluate's --boundary
    # auto reflects at 0 there (no negative gap), while none lets the chains cross 0
    import torch

    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["simulate", "--process", "hawkes3", "--t-end", "8", "--n-seqs", "24,8,8", "--out", str(data)]) == 0
    assert main(["train", "--data", str(data), "--out", str(run), *SMALL, "--set", f"normalize={space}"]) == 0
    capsys.readouterr()
    state = torch.load(run / "model.pt", weights_only=False)
    assert state["normalizer"]["mode"] == space
    assert main(["evaluate", "--ckpt", str(run / "model.pt"), "--data", str(data), *SAMPLING, "--json"]) == 0
    assert _json(capsys)["frac_negative"] == 0.0
    assert main(["evaluate", "--ckpt", str(run / "model.pt"), "--data", str(data), *SAMPLING, "--json",
                 "--boundary", "none", "--step-size", "0.5"]) == 0  # fmt: skip
    assert _json(capsys)["frac_negative"] > 0.0


def test_train_refuses_a_gap_space_for_the_mle_heads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["simulate", "--process", "hawkes3", "--t-end", "8", "--n-seqs", "24,8,8", "--out", str(data)]) == 0
    capsys.readouterr()
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--model", "flexible-mle",
                 "--set", "normalize=log"])  # fmt: skip
    assert code == EXIT_USAGE
    assert "--set normalize: only SMURF-THP takes a gap space" in capsys.readouterr().err


def test_choose_steps_is_refused_where_there_are_no_langevin_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # review finding: --choose-steps used to be ignored without a word for an exact sampler or without a dev split
    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["simulate", "--process", "hawkes3", "--t-end", "6", "--n-seqs", "12,4,4", "--out", str(data)]) == 0
    assert main(["train", "--data", str(data), "--out", str(run), *SMALL, "--model", "flexible-mle"]) == 0
    capsys.readouterr()
    code = main(["evaluate", "--ckpt", str(run / "model.pt"), "--data", str(data), *SAMPLING, "--choose-steps"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--choose-steps: the checkpoint holds a FlexibleIntensityMLE, which draws arrival times exactly" in err[0]
    smurf, no_dev = tmp_path / "smurf", tmp_path / "no_dev"
    assert main(["train", "--data", str(data), "--out", str(smurf), *SMALL]) == 0
    no_dev.mkdir()
    for split in ("train", "test"):
        (no_dev / f"{split}.pkl").write_bytes((data / f"{split}.pkl").read_bytes())
    capsys.readouterr()
    code = main(["evaluate", "--ckpt", str(smurf / "model.pt"), "--data", str(no_dev), *SAMPLING, "--choose-steps"])
    assert code == EXIT_USAGE
    assert "--choose-steps: " + str(no_dev) + " has no 'dev' split" in capsys.readouterr().err


def test_train_rejects_an_unknown_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--t-end", "5", "--n-seqs", "6,3,3", "--out", str(tmp_path / "d")]) == 0
    capsys.readouterr()
    assert main(["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"), "--set", "width=3"]) == 2
    assert "--set: unknown model setting(s) ['width']" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_and_compares_with_the_truth(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--epochs", "2", "--json"]) == 0
    out = _json(capsys)
    assert {"smurf_thp", "oracle"} <= set(out)
    assert out["oracle"]["oracle_cs"] < 0.05  # type: ignore[index]  # exact samples of the truth


def test_help_imports_no_heavy_dependency() -> None:
    # --help must stay fast: no numerical library may be imported to print it.
    code = (
        "import sys\n"
        "from smurf_thp.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ['numpy', 'openai', 'pettingzoo', 'scipy', 'torch'] if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_console_script_runs_as_a_subprocess() -> None:
    script = shutil.which("smurf-thp", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert script is not None, "console script smurf-thp is not installed next to the interpreter"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"smurf-thp {_version_from_file()}"


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "smurf_thp", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: smurf-thp")


def test_report_writes_plots_and_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    import numpy as np

    rng = np.random.default_rng(0)
    y = rng.exponential(1.0, 3000)
    exact = rng.exponential(1.0, (3000, 50))  # samples of the true law: calibrated
    np.savez(tmp_path / "good.npz", tau=exact, y=y)
    np.savez(tmp_path / "wide.npz", tau=3 * exact, y=y)  # too wide: over-covers
    out = tmp_path / "rep"
    assert main(["report", str(tmp_path / "good.npz"), str(tmp_path / "wide.npz"), "--out", str(out), "--json"]) == 0
    results = _json(capsys)
    assert results["good"]["cs"] < 0.04  # type: ignore[index,operator]
    assert results["wide"]["cs"] > 0.1  # type: ignore[index,operator]
    assert {p.name for p in out.iterdir()} == {"reliability.png", "pit_hist.png", "report.md"}
    assert (out / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["report", str(tmp_path / "nope.npz"), "--out", str(out)]) == EXIT_USAGE
    assert "not a samples .npz file" in capsys.readouterr().err


def test_bench_quick_writes_its_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--jobs", "1", "--out", str(out)]) == 0
    report = json.loads((out / "quick.json").read_text())
    assert report["command"] == f"smurf-thp bench --quick --jobs 1 --out {out}"
    assert (out / "quick.md").is_file()
    assert "| " in capsys.readouterr().out
    assert main(["bench", "--jobs", "0", "--out", str(out)]) == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err
