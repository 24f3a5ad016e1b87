"""Tests of the ``r3m`` command line: --version, --help, info, and the console script."""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata, resources
from pathlib import Path

import pytest
import torch

from r3m.cli import main


def _version_from_file() -> str:
    # Read _version.py as text, independently of the import machinery.
    text = resources.files("r3m").joinpath("_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    assert match is not None
    return match.group(1)


def test_version_flag_prints_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    # Two independent sources: the installed distribution metadata and the text of _version.py.
    assert capsys.readouterr().out.strip() == f"r3m {metadata.version('r3m')}"
    assert metadata.version("r3m") == _version_from_file()


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("info", "demo", "make-data", "train-reward", "audit", "dpo", "bench"):
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
    assert report["package"] == "r3m"
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
    import importlib.metadata

    for name in ("tqdm", "trl", "transformers", "gymnasium"):  # from the metadata, or None when not installed
        try:
            expected: str | None = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            expected = None
        assert report[name] == expected


def test_info_table_has_one_row_per_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert main(["info", "--json"]) == 0
    keys = list(json.loads(capsys.readouterr().out))
    assert [row.split()[0] for row in rows] == keys


def test_help_imports_no_heavy_dependency() -> None:
    # --help must stay fast: no numerical library may be imported to print it.
    code = (
        "import sys\n"
        "from r3m.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ['numpy', 'openai', 'pettingzoo', 'scipy', 'torch'] if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_console_script_runs_as_a_subprocess() -> None:
    script = shutil.which("r3m", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert script is not None, "console script r3m is not installed next to the interpreter"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"r3m {_version_from_file()}"


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "r3m", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: r3m")


def test_make_data_train_and_audit_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "pairs.jsonl"
    argv = ["make-data", "--n", "600", "--T", "3", "--D", "4", "--teacher", "flip", "--teacher-param", "0.25"]
    assert main([*argv, "--out", str(data), "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["pairs"] == 600
    assert 0.15 < made["corrupted_share"] < 0.35  # 25 % flips, binomial 4σ ≈ ±0.07
    run = tmp_path / "run"
    assert (
        main(["train-reward", "--data", str(data), "--out", str(run), "--epochs", "2", "--lam", "0.6", "--json"]) == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert 0.0 <= metrics["flag_precision"] <= 1.0
    assert 0.0 <= metrics["flag_recall"] <= 1.0
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["lam"] == 0.6
    rows = (run / "deltas.csv").read_text().strip().splitlines()
    assert rows[0] == "id,margin,delta,flagged,corrupted"
    assert len(rows) == 601
    assert main(["audit", "--run", str(run), "--data", str(data), "--top", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["top"]) == 5
    nested = tmp_path / "new" / "dir" / "all.csv"  # missing folders are created
    assert main(["audit", "--run", str(run), "--data", str(data), "--csv", str(nested)]) == 0
    assert nested.read_text().splitlines()[0] == "id,margin,delta,flagged,corrupted"
    with pytest.raises(SystemExit):
        main(["audit", "--run", str(run), "--data", str(data), "--csv", str(tmp_path)])
    assert "is a folder; give the CSV file" in capsys.readouterr().err
    assert report["top"][0]["delta"] >= report["top"][-1]["delta"]
    # a resume with another λ is refused and must leave the run's config.json as it was
    before = (run / "config.json").read_text()
    with pytest.raises(SystemExit):
        main(["train-reward", "--data", str(data), "--out", str(run), "--epochs", "2", "--lam", "0.7", "--resume"])
    assert "lam (0.6 there, 0.7 here)" in capsys.readouterr().err
    assert (run / "config.json").read_text() == before
    # a resume may train on to more epochs; config.json then records them
    assert main(["train-reward", "--data", str(data), "--out", str(run), "--epochs", "3", "--lam", "0.6", "--resume",
                 "--json"]) == 0  # fmt: skip
    capsys.readouterr()
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 3
    assert report["flagged"] == sum(1 for r in rows[1:] if r.split(",")[3] == "True")


def test_ragged_pairs_train_and_audit_only_with_ragged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Segments of 1-4 steps: refused without --ragged (one line naming the flag), trained and audited with it; the
    # audit's margins are the trained model's scores of each segment cut to its own length.
    g = torch.Generator().manual_seed(0)
    lines = []
    for i in range(120):
        t_c, t_r = (int(k) for k in torch.randint(1, 5, (2,), generator=g))
        c, r = torch.randn(t_c, 3, generator=g), torch.randn(t_r, 3, generator=g)
        lines.append(json.dumps({"id": f"q{i}", "chosen": c.tolist(), "rejected": r.tolist()}))
    data = tmp_path / "ragged.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["train-reward", "--data", str(data), "--out", str(run)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--ragged" in err[-1]
    assert f"{data}:" in err[-1]
    assert not run.exists()
    assert main(["train-reward", "--data", str(data), "--out", str(run), "--epochs", "1", "--ragged", "--json"]) == 0
    capsys.readouterr()
    assert json.loads((run / "config.json").read_text())["ragged"] is True
    csv_path = tmp_path / "audit.csv"
    argv = ["audit", "--run", str(run), "--data", str(data), "--ragged", "--device", "cpu", "--csv", str(csv_path)]
    assert main([*argv, "--json"]) == 0
    capsys.readouterr()
    from r3m.trainer import RewardTrainer

    model = RewardTrainer.load(run / "model.pt").model
    assert model is not None
    margins = [float(row.split(",")[1]) for row in csv_path.read_text().splitlines()[1:]]
    with torch.no_grad():
        for line, margin in zip(lines, margins, strict=True):
            rec = json.loads(line)
            expect = model(torch.tensor([rec["chosen"]])) - model(torch.tensor([rec["rejected"]]))
            assert margin == pytest.approx(float(expect[0]), abs=1e-5)


def test_config_file_sets_any_commands_options_and_the_command_line_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The file's values act as the command's defaults: the same data as the flags, byte for byte.
    flags = ["--n", "200", "--T", "2", "--D", "3", "--teacher", "stochastic", "--teacher-param", "0.5", "--seed", "4"]
    assert main(["make-data", *flags, "--out", str(tmp_path / "flags.jsonl")]) == 0
    conf = tmp_path / "make.toml"
    conf.write_text('n = 200\nT = 2\nD = 3\nteacher = "stochastic"\nrate = 0.5\nseed = 9\njson = true\n')  # --rate
    assert main(["make-data", "--config", str(conf), "--seed", "4", "--out", str(tmp_path / "file.jsonl")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["pairs"] == 200  # json = true took effect
    assert (tmp_path / "file.jsonl").read_bytes() == (tmp_path / "flags.jsonl").read_bytes()
    # train-reward: TrainConfig fields (also those without a flag) and the command's own options in one file
    run = tmp_path / "run"
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"lam": 0.7, "hidden": [8], "val_fraction": 0.25, "epochs": 1}))
    assert main(["train-reward", "--data", str(tmp_path / "file.jsonl"), "--config", str(train), "--out", str(run),
                 "--lam", "0.6"]) == 0  # fmt: skip
    capsys.readouterr()
    record = json.loads((run / "config.json").read_text())
    assert record["val_fraction"] == 0.25
    assert record["train"]["lam"] == 0.6
    assert record["train"]["hidden"] == [8]
    aud = tmp_path / "audit.json"
    aud.write_text(json.dumps({"top": 3, "json": True, "device": "cpu"}))
    assert main(["audit", "--run", str(run), "--data", str(tmp_path / "file.jsonl"), "--config", str(aud)]) == 0
    assert len(json.loads(capsys.readouterr().out)["top"]) == 3


@pytest.mark.parametrize(
    ("command", "text", "message"),
    [
        ("make-data", 'teacher = "nope"', "teacher must be one of oracle, flip"),
        ("make-data", "bogus = 1", "unknown key(s) ['bogus'] for make-data; known: ["),
        ("make-data", 'n = "many"', "n='many' is not valid"),
        ("make-data", "n = 2.5", "n=2.5 is not valid"),
        ("make-data", 'json = "yes"', "json must be true or false, got 'yes'"),
        ("make-data", "D = [3]", "D must be a string or a number, got [3]"),
        ("audit", 'data = "x.jsonl"', "data belongs on the command line (--data; required)"),
        ("audit", "top = 0", "top=0 is not valid: must be >= 1"),
        ("train-reward", "patience = 0", "--config: {conf}: patience must be an integer >= 1, got 0"),
        ("train-reward", "resume = true", "resume belongs on the command line (--resume;"),
        ("make-data", "rate = 0.3\nteacher-param = 0.2", "rate and teacher_param both set --teacher-param"),
        ("make-data", "seg-len = 5\nseg_len = 6", "sets 'seg_len' twice"),
        ("train-reward", "shuffle = true", "unknown key(s) ['shuffle'] for train-reward"),
        ("train-reward", 'epochs = "one"', "--config: {conf}: epochs must be an integer, got 'one'"),
        ("train-reward", 'lr = "fast"', "--config: {conf}: lr must be a number, got 'fast'"),
    ],
)
def test_bad_config_file_is_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, text: str, message: str
) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(text + "\n")
    required = {"audit": ["--run", str(tmp_path), "--data", str(tmp_path / "d.jsonl")],
                "train-reward": ["--data", str(tmp_path / "d.jsonl")]}.get(command, [])  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main([command, *required, "--config", str(conf), "--out", str(tmp_path / "o")] if command != "audit"
             else [command, *required, "--config", str(conf)])  # fmt: skip
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"r3m {command}: error: ")  # one line, after the command's usage
    assert all(line.startswith(("usage: ", " ")) for line in err[:-1])
    assert message.format(conf=conf) in err[-1]
    assert not (tmp_path / "o").exists()


def test_dpo_toy_reports_exact_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["dpo", "--toy", "--losses", "r3m,sigmoid", "--pairs", "800", "--flip-rate", "0.2", "--out", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for name in ("r3m", "sigmoid"):
        assert 0.0 < result[name]["normalised_reward"] <= 1.0
    assert json.loads((tmp_path / "results.json").read_text()) == result


def _allocations_beyond_memory_are_refused() -> bool:
    """Linux refuses a 745 GiB allocation at once in overcommit modes 0 (heuristic) and 2; in mode 1 it would be
    granted and the process killed when it writes the pages."""
    try:
        return Path("/proc/sys/vm/overcommit_memory").read_text().strip() in ("0", "2")
    except OSError:
        return False


_NEEDS_REFUSED_ALLOCATION = pytest.mark.skipif(
    not _allocations_beyond_memory_are_refused(), reason="this kernel grants a 745 GiB allocation (overcommit)"
)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train-reward", "--data", "MISSING.jsonl"], "MISSING.jsonl"),
        (["dpo", "--toy", "--losses", "kto"], "--losses must be a comma list of r3m, sigmoid"),
        (["dpo"], "give --data"),
        (["bench", "--only", "nope"], "--only must be one of"),
        (["train-reward", "--data", "x.jsonl", "--lam", "1.0"], "per-sample"),
        (["dpo", "--toy", "--beta", "0"], "beta must be"),
        # review findings: argparse named the parsing function ("invalid _positive_int value"), and a size too
        # large for the machine ended in torch's allocator traceback
        (["make-data", "--n", "nan"], "argument --n: must be an integer, got 'nan'"),
        (["demo", "--seed", "abc"], "argument --seed: must be an integer, got 'abc'"),
        pytest.param(
            ["make-data", "--n", "100000000000", "--T", "1", "--D", "1", "--out", "never.jsonl"],
            "r3m make-data: error: not enough memory (tried to allocate 745 GiB); lower --n, --T or --D",
            marks=_NEEDS_REFUSED_ALLOCATION,
        ),
        (
            ["train-reward", "--data", "x.jsonl", "--val-fraction", "0", "--early-stopping", "val_accuracy"],
            "--early-stopping val_accuracy needs validation pairs, and --val-fraction 0 leaves none",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert err.count("error:") == 1
    # argparse's own errors name the subcommand ("r3m make-data: error:"), the commands' checks do not
    assert re.match(r"r3m( [a-z-]+)?: error:", err.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "a", "chosen": [[0.0, 1.0]]}, "pairs.jsonl:2: missing key 'rejected'"),
        (
            {"id": "a", "chosen": [[0.0, 1.0]], "rejected": [[0.0, 1.0], [1.0, 2.0]]},
            "pairs.jsonl:2: 'rejected' has shape",
        ),
        (
            {"id": "a", "chosen": [[0.0, float("nan")]], "rejected": [[0.0, 1.0]]},
            "pairs.jsonl:2: 'chosen' holds a non-finite",
        ),
    ],
)
def test_malformed_records_name_their_line(
    tmp_path: Path, row: dict[str, object], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # a good first line, a bad second one: train-reward exits 2 naming the line, before writing anything
    data = tmp_path / "pairs.jsonl"
    good = {"id": "g", "chosen": [[1.0, 0.0]], "rejected": [[0.0, 1.0]]}
    data.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(SystemExit) as exc:
        main(["train-reward", "--data", str(data), "--out", str(tmp_path / "run")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_malformed_file_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "pairs.jsonl"
    assert main(["make-data", "--n", "50", "--T", "2", "--D", "2", "--out", str(data)]) == 0
    lines = data.read_text().splitlines()
    lines[2] = '{"id": "x", "chosen": [[1, 2]]}'
    data.write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit):
        main(["train-reward", "--data", str(data), "--out", str(tmp_path / "r")])
    assert f"{data}:3" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_and_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"bt", "conservative bt ε=.1", "r3m λ=.5"}
    for row in result.values():
        assert row["test_accuracy"] > 0.7


def test_dpo_on_text_pairs_with_a_tiny_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("trl")
    train, held_out = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    assert main(["make-data", "--source", "text", "--n", "64", "--teacher-param", "0.25", "--out", str(train)]) == 0
    assert main(["make-data", "--source", "text", "--n", "32", "--teacher-param", "0", "--seed", "1",
                 "--out", str(held_out)]) == 0  # fmt: skip
    capsys.readouterr()
    out = tmp_path / "dpo"
    argv = ["dpo", "--data", str(train), "--eval-data", str(held_out), "--losses", "r3m,sigmoid", "--epochs", "1"]
    assert main([*argv, "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for name in ("r3m", "sigmoid"):
        assert 0.0 <= result[name]["eval_accuracy"] <= 1.0
        assert "outlier_precision" in result[name]  # the text pairs carry their corruption flags
    assert json.loads((out / "config.json").read_text())["lam"] == 0.75


def test_make_data_from_a_control_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("gymnasium")
    data = tmp_path / "pendulum.jsonl"
    argv = ["make-data", "--source", "gym", "--env", "Pendulum-v1", "--n", "40", "--seg-len", "5", "--json"]
    assert main([*argv, "--out", str(data)]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["pairs"] == 40
    rows = data.read_text().strip().splitlines()
    first = json.loads(rows[0])
    assert len(rows) == 40
    assert len(first["chosen"]) == 5  # 5 steps of [obs (3); action (1)]
    assert len(first["chosen"][0]) == 4
    random_data = tmp_path / "pendulum-random.jsonl"
    assert main([*argv, "--policy", "random", "--out", str(random_data)]) == 0
    capsys.readouterr()
    assert torch.load(random_data.with_suffix(".jsonl.meta.pt"))["policy"] == "random"
    assert torch.load(data.with_suffix(".jsonl.meta.pt"))["policy"] == "noisy-sine"
    assert random_data.read_text() != data.read_text()  # same seed, other rollouts
    with pytest.raises(SystemExit):
        main(["make-data", "--policy", "random", "--out", str(tmp_path / "x.jsonl")])
    assert "--policy applies to --source gym" in capsys.readouterr().err


def test_rate_is_an_alias_of_teacher_param(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the spec spells it --rate: the same flips as --teacher-param
    outs = []
    for flag in ("--rate", "--teacher-param"):
        out = tmp_path / f"{flag.strip('-')}.jsonl"
        assert (
            main(
                ["make-data", "--n", "200", "--T", "2", "--D", "2", "--teacher", "flip", flag, "0.3", "--out", str(out)]
            )
            == 0
        )
        outs.append(out.read_text())
    capsys.readouterr()
    assert outs[0] == outs[1]
    flipped = sum(json.loads(line)["corrupted"] for line in outs[0].splitlines())
    assert 40 <= flipped <= 80  # 30 % of 200 flipped at random


def test_make_data_reward_choices_are_the_true_reward_kinds() -> None:
    # the CLI spells the kinds out (it does not import torch at start-up); they must stay TrueReward's
    import argparse

    from r3m.cli import build_parser
    from r3m.synthetic import REWARD_KINDS

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    reward = next(a for a in sub.choices["make-data"]._actions if a.dest == "reward")
    assert tuple(reward.choices) == REWARD_KINDS


def test_json_output_is_strict_json_without_corrupted_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Oracle labels: no pair is corrupted, so recall and AUROC are undefined (NaN). --json printed a bare NaN,
    # which is not JSON (review finding); it is null now, and so in the run's files.
    def strict(text: str) -> object:
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))

    data = tmp_path / "pairs.jsonl"
    assert main(["make-data", "--n", "200", "--T", "2", "--D", "3", "--teacher", "oracle", "--out", str(data)]) == 0
    run = tmp_path / "run"
    assert main(["train-reward", "--data", str(data), "--out", str(run), "--epochs", "1", "--json"]) == 0
    capsys.readouterr()
    assert main(["audit", "--run", str(run), "--data", str(data), "--json"]) == 0
    report = strict(capsys.readouterr().out)
    assert isinstance(report, dict)
    assert report["auroc"] is None
    for path in run.glob("*.json"):
        strict(path.read_text())


def _text_data(tmp_path: Path, n: int) -> Path:
    """``tmp_path/train.jsonl``: ``n`` TRL prompt/chosen/rejected records written by ``make-data --source text``."""
    train = tmp_path / "train.jsonl"
    assert main(["make-data", "--source", "text", "--n", str(n), "--out", str(train)]) == 0
    return train


@pytest.mark.parametrize("losses", ["sigmoid,kto", " , ", ""])
def test_dpo_unknown_or_empty_losses_are_refused_before_training(
    losses: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # review finding: an empty list exited 0 with an empty table; an unknown name was found only after the known
    # names before it had trained
    with pytest.raises(SystemExit):
        main(["dpo", "--toy", "--losses", losses, "--out", str(tmp_path / "out")])
    assert "--losses must be a comma list of r3m, sigmoid, conservative, robust, ipo, hinge" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_dpo_run_folders_are_checked_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # user report: a new run into a used --out picked up the earlier run's checkpoints on the next --resume,
    # and --out naming a file failed only after every loss had trained
    pytest.importorskip("trl")
    train = _text_data(tmp_path, 16)
    out = tmp_path / "dpo"
    argv = ["dpo", "--data", str(train), "--losses", "r3m", "--epochs", "1", "--batch-size", "8", "--lr", "1e-3",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert json.loads((out / "results.json").read_text())["r3m"]["global_step"] == 2  # 16 pairs / --batch-size 8
    assert json.loads((out / "r3m" / "run_args.json").read_text())["lr"] == 1e-3
    capsys.readouterr()
    for extra, message in (
        ([], "holds the checkpoints of an earlier run; pass --resume"),
        (["--resume", "--lam", "0.6"], "lam (0.75 there, 0.6 here)"),
    ):
        with pytest.raises(SystemExit):
            main([*argv, *extra])
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv[:-1], str(train)])
    assert "is a file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["dpo", "--data", str(train), "--losses", "r3m", "--out", str(tmp_path / "new"), "--resume"])
    assert "--resume needs the checkpoints" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    # a run interrupted before a later loss's first checkpoint resumes: the finished loss from its checkpoint,
    # the other afresh (review finding: it could be neither resumed nor rerun)
    (out / "sigmoid").mkdir()  # what an interruption in sigmoid's first epoch leaves
    assert main([*argv[:1], *argv[1:4], "r3m,sigmoid", *argv[5:], "--resume", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["r3m"]["global_step"] == result["sigmoid"]["global_step"] == 2


def test_dpo_bare_resume_continues_the_run_as_begun(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # user report: a bare --resume took the defaults (--batch-size 16, --losses r3m,sigmoid) instead of the
    # run's, was refused for the batch size, and with the batch size given trained a new sigmoid run
    pytest.importorskip("trl")
    train = _text_data(tmp_path, 16)
    out = tmp_path / "dpo"
    assert main(["dpo", "--data", str(train), "--losses", "r3m", "--epochs", "1", "--batch-size", "8", "--lr", "1e-3",
                 "--lam", "0.6", "--beta", "0.2", "--out", str(out)]) == 0  # fmt: skip
    settings = json.loads((out / "config.json").read_text())
    assert settings["losses"] == ["r3m"]
    assert (settings["batch_size"], settings["lr"], settings["lam"], settings["beta"]) == (8, 1e-3, 0.6, 0.2)
    capsys.readouterr()
    assert main(["dpo", "--resume", "--epochs", "2", "--out", str(out), "--json"]) == 0  # no --data either
    result = json.loads(capsys.readouterr().out)
    assert list(result) == ["r3m"]
    assert result["r3m"]["global_step"] == 4  # 16 pairs / the run's batch size 8, over 2 epochs
    assert not (out / "sigmoid").exists()
    assert json.loads((out / "config.json").read_text())["epochs"] == 2
    # a run of an earlier version: config.json written at the end, without batch size and lr, the tiny model in
    # words (review finding: it could not be resumed, "--model (None there, 'tiny GPT-2 from scratch' here)")
    old_format = {"data": str(train), "model": "tiny GPT-2 from scratch", "losses": ["r3m"], "lam": 0.6, "beta": 0.2,
                  "seed": 0, "version": "0.1.0.dev0"}  # fmt: skip
    (out / "config.json").write_text(json.dumps(old_format))
    assert main(["dpo", "--resume", "--epochs", "3", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["r3m"]["global_step"] == 6
    (out / "config.json").unlink()  # and one interrupted before it wrote any: each loss's run_args.json
    assert main(["dpo", "--data", str(train), "--resume", "--epochs", "4", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["r3m"]["global_step"] == 8
    # a --config file's value is given, as a flag is (flag > file > run, as train-reward --resume)
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"batch_size": 4}))
    with pytest.raises(SystemExit):
        main(["dpo", "--resume", "--epochs", "5", "--config", str(conf), "--out", str(out)])
    assert "--batch-size (8 there, 4 here)" in capsys.readouterr().err
    # fewer epochs than the run has trained are refused, as train-reward --resume refuses them (it warned and
    # reported the longer run)
    with pytest.raises(SystemExit):
        main(["dpo", "--resume", "--epochs", "3", "--out", str(out)])
    assert "error: --epochs must be >= 4 to resume the run in" in capsys.readouterr().err


def test_dpo_resume_of_some_losses_keeps_the_others_and_a_refused_run_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # review findings: resuming one loss of a two-loss run cut the records (results.json, config.json's losses)
    # to that loss; a run refused for a bad --batch-size left a config.json behind
    pytest.importorskip("trl")
    train = _text_data(tmp_path, 16)
    out = tmp_path / "dpo"
    with pytest.raises(SystemExit):
        main(["dpo", "--data", str(train), "--batch-size", "0", "--out", str(out)])
    assert "--batch-size must be an int >= 1" in capsys.readouterr().err
    assert not out.exists()
    assert main(["dpo", "--data", str(train), "--epochs", "1", "--batch-size", "8", "--out", str(out)]) == 0
    assert main(["dpo", "--resume", "--losses", "sigmoid", "--epochs", "2", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert (results["r3m"]["global_step"], results["sigmoid"]["global_step"]) == (2, 4)
    assert json.loads((out / "config.json").read_text())["losses"] == ["r3m", "sigmoid"]


def test_dpo_refuses_repeated_losses_ignored_lam_and_the_other_kind_of_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # review findings: --losses r3m,r3m failed after the first training; --toy took (and recorded) an unused
    # --lam 5; --toy into an LM run's --out replaced its config.json and results.json
    pytest.importorskip("trl")
    train = _text_data(tmp_path, 8)
    lm = ["dpo", "--data", str(train), "--epochs", "1", "--batch-size", "8"]
    for argv, message in (
        ([*lm, "--losses", "r3m,sigmoid,r3m", "--out", str(tmp_path / "twice")], "--losses names r3m twice"),
        (["dpo", "--toy", "--losses", "sigmoid", "--lam", "5", "--pairs", "100", "--out", str(tmp_path / "toy")],
         "--lam applies to the r3m loss, which --losses does not name (sigmoid)"),
    ):  # fmt: skip
        with pytest.raises(SystemExit):
            main(argv)
        assert message in capsys.readouterr().err
    assert not (tmp_path / "twice").exists()
    assert not (tmp_path / "toy").exists()
    assert main([*lm, "--losses", "sigmoid", "--out", str(tmp_path / "run")]) == 0
    before = (tmp_path / "run" / "results.json").read_text()
    with pytest.raises(SystemExit):
        main(["dpo", "--toy", "--pairs", "100", "--epochs", "1", "--out", str(tmp_path / "run")])
    assert "holds a language-model run (--data); choose another --out" in capsys.readouterr().err
    assert (tmp_path / "run" / "results.json").read_text() == before
    assert main(["dpo", "--toy", "--pairs", "100", "--epochs", "1", "--out", str(tmp_path / "toy")]) == 0
    with pytest.raises(SystemExit):
        main([*lm, "--out", str(tmp_path / "toy")])
    assert "holds the toy's results (--toy); choose another --out" in capsys.readouterr().err


def test_dpo_reads_every_standard_trl_form(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # implicit prompts are extracted as TRL does; message lists and non-bool corruption flags are named errors
    from r3m.lm_text import explicit_prompt_records

    got = explicit_prompt_records([{"chosen": "Q: 2+2? A: 4", "rejected": "Q: 2+2? A: 5", "id": "a"}], "f")
    assert got == [{"prompt": "Q: 2+2? A:", "chosen": " 4", "rejected": " 5", "id": "a"}]
    with pytest.raises(ValueError, match="share no prefix"):
        explicit_prompt_records([{"chosen": "yes", "rejected": "no"}], "f")
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"prompt": [{"role": "user", "content": "hi"}],
                                "chosen": [{"role": "assistant", "content": "hello"}],
                                "rejected": [{"role": "assistant", "content": "go"}]}) + "\n")  # fmt: skip
    flags = tmp_path / "flags.jsonl"
    flags.write_text("".join(json.dumps({"prompt": "1+1=", "chosen": "2", "rejected": "3", "corrupted": c}) + "\n"
                             for c in (False, "yes")))  # fmt: skip
    for path, message in ((chat, "need the model's chat template"), (flags, "record 2 (counting from 1) has 'yes'")):
        with pytest.raises(SystemExit):
            main(["dpo", "--data", str(path), "--out", str(tmp_path / "o")])
        assert message in capsys.readouterr().err


def test_train_reward_refuses_to_overwrite_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # user report: a new run into a finished run's folder replaced its checkpoint, model and history silently
    data = tmp_path / "pairs.jsonl"
    assert main(["make-data", "--n", "100", "--T", "2", "--D", "2", "--out", str(data)]) == 0
    run = tmp_path / "run"
    assert main(["train-reward", "--data", str(data), "--out", str(run), "--epochs", "1"]) == 0
    capsys.readouterr()
    before = (run / "history.json").read_text()
    with pytest.raises(SystemExit):
        main(["train-reward", "--data", str(data), "--out", str(run), "--epochs", "1"])
    assert "holds a run (checkpoint.pt); pass --resume" in capsys.readouterr().err
    assert (run / "history.json").read_text() == before


def test_train_reward_reports_the_kept_epoch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the summary describes the saved model (the epoch early stopping kept), not the last epoch trained
    data = tmp_path / "pairs.jsonl"
    assert main(["make-data", "--n", "400", "--T", "2", "--D", "3", "--teacher-param", "0.3", "--out", str(data)]) == 0
    capsys.readouterr()
    run = tmp_path / "run"
    config = tmp_path / "c.json"
    config.write_text('{"patience": 8}')  # train all 8 epochs; a high lr so the last is not the best
    argv = [
        "train-reward",
        "--data",
        str(data),
        "--out",
        str(run),
        "--epochs",
        "8",
        "--lr",
        "0.05",
        "--config",
        str(config),
    ]
    assert main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    history = json.loads((run / "history.json").read_text())
    kept = history["epochs"][history["best_epoch"] - 1]
    assert history["best_epoch"] < 8  # else the test could not tell the kept epoch from the last
    assert summary["epoch"] == history["best_epoch"]
    assert summary["val_accuracy"] == kept["val_accuracy"]
    assert summary["val_accuracy"] == max(r["val_accuracy"] for r in history["epochs"])
    assert summary["epochs_run"] == len(history["epochs"]) == 8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["make-data", "--source", "text", "--teacher", "myopic"], "--source text takes --teacher flip or oracle"),
        (["make-data", "--out", "."], "is a folder; give the file to write"),
        (["dpo", "--toy", "--device", "cuda"], "the toy runs on the CPU"),
        (["dpo", "--toy", "--resume"], "--resume applies to the language-model run"),
        (["make-data", "--env", "CartPole-v1"], "--env applies to --source gym, not to --source synthetic"),
        (["make-data", "--source", "gym", "--T", "5", "--D", "3"], "--T, --D apply to --source synthetic, not to"),
        (
            ["make-data", "--source", "text", "--seg-len", "5"],
            "--seg-len applies to --source gym, not to --source text",
        ),
        (["make-data", "--teacher", "oracle", "--rate", "0.1"], "--teacher oracle takes no --teacher-param, got 0.1"),
        (["make-data", "--source", "text", "--T", "0"], "--T applies to --source synthetic"),  # 0 is given too
        (
            ["train-reward", "--data", "x.jsonl", "--eps", "0.2"],
            "--eps applies to --loss cbt or rbt, not to --loss r3m",
        ),
        (["train-reward", "--data", "x.jsonl", "--loss", "bt", "--beta", "2"], "--beta applies to --loss ipo or hinge"),
    ],
)
def test_make_data_and_dpo_refuse_options_they_would_ignore(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["make-data", "--n", "0"], "argument --n: must be >= 1, got 0"),
        (["make-data", "--D", "0"], "r3m make-data: error: --D must be an int >= 1, got 0"),  # dim
        (["make-data", "--teacher", "myopic", "--rate", "3"], "--teacher-param must be in (0, 1], got 3.0"),  # gamma
        (
            ["make-data", "--source", "gym", "--seg-len", "0"],
            "r3m make-data: error: --seg-len must be an int >= 1, got 0",
        ),
        (["train-reward", "--data", "x.jsonl", "--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
        (["dpo", "--toy", "--pairs", "0"], "r3m dpo: error: --pairs must be an int >= 1, got 0"),  # n_pairs
        (["dpo", "--toy", "--epochs", "0"], "argument --epochs: must be >= 1, got 0"),  # trained nothing, said nothing
        (["train-reward", "--data", "x.jsonl", "--ep", "3"], "unrecognized arguments: --ep 3"),  # no abbreviations
    ],
)
def test_errors_name_the_flag_not_the_library_argument(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # user report: "n_pairs must be an int >= 1" for --n 0, "dim" for --D, "eps" for --teacher-param
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_warning_is_one_line_naming_the_flag_once(tmp_path: Path) -> None:
    # A real process (pytest records warnings instead of printing them): the default format showed the library's
    # file and source line, and one warning per line of code that raised it.
    data = tmp_path / "pairs.jsonl"
    assert main(["make-data", "--n", "200", "--T", "3", "--D", "4", "--out", str(data)]) == 0
    argv = ["train-reward", "--data", str(data), "--lam", "0.005", "--epochs", "1", "--out", str(tmp_path / "run")]
    proc = subprocess.run([sys.executable, "-m", "r3m", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "warning" in line.lower()]
    assert len(warned) == 1
    assert warned[0].startswith("r3m train-reward: warning: --lam = 0.005 flags every pair")
    assert "UserWarning" not in proc.stderr


def test_data_of_the_other_kind_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # review finding: text pairs given to train-reward read "missing key 'id'", segment pairs given to dpo
    # "'chosen' message 0 must be an object, got list"
    text, segs = tmp_path / "text.jsonl", tmp_path / "segs.jsonl"
    text.write_text(json.dumps({"prompt": "Q: 1+1? A:", "chosen": " 2", "rejected": " 3"}) + "\n")
    segs.write_text(json.dumps({"id": "a", "chosen": [[0.0, 1.0]], "rejected": [[1.0, 0.0]]}) + "\n")
    for argv, message in (
        (["train-reward", "--data", str(text), "--out", str(tmp_path / "r")], "text pairs are for `r3m dpo --data`"),
        (["dpo", "--data", str(segs), "--out", str(tmp_path / "d")], "segment pairs are for `r3m train-reward --data`"),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["make-data", "--seed", str(2**70)], "argument --seed: must be a 64-bit integer"),  # was "Overflow when"
        (["train-reward", "--data", "{data}", "--lr", "1e12", "--loss", "ipo", "--epochs", "3"],
         "training diverged in epoch"),
        (["train-reward", "--data", "{data}", "--loss", "ipo", "--beta", "1e-30", "--epochs", "1"],
         "or check the loss's settings (--beta=1e-30)"),  # it named --lr only
        (["dpo", "--toy", "--pairs", "200", "--epochs", "1", "--beta", "1e-30", "--losses", "ipo"], "loss ipo: "),
    ],
)  # fmt: skip
def test_extreme_settings_get_one_line_that_says_what_to_change(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "pairs.jsonl"
    assert main(["make-data", "--n", "200", "--T", "2", "--D", "3", "--out", str(data)]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([a.replace("{data}", str(data)) for a in argv] + ["--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    assert sum("error" in line for line in err) == 1  # argparse's usage, then one line
    if "diverged" in message and "--lr" in argv:
        assert "lower lr (now 1e+12)" in err[-1] or "lower --lr (now 1e+12)" in err[-1]
    if argv[0] == "dpo":
        assert "in epoch 1" in err[-1]  # 1-based, as everywhere else
        assert "try another --beta" in err[-1]


def test_a_small_lam_is_warned_about_in_audit_and_the_toy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the toy without the r3m loss does not use λ: a typed --lam is refused as unused (not as out of range)
    with pytest.raises(SystemExit):
        main(["dpo", "--toy", "--lam", "1.5", "--pairs", "200", "--epochs", "1", "--losses", "sigmoid"])
    assert "--lam applies to the r3m loss, which --losses does not name (sigmoid)" in capsys.readouterr().err
    # review finding: train-reward and dpo --data warned about a λ that looks like eq. 3.2's 1/n; audit and --toy not
    with pytest.warns(UserWarning, match="lam = 0.01 flags every pair"):
        assert main(["dpo", "--toy", "--lam", "0.01", "--pairs", "200", "--epochs", "1", "--losses", "r3m"]) == 0
    data = tmp_path / "pairs.jsonl"
    assert main(["make-data", "--n", "100", "--T", "2", "--D", "3", "--out", str(data)]) == 0
    assert main(["train-reward", "--data", str(data), "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    with pytest.warns(UserWarning, match="lam = 0.01 flags every pair"):
        assert main(["audit", "--run", str(tmp_path / "run"), "--data", str(data), "--lam", "0.01"]) == 0


def test_review_of_the_flag_renaming_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from r3m.cli import _flag_names, build_parser

    parser = build_parser()
    # "resume=True" is the switch, not "--resume=True" (which argparse refuses); a "(CLI: --x)" hint folds in
    assert _flag_names(parser, "dpo", "resume=True with other arguments than the run") == (
        "--resume with other arguments than the run"
    )
    assert (
        _flag_names(parser, "dpo", "pass resume=True (CLI: --resume) to continue it") == "pass --resume to continue it"
    )
    # a path the user gave keeps its text, even "seed=1.jsonl" or "runs/lr=0.01"
    ns = argparse.Namespace(data=Path("seed=1.jsonl"), out=Path("lr=0.01"))
    assert _flag_names(parser, "train-reward", "seed=1.jsonl:1: bad JSON", ns) == "seed=1.jsonl:1: bad JSON"
    assert _flag_names(parser, "train-reward", "checkpoint at lr=0.01/checkpoint.pt", ns) == (
        "checkpoint at lr=0.01/checkpoint.pt"
    )
    # a bare --resume takes the run's --val-fraction too (the split must be the run's)
    data = tmp_path / "pairs.jsonl"
    assert main(["make-data", "--n", "200", "--T", "2", "--D", "3", "--out", str(data)]) == 0
    run = tmp_path / "run"
    assert main(["train-reward", "--data", str(data), "--val-fraction", "0.2", "--seed", "3", "--epochs", "1",
                 "--out", str(run)]) == 0  # fmt: skip
    assert main(["train-reward", "--data", str(data), "--epochs", "2", "--resume", "--out", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["val_fraction"] == 0.2


def test_a_nested_main_restores_the_warning_and_log_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # review finding: overlapping main() calls left the outer call's formatter installed and propagate False
    import logging
    import warnings as _warnings

    from r3m import commands

    original, logger = _warnings.formatwarning, logging.getLogger("r3m")

    def demo(args: object) -> int:
        return main(["make-data", "--n", "20", "--T", "2", "--D", "2", "--out", str(tmp_path / "p.jsonl")])

    monkeypatch.setattr(commands, "demo", demo)
    assert main(["demo"]) == 0
    assert _warnings.formatwarning is original
    assert logger.propagate is True
    assert (tmp_path / "p.jsonl").is_file()


def test_paths_and_quoted_keys_keep_their_names() -> None:
    # review finding: "--data batch_size/bad.jsonl" was printed as "--batch-size/bad.jsonl"
    from r3m.cli import _flag_names, build_parser

    parser = build_parser()
    for text in ("batch_size/bad.jsonl:1: 'rejected' has shape (2,)", "checkpoint at runs/lam/x/checkpoint.pt",
                 "unknown TrainConfig key(s) ['val_fraction']", "seed_lam.jsonl:3: bad JSON"):  # fmt: skip
        assert _flag_names(parser, "train-reward", text) == text
    assert _flag_names(parser, "train-reward", "other settings: batch_size (64 there, 32 here); lam (0.5 there, "
                       "0.3 here); seed (0 there, 1 here)") == (
        "other settings: --batch-size (64 there, 32 here); --lam (0.5 there, 0.3 here); --seed (0 there, 1 here)"
    )  # fmt: skip
    assert (
        _flag_names(parser, "make-data", "seg_len must be an int >= 1, got 0") == "--seg-len must be an int >= 1, got 0"
    )


def test_run_and_data_folders_are_named_by_their_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # review finding: "cannot read the checkpoint nope/model.pt: [Errno 2] ...", "[Errno 21] Is a directory"
    data = tmp_path / "pairs.jsonl"
    assert main(["make-data", "--n", "50", "--T", "2", "--D", "3", "--out", str(data)]) == 0
    (tmp_path / "empty").mkdir()
    cases = [
        (["audit", "--run", str(tmp_path / "nope"), "--data", str(data)], f"--run {tmp_path / 'nope'}: no such folder"),
        (["audit", "--run", str(data), "--data", str(data)], f"--run {data} is a file; give the run's folder"),
        (["audit", "--run", str(tmp_path / "empty"), "--data", str(data)], "holds no model.pt: give a folder written"),
        (["train-reward", "--data", str(tmp_path), "--out", str(tmp_path / "r")], f"--data {tmp_path} is a folder"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit):
            main(argv)
        err = capsys.readouterr().err
        assert message in err, argv
        assert "Errno" not in err


def test_a_bare_resume_finishes_the_run_as_begun(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # review finding: `--resume` without --epochs trained a 10-epoch run to the default 5 and recorded epochs 5
    from r3m.config import TrainConfig
    from r3m.data import PreferenceData
    from r3m.trainer import RewardTrainer

    data = tmp_path / "pairs.jsonl"
    assert main(["make-data", "--n", "300", "--T", "2", "--D", "3", "--out", str(data)]) == 0
    pairs = PreferenceData.from_jsonl(data)
    train, val = pairs.split(0.1, torch.Generator().manual_seed(0))  # train-reward's split at seed 0

    def stop(epoch: int, record: dict[str, float]) -> None:
        raise KeyboardInterrupt

    cfg = TrainConfig(epochs=7, early_stopping="none", lam=0.6)
    with pytest.raises(KeyboardInterrupt):
        RewardTrainer(cfg).fit(train, val, out_dir=tmp_path / "run", progress=False, callback=stop)
    capsys.readouterr()
    assert main(["train-reward", "--data", str(data), "--out", str(tmp_path / "run"), "--resume", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs_run"] == 7
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"] == cfg.to_dict()
    with pytest.raises(SystemExit):  # a setting given on the line still has to match the run's
        main(["train-reward", "--data", str(data), "--out", str(tmp_path / "run"), "--resume", "--lam", "0.5"])
    assert "--lam (0.6 there, 0.5 here)" in capsys.readouterr().err


def test_a_config_files_options_that_do_not_apply_are_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # review finding: one file for several sources was refused ("--T, --D apply to --source synthetic") although
    # the command line gave no --T; the file's values are defaults, and a default that does not apply is not used
    conf = tmp_path / "m.toml"
    conf.write_text("T = 3\nD = 2\nrate = 0.1\n")
    assert (
        main(["make-data", "--config", str(conf), "--source", "text", "--n", "20", "--out", str(tmp_path / "t")]) == 0
    )
    assert (
        main(["make-data", "--config", str(conf), "--teacher", "oracle", "--n", "20", "--out", str(tmp_path / "o")])
        == 0
    )
    assert main(["make-data", "--config", str(conf), "--n", "20", "--out", str(tmp_path / "s.jsonl")]) == 0
    first = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[0])
    assert (len(first["chosen"]), len(first["chosen"][0])) == (3, 2)  # where they apply, they are used
    with pytest.raises(SystemExit):  # given on the command line, an inapplicable flag is still refused
        main(["make-data", "--config", str(conf), "--source", "text", "--T", "4", "--out", str(tmp_path / "x")])
    assert "--T applies to --source synthetic" in capsys.readouterr().err
    toy = tmp_path / "toy.toml"
    toy.write_text("toy = true\n")
    with pytest.raises(SystemExit):
        main(["dpo", "--config", str(toy), "--data", "x.jsonl"])
    assert f"not to --toy (--toy set by --config {toy})" in capsys.readouterr().err


def test_logged_warnings_are_one_line_each_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # review finding: auditing clean data printed "outlier_auroc: only one class ..." twice (δ and margin AUROC)
    data = tmp_path / "pairs.jsonl"
    assert main(["make-data", "--n", "200", "--T", "2", "--D", "3", "--teacher", "oracle", "--out", str(data)]) == 0
    assert main(["train-reward", "--data", str(data), "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["audit", "--run", str(tmp_path / "run"), "--data", str(data)]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines, "clean labels: recall and AUROC are undefined, which the audit says"
    assert all(line.startswith("r3m audit: warning: ") for line in lines)
    assert len(lines) == len(set(lines))


def test_config_file_numbers_may_be_quoted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # TrainConfig fields in a file took only typed values ("1" was refused) while option keys converted strings
    data = tmp_path / "pairs.jsonl"
    assert main(["make-data", "--n", "100", "--T", "2", "--D", "3", "--out", str(data)]) == 0
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"epochs": "1", "lr": "0.01", "val_fraction": "0.2"}))
    assert main(["train-reward", "--data", str(data), "--config", str(conf), "--out", str(tmp_path / "a")]) == 0
    assert main(["train-reward", "--data", str(data), "--epochs", "1", "--lr", "0.01", "--val-fraction", "0.2",
                 "--out", str(tmp_path / "b")]) == 0  # fmt: skip
    capsys.readouterr()
    a, b = (json.loads((tmp_path / run / "config.json").read_text()) for run in "ab")
    assert a["train"] == b["train"]
    assert (a["train"]["epochs"], a["train"]["lr"], a["val_fraction"]) == (1, 0.01, 0.2)


def test_interrupt_is_one_line_and_points_to_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from r3m import commands

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "train_reward", interrupted)
    assert main(["train-reward", "--data", "x.jsonl"]) == 130
    assert capsys.readouterr().err.strip() == (
        "r3m train-reward: interrupted; rerun with --resume to continue from the last checkpoint in --out (one per epoch)"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dpo", "--toy", "--lr", "1e-5"], "--lr applies only to the language-model run, not to --toy"),
        (["dpo", "--toy", "--batch-size", "3"], "--batch-size applies only to the language-model run, not to --toy"),
        (["dpo", "--toy", "--data", "x.jsonl"], "--data applies only to the language-model run, not to --toy"),
        (["dpo", "--data", "x.jsonl", "--flip-rate", "0.4"], "--pairs and --flip-rate set up the toy"),
    ],
)
def test_dpo_refuses_options_of_the_other_mode(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # --flip-rate with --data was ignored silently: a user asking for 40 % flips trained on the file's labels
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def test_report_on_data_of_another_feature_dimension_names_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["make-data", "--n", "60", "--T", "2", "--D", "3", "--out", str(a)]) == 0
    assert main(["make-data", "--n", "60", "--T", "2", "--D", "4", "--out", str(b)]) == 0
    run = tmp_path / "run"
    assert main(["train-reward", "--data", str(a), "--out", str(run), "--epochs", "1"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["audit", "--run", str(run), "--data", str(b)])
    assert f"{b} has 4 features per step; the run in {run} was trained on 3" in capsys.readouterr().err


def test_a_missing_input_file_is_named_by_its_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train-reward", "--data", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "run")])
    assert exc.value.code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .endswith(f"--data {tmp_path / 'nope.jsonl'}: no such file or folder")
    )


def test_bench_records_the_r3m_command_line(tmp_path: Path) -> None:
    # review finding: the record named `__main__.py bench ...` or the console script's path, not what was typed
    out = tmp_path / "b"
    assert main(["bench", "--quick", "--only", "overhead", "--out", str(out)]) == 0
    assert (
        json.loads((out / "overhead-quick.json").read_text())["command"]
        == f"r3m bench --quick --only overhead --out {out}"
    )
    assert not list(out.glob("*.partial.json"))


def test_an_unwritable_output_names_its_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # review finding: the error named the hidden temporary file of the atomic write ('.x.jsonl.oenikesz.tmp')
    blocker = tmp_path / "file"
    blocker.write_text("")
    data = tmp_path / "pairs.jsonl"
    assert main(["make-data", "--n", "40", "--T", "2", "--D", "2", "--out", str(data)]) == 0
    for argv, flag in (
        (
            ["make-data", "--n", "5", "--T", "2", "--D", "2", "--out", str(blocker / "x.jsonl")],
            f"--out {blocker / 'x.jsonl'}",
        ),
        (
            ["train-reward", "--data", str(data), "--epochs", "1", "--out", str(blocker / "run")],
            f"--out {blocker / 'run'}",
        ),
    ):
        capsys.readouterr()
        with pytest.raises(SystemExit):
            main(argv)
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.endswith(f"{flag}: cannot write there ({blocker} is a file)"), err
        assert ".tmp" not in err


def test_a_missing_file_in_a_run_is_not_called_an_unwritable_out(tmp_path: Path) -> None:
    # review finding: a damaged run (a checkpoint file gone) read as "--out X: cannot write there"
    import argparse

    from r3m.cli import _unwritable_output

    args = argparse.Namespace(out=tmp_path / "run")
    read = FileNotFoundError(
        2, "No such file or directory", str(tmp_path / "run" / "checkpoint-4" / "trainer_state.json")
    )
    assert _unwritable_output(args, read) is None
    temp = FileNotFoundError(2, "No such file or directory", str(tmp_path / "run" / ".config.json.tmp"))
    assert _unwritable_output(args, temp) == f"--out {tmp_path / 'run'}: cannot write there (No such file or directory)"
    denied = PermissionError(13, "Permission denied", str(tmp_path / "run"))
    assert _unwritable_output(args, denied) == f"--out {tmp_path / 'run'}: cannot write there (Permission denied)"


def test_dpo_resume_is_checked_for_every_loss_first_and_may_add_a_loss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # review findings: a resume refused at its second loss had trained the first and rewritten config.json
    # (the run then resumed neither way); a loss could not be added on its own (--resume), and a new run of
    # another loss into the --out replaced the run's records
    pytest.importorskip("trl")
    train = _text_data(tmp_path, 16)
    out = tmp_path / "dpo"
    base = ["dpo", "--data", str(train), "--epochs", "1", "--batch-size", "8", "--out", str(out)]
    assert main([*base, "--losses", "r3m", "--lam", "0.6"]) == 0
    before = (out / "config.json").read_text()
    with pytest.raises(SystemExit):
        main([*base, "--resume", "--losses", "sigmoid,r3m", "--lam", "0.5"])
    assert "--lam (0.6 there, 0.5 here)" in capsys.readouterr().err
    assert not (out / "sigmoid").exists()
    assert (out / "config.json").read_text() == before
    with pytest.raises(SystemExit):
        main([*base, "--losses", "ipo"])
    assert "holds the checkpoints of an earlier run; pass --resume to continue it (or to add a loss" in (
        capsys.readouterr().err
    )
    assert main(["dpo", "--resume", "--losses", "ipo", "--out", str(out)]) == 0
    assert set(json.loads((out / "results.json").read_text())) == {"r3m", "ipo"}
    assert json.loads((out / "config.json").read_text())["losses"] == ["r3m", "ipo"]


def test_a_missing_model_folder_names_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # review finding: "model path 'x' is not an existing directory" named the library's argument
    pytest.importorskip("trl")
    train = _text_data(tmp_path, 8)
    with pytest.raises(SystemExit):
        main(["dpo", "--data", str(train), "--model", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"r3m dpo: error: --model {str(tmp_path / 'none')!r} is not an existing directory")
    assert not (tmp_path / "o").exists()
    # the folder's name is the user's, whatever it holds (a review found "seed=1" turned into "--seed=1")
    with pytest.raises(SystemExit):
        main(["dpo", "--data", str(train), "--model", str(tmp_path / "ckpt seed=1,batch_size=8"), "--out",
              str(tmp_path / "o")])  # fmt: skip
    assert f"--model {str(tmp_path / 'ckpt seed=1,batch_size=8')!r} is not" in capsys.readouterr().err


def test_a_bare_dpo_resume_finishes_each_loss_to_its_own_epochs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # review finding: losses of one run resumed to different epochs; a bare --resume took the first loss's
    # epochs for all and was refused ("--epochs must be >= 2 ... got 1"), a flag the user had not given
    pytest.importorskip("trl")
    train = _text_data(tmp_path, 16)
    out = tmp_path / "dpo"
    base = ["--data", str(train), "--batch-size", "8", "--out", str(out)]
    assert main(["dpo", *base, "--losses", "sigmoid,r3m", "--epochs", "1"]) == 0
    assert main(["dpo", *base, "--resume", "--losses", "r3m", "--epochs", "2"]) == 0
    capsys.readouterr()
    with pytest.warns(UserWarning, match="nothing to resume"):
        assert main(["dpo", "--resume", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["sigmoid"]["global_step"], result["r3m"]["global_step"]) == (2, 4)  # 16 pairs / 8 per step
    assert json.loads((out / "config.json").read_text())["epochs"] == 2
