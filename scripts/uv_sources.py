"""pip's package sources as uv arguments: ``make install`` installs the lock with uv.

    uv pip install $(python3 scripts/uv_sources.py) -r requirements.lock

uv reads no pip configuration, but a machine may keep wheels where only pip's configuration
points (this project's CPU build of torch, in a find-links folder), so the two must install from
the same places. This prints, from ``pip config list`` (files and ``PIP_*`` variables alike), one
``--find-links``, ``--index-url`` or ``--extra-index-url`` argument per source, and with extra
indexes uv's ``--index-strategy unsafe-best-match``: pip takes a version from any of its indexes,
and the lock's exact pins decide which version that is. Standard library only: it runs before
the venv exists.
"""

from __future__ import annotations

import ast
import subprocess
import sys

OPTIONS = {"find-links": "--find-links", "index-url": "--index-url", "extra-index-url": "--extra-index-url"}


def sources(listing: str) -> list[str]:
    """uv arguments for the sources in ``pip config list`` output (``scope.key='value'`` lines;
    an environment variable, scope ``:env:``, overrides the files as it does for pip)."""
    found: dict[str, str] = {}
    for line in sorted(listing.splitlines(), key=lambda ln: ln.startswith(":env:")):
        key, _, value = line.partition("=")
        option = key.rpartition(".")[2]
        if option in OPTIONS and value:
            found[option] = str(ast.literal_eval(value))
    arguments = []
    for option, flag in OPTIONS.items():
        for source in found.get(option, "").split():
            arguments += [flag, source]
    if "extra-index-url" in found and found["extra-index-url"].split():
        arguments += ["--index-strategy", "unsafe-best-match"]
    return arguments


def main() -> int:
    command = [sys.executable, "-m", "pip", "config", "list"]
    listing = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    print(" ".join(sources(listing)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
