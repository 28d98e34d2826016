"""The lock: every package ``make install`` puts in ``.venv``, at an exact version.

    python scripts/lock.py            # write requirements.lock (what ``make lock`` runs)
    python scripts/lock.py --check    # exit 1, saying why, when it and pyproject.toml disagree

``pyproject.toml`` keeps version ranges for people who install pruning-kit into their own
environment; ``requirements.lock`` is the one environment the suite is verified with. It is
written from ``pyproject.toml`` by pip's own resolver (``pip install --dry-run
--ignore-installed --report``) with this machine's pip configuration, for the Python that runs
this script (CPython 3.11 on Linux x86-64, as the workflow), so an upgrade is a reviewed diff of
this file. ``torch`` resolves to the CPU build the project pins (``2.13.0+cpu``), never a CUDA one:
the installing pip finds it through its find-links or the CPU index.

Each pin says which declared requirement or locked package needs it (``# via``), and the
header holds a digest of ``pyproject.toml``'s requirements, so ``check`` can tell a dependency
added to one file and not the other (``tests/test_lock.py``).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PROJECT = "pruning-kit"
EXTRAS = ("dev",)  # what ``make install`` installs: pruning-kit[dev], which includes [tasks]
DIGEST = "# pyproject.toml requirements sha256: "
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


@dataclass(frozen=True)
class Pin:
    """One locked package: its canonical name, exact version and who needs it."""

    name: str
    version: str
    via: tuple[str, ...]


def declared(pyproject: Path) -> list[Requirement]:
    """Every requirement ``pyproject.toml`` declares: dependencies and each extra's, without the
    project's references to itself (``pruning-kit[tasks]`` in ``dev``)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    found = [*project["dependencies"]]
    for requirements in project.get("optional-dependencies", {}).values():
        found += requirements
    return [r for r in map(Requirement, found) if canonicalize_name(r.name) != PROJECT]


def digest(pyproject: Path) -> str:
    """A digest of the declared requirements, independent of their order and spacing."""
    text = "\n".join(sorted(str(r) for r in declared(pyproject)))
    return hashlib.sha256(text.encode()).hexdigest()


def resolve(python: str, root: Path) -> list[dict[str, object]]:
    """pip's resolution of ``root[dev]`` into an empty environment: the report's ``install`` list."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
        command += ["--report", str(report), "-e", f"{root}[{','.join(EXTRAS)}]"]
        subprocess.run(command, check=True)
        items: list[dict[str, object]] = json.loads(report.read_text())["install"]
    return items


def pins(items: list[dict[str, object]]) -> list[Pin]:
    """The locked packages of a pip report, each with the packages that require it."""
    metadata = {canonicalize_name(str(m["name"])): m for m in (i["metadata"] for i in items)}  # type: ignore[index]
    environment: dict[str, str] = dict(default_environment())
    needs: dict[str, set[str]] = {name: set() for name in metadata}
    todo, extras = [canonicalize_name(PROJECT)], {canonicalize_name(PROJECT): set(EXTRAS)}
    while todo:  # walk from the project, each package with the extras asked of it
        name = todo.pop()
        for requirement in _requires(metadata[name], extras[name], environment):
            target = canonicalize_name(requirement.name)
            new = target not in extras or not set(requirement.extras) <= extras[target]
            extras.setdefault(target, set()).update(requirement.extras)
            if target != name:  # (an extra may name its own package's other extras)
                needs[target].add(name)
            if new:
                todo.append(target)
    del needs[canonicalize_name(PROJECT)]
    return sorted(
        (Pin(name, str(metadata[name]["version"]), tuple(sorted(via))) for name, via in needs.items()),
        key=lambda p: p.name,
    )


def _requires(
    metadata: dict[str, object], extras: set[str], environment: dict[str, str]
) -> Iterable[Requirement]:
    for line in metadata.get("requires_dist") or []:  # type: ignore[union-attr]
        requirement = Requirement(str(line))
        marker = requirement.marker
        if marker is None or any(marker.evaluate({**environment, "extra": e}) for e in {"", *extras}):
            yield requirement


def render(locked: list[Pin], pyproject: Path) -> str:
    """The lock file's text."""
    environment = default_environment()
    lines = [
        "# The environment `make install` builds: every package at the exact version the suite was",
        f"# verified with, for {environment['implementation_name']} {environment['python_version']} on "
        f"{environment['sys_platform']} {environment['platform_machine']}.",
        "# Written by `make lock` (scripts/lock.py) from pyproject.toml: change that file, never this one.",
        f"{DIGEST}{digest(pyproject)}",
    ]
    for pin in locked:
        lines += [f"{pin.name}=={pin.version}", f"    # via {', '.join(pin.via)}"]
    return "\n".join(lines) + "\n"


def parse(text: str) -> tuple[str | None, list[Pin]]:
    """A lock file's requirements digest and its pins."""
    found, stated = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(DIGEST):
            stated = line[len(DIGEST) :]
        elif line.startswith("# via ") and found:
            last = found[-1]
            found[-1] = Pin(last.name, last.version, tuple(v.strip() for v in line[6:].split(",")))
        elif line and not line.startswith("#"):
            match = PIN.match(line)
            if match is None:
                raise ValueError(f"requirements.lock: {line!r} is not an exact pin NAME==VERSION")
            found.append(Pin(canonicalize_name(match[1]), match[2], ()))
    return stated, found


def check(text: str, pyproject: Path) -> list[str]:
    """What makes the lock disagree with ``pyproject.toml``; [] when they agree."""
    stated, locked = parse(text)
    problems = []
    if stated != digest(pyproject):
        problems.append("pyproject.toml's requirements changed since the lock was written: run `make lock`")
    by_name = {pin.name: pin for pin in locked}
    for requirement in declared(pyproject):
        pin = by_name.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"pyproject.toml requires {requirement} but the lock has no {requirement.name}")
        elif not requirement.specifier.contains(Version(pin.version), prereleases=True):
            problems.append(f"pyproject.toml requires {requirement} but the lock pins {pin.version}")
    reached, todo = set(), [canonicalize_name(PROJECT)]
    while todo:
        name = todo.pop()
        for pin in locked:
            if name in pin.via and pin.name not in reached:
                reached.add(pin.name)
                todo.append(pin.name)
    for pin in locked:
        if pin.name not in reached:
            problems.append(
                f"the lock pins {pin.name}=={pin.version}, which neither pyproject.toml nor a locked "
                "package requires"
            )
    return problems


def main(argv: list[str]) -> int:
    pyproject = ROOT / "pyproject.toml"
    if argv == ["--check"]:
        problems = check(LOCK.read_text(), pyproject)
        for problem in problems:
            print(f"requirements.lock: {problem}", file=sys.stderr)
        return 1 if problems else 0
    if argv:
        print(f"usage: python scripts/lock.py [--check]; got {' '.join(argv)!r}", file=sys.stderr)
        return 2
    LOCK.write_text(render(pins(resolve(sys.executable, ROOT)), pyproject))
    print(f"wrote {LOCK.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
