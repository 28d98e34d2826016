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


FAKE_CLOCK = """
from pruning.metrics import speed
from pruning.models.surgery import num_layers

_real = speed.prefill_slot, speed.decode_slot


def pytest_configure(config):
    # A clock without noise: a slot takes 1 ms per block plus 1 ms for the rest (prefill), a
    # tenth of that (decode), so every campaign and every rerun times exactly the same.
    speed.prefill_slot = lambda model, ids, burst: lambda: 1e-3 * (num_layers(model) + 1)
    speed.decode_slot = lambda model, started, new_tokens: lambda: 1e-4 * (num_layers(model) + 1)


def pytest_unconfigure(config):
    speed.prefill_slot, speed.decode_slot = _real
"""


@pytest.fixture
def fake_clock(suite) -> None:
    """The suite's speed campaigns timed by a clock without noise (``FAKE_CLOCK``), so a speed
    gate's verdict on a rerun cannot depend on the machine's load."""
    suite[0].makeconftest(FAKE_CLOCK)
