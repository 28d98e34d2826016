"""The prefix-sharing engine gives the naive forward pass's numbers, exactly."""

from __future__ import annotations

import copy

import pytest
import torch

from pruning import load_model, remove_layers
from pruning.data.windows import EvalProtocol
from pruning.engine.options import EngineOptions
from pruning.engine.prefix import evaluate_variants
from pruning.metrics import scoring
from pruning.metrics.perplexity import prepare_windows, window_nlls
from pruning.models.variant import BASE
from pruning.study.plan import expand_plan, parse_plan

FAMILIES = ["tiny-gpt2", "tiny-llama", "tiny-gemma3", "tiny-opt", "tiny-gptneox", "tiny-falcon", "tiny-qwen2"]


@pytest.fixture(scope="module")
def windows_for(small_corpus):
    def build(lm, ctx=64):
        return prepare_windows(lm.tokenizer, small_corpus.text, EvalProtocol("windows", ctx, 4 * ctx))

    return build


@pytest.mark.parametrize("family", FAMILIES)
def test_engine_equals_naive_full_forward_passes(family, windows_for, engine_options):
    lm = load_model(f"random:{family}")
    windows = windows_for(lm)
    variants = expand_plan(parse_plan("combos:2"), lm.num_layers)
    got, stats = evaluate_variants(lm.model, windows, variants, engine_options)
    assert stats.strategy == "prefix" and stats.block_passes < stats.naive_block_passes
    for variant in variants:
        want = window_nlls(remove_layers(lm.model, variant.drop), windows, batch_size=1, progress=False)
        assert got[variant].nll == pytest.approx(want, rel=1e-5)
        assert got[variant].tokens == [w.scored for w in windows]


UNIT_FAMILIES = [*FAMILIES, "tiny-mistral", "tiny-phi3"]  # every family with sub-layer surgery
UNIT_MIXES = "drop:attn0,mlp1;1,attn2;mlp0,attn3;attn0,attn1,mlp2,3"


@pytest.mark.parametrize("family", UNIT_FAMILIES)
def test_engine_on_units_equals_naive_full_forward_passes(family, windows_for, engine_options):
    """Every single unit and mixed unit sets (a block without attention first, a block that loses
    no branch of its own, blocks and branches together) against each pruned model's own full pass."""
    lm = load_model(f"random:{family}")
    windows = windows_for(lm)
    variants = expand_plan(parse_plan("sequential:units"), lm.num_layers)
    variants += expand_plan(parse_plan(UNIT_MIXES), lm.num_layers)[1:]
    got, stats = evaluate_variants(lm.model, windows, variants, engine_options)
    assert stats.strategy == "prefix" and stats.block_passes < stats.naive_block_passes
    for variant in variants:
        pruned = remove_layers(lm.model, variant.drop, variant.attn, variant.mlp)
        want = window_nlls(pruned, windows, batch_size=1, progress=False)
        assert got[variant].nll == pytest.approx(want, rel=1e-5), variant.id


def float64_fidelity(model, variant, windows):
    """The reference: per window, KL(base || pruned) summed over the scored positions and the
    count of positions where the base's top token is a top token of the pruned model, from full
    forward passes of the float64 base and the float64 pruned model (``scoring``'s definitions,
    computed without any of its code)."""
    base = copy.deepcopy(model).double()
    pruned = remove_layers(base, variant.drop, variant.attn, variant.mlp)
    kl, top1 = [], []
    with torch.no_grad():
        for window in windows:
            ids = window.ids.unsqueeze(0)  # (1, T)
            scored = slice(window.score_from - 1, ids.shape[1] - 1)  # logits predicting ids[score_from:]
            ref = torch.log_softmax(base(input_ids=ids).logits[0, scored], dim=-1)  # (n, V)
            out = pruned(input_ids=ids).logits[0, scored]  # (n, V)
            kl.append(float((ref.exp() * (ref - torch.log_softmax(out, dim=-1))).sum()))
            ref_top = ref.argmax(-1)  # (n,)
            top1.append(int((out.gather(-1, ref_top[:, None])[:, 0] == out.max(-1).values).sum()))
    return kl, top1


@pytest.mark.parametrize("family", ["tiny-llama", "tiny-gpt2", "tiny-gemma3"])
def test_kl_and_top1_equal_float64_full_passes_of_each_pruned_model(family, windows_for, engine_options):
    """Every single unit, every pair of blocks and mixed sets: the engine's fidelity sums (float32,
    shared prefixes, chunked scoring) against the independent float64 reference."""
    lm = load_model(f"random:{family}")
    windows = windows_for(lm)
    variants = expand_plan(parse_plan("sequential:units"), lm.num_layers)
    variants += expand_plan(parse_plan("combos:2"), lm.num_layers)[1:]
    variants += expand_plan(parse_plan(UNIT_MIXES), lm.num_layers)[1:]
    got, _ = evaluate_variants(lm.model, windows, variants, engine_options)
    assert got[BASE].kl == [0.0] * len(windows) and got[BASE].top1 == [w.scored for w in windows]
    for variant in variants[1:]:
        kl, top1 = float64_fidelity(lm.model, variant, windows)
        assert min(kl) > 0, variant.id
        # float32 rounding: about 3e-7 a position
        assert got[variant].kl == pytest.approx(kl, rel=1e-3, abs=1e-4), variant.id
        assert got[variant].top1 == top1, variant.id


