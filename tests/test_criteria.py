"""Criteria: each runs, chooses K distinct blocks or units, and never reads the evaluation text."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest
import torch

from pruning import load_model, remove_layers
from pruning.data.windows import EvalProtocol
from pruning.engine.options import EngineOptions
from pruning.metrics.perplexity import prepare_windows
from pruning.models.variant import Variant
from pruning.search.assessment import assess
from pruning.search.beam import beam
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
            assert (
                chosen.within("blocks") and len(chosen.drop) == k and all(0 <= i < 4 for i in chosen.drop)
            ), name
        if result.scores is not None:
            assert len(result.scores) == 4 and all(torch.isfinite(torch.tensor(result.scores))), name
    assert run_criterion("last", data).chosen == {1: Variant((2,)), 2: Variant((1, 2))}
    assert run_criterion("angular", data).chosen[2].drop in {(0, 1), (1, 2), (2, 3)}  # consecutive blocks
    assert run_criterion("random", data).chosen == run_criterion("random", data).chosen  # seeded


@pytest.mark.parametrize("space", ["attn", "mlp", "all"])
def test_every_criterion_chooses_k_distinct_units_of_its_space(lm, small_corpus, engine_options, space):
    windows = tuple(prepare_windows(lm.tokenizer, small_corpus.text, EvalProtocol("windows", 64, 256)))
    data = CriterionInput(lm.model, windows, 3, engine_options, space)
    n_units = 4 * (2 if space == "all" else 1)
    for name in CRITERIA:
        result = run_criterion(name, data)
        assert sorted(result.chosen) == [1, 2, 3] and result.space == space, name
        for k, chosen in result.chosen.items():
            assert chosen.within(space) and chosen.size(space) == k, (name, chosen)
        if result.scores is not None:
            assert len(result.scores) == n_units and all(torch.isfinite(torch.tensor(result.scores))), name
    last = {1: "mlp2", 2: "2", 3: "mlp1,2"} if space == "all" else {1: f"{space}2", 2: f"{space}1,{space}2"}
    want = {k: f"drop[{ids}]" for k, ids in last.items()}
    assert {k: v.id for k, v in run_criterion("last", data).chosen.items() if k in want} == want


@pytest.mark.parametrize("space", ["blocks", "all"])
def test_sleb_and_calib_ppl_share_one_evaluation_of_the_singles(
    lm, small_corpus, engine_options, space, monkeypatch
):
    import pruning.search.criteria as criteria

    windows = tuple(prepare_windows(lm.tokenizer, small_corpus.text, EvalProtocol("windows", 64, 256)))
    calls = []
    real = criteria.evaluate_variants
    monkeypatch.setattr(criteria, "evaluate_variants", lambda *a: calls.append(a[2]) or real(*a))
    data = CriterionInput(lm.model, windows, 2, engine_options, space)
    scored = run_criterion("calib_ppl", data)
    sleb = run_criterion("sleb", data)
    assert len(calls) == 1 and len(calls[0]) == len(data.names)  # the singles, once
    assert sleb.chosen[1] == scored.chosen[1]  # SLEB's first step is calib_ppl's lowest single
    alone = run_criterion("sleb", CriterionInput(lm.model, windows, 2, engine_options, space))
    assert alone.chosen == sleb.chosen and len(calls) == 2  # a fresh input evaluates them anew
    raced = beam(lm.model, windows, 1, 1, engine_options, space=space)[1].best[0][0]
    assert raced == sleb.chosen[1]  # the step SLEB used to race picks the same unit


@pytest.mark.parametrize(
    "family", ["tiny-llama", "tiny-gemma3", "tiny-gpt2", "tiny-opt", "tiny-gptneox", "tiny-falcon"]
)
def test_unit_states_add_up_to_the_block_output(family, small_corpus):
    """Each branch's residual input plus its update, checked against the block's own output:
    sequential families end at the MLP's x + c, parallel ones at x + attn + mlp."""
    from pruning.models.sublayers import residual_of
    from pruning.search.states import block_states, unit_states

    model = load_model(f"random:{family}").model
    windows = prepare_windows(
        load_model(f"random:{family}").tokenizer, small_corpus.text, EvalProtocol("windows", 32, 64)
    )
    pairs = unit_states(model, windows)
    ins, outs = block_states(model, windows)
    parallel = residual_of(model).parallel
    for i, (x, out) in enumerate(zip(ins, outs, strict=True)):
        attn_x, attn_y = pairs[f"attn{i}"]
        mlp_x, mlp_y = pairs[f"mlp{i}"]
        torch.testing.assert_close(attn_x, x)
        end = attn_y + (mlp_y - mlp_x) if parallel else mlp_y
        torch.testing.assert_close(end, out, rtol=1e-4, atol=1e-4)


