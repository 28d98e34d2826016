"""Fixtures of the plugin tests: the real suite in a pytester directory, with fast options."""

from __future__ import annotations

from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[2] / "benchmarks" / "test_pruning.py"


@pytest.fixture
def suite(pytester: pytest.Pytester, small_corpus):
    """A pytester dir holding the real suite, and the common fast options."""
    pytester.makepyfile(test_pruning=SUITE.read_text())
    source = small_corpus.source.removeprefix("file:")
    storage = pytester.path / "bench-store"
    args = [
        "-p",
        "no:cacheprovider",
        "--prune-model",
        "random:tiny-gpt2",
        "--prune-corpus",
        f"file:{source}",
        "--prune-ctx",
        "64",
        "--prune-eval-tokens",
        "256",
        "--prune-speed-seq",
        "16",
        "--prune-decode-tokens",
        "2",
        "--prune-speed-rounds",
        "2",
        "--prune-speed-budget",
        "2",
        "--prune-threads",
        "1",
        f"--prune-cache-dir={pytester.path / 'results-store'}",
        f"--benchmark-storage=file://{storage}",
    ]
    return pytester, args, storage
