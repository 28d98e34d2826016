from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from pruning.engine.store import run_key
from pruning.metrics.fingerprint import RunFingerprint, fingerprint_diff
from pruning.metrics.scoring import SCORING
from pruning.results.gates import (
    Thresholds,
    check_baseline,
    check_budget,
    judge,
    machine_note,
    scoring_note,
)
from pruning.results.rows import Row, with_changes

FIELDS = dict(
    model="gemma3-270m", weights_sha256="w", dtype="float32", device="cpu", corpus="wikitext2",
    corpus_sha256="c", protocol="windows", ctx=512, stride=None, bos=None, eval_tokens=2048, windows="spread",
    torch="2.13.0", transformers="5", corpus_source="file", cpu="AMD EPYC", cores=2, threads=2,
    kernels="AVX2", scoring=SCORING,
)  # fmt: skip


def _rows(ppl_base=10.0, ppl_drop=12.0, ms_base=10.0, ms_drop=8.0, params=100):
    base = Row("base", (), 4, ppl_base, (9.0, 11.0), 120, 0.0, 1.0, 100, speed_ms=ms_base)
    drop = Row("drop[1]", (1,), 3, ppl_drop, (11.0, 13.0), params, 0.1, 0.9, 100, speed_ms=ms_drop)
    return with_changes([base, drop])


def test_changes_are_relative_to_the_unpruned_row():
    rows = _rows()
    assert rows[1].ppl_change_pct == pytest.approx(20.0) and rows[1].speed_change_pct == pytest.approx(-20.0)
    assert rows[1].speedup == 1.25 and rows[0].ppl_change_pct == 0.0


def test_identical_rows_pass():
    assert check_baseline(_rows(), _rows(), Thresholds()) == []


def test_perplexity_rise_beyond_threshold_fails_with_the_variant_named():
    now, saved = _rows(), _rows(ppl_drop=12.0 * 0.9)  # baseline 10% lower
    failures = check_baseline(now, saved, Thresholds(ppl_fail_pct=1.0))
    assert [(f.variant, f.metric) for f in failures] == [("drop[1]", "perplexity")]
    assert str(failures[0]) == "drop[1]: perplexity 12 vs baseline 10.8 (threshold: +1.0%)"


def test_perplexity_drop_is_not_a_regression():
    assert check_baseline(_rows(ppl_drop=11.0), _rows(), Thresholds()) == []


def test_any_parameter_difference_fails():
    failures = check_baseline(_rows(params=101), _rows(), Thresholds())
    assert [(f.variant, f.metric, f.baseline, f.now) for f in failures] == [
        ("drop[1]", "parameters", 100, 101)
    ]


def test_speedup_gate_uses_the_in_run_ratio_not_absolute_times():
    slower_machine = _rows(ms_base=20.0, ms_drop=16.0)  # everything 2x slower, same ratio
    assert check_baseline(slower_machine, _rows(), Thresholds(speedup_fail_pct=5.0)) == []
    worse = _rows(ms_drop=9.9)  # speedup 1.25 -> 1.01: -19%
    failures = check_baseline(worse, _rows(), Thresholds(speedup_fail_pct=5.0))
    assert [f.metric for f in failures] == ["speedup vs unpruned"]
    assert check_baseline(worse, _rows(), Thresholds(speedup_fail_pct=None)) == []


def test_absolute_budget_against_the_unpruned_model():
    rows = _rows(ppl_drop=12.0)
    assert check_budget(rows, Thresholds(max_ppl_increase_pct=25.0)) == []
    failures = check_budget(rows, Thresholds(max_ppl_increase_pct=10.0))
    assert [(f.variant, f.threshold) for f in failures] == [("drop[1]", "+10.0%")]


def test_fingerprint_diff_names_what_differs():
    now = RunFingerprint(**{**FIELDS, "corpus_sha256": "bbb", "torch": "2"})
    saved = {**now.as_dict(), "corpus_sha256": "aaa", "torch": "1"}
    assert fingerprint_diff(now, saved) == ["corpus_sha256: baseline 'aaa', now 'bbb'"]
    assert RunFingerprint.from_dict(now.as_dict()) == now  # the typed form survives a test report