def test_unknown_criterion_suggests_the_closest(lm):
    with pytest.raises(KeyError, match=r"unknown criterion 'angualr'.*did you mean 'angular'"):
        run_criterion("angualr", CriterionInput(lm.model, (), 1, EngineOptions()))


def test_criteria_never_read_the_evaluation_windows(wikitext_study_settings):
    """Record every token sequence the model sees while criteria run: calibration only (whole
    windows, or the chunks of them that SLEB's raced steps continue from their KV caches)."""
    settings = replace(wikitext_study_settings, plan=parse_plan("criterion:all:K=1..2"), calib_tokens=256)
    study = Study(settings)
    seen: list[tuple[int, ...]] = []
    embed = study.lm.model.get_input_embeddings()
    embed.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0][0].tolist())))
    study.run_criteria(list(CRITERIA), 2)
    evaluation = [tuple(w.ids.tolist()) for w in study.windows]
    calibration = [tuple(w.ids.tolist()) for w in study.calib_windows]
    assert seen and all(_inside(s, calibration) and not _inside(s, evaluation) for s in seen)
    assert any(s in calibration for s in seen) and any(s not in calibration for s in seen)  # chunks too
    assert study.calib_windows and set(calibration).isdisjoint(evaluation)


def _inside(part: tuple[int, ...], windows: list[tuple[int, ...]]) -> bool:
    """Whether ``part`` is a contiguous run of tokens of one of ``windows``."""
    n = len(part)
    return any(w[i : i + n] == part for w in windows for i in range(len(w) - n + 1))


def test_assessment_correlations_and_regret():
    v = Variant
    result = CriterionResult("x", (0.1, 0.5, 0.3), {1: v((0,)), 2: v((0, 2))}, 1.5)
    truth = [1.0, 9.0, 4.0]  # same order as the scores
    measured = {v(): 10.0, v((0,)): 11.0, v((1,)): 19.0, v((2,)): 14.0, v((0, 2)): 16.0, v((0, 1)): 30.0}
    oracle = oracle_by_k({**measured, v(attn=(1,)): 10.5})  # a branch is not a block
    assert oracle == {1: 11.0, 2: 16.0}
    assert oracle_by_k({**measured, v(attn=(1,)): 10.5, v((1,)): 12.0}, "all") == {1: 10.5, 2: 11.0, 4: 16.0}
    a = assess(result, truth, measured, oracle)
    assert a.spearman == pytest.approx(1.0) and a.kendall == pytest.approx(1.0)
    assert a.regret == {1: 0.0, 2: 0.0}
    worse = assess(CriterionResult("y", None, {1: v((1,))}, 0.0), truth, measured, oracle)
    assert worse.spearman is None and worse.regret[1] == pytest.approx(100 * (19 / 11 - 1))


# The criteria from their papers' formulas, by hand, on a float64 copy of a tiny Llama: block
# inputs and outputs from forward hooks of our own, nothing of ``pruning.search``'s.


@pytest.fixture(scope="module")
def hand(lm, small_corpus):
    """Calibration windows, the float64 model, and every block's (input, output) per window:
    L x (W, T, C), the output before the final norm."""
    windows = tuple(prepare_windows(lm.tokenizer, small_corpus.text, EvalProtocol("windows", 64, 256)))
    model = copy.deepcopy(lm.model).double()
    blocks = model.model.layers  # a Llama's decoder blocks
    ins, outs = [[] for _ in blocks], [[] for _ in blocks]

    def record(i):
        def hook(module, args, kwargs, output):
            ins[i].append((args[0] if args else kwargs["hidden_states"]).detach())
            outs[i].append((output[0] if isinstance(output, tuple) else output).detach())

        return hook

    handles = [b.register_forward_hook(record(i), with_kwargs=True) for i, b in enumerate(blocks)]
    with torch.no_grad():
        model(input_ids=torch.stack([w.ids for w in windows]))  # (W, T): equal-length windows
    for h in handles:
        h.remove()
    return windows, model, [torch.cat(x) for x in ins], [torch.cat(x) for x in outs]


def _cos(a, b):
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


