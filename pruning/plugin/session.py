"""Plugin state in ``config.stash``: settings, the study, collected rows, baselines, gates."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from pruning.criteria_report import CriteriaReport, build_criteria_report, write_plots
from pruning.engine import EngineOptions
from pruning.gates import GateFailure, Thresholds, check_baseline, check_budget, fingerprint_diff
from pruning.plugin import options
from pruning.report import render_markdown, table, to_csv, to_json, write_reports
from pruning.results import Row, with_changes
from pruning.settings import ModelSettings, Settings
from pruning.speed import SpeedSettings
from pruning.study import Study
from pruning.variants import Variant
from pruning.windows import Protocol

PROPERTY = "pruning"  # key of the user_properties entry each pruning test records


def build_settings(config: pytest.Config) -> Settings:
    """The session's settings from the options; ``pytest.UsageError`` on bad combinations."""

    def get(name: str) -> Any:
        return options.get(config, name)

    try:
        protocol = Protocol(get("protocol"), get("ctx"), get("eval-tokens"))
    except ValueError as exc:
        raise pytest.UsageError(f"--prune-protocol/--prune-ctx/--prune-eval-tokens: {exc}") from None
    report = get("report")
    return Settings(
        model=ModelSettings(get("model"), get("dtype"), get("device"), get("threads")),
        corpus=get("corpus"),
        protocol=protocol,
        plan=get("plan"),
        max_variants=get("max-variants"),
        engine=EngineOptions(get("engine") == "prefix", get("max-state-mb"), get("batch-size")),
        speed=SpeedSettings(get("speed-seq"), get("decode-tokens"), get("speed-rounds"), 1, get("threads")),
        thresholds=Thresholds(get("ppl-fail"), get("speedup-fail"), get("max-ppl-increase")),
        report_dir=Path(report) if report else None,
        calib_corpus=get("calib-corpus"),
        calib_tokens=get("calib-tokens"),
        store_dir=None if options.no_cache(config) else Path(get("cache-dir")).expanduser(),
    )


@dataclass(eq=False)  # hashable by identity: it is registered as a plugin
class PruneSession:
    """Everything the plugin keeps for one pytest session."""

    config: pytest.Config
    settings: Settings
    study: Study
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # variant id -> fields
    fingerprint: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    baseline: list[Row] = field(default_factory=list)
    failures: list[GateFailure] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    selected: list[Variant] = field(default_factory=list)  # variants of the selected tests
    plan_error: str = ""  # a plan that does not fit the model, reported after collection
    criteria: CriteriaReport | None = None

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
        self.rows = with_changes(sorted(rows, key=lambda r: (bool(r.removed), r.removed)))
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
        saved = load_baseline(self.config)
        if saved is None:
            return
        fingerprint, self.baseline = saved
        self.refused = fingerprint_diff(self.fingerprint, fingerprint)
        if not self.refused:
            self.failures += check_baseline(self.rows, self.baseline, self.settings.thresholds)

    def _write(self, failed: bool) -> None:
        if self.settings.report_dir is None and not os.environ.get("GITHUB_STEP_SUMMARY"):
            return
        header, cells = table(self.rows, self.is_sequential)
        markdown = f"### Depth pruning: {self.fingerprint.get('model')}\n\n" + render_markdown(header, cells)
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
        return write_plots(directory, self.rows, self.study.criteria, self._k_max(), title)

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


def load_baseline(config: pytest.Config) -> tuple[dict[str, Any], list[Row]] | None:
    """The fingerprint and rows of the run ``--benchmark-compare`` selected, if any."""
    bs = getattr(config, "_benchmarksession", None)
    mapping = getattr(bs, "compared_mapping", None)
    if not bs or not getattr(bs, "compare", None) or not mapping:
        return None
    benches = list(mapping.values())[-1]  # the last compared file
    fingerprint: dict[str, Any] = {}
    found: dict[str, Row] = {}
    for bench in benches.values():
        info = bench.get("extra_info", {}).get(PROPERTY)
        if not info:
            continue
        fingerprint = info["fingerprint"]
        row = Row.from_dict(info["row"])
        found[row.id] = replace(row, speed_ms=1000.0 * bench["stats"]["median"])
    if not found:
        return None
    return fingerprint, with_changes(found.values())


def disable_saving(config: pytest.Config) -> None:
    """Stop pytest-benchmark from saving this (failed) run as a baseline or JSON file."""
    bs = getattr(config, "_benchmarksession", None)
    if bs is not None:
        bs.save = bs.autosave = bs.json = None
