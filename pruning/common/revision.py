"""Which code produced a run: the git commit of the pruning-kit checkout, where there is one.

Recorded with a run (``RunFingerprint.commit``), never compared: a results page names the commit
that made it, and a reader can check out that code. An installed wheel has no checkout, and then
the commit is unknown (None).
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]


@functools.cache  # the checkout does not change during a run
def code_commit(where: Path = PACKAGE_DIR) -> str | None:
    """The short commit hash of the git checkout holding ``where``, with ``-dirty`` when tracked
    files under ``where`` (the package: the code that computes) differ from it; None outside a
    checkout or without git. Changes elsewhere in the checkout (docs, reports) do not count."""
    try:
        head = _git(where, "rev-parse", "--short=12", "HEAD")
        changed = _git(where, "status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if changed else head


def _git(where: Path, *args: str) -> str:
    """``git -C where ARGS``'s standard output, stripped; raises on a non-zero exit."""
    done = subprocess.run(
        ["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()
