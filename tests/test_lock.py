"""The lock (requirements.lock) and pyproject.toml agree, and the venv is the lock.

``scripts/lock.py`` writes the lock from pyproject.toml; these tests fail when a dependency is
added to, removed from or re-ranged in one file and not the other, and when the environment the
suite runs in is not the one the lock describes.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _lock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock", ROOT / "scripts" / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lock"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


lock = _lock_module()


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str]:
    """A copy of pyproject.toml to edit, and the committed lock's text."""
    copy = tmp_path / "pyproject.toml"
    copy.write_text((ROOT / "pyproject.toml").read_text())
    return copy, (ROOT / "requirements.lock").read_text()


def test_the_lock_agrees_with_pyproject():
    problems = lock.check((ROOT / "requirements.lock").read_text(), ROOT / "pyproject.toml")
    assert not problems, "requirements.lock disagrees with pyproject.toml:\n" + "\n".join(problems)


def test_the_lock_pins_the_cpu_torch_and_a_transformers_with_the_new_cache():
    _, pins = lock.parse((ROOT / "requirements.lock").read_text())
    versions = {pin.name: pin.version for pin in pins}
    assert versions["torch"] == "2.13.0+cpu"
    major, minor = (int(part) for part in versions["transformers"].split(".")[:2])
    assert (major, minor) >= (5, 25)
    assert not any(name.startswith("nvidia-") for name in versions)  # no CUDA runtime came along


def test_a_dependency_added_to_pyproject_only_fails(project):
    pyproject, text = project
    pyproject.write_text(
        pyproject.read_text().replace('"scipy>=1.12",', '"scipy>=1.12",\n    "polars>=1.0",')
    )
    problems = lock.check(text, pyproject)
    assert problems[0].startswith("pyproject.toml's requirements changed since the lock was written")
    assert "pyproject.toml requires polars>=1.0 but the lock has no polars" in problems


def test_a_range_the_lock_does_not_meet_fails(project):
    pyproject, text = project
    declared = '"transformers>=5.24,<6"'
    assert declared in pyproject.read_text()
    pyproject.write_text(pyproject.read_text().replace(declared, '"transformers>=5.0,<5.20"'))
    problems = lock.check(text, pyproject)
    assert any(
        p.startswith("pyproject.toml requires transformers<5.20,>=5.0 but the lock pins 5.") for p in problems
    )


def test_a_dependency_added_to_the_lock_only_fails(project):
    pyproject, text = project
    problems = lock.check(text + "polars==1.0.0\n", pyproject)
    assert problems == [
        "the lock pins polars==1.0.0, which neither pyproject.toml nor a locked package requires"
    ]
    with pytest.raises(ValueError, match=r"'polars>=1.0' is not an exact pin NAME==VERSION"):
        lock.parse(text + "polars>=1.0\n")


def test_a_dependency_removed_from_pyproject_fails(project):
    pyproject, text = project
    pyproject.write_text(pyproject.read_text().replace('    "scipy>=1.12",\n', ""))
    problems = lock.check(text, pyproject)
    assert problems == ["pyproject.toml's requirements changed since the lock was written: run `make lock`"]


@pytest.mark.skipif(
    os.environ.get("PRUNING_UNLOCKED") == "1",
    reason="PRUNING_UNLOCKED=1: this environment has the newest versions pyproject.toml allows, on purpose",
)
def test_the_environment_is_the_lock():
    """Every locked package is installed at its version, and nothing else is (but the project
    itself). Run outside ``make install``'s venv, this names what differs."""
    _, pins = lock.parse((ROOT / "requirements.lock").read_text())
    want = {pin.name: pin.version for pin in pins}
    have = {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in importlib.metadata.distributions()
        if d.metadata["Name"] is not None
    }
    have.pop("pruning-kit")
    differ = sorted(
        f"{n}: lock {want.get(n)}, installed {have.get(n)}"
        for n in {*want, *have}
        if want.get(n) != have.get(n)
    )
    assert differ == [], "the environment is not the lock (`make install` builds it):\n" + "\n".join(differ)


def test_uv_installs_from_the_sources_pip_is_configured_with():
    spec = importlib.util.spec_from_file_location("uv_sources", ROOT / "scripts" / "uv_sources.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    listing = "\n".join(
        [
            ":env:.find-links='/opt/wheels'",
            "global.cert='/etc/ssl/certs/ca-certificates.crt'",
            "global.extra-index-url='file:///a/simple file:///b/simple'",
            "global.find-links='/elsewhere'",  # the variable overrides the file, as for pip
        ]
    )
    assert module.sources(listing) == [
        "--find-links",
        "/opt/wheels",
        "--extra-index-url",
        "file:///a/simple",
        "--extra-index-url",
        "file:///b/simple",
        "--index-strategy",
        "unsafe-best-match",
    ]
    assert module.sources(":env:.find-links=''\nglobal.find-links='/opt/wheels'") == []
    assert module.sources("") == []
