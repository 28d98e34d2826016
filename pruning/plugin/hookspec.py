"""Extension points of the pruning plugin."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec
def pytest_prune_results(
    config: pytest.Config, rows: list[Any], fingerprint: dict[str, Any], failures: list[Any]
) -> None:
    """Called once at session end with the final rows (``pruning.results.rows.Row``), the run's
    fingerprint and the gate failures (``pruning.results.gates.GateFailure``), after the gates ran and
    before the terminal summary: export them to a dashboard, a database, another format."""
