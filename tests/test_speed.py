from __future__ import annotations

import time

import torch

from pruning import load_model, remove_layers
from pruning.results import Row, with_changes
from pruning.speed import decode, paired_ratio, prefill, speed_tokens, start_decode


def test_paired_ratio_measures_relative_time():
    slow = lambda: time.sleep(0.02)  # noqa: E731
    fast = lambda: time.sleep(0.01)  # noqa: E731
    assert 0.35 < paired_ratio(fast, slow, 5) < 0.75
    assert 1.4 < paired_ratio(slow, fast, 5) < 2.8


def test_paired_ratio_drives_the_speed_change_when_present():
    base = Row("base", (), 4, 10.0, (9.0, 11.0), 1, 0.0, 1.0, 10, speed_ms=100.0, speed_ratio=1.0)
    drop = Row("drop[1]", (1,), 3, 11.0, (10.0, 12.0), 1, 0.1, 0.9, 10, speed_ms=120.0, speed_ratio=0.8)
    rows = with_changes([base, drop])
    assert abs(rows[1].speed_change_pct + 20.0) < 1e-9 and abs(rows[1].speedup - 1.25) < 1e-9


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
