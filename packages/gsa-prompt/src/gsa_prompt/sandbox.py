"""Run model-written Python against tests in a guarded subprocess (HumanEval and MBPP formats; Linux).

GSA's code benchmarks (MBPP, HumanEval) score a response by executing it, so the harness runs text that
a model wrote. This module does that in a child interpreter with three layers:

1. **Hard limits** (the kernel enforces them): ``RLIMIT_AS`` = ``mem_mb`` MiB, ``RLIMIT_CPU`` =
   ``ceil(timeout_s) + 1`` s, ``RLIMIT_FSIZE`` = 16 MiB, ``RLIMIT_CORE`` = 0; a wall-clock timeout after
   which the parent kills the child's whole process group (``start_new_session=True``, ``SIGKILL``);
   output read incrementally and capped at ``max_output_bytes`` per stream, so a flood costs the parent
   neither memory nor a hang.
2. **Isolation**: ``python -I -B -u -X utf8`` (``-I``: no ``PYTHON*`` variables, no user site, no script
   directory or cwd on ``sys.path``; ``-B``: no ``.pyc`` writes), a fresh temporary directory as cwd,
   ``HOME`` and ``TMPDIR``, removed afterwards, and a rebuilt environment: only ``PATH``, ``LANG``,
   ``LANGUAGE``, ``TZ`` and ``LC_*`` survive, and never a name containing ``KEY``, ``TOKEN``, ``SECRET``,
   ``PASSWORD`` or starting with ``OPENAI_``.
3. **A guard against accidents**: a prelude (:mod:`gsa_prompt._sandbox_prelude`) installs a
   ``sys.addaudithook`` hook (hooks cannot be removed) that raises ``PermissionError`` on sockets and name
   look-ups, on process creation
   (``subprocess``, ``os.system``, ``os.exec*``, ``os.fork``, ``os.posix_spawn``, ``pty.spawn``;
   ``_posixsubprocess.fork_exec`` is replaced too, since ``multiprocessing``'s spawn calls it unaudited),
   on signals to other processes, on file writes, removals, renames, links, ``chmod``/``chown`` and
   ``sqlite3`` databases outside the temporary directory, on loading or calling native code through
   ``ctypes``, and on ``resource.setrlimit``. A run in which the guard fired is ``"blocked"`` even if the
   program caught the exception.

The guard is **not a security boundary**: it stops careless or confused model code (``rm``-ing files,
calling an API, spawning ``pip``), not an adversary, who can reach the hook's state through ``gc`` or
frames, or write through a C extension that raises no audit event. Reads are not restricted. The hard
limits hold regardless; for untrusted code at scale, add a container or VM without network around this.

Note:
    Deviations from openai/human-eval's ``execution.py`` (``exec`` in a ``multiprocessing`` child with
    ``SIGALRM`` and ``reliability_guard``): a fresh interpreter per program instead of a fork, limits
    enforced by the kernel, and the process group killed on timeout. As there, the program runs with
    ``__name__ != "__main__"`` (``"__sandbox__"``), so a model's ``if __name__ == "__main__":`` demo
    block, which often calls ``input()``, is skipped. The limits are set by the prelude, before any user
    code, rather than in ``preexec_fn``: ``preexec_fn`` is documented as unsafe with threads
    (:func:`run_many` spawns from threads) and forces ``fork`` over ``vfork``. ``RLIMIT_NPROC`` is not
    set: it counts every process and thread of the user (a small value breaks threads on a busy
    account) and does not restrict root; process creation is stopped by the guard instead.
"""

from __future__ import annotations

import contextlib
import functools
import json
import keyword
import math
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Literal, cast

from gsa_prompt._sandbox_prelude import PRELUDE

__all__ = [
    "STATUSES",
    "SandboxResult",
    "extract_code",
    "humaneval_program",
    "mbpp_program",
    "run_code_tests",
    "run_many",
    "run_program",
]

Status = Literal["passed", "failed", "timeout", "memory", "blocked", "error"]
STATUSES: tuple[Status, ...] = ("passed", "failed", "timeout", "memory", "blocked", "error")
"""Every :attr:`SandboxResult.status`; see :class:`SandboxResult` for their meaning."""

