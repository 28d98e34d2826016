"""The baseline the gates compare against: what pytest-benchmark loaded, or why nothing was.

pytest-benchmark loads ``--benchmark-compare`` files at configure time and hands each one to
the public hook ``pytest_benchmark_compare_machine_info``; the session keeps them. When none
loaded, ``explain_missing`` looks at the file storage itself to say which files match the
pattern and why each could not be used, so the failure names them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pruning.plugin.state import PROPERTY
from pruning.results.rows import Row, with_changes


@dataclass(frozen=True)
class Baseline:
    """One loaded baseline: where it came from, its fingerprint and its rows."""

    source: str
    fingerprint: dict[str, Any]
    rows: list[Row]


def baseline_from_json(data: dict[str, Any], source: str) -> Baseline | None:
    """The pruning rows of a pytest-benchmark JSON (prefill and decode entries merged per variant)."""
    fingerprint: dict[str, Any] = {}
    fields: dict[str, dict[str, Any]] = {}
    for bench in data.get("benchmarks", []):
        info = (bench.get("extra_info") or {}).get(PROPERTY)
        if not info:
            continue
        fingerprint = info.get("fingerprint", fingerprint)
        row = info["row"]
        fields.setdefault(row["id"], {}).update({k: v for k, v in row.items() if v is not None})
    rows = [Row.from_dict(f) for f in fields.values() if "ppl" in f]
    return Baseline(source, fingerprint, with_changes(rows)) if rows else None


def describe(data: dict[str, Any], path: str) -> str:
    """``path`` with the run's date and commit, as the summary shows it."""
    commit = (data.get("commit_info") or {}).get("id") or "no commit"
    return f"{path} (saved {data.get('datetime', '?')}, commit {str(commit)[:10]})"


def explain_missing(storage: str, compare: str | bool) -> str:
    """Why ``--benchmark-compare`` gave no usable baseline, naming the storage and the files."""
    pattern = "[0-9][0-9][0-9][0-9]_" if compare is True else str(compare)
    shown = "--benchmark-compare" if compare is True else f"--benchmark-compare={compare}"
    head = f"{shown}: no usable baseline, so the pruning gates cannot run"
    if "://" in storage and not storage.startswith("file://"):
        return f"{head} (storage {storage!r} loaded nothing that holds pruning results)"
    root = Path(storage.removeprefix("file://"))
    if Path(pattern).is_file():
        files = [Path(pattern)]
    else:
        glob = pattern.rstrip("*") + "*.json"
        files = sorted({*root.glob(f"*/{glob}"), *root.glob(glob)})
    if not files:
        return f"{head}: no file in {str(root)!r} matches {pattern!r}"
    reasons = [f"{f}: {_why_unusable(f)}" for f in files]
    return f"{head}: " + "; ".join(reasons)


def _why_unusable(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return f"could not be read ({exc})"
    except json.JSONDecodeError as exc:
        return f"is not valid JSON, perhaps truncated ({exc})"
    if not isinstance(data, dict) or "benchmarks" not in data:
        return "is not a pytest-benchmark file (no 'benchmarks' list)"
    if baseline_from_json(data, str(path)) is None:
        return "holds no pruning results (saved by a run without the prefill or decode tests?)"
    return "matches but was not loaded by pytest-benchmark (another file of the same pattern was newer?)"
