"""Tests of gsa_prompt.sandbox: real child interpreters, no mocks; each run takes tens of milliseconds."""

from __future__ import annotations

import doctest
import json
import os
import socket
import time
from pathlib import Path

import pytest

from gsa_prompt import sandbox
from gsa_prompt.sandbox import (
    STATUSES,
    SandboxResult,
    extract_code,
    humaneval_program,
    mbpp_program,
    run_code_tests,
    run_many,
    run_program,
)

# A HumanEval-style task (format of openai/human-eval: prompt = signature + docstring, test = check()).
PROMPT = 'from typing import List\n\n\ndef running_max(xs: List[int]) -> List[int]:\n    """Prefix maxima."""\n'
BODY = "    out, best = [], None\n    for x in xs:\n        best = x if best is None else max(best, x)\n        out.append(best)\n    return out\n"
TEST = (
    "def check(candidate):\n    assert candidate([]) == []\n    assert candidate([1, 3, 2, 5, 4]) == [1, 3, 3, 5, 5]\n"
)


class TestHumanEval:
    def test_correct_body_passes(self) -> None:
        r = run_program(humaneval_program(PROMPT, BODY, TEST, "running_max"))
        assert (r.status, r.passed, r.returncode) == ("passed", True, 0), r.stderr

    def test_full_def_completion_keeps_imports_and_does_not_repeat_stub(self) -> None:
        completion = "def running_max(xs: List[int]) -> List[int]:\n" + BODY
        program = humaneval_program(PROMPT, completion, TEST, "running_max")
        assert program.count("def running_max(") == 1
        assert program.startswith("from typing import List")  # the prompt's import survives
        assert program.endswith("check(running_max)\n")
        assert run_program(program).passed

    def test_full_def_completion_keeps_prompt_helpers(self) -> None:
        # HumanEval/38-style prompt: a helper precedes the entry point; 2 * (1 + 1) = 4 by hand.
        prompt = 'def helper(x):\n    return x + 1\n\n\ndef f(x):\n    """Twice helper(x)."""\n'
        test = "def check(candidate):\n    assert candidate(1) == 4\n"
        assert run_program(humaneval_program(prompt, "def f(x):\n    return 2 * helper(x)\n", test, "f")).passed

    def test_wrong_solution_fails(self) -> None:
        r = run_program(humaneval_program(PROMPT, "    return sorted(xs)\n", TEST, "running_max"))
        assert (r.status, r.passed) == ("failed", False)
        assert r.detail.startswith("AssertionError")
        assert "AssertionError" in r.stderr

    def test_exception_in_candidate_is_error(self) -> None:
        r = run_program(humaneval_program(PROMPT, "    return xs[10]\n", TEST, "running_max"))
        assert r.status == "error"
        assert r.detail.startswith("IndexError")

    def test_main_block_is_skipped_like_human_eval(self) -> None:
        completion = BODY + "\n\nif __name__ == '__main__':\n    input()\n"
        assert run_program(humaneval_program(PROMPT, completion, TEST, "running_max")).passed


class TestMBPP:
    CODE = "def square_sum(n):\n    return sum(i * i for i in range(1, n + 1))\n"

    def test_assert_list_passes(self) -> None:
        tests = ["assert square_sum(1) == 1", "assert square_sum(3) == 14"]  # 1 + 4 + 9 by hand
        assert run_program(mbpp_program(self.CODE, tests)).status == "passed"

    def test_one_wrong_assert_fails(self) -> None:
        r = run_code_tests(self.CODE, ["assert square_sum(3) == 14", "assert square_sum(2) == 6"])
        assert r.status == "failed"

    def test_setup_code_runs_before_the_asserts(self) -> None:
        program = mbpp_program(self.CODE, ["assert square_sum(N) == 5"], test_setup_code="N = 2")
        assert program.index("N = 2") < program.index("assert")
        assert run_program(program).passed

    def test_tests_as_one_block(self) -> None:
        assert run_code_tests(self.CODE, "for n in range(5):\n    assert square_sum(n) >= 0\n").passed


