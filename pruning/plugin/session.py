"""Plugin state in ``config.stash``: settings, the study, recorded fields, campaigns, baselines.

The session decides *when* (time the selected variants once, gate before pytest-benchmark
saves, report at the end); what the rows, gates, reports and summary are comes from
``pruning.reporting``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pruning.common.machine import SLOW_BF16, slow_bfloat16
from pruning.data.corpora import CorpusError
from pruning.metrics.fingerprint import RunFingerprint
from pruning.metrics.samples import Samples
from pruning.metrics.speed import Started, start_decode, time_variants
from pruning.metrics.timing import Campaign
from pruning.models.loading import ModelLoadError
from pruning.models.saving import ExportError
from pruning.models.sources import SourceError
from pruning.models.variant import BASE, Variant
from pruning.plugin.baseline import Baseline, baseline_from_json, describe, explain_missing
from pruning.plugin.configure import build_settings, check_settings
from pruning.plugin.distribution import Distribution
from pruning.plugin.progress import TerminalProgress
from pruning.plugin.state import PROPERTY, PluginState
from pruning.reporting.criteria_report import build_criteria_report
from pruning.reporting.export import export
from pruning.reporting.history import write_history
from pruning.reporting.report import Outcome, append_job_summary, write_report
from pruning.results.gates import judge
from pruning.results.rows import Row, with_changes, with_fits
from pruning.results.runlog import WorkerCost
from pruning.study.expansion import TooManyVariants
from pruning.study.settings import Settings
from pruning.study.study import Study


@dataclass(eq=False)  # hashable by identity: it is registered as a plugin
class PruneSession:
    """Everything the plugin keeps for one pytest session."""

    config: pytest.Config
    settings: Settings
    study: Study
    progress: TerminalProgress
    state: PluginState  # what the plugin kept before this session started
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # variant id -> fields
    fingerprint: RunFingerprint | None = None
    written: list[Path] = field(default_factory=list)
    selected: list[Variant] = field(default_factory=list)  # variants of the selected tests
    timed: dict[str, list[Variant]] = field(default_factory=dict)  # prefill/decode -> variants
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    started: dict[str, Started] = field(default_factory=dict)  # variant id -> prefilled decode cache
    loaded: list[Baseline] = field(default_factory=list)  # those files as baselines
    baseline_note: str = "no baseline compared (--benchmark-compare not given)"
    outcome: Outcome | None = None
    export_note: str = ""  # why --prune-export wrote nothing, if it did not
    distribution: Distribution = field(init=False)  # the xdist side (pruning.plugin.distribution)
    workers: dict[str, WorkerCost] = field(default_factory=dict)  # controller: what each worker cost

    def check_baseline_request(self) -> None:
        """With ``--benchmark-compare``: a usable baseline, or a usage error naming why there is none."""
        paths = list(getattr(self.state.benchmark_session, "compared_mapping", None) or [])
        for i, data in enumerate(self.state.compared):
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
            timed = self.timed.get("prefill" if kind == "prefill_long" else kind, [])
            variants = sorted({BASE, *timed})
            models = {v.id: self.study.model_for(v) for v in variants}
            classes = {v.id: self.study.work_class(v) for v in variants}
            ids = self.study.speed_ids_long if kind == "prefill_long" else self.study.speed_ids
            if kind == "decode":  # prefilled once, for the campaign and pytest-benchmark's decode run
                self.started.update({v: start_decode(m, ids) for v, m in models.items()})
            self.campaigns[kind] = time_variants(
                kind, models, ids, self.settings.speed, self.progress.campaign, classes, self.started
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
            self.fingerprint = RunFingerprint.from_dict(payload["fingerprint"])
        if payload.get("worker"):
            cost = WorkerCost(**payload["worker"])
            self.workers[cost.worker] = cost

    def __post_init__(self) -> None:
        self.distribution = Distribution(self.config, self.study)

    def variants(self) -> list[Variant]:
        """The plan's variants (under xdist also grouped for the scheduler); ``pytest.UsageError``
        naming the option for a model, corpus or plan that does not work."""
        if not self.study.model_loaded:
            self.progress.line(f"loading model {self.settings.model.spec} ...", final=True)
            if self.settings.model.dtype == "bfloat16" and slow_bfloat16(self.settings.model.device):
                self.progress.line(SLOW_BF16, final=True)
        try:
            variants = self.study.variants()
        except (ModelLoadError, SourceError, CorpusError) as exc:
            raise pytest.UsageError(f"--prune-model/--prune-corpus: {exc}") from None
        except TooManyVariants as exc:
            raise pytest.UsageError(
                f"--prune-plan: {exc} (--prune-max-variants={exc.limit}); "
                f"pass --prune-max-variants={exc.count} to run them all"
            ) from None
        except ValueError as exc:
            raise pytest.UsageError(f"--prune-plan: {exc}") from None
        self.distribution.group(variants)  # under xdist: the groups its scheduler sends whole
        return variants

    def quality(self, variant: Variant) -> Row:
        """The quality row of ``variant``; the first request evaluates every variant it should
        (``Distribution.wanted``) in one engine pass."""
        return self.study.quality(self.distribution.wanted(variant, self.selected))[variant]

    def finish(self) -> bool:
        """Build rows, run the gates, write reports; True when the session must fail."""
        rows = [Row.from_dict({**f, "id": vid}) for vid, f in self.records.items() if "ppl" in f]
        if not rows or self.fingerprint is None:
            return False
        rows.sort(key=lambda r: r.variant.sort_key)
        rows, fits = with_fits(with_changes(rows))
        usable = [b for b in self.loaded if b.rows]
        baseline = (usable[-1].fingerprint, usable[-1].rows) if usable else None
        log = self.study.log
        criteria = None
        if log.criteria and any(r.id == "base" for r in rows):
            criteria = build_criteria_report(rows, log.criteria, log.k_max)
        verdict = judge(rows, self.settings.thresholds, self.fingerprint, baseline, self.baseline_note)
        samples = self._samples(rows)
        self.outcome = Outcome(
            rows,
            self.fingerprint,
            str(self.settings.plan),
            fits,
            self.campaigns,
            log,
            criteria,
            verdict,
            tuple(sorted(self.workers.values(), key=lambda w: w.worker)),
            samples,
        )
        self._write(self.outcome)
        exported = self._export(self.outcome)
        self.config.hook.pytest_prune_results(
            config=self.config, rows=rows, fingerprint=self.fingerprint.as_dict(), failures=verdict.failures
        )
        return verdict.failed or not exported

    def _samples(self, rows: list[Row]) -> Samples | None:
        """``--prune-samples``: every measured variant's continuations (None when off)."""
        count = self.settings.samples.count
        if not count:
            return None
        self.progress.line(
            f"samples: {count} prompt(s) x {len(rows)} variants, greedy through the KV cache ...", final=True
        )
        return self.study.samples([r.variant for r in rows])

    def _write(self, outcome: Outcome) -> None:
        if self.settings.report_dir is not None:
            self.written = write_report(self.settings.report_dir, outcome)
        if self.settings.history_json is not None:
            self.written += write_history(self.settings.history_json, outcome.rows, outcome.fingerprint)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            append_job_summary(Path(summary), outcome)

    def _export(self, outcome: Outcome) -> bool:
        """``--prune-export``: every measured variant, unless the run failed its gates; False
        when an export failed (the session then fails, naming it)."""
        directory = self.settings.export_dir
        if directory is None:
            return True
        if outcome.verdict.failed:
            self.export_note = f"export to {directory} skipped: this run failed its gates"
            return True
        for row in outcome.rows:
            self.progress.line(f"exporting {row.id} to {directory / row.id} ...", final=True)
            variant = row.variant
            if variant.sublayers:  # no stock config expresses a block without a branch
                self.progress.line(
                    f"not exporting {row.id}: a model without sub-layers has no stock config", final=True
                )
                continue
            healed = self.study.healed(variant) if variant.heal else None
            try:
                path = export(self.study.lm, variant, directory / row.id, row, outcome.fingerprint, healed)
            except (ExportError, OSError) as exc:
                self.export_note = f"export of {row.id} to {directory / row.id} FAILED: {exc}"
                return False
            self.written.append(path)
        return True


def disable_saving(config: pytest.Config) -> None:
    """Stop pytest-benchmark from saving this (failed) run as a baseline or JSON file."""
    bs = getattr(config, "_benchmarksession", None)
    if bs is not None:
        bs.save = bs.autosave = bs.json = None


def start(state: PluginState) -> PruneSession:
    """Start the pruning session of ``state``'s run: settings from the options, the checks that
    refuse a bad setup (``pytest.UsageError``), the study; registered for pytest's hooks."""
    config = state.config
    progress = TerminalProgress(config)
    settings = build_settings(config, progress)
    check_settings(settings)
    session = PruneSession(config, settings, Study(settings), progress, state)
    config.pluginmanager.register(session, "pruning-session")  # test reports, pytest-benchmark hooks
    return session
