"""Task accuracy through lm-evaluation-harness: local tasks, the shared pass against lm-eval's own
HFLM, the paired change, the store, and the offline refusal."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from pruning import load_model
from pruning.models.surgery import remove_layers
from pruning.models.variant import BASE, Variant
from pruning.tasks import harness
from pruning.tasks.local import CLOZE_TASK, MC_TASK
from pruning.tasks.scores import TaskScores, mean_ci, task_cell
from pruning.tasks.settings import TaskSettings
from pruning.tasks.shared import shared_answers

NAMES = (MC_TASK, CLOZE_TASK)


@pytest.fixture(scope="module")
def tiny():
    return load_model("random:tiny-llama")


@pytest.fixture
def settings(local_tasks: Path, monkeypatch) -> TaskSettings:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return TaskSettings(NAMES, limit=None, fewshot=None, path=local_tasks, batch_size=8)


def test_local_tasks_are_lm_eval_tasks_of_the_asked_size(local_tasks):
    lines = (local_tasks / f"{MC_TASK}.jsonl").read_text().splitlines()
    docs = [json.loads(line) for line in lines]
    assert len(docs) == 24 and all(len(d["choices"]) == 4 and 0 <= d["label"] < 4 for d in docs)
    assert all(d["choices"][d["label"]].strip() for d in docs)
    cloze = [json.loads(line) for line in (local_tasks / f"{CLOZE_TASK}.jsonl").read_text().splitlines()]
    assert [c["context"] for c in cloze] == [d["context"] for d in docs]
    manager = harness.task_manager(TaskSettings(NAMES, path=local_tasks))
    assert set(NAMES) <= set(manager.all_subtasks)


def naive_answers(model, tokenizer, settings, manager) -> dict:
    """lm-eval's own HFLM answers, captured request by request."""
    from lm_eval.models.huggingface import HFLM

    found: dict = {}

    class Capturing(HFLM):
        def _loglikelihood_tokens(self, requests, **kwargs):
            out = super()._loglikelihood_tokens(requests, **kwargs)
            for (_, context, continuation), answer in zip(requests, out, strict=True):
                found[(tuple(context), tuple(continuation))] = answer
            return out

    harness.evaluate(harness._hflm(model, tokenizer, settings, Capturing), settings, manager)
    return found


def test_the_shared_pass_gives_lm_eval_s_own_answers_and_results(tiny, settings):
    """Every variant's log-likelihoods from the shared pass equal lm-eval's HFLM on the pruned
    model to float tolerance, greedy flags exactly; replayed through lm-eval, the per-example
    results are those of the naive run; and the pass costs less than one run per variant."""
    manager = harness.task_manager(settings)
    requests, max_length = harness.record_requests(tiny.model, tiny.tokenizer, settings, manager)
    assert len(requests) == 24 * 4 + 24  # 4 choices per multiple-choice example, 1 per cloze one
    variants = [BASE, Variant((0,)), Variant((1, 3))]
    answers, cost = shared_answers(tiny.model, requests, variants, max_length, settings.batch_size)
    assert cost.ratio < 1.0 and cost.shared < cost.naive
    for v in variants:
        model = tiny.model if v == BASE else remove_layers(tiny.model, v.drop)
        want = naive_answers(model, tiny.tokenizer, settings, manager)
        assert set(want) == set(answers[v])
        for request, (ll, greedy) in want.items():
            got_ll, got_greedy = answers[v][request]
            assert math.isclose(got_ll, ll, rel_tol=1e-5, abs_tol=1e-4) and got_greedy == greedy
        replayed = harness.replay(tiny.model, tiny.tokenizer, settings, manager, answers[v])
        naive = harness.run_naive(model, tiny.tokenizer, settings, manager)
        assert replayed == naive
        assert replayed[MC_TASK].metric == "acc_norm" and replayed[CLOZE_TASK].metric == "acc"
        assert len(replayed[MC_TASK].values) == 24


def test_unknown_and_hub_tasks_fail_fast_naming_the_path_option(settings, monkeypatch):
    """Both refusals read lm-eval's own index, built once per process (the plugin's start-up
    check in ``tests/plugin/test_tasks_plugin.py`` shares it when it runs in this process)."""
    manager = harness.task_manager(settings)
    with pytest.raises(
        harness.TaskError, match=r"unknown lm-eval task or group 'no_such_task'.*--prune-tasks-path"
    ):
        bad = replace(settings, names=("no_such_task",), path=None)
        harness.check_tasks(bad, harness.task_manager(bad))
    with pytest.raises(
        harness.TaskError, match=r"'arc_easy' loads its data from the Hugging Face hub.*--prune-tasks-path"
    ):
        hub_task = replace(settings, names=("arc_easy",), path=None)
        harness.check_tasks(hub_task, harness.task_manager(hub_task))
    harness.check_tasks(settings, manager)  # local tasks pass offline
    assert harness.task_manager(hub_task) is harness.task_manager(bad)  # one index for both


