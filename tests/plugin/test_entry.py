"""The plugin's entry point is imported by every pytest run: it must stay light and agree with
the library on the choices it offers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pruning.healing.methods import HEALERS
from pruning.models.placement import POLICIES
from pruning.plugin import options

HEAVY = ("torch", "transformers", "peft", "accelerate", "scipy", "matplotlib", "numpy")


def test_option_choices_are_the_library_s():
    """Protocols and window selections come from ``pruning.data.protocols`` itself (no torch);
    these two are spelled in the parsers, whose homes import accelerate and peft."""
    assert options.POLICIES == POLICIES
    assert sorted(options.HEALERS) == HEALERS.names()


def test_a_run_without_pruning_tests_imports_nothing_heavy(pytester: pytest.Pytester):
    """pytest loads the plugin for every run in an environment with pruning-kit installed; before
    its session started lazily that cost 9 s a run (torch, transformers, peft), and a suite
    without pruning tests paid it too. A whole run (configure, collection, summary) in a fresh
    interpreter must leave them unimported."""
    pytester.makepyfile(test_plain="def test_one():\n    assert True\n")
    code = (
        "import sys, pytest; code = pytest.main(['-q', '-p', 'no:cacheprovider', 'test_plain.py']); "
        f"print(int(code), [m for m in {HEAVY!r} if m in sys.modules], 'pruning.plugin' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=pytester.path)
    assert out.stdout.strip().splitlines()[-1] == "0 [] True", out.stdout + out.stderr