class TestLimits:
    def test_infinite_loop_times_out_within_limit(self) -> None:
        t0 = time.monotonic()
        r = run_program("while True:\n    pass\n", timeout_s=1.0)
        wall = time.monotonic() - t0
        assert r.status == "timeout"
        assert not r.passed
        assert 1.0 <= r.duration_s <= wall < 2.5  # the spec allows limit + 1.5 s

    def test_timeout_keeps_output_written_before_the_kill(self) -> None:
        r = run_program("import time\nprint('start', flush=True)\ntime.sleep(30)\n", timeout_s=1.0)
        assert r.status == "timeout"
        assert r.returncode == -9
        assert r.stdout == "start\n"

    def test_ten_gigabytes_is_memory(self) -> None:
        r = run_program("x = bytearray(10**10)\n", mem_mb=256)
        assert (r.status, r.detail) == ("memory", "MemoryError")

    def test_address_space_limit_is_set(self) -> None:
        r = run_program("import resource\nprint(resource.getrlimit(resource.RLIMIT_AS)[0])\n", mem_mb=300)
        assert r.stdout.strip() == str(300 * 2**20)

    def test_stdout_flood_is_capped(self) -> None:
        flood = "import time\nend = time.monotonic() + 2.0\nwhile time.monotonic() < end:\n    print('x' * 99)\n"
        r = run_program(flood, timeout_s=10, max_output_bytes=4096)
        assert r.status == "passed"
        assert r.stdout_truncated
        assert r.truncated
        assert not r.stderr_truncated
        assert len(r.stdout.encode()) == 4096
        assert r.stdout == ("x" * 99 + "\n") * 40 + "x" * 96

    def test_endless_flood_times_out_with_capped_output(self) -> None:
        t0 = time.monotonic()
        r = run_program("while True:\n    print('y' * 999)\n", timeout_s=1.0, max_output_bytes=1000)
        assert time.monotonic() - t0 < 2.5
        assert r.status == "timeout"
        assert r.stdout == "y" * 999 + "\n"
        assert r.stdout_truncated

    def test_file_size_limit(self) -> None:
        r = run_program("with open('big', 'wb') as f:\n    f.write(b'x' * (17 * 2**20))\n")
        assert r.status == "error"
        assert "File too large" in r.detail

    def test_own_session(self) -> None:
        assert run_program("import os\nassert os.getsid(0) == os.getpid()\n").passed


