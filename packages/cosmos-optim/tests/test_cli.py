"""Tests of the ``cosmos-optim`` command line: every command in-process, bad input, and the console script."""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata, resources
from pathlib import Path

import pytest

from cosmos_optim.cli import _TRAIN_FLAGS, main

TINY_FLAGS = ["--d-model", "32", "--n-layer", "1", "--n-head", "2", "--seq-len", "16", "--batch-size", "4",
              "--eval-every", "2", "--eval-batches", "1", "--rank", "4", "--warmup", "1"]  # fmt: skip


def _version_from_file() -> str:
    # Read _version.py as text, independently of the import machinery.
    text = resources.files("cosmos_optim").joinpath("_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    assert match is not None
    return match.group(1)


def _last_json(out: str) -> object:
    return json.loads(out.strip().splitlines()[-1])


def test_version_flag_prints_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    # Two independent sources: the installed distribution metadata and the text of _version.py.
    assert capsys.readouterr().out.strip() == f"cosmos-optim {metadata.version('cosmos-optim')}"
    assert metadata.version("cosmos-optim") == _version_from_file()


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("info", "demo", "train", "compare", "memory", "steptime", "bench"):
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), command


def test_train_has_a_flag_for_every_config_field() -> None:
    from cosmos_optim.train import TrainConfig

    assert set(_TRAIN_FLAGS) == {f.name for f in dataclasses.fields(TrainConfig)}


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
    assert report["package"] == "cosmos-optim"
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


