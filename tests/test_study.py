"""The study: expands a plan once, however often pytest asks."""

from __future__ import annotations

import itertools

from pruning.data.corpora import Corpus
from pruning.data.specs import parse_corpus_spec
from pruning.data.windows import EvalProtocol
from pruning.engine.options import EngineOptions
from pruning.engine.prefix import evaluate_variants
from pruning.metrics.speed import SpeedSettings
from pruning.models.specs import parse_model_spec
from pruning.models.variant import BASE, Variant
from pruning.results.gates import Thresholds
from pruning.study.plan import parse_plan
from pruning.study.settings import ModelSettings, Settings
from pruning.study.study import Study


def _study(plan: str, corpus: Corpus) -> Study:
    settings = Settings(
        model=ModelSettings(parse_model_spec("random:tiny-llama"), threads=1),
        corpus=parse_corpus_spec(corpus.name),
        protocol=EvalProtocol("windows", 32, 128),
        plan=parse_plan(plan),
        max_variants=1000,
        engine=EngineOptions(progress=False),
        speed=SpeedSettings(),
        thresholds=Thresholds(),
        calib_corpus=parse_corpus_spec(corpus.name),
        calib_tokens=128,
    )
    return Study(settings)


def test_a_search_plan_is_expanded_once(small_corpus: Corpus) -> None:
    study = _study("best:K=2,top=3,search=beam:3", small_corpus)
    first = study.variants()  # pytest asks once per test function that takes a variant
    second = study.variants()
    assert first == second
    assert first[0] == BASE and len(first) == 4
    assert len(study.log.searches) == 1  # the beam search ran once, not once per question


def test_the_criterion_plan_measures_the_exhaustive_best_pair(small_corpus: Corpus, engine_options) -> None:
    study = _study("criterion:all:K=1..2", small_corpus)
    variants = study.variants()
    n_layers = study.lm.num_layers
    pairs = [Variant(c) for c in itertools.combinations(range(n_layers), 2)]
    truth, _ = evaluate_variants(study.lm.model, study.windows, pairs, engine_options)
    best = min(pairs, key=lambda v: (sum(truth[v].nll), v.drop))
    assert best in variants  # the K=2 oracle: racing over all pairs on the evaluation text
    assert all(Variant((i,)) in variants for i in range(n_layers))  # the K=1 oracle: every single
    assert [f.exhaustive_evaluations for f in study.log.searches] == [len(pairs) * len(study.windows)]