def test_a_baseline_from_before_the_window_choice_read_the_first_windows():
    """A saved fingerprint without ``windows`` was written when every run read the first windows:
    a spread run refuses it naming that, a first run accepts it, and it still loads."""
    now = RunFingerprint(**FIELDS)
    legacy = {k: v for k, v in now.as_dict().items() if k != "windows"}
    assert fingerprint_diff(now, legacy) == ["windows: baseline 'first', now 'spread'"]
    assert fingerprint_diff(replace(now, windows="first"), legacy) == []
    assert RunFingerprint.from_dict(legacy).windows == "first"
    assert run_key(now) != run_key(replace(now, windows="first"))  # their own stores


def test_rows_round_trip_through_dicts():
    row = replace(_rows()[1], window_nll=(1.5, 2.5), window_starts=(0, 512))
    assert Row.from_dict(row.as_dict()) == row


def test_results_under_the_old_bos_rule_are_never_reused():
    fields = {k: v for k, v in FIELDS.items() if k != "bos"}
    old, new = RunFingerprint(bos=None, **fields), RunFingerprint(bos=2, **fields)
    assert run_key(old) != run_key(new)  # the results store
    saved = {k: v for k, v in old.as_dict().items() if k != "bos"}  # a baseline from before the rule
    assert fingerprint_diff(new, saved) == ["bos: baseline None, now 2"]  # the gates
    assert fingerprint_diff(old, old.as_dict()) == []
    same_but_versions = RunFingerprint(bos=None, **{**fields, "torch": "2.14.0"})
    assert fingerprint_diff(same_but_versions, old.as_dict()) == []  # versions are provenance only
    assert run_key(same_but_versions) != run_key(old)  # ... but key the store, a cache
    assert run_key(RunFingerprint(bos=None, **{**fields, "stride": 256})) != run_key(old)


def test_results_of_the_earlier_scoring_are_never_reused():
    """The store's key names how sums are computed: entries written before (whole-row
    log_softmax, its key without ``scoring``) are not found."""
    fp = RunFingerprint(**FIELDS)
    before = {k: v for k, v in fp.store_key().items() if k != "scoring"}
    assert fp.store_key()["scoring"] == SCORING
    assert run_key(fp) != hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()


def test_results_from_another_machine_are_not_reused_but_its_baseline_is_compared_and_named():
    """The store keys on the processor and the kernel path (the last digits differ between
    machines), not on torch's thread count; the gates compare a baseline from another machine
    and the verdict says so, or that the baseline never recorded its machine."""
    here = RunFingerprint(**FIELDS)
    elsewhere = RunFingerprint(**{**FIELDS, "cpu": "Intel(R) Xeon(R)", "kernels": "AVX512"})
    assert run_key(here) != run_key(elsewhere)
    assert run_key(here) != run_key(RunFingerprint(**{**FIELDS, "kernels": "AVX512"}))
    assert run_key(here) == run_key(RunFingerprint(**{**FIELDS, "threads": 1, "cores": 8}))
    assert fingerprint_diff(here, elsewhere.as_dict()) == []
    verdict = judge(_rows(), Thresholds(), here, (elsewhere.as_dict(), _rows()), "compared against 0001")
    assert verdict.compared and verdict.failures == []
    assert verdict.machine == (
        "the baseline was measured on another machine (Intel(R) Xeon(R), 2 cores, 2 torch threads, "
        "AVX512 kernels; this run: AMD EPYC, 2 cores, 2 torch threads, AVX2 kernels)"
    )
    assert machine_note(here, here.as_dict()) == ""
    assert machine_note(here, {**here.as_dict(), "threads": 1}) == ""  # -n 2 workers: the same machine
    old = {k: v for k, v in here.as_dict().items() if k not in ("cpu", "cores", "threads", "kernels")}
    assert machine_note(here, old).startswith("the baseline does not record its machine")


def test_a_baseline_scored_another_way_is_compared_and_named():
    """The scoring method is provenance: a baseline from the earlier scoring (which never recorded
    it) or another one is compared, the verdict says so, and the store never shares their sums."""
    here = RunFingerprint(**FIELDS)
    old = {k: v for k, v in here.as_dict().items() if k != "scoring"}
    verdict = judge(_rows(), Thresholds(), here, (old, _rows()), "compared against 0001")
    assert verdict.compared and verdict.failures == [] and verdict.machine == ""
    assert verdict.scoring.startswith("the baseline does not record its scoring")
    assert SCORING in verdict.scoring
    other = RunFingerprint(**{**FIELDS, "scoring": "whole rows"})
    want = f"the baseline was scored differently (whole rows; this run: {SCORING})"
    assert scoring_note(here, other.as_dict()) == want
    assert scoring_note(here, here.as_dict()) == ""
    assert run_key(here) != run_key(other)