def test_demo_runs_cosmos_and_adamw(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--steps", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"adamw", "cosmos"}
    for row in result.values():
        assert row["steps_done"] == 2
        assert row["final_val_loss"] < row["initial_val_loss"]
    assert main(["demo", "--steps", "1"]) == 0
    assert "| cosmos |" in capsys.readouterr().out


def test_train_writes_its_run_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["train", "--optimizer", "cosmos", "--steps", "4", "--lr", "3e-3", *TINY_FLAGS, "--out", str(out), "--json"]
    assert main(argv) == 0
    metrics = _last_json(capsys.readouterr().out)
    assert isinstance(metrics, dict)
    assert (metrics["steps_done"], metrics["lr"], metrics["optimizer"]) == (4, 3e-3, "cosmos")
    config = json.loads((out / "config.json").read_text())
    assert (config["train"]["rank"], config["train"]["d_model"], config["train"]["lr"]) == (4, 32, 3e-3)
    assert config["version"] == _version_from_file()
    assert (out / "checkpoint.pt").is_file()
    assert main([*argv, "--resume"]) == 0
    again = _last_json(capsys.readouterr().out)
    assert isinstance(again, dict)
    assert again["final_val_loss"] == metrics["final_val_loss"]
    with pytest.raises(SystemExit) as exc:
        main([*argv[:-3], "--steps", "5", "--out", str(out), "--resume"])
    assert exc.value.code == 2
    assert "another configuration (differs in ['steps'])" in capsys.readouterr().err


@pytest.mark.parametrize(
    "suffix",
    [".json", pytest.param(".toml", marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib: 3.11+"))],
)
def test_config_file_is_merged_under_the_flags(tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / f"cfg{suffix}"
    if suffix == ".json":
        cfg.write_text(json.dumps({"optimizer": "adamw", "lr": 0.02, "steps": 3, "weight_decay": 0.1}))
    else:
        cfg.write_text('optimizer = "adamw"\nlr = 0.02\nsteps = 3\nweight_decay = 0.1\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--steps", "2", *TINY_FLAGS, "--out", str(out), "--json"]) == 0
    written = json.loads((out / "config.json").read_text())["train"]
    assert (written["optimizer"], written["lr"], written["steps"], written["weight_decay"]) == ("adamw", 0.02, 2, 0.1)


def test_train_on_a_text_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 20, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "--optimizer", "adamw", "--steps", "2", *TINY_FLAGS, "--text", str(text), "--out",
                 str(out), "--json"]) == 0  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["source"] == str(text)
    assert config["data"]["vocab_size"] == len(set("the quick brown fox jumps over the lazy dog.")) + 1


def test_compare_writes_table_json_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp"
    argv = ["compare", "--optimizers", "adamw,cosmos", "--lrs", "cosmos=3e-3", "--steps", "3", *TINY_FLAGS]
    assert main([*argv, "--seeds", "2", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| adamw |" in table
    assert "| cosmos |" in table
    record = json.loads((out / "compare.json").read_text())
    assert record["lrs"] == {"adamw": 6e-3, "cosmos": 3e-3}  # default for adamw, the flag for cosmos
    assert [r["seed"] for r in record["runs"]["cosmos"]] == [0, 1]
    for png in ("loss-vs-step.png", "loss-vs-seconds.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "config.json").read_text())["optimizers"] == ["adamw", "cosmos"]


def test_memory_matches_the_closed_form(capsys: pytest.CaptureFixture[str]) -> None:
    d, layers, vocab, positions, r = 512, 12, 50257, 1024, 64
    assert main(["memory", "--d-model", str(d), "--layers", str(layers), "--rank", str(r), "--vocab", str(vocab),
                 "--json"]) == 0  # fmt: skip
    got = json.loads(capsys.readouterr().out)
    # By hand: tied GPT, no biases: V d + T d + L (12 d² + 2 d) + d parameters.
    n_params = vocab * d + positions * d + layers * (12 * d * d + 2 * d) + d
    assert got["params"] == n_params
    assert got["total_bytes"]["adamw"] == 4 * 2 * n_params
    # COSMOS: four d×d matrices and the (4d, d), (d, 4d) pair per block, mn + nr + r² + mr each; AdamW for the rest.
    square = d * d + 2 * d * r + r * r
    mlp = 2 * (4 * d * d + d * r + r * r + 4 * d * r)
    rest = 2 * (n_params - layers * 12 * d * d)
    assert got["total_bytes"]["cosmos"] == 4 * (layers * (4 * square + mlp) + rest)
    assert main(["memory", "--d-model", "64", "--layers", "2", "--vocab", "100"]) == 0
    assert "| cosmos |" in capsys.readouterr().out


def test_steptime_reports_ratios_to_adamw(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["steptime", "--optimizers", "adamw,cosmos", "--d-model", "32", "--layers", "1", "--heads", "2",
            "--seq-len", "8", "--batch-size", "2", "--rank", "4", "--repeats", "2", "--json"]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["optimizer"] for r in rows] == ["adamw", "cosmos"]
    assert rows[0]["median × AdamW"] == 1.0
    assert rows[1]["median × AdamW"] > 0


def test_bench_quick_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--only", "memory", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "memory-quick.json").read_text())["benchmark"] == "memory"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--optimizer", "sgd"], "invalid choice: 'sgd'"),
        (["train", "--lr", "-1"], "lr must be > 0, got -1.0"),
        (["train", "--text", "MISSING.txt"], "cannot read the text file MISSING.txt"),
        (["train", "--seq-len", "100000"], "seq_len 100000 needs at least 100001"),
        (["compare", "--optimizers", "adamw,foo"], "--optimizers must be distinct names"),
        (["compare", "--lrs", "cosmos=abc"], "--lrs must look like adamw=1e-2"),
        (["compare", "--seeds", "0"], "--seeds must be >= 1, got 0"),
        (["memory", "--rank", "-1"], "--rank must be >= 0"),
        (["memory", "--layers", "0"], "n_layer must be an integer >= 1"),
        (["bench", "--only", "nope"], "--only must be one of"),
        (["bench", "--optimizers", "adamw,nope"], "--optimizers must be distinct names"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    assert "Traceback" not in "".join(err)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "is not valid JSON"), ('{"nope": 1}', "unknown TrainConfig key(s) ['nope']"),
     ('{"steps": "ten"}', "steps must be an integer >= 1, got 'ten'"), ("[1, 2]", "must hold one table")],
)  # fmt: skip
def test_bad_config_file_exits_2(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "cfg.json"
    cfg.write_text(content)
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", str(cfg), "--out", str(tmp_path / "r")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_help_imports_no_heavy_dependency() -> None:
    # --help must stay fast: no numerical library may be imported to print it.
    code = (
        "import sys\n"
        "from cosmos_optim.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ['numpy', 'matplotlib', 'scipy', 'torch', 'tqdm'] if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_console_script_runs_as_a_subprocess() -> None:
    script = shutil.which("cosmos-optim", path=str(Path(sys.executable).parent))
    assert script is not None, "console script cosmos-optim is not installed next to the interpreter"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"cosmos-optim {_version_from_file()}"


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cosmos_optim", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: cosmos-optim")


def test_bad_numbers_are_not_silently_accepted() -> None:
    from cosmos_optim.commands import parse_lrs

    assert parse_lrs("adamw=1e-2, cosmos=4e-3") == {"adamw": 1e-2, "cosmos": 4e-3}
    for bad in ("cosmos=0", "cosmos=inf", f"cosmos={math.nan}", "cosmos"):
        with pytest.raises(ValueError, match="--lrs must look like"):
            parse_lrs(bad)
