from __future__ import annotations

import math

import pytest

from pruning import load_model
from pruning.data.windows import EvalProtocol
from pruning.engine.options import EXACT_RTOL
from pruning.engine.prefix import evaluate_variants
from pruning.metrics.perplexity import prepare_windows
from pruning.models.variant import BASE, Variant
from pruning.search.beam import beam
from pruning.search.racing import race
from pruning.study.plan import Best, Criterion, expand_plan, parse_plan


@pytest.fixture(scope="module")
def setup(small_corpus):
    lm = load_model("random:tiny-gpt2")
    windows = prepare_windows(lm.tokenizer, small_corpus.text, EvalProtocol("windows", 128, 1024))
    return lm, windows


def test_race_returns_the_exhaustive_top_at_lower_cost(setup, engine_options):
    lm, windows = setup
    pairs = [v for v in expand_plan(parse_plan("combos:2"), 4) if v != BASE]
    truth, _ = evaluate_variants(lm.model, windows, pairs, engine_options)
    want = sorted(pairs, key=lambda v: (sum(truth[v].nll), v.drop))[:2]
    found = race(lm.model, windows, pairs, 2, engine_options)
    assert [v for v, _ in found.best] == want
    tokens = sum(w.scored for w in windows)
    assert found.best[0][1] == pytest.approx(math.exp(sum(truth[want[0]].nll) / tokens), rel=EXACT_RTOL)
    assert found.survivors[0] == len(pairs) and found.evaluations <= found.exhaustive_evaluations
    assert found.cost < found.exhaustive_naive_cost


def test_greedy_beam_k1_is_the_best_single_removal(setup, engine_options):
    lm, windows = setup
    singles = [Variant((i,)) for i in range(4)]
    truth, _ = evaluate_variants(lm.model, windows, singles, engine_options)
    best = min(singles, key=lambda v: sum(truth[v].nll))
    out = beam(lm.model, windows, 2, 1, engine_options)
    assert out[1].best[0][0] == best
    assert set(out[2].best[0][0].drop) >= set(best.drop) and len(out[2].best[0][0].drop) == 2


@pytest.mark.parametrize(
    ("arg", "want"),
    [("K=2", (2, 10, "race", 1)), ("K=3,top=5,search=beam:4", (3, 5, "beam", 4))],
)
def test_best_plans_parse(arg, want):
    spec = parse_plan(f"best:{arg}")
    assert isinstance(spec, Best) and (spec.k, spec.top, spec.search, spec.width) == want
    assert str(parse_plan(f"best:{arg}")) == f"best:{arg}"


@pytest.mark.parametrize(
    "arg", ["top=3", "K=x", "K=2,search=dfs", "K=2,colour=red", "K=0", "K=2,K=3", "K=2,search=race:3"]
)
def test_bad_best_plans_quote_the_value(arg):
    with pytest.raises(ValueError, match=r"invalid best plan 'best:.*'; expected best:K=<int>"):
        parse_plan(f"best:{arg}")


def test_beam_grows_a_given_start_set(setup, engine_options):
    lm, windows = setup
    start = Variant((2,))
    out = beam(lm.model, windows, 3, 1, engine_options, start=start)
    assert sorted(out) == [2, 3]  # K=2 and K=3: the start already removes one block
    assert all(2 in found.best[0][0].drop for found in out.values())
    with pytest.raises(ValueError, match=r"beam search K 1 is out of range; expected 2\.\.3"):
        beam(lm.model, windows, 1, 1, engine_options, start=start)


def test_race_turns_off_what_is_not_exact(setup, monkeypatch, capsys, engine_options):
    lm, windows = setup
    pairs = [v for v in expand_plan(parse_plan("combos:2"), 4) if v != BASE]
    continued = race(lm.model, windows, pairs, 2, engine_options)
    monkeypatch.setattr("pruning.search.racing.check_continuation", lambda *args: False)
    recomputed = race(lm.model, windows, pairs, 2, engine_options)
    err = capsys.readouterr().err
    assert err.count("batched LM-head scoring is not exact") == 1
    assert err.count("KV-cache continuation is not exact") == 1
    assert [v for v, _ in recomputed.best] == [v for v, _ in continued.best]
    for (_, a), (_, b) in zip(recomputed.best, continued.best, strict=True):
        assert a == pytest.approx(b, rel=EXACT_RTOL)
    assert recomputed.cost > continued.cost


