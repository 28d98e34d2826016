"""``pruning compare`` and ``pruning show`` on saved reports, without a model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from pruning.cli.main import main
from pruning.metrics.fingerprint import RunFingerprint
from pruning.metrics.sums import VariantSums, WindowSums
from pruning.models.variant import BASE, Variant
from pruning.reporting.report import Outcome, write_report
from pruning.results.gates import Thresholds, Verdict
from pruning.results.rows import quality_row, with_changes
from pruning.results.runlog import RunLog

FINGERPRINT = RunFingerprint(
    "random:tiny-gpt2", "ab" * 32, "float32", "cpu", "file:x.txt", "cd" * 32, "windows", 64, None, None,
    256, "spread", "2.13.0", "5.0", "file:x.txt", "Some CPU", 2, 2, "AVX2", "exact", "0123456789ab",
)  # fmt: skip


@pytest.fixture
def report(tmp_path) -> Path:
    """A saved report of the unpruned model and three single removals on 8 windows."""
    rng = np.random.default_rng(0)
    base = 63 * rng.normal(3.0, 0.3, size=8)

    def sums(shift: float) -> VariantSums:
        nll = base + 63 * (shift + rng.normal(0, 0.01, size=8))
        return VariantSums.of([WindowSums(float(n), 63 * shift, 50, 63) for n in nll])

    given = {BASE: sums(0.0), Variant((0,)): sums(0.5), Variant((1,)): sums(0.1), Variant((2,)): sums(0.2)}
    rows = with_changes(quality_row(v, s, 3, 1000 - 100 * len(v.drop)) for v, s in given.items())
    verdict = Verdict(Thresholds(), "no baseline compared", [], [], [])
    outcome = Outcome(rows, FINGERPRINT, "sequential", None, {}, RunLog(), None, verdict)
    write_report(tmp_path / "old", outcome)
    return tmp_path / "old"


def _copy(report: Path, where: Path, change) -> Path:
    data = json.loads((report / "results.json").read_text())
    change(data)
    where.mkdir()
    (where / "results.json").write_text(json.dumps(data))
    return where


def test_identical_reports_pass(report, capsys):
    assert main(["compare", str(report), str(report)]) == 0
    out = capsys.readouterr().out
    assert "drop[1]" in out and "ppl baseline" in out and "KL now" in out and "no regression" in out


def test_a_perplexity_tampered_by_five_percent_fails_naming_the_variant(report, tmp_path, capsys):
    def worse(data):
        row = next(r for r in data["rows"] if r["id"] == "drop[1]")
        row["ppl"] *= 1.05

    new = _copy(report, tmp_path / "new", worse)
    assert main(["compare", str(report), str(new / "results.json")]) == 1
    err = capsys.readouterr().err
    assert "1 regression gate(s) FAILED" in err and "drop[1]: perplexity" in err
    assert main(["compare", str(report), str(new), "--prune-ppl-fail", "6"]) == 0  # the same thresholds


def test_reports_of_different_models_are_refused_with_the_reason(report, tmp_path, capsys):
    other = _copy(report, tmp_path / "other", lambda d: d["fingerprint"].update(model="random:tiny-llama"))
    assert main(["compare", str(report), str(other)]) == 2
    err = capsys.readouterr().err
    assert "REFUSED" in err and "model: baseline 'random:tiny-gpt2', now 'random:tiny-llama'" in err


def test_another_machine_is_said_not_refused(report, tmp_path, capsys):
    moved = _copy(report, tmp_path / "moved", lambda d: d["fingerprint"].update(cpu="Other CPU"))
    assert main(["compare", str(report), str(moved)]) == 0
    assert "the baseline was measured on another machine" in capsys.readouterr().out


def test_unusable_inputs_and_bad_thresholds_say_why(report, tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nowhere"), str(report)]) == 2
    assert "holds no results.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", str(report), str(report), "--prune-ppl-fail", "x"])
    assert "invalid percentage 'x'" in capsys.readouterr().err


def test_show_prints_the_table_and_renders_the_files_elsewhere(report, tmp_path, capsys):
    assert main(["show", str(report)]) == 0
    assert "layer removed" in capsys.readouterr().out
    assert main(["show", str(report), "--out", str(report)]) == 2  # never over the report itself
    assert main(["show", str(report), "--out", str(tmp_path / "again")]) == 0
    names = {p.name for p in (tmp_path / "again").iterdir()}
    assert {"results.json", "results.md", "results.csv", "results.html", "layer_profile.png"} <= names
    again = json.loads((tmp_path / "again" / "results.json").read_text())["rows"]
    assert [r["ppl"] for r in again] == [
        r["ppl"] for r in json.loads((report / "results.json").read_text())["rows"]
    ]


def test_python_dash_m_pruning_runs_the_command(report, zygote):
    done = zygote.run([sys.executable, "-m", "pruning", "compare", str(report), str(report)])
    assert done.returncode == 0, done.stderr
