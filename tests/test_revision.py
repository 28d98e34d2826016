"""The code's commit recorded with a run: the checkout's HEAD, marked dirty when tracked files differ."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pruning.common.revision import code_commit


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_commit_of_a_checkout_and_its_dirty_mark(tmp_path: Path) -> None:
    repo, package = tmp_path / "repo", tmp_path / "repo" / "pkg"
    package.mkdir(parents=True)
    _git(repo, "init", "-q")
    (package / "code.py").write_text("one\n")
    (repo / "notes.md").write_text("notes\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = _git(repo, "rev-parse", "--short=12", "HEAD")
    assert code_commit.__wrapped__(package) == head
    (package / "code.py").write_text("two\n")
    assert code_commit.__wrapped__(package) == f"{head}-dirty"
    (package / "code.py").write_text("one\n")
    (package / "new.py").write_text("untracked files do not count\n")
    (repo / "notes.md").unlink()  # nor changes outside the package (docs, reports)
    assert code_commit.__wrapped__(package) == head


def test_no_checkout_no_commit(tmp_path: Path) -> None:
    assert code_commit.__wrapped__(tmp_path) is None
