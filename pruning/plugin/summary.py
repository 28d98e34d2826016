"""The terminal summary: ``pruning.reporting.summary``'s lines, written to pytest's terminal."""

from __future__ import annotations

from typing import Any

from pruning.plugin.session import PruneSession
from pruning.reporting.summary import summary_lines


def write_summary(tr: Any, session: PruneSession) -> None:
    """Print the pruning tables and gate results at the end of the session."""
    if session.outcome is None:
        compare = session.config.getoption("benchmark_compare", None)
        if compare and session.state.pruning_tests and not hasattr(session.config, "workerinput"):
            tr.write_line(
                f"pruning: {session.baseline_note}; no pruning results, so no gate ran", yellow=True
            )
        return
    for style, text in summary_lines(session.outcome, session.written):
        if style in ("=", "-"):
            tr.write_sep(style, text)
        else:
            tr.write_line(text, yellow=style == "warn", red=style == "error")
    if session.export_note:
        tr.write_line(f"pruning: {session.export_note}", yellow=True)
