"""The code's commit recorded with a run: the checkout's HEAD, marked dirty when tracked files differ."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pruning.common.revision import code_commit


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_commit_of_a_checkout_and_its_dirty_mark(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "f.txt").write_text("one\n")
    _git(repo, "add", "f.txt")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = _git(repo, "rev-parse", "--short=12", "HEAD")
    assert code_commit.__wrapped__(repo) == head
    (repo / "f.txt").write_text("two\n")
    assert code_commit.__wrapped__(repo) == f"{head}-dirty"
    (repo / "new.txt").write_text("untracked files do not count\n")
    (repo / "f.txt").write_text("one\n")
    assert code_commit.__wrapped__(repo) == head


def test_no_checkout_no_commit(tmp_path: Path) -> None:
    assert code_commit.__wrapped__(tmp_path) is None
