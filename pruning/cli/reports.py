"""Saved reports read back: a ``results.json``, or the folder that holds one.

A report holds the run's fingerprint and its rows with every derived field, so two reports can
be compared, and one re-rendered, without running a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pruning.metrics.fingerprint import RunFingerprint
from pruning.metrics.samples import Samples
from pruning.results.rows import Row, with_changes


class ReportError(ValueError):
    """A path that holds no readable report."""


@dataclass(frozen=True)
class SavedReport:
    """One report: where it came from, its raw fingerprint, its rows and its plan."""

    source: Path
    fingerprint: dict[str, Any]
    rows: list[Row]
    plan: str
    samples: Samples | None

    @property
    def run_fingerprint(self) -> RunFingerprint:
        """The fingerprint as a value; ``ReportError`` naming the field an older report lacks."""
        try:
            return RunFingerprint.from_dict(self.fingerprint)
        except KeyError as exc:
            raise ReportError(
                f"{self.source}: its fingerprint lacks {exc}; re-run it with this version"
            ) from None


def load_report(path: Path) -> SavedReport:
    """The report at ``path`` (a ``results.json`` or a folder holding one)."""
    file = path / "results.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(
            f"{str(path)!r} holds no results.json; expected a report folder or its results.json"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{str(file)!r} is not a readable results.json: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list) or "fingerprint" not in data:
        raise ReportError(f"{str(file)!r} is not a pruning report (no 'fingerprint' and 'rows')")
    rows = with_changes(Row.from_dict(r) for r in data["rows"])
    return SavedReport(
        file, data["fingerprint"], rows, str(data.get("plan", "?")), _samples(data.get("samples"))
    )


def _samples(data: dict[str, Any] | None) -> Samples | None:
    if not data:
        return None
    texts = {vid: tuple(t) for vid, t in data["texts"].items()}
    return Samples(tuple(data["prompts"]), int(data["new_tokens"]), texts)