def test_memory_bound_degrades_to_recomputation_with_the_same_numbers(windows_for, engine_options):
    lm = load_model("random:tiny-gpt2")
    windows = windows_for(lm)
    variants = expand_plan(parse_plan("sequential"), lm.num_layers)
    free, free_stats = evaluate_variants(lm.model, windows, variants, engine_options)
    tight, tight_stats = evaluate_variants(
        lm.model, windows, variants, EngineOptions(max_state_mb=1e-9, progress=False)
    )
    assert tight_stats.block_passes == tight_stats.naive_block_passes > free_stats.block_passes
    assert tight_stats.peak_state_bytes == 0 < free_stats.peak_state_bytes
    for variant in variants:
        assert tight[variant].nll == pytest.approx(free[variant].nll, rel=1e-6)


def test_sequential_cost_on_a_30_block_model_is_within_target():
    from pruning.engine.schedule import plan_schedule

    variants = expand_plan(parse_plan("sequential"), 30)
    shared, naive = plan_schedule(variants, 30), plan_schedule(variants, 30, share=False)
    assert (shared.block_passes, naive.block_passes) == (465, 900)
    head = 8.0  # SmolLM2-135M: the LM head costs ~8 blocks
    assert (shared.block_passes + head * 31) / (naive.block_passes + head * 31) < 0.65


def test_branch_shares_add_up_to_one_and_attention_grows_with_length():
    from pruning.engine.cost import branch_shares

    model = load_model("random:tiny-llama").model
    short, long = branch_shares(model, 128), branch_shares(model, 1024)
    assert short.attn + short.mlp == pytest.approx(1.0) and long.attn + long.mlp == pytest.approx(1.0)
    assert 0 < short.attn < long.attn < 1


@pytest.mark.parametrize("space", ["blocks", "attn", "mlp", "all"])
def test_exhaustive_cost_formula_equals_enumerating_every_subset(space):
    """``all_subsets_cost`` against the naive schedule of every K-subset, enumerated."""
    import itertools

    from pruning.engine.cost import BranchShares, all_subsets_cost, naive_cost
    from pruning.models.variant import from_units, space_names

    shares, n_layers, k = BranchShares(0.3, 0.7), 5, 3
    subsets = [from_units(c) for c in itertools.combinations(space_names(space, n_layers), k)]
    want = naive_cost([BASE, *subsets], n_layers, 8.0, shares)
    assert all_subsets_cost(n_layers, k, 8.0, space, shares) == pytest.approx(want)


@pytest.mark.parametrize("family", UNIT_FAMILIES)
def test_lanes_give_bit_identical_numbers_and_restore_the_thread_count(family, windows_for):
    """Windows evaluated two at a time (each lane its own runners, one torch thread) give exactly
    the sums of one window after another, blocks and branches alike; the thread count is back."""
    import torch

    lm = load_model(f"random:{family}")
    windows = windows_for(lm)
    variants = expand_plan(parse_plan("sequential:units"), lm.num_layers)
    variants += expand_plan(parse_plan(UNIT_MIXES), lm.num_layers)[1:]
    threads = torch.get_num_threads()
    one, _ = evaluate_variants(lm.model, windows, variants, EngineOptions(progress=False))
    two, _ = evaluate_variants(lm.model, windows, variants, EngineOptions(progress=False, lanes=2))
    assert len(windows) == 4 and torch.get_num_threads() == threads
    assert {v: s.windows for v, s in two.items()} == {v: s.windows for v, s in one.items()}


def test_lanes_share_the_memory_bound(windows_for):
    """Each lane keeps its own cached states, so the bound is split among the lanes: the peak of
    all lanes together stays within it, and the numbers stay the same."""
    lm = load_model("random:tiny-gpt2")
    windows = windows_for(lm)
    variants = expand_plan(parse_plan("sequential"), lm.num_layers)
    one, free = evaluate_variants(lm.model, windows, variants, EngineOptions(progress=False))
    state_mb = free.peak_state_bytes / 2**20 / 3  # one state (the free run keeps three at most)
    bound = EngineOptions(progress=False, lanes=2, max_state_mb=2.5 * state_mb)
    two, shared = evaluate_variants(lm.model, windows, variants, bound)
    assert shared.peak_state_bytes <= 2.5 * state_mb * 2**20 < 2 * free.peak_state_bytes
    assert {v: s.windows for v, s in two.items()} == {v: s.windows for v, s in one.items()}


@pytest.mark.parametrize(("family", "softcap"), [("tiny-llama", None), ("tiny-gemma3", 30.0)])
def test_engine_scores_heads_in_chunks_or_the_models_own_logits(
    family, softcap, windows_for, engine_options, monkeypatch
):
    """A plain head scores the pruned variants' hidden states a vocabulary chunk at a time (64
    of the 320 entries here); a model that soft-caps its logits after the head is scored from its
    own logits. Both equal each pruned model's own full forward pass."""
    monkeypatch.setattr(scoring, "VOCAB_CHUNK", 64)
    lm = load_model(f"random:{family}")
    if softcap is not None:
        lm.model.config.final_logit_softcapping = softcap
    fused = scoring.plain_head(lm.model, torch.tensor([[1, 2, 3]])) is not None
    assert fused == (softcap is None)
    windows = windows_for(lm)
    variants = expand_plan(parse_plan("sequential"), lm.num_layers)
    got, stats = evaluate_variants(lm.model, windows, variants, engine_options)
    assert stats.strategy == "prefix"  # no fallback to naive evaluation hid a wrong score
    for variant in variants:
        want = window_nlls(remove_layers(lm.model, variant.drop), windows, batch_size=1, progress=False)
        assert got[variant].nll == pytest.approx(want, rel=1e-6), variant.id
