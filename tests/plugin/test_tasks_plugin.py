"""``--prune-tasks`` through the plugin: columns, fields, the cost line, the store, the gates."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from pruning.results.gates import Thresholds, check_baseline, check_task_budget, tasks_note
from pruning.results.rows import Row

TASKS = "wikitext_next4,wikitext_cloze"


def _outcome(result: pytest.RunResult) -> str:
    return result.stdout.str() + result.stderr.str()


def test_tasks_become_columns_fields_and_a_summary_and_rerun_from_the_store(suite, local_tasks, tmp_path):
    pytester, args, _ = suite
    run = [*args, "-k", "quality", "--prune-tasks", TASKS, "--prune-tasks-path", str(local_tasks)]
    run += ["--prune-tasks-limit", "12", "--prune-report", str(tmp_path / "rep")]
    run += ["--prune-history-json", str(tmp_path / "history.json")]
    first = pytester.runpytest(*run, "-v")  # the task columns are in the full table
    first.assert_outcomes(passed=5)
    first.stdout.fnmatch_lines(
        [
            "*wikitext_cloze acc (%)*wikitext_cloze Δ pts (paired 95% CI)*wikitext_next4 acc_norm (%)*",
            "*tasks: wikitext_next4 acc_norm loss against perplexity change: Spearman ρ * over 4 removals*",
            "tasks: 5 variants answered in one shared pass, 0 by lm-eval's own HFLM alone, 0 from the*",
            "*tasks (shared pass): * block-forward equivalents over * request batches vs * (0.*x)*",
        ]
    )
    data = json.loads((tmp_path / "rep" / "results.json").read_text())
    for row in data["rows"]:
        cell = row["tasks"]["wikitext_next4"]
        assert (
            cell["metric"] == "acc_norm"
            and cell["n"] == 12
            and cell["ci95"][0] <= cell["value"] <= cell["ci95"][1]
        )
        assert "limit 12, few-shot task default, lm-eval " in cell["setup"]
        if row["id"] == "base":
            assert cell["change_pts"] is None
        else:
            assert cell["change_ci95"][0] <= cell["change_pts"] <= cell["change_ci95"][1]
    assert "tasks_vs_ppl.png" in data["plots"]
    bigger = {e["name"]: e for e in json.loads((tmp_path / "history-bigger.json").read_text())}
    assert bigger["base wikitext_next4 acc_norm"]["unit"] == "%"
    drop1 = next(r for r in data["rows"] if r["id"] == "drop[1]")
    assert bigger["drop[1] wikitext_cloze acc"]["value"] == drop1["tasks"]["wikitext_cloze"]["value"]
    again = pytester.runpytest(*run)
    again.assert_outcomes(passed=5)
    assert "tasks (shared pass)" not in again.stdout.str()  # every variant's results from the store
    again.stdout.fnmatch_lines(
        ["tasks: 0 variants answered in one shared pass, 0 by lm-eval's own HFLM alone, 5 from the*"]
    )
    assert json.loads((tmp_path / "rep" / "results.json").read_text())["rows"] == data["rows"]


def test_task_options_without_tasks_and_offline_hub_tasks_fail_at_start(suite, monkeypatch):
    pytester, args, _ = suite
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    result = pytester.runpytest(*args, "--prune-tasks-limit", "5")
    result.stderr.fnmatch_lines(["*--prune-tasks-limit without --prune-tasks: name the tasks to evaluate*"])
    result = pytester.runpytest(*args, "--prune-tasks", "arc_easy")
    result.stderr.fnmatch_lines(
        ["*--prune-tasks: task 'arc_easy' loads its data from the Hugging Face hub*--prune-tasks-path*"]
    )


def _row(
    vid: str, value: float, change: float | None, setup: str = "limit 300, few-shot 0, lm-eval 0.4.13"
) -> Row:
    cell = {"metric": "acc", "value": value, "ci95": [value - 3, value + 3], "n": 300, "setup": setup}
    cell |= {"change_pts": change, "change_ci95": None if change is None else [change - 2, change + 2]}
    return replace(Row(vid, (1,), 3, 30.0, (29.0, 31.0), 100, 0.1, 0.9, 500), tasks={"mc": cell})


def test_a_task_baseline_tampered_by_five_points_fails_naming_variant_and_task():
    now, saved = [_row("drop[1]", 40.0, -2.0)], [_row("drop[1]", 45.0, -2.0)]
    failures = check_baseline(now, saved, Thresholds(acc_fail_pts=1.0))
    assert [(f.variant, f.metric) for f in failures] == [("drop[1]", "mc acc (%)")]
    assert str(failures[0]) == "drop[1]: mc acc (%) 40 vs baseline 45 (threshold: -1.0 pts)"
    assert check_baseline(now, saved, Thresholds()) == []  # the gate is off unless asked for


def test_the_unpruned_budget_uses_the_paired_change():
    rows = [_row("drop[1]", 40.0, -6.0), _row("drop[2]", 44.0, -2.0)]
    failures = check_task_budget(rows, Thresholds(max_acc_drop_pts=5.0))
    assert [f.variant for f in failures] == ["drop[1]"] and failures[0].baseline == pytest.approx(46.0)


def test_a_baseline_with_another_limit_is_named():
    now, saved = (
        [_row("drop[1]", 40.0, -2.0)],
        [_row("drop[1]", 40.0, -2.0, "limit 100, few-shot 0, lm-eval 0.4.13")],
    )
    note = tasks_note(now, saved)
    assert "baseline mc (limit 100, few-shot 0, lm-eval 0.4.13)" in note and "this run mc (limit 300" in note
    assert tasks_note(now, now) == ""


def test_a_baseline_set_up_otherwise_is_not_compared_by_the_accuracy_gate():
    now = [_row("drop[1]", 40.0, -2.0)]
    saved = [_row("drop[1]", 45.0, -2.0, "limit 100, few-shot 0, lm-eval 0.4.13")]
    assert check_baseline(now, saved, Thresholds(acc_fail_pts=1.0)) == []  # other examples: not comparable


def test_a_saved_task_baseline_tampered_by_five_points_fails_the_run_and_another_limit_is_named(
    suite, fake_clock, local_tasks
):
    """End to end through pytest-benchmark's saved baseline (the timed tests carry the rows, so the
    whole suite runs, on the fake clock): autosave, an identical rerun passes the accuracy gate,
    the saved file tampered (drop[1] answers one more of 20 examples right: 5 points better) fails
    naming variant and task, and a run with another limit names both setups."""
    pytester, args, storage = suite
    run = [*args, "--prune-tasks", "wikitext_next4", "--prune-tasks-path", str(local_tasks)]
    pytester.runpytest(*run, "--prune-tasks-limit", "20", "--benchmark-autosave").assert_outcomes(passed=15)
    gated = [*run, "--prune-tasks-limit", "20", "--benchmark-compare", "--prune-acc-fail", "2"]
    same = pytester.runpytest(*gated)
    assert same.ret == pytest.ExitCode.OK, _outcome(same)
    assert "tasks differ" not in same.stdout.str()
    (saved,) = sorted(storage.rglob("*.json"))
    data = json.loads(saved.read_text())
    tampered = 0
    for bench in data["benchmarks"]:
        row = bench["extra_info"]["pruning"]["row"]
        if row["id"] == "drop[1]" and row.get("task_scores"):  # the per-example results are saved
            values = row["task_scores"]["wikitext_next4"]["values"]
            values[values.index(0.0)] = 1.0  # one of 20 more right: +5 points
            tampered += 1
    assert tampered
    saved.write_text(json.dumps(data))
    failed = pytester.runpytest(*gated)
    assert failed.ret == pytest.ExitCode.TESTS_FAILED
    failed.stdout.fnmatch_lines(
        [
            "*baseline vs now*",
            "*| wikitext_next4 baseline (%) | wikitext_next4 now (%)",
            "*drop?1?: wikitext_next4 acc_norm (%) * vs baseline * (threshold: -2.0 pts)*",
        ]
    )
    named = [line for line in failed.stdout.lines if "vs baseline" in line and "wikitext_next4" in line]
    assert named and all("drop[1]" in line for line in named)  # no other variant is blamed
    other = pytester.runpytest(
        *run, "--prune-tasks-limit", "8", "--benchmark-compare", "--prune-acc-fail", "2"
    )
    assert other.ret == pytest.ExitCode.OK, _outcome(other)  # 8 other examples are not compared
    other.stdout.fnmatch_lines(
        [
            "*the baseline's tasks differ: baseline wikitext_next4 (limit 20, *; "
            "this run wikitext_next4 (limit 8, *"
        ]
    )


def test_xdist_workers_split_the_task_sweep_with_the_serial_results(suite, local_tasks, tmp_path):
    """Under ``-n 2`` each worker answers its own group of variants (as for perplexity); the
    controller's rows carry the same per-example results and paired changes as a serial run."""
    pytester, args, _ = suite
    run = [*args, "-k", "quality", "--prune-no-cache", "--prune-tasks", TASKS]
    run += ["--prune-tasks-path", str(local_tasks), "--prune-tasks-limit", "12"]
    serial = pytester.runpytest_subprocess(*run, "--prune-report", str(tmp_path / "serial"))
    serial.assert_outcomes(passed=5)
    parallel = pytester.runpytest_subprocess(
        *run, "--tx", "2*popen", "--dist", "load", "--prune-report", str(tmp_path / "xdist")
    )
    parallel.assert_outcomes(passed=5)
    serial.stdout.fnmatch_lines(["tasks (shared pass): 48 block-forward equivalents over 4 request batches*"])
    # each worker's shared pass over its own variants (the unpruned model runs only the trunk
    # its removals share where it is not one of them), counted, and their sum against naive
    parallel.stdout.fnmatch_lines(
        ["tasks (shared passes, gw? *, gw? *): * block-forward equivalents vs 72 for one lm-eval run*"]
    )

    def rows(name: str) -> list[tuple[object, ...]]:
        data = json.loads((tmp_path / name / "results.json").read_text())["rows"]
        return [(r["id"], r["tasks"], r["task_scores"]) for r in data]

    assert rows("xdist") == rows("serial")