_FSIZE_BYTES = 16 * 2**20
"""``RLIMIT_FSIZE``: the largest file the child may write (16 MiB)."""
_PROGRAM_NAME = "program.py"
_ENV_KEEP = frozenset({"PATH", "LANG", "LANGUAGE", "TZ"})
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|^OPENAI_", re.IGNORECASE)
_PYTHON_TAGS = frozenset({"python", "py", "python3", "py3"})
_FENCE = re.compile(r"^[ \t]*```[ \t]*(?P<tag>[^\s`]*)[^\n]*\n(?P<body>.*?)(?:^[ \t]*```[ \t]*$|\Z)", re.M | re.S)
_MEMORY_WORDS = ("MemoryError", "Cannot allocate memory", "out of memory", "std::bad_alloc")


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one sandboxed run.

    ``status`` is one of :data:`STATUSES`:

    - ``"passed"``: the program ran to its end without an exception (all asserts held).
    - ``"failed"``: an ``AssertionError`` escaped, i.e. a test failed.
    - ``"timeout"``: killed at ``timeout_s`` wall-clock seconds, or by the CPU-time limit.
    - ``"memory"``: a ``MemoryError`` escaped (the address-space limit), or the child was killed by
      ``SIGKILL`` (OOM killer) or crashed with a memory message on stderr.
    - ``"blocked"``: the guard refused an operation (network, process, file outside the sandbox...),
      whether or not the program caught the ``PermissionError``.
    - ``"error"``: a syntax error, any other exception (``SystemExit`` included: the tests did not
      finish), an exit without the prelude's report (``os._exit``) or another fatal signal.
    """

    status: Status
    """One of :data:`STATUSES`."""
    passed: bool
    """``status == "passed"``."""
    returncode: int
    """The child's exit status; ``-N`` when killed by signal ``N`` (``-9`` after a timeout)."""
    stdout: str
    """The first ``max_output_bytes`` bytes of standard output, decoded as UTF-8 (invalid bytes replaced)."""
    stderr: str
    """The first ``max_output_bytes`` bytes of standard error, with the traceback of any exception."""
    stdout_truncated: bool
    """True when standard output was longer than ``max_output_bytes``."""
    stderr_truncated: bool
    """True when standard error was longer than ``max_output_bytes``."""
    duration_s: float
    """Wall-clock seconds from the child's start to its end."""
    detail: str = ""
    """One line: the exception (``"AssertionError: ..."``), the blocked event, or the signal."""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.passed != (self.status == "passed"):
            raise ValueError(f"passed must equal status == 'passed', got passed={self.passed} status={self.status!r}")

    @property
    def truncated(self) -> bool:
        """True when either stream was cut at ``max_output_bytes``."""
        return self.stdout_truncated or self.stderr_truncated


# -- program builders ------------------------------------------------------------------------------
def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a str, got {type(value).__name__}")
    return value


def _identifier(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value):
        raise ValueError(f"{name} must be a Python identifier, got {value!r}")
    return value


def _defines(entry_point: str) -> re.Pattern[str]:
    """A top-level ``def entry_point(`` (column 0, so a same-named method does not count)."""
    return re.compile(rf"^(?:async[ \t]+)?def[ \t]+{re.escape(entry_point)}[ \t]*\(", re.M)


