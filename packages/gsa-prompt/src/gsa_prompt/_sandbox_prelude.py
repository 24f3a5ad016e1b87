"""The sandbox child's first code: the prelude that :func:`gsa_prompt.sandbox.run_program` runs before the program.

The parent starts ``python -I -B -u -X utf8 -c PRELUDE <program path> <report fd> <mem> <cpu> <fsize>``
(:func:`gsa_prompt.sandbox._execute`). The prelude sets the hard limits and installs the audit-hook guard
described in :mod:`gsa_prompt.sandbox` (layers 1 and 3), runs the program with ``__name__ == "__sandbox__"``,
writes ``{"status", "detail"}`` as JSON to the report descriptor and leaves with ``os._exit`` (0 iff
``"passed"``). It is plain source text, kept to Python 3.10 syntax, and imports nothing from the package.
"""

from __future__ import annotations

__all__ = ["PRELUDE"]

# The child's first code: limits, guard, then the program. Kept to Python 3.10 syntax.
PRELUDE = r"""
import builtins, json, os, resource, signal, sys, traceback

def _sandbox_main():
    path, report_fd = sys.argv[1], int(sys.argv[2])
    mem, cpu, fsize = (int(a) for a in sys.argv[3:6])
    for which, soft, hard in ((resource.RLIMIT_AS, mem, mem), (resource.RLIMIT_CPU, cpu, cpu + 1),
                              (resource.RLIMIT_FSIZE, fsize, fsize), (resource.RLIMIT_CORE, 0, 0)):
        cap = resource.getrlimit(which)[1]
        if cap != resource.RLIM_INFINITY:
            soft, hard = min(soft, cap), min(hard, cap)
        resource.setrlimit(which, (soft, hard))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write raises OSError instead of killing
    with open(path, "rb") as f:
        source = f.read()
    root = os.path.realpath(os.getcwd())
    violations = []

    class SandboxViolation(PermissionError):
        pass

    SandboxViolation.__qualname__ = "SandboxViolation"

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    network = frozenset(("socket.__new__", "socket.bind", "socket.connect", "socket.getaddrinfo",
                         "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr",
                         "socket.getnameinfo", "socket.sendto", "socket.sendmsg"))
    process = frozenset(("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                         "os.fork", "os.forkpty", "pty.spawn", "os.startfile"))
    native = frozenset(("ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function", "ctypes.cdata",
                        "resource.setrlimit", "resource.prlimit"))
    paths = {"os.remove": ((0, 1),), "os.rmdir": ((0, 1),), "os.mkdir": ((0, 2),),
             "os.rename": ((0, 2), (1, 3)), "os.link": ((0, 2), (1, 3)), "os.symlink": ((1, 2),),
             "os.chmod": ((0, 2),), "os.chown": ((0, 3),), "os.chflags": ((0, None),),
             "os.truncate": ((0, None),), "os.utime": ((0, 3),), "os.setxattr": ((0, None),),
             "os.removexattr": ((0, None),), "shutil.rmtree": ((0, 1),), "shutil.move": ((0, None), (1, None)),
             "shutil.copyfile": ((1, None),), "shutil.copytree": ((1, None),), "shutil.copymode": ((1, None),),
             "shutil.copystat": ((1, None),), "shutil.chown": ((0, None),), "shutil.make_archive": ((0, None),),
             "shutil.unpack_archive": ((1, None),), "sqlite3.connect": ((0, None),)}

    def outside(p, dir_fd=None):
        if p is None or p in ("", ":memory:"):  # None: the default (cwd); "", ":memory:": sqlite3 in memory
            return False
        try:
            if isinstance(p, int):
                real = os.readlink("/proc/self/fd/%d" % p)
            else:
                p = os.fsdecode(os.fspath(p))
                if p.startswith("file:"):  # an sqlite3 URI
                    p = p[5:].split("?", 1)[0]
                base = os.getcwd()
                if isinstance(dir_fd, int) and dir_fd >= 0:
                    base = os.readlink("/proc/self/fd/%d" % dir_fd)
                real = os.path.realpath(os.path.join(base, p))
        except Exception:
            return True
        return not (real == root or real.startswith(root + os.sep) or real == os.devnull)

    def check(event, args):
        if event in network:
            return "network access"
        if event in process:
            return "process creation"
        if event in native or (event == "ctypes.dlopen" and args[0] is not None):
            return "native code or resource limits"
        if (event == "os.kill" and args[0] not in (0, os.getpid())) or (
                event == "os.killpg" and args[0] not in (0, os.getpgrp())):
            return "signal to another process"
        if event == "open":
            p, mode, flags = args[0], args[1], args[2]
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & write_flags)
            if writes and not isinstance(p, int) and outside(p):
                return "write to %r outside the sandbox directory" % (p,)
        else:
            for i, j in paths.get(event, ()):
                if i < len(args) and outside(args[i], args[j] if j is not None and j < len(args) else None):
                    return "%r outside the sandbox directory" % (args[i],)
        return None

    def deny(event, reason):
        violations.append("%s: %s" % (event, reason))
        raise SandboxViolation("gsa-prompt sandbox blocked %s: %s" % (event, reason))

    def hook(event, args):
        reason = check(event, args)
        if reason is not None:
            deny(event, reason)

    import _posixsubprocess  # multiprocessing's spawn calls its fork_exec without an audit event
    _posixsubprocess.fork_exec = lambda *a, **k: deny("_posixsubprocess.fork_exec", "process creation")
    sys.addaudithook(hook)
    sys.argv = [path]
    status, detail = "passed", ""
    try:
        exec(compile(source, path, "exec", dont_inherit=True),
             {"__name__": "__sandbox__", "__file__": path, "__builtins__": builtins})
    except BaseException as exc:
        status = ("failed" if isinstance(exc, AssertionError) else "memory" if isinstance(exc, MemoryError)
                  else "blocked" if isinstance(exc, SandboxViolation) else "error")
        detail = ("%s: %s" % (type(exc).__name__, exc)).strip().rstrip(":").splitlines()[0][:500]
        try:
            traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next, limit=-50)  # deep: slow
        except BaseException:
            pass
    if violations:
        status, detail = "blocked", violations[0]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    try:
        os.write(report_fd, json.dumps({"status": status, "detail": detail}).encode())
    except OSError:  # the program closed the descriptor: the parent reports "error"
        pass
    os._exit(0 if status == "passed" else 1)  # skips user atexit handlers and leftover threads

_sandbox_main()
"""
