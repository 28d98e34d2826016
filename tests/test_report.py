from __future__ import annotations

import csv
import io
import json

from pruning.reporting.tables import render_markdown, render_text, table, to_csv, to_json, write_reports
from pruning.results.rows import Row, with_changes

ROWS = with_changes(
    [
        Row(
            "drop[2]",
            (2,),
            3,
            15.0,
            (14.0, 16.0),
            90_000_000,
            0.2,
            0.8,
            100,
            speed_ms=7.5,
            decode_ms_per_token=2.0,
        ),
        Row(
            "base",
            (),
            4,
            10.0,
            (9.5, 10.5),
            120_000_000,
            0.0,
            1.0,
            100,
            speed_ms=10.0,
            decode_ms_per_token=3.0,
        ),
        Row(
            "drop[0]",
            (0,),
            3,
            50.0,
            (40.0, 60.0),
            90_000_000,
            1.0,
            0.5,
            100,
            speed_ms=7.0,
            decode_ms_per_token=2.0,
        ),
    ]
)


def test_sequential_table_has_the_study_columns_base_first_in_block_order():
    header, cells = table(ROWS, sequential=True)
    assert header[:9] == [
        "layer removed",
        "layers",
        "perplexity (↓)",
        "ppl 95% CI",
        "speed (ms) ↓",
        "parameters (M)",
        "ppl change (%)",
        "ppl change 95% CI (paired)",
        "speed change (%)",
    ]
    assert [c[0] for c in cells] == ["none", "0", "2"]
    assert cells[2][1:3] == ["3", "15.000"] and cells[2][5] == "90.00"
    assert cells[2][6] == "+50.00" and cells[2][8] == "-25.00"
    assert cells[0][7] == "reference" and cells[2][7] == "—"  # these rows carry no per-window sums


def test_combination_table_is_sorted_by_perplexity():
    header, cells = table(ROWS, sequential=False)
    assert header[:2] == ["layers removed", "remaining layers"]
    assert [c[0] for c in cells] == ["none", "2", "0"]


def test_text_and_markdown_rendering_align_columns():
    header, cells = table(ROWS, sequential=True)
    lines = render_text(header, cells).splitlines()
    assert len({len(line) for line in lines}) == 1 and len(lines) == 5
    md = render_markdown(header, cells).splitlines()
    assert md[0].startswith("| layer removed |") and md[1].startswith("|---|") and len(md) == 5


def test_json_and_csv_contents():
    data = json.loads(to_json(ROWS, {"fingerprint": {"model": "m"}}))
    assert data["fingerprint"] == {"model": "m"}
    row = data["rows"][0]
    for key in (
        "removed",
        "layers",
        "ppl",
        "ppl_ci95",
        "params",
        "speed_ms",
        "decode_ms_per_token",
        "ppl_change_pct",
        "speed_change_pct",
        "kl",
        "top1_agree",
    ):
        assert key in row
    assert row["removed"] == [2] and abs(row["ppl_change_pct"] - 50.0) < 1e-9
    parsed = list(csv.DictReader(io.StringIO(to_csv(ROWS))))
    assert parsed[0]["id"] == "drop[2]" and parsed[0]["removed"] == "2" and float(parsed[0]["ppl"]) == 15.0


def test_a_failed_run_never_overwrites_an_existing_report(tmp_path):
    write_reports(tmp_path, {"results.json": "good"}, failed=False)
    written = write_reports(tmp_path, {"results.json": "bad"}, failed=True)
    assert (tmp_path / "results.json").read_text() == "good"
    assert written == [tmp_path / "results.failed.json"] and written[0].read_text() == "bad"
    write_reports(tmp_path, {"results.json": "better"}, failed=False)
    assert (tmp_path / "results.json").read_text() == "better"
    assert not list(tmp_path.glob(".results*"))  # no temporary files left behind
