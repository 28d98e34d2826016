"""A run's report: the Markdown, ``results.json`` / ``.csv`` / ``.md``, the plots, the job summary.

Everything here is built from one ``Outcome``; the plugin decides when, this module what.
Files are written atomically; a failed run writes ``results.failed.*`` beside a saved report
instead of replacing it (``pruning.reporting.tables.write_reports``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pruning.metrics.fingerprint import RunFingerprint
from pruning.metrics.samples import Samples
from pruning.metrics.timing import Campaign
from pruning.reporting.criteria_report import CriteriaReport, write_plots
from pruning.reporting.html import Page, render_html
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
from pruning.reporting.task_tables import task_lines
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
    samples: Samples | None = None  # --prune-samples: each variant's continuations

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
        *task_lines(outcome.rows),
        *(line for c in outcome.log.task_costs for line in c.lines()),
        *speed_lines(outcome.campaigns, outcome.fits, outcome.rows),
        *healing_lines(outcome.log.healings),
        f"Machine: {outcome.fingerprint.machine.describe()}.",
        f"Code: pruning-kit commit {outcome.fingerprint.commit or 'unknown (not a git checkout)'}.",
        f"Gates: {outcome.verdict.baseline_note}.",
        *[f"Baseline: {n}." for n in verdict.notes if verdict.baseline],
    ]
    text += "\n" + "\n".join(f"- {line}" for line in notes) + "\n"
    if outcome.criteria is not None:
        text += "\n#### Criteria against the truth\n\n"
        text += render_markdown(outcome.criteria.header, outcome.criteria.cells)
    if outcome.samples is not None:
        text += "\n" + samples_markdown(outcome.samples)
    return text


def samples_markdown(samples: Samples) -> str:
    """Per prompt, a table of each variant's continuation (greedy, up to ``new_tokens``)."""
    text = f"#### Samples (greedy, up to {samples.new_tokens} new tokens)\n"
    for i, prompt in enumerate(samples.prompts):
        rows = [[vid, _cell(t[i])] for vid, t in samples.texts.items()]
        text += f"\nPrompt {i + 1}: *{_cell(prompt)}*\n\n" + render_markdown(
            ["variant", "continuation"], rows
        )
    return text


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|") or "(nothing)"


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
        "results.html": render_html(page(outcome, plots)),
    }
    return write_reports(directory, files, outcome.verdict.failed) + plots


def _facts(outcome: Outcome) -> list[tuple[str, str]]:
    """The page's header facts: what was measured, where, with what, against what."""
    fp, verdict = outcome.fingerprint, outcome.verdict
    bos = "none" if fp.bos is None else f"id {fp.bos} before every window"
    protocol = f"{fp.protocol}, ctx {fp.ctx}, eval tokens {fp.eval_tokens} (windows {fp.windows}), BOS {bos}"
    return [
        ("model", f"{fp.model} ({fp.dtype}, {fp.device}), weights sha256 {fp.weights_sha256[:12]}"),
        ("corpus", f"{fp.corpus} sha256 {fp.corpus_sha256[:12]} ({fp.corpus_source})"),
        ("protocol", protocol),
        ("scored tokens", str(outcome.rows[0].tokens_scored)),
        ("plan", outcome.plan),
        ("machine", fp.machine.describe()),
        ("versions", f"torch {fp.torch}, transformers {fp.transformers}, scoring {fp.scoring}"),
        ("code", f"pruning-kit commit {fp.commit or 'unknown (not a git checkout)'}"),
        ("baseline", verdict.baseline_note),
    ]


def page(outcome: Outcome, plots: Sequence[Path]) -> Page:
    """The HTML page's content (``pruning.reporting.html``)."""
    fp, verdict = outcome.fingerprint, outcome.verdict
    facts = _facts(outcome)
    if verdict.failed:
        problems = [*verdict.refused, *(str(f) for f in verdict.failures)]
        head = f"Gates FAILED: {'; '.join(problems)}"
    else:
        head = "Gates passed" + (" against the baseline" if verdict.compared else " (no baseline compared)")
    notes = [
        *rank_lines(outcome.rows),
        *task_lines(outcome.rows),
        *(line for c in outcome.log.task_costs for line in c.lines()),
        *speed_lines(outcome.campaigns, outcome.fits, outcome.rows),
        *healing_lines(outcome.log.healings),
    ]
    criteria = None if outcome.criteria is None else (outcome.criteria.header, outcome.criteria.cells)
    rows = table(outcome.rows, outcome.sequential)
    return Page(
        f"Depth pruning: {fp.model}",
        facts,
        head,
        verdict.failed,
        rows,
        notes,
        plots,
        outcome.samples,
        criteria,
    )


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
        "samples": None if outcome.samples is None else outcome.samples.as_dict(),
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