def test_the_naive_engine_runs_lm_eval_per_variant_with_the_shared_pass_results(suite, local_tasks, tmp_path):
    """``--prune-engine naive``: lm-eval's own ``HFLM`` on each variant, with its progress shown
    and said in the summary; every per-example result equals the shared pass's."""
    pytester, args, _ = suite
    run = [*args, "-k", "quality", "--prune-no-cache", "--prune-tasks", "wikitext_next4"]
    run += ["--prune-tasks-path", str(local_tasks), "--prune-tasks-limit", "12"]
    pytester.runpytest(*run, "--prune-report", str(tmp_path / "shared")).assert_outcomes(passed=5)
    naive = pytester.runpytest(*run, "--prune-engine", "naive", "--prune-report", str(tmp_path / "naive"))
    naive.assert_outcomes(passed=5)
    assert "pruning: tasks: variants run by lm-eval alone 5/5" in _outcome(naive)
    naive.stdout.fnmatch_lines(
        ["tasks: 0 variants answered in one shared pass, 5 by lm-eval's own HFLM alone, 0 from the*"]
    )
    assert "tasks (shared pass)" not in naive.stdout.str()

    def scores(name: str) -> list[tuple[object, ...]]:
        data = json.loads((tmp_path / name / "results.json").read_text())["rows"]
        return [(r["id"], r["task_scores"]) for r in data]

    assert scores("naive") == scores("shared")
