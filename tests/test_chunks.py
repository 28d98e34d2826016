from __future__ import annotations

import itertools

import pytest
import torch

from pruning import load_model
from pruning.data.windows import EvalProtocol
from pruning.engine.chunks import evaluate_chunk
from pruning.engine.cost import block_share
from pruning.engine.options import EXACT_RTOL, EngineOptions
from pruning.metrics.perplexity import prepare_windows
from pruning.metrics.scoring import token_nll
from pruning.models.surgery import num_layers, remove_layers
from pruning.models.variant import BASE, Variant
from pruning.search.racing import chunk_spans

SPANS = [(0, 16), (16, 24), (24, 40), (40, 63)]  # uneven, and longer than tiny-gemma3's window of 8


def _variants(n_layers: int) -> list[Variant]:
    pairs = [Variant(d) for d in itertools.combinations(range(n_layers), 2)]
    return [BASE, Variant((0,)), Variant((n_layers - 1,)), *pairs[:: max(1, len(pairs) // 5)]]


def _full_pass_nll(model, window, variant):
    pruned = remove_layers(model, variant.drop, variant.attn, variant.mlp)
    with torch.inference_mode():
        logits = pruned(input_ids=window.ids[None], use_cache=False).logits
    return token_nll(logits[0, window.score_from - 1 : -1], window.ids[window.score_from :])


def _chunked_nll(model, window, variants, options, batch_heads=True):
    carry, runners, out = None, {}, {v: [] for v in variants}
    for span in SPANS:
        result = evaluate_chunk(model, window, span, variants, carry, options, runners, batch_heads)
        carry = result.carry
        for v in variants:
            out[v].append(result.nll[v])
    return {v: torch.cat(parts) for v, parts in out.items()}, carry


@pytest.fixture(scope="module")
def windows(small_corpus):
    lm = load_model("random:tiny-llama")
    return prepare_windows(lm.tokenizer, small_corpus.text, EvalProtocol("windows", 64, 256))


@pytest.mark.parametrize("batch_heads", [True, False], ids=["batched-head", "own-head"])
@pytest.mark.parametrize("arch", ["tiny-gpt2", "tiny-llama", "tiny-gemma3", "tiny-opt", "tiny-gptneox"])
def test_chunked_nll_equals_one_full_forward_pass(arch, batch_heads, windows, engine_options):
    model = load_model(f"random:{arch}").model
    window = windows[1]
    variants = _variants(num_layers(model))
    got, carry = _chunked_nll(model, window, variants, engine_options, batch_heads)
    assert carry is not None and carry.length == window.score_from - 1 + SPANS[-1][1]
    for v in variants:
        want = _full_pass_nll(model, window, v)
        assert got[v].shape == want.shape
        torch.testing.assert_close(got[v], want, rtol=EXACT_RTOL, atol=0.0)


UNIT_VARIANTS = [
    Variant(attn=(0,)),  # the first block keeps no keys: its cache layer holds position marks
    Variant(mlp=(0,)),
    Variant(attn=(1,), mlp=(2,)),
    Variant((1,), "", (0,)),
    Variant(attn=(0, 1)),
    Variant(mlp=(1,)),
    Variant(attn=(2, 3)),  # resumed after block 1, no block left attends: marks carry the length
    Variant((2,), "", (1, 3)),
]


@pytest.mark.parametrize(
    "arch", ["tiny-gpt2", "tiny-llama", "tiny-gemma3", "tiny-opt", "tiny-gptneox", "tiny-falcon", "tiny-phi3"]
)
def test_chunked_nll_on_units_equals_one_full_forward_pass(arch, windows, engine_options):
    """Unit variants continue from their own caches, blocks without attention holding none."""
    model = load_model(f"random:{arch}").model
    window = windows[1]
    variants = [BASE, *UNIT_VARIANTS]
    got, carry = _chunked_nll(model, window, variants, engine_options)
    assert carry is not None and carry.length == window.score_from - 1 + SPANS[-1][1]
    for v in variants:
        torch.testing.assert_close(got[v], _full_pass_nll(model, window, v), rtol=EXACT_RTOL, atol=0.0)


def test_without_room_for_caches_each_chunk_recomputes_exactly(windows, engine_options):
    model = load_model("random:tiny-llama").model
    window = windows[0]
    variants = _variants(num_layers(model))
    kept, _ = _chunked_nll(model, window, variants, engine_options)
    bounded, carry = _chunked_nll(model, window, variants, EngineOptions(max_state_mb=0.0, progress=False))
    assert carry is None
    for v in variants:
        torch.testing.assert_close(bounded[v], kept[v], rtol=EXACT_RTOL, atol=0.0)


def test_recomputing_costs_more_than_continuing(windows, engine_options):
    model = load_model("random:tiny-llama").model
    variants = _variants(num_layers(model))
    options = engine_options
    first = evaluate_chunk(model, windows[0], (0, 32), variants, None, options, {})
    continued = evaluate_chunk(model, windows[0], (32, 63), variants, first.carry, options, {})
    again = evaluate_chunk(model, windows[0], (32, 63), variants, None, options, {})
    assert continued.cost < again.cost


def test_a_carry_from_elsewhere_is_refused(windows, engine_options):
    model = load_model("random:tiny-llama").model
    first = evaluate_chunk(model, windows[0], (0, 16), [BASE], None, engine_options, {})
    with pytest.raises(ValueError, match=r"chunk span \(24, 40\) does not continue from 16 cached positions"):
        evaluate_chunk(model, windows[0], (24, 40), [BASE], first.carry, engine_options, {})


def test_block_shares_of_a_partition_add_up_to_one_and_grow_with_position():
    model = load_model("random:tiny-llama").model
    bounds = [0, 10, 17, 40, 64]
    shares = [block_share(model, 64, a, b) for a, b in itertools.pairwise(bounds)]
    assert sum(shares) == pytest.approx(1.0, rel=1e-12)
    # attention: later positions see more keys, so equal spans cost more later
    assert block_share(model, 64, 32, 64) > block_share(model, 64, 0, 32)


@pytest.mark.parametrize(
    ("scored", "want"),
    [
        (511, [(0, 64), (64, 96), (96, 144), (144, 224), (224, 336), (336, 511)]),
        (127, [(0, 64), (64, 127)]),
        (40, [(0, 40)]),
    ],
)
def test_chunk_spans(scored, want):
    assert chunk_spans(scored) == want


@pytest.mark.parametrize("arch", ["tiny-llama", "tiny-gemma3", "tiny-gptneox"])
def test_a_race_without_the_unpruned_model_runs_only_its_shared_prefix(arch, windows, engine_options):
    """Candidates that all remove something: base runs up to their deepest shared prefix, is not
    scored, and the candidates' chunked NLLs still equal their own full forward passes."""
    model = load_model(f"random:{arch}").model
    window = windows[1]
    candidates = [Variant(attn=(2,)), Variant(attn=(2, 3)), Variant((3,), "", (2,)), Variant(mlp=(1,))]
    got, carry = _chunked_nll(model, window, candidates, engine_options)
    assert carry is not None
    for v in candidates:
        torch.testing.assert_close(got[v], _full_pass_nll(model, window, v), rtol=EXACT_RTOL, atol=0.0)
    alone = evaluate_chunk(model, window, (0, 32), candidates, None, engine_options, {})
    scored = evaluate_chunk(model, window, (0, 32), [BASE, *candidates], None, engine_options, {})
    assert BASE not in alone.nll and BASE in scored.nll
    assert alone.cost < scored.cost
