"""The terminal summary of a run, as styled lines: the tables, costs, baseline comparison, verdict.

A line is ``(style, text)``: style ``""`` plain, ``"warn"``, ``"error"``, or ``"="`` / ``"-"``
for a separator titled ``text``. The plugin only writes them to pytest's terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pruning.data.corpora import FALLBACK_SOURCE
from pruning.metrics.change import pct_change
from pruning.reporting.compact import compact_table
from pruning.reporting.report import Outcome
from pruning.reporting.tables import (
    healing_lines,
    num_cell,
    rank_lines,
    render_text,
    speed_lines,
    table,
)
from pruning.reporting.task_tables import task_lines
from pruning.results.gates import speed_gate_state
from pruning.results.rows import Row

Line = tuple[str, str]


def summary_lines(outcome: Outcome, written: Sequence[Path], full: bool = False) -> list[Line]:
    """Every line of the summary, in order: the compact table (``pruning.reporting.compact``), or
    with ``full`` the full one, and where the full one is."""
    fell_back = outcome.fingerprint.corpus_source.startswith(FALLBACK_SOURCE)
    lines: list[Line] = [("=", "depth pruning results"), ("warn" if fell_back else "", header_line(outcome))]
    shown = table if full else compact_table
    lines.append(("", render_text(*shown(outcome.rows, outcome.sequential))))
    if not full:
        lines.append(("", _where_full(written)))
    lines += [("", line) for line in rank_lines(outcome.rows)]
    lines += [("", line) for line in task_lines(outcome.rows)]
    lines += [("", line) for line in speed_lines(outcome.campaigns, outcome.fits, outcome.rows)]
    lines += [("", line) for line in cost_lines(outcome)]
    if outcome.criteria is not None:
        lines += criteria_lines(outcome)
    if outcome.verdict.compared:
        lines += [
            ("-", "baseline vs now"),
            ("", render_text(*comparison(outcome.verdict.baseline, outcome.rows))),
        ]
    return lines + verdict_lines(outcome, written)


def _where_full(written: Sequence[Path]) -> str:
    """Where every interval, timing and task column is."""
    report = next((p.parent for p in written if p.name == "results.md"), None)
    files = f"{report}/results.{{md,csv,json,html}}" if report else "--prune-report DIR's results files"
    return f"every column (intervals, timings in ms, tasks): -v, or {files}"


def header_line(outcome: Outcome) -> str:
    """What was measured: model, corpus, protocol, BOS rule, and whether the corpus fell back."""
    fp = outcome.fingerprint
    bos = "none" if fp.bos is None else f"id {fp.bos} before every window"
    line = (
        f"model {fp.model} ({fp.dtype}, {fp.device}), corpus {fp.corpus} sha256 {fp.corpus_sha256[:12]}, "
        f"protocol {fp.protocol} ctx {fp.ctx}, eval tokens {fp.eval_tokens} (windows {fp.windows}), "
        f"BOS {bos}; "
        f"machine {fp.machine.describe()}"
    )
    if fp.corpus_source.startswith(FALLBACK_SOURCE):
        line += f"; FELL BACK to {fp.corpus_source}: WikiText-2 not found (set PRUNING_DATA_DIR)"
    return line


def cost_lines(outcome: Outcome) -> list[str]:
    """What the quality evaluations computed, reused and cost, and what each search cost."""
    lines = []
    lines += [line for c in outcome.log.task_costs for line in c.lines()]
    for done in outcome.log.evaluations:
        lines.append(
            f"quality: {done.computed} (variant, window) results computed, {done.reused} from the store"
        )
        lines += [
            f"engine ({stats.strategy}): {stats.cost:.0f} block-forward equivalents per window "
            f"vs {stats.naive_cost:.0f} naive ({stats.cost / stats.naive_cost:.2f}x), "
            f"peak cached states {stats.peak_state_bytes / 2**20:.1f} MiB"
            for stats in done.stats
        ]
    lines += worker_lines(outcome)
    lines += healing_lines(outcome.log.healings)
    for found in outcome.log.searches:
        lines.append(
            f"search {found.what or ''}: {found.evaluations:.0f} (variant, window) evaluations (partial "
            f"windows by their share) of {found.exhaustive_evaluations} exhaustive; cost {found.cost:.0f} vs "
            f"{found.exhaustive_naive_cost:.0f} block-forward "
            f"equivalents for exhaustive naive evaluation ({found.cost / found.exhaustive_naive_cost:.3f}x), "
            f"{found.seconds:.0f} s; best {', '.join(f'{v.id} {p:.3f}' for v, p in found.best[:3])}"
        )
    return lines


def worker_lines(outcome: Outcome) -> list[str]:
    """Under pytest-xdist: each worker's variants, counted cost and peak memory, and the total
    against the serial prefix-shared run and naive evaluation (block-forward equivalents per window)."""
    if not outcome.workers:
        return []
    lines = [
        f"xdist worker {w.worker}: {w.variants} variants, cost {w.cost:.0f} (naive {w.naive:.0f}), "
        f"{w.computed} (variant, window) results computed, {w.reused} from the store, "
        f"peak RSS {w.peak_rss_mb:.0f} MiB"
        for w in outcome.workers
    ]
    total, serial = sum(w.cost for w in outcome.workers), outcome.workers[0].serial
    naive = sum(w.naive for w in outcome.workers)
    lines.append(
        f"xdist total: {len(outcome.workers)} workers, cost {total:.0f} vs serial {serial:.0f} "
        f"({total / serial:.2f}x) and naive {naive:.0f}"
    )
    tasks, tasks_naive = sum(w.task_cost for w in outcome.workers), sum(w.task_naive for w in outcome.workers)
    if tasks_naive:
        per_worker = ", ".join(f"{w.worker} {w.task_cost:.0f}" for w in outcome.workers)
        lines.append(
            f"tasks (shared passes, {per_worker}): {tasks:.0f} block-forward equivalents vs "
            f"{tasks_naive:.0f} for one lm-eval run per variant ({tasks / tasks_naive:.2f}x)"
        )
    return lines


def criteria_lines(outcome: Outcome) -> list[Line]:
    """The criteria table, with the calibration text it was computed on."""
    if outcome.criteria is None:
        return []
    lines: list[Line] = [("-", "criteria against the truth (evaluation text)")]
    calib, fp = outcome.log.calibration, outcome.fingerprint
    if calib is not None:
        lines.append(
            (
                "",
                f"criteria computed on calibration text only: {calib.corpus.name}/{calib.corpus.split} "
                f"sha256 {calib.corpus.sha256[:12]}, {calib.scored_tokens} scored tokens; truth and regret "
                f"on {fp.corpus} sha256 {fp.corpus_sha256[:12]}",
            )
        )
    return [*lines, ("", render_text(outcome.criteria.header, outcome.criteria.cells))]


def comparison(baseline: Sequence[Row], now: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """The baseline-vs-now table of the variants both runs measured: perplexity, KL, parameters,
    the in-run speedups with their intervals, and the accuracy on each task both runs evaluated."""
    saved = {r.id: r for r in baseline}
    both = [(row, old) for row in now if (old := saved.get(row.id)) is not None]
    tasks = sorted({n for row, old in both for n in (row.tasks or {}) if n in (old.tasks or {})})
    header = ["variant", "ppl baseline", "ppl now", "ppl Δ (%)", "KL baseline", "KL now"]
    header += ["params baseline", "params now", "speedup baseline (95% CI)", "speedup now (95% CI)"]
    header += [f"{name} {when} (%)" for name in tasks for when in ("baseline", "now")]
    cells = [
        [
            row.id,
            f"{old.ppl:.3f}",
            f"{row.ppl:.3f}",
            f"{pct_change(row.ppl, old.ppl):+.2f}",
            f"{old.kl:.4f}",
            f"{row.kl:.4f}",
            str(old.params),
            str(row.params),
            _speedup(old),
            _speedup(row),
            *[_accuracy(r, name) for name in tasks for r in (old, row)],
        ]
        for row, old in both
    ]
    return header, cells


def _accuracy(row: Row, task: str) -> str:
    cell = (row.tasks or {}).get(task)
    return "—" if cell is None else f"{cell['value']:.1f}"


def verdict_lines(outcome: Outcome, written: Sequence[Path]) -> list[Line]:
    """The baseline used, the speed gate's state, refusals, failures, and the files written."""
    verdict = outcome.verdict
    budget = verdict.thresholds.max_ppl_increase_pct
    lines: list[Line] = [
        (
            "warn" if verdict.baseline_note.startswith("NO baseline") else "",
            f"pruning: {verdict.baseline_note}; absolute budget --prune-max-ppl-increase: "
            f"{'off' if budget is None else f'{budget:g}%'}",
        )
    ]
    if verdict.compared:
        lines.append(("", f"pruning: speedup gate: {speed_gate_state(verdict, outcome.rows)}"))
    for note in verdict.notes:
        if note and verdict.baseline:
            lines.append(("warn", f"pruning: {note}"))
    if verdict.refused:
        lines.append(("error", "pruning: baseline REFUSED for the quality gates; its fingerprint differs:"))
        lines += [("error", f"  {line}") for line in verdict.refused]
    if verdict.failures:
        lines.append(("error", f"pruning: {len(verdict.failures)} regression gate(s) FAILED:"))
        lines += [("error", f"  {failure}") for failure in verdict.failures]
    if verdict.failed:
        lines.append(("error", "pruning: this run was not saved as a baseline."))
    return lines + [("", f"pruning: wrote {path}") for path in written]


def _speedup(row: Row) -> str:
    ci = row.speedup_ci95
    return num_cell(row.speedup, 3) + (
        "" if row.speedup is None or ci is None else f" ({ci[0]:.3f}–{ci[1]:.3f})"
    )
