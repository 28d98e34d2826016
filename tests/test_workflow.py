"""The GitHub Actions workflow is valid (actionlint) and does what the README says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "benchmarks.yml"


def test_actionlint_accepts_the_workflow():
    beside = Path(sys.executable).parent / "actionlint"  # the venv's bin, even when not on PATH
    actionlint = str(beside) if beside.exists() else shutil.which("actionlint")
    if actionlint is None:
        pytest.fail("actionlint is not installed; `pip install -e .[dev]` provides it")
    proc = subprocess.run([actionlint, str(WORKFLOW)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_compares_uploads_and_saves_the_baseline_on_main_only():
    text = WORKFLOW.read_text()
    assert "pytest benchmarks/" in text and "--benchmark-compare" in text
    assert "actions/upload-artifact" in text and "actions/cache/restore" in text
    assert "github.ref == 'refs/heads/main'" in text and "success()" in text
    assert "torch==2.13.0" in text
    # A missing baseline is allowed only when the restore found none, never silently skipped.
    assert "--prune-allow-missing-baseline" in text and "cache-matched-key" in text


def test_workflow_publishes_the_trend_from_main_only():
    """The history files go to github-action-benchmark, one step per direction, in a job that
    runs on pushes to main only and alerts on a regression."""
    text = WORKFLOW.read_text()
    assert "--prune-history-json reports/history.json" in text
    assert text.count("uses: benchmark-action/github-action-benchmark@v1") == 2
    assert "tool: customSmallerIsBetter" in text and "output-file-path: reports/history.json" in text
    assert "tool: customBiggerIsBetter" in text and "output-file-path: reports/history-bigger.json" in text
    trend = text[text.index("  trend:") :]
    assert "if: github.event_name == 'push' && github.ref == 'refs/heads/main'" in trend
    assert trend.count("fail-on-alert: true") == 2 and "contents: write" in trend


def test_pushes_install_the_lock_and_a_weekly_job_tests_the_newest_versions_allowed():
    text = WORKFLOW.read_text()
    bench = text[text.index("  bench:") : text.index("  newest:")]
    assert "pip install --no-deps -r requirements.lock" in bench
    assert "cache-dependency-path: requirements.lock" in bench
    assert "github.event_name == 'push' || github.event_name == 'pull_request'" in bench
    assert "schedule:\n    - cron:" in text and "workflow_dispatch:" in text
    newest = text[text.index("  newest:") : text.index("  trend:")]
    assert "github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'" in newest
    assert "--upgrade --upgrade-strategy eager -e '.[dev]'" in newest and "torch==2.13.0" in newest
    assert 'PRUNING_UNLOCKED: "1"' in newest and "scripts/fetch_wikitext.py" in newest
    assert "pytest tests" in newest and "mypy" in newest
