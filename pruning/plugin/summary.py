"""The terminal summary: ``pruning.reporting.summary``'s lines, written to pytest's terminal."""

from __future__ import annotations

from typing import Any

from pruning.plugin.session import PruneSession
from pruning.plugin.state import state_of
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
    full = session.config.get_verbosity() > 0
    for style, text in summary_lines(session.outcome, session.written, full):
        if style in ("=", "-"):
            tr.write_sep(style, text)
        else:
            tr.write_line(text, yellow=style == "warn", red=style == "error")
    if session.export_note:
        tr.write_line(f"pruning: {session.export_note}", yellow=True)
    hidden = state_of(session.config).benchmark_table_hidden
    if hidden:
        tr.write_line(
            f"pruning: pytest-benchmark's table leaves out the {hidden} prefill/decode benchmarks: each is "
            "one pass of its variant, saved for --benchmark-compare; the timings are the interleaved "
            "campaigns' (the speed columns above, every slot in results.json; --prune-benchmark-table "
            "shows them)"
        )
