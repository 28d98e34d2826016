"""The terminal summary: the study's tables, baseline comparison, gate results."""

from __future__ import annotations

from typing import Any

from pruning.plugin.session import PruneSession
from pruning.reporting.rows import Row, pct_change
from pruning.reporting.tables import render_text, speed_lines, table


def write_summary(tr: Any, session: PruneSession) -> None:
    """Print the pruning tables and gate results at the end of the session."""
    if not session.rows:
        if session.config.getoption("benchmark_compare", None) and not hasattr(session.config, "workerinput"):
            tr.write_line(
                f"pruning: {session.baseline_note}; no pruning results, so no gate ran", yellow=True
            )
        return
    fp = session.fingerprint
    tr.write_sep("=", "depth pruning results")
    bos = "none" if fp.get("bos") is None else f"id {fp.get('bos')} before every window"
    tr.write_line(
        f"model {fp.get('model')} ({fp.get('dtype')}, {fp.get('device')}), corpus {fp.get('corpus')} "
        f"sha256 {str(fp.get('corpus_sha256'))[:12]}, protocol {fp.get('protocol')} "
        f"ctx {fp.get('ctx')}, eval tokens {fp.get('eval_tokens')}, BOS {bos}"
    )
    header, cells = table(session.rows, session.is_sequential)
    tr.write_line(render_text(header, cells))
    for line in speed_lines(session.campaigns, session.fits, session.rows):
        tr.write_line(line)
    for line in _cost_lines(session):
        tr.write_line(line)
    for found in session.study.searches:
        tr.write_line(
            f"search: {found.evaluations:.0f} (variant, window) evaluations (partial windows by their "
            f"share) of {found.exhaustive_evaluations} exhaustive; cost {found.cost:.0f} vs "
            f"{found.exhaustive_naive_cost:.0f} block-forward "
            f"equivalents for exhaustive naive evaluation ({found.cost / found.exhaustive_naive_cost:.3f}x)"
        )
    if session.criteria is not None:
        tr.write_sep("-", "criteria against the truth (evaluation text)")
        calib = session.study.calib_corpus
        tr.write_line(
            f"criteria computed on calibration text only: {calib.name}/{calib.split} "
            f"sha256 {calib.sha256[:12]}, "
            f"{sum(w.scored for w in session.study.calib_windows)} scored tokens; truth and regret on "
            f"{fp.get('corpus')} sha256 {str(fp.get('corpus_sha256'))[:12]}"
        )
        tr.write_line(render_text(session.criteria.header, session.criteria.cells))
    if session.baseline and not session.refused:
        tr.write_sep("-", "baseline vs now")
        tr.write_line(render_text(*_comparison(session.baseline, session.rows)))
    _write_verdict(tr, session)


def _cost_lines(session: PruneSession) -> list[str]:
    """What the quality sweeps computed, reused and cost."""
    lines = []
    for sweep in session.study.sweeps:
        lines.append(
            f"quality: {sweep.computed} (variant, window) results computed, {sweep.reused} from the store"
        )
        lines += [
            f"engine ({stats.strategy}): {stats.cost:.0f} block-forward equivalents per window "
            f"vs {stats.naive_cost:.0f} naive ({stats.cost / stats.naive_cost:.2f}x), "
            f"peak cached states {stats.peak_state_bytes / 2**20:.1f} MiB"
            for stats in sweep.stats
        ]
    return lines


def _comparison(baseline: list[Row], now: list[Row]) -> tuple[list[str], list[list[str]]]:
    saved = {r.id: r for r in baseline}
    header = [
        "variant",
        "ppl baseline",
        "ppl now",
        "ppl Δ (%)",
        "params baseline",
        "params now",
        "speedup baseline (95% CI)",
        "speedup now (95% CI)",
    ]
    cells = []
    for row in now:
        old = saved.get(row.id)
        if old is None:
            continue
        cells.append(
            [
                row.id,
                f"{old.ppl:.3f}",
                f"{row.ppl:.3f}",
                f"{pct_change(row.ppl, old.ppl):+.2f}",
                str(old.params),
                str(row.params),
                _fmt(old.speedup, old.speedup_ci95),
                _fmt(row.speedup, row.speedup_ci95),
            ]
        )
    return header, cells


def _write_verdict(tr: Any, session: PruneSession) -> None:
    budget = session.settings.thresholds.max_ppl_increase_pct
    tr.write_line(
        f"pruning: {session.baseline_note}; absolute budget --prune-max-ppl-increase: "
        f"{'off' if budget is None else f'{budget:g}%'}",
        yellow=session.baseline_note.startswith("NO baseline"),
    )
    if session.baseline and not session.refused:
        tr.write_line(f"pruning: speedup gate: {_speed_gate_state(session)}")
    if session.refused:
        tr.write_line("pruning: baseline REFUSED for the quality gates; its fingerprint differs:", red=True)
        for line in session.refused:
            tr.write_line(f"  {line}", red=True)
    if session.failures:
        tr.write_line(f"pruning: {len(session.failures)} regression gate(s) FAILED:", red=True)
        for failure in session.failures:
            tr.write_line(f"  {failure}", red=True)
    if session.refused or session.failures:
        tr.write_line("pruning: this run was not saved as a baseline.", red=True)
    for path in session.written:
        tr.write_line(f"pruning: wrote {path}")


def _speed_gate_state(session: PruneSession) -> str:
    """Whether the speedup gate compared anything, and if not, why (it never skips silently)."""
    if session.settings.thresholds.speedup_fail_pct is None:
        return "off"
    saved = {r.id for r in session.baseline if r.speedup is not None}
    now = {r.id for r in session.rows if r.speedup is not None}
    if not now:
        return "did NOT run: this run has no prefill timings (deselected, or -n / --benchmark-disable)"
    if not saved & now:
        return "did NOT run: the baseline has no prefill timings for these variants"
    return f"ran on {len(saved & now)} variants"


def _fmt(value: float | None, ci: tuple[float, float] | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if ci is None else f"{value:.3f} ({ci[0]:.3f}–{ci[1]:.3f})"
