"""Tests of the ``adapref`` command line: --version, --help, info, and the console script."""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata, resources

import pytest

from adapref.cli import EXIT_NOT_READY, main


def _version_from_file() -> str:
    # Read _version.py as text, independently of the import machinery.
    text = resources.files("adapref").joinpath("_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    assert match is not None
    return match.group(1)


def test_version_flag_prints_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    # Two independent sources: the installed distribution metadata and the text of _version.py.
    assert capsys.readouterr().out.strip() == f"adapref {metadata.version('adapref')}"
    assert metadata.version("adapref") == _version_from_file()


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("info", "demo"):
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
    assert report["package"] == "adapref"
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


def test_demo_says_plainly_it_is_not_ready(capsys: pytest.CaptureFixture[str]) -> None:
    # Until the method lands, the demo must not pretend: it says so and exits non-zero.
    assert main(["demo"]) == EXIT_NOT_READY
    assert "not implemented yet" in capsys.readouterr().err


def test_help_imports_no_heavy_dependency() -> None:
    # --help must stay fast: no numerical library may be imported to print it.
    code = (
        "import sys\n"
        "from adapref.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ['numpy', 'openai', 'pettingzoo', 'scipy', 'torch'] if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_console_script_runs_as_a_subprocess() -> None:
    script = shutil.which("adapref", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert script is not None, "console script adapref is not installed next to the interpreter"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"adapref {_version_from_file()}"


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "adapref", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: adapref")
