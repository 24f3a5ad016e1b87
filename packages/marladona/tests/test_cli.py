"""Tests of the ``marladona`` command line: --version, --help, info, and the console script."""

from __future__ import annotations

import importlib.util
import json
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata, resources
from pathlib import Path

import pytest

from marladona.cli import EXIT_USAGE, TRAIN_PRESETS, main


def _version_from_file() -> str:
    # Read _version.py as text, independently of the import machinery.
    text = resources.files("marladona").joinpath("_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    assert match is not None
    return match.group(1)


def test_version_flag_prints_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    # Two independent sources: the installed distribution metadata and the text of _version.py.
    assert capsys.readouterr().out.strip() == f"marladona {metadata.version('marladona')}"
    assert metadata.version("marladona") == _version_from_file()


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "eval", "replay", "bench", "demo", "info"):
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
    assert report["package"] == "marladona"
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


def test_train_presets_listed_in_the_parser_are_the_trainers() -> None:
    from marladona.train import TRAIN_PRESETS as REAL

    assert set(TRAIN_PRESETS) == set(REAL)


def test_train_then_resume_then_eval_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ["train", "--preset", "cpu-idle", "--num-envs", "8", "--iterations", "1", "--out", str(out)]
    assert main(args) == 0
    assert (out / "checkpoint.pt").is_file()
    assert (out / "log.csv").is_file()
    assert main(args) == EXIT_USAGE  # refuses to overwrite the run
    assert "already holds a run" in capsys.readouterr().err
    assert main([*args[:-4], "--iterations", "2", "--out", str(out), "--resume"]) == 0
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    capsys.readouterr()
    report = tmp_path / "eval.json"
    code = main(["eval", str(out / "checkpoint.pt"), "--opponent", "idle", "--episodes", "4", "--json", str(report)])
    assert code == 0
    assert "| 1v1 |" in capsys.readouterr().out
    result = json.loads(report.read_text())
    r = result["per_size"]["1v1"]
    assert r["wins"] + r["draws"] + r["losses"] == 4


def test_eval_and_replay_against_an_earlier_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from marladona.checkpoint import load_policy
    from marladona.config import SoccerConfig
    from marladona.env import SoccerEnv
    from marladona.players import PolicyPlayer, make_player

    out = tmp_path / "run"
    args = ["train", "--preset", "cpu-idle", "--num-envs", "8", "--iterations", "1", "--out", str(out)]
    assert main(args) == 0
    early = tmp_path / "early.pt"
    shutil.copy(out / "checkpoint.pt", early)
    assert main([*args[:-4], "--iterations", "3", "--out", str(out), "--resume"]) == 0
    latest = out / "checkpoint.pt"
    # the earlier checkpoint plays red with its own weights, not the latest ones and not idle
    env = SoccerEnv(SoccerConfig(num_envs=4, max_team_size=1, team_size_range=(1, 1), obs_noise=False))
    env.reset(seed=0)
    red = make_player(str(early)).act(env.state, env.cfg, 1)
    assert torch.equal(red, PolicyPlayer(load_policy(early), deterministic=True).act(env.state, env.cfg, 1))
    assert not torch.equal(red, PolicyPlayer(load_policy(latest), deterministic=True).act(env.state, env.cfg, 1))
    assert red.abs().sum() > 0
    capsys.readouterr()
    report = tmp_path / "eval.json"
    code = main(["eval", str(latest), "--opponent", str(early), "--episodes", "4", "--json", str(report)])
    assert code == 0
    r = json.loads(report.read_text())["per_size"]["1v1"]
    assert r["wins"] + r["draws"] + r["losses"] == 4
    if importlib.util.find_spec("PIL") is not None:  # the GIF needs Pillow ([render] extra)
        gif = tmp_path / "game.gif"
        assert main(["replay", str(latest), str(early), "--out", str(gif), "--steps", "4"]) == 0
        from PIL import Image

        with Image.open(gif) as im:
            assert im.n_frames == 5  # the start and 4 steps


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path / "missing.pt")]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("marladona eval: error:")
    assert "does not exist" in err
    assert len(err.splitlines()) == 1
    assert main(["train", "--out", str(tmp_path / "x"), "--iterations", "1", "--device", "bogus"]) == EXIT_USAGE
    assert "--device" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "x")]) == EXIT_USAGE
    assert "--minutes or --iterations" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["eval", "x.pt", "--team-sizes", "1x1"])
    assert exc.value.code == 2


def test_bench_reports_agent_steps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--num-envs", "16", "--team-size", "2", "--steps", "3", "--threads", "1"]) == 0
    assert "agent-steps/s" in capsys.readouterr().out


def test_replay_writes_a_gif(tmp_path: Path) -> None:
    pytest.importorskip("PIL", reason="GIF writing needs Pillow ([render] extra)")
    out = tmp_path / "game.gif"
    assert main(["replay", "heuristic", "idle", "--out", str(out), "--steps", "6"]) == 0
    from PIL import Image

    with Image.open(out) as im:
        assert im.n_frames == 7  # the start and 6 steps


def test_demo_plays_the_shipped_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("PIL", reason="GIF writing needs Pillow ([render] extra)")
    out = tmp_path / "demo.gif"
    assert main(["demo", "--episodes", "8", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "marladona train" in text  # the command that trained the shipped policy
    assert "against idle" in text
    assert "against heuristic" in text
    assert out.is_file()


def test_demo_train_retrains_briefly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("PIL", reason="GIF writing needs Pillow ([render] extra)")
    out = tmp_path / "demo.gif"
    assert main(["demo", "--train", "--minutes", "0.005", "--episodes", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "training a 1v1 policy against an idle team for 0.005 min" in text
    assert "shipped 1v1 policy" not in text
    assert text.count("| 1v1 |") == 2  # W/D/L against idle and against the heuristic
    assert out.is_file()


def test_help_imports_no_heavy_dependency() -> None:
    # --help must stay fast: no numerical library may be imported to print it.
    code = (
        "import sys\n"
        "from marladona.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ['numpy', 'openai', 'pettingzoo', 'scipy', 'torch'] if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_console_script_runs_as_a_subprocess() -> None:
    script = shutil.which("marladona", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert script is not None, "console script marladona is not installed next to the interpreter"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"marladona {_version_from_file()}"


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "marladona", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: marladona")
