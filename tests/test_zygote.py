"""The zygote's children behave as new interpreters in what the tests read (``tests/zygote.py``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from zygote import Zygote

PROBE = """
import atexit, json, os, sys, tempfile
atexit.register(lambda: open(sys.argv[1], "w").write("atexit ran"))
print(json.dumps({
    "pid": os.getpid(), "cwd": os.getcwd(), "argv": sys.argv, "path0": sys.path[0],
    "env": os.environ.get("PROBE"), "tmp": tempfile.gettempdir(), "main": __name__,
}))
print("to stderr", file=sys.stderr)
sys.exit(7)
"""


def test_a_child_has_its_own_pid_folder_environment_streams_and_exit_code(zygote: Zygote, tmp_path):
    marker = tmp_path / "marker"
    env = {**os.environ, "PROBE": "yes", "TMPDIR": str(tmp_path)}
    done = zygote.run([sys.executable, "-c", PROBE, str(marker)], env=env, cwd=tmp_path)
    assert done.returncode == 7 and done.stderr == "to stderr\n"
    seen = json.loads(done.stdout)
    assert seen["pid"] not in (os.getpid(), zygote.server.pid)
    assert seen == seen | {"cwd": str(tmp_path), "argv": ["-c", str(marker)], "path0": "", "env": "yes"}
    assert seen["tmp"] == str(tmp_path) and seen["main"] == "__main__"
    assert marker.read_text() == "atexit ran"


def test_scripts_modules_signals_and_grandchildren(zygote: Zygote, tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint(sys.argv[1:], sys.path[0])\nraise ValueError('boom')\n")
    done = zygote.run([sys.executable, str(script), "a", "b"])
    assert done.returncode == 1 and done.stdout == f"['a', 'b'] {tmp_path}\n"
    assert "ValueError: boom" in done.stderr
    assert zygote.run([sys.executable, "-m", "json.tool", "--help"]).stdout.startswith("usage:")
    child = zygote.popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "up\n"
    assert child.poll() is None
    child.send_signal(signal.SIGKILL)
    assert child.wait(10) == -signal.SIGKILL
    nested = "import subprocess, sys; sys.exit(subprocess.run([sys.executable, '-c', 'exit(5)']).returncode)"
    assert zygote.run([sys.executable, "-c", nested]).returncode == 5  # sys.executable forks too