def test_the_paired_change_is_the_mean_difference_with_a_t_interval():
    base = TaskScores("t", "acc", (0, 1, 2, 3, 4, 5), (1, 1, 0, 1, 0, 1))
    worse = TaskScores("t", "acc", (0, 1, 2, 3, 4, 5), (1, 0, 0, 1, 0, 0))
    cell = task_cell(worse, base)
    assert cell["value"] == pytest.approx(100 * 2 / 6) and cell["n"] == 6
    assert cell["change_pts"] == pytest.approx(-100 * 2 / 6)
    diffs = [0, -1, 0, 0, 0, -1]  # by hand: mean -1/3, sd sqrt(4/15), t(5) = 2.5706
    half = 100 * 2.570582 * math.sqrt((4 / 15) / 6)
    assert cell["change_ci95"] == pytest.approx([-100 / 3 - half, -100 / 3 + half], rel=1e-5)
    assert mean_ci(diffs)[0] == pytest.approx(-100 / 3)
    assert task_cell(worse, replace(base, doc_ids=(0, 1, 2, 3, 4, 9)))["change_pts"] is None  # other examples


def test_the_paired_interval_is_far_narrower_than_two_independent_ones():
    """Two models that agree on most examples: the paired interval of their difference is a
    fraction of the width two independent standard errors would give."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = (rng.random(400) < 0.6).astype(float)
    b = a.copy()
    flip = rng.choice(400, 20, replace=False)
    b[flip] = 1 - b[flip]
    ids = tuple(range(400))
    cell = task_cell(TaskScores("t", "acc", ids, tuple(b)), TaskScores("t", "acc", ids, tuple(a)))
    paired = cell["change_ci95"][1] - cell["change_ci95"][0]
    independent = 2 * 1.96 * 100 * math.sqrt(a.var(ddof=1) / 400 + b.var(ddof=1) / 400)
    assert paired < independent / 2


RUN = """
import sys, time
from pathlib import Path
from pruning.data.specs import parse_corpus_spec
from pruning.data.windows import EvalProtocol
from pruning.engine.options import EngineOptions
from pruning.metrics.speed import SpeedSettings
from pruning.models.specs import parse_model_spec
from pruning.results.gates import Thresholds
from pruning.study.plan import parse_plan
from pruning.study.settings import ModelSettings, Settings
from pruning.study.study import Study
from pruning.study.tasks import evaluate_tasks
from pruning.tasks.settings import TaskSettings

store, tasks, slow = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
settings = Settings(
    ModelSettings(parse_model_spec("random:tiny-llama")), parse_corpus_spec("wikitext2"),
    EvalProtocol("windows", 64, 128), parse_plan("sequential"), 100, EngineOptions(progress=False),
    SpeedSettings(), Thresholds(), store_dir=store,
    tasks=TaskSettings(("wikitext_next4",), limit=8, path=tasks, batch_size=8),
)
study = Study(settings)
import pruning.study.tasks as module
# Give the test time to kill this run between two checkpointed batches of the shared pass
# ("batches"), or between two stored variants after it ("variants").
slowed = {"batches": module.PassCheckpoint, "variants": module.TaskStore}.get(slow)
if slowed is not None:
    put = slowed.put
    slowed.put = lambda self, key, found: (put(self, key, found), time.sleep(3))
found, cost = evaluate_tasks(study, study.variants())
print("batches resumed:", cost.reused)
print({v.id: [list(s.values) for s in found[v].values()] for v in found})
"""


def test_a_kill_9_in_the_task_sweep_resumes_to_identical_results(tmp_path, local_tasks, data_dir, zygote):
    """A run killed (SIGKILL) inside the shared pass, after it checkpointed some request batches,
    then one killed after it stored some variants' results, then a last run: its results are those
    of a run never interrupted, and it resumed every batch from the checkpoint."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "run.py"
    script.write_text(RUN)
    env = {**os.environ, "PRUNING_DATA_DIR": str(data_dir), "HF_DATASETS_OFFLINE": "1"}

    def run(store: Path) -> list[str]:
        cmd = [sys.executable, str(script), str(store), str(local_tasks), "fast"]
        done = zygote.run(cmd, env=env, timeout=600, check=True)
        return done.stdout.strip().splitlines()[-2:]

    def kill_when(store: Path, slow: str, pattern: str) -> list[Path]:
        cmd = [sys.executable, str(script), str(store), str(local_tasks), slow]
        proc = zygote.popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not list(store.glob(pattern)) and time.monotonic() < deadline:
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return list(store.glob(pattern))

    whole = run(tmp_path / "whole")
    assert whole[0] == "batches resumed: 0"
    store = tmp_path / "killed"
    batches = kill_when(store, "batches", "tasks-*/pass-*/*.json")
    assert 1 <= len(batches) < 4, "the kill did not land between two batches of the pass (4 batches)"
    assert not list(store.glob("tasks-*/*.json"))  # no variant was stored yet
    stored = kill_when(store, "variants", "tasks-*/*.json")
    assert 1 <= len(stored) < 5, "the kill did not land between two stored variants"
    assert run(store) == ["batches resumed: 4", whole[1]]
    assert not list(store.glob("tasks-*/pass-*"))  # the checkpoint is removed once all are stored


def test_a_pass_checkpoint_keeps_every_pass_s_answers_to_a_batch(tmp_path):
    """Two passes over other variants (xdist workers) checkpoint the same batch: both are kept."""
    from pruning.study.tasks import PassCheckpoint

    checkpoint = PassCheckpoint(tmp_path / "pass-8")
    checkpoint.put(0, {"drop[1]": [(-1.5, True), (-0.25, False)]})
    checkpoint.put(0, {"drop[2]": [(-2.0, False), (-3.0, True)]})
    assert checkpoint.get(0) == {
        "drop[1]": [(-1.5, True), (-0.25, False)],
        "drop[2]": [(-2.0, False), (-3.0, True)],
    }
    assert checkpoint.get(1) is None
    checkpoint.remove()
    assert checkpoint.get(0) is None