def extract_code(text: str, language: str = "python", *, entry_point: str | None = None) -> str:
    """The code of a model response: one fenced block, else the whole text.

    Candidates are the fenced blocks tagged ``language`` (for Python also ``py``, ``python3``,
    ``py3``; case-insensitive) or untagged; an unclosed final fence (a truncated response) runs to
    the end. The rule: with ``entry_point``, the **last** block that defines it at top level (a
    revised definition supersedes an earlier one, as it would in Python, and example-usage or test
    blocks define nothing); otherwise, or when no block defines it, the **first** block (models put
    the solution first and usage examples after it); with no candidate block, ``text`` unchanged.

    Args:
        text: the response.
        language: the fence tag to accept besides untagged fences.
        entry_point: the function the tests call, if known.

    Returns:
        The chosen block, dedented, or ``text``.

    Raises:
        ValueError: ``text`` or ``language`` is not a str, or ``entry_point`` is not an identifier.

    Example:
        >>> reply = "Idea.\\n```python\\ndef f(x):\\n    return x\\n```\\nUsage:\\n```python\\nprint(f(1))\\n```"
        >>> extract_code(reply)
        'def f(x):\\n    return x\\n'
        >>> extract_code("Fixed:\\n```\\ndef f(x):\\n    return 2 * x\\n```", entry_point="f")
        'def f(x):\\n    return 2 * x\\n'
        >>> extract_code("def g():\\n    return 1")
        'def g():\\n    return 1'
    """
    _text("text", text)
    tags = _PYTHON_TAGS if _text("language", language).lower() in _PYTHON_TAGS else {language.lower()}
    defines = None if entry_point is None else _defines(_identifier("entry_point", entry_point))
    blocks = [textwrap.dedent(m["body"]) for m in _FENCE.finditer(text) if m["tag"].lower() in tags or not m["tag"]]
    if defines is not None:
        defining = [b for b in blocks if defines.search(b)]
        if defining:
            return defining[-1]
    return blocks[0] if blocks else text


def humaneval_program(prompt: str, completion: str, test: str, entry_point: str) -> str:
    """The program HumanEval runs: ``prompt + completion``, the ``test`` code, then ``check(entry_point)``.

    A completion that continues the prompt (the function body) is appended to it verbatim, as in
    openai/human-eval. A completion that already holds the full top-level ``def entry_point(``
    (chat models usually repeat the signature) replaces the prompt from that ``def`` on: the
    prompt's imports and helper functions before it are kept, its stub is not repeated.

    Raises:
        ValueError: an argument is not a str, or ``entry_point`` is not an identifier.

    Example:
        >>> prompt = "from math import pi\\n\\ndef area(r):\\n    '''Area of a circle.'''\\n"
        >>> test = "def check(candidate):\\n    assert candidate(1) == pi"
        >>> print(humaneval_program(prompt, "def area(r):\\n    return pi * r * r\\n", test, "area"))
        from math import pi
        <BLANKLINE>
        def area(r):
            return pi * r * r
        <BLANKLINE>
        def check(candidate):
            assert candidate(1) == pi
        <BLANKLINE>
        check(area)
        <BLANKLINE>
    """
    for name, value in (("prompt", prompt), ("completion", completion), ("test", test)):
        _text(name, value)
    defines = _defines(_identifier("entry_point", entry_point))
    head = prompt + completion
    if defines.search(completion):
        stub = defines.search(prompt)
        head = (prompt[: stub.start()] if stub else prompt) + completion
    return f"{head.rstrip()}\n\n{test.strip()}\n\ncheck({entry_point})\n"


def mbpp_program(code: str, test_list: Sequence[str], test_setup_code: str = "") -> str:
    """The program MBPP runs: ``code``, then ``test_setup_code``, then the ``assert`` lines of ``test_list``.

    Raises:
        ValueError: ``code`` or ``test_setup_code`` is not a str, or ``test_list`` is not a sequence
            of str (a bare str is refused: it would be split into characters).

    Example:
        >>> print(mbpp_program("def add(a, b):\\n    return a + b", ["assert add(1, 2) == 3"]))
        def add(a, b):
            return a + b
        <BLANKLINE>
        assert add(1, 2) == 3
        <BLANKLINE>
    """
    _text("code", code)
    _text("test_setup_code", test_setup_code)
    if isinstance(test_list, str) or not isinstance(test_list, Sequence):
        raise ValueError(f"test_list must be a sequence of str, got {type(test_list).__name__}")
    for i, line in enumerate(test_list):
        _text(f"test_list[{i}]", line)
    parts = [code.rstrip(), test_setup_code.strip(), "\n".join(t.strip() for t in test_list)]
    return "\n\n".join(p for p in parts if p) + "\n"


