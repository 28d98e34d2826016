"""Plugin state in ``config.stash``: settings, the study, collected rows, campaigns, baselines, gates."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pruning.metrics.fingerprint import fingerprint_diff
from pruning.metrics.speed import time_variants
from pruning.metrics.timing import Campaign
from pruning.models.variant import BASE, Variant
from pruning.plugin.baseline import PROPERTY, Baseline, baseline_from_json, describe, explain_missing
from pruning.plugin.progress import TerminalProgress
from pruning.reporting.criteria_report import CriteriaReport, build_criteria_report, write_plots
from pruning.reporting.gates import GateFailure, check_baseline, check_budget
from pruning.reporting.rows import Row, SpeedFits, with_changes, with_fits
from pruning.reporting.tables import (
    render_markdown,
    speed_lines,
    speed_meta,
    table,
    to_csv,
    to_json,
    write_reports,
)
from pruning.study.settings import Settings
from pruning.study.study import Study


@dataclass(eq=False)  # hashable by identity: it is registered as a plugin
class PruneSession:
    """Everything the plugin keeps for one pytest session."""

    config: pytest.Config
    settings: Settings
    study: Study
    progress: TerminalProgress
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # variant id -> fields
    fingerprint: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    baseline: list[Row] = field(default_factory=list)
    failures: list[GateFailure] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    selected: list[Variant] = field(default_factory=list)  # variants of the selected tests
    timed: dict[str, list[Variant]] = field(default_factory=dict)  # prefill/decode -> variants
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    fits: SpeedFits | None = None
    compared: list[Any] = field(default_factory=list)  # the JSON of every file pytest-benchmark loaded
    benchmark_session: Any = None  # handed to us by pytest-benchmark's compare hook
    loaded: list[Baseline] = field(default_factory=list)  # those files as baselines
    baseline_note: str = "no baseline compared (--benchmark-compare not given)"
    setup_error: str = ""  # a plan or model that does not work, reported after collection
    criteria: CriteriaReport | None = None

    def pytest_benchmark_compare_machine_info(
        self, config: pytest.Config, benchmarksession: Any, machine_info: Any, compared_benchmark: Any
    ) -> None:
        """pytest-benchmark's public hook, called for every baseline file it loaded (in order)."""
        self.compared.append(compared_benchmark)
        self.benchmark_session = benchmarksession

    def check_baseline_request(self) -> None:
        """With ``--benchmark-compare``: a usable baseline, or a usage error naming why there is none."""
        paths = list(getattr(self.benchmark_session, "compared_mapping", None) or [])
        for i, data in enumerate(self.compared):
            source = describe(data, str(paths[i]) if i < len(paths) else "?")
            self.loaded.append(baseline_from_json(data, source) or Baseline(source, {}, []))
        compare = self.config.getoption("benchmark_compare", None)
        if not compare:
            return
        usable = [b for b in self.loaded if b.rows]
        if usable:
            self.baseline_note = f"gates compared against {usable[-1].source}"
            return
        why = explain_missing(str(self.config.getoption("benchmark_storage")), compare)
        if not self.config.getoption("prune_allow_missing_baseline"):
            raise pytest.UsageError(
                f"{why}. Pass --prune-allow-missing-baseline for a first run without one."
            )
        self.baseline_note = f"NO baseline: {why} (allowed by --prune-allow-missing-baseline)"

    def campaign(self, kind: str) -> Campaign:
        """The interleaved ``kind`` timing campaign over the selected variants, run once."""
        if kind not in self.campaigns:
            variants = sorted({BASE, *self.timed.get(kind, [])})
            models = {v.id: self.study.model_for(v) for v in variants}
            self.campaigns[kind] = time_variants(
                kind, models, self.study.speed_ids, self.settings.speed, self.progress.campaign
            )
        return self.campaigns[kind]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect the fields pruning tests recorded (on the controller under xdist)."""
        if report.when != "call" or not report.passed:
            return
        for key, payload in report.user_properties:
            if key == PROPERTY and isinstance(payload, dict):
                self.record(payload)

    def record(self, payload: dict[str, Any]) -> None:
        """Merge one test's recorded fields (from its report's user_properties)."""
        variant = payload["variant"]
        self.records.setdefault(variant, {}).update(payload.get("fields", {}))
        if payload.get("fingerprint"):
            self.fingerprint = payload["fingerprint"]

    def finish(self) -> bool:
        """Build rows, run the gates, write reports; True when the session must fail."""
        rows = [Row.from_dict({**f, "id": vid}) for vid, f in self.records.items() if "ppl" in f]
        self.rows, self.fits = with_fits(
            with_changes(sorted(rows, key=lambda r: (bool(r.removed), r.removed)))
        )
        if not self.rows:
            return False
        self.failures = check_budget(self.rows, self.settings.thresholds)
        if self.study.criteria and any(not r.removed for r in self.rows):
            self.criteria = build_criteria_report(self.rows, self.study.criteria, self._k_max())
        self._compare()
        failed = bool(self.failures or self.refused)
        self._write(failed)
        self.config.hook.pytest_prune_results(
            config=self.config, rows=self.rows, fingerprint=self.fingerprint, failures=self.failures
        )
        return failed

    def _compare(self) -> None:
        usable = [b for b in self.loaded if b.rows]
        if not usable:
            return
        self.baseline = usable[-1].rows
        self.refused = fingerprint_diff(self.fingerprint, usable[-1].fingerprint)
        if not self.refused:
            self.failures += check_baseline(self.rows, self.baseline, self.settings.thresholds)

    def _write(self, failed: bool) -> None:
        if self.settings.report_dir is None and not os.environ.get("GITHUB_STEP_SUMMARY"):
            return
        header, cells = table(self.rows, self.is_sequential)
        markdown = f"### Depth pruning: {self.fingerprint.get('model')}\n\n" + render_markdown(header, cells)
        notes = [*speed_lines(self.campaigns, self.fits, self.rows), f"Gates: {self.baseline_note}."]
        markdown += "\n" + "\n".join(f"- {line}" for line in notes) + "\n"
        if self.criteria is not None:
            markdown += "\n#### Criteria against the truth\n\n" + render_markdown(
                self.criteria.header, self.criteria.cells
            )
        if self.settings.report_dir is not None:
            plots = self._plots(self.settings.report_dir)
            markdown += "".join(f"\n![{p.stem}]({p.name})\n" for p in plots)
            meta = {
                "fingerprint": self.fingerprint,
                "plan": str(self.settings.plan),
                "failed": failed,
                "search": [vars(f) | {"best": [[v.id, p] for v, p in f.best]} for f in self.study.searches],
                "criteria": self._criteria_json(),
                "calibration": self.study.calib_corpus.describe() if self.study.criteria else None,
                "plots": [p.name for p in plots],
                "speed": speed_meta(self.campaigns, self.fits),
                "baseline": self.baseline_note,
            }
            files = {
                "results.json": to_json(self.rows, meta),
                "results.csv": to_csv(self.rows),
                "results.md": markdown,
            }
            self.written = write_reports(self.settings.report_dir, files, failed) + plots
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(markdown + "\n")

    def _plots(self, directory: Path) -> list[Path]:
        fp = self.fingerprint
        title = f"{fp.get('model')}, {fp.get('corpus')}, {self.rows[0].tokens_scored} scored tokens"
        return write_plots(directory, self.rows, self.study.criteria, self._k_max(), title, self.fits)

    def _k_max(self) -> int:
        return max((max(c.chosen, default=0) for c in self.study.criteria), default=0)

    def _criteria_json(self) -> list[dict[str, Any]]:
        if self.criteria is None:
            return []
        return [
            {
                "criterion": a.criterion,
                "spearman": a.spearman,
                "kendall": a.kendall,
                "regret_pct": {str(k): v for k, v in a.regret.items()},
                "chosen": {str(k): list(v) for k, v in a.chosen.items()},
                "scores": list(a.scores or ()),
                "seconds": a.seconds,
            }
            for a in self.criteria.assessments
        ]

    @property
    def is_sequential(self) -> bool:
        """Whether every measured variant removes at most one block."""
        return all(len(r.removed) <= 1 for r in self.rows)


def disable_saving(config: pytest.Config) -> None:
    """Stop pytest-benchmark from saving this (failed) run as a baseline or JSON file."""
    bs = getattr(config, "_benchmarksession", None)
    if bs is not None:
        bs.save = bs.autosave = bs.json = None
