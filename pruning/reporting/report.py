"""A run's report: the Markdown, ``results.json`` / ``.csv`` / ``.md``, the plots, the job summary.

Everything here is built from one ``Outcome``; the plugin decides when, this module what.
Files are written atomically; a failed run writes ``results.failed.*`` beside a saved report
instead of replacing it (``pruning.reporting.tables.write_reports``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pruning.metrics.fingerprint import RunFingerprint
from pruning.metrics.timing import Campaign
from pruning.reporting.criteria_report import CriteriaReport, write_plots
from pruning.reporting.tables import (
    healing_lines,
    rank_lines,
    render_markdown,
    speed_lines,
    speed_meta,
    table,
    to_csv,
    to_json,
    write_reports,
)
from pruning.results.gates import Verdict
from pruning.results.rows import Row, SpeedFits
from pruning.results.runlog import RunLog, WorkerCost


@dataclass(frozen=True)
class Outcome:
    """Everything a run's report and summary show."""

    rows: list[Row]  # with changes and fits (``pruning.results.rows``)
    fingerprint: RunFingerprint
    plan: str
    fits: SpeedFits | None
    campaigns: Mapping[str, Campaign]
    log: RunLog
    criteria: CriteriaReport | None
    verdict: Verdict
    workers: tuple[WorkerCost, ...] = ()  # under pytest-xdist: what each worker evaluated and cost

    @property
    def sequential(self) -> bool:
        """Whether every measured variant removes at most one unit (a block, or one branch)."""
        return all(len(r.variant.units) <= 1 for r in self.rows)


def markdown(outcome: Outcome) -> str:
    """The report's Markdown: the table, speed and gate notes, and the criteria table."""
    header, cells = table(outcome.rows, outcome.sequential)
    verdict = outcome.verdict
    text = f"### Depth pruning: {outcome.fingerprint.model}\n\n" + render_markdown(header, cells)
    notes = [
        *rank_lines(outcome.rows),
        *speed_lines(outcome.campaigns, outcome.fits, outcome.rows),
        *healing_lines(outcome.log.healings),
        f"Machine: {outcome.fingerprint.machine.describe()}.",
        f"Code: pruning-kit commit {outcome.fingerprint.commit or 'unknown (not a git checkout)'}.",
        f"Gates: {outcome.verdict.baseline_note}.",
        *[f"Baseline: {note}." for note in (verdict.machine, verdict.scoring) if note and verdict.baseline],
    ]
    text += "\n" + "\n".join(f"- {line}" for line in notes) + "\n"
    if outcome.criteria is not None:
        text += "\n#### Criteria against the truth\n\n"
        text += render_markdown(outcome.criteria.header, outcome.criteria.cells)
    return text


def write_report(directory: Path, outcome: Outcome) -> list[Path]:
    """Write the plots and ``results.json`` / ``.csv`` / ``.md`` into ``directory``."""
    fp = outcome.fingerprint
    title = f"{fp.model}, {fp.corpus}, {outcome.rows[0].tokens_scored} scored tokens"
    plots = write_plots(directory, outcome.rows, outcome.log.criteria, outcome.log.k_max, title, outcome.fits)
    text = markdown(outcome) + "".join(f"\n![{p.stem}]({p.name})\n" for p in plots)
    files = {
        "results.json": to_json(outcome.rows, meta(outcome, [p.name for p in plots])),
        "results.csv": to_csv(outcome.rows),
        "results.md": text,
    }
    return write_reports(directory, files, outcome.verdict.failed) + plots


def append_job_summary(path: Path, outcome: Outcome) -> None:
    """Append the report's Markdown to a CI job summary (``$GITHUB_STEP_SUMMARY``)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(markdown(outcome) + "\n")


def meta(outcome: Outcome, plots: list[str]) -> dict[str, Any]:
    """Everything ``results.json`` holds besides the rows."""
    calibration = outcome.log.calibration
    return {
        "fingerprint": outcome.fingerprint.as_dict(),
        "plan": outcome.plan,
        "failed": outcome.verdict.failed,
        "search": [vars(f) | {"best": [[v.id, p] for v, p in f.best]} for f in outcome.log.searches],
        "criteria": _criteria_json(outcome.criteria),
        "calibration": calibration.corpus.describe() if calibration and outcome.log.criteria else None,
        "plots": plots,
        "speed": speed_meta(outcome.campaigns, outcome.fits),
        "baseline": outcome.verdict.baseline_note,
        "workers": [w.as_dict() for w in outcome.workers],
        "healings": [asdict(h) for h in outcome.log.healings],
    }


def _criteria_json(report: CriteriaReport | None) -> list[dict[str, Any]]:
    if report is None:
        return []
    return [
        {
            "criterion": a.criterion,
            "spearman": a.spearman,
            "kendall": a.kendall,
            "regret_pct": {str(k): v for k, v in a.regret.items()},
            "chosen": {str(k): [int(u) if u.isdigit() else u for u in v.units] for k, v in a.chosen.items()},
            "scores": list(a.scores or ()),
            "seconds": a.seconds,
        }
        for a in report.assessments
    ]
