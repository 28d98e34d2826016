"""A run for github-action-benchmark: its custom JSON formats, for a trend over commits.

github-action-benchmark (``benchmark-action/github-action-benchmark``) keeps every run it is
given and charts each named value over commits. Its custom tools read a JSON list of entries
``{"name", "unit", "value", "range"?, "extra"?}``, one list per direction:
``customSmallerIsBetter`` and ``customBiggerIsBetter``. A run gives:

- smaller is better: per variant, ``perplexity`` (unit ``ppl``), ``KL`` (``nats/token``),
  ``prefill`` (``ms``) and ``decode`` (``ms/token``), where measured;
- bigger is better: per variant, ``top-1 agreement`` (``share``) and each task's accuracy
  (``TASK acc`` or ``TASK acc_norm``, in ``%``; ``--prune-tasks``).

``range`` is the value's 95% interval as text (``low … high``): the perplexity's bootstrap
interval, KL's and top-1's interval over windows, and for latencies the run's paired ratio
interval times the unpruned model's time. ``extra`` names the model, corpus, scored tokens,
machine and commit, so a point on a chart says what it measured.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pruning.common.files import atomic_write
from pruning.metrics.fingerprint import RunFingerprint
from pruning.results.rows import Row

Entry = dict[str, str | float]  # one github-action-benchmark entry


@dataclass(frozen=True)
class History:
    """The two entry lists of a run: ``customSmallerIsBetter`` and ``customBiggerIsBetter``."""

    smaller: list[Entry]
    bigger: list[Entry]


def bigger_path(path: Path) -> Path:
    """Where the ``customBiggerIsBetter`` list goes beside ``path``: ``NAME-bigger.json``."""
    return path.with_name(f"{path.stem}-bigger{path.suffix or '.json'}")


def history(rows: Sequence[Row], fp: RunFingerprint) -> History:
    """The entries of ``rows``: one per variant and measured quantity."""
    tokens = rows[0].tokens_scored if rows else 0
    extra = (
        f"{fp.model} on {fp.corpus} ({fp.protocol}, {tokens} scored tokens), {fp.dtype} on {fp.device}\n"
        f"machine: {fp.machine.describe()}\ncommit: {fp.commit or 'unknown'}"
    )
    smaller: list[Entry] = []
    bigger: list[Entry] = []
    for r in rows:
        smaller.append(_entry(r.id, "perplexity", "ppl", r.ppl, r.ppl_ci95, extra))
        smaller.append(_entry(r.id, "KL", "nats/token", r.kl, r.kl_ci95, extra))
        if r.speed_ms is not None:
            ci = _scaled(r.speed_ms, r.speed_ratio, r.speed_ratio_ci95)
            smaller.append(_entry(r.id, "prefill", "ms", r.speed_ms, ci, extra))
        if r.decode_ms_per_token is not None:
            ci = _scaled(r.decode_ms_per_token, r.decode_ratio, r.decode_ratio_ci95)
            smaller.append(_entry(r.id, "decode", "ms/token", r.decode_ms_per_token, ci, extra))
        bigger.append(_entry(r.id, "top-1 agreement", "share", r.top1_agree, r.top1_ci95, extra))
        for task, cell in sorted((r.tasks or {}).items()):
            ci = (cell["ci95"][0], cell["ci95"][1])
            bigger.append(_entry(r.id, f"{task} {cell['metric']}", "%", cell["value"], ci, extra))
    return History(smaller, bigger)


def write_history(path: Path, rows: Sequence[Row], fp: RunFingerprint) -> list[Path]:
    """Write ``path`` (smaller is better) and ``bigger_path(path)``; returns both."""
    h = history(rows, fp)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for where, entries in ((path, h.smaller), (bigger_path(path), h.bigger)):
        atomic_write(where, json.dumps(entries, indent=2) + "\n")
        written.append(where)
    return written


def _entry(vid: str, what: str, unit: str, value: float, ci: tuple[float, float] | None, extra: str) -> Entry:
    entry: Entry = {"name": f"{vid} {what}", "unit": unit, "value": value}
    if ci is not None:
        entry["range"] = f"{ci[0]:.6g} … {ci[1]:.6g}"
    entry["extra"] = extra
    return entry


def _scaled(ms: float, ratio: float | None, ci: tuple[float, float] | None) -> tuple[float, float] | None:
    """A latency's interval: its ratio interval in the same units (``ms / ratio`` is the base time)."""
    if ratio is None or ci is None or ratio <= 0:
        return None
    return ms * ci[0] / ratio, ms * ci[1] / ratio
