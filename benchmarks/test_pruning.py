"""The depth-pruning benchmark suite.

Every test is parametrised with the variants of ``--prune-plan`` (ids ``base``,
``drop[3]``, ``drop[1,3]``...). Quality runs anywhere, also under ``-n``; speed runs serially.
"""

from __future__ import annotations

import math


def test_quality(prune_variant, prune_quality, prune_record):
    """Perplexity (95% CI), parameters, KL and top-1 agreement against the unpruned model."""
    row = prune_quality(prune_variant)
    assert math.isfinite(row.ppl) and row.ppl > 1.0
    low, high = row.ppl_ci95  # (nan, nan) from a single window: no spread between windows is seen
    assert low <= row.ppl <= high or (math.isnan(low) and math.isnan(high))
    if prune_variant.is_base:  # the unpruned model is its own reference
        assert row.kl == 0.0 and row.top1_agree == 1.0
    prune_record(prune_variant, row.as_dict())


def test_prefill(benchmark, prune_variant, prune_prefill):
    """One forward pass over --prune-speed-seq real tokens, batch 1."""
    assert prune_prefill(benchmark, prune_variant) > 0.0


def test_decode(benchmark, prune_variant, prune_decode):
    """Greedy decoding with the KV cache, ms per new token."""
    assert prune_decode(benchmark, prune_variant) > 0.0