def test_block_influence_is_one_minus_the_mean_cosine_of_block_input_and_output(lm, hand, engine_options):
    """ShortGPT: BI_l = 1 - E_tokens[cos(x_l, x_{l+1})]; the K lowest are removed."""
    windows, _, ins, outs = hand
    want = [1 - float(_cos(x, y).mean()) for x, y in zip(ins, outs, strict=True)]
    got = run_criterion("block_influence", CriterionInput(lm.model, windows, 2, engine_options))
    assert got.scores == pytest.approx(want, rel=1e-5)
    order = sorted(range(4), key=lambda i: want[i])
    assert got.chosen == {1: Variant((order[0],)), 2: Variant(tuple(sorted(order[:2])))}


def test_angular_distance_is_arccos_of_the_last_token_states_n_blocks_apart(lm, hand, engine_options):
    """Gromov et al.: d(l, n) = arccos(cos(h_l, h_{l+n})) / pi at each window's last token,
    averaged over windows; the K consecutive blocks from argmin_l d(l, K) are removed."""
    windows, _, ins, outs = hand
    h = [x[:, -1] for x in ins] + [outs[-1][:, -1]]  # h_0 .. h_4: (W, C) each

    def d(lo, n):
        return float((torch.arccos(_cos(h[lo], h[lo + n]).clamp(-1, 1)) / math.pi).mean())

    got = run_criterion("angular", CriterionInput(lm.model, windows, 3, engine_options))
    assert got.scores == pytest.approx([d(lo, 1) for lo in range(4)], rel=1e-5)
    for k in (1, 2, 3):
        start = min(range(4 - k + 1), key=lambda lo: d(lo, k))
        assert got.chosen[k] == Variant(tuple(range(start, start + k)))


def test_taylor_is_the_sum_of_weight_times_gradient_of_the_calibration_loss(lm, hand, engine_options):
    """Shortened LLaMA's Taylor+: I_l = sum over block l's weights of |w * dL(D)/dw|, L(D) the
    mean next-token NLL over every scored calibration token (one loss over the whole set)."""
    windows, model, _, _ = hand
    ids = torch.stack([w.ids for w in windows])  # (W, T)
    start = windows[0].score_from
    logits = model(input_ids=ids).logits[:, start - 1 : -1]  # (W, n, V) predicting ids[:, start:]
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, start:].flatten())
    blocks = [list(b.parameters()) for b in model.model.layers]
    grads = torch.autograd.grad(loss, [p for ps in blocks for p in ps])
    it = iter(grads)
    want = [sum(float((p.detach() * next(it)).abs().sum()) for p in ps) for ps in blocks]
    got = run_criterion("taylor", CriterionInput(lm.model, windows, 1, engine_options))
    assert got.scores == pytest.approx(want, rel=1e-4)
    assert got.chosen[1] == Variant((min(range(4), key=lambda i: want[i]),))


def test_calibration_perplexity_and_sleb_follow_full_passes_of_each_pruned_model(lm, hand, engine_options):
    """calib_ppl: exp(mean NLL) of the calibration text with one block removed; SLEB: remove the
    block with the lowest such NLL, then repeat on the pruned model."""
    windows, model, _, _ = hand
    ids = torch.stack([w.ids for w in windows])  # (W, T)
    start = windows[0].score_from

    def ppl(drop):
        with torch.no_grad():
            logits = remove_layers(model, drop)(input_ids=ids).logits[:, start - 1 : -1]  # (W, n, V)
        nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, start:].flatten())
        return math.exp(float(nll))

    data = CriterionInput(lm.model, windows, 2, engine_options)
    singles = [ppl([i]) for i in range(4)]
    assert run_criterion("calib_ppl", data).scores == pytest.approx(singles, rel=1e-5)
    first = min(range(4), key=lambda i: singles[i])
    second = min((i for i in range(4) if i != first), key=lambda i: ppl(sorted([first, i])))
    want = {1: Variant((first,)), 2: Variant(tuple(sorted([first, second])))}
    assert run_criterion("sleb", data).chosen == want


def test_a_criterion_plan_runs_the_criteria_it_names_and_refuses_an_unknown_one(wikitext_study_settings):
    plan = parse_plan("criterion:block_influence+random:K=1..2")
    study = Study(replace(wikitext_study_settings, plan=plan, calib_tokens=256))
    variants = study.variants()
    assert [r.name for r in study.log.criteria] == ["block_influence", "random"]
    chosen = {v for r in study.log.criteria for v in r.chosen.values()}
    assert chosen <= set(variants) and {Variant((i,)) for i in range(4)} <= set(variants)
    wrong = Study(replace(wikitext_study_settings, plan=parse_plan("criterion:random+angualr:K=1..2")))
    with pytest.raises(ValueError, match=r"unknown criterion 'angualr'.*did you mean 'angular'"):
        wrong.variants()
