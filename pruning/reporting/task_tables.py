"""Task accuracy in the tables: its columns, its cells and the rankings' agreement.

Per task (``--prune-tasks``, ``pruning.tasks``): the accuracy with its 95% interval, and the
paired change against the unpruned model in points; and per task one line saying whether
accuracy and perplexity rank the removals alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from scipy import stats

from pruning.results.rows import Row


def task_columns(rows: Sequence[Row]) -> list[tuple[str, str]]:
    """(task, metric) of every task any row has results for, by name."""
    found = {name: cell["metric"] for r in rows for name, cell in (r.tasks or {}).items()}
    return sorted(found.items())


def task_cells(r: Row, name: str) -> list[str]:
    """The two cells of task ``name`` for row ``r``: accuracy (95% CI) and its paired change."""
    cell = (r.tasks or {}).get(name)
    if cell is None:
        return ["—", "—"]
    low, high = cell["ci95"]
    value = f"{cell['value']:.1f} ({low:.1f}–{high:.1f})"
    if r.id == "base":
        return [value, "reference"]
    if cell["change_pts"] is None:
        return [value, "—"]
    c_low, c_high = cell["change_ci95"]
    return [value, f"{cell['change_pts']:+.1f} ({c_low:+.1f} … {c_high:+.1f})"]


def task_lines(rows: Sequence[Row]) -> list[str]:
    """Per task: do accuracy and perplexity rank the removals alike? The Spearman correlation of
    the variants' perplexity change and their accuracy loss (the paired change, negated), over
    every unhealed removal with both."""
    lines = []
    for name, metric in task_columns(rows):
        pairs = [
            (r.ppl_change_pct, -(r.tasks or {})[name]["change_pts"])
            for r in rows
            if r.id != "base"
            and not r.heal
            and r.ppl_change_pct is not None
            and (r.tasks or {}).get(name, {}).get("change_pts") is not None
        ]
        if len(pairs) < 3:
            continue
        ppl, loss = [p for p, _ in pairs], [a for _, a in pairs]
        head = f"tasks: {name} {metric} loss against perplexity change"
        if len(set(ppl)) < 2 or len(set(loss)) < 2:
            lines.append(f"{head}: Spearman ρ undefined over {len(pairs)} removals (one of them is constant)")
            continue
        rho = float(stats.spearmanr(ppl, loss).statistic)
        lines.append(
            f"{head}: Spearman ρ = {rho:+.2f} over {len(pairs)} removals "
            "(+1: they rank the removals alike, 0: unrelated)"
        )
    return lines