# -- running ---------------------------------------------------------------------------------------
def _limits(timeout_s: object, mem_mb: object, max_output_bytes: object) -> tuple[float, int, int]:
    """The run limits, validated: ``0 < timeout_s <= 86400``, ``64 <= mem_mb <= 2**30``, ``max_output_bytes >= 0``."""
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= 86400:
        raise ValueError(f"timeout_s must be a number in (0, 86400], got {timeout_s!r}")
    if isinstance(mem_mb, bool) or not isinstance(mem_mb, int) or not 64 <= mem_mb <= 2**30:
        raise ValueError(f"mem_mb must be an int in [64, 2**30], got {mem_mb!r}")
    if isinstance(max_output_bytes, bool) or not isinstance(max_output_bytes, int) or max_output_bytes < 0:
        raise ValueError(f"max_output_bytes must be an int >= 0, got {max_output_bytes!r}")
    return float(timeout_s), mem_mb, max_output_bytes


def _child_env(workdir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP or k.startswith("LC_")}
    env.update(HOME=workdir, TMPDIR=workdir, TMP=workdir, TEMP=workdir)
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return {k: v for k, v in env.items() if not _SECRET_NAME.search(k)}


def _pump(sel: selectors.BaseSelector, bufs: dict[int, bytearray], cap: dict[int, int], until: float) -> bool:
    """Read every registered fd into ``bufs`` (keeping at most ``cap`` bytes, one more to mark a cut)
    until all reach EOF (True) or ``until`` passes (False)."""
    while sel.get_map():
        left = until - time.monotonic()
        if left <= 0:
            return False
        for key, _ in sel.select(left):
            data = os.read(key.fd, 65536)
            if not data:
                sel.unregister(key.fd)
            elif len(bufs[key.fd]) <= cap[key.fd]:
                bufs[key.fd] += data[: cap[key.fd] + 1 - len(bufs[key.fd])]
    return True


def _exited(pid: int, until: float) -> bool:
    """Wait, without reaping (so the pid and its group id cannot be reused), until ``pid`` exits."""
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= until:
            return False
        time.sleep(0.002)


def _classify(timed_out: bool, returncode: int, report: bytes, stderr: str) -> tuple[Status, str]:
    try:
        parsed = json.loads(report)
        if parsed["status"] in STATUSES:
            return cast(Status, parsed["status"]), str(parsed["detail"])
    except (ValueError, KeyError, TypeError):
        pass  # no report: the child died or left early
    if timed_out:
        return "timeout", "wall-clock timeout; process group killed"
    if returncode == -signal.SIGXCPU:
        return "timeout", "CPU time limit (RLIMIT_CPU) exceeded"
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)
        if returncode == -signal.SIGKILL or any(w in stderr for w in _MEMORY_WORDS):
            return "memory", f"killed by {name} (memory limit)"
        return "error", f"killed by {name}"
    return "error", f"exited with code {returncode} before the tests finished"


def run_program(
    program: str, *, timeout_s: float = 5.0, mem_mb: int = 512, max_output_bytes: int = 65536
) -> SandboxResult:
    """Run a complete Python program (tests included) in the sandbox described in the module docstring.

    Args:
        program: Python source; it passes when it runs to its end without an exception.
        timeout_s: wall-clock limit in seconds, in (0, 86400]; the CPU-time limit is ``ceil(timeout_s) + 1``.
        mem_mb: address-space limit in MiB, in [64, 2**30] (the interpreter itself maps about 15).
        max_output_bytes: bytes kept of stdout and of stderr each, >= 0; the rest is read and dropped.

    Returns:
        A :class:`SandboxResult`.

    Raises:
        ValueError: an argument is out of range, naming it.

    Example:
        >>> run_program("assert sorted([3, 1, 2]) == [1, 2, 3]").status
        'passed'
    """
    _text("program", program)
    timeout, mem, cap = _limits(timeout_s, mem_mb, max_output_bytes)
    with tempfile.TemporaryDirectory(prefix="gsa-sandbox-", ignore_cleanup_errors=True) as tmp:
        workdir = os.path.realpath(tmp)
        path = os.path.join(workdir, _PROGRAM_NAME)
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as fh:
            fh.write(program)
        limits = (mem * 2**20, math.ceil(timeout) + 1, _FSIZE_BYTES)
        timed_out, returncode, (out, err, report), duration = _execute(path, workdir, limits, timeout, cap)
    stderr = bytes(err[:cap]).decode("utf-8", errors="replace")
    status, detail = _classify(timed_out, returncode, bytes(report), stderr)
    return SandboxResult(
        status=status,
        passed=status == "passed",
        returncode=returncode,
        stdout=bytes(out[:cap]).decode("utf-8", errors="replace"),
        stderr=stderr,
        stdout_truncated=len(out) > cap,
        stderr_truncated=len(err) > cap,
        duration_s=duration,
        detail=detail,
    )


