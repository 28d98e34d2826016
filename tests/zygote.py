"""Fresh Python processes in milliseconds: a zygote that has imported torch, transformers and
pruning forks one per request, so a test that needs a new process (a kill -9, a reload in another
process, an xdist session, a user's script) does not pay the ~8 s of imports each time.

A forked child is a new process in every respect a test reads: its own pid, memory, standard
streams, working directory, environment and exit status, and a signal kills it as it kills any
process. Only the modules are already imported, as in a process whose first lines import them;
no model, tensor or setting of the test process is in it (the zygote is started by the test
process but imports nothing of the test). A test whose point is that a process imports *no*
pruning module (a stock-transformers reload) uses a zygote that imported torch and transformers
only.

The child runs its arguments as ``python ARGS`` would (``-c CODE``, ``-m MODULE`` or a script,
with ``-u``/``-B``), and its ``sys.executable`` is a small wrapper that asks the zygote too, so the
processes it starts in turn (xdist workers, ``python -m pip``) are forked the same way.

This file is also the zygote itself (``python zygote.py serve SOCKET WRAPPER MODULES...``) and the wrapper's
client (``python -S zygote.py connect SOCKET ARGS...``, standard library only).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

HEADER = struct.Struct("!I")  # the length of the JSON request that follows the file descriptors
PRUNING = ("torch", "transformers.modeling_utils", "transformers.models.auto", "pruning.plugin.session")
STOCK = ("torch", "transformers.modeling_utils", "transformers.models.auto")  # no pruning module


class Zygote:
    """The test side: starts the server (it imports in the background) and forks through it."""

    def __init__(self, folder: Path, modules: tuple[str, ...] = PRUNING) -> None:
        self.socket = str(folder / "zygote.sock")
        self.wrapper = folder / "python"
        self.wrapper.write_text(
            f"#!/bin/sh\nexec '{sys.executable}' -S '{__file__}' connect '{self.socket}' \"$@\"\n"
        )
        self.wrapper.chmod(0o755)
        pipe = subprocess.PIPE
        command = [sys.executable, __file__, "serve", self.socket, str(self.wrapper), *modules]
        self.server = subprocess.Popen(command, stdin=pipe, stdout=pipe, text=True)
        self.ready = False

    def popen(
        self,
        args: list[str],
        *,
        stdin: int | IO[Any] | None = None,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
        text: bool = False,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> Forked:
        """Like ``subprocess.Popen(args, ...)`` for ``args[0] == sys.executable``."""
        assert args[0] == sys.executable, f"the zygote runs Python only, not {args[0]}"
        self._wait_ready()
        theirs, ours, closing = _streams((stdin, stdout, stderr))
        request = {"argv": list(args[1:]), "cwd": str(cwd or os.getcwd()), "env": dict(env or os.environ)}
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(self.socket)
        _send(conn, request, theirs)
        for fd in closing:
            os.close(fd)
        pid = int(_read_line(conn))
        mode = ("w", "r", "r")
        files = [
            None if fd < 0 else os.fdopen(fd, mode[n] + ("" if text else "b")) for n, fd in enumerate(ours)
        ]
        return Forked(conn, pid, *files)

    def run(
        self,
        args: list[str],
        *,
        check: bool = False,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Like ``subprocess.run(args, capture_output=True, text=True, ...)``."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            child = self.popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd)
            try:
                code = child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
                raise
            out.seek(0)
            err.seek(0)
            done = subprocess.CompletedProcess(args, code, out.read(), err.read())
        if check:
            done.check_returncode()
        return done

    def close(self) -> None:
        assert self.server.stdin is not None
        self.server.stdin.close()
        self.server.wait(timeout=60)

    def _wait_ready(self) -> None:
        if not self.ready:
            assert self.server.stdout is not None
            line = self.server.stdout.readline()
            assert line == "ready\n", f"the zygote did not start: {line!r}"
            self.ready = True


class Forked:
    """A forked child, like ``subprocess.Popen``: its exit status comes from the zygote."""

    def __init__(self, conn: socket.socket, pid: int, *streams: IO[Any] | None) -> None:
        self.conn, self.pid = conn, pid
        self.stdin, self.stdout, self.stderr = streams
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self.conn], [], [], 0)[0]:
            self._collect()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self.conn], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            self._collect()
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def _collect(self) -> None:
        self.returncode = int(_read_line(self.conn))
        self.conn.close()


def _streams(specs: tuple[int | IO[Any] | None, ...]) -> tuple[list[int], list[int], set[int]]:
    """The child's standard streams as ``subprocess`` reads its arguments (``PIPE``, ``DEVNULL``,
    ``STDOUT``, a file, a descriptor, or ``None``: ours): the descriptors to send, our ends of
    the pipes (-1 where none), and the descriptors to close here once sent."""
    theirs: list[int] = []
    ours: list[int] = []
    closing: set[int] = set()
    for number, spec in enumerate(specs):
        end = -1
        if spec == subprocess.PIPE:
            read, write = os.pipe()
            child, end = (read, write) if number == 0 else (write, read)
            closing.add(child)
        elif spec == subprocess.DEVNULL:
            child = os.open(os.devnull, os.O_RDONLY if number == 0 else os.O_WRONLY)
            closing.add(child)
        elif spec == subprocess.STDOUT:
            child = theirs[1]
        else:
            child = number if spec is None else spec if isinstance(spec, int) else spec.fileno()
        theirs.append(child)
        ours.append(end)
    return theirs, ours, closing


def _send(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    payload = json.dumps(request).encode()
    socket.send_fds(conn, [HEADER.pack(len(payload))], fds)
    conn.sendall(payload)


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    header, fds, _, _ = socket.recv_fds(conn, HEADER.size, 3)
    (size,) = HEADER.unpack(header)
    payload = b""
    while len(payload) < size:
        payload += conn.recv(size - len(payload))
    return json.loads(payload), fds


def _read_line(conn: socket.socket) -> str:
    line = b""
    while not line.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            raise RuntimeError("the zygote closed the connection without an answer")
        line += chunk
    return line.decode()


# --- the zygote --------------------------------------------------------------------------------


def serve(path: str, wrapper: str, modules: list[str]) -> None:
    """Import, then fork a child per request; answer each with its pid, then its exit status."""
    import importlib

    for module in modules:
        importlib.import_module(module)

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    print("ready", flush=True)
    waiting: dict[int, socket.socket] = {}
    while True:
        ready = select.select([listener, sys.stdin], [], [], 0.02)[0]
        if sys.stdin in ready and not sys.stdin.readline():
            return  # the test process is done
        if listener in ready:
            conn, _ = listener.accept()
            request, fds = _receive(conn)
            pid = os.fork()
            if pid == 0:
                for other in (listener, conn, *waiting.values()):
                    other.close()
                become(request, fds, wrapper)  # never returns
            for fd in set(fds):
                os.close(fd)
            conn.sendall(f"{pid}\n".encode())
            waiting[pid] = conn
        while waiting:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            if pid in waiting:
                done = waiting.pop(pid)
                done.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
                done.close()


def become(request: dict[str, Any], fds: list[int], wrapper: str) -> None:
    """In the forked child: take the streams, folder and environment asked for, then run the
    arguments as ``python ARGS`` would, and exit."""
    import runpy
    import traceback
    import types

    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in set(fds) - {0, 1, 2}:
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # as a new process: TMPDIR is read again
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args: list[str] = request["argv"]
    unbuffered = False
    while args and args[0] in ("-u", "-B", "-S", "-E", "-s"):
        unbuffered |= args[0] == "-u"
        sys.dont_write_bytecode |= args[0] == "-B"
        args = args[1:]
    # new streams over the new descriptors, buffered as a new interpreter's are
    sys.stdin = sys.__stdin__ = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = open(1, "w", buffering=1 if unbuffered else -1, closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, errors="backslashreplace", closefd=False)  # noqa: SIM115
    sys.executable = wrapper
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    try:
        if args[0].startswith("-c"):
            code, rest = (args[0][2:], args[1:]) if len(args[0]) > 2 else (args[1], args[2:])
            sys.argv, sys.path[:1] = ["-c", *rest], ["", *extra]
            main = types.ModuleType("__main__")
            sys.modules["__main__"] = main
            exec(compile(code, "<string>", "exec"), main.__dict__)
        elif args[0].startswith("-m"):
            module, rest = (args[0][2:], args[1:]) if len(args[0]) > 2 else (args[1], args[2:])
            sys.argv, sys.path[:1] = [module, *rest], [os.getcwd(), *extra]
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            script = os.path.abspath(args[0])
            sys.argv, sys.path[:1] = args, [os.path.dirname(script), *extra]
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        leave(exc.code)
    except BaseException:
        traceback.print_exc()
        leave(1)
    leave(0)


def leave(code: object) -> None:
    """End the child as an interpreter ends, less the teardown of every imported module (two
    seconds here, and no part of what a test reads): wait for its threads, run its ``atexit``
    functions (``weakref.finalize`` among them), flush its streams, exit with the code."""
    import atexit
    import threading

    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code or 0)


def connect(path: str, args: list[str]) -> None:
    """The wrapper's client: run ``args`` in a forked child on this process's own streams, pass
    on the signals a parent sends to stop it, and leave with its exit status."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    _send(conn, {"argv": args, "cwd": os.getcwd(), "env": dict(os.environ)}, [0, 1, 2])
    pid = int(_read_line(conn))
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda number, _: os.kill(pid, number))
    code = int(_read_line(conn))
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], sys.argv[4:])
        os._exit(0)  # no teardown of the imported modules (see ``leave``)
    else:
        connect(sys.argv[2], sys.argv[3:])
