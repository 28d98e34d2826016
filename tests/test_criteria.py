"""Criteria: each runs, chooses K distinct blocks, and never reads the evaluation text."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from pruning import load_model
from pruning.data.windows import EvalProtocol
from pruning.engine.options import EngineOptions
from pruning.metrics.perplexity import prepare_windows
from pruning.search.assessment import assess
from pruning.search.criteria import CRITERIA, CriterionInput, CriterionResult, run_criterion
from pruning.search.oracle import oracle_by_k
from pruning.study.plan import parse_plan
from pruning.study.study import Study


@pytest.fixture(scope="module")
def lm():
    return load_model("random:tiny-llama")


def test_every_criterion_chooses_k_distinct_blocks(lm, small_corpus, engine_options):
    windows = tuple(prepare_windows(lm.tokenizer, small_corpus.text, EvalProtocol("windows", 64, 256)))
    data = CriterionInput(lm.model, windows, 2, engine_options)
    assert set(CRITERIA) == {"angular", "block_influence", "calib_ppl", "last", "random", "sleb", "taylor"}
    for name in CRITERIA:
        result = run_criterion(name, data)
        assert sorted(result.chosen) == [1, 2], name
        for k, chosen in result.chosen.items():
            assert len(set(chosen)) == k and all(0 <= i < 4 for i in chosen), name
        if result.scores is not None:
            assert len(result.scores) == 4 and all(torch.isfinite(torch.tensor(result.scores))), name
    assert run_criterion("last", data).chosen == {1: (2,), 2: (1, 2)}
    assert run_criterion("angular", data).chosen[2] in {(0, 1), (1, 2), (2, 3)}  # consecutive blocks
    assert run_criterion("random", data).chosen == run_criterion("random", data).chosen  # seeded


def test_unknown_criterion_suggests_the_closest(lm):
    with pytest.raises(KeyError, match=r"unknown criterion 'angualr'.*did you mean 'angular'"):
        run_criterion("angualr", CriterionInput(lm.model, (), 1, EngineOptions()))


def test_criteria_never_read_the_evaluation_windows(wikitext_study_settings):
    """Record every token sequence the model sees while criteria run: calibration only."""
    settings = replace(wikitext_study_settings, plan=parse_plan("criterion:all:K=1..2"), calib_tokens=256)
    study = Study(settings)
    seen: list[tuple[int, ...]] = []
    embed = study.lm.model.get_input_embeddings()
    embed.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0][0].tolist())))
    study.run_criteria(list(CRITERIA), 2)
    evaluation = {tuple(w.ids.tolist()) for w in study.windows}
    calibration = {tuple(w.ids.tolist()) for w in study.calib_windows}
    assert seen and set(seen) <= calibration and not set(seen) & evaluation
    assert study.calib_windows and calibration.isdisjoint(evaluation)


def test_assessment_correlations_and_regret():
    result = CriterionResult("x", (0.1, 0.5, 0.3), {1: (0,), 2: (0, 2)}, 1.5)
    truth = [1.0, 9.0, 4.0]  # same order as the scores
    measured = {(): 10.0, (0,): 11.0, (1,): 19.0, (2,): 14.0, (0, 2): 16.0, (0, 1): 30.0}
    oracle = oracle_by_k(measured)
    assert oracle == {1: 11.0, 2: 16.0}
    a = assess(result, truth, measured, oracle)
    assert a.spearman == pytest.approx(1.0) and a.kendall == pytest.approx(1.0)
    assert a.regret == {1: 0.0, 2: 0.0}
    worse = assess(CriterionResult("y", None, {1: (1,)}, 0.0), truth, measured, oracle)
    assert worse.spearman is None and worse.regret[1] == pytest.approx(100 * (19 / 11 - 1))