def _execute(
    path: str, workdir: str, limits: tuple[int, int, int], timeout: float, cap: int
) -> tuple[bool, int, tuple[bytearray, bytearray, bytearray], float]:
    """Start the prelude on ``path``, collect its output, kill its group: (timed out, returncode,
    (stdout, stderr, report) holding up to ``cap + 1`` bytes each, seconds)."""
    report_r, report_w = os.pipe()
    cmd = [sys.executable, "-I", "-B", "-u", "-X", "utf8", "-c", PRELUDE, path, str(report_w), *map(str, limits)]
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=_child_env(workdir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(report_w,),
            start_new_session=True,
        )
    except BaseException:
        os.close(report_r)
        raise
    finally:
        os.close(report_w)
    pipes = (cast(IO[bytes], proc.stdout), cast(IO[bytes], proc.stderr))  # both are PIPE
    fds = (pipes[0].fileno(), pipes[1].fileno(), report_r)
    bufs = {fd: bytearray() for fd in fds}
    caps = dict(zip(fds, (cap, cap, 65536), strict=True))
    sel = selectors.DefaultSelector()
    try:
        for fd in fds:
            sel.register(fd, selectors.EVENT_READ)
        deadline = start + timeout
        timed_out = not (_pump(sel, bufs, caps, deadline) and _exited(proc.pid, deadline))
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the leader is unreaped, so its group id is still ours
        _pump(sel, bufs, caps, time.monotonic() + 0.2)  # what was written before the kill
        returncode = proc.wait()
        duration = time.monotonic() - start
        sel.close()
        for pipe in pipes:
            pipe.close()
        os.close(report_r)
    return timed_out, returncode, (bufs[fds[0]], bufs[fds[1]], bufs[fds[2]]), duration


def run_code_tests(
    code: str,
    tests: str | Sequence[str],
    *,
    test_setup_code: str = "",
    timeout_s: float = 5.0,
    mem_mb: int = 512,
    max_output_bytes: int = 65536,
) -> SandboxResult:
    """Run ``code`` followed by ``tests`` (a block of test code, or a list of ``assert`` lines, as in
    MBPP) with :func:`run_program`. Raises ``ValueError`` on bad input, naming the argument."""
    test_list = [_text("tests", tests)] if isinstance(tests, str) else tests
    return run_program(
        mbpp_program(code, test_list, test_setup_code),
        timeout_s=timeout_s,
        mem_mb=mem_mb,
        max_output_bytes=max_output_bytes,
    )


def run_many(
    programs: Sequence[str],
    *,
    jobs: int = 2,
    timeout_s: float = 5.0,
    mem_mb: int = 512,
    max_output_bytes: int = 65536,
) -> list[SandboxResult]:
    """:func:`run_program` over ``programs`` with ``jobs`` children at a time; results in input order.

    Raises:
        ValueError: ``jobs`` < 1, a program is not a str, or a limit is out of range (checked before
            any program starts).
    """
    from concurrent.futures import ThreadPoolExecutor

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
    if isinstance(programs, str) or not isinstance(programs, Sequence):
        raise ValueError(f"programs must be a sequence of str, got {type(programs).__name__}")
    for i, program in enumerate(programs):
        _text(f"programs[{i}]", program)
    _limits(timeout_s, mem_mb, max_output_bytes)
    run = functools.partial(run_program, timeout_s=timeout_s, mem_mb=mem_mb, max_output_bytes=max_output_bytes)
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="gsa-sandbox") as pool:
        return list(pool.map(run, programs))
