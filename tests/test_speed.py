from __future__ import annotations

import torch

from pruning import load_model, remove_layers
from pruning.metrics.speed import (
    decode,
    decode_slot,
    decode_steps,
    prefill,
    prefill_slot,
    speed_tokens,
    start_decode,
)
from pruning.results.rows import Row, with_changes


def test_campaign_ratio_drives_the_speed_change_and_its_interval():
    base = Row("base", (), 4, 10.0, (9.0, 11.0), 1, 0.0, 1.0, 10, speed_ms=100.0, speed_ratio=1.0)
    drop = Row(
        "drop[1]", (1,), 3, 11.0, (10.0, 12.0), 1, 0.1, 0.9, 10,
        speed_ms=120.0, speed_ratio=0.8, speed_ratio_ci95=(0.75, 0.85), decode_ratio=0.9,
        decode_ratio_ci95=(0.8, 1.05),
    )  # fmt: skip
    rows = with_changes([base, drop])
    assert abs(rows[1].speed_change_pct + 20.0) < 1e-9 and abs(rows[1].speedup - 1.25) < 1e-9
    low, high = rows[1].speed_change_ci95
    assert abs(low + 25.0) < 1e-9 and abs(high + 15.0) < 1e-9
    assert abs(rows[1].speedup_ci95[0] - 1 / 0.85) < 1e-9 and abs(rows[1].speedup_ci95[1] - 1 / 0.75) < 1e-9
    assert abs(rows[1].decode_change_pct + 10.0) < 1e-9 and abs(rows[1].decode_change_ci95[1] - 5.0) < 1e-9


def test_prefill_and_cached_decode_run_and_agree_with_greedy():
    lm = load_model("random:tiny-llama")
    ids = speed_tokens(lm.tokenizer, "The quick brown fox jumps over the lazy dog. " * 4, 16)
    assert ids.shape == (1, 16)
    model = remove_layers(lm.model, [1])
    assert prefill(model, ids).shape == (1, 1, 320)
    cache, token = start_decode(model, ids)
    out = decode(model, cache, token, 4)
    seq = torch.cat([ids, token], dim=1)
    for _ in range(4):  # uncached greedy reference
        with torch.inference_mode():
            nxt = model(seq, use_cache=False).logits[:, -1:].argmax(-1)
        seq = torch.cat([seq, nxt], dim=1)
    assert out.tolist()[0] == seq[0, 17:].tolist()


def test_slots_time_what_they_say_and_decode_slots_start_from_the_same_cache():
    lm = load_model("random:tiny-llama")
    ids = speed_tokens(lm.tokenizer, "The quick brown fox jumps over the lazy dog. " * 4, 16)
    assert prefill_slot(lm.model, ids, 3)() > 0.0
    cache, token = start_decode(lm.model, ids)
    steps = decode_steps(lm.model, cache, token, 5)
    assert len(steps) == 5 and all(s > 0.0 for s in steps)
    started = start_decode(lm.model, ids)
    before = [t.clone() for t in _cache_tensors(started[0])]
    measure = decode_slot(lm.model, started, 4)
    assert measure() > 0.0 and measure() > 0.0  # a second slot decodes from a fresh copy
    after = _cache_tensors(started[0])  # the shared prefilled cache is never grown or written
    assert len(after) == len(before) and all(torch.equal(a, b) for a, b in zip(after, before, strict=True))


def _cache_tensors(cache) -> list[torch.Tensor]:
    """Every tensor a transformers cache holds (keys and values of every layer)."""
    found = [v for layer in cache.layers for v in (layer.keys, layer.values) if isinstance(v, torch.Tensor)]
    assert found
    return found
