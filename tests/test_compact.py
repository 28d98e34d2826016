"""The terminal's default table fits in 120 columns, on the published default run's own rows."""

from __future__ import annotations

import json
from pathlib import Path

from pruning.reporting.compact import WIDTH, compact_table
from pruning.reporting.tables import render_text, table
from pruning.results.rows import Row

DEFAULT_RUN = Path(__file__).resolve().parents[1] / "docs" / "results" / "smollm2-sequential" / "results.json"


def test_the_default_run_s_table_fits_in_120_columns_and_the_full_one_does_not():
    rows = [Row.from_dict(r) for r in json.loads(DEFAULT_RUN.read_text(encoding="utf-8"))["rows"]]
    compact = render_text(*compact_table(rows, True)).splitlines()
    assert len(compact) == 2 + 31 and max(map(len, compact)) <= WIDTH == 120
    header = [cell.strip() for cell in compact[0].split(" | ")]
    assert header[:4] == ["removed", "layers", "ppl (↓)", "ppl change % (paired 95% CI)"]
    base = [cell.strip() for cell in compact[2].split(" | ")]
    assert base[:2] == ["none", "30"] and base[3] == "reference"
    full = render_text(*table(rows, True)).splitlines()
    assert max(map(len, full)) > WIDTH  # every interval and timing: -v and the files
