"""The terminal's default table: the study's story in at most 120 columns.

One row per variant, in the full table's order (``pruning.reporting.tables.order_rows``): the
unit removed, layers left, perplexity, its change against the unpruned model with the paired 95%
interval (and ``≈ best`` where it cannot be told from the best removal of its size), KL and top-1
agreement, parameters, and the prefill and decode changes (signed where their 95% interval
excludes 0, ``n.s.`` where it does not). Every interval, timing and task column is in the full
table: ``results.{md,csv,json,html}`` and the terminal with ``-v``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pruning.reporting.tables import change_cell, num_cell, order_rows, removed_cell
from pruning.results.rows import Row

WIDTH = 120  # the widest line the compact table may print (a test holds the default run to it)


def compact_table(rows: Sequence[Row], sequential: bool) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the compact table (module docstring)."""
    header = [
        "removed" if sequential else "units removed",
        "layers",
        "ppl (↓)",
        "ppl change % (paired 95% CI)",
        "KL",
        "top-1",
        "params M",
        "prefill Δ%",
        "decode Δ%",
    ]
    return header, [_cells(r) for r in order_rows(rows, sequential)]


def _cells(r: Row) -> list[str]:
    reference = r.id == "base"
    return [
        removed_cell(r),
        str(r.layers),
        f"{r.ppl:.3f}",
        "reference" if reference else _change(r),
        f"{r.kl:.4f}",
        f"{r.top1_agree:.3f}",
        f"{r.params / 1e6:.2f}",
        change_cell(r.speed_change_pct, r.speed_change_ci95, reference),
        change_cell(r.decode_change_pct, r.decode_change_ci95, reference),
    ]


def _change(r: Row) -> str:
    change = num_cell(r.ppl_change_pct, 2, signed=True)
    if r.ppl_change_ci95 is not None:
        low, high = r.ppl_change_ci95
        change += f" ({low:+.1f}…{high:+.1f})"
    return change + (" ≈ best" if r.same_as_best else "")
