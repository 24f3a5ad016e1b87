"""Tests of the ``gsa-prompt`` command line: --version, --help, info, and the console script."""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata, resources
from pathlib import Path

import pytest

from gsa_prompt.cli import EXIT_ENDPOINT, EXIT_USAGE, METHOD_NAMES, TASK_KINDS, main
from gsa_prompt.testing import FakeServer


def _version_from_file() -> str:
    # Read _version.py as text, independently of the import machinery.
    text = resources.files("gsa_prompt").joinpath("_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    assert match is not None
    return match.group(1)


def test_version_flag_prints_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    # Two independent sources: the installed distribution metadata and the text of _version.py.
    assert capsys.readouterr().out.strip() == f"gsa-prompt {metadata.version('gsa-prompt')}"
    assert metadata.version("gsa-prompt") == _version_from_file()


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("ask", "eval", "serve-test", "demo", "info"):
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
    assert report["package"] == "gsa-prompt"
    assert report["version"] == _version_from_file()
    assert report["python"] == platform.python_version()
    assert report["executable"] == sys.executable
    import openai
    import tqdm

    assert report["openai"] == openai.__version__
    assert report["tqdm"] == tqdm.__version__
    assert report["cuda_available"] is None


def test_info_table_has_one_row_per_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert main(["info", "--json"]) == 0
    keys = list(json.loads(capsys.readouterr().out))
    assert [row.split()[0] for row in rows] == keys


def test_cli_names_match_the_library() -> None:
    from gsa_prompt.methods import METHODS
    from gsa_prompt.tasks import TASK_KINDS as KINDS

    assert tuple(METHODS) == METHOD_NAMES
    assert tuple(KINDS) == TASK_KINDS


def test_demo_runs_a_toy_world_over_http(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--items", "12", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = out["summary"]["methods"]
    assert list(rows) == ["greedy", "sc", "usc", "gsa"]
    assert all(rows[m]["n"] == 12 for m in rows)
    assert rows["gsa"]["calls_per_q"] == 4.0
    assert rows["greedy"]["calls_per_q"] == 1.0
    assert out["analytic"]["sc"] == pytest.approx(0.8133, abs=1e-4)


def _endpoint(server: FakeServer) -> list[str]:
    return ["--base-url", server.base_url, "--model", "fake-model"]


def test_ask_prints_the_answer_and_the_samples(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeServer() as server:
        assert main(["ask", "What is 20 + 22?", "--task", "answer_is", "--json", *_endpoint(server)]) == 0
        result = json.loads(capsys.readouterr().out)
        assert (result["method"], result["calls"], len(result["candidates"])) == ("gsa", 4, 3)
        assert server.stats()["by_role"] == {"sample": 1, "aggregate": 1}
        assert main(["ask", "What is 20 + 22?", "--task", "answer_is", "--method", "sc", "-n", "5", "-v",
                     *_endpoint(server)]) == 0  # fmt: skip
        captured = capsys.readouterr()
        assert captured.out.count("--- sample ") == 5
        assert "--- sc ---" in captured.out
        assert "[sc: 5 calls" in captured.err


def test_ask_endpoint_failures_exit_3_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeServer() as server:
        status = main(["ask", "What is 1 + 1?", "--base-url", server.base_url, "--model", "nope"])
    assert status == EXIT_ENDPOINT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "HTTP 404" in err[0]
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    status = main(["ask", "q?", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m", "--retries", "0"])
    assert status == EXIT_ENDPOINT
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "q?", "--base-url", "localhost:1", "--model", "m"], "base_url must be an http"),
        (["ask", "q?", "--method", "greedy", "-n", "3", "--base-url", "http://127.0.0.1:1/v1", "--model", "m"],
         "-n does not apply to greedy"),
        (["ask", "q?", "--price", "cheap", "--base-url", "http://127.0.0.1:1/v1", "--model", "m"], "--price must be"),
        (["eval", "--task", "poetry", "--sample", "--base-url", "http://127.0.0.1:1/v1", "--model", "m"],
         "--task must be one of"),
        (["eval", "--task", "gsm8k", "--sample", "--methods", "gsa,magic", "--base-url", "http://127.0.0.1:1/v1",
          "--model", "m"], "--methods must be"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


def test_eval_writes_its_run_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    with FakeServer() as server:
        argv = ["eval", "--task", "arithmetic", "--sample", "--methods", "greedy,sc,gsa", "--out", str(out), "--json",
                *_endpoint(server)]  # fmt: skip
        assert main(argv) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        n_items = summary["items"]
        assert set(summary["methods"]) == {"greedy", "sc", "gsa"}
        assert {p.name for p in out.iterdir()} >= {"items.jsonl", "summary.json", "summary.md", "cache.sqlite"}
        lines = (out / "items.jsonl").read_text().splitlines()
        assert len(lines) == 3 * n_items
        # Kill simulation: drop the last records (one cut in half); the rerun redoes only those, from the cache.
        (out / "items.jsonl").write_text("\n".join(lines[:-3]) + "\n" + lines[-3][:20], encoding="utf-8")
        server.reset()
        assert main(argv) == 0
        again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert server.stats()["completions"] == 0  # everything came from the cache
        for m in ("greedy", "sc", "gsa"):  # the same table, tokens and dollars included (cached samples count)
            for key in ("n", "correct", "accuracy", "calls_per_q"):
                assert again["methods"][m][key] == pytest.approx(summary["methods"][m][key]), (m, key)
            # tokens: a cached sample counts its share of the request that made it; methods that ask the same
            # sample prompt (sc, gsa) share samples, so the split can move a little, never to 0
            for key in ("prompt_tokens_per_q", "completion_tokens_per_q"):
                assert again["methods"][m][key] == pytest.approx(summary["methods"][m][key], rel=0.05), (m, key)
        assert [again["methods"][m]["correct"] for m in ("greedy", "sc", "gsa")] == [
            summary["methods"][m]["correct"] for m in ("greedy", "sc", "gsa")]  # fmt: skip
        assert len((out / "items.jsonl").read_text().splitlines()) == 3 * n_items + 1  # + the cut line, skipped


def test_eval_malformed_data_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"question": "What is 1 + 1?", "answer": "#### 2"}\n{not json\n', encoding="utf-8")
    assert main(["eval", "--task", "gsm8k", "--data", str(data), "--base-url", "http://127.0.0.1:1/v1",
                 "--model", "m"]) == EXIT_USAGE  # fmt: skip
    err = capsys.readouterr().err
    assert f"{data}:2" in err


def test_help_imports_no_heavy_dependency() -> None:
    # --help must stay fast: no numerical library may be imported to print it.
    code = (
        "import sys\n"
        "from gsa_prompt.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ['numpy', 'openai', 'pettingzoo', 'scipy', 'torch'] if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_console_script_runs_as_a_subprocess() -> None:
    script = shutil.which("gsa-prompt", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert script is not None, "console script gsa-prompt is not installed next to the interpreter"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"gsa-prompt {_version_from_file()}"


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "gsa_prompt", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: gsa-prompt")


def test_info_never_imports_torch() -> None:
    # gsa-prompt must not depend on torch: even the environment report leaves it unimported.
    code = (
        "import sys\n"
        "from gsa_prompt.cli import main\n"
        "assert main(['info', '--json']) == 0\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_eval_n_sets_the_samples_and_flags_are_not_abbreviated(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    with FakeServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)  # the default of --base-url
        argv = ["eval", "--task", "arithmetic", "--sample", "--limit", "2", "--methods", "sc,gsa", "--n", "5",
                "--model", "fake-model", "--out", str(tmp_path / "r"), "--json"]  # fmt: skip
        assert main(argv) == 0
        rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["methods"]
        assert rows["sc"]["calls_per_q"] == 5
        assert rows["gsa"]["calls_per_q"] == 6
    with pytest.raises(SystemExit):
        main(["eval", "--task", "arithmetic", "--sample", "--model", "m", "--n-m", "loop"])  # no prefix matching


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--concurrency", "0"], "--concurrency: max_concurrency must be an integer >= 1"),
        (["--timeout", "-1"], "--timeout: timeout_s must be a finite number > 0"),
        (["--price", "1,nan"], "--price: output_per_mtok must be a finite number >= 0"),
    ],
)
def test_errors_name_the_flag(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "q?", "--base-url", "http://127.0.0.1:1/v1", "--model", "m", *argv]) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_eval_validates_before_writing_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    assert main(["eval", "--task", "arithmetic", "--sample", "--budget", "1", "--methods", "gsa", "--out", str(out),
                 "--base-url", "http://127.0.0.1:1/v1", "--model", "m"]) == EXIT_USAGE  # fmt: skip
    assert "--budget: budget must be an integer >= 2" in capsys.readouterr().err
    assert not out.exists()
    afile = tmp_path / "file"
    afile.write_text("x")
    assert main(["eval", "--task", "arithmetic", "--sample", "--out", str(afile), "--base-url",
                 "http://127.0.0.1:1/v1", "--model", "m"]) == EXIT_USAGE  # fmt: skip
    assert "--out:" in capsys.readouterr().err


def test_unusable_out_or_cache_paths_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    with FakeServer() as server:
        base = ["eval", "--task", "arithmetic", "--sample", "--limit", "1", "--methods", "greedy",
                "--base-url", server.base_url, "--model", "m"]  # fmt: skip
        assert main([*base, "--out", str(afile / "run")]) == EXIT_USAGE  # a folder under a file
        err = capsys.readouterr().err
        assert "cannot write or read a file" in err
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert main([*base, "--out", str(tmp_path / "run"), "--cache", str(afile / "c.sqlite")]) == EXIT_USAGE
        err = capsys.readouterr().err
        assert str(afile) in err
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_eval_non_utf8_data_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "latin1.jsonl"
    data.write_bytes(
        b'{"question": "What is 1 + 1?", "answer": "#### 2"}\n{"question": "caf\xe9", "answer": "#### 1"}\n'
    )
    assert main(["eval", "--task", "gsm8k", "--data", str(data), "--base-url", "http://127.0.0.1:1/v1",
                 "--model", "m"]) == EXIT_USAGE  # fmt: skip
    assert f"{data}:2: not UTF-8" in capsys.readouterr().err


def test_serve_test_port_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve-test", "--port", "99999"]) == EXIT_USAGE
    assert "--port must be in 0..65535" in capsys.readouterr().err
    with FakeServer() as server:
        assert main(["serve-test", "--port", str(server.port)]) == EXIT_USAGE
        assert f"--port {server.port}: cannot listen" in capsys.readouterr().err


def test_missing_base_url_is_named(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    import importlib

    import gsa_prompt.cli as cli

    importlib.reload(cli)  # the default of --base-url is read when the parser is built
    assert cli.main(["ask", "q?", "--model", "m"]) == EXIT_USAGE
    assert "--base-url is required (or set OPENAI_BASE_URL)" in capsys.readouterr().err