class TestGuard:
    def test_socket_connect_is_blocked_and_never_arrives(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            port = listener.getsockname()[1]
            r = run_program(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\n")
            assert r.status == "blocked"
            assert "socket" in r.detail
            with pytest.raises(BlockingIOError):  # the child has exited: a connection would be queued
                listener.accept()

    def test_remove_outside_is_blocked_and_file_survives(self, tmp_path: Path) -> None:
        victim = tmp_path / "keep.txt"
        victim.write_text("precious")
        r = run_program(f"import os\nos.remove({str(victim)!r})\n")
        assert r.status == "blocked"
        assert "os.remove" in r.detail
        assert victim.read_text() == "precious"

    def test_write_outside_is_blocked(self, tmp_path: Path) -> None:
        target = tmp_path / "new.txt"
        r = run_program(f"open({str(target)!r}, 'w').write('x')\n")
        assert r.status == "blocked"
        assert not target.exists()

    def test_blocked_even_when_caught(self, tmp_path: Path) -> None:
        victim = tmp_path / "keep.txt"
        victim.write_text("x")
        r = run_program(f"import shutil\ntry:\n    shutil.rmtree({str(tmp_path)!r})\nexcept OSError:\n    pass\n")
        assert r.status == "blocked"
        assert victim.exists()

    def test_writing_inside_cwd_works(self) -> None:
        program = (
            "import os, shutil, tempfile\n"
            "with open('notes.txt', 'w') as f:\n    f.write('hello')\n"
            "assert open(os.path.join(os.getcwd(), 'notes.txt')).read() == 'hello'\n"
            "os.makedirs('a/b')\nos.rename('notes.txt', 'a/b/n.txt')\nshutil.rmtree('a')\n"
            "with tempfile.NamedTemporaryFile('w') as t:\n    t.write('y')\n"
            "print(os.getcwd())\n"
        )
        r = run_program(program)
        assert r.status == "passed", r.stderr
        assert not os.path.exists(r.stdout.strip())  # the sandbox directory is removed afterwards

    @pytest.mark.parametrize(
        "program",
        [
            "import subprocess\nsubprocess.run(['echo', 'hi'])\n",
            "import os\nos.system('echo hi')\n",
            "import os\nos.fork()\n",
            "import multiprocessing as mp\nmp.get_context('spawn').Process(target=print).start()\n",
        ],
    )
    def test_process_creation_is_blocked(self, program: str) -> None:
        r = run_program(program)
        assert r.status == "blocked"
        assert "hi" not in r.stdout

    def test_ctypes_call_is_blocked(self) -> None:
        assert run_program("import ctypes\nctypes.CDLL(None).getpid()\n").status == "blocked"

    def test_signal_to_parent_is_blocked(self) -> None:
        assert run_program("import os, signal\nos.kill(os.getppid(), signal.SIGTERM)\n").status == "blocked"

    def test_environment_is_scrubbed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # distinctive values: short ones ("t0") can occur by chance inside the random temp-dir names
        secrets = {"OPENAI_API_KEY": "sk-test-secret-0f9e", "GH_TOKEN": "gh-token-value-77a1",
                   "MY_SECRET": "my-secret-value-3c2b", "DB_PASSWORD": "db-password-value-5d4e"}  # fmt: skip
        for name, value in secrets.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("OPENAI_BASE_URL", "http://example.invalid")
        r = run_program("import json, os\nprint(json.dumps(dict(os.environ)))\n")
        env = json.loads(r.stdout)
        assert not [k for k in env if any(w in k.upper() for w in ("KEY", "TOKEN", "SECRET", "PASSWORD", "OPENAI"))]
        assert not any(v in r.stdout for v in secrets.values())
        assert env["HOME"] == env["TMPDIR"]
        assert "gsa-sandbox-" in env["HOME"]


class TestStatuses:
    @pytest.mark.parametrize(
        ("program", "status"),
        [
            ("def f(:\n", "error"),
            ("import sys\nsys.exit(0)\nassert False\n", "error"),  # left before its tests: not a pass
            ("import os\nos._exit(0)\n", "error"),
            ("raise ValueError('boom')\n", "error"),
            ("print('ok')\n", "passed"),
        ],
    )
    def test_status(self, program: str, status: str) -> None:
        r = run_program(program)
        assert r.status == status
        assert r.passed == (status == "passed")

    def test_syntax_error_detail(self) -> None:
        r = run_program("def f(:\n    return 1\n")
        assert r.status == "error"
        assert r.detail.startswith("SyntaxError")
        assert "SyntaxError" in r.stderr

    def test_result_is_frozen_and_consistent(self) -> None:
        r = run_program("pass\n")
        with pytest.raises(AttributeError):
            r.status = "failed"  # type: ignore[misc]
        with pytest.raises(ValueError, match="passed must equal"):
            SandboxResult("failed", True, 1, "", "", False, False, 0.0)
        assert set(STATUSES) == {"passed", "failed", "timeout", "memory", "blocked", "error"}

    def test_run_many_keeps_order(self) -> None:
        programs = ["assert True\n", "assert False\n", "1 / 0\n", "print(1)\n"]
        statuses = [r.status for r in run_many(programs, jobs=2)]
        assert statuses == ["passed", "failed", "error", "passed"]


class TestExtractCode:
    def test_fenced_python(self) -> None:
        assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone.") == "def f():\n    return 1\n"

    def test_bare_fence_and_py_tag(self) -> None:
        assert extract_code("```\nx = 1\n```") == "x = 1\n"
        assert extract_code("```Py\nx = 2\n```") == "x = 2\n"

    def test_no_fence_returns_text(self) -> None:
        assert extract_code("def f():\n    return 1") == "def f():\n    return 1"

    def test_other_language_is_skipped(self) -> None:
        assert extract_code("```bash\nrm -rf /\n```\n```python\nx = 3\n```") == "x = 3\n"

    def test_multiple_blocks_first_without_entry_point(self) -> None:
        text = "```python\ndef f():\n    return 1\n```\nusage:\n```python\nprint(f())\n```"
        assert extract_code(text) == "def f():\n    return 1\n"

    def test_multiple_blocks_last_definition_of_entry_point(self) -> None:
        text = "```python\ndef f():\n    return 0\n```\nFixed:\n```python\ndef f():\n    return 1\n```\n```python\nf()\n```"
        assert extract_code(text, entry_point="f") == "def f():\n    return 1\n"
        assert extract_code(text, entry_point="g") == "def f():\n    return 0\n"  # nothing defines g: first

    def test_unclosed_and_indented_fences(self) -> None:
        assert extract_code("```python\ndef f():\n    return 1\n") == "def f():\n    return 1\n"
        assert extract_code("1. Code:\n   ```python\n   x = 1\n   y = 2\n   ```\n") == "x = 1\ny = 2\n"


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"program": 3}, "program"),
            ({"timeout_s": 0}, "timeout_s"),
            ({"timeout_s": float("nan")}, "timeout_s"),
            ({"timeout_s": True}, "timeout_s"),
            ({"mem_mb": 32}, "mem_mb"),
            ({"mem_mb": 512.0}, "mem_mb"),
            ({"max_output_bytes": -1}, "max_output_bytes"),
        ],
    )
    def test_run_program_names_argument(self, kwargs: dict[str, object], name: str) -> None:
        args: dict[str, object] = {"program": "pass", **kwargs}
        with pytest.raises(ValueError, match=name):
            run_program(**args)  # type: ignore[arg-type]

    def test_builders_name_argument(self) -> None:
        with pytest.raises(ValueError, match="entry_point"):
            humaneval_program(PROMPT, BODY, TEST, "not an identifier")
        with pytest.raises(ValueError, match="completion"):
            humaneval_program(PROMPT, None, TEST, "f")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="test_list"):
            mbpp_program("x = 1", "assert x == 1")
        with pytest.raises(ValueError, match=r"test_list\[1\]"):
            mbpp_program("x = 1", ["assert x", 2])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="text"):
            extract_code(b"```x```")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="jobs"):
            run_many(["pass"], jobs=0)


def test_doctests() -> None:
    result = doctest.testmod(sandbox, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