def test_race_notices_logits_that_are_not_the_head_product(small_corpus, capsys, engine_options):
    lm = load_model("random:tiny-gemma3")
    lm.model.config.final_logit_softcapping = 0.5  # Gemma 2 style: logits = cap * tanh(head / cap)
    windows = prepare_windows(lm.tokenizer, small_corpus.text, EvalProtocol("windows", 128, 512))
    pairs = [v for v in expand_plan(parse_plan("combos:2"), 4) if v != BASE]
    truth, _ = evaluate_variants(lm.model, windows, pairs, engine_options)
    found = race(lm.model, windows, pairs, 2, engine_options)
    err = capsys.readouterr().err
    assert "batched LM-head scoring is not exact for Gemma3ForCausalLM" in err
    assert "KV-cache continuation is not exact" not in err
    tokens = sum(w.scored for w in windows)
    for v, ppl in found.best:
        assert ppl == pytest.approx(math.exp(sum(truth[v].nll) / tokens), rel=EXACT_RTOL)
    assert [v for v, _ in found.best] == sorted(pairs, key=lambda v: (sum(truth[v].nll), v.drop))[:2]


@pytest.mark.parametrize("space", ["attn", "all"])
def test_race_over_unit_pairs_returns_the_exhaustive_top(setup, engine_options, space):
    from pruning.search.oracle import race_subsets

    lm, windows = setup
    import itertools

    from pruning.models.variant import from_units, space_names

    pairs = [from_units(c) for c in itertools.combinations(space_names(space, 4), 2)]
    truth, _ = evaluate_variants(lm.model, windows, pairs, engine_options)
    want = sorted(pairs, key=lambda v: (sum(truth[v].nll), v.sort_key))[:2]
    found = race_subsets(lm.model, windows, 2, 2, engine_options, space)
    assert [v for v, _ in found.best] == want and found.exhaustive_evaluations == len(pairs) * len(windows)
    assert found.cost < found.exhaustive_naive_cost


def test_beam_over_units_grows_one_branch_at_a_time(setup, engine_options):
    from pruning.models.variant import from_units, space_names

    lm, windows = setup
    singles = [from_units([n]) for n in space_names("all", 4)]
    truth, _ = evaluate_variants(lm.model, windows, singles, engine_options)
    best = min(singles, key=lambda v: (sum(truth[v].nll), v.sort_key))
    out = beam(lm.model, windows, 3, 1, engine_options, space="all")
    assert out[1].best[0][0] == best
    for k in (2, 3):
        grown = out[k].best[0][0]
        assert grown.size("all") == k and space_units_of(out[k - 1].best[0][0]) <= space_units_of(grown)
    with pytest.raises(ValueError, match=r"beam search K 8 is out of range; expected 1\.\.7"):
        beam(lm.model, windows, 8, 1, engine_options, space="all")


def space_units_of(variant):
    from pruning.models.variant import space_units

    return space_units(variant, "all")


@pytest.mark.parametrize(
    ("text", "units"),
    [("best:K=4,search=beam:1,units=all", "all"), ("best:K=2,units=attn", "attn"), ("best:K=2", "blocks")],
)
def test_best_plans_take_a_unit_space(text, units):
    spec = parse_plan(text)
    assert isinstance(spec, Best) and spec.units == units


def test_criterion_plans_take_a_unit_space_and_refuse_others():
    from pruning.study.plan import plan_size

    assert parse_plan("criterion:all:K=1..6,units=all") == Criterion((), 6, "all")
    assert parse_plan("criterion:sleb:K=1..3") == Criterion(("sleb",), 3, "blocks")
    assert plan_size(parse_plan("criterion:all:K=1..6,units=all"), 30) == 1 + 60 + 8 * 6
    with pytest.raises(ValueError, match=r"invalid criterion plan 'criterion:all:K=1\.\.2,units=heads'"):
        parse_plan("criterion:all:K=1..2,units=heads")
    with pytest.raises(
        ValueError, match=r"invalid best plan 'best:K=2,units=heads'; .*units=blocks\|attn\|mlp\|all"
    ):
        parse_plan("best:K=2,units=heads")


def test_the_oracle_races_pairs_of_a_small_space_and_grows_greedily_in_a_large_one(setup, engine_options):
    from pruning.search.oracle import search_oracle

    assert Criterion((), 3).races_pairs(30)  # 435 pairs
    assert not Criterion((), 6, "all").races_pairs(30)  # 1770 pairs
    assert Criterion((), 6, "all", "pairs").races_pairs(30)
    lm, windows = setup
    single = Variant(mlp=(2,))
    sets, searches = search_oracle(lm.model, windows, 3, engine_options, "all", best_single=single)
    assert [v.size("all") for v in sets] == [2, 3] and len(searches) == 2  # the K=2 and K=3 steps
    assert all(space_units_of(single) < space_units_of(v) for v in sets)
    raced, found = search_oracle(lm.model, windows, 3, engine_options, "all")
    assert found[0].exhaustive_evaluations == 28 * len(windows) and raced[0].size("all") == 2
