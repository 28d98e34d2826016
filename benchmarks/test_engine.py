"""The sweep engine's own benchmarks (opt-in: ``--prune-engine-bench``; long on a CPU).

Side by side in one run, on the session's model, corpus and protocol:
- the naive loop (every variant a full forward pass) against the prefix-sharing engine on
  the sequential plan: wall-clock ratio, and identical perplexities;
- racing against exhaustive evaluation for the best 10 pairs on the first 2048 tokens: the same
  top-10 set with the same perplexities, at a fraction of the exhaustive naive cost (in
  block-forward equivalents, with wall-clock samples to show the count tracks time: the race's
  own windows, and a timed naive loop over 29 sampled pairs); the exhaustive truth is computed
  once through the engine (the long part) and kept in the results store;
- bfloat16 against float32: sweep speedup, perplexity distance, and whether the ranking of
  single-block removals is unchanged (Spearman).
Findings are printed and written to ``engine.json`` in ``--prune-report`` (or the cwd).
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import pytest
from scipy.stats import spearmanr

from pruning import load_model
from pruning.data.windows import EvalProtocol
from pruning.engine.options import EngineOptions
from pruning.engine.prefix import evaluate_variants
from pruning.engine.stored import evaluate_stored
from pruning.metrics.perplexity import prepare_windows
from pruning.models.variant import BASE
from pruning.search.racing import race
from pruning.study.plan import expand_plan, parse_plan

FINDINGS: dict[str, object] = {}


@pytest.fixture(scope="module")
def engine_bench(pytestconfig, prune_study):
    if not pytestconfig.getoption("prune_engine_bench"):
        pytest.skip("opt-in: pass --prune-engine-bench (long on a CPU: it evaluates every pair exhaustively)")
    study = prune_study
    yield study
    out = Path(study.settings.report_dir or ".") / "engine.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(FINDINGS, indent=2))
    print(f"\nengine findings: {json.dumps(FINDINGS, indent=2)}\nwritten to {out}")


def _ppl(scores):
    return scores.ppl


def _timed(model, windows, variants, share):
    start = time.perf_counter()
    scores, stats = evaluate_variants(model, windows, variants, EngineOptions(share_prefixes=share))
    return scores, stats, time.perf_counter() - start


def test_engine_vs_naive_sequential(engine_bench):
    study = engine_bench
    model, windows = study.lm.model, study.windows
    variants = expand_plan(parse_plan("sequential"), study.lm.num_layers)
    naive, _, naive_s = _timed(model, windows, variants, share=False)
    fast, stats, fast_s = _timed(model, windows, variants, share=True)
    worst = max(abs(_ppl(fast[v]) / _ppl(naive[v]) - 1) for v in variants)
    FINDINGS["sequential"] = {
        "variants": len(variants),
        "windows": len(windows),
        "naive_s": naive_s,
        "engine_s": fast_s,
        "time_ratio": fast_s / naive_s,
        "cost_ratio": stats.cost / stats.naive_cost,
        "max_ppl_rel_diff": worst,
        "peak_state_mib": stats.peak_state_bytes / 2**20,
    }
    print(FINDINGS["sequential"])
    assert worst <= 1e-5
    assert fast_s <= 0.65 * naive_s


def test_racing_finds_the_exhaustive_top10_pairs(engine_bench):
    study = engine_bench
    model = study.lm.model
    windows = prepare_windows(
        study.lm.tokenizer, study.corpus.text, EvalProtocol("windows", study.protocol.ctx, 2048)
    )
    pairs = [v for v in expand_plan(parse_plan("combos:2"), study.lm.num_layers) if v != BASE]
    start = time.perf_counter()
    truth = evaluate_stored(model, windows, pairs, EngineOptions(), study.store())  # cached exhaustive truth
    exhaustive_s = time.perf_counter() - start
    want = sorted(pairs, key=lambda v: (math.fsum(truth.scores[v].nll), v.drop))[:10]
    start = time.perf_counter()
    found = race(model, windows, pairs, 10, EngineOptions())
    race_s = time.perf_counter() - start
    # a timed sample of the naive loop gives its seconds per block-forward equivalent
    sample = random.Random(0).sample(pairs, 29)
    _, naive_stats, naive_s = _timed(model, windows, sample, share=False)
    naive_rate = 1000 * naive_s / (naive_stats.cost * len(windows))
    naive_estimate_s = naive_rate * found.exhaustive_naive_cost / 1000
    got = [v for v, _ in found.best]
    exact = {v: truth.scores[v].ppl for v in got}
    worst = max(abs(p / exact[v] - 1) for v, p in found.best)
    FINDINGS["racing"] = {
        "candidates": len(pairs),
        "windows": len(windows),
        "top10_exhaustive": [v.id for v in want],
        "top10_race": [v.id for v in got],
        "same_set": set(got) == set(want),
        "evaluations": found.evaluations,
        "exhaustive_evaluations": found.exhaustive_evaluations,
        "cost": found.cost,
        "exhaustive_naive_cost": found.exhaustive_naive_cost,
        "cost_ratio": found.cost / found.exhaustive_naive_cost,
        "survivors_per_chunk": list(found.survivors),
        "peak_kv_cache_mib": found.peak_cache_bytes / 2**20,
        "max_ppl_rel_diff": worst,
        "race_s": race_s,
        # count vs time: seconds per 1000 block-forward equivalents, window by window
        # (435 candidates at the first chunk, the survivors after): flat if the count tracks time
        "stage_s_per_kcost": [
            1000 * s / c for s, c in zip(found.stage_seconds, found.stage_costs, strict=True)
        ],
        "exhaustive_engine_s": exhaustive_s if truth.computed else None,
        "naive_sample": {"pairs": len(sample), "s": naive_s, "s_per_kcost": naive_rate},
        "exhaustive_naive_s_estimate": naive_estimate_s,
        "time_ratio_vs_naive_estimate": race_s / naive_estimate_s,
        "ppl": {v.id: p for v, p in found.best},
    }
    print(FINDINGS["racing"])
    assert set(got) == set(want)
    assert worst <= 1e-5  # the race's perplexities are the exhaustive ones
    rates = FINDINGS["racing"]["stage_s_per_kcost"]
    assert max(rates) <= 1.5 * min(rates)  # the cost count tracks wall-clock time within a race
    # ... and across methods: the race's time ratio stays within 1.5x of its count ratio
    assert race_s / naive_estimate_s <= 1.5 * found.cost / found.exhaustive_naive_cost
    assert found.cost <= 0.15 * found.exhaustive_naive_cost


def test_bf16_against_fp32(engine_bench):
    study = engine_bench
    variants = expand_plan(parse_plan("sequential"), study.lm.num_layers)
    fp32, _, fp32_s = _timed(study.lm.model, study.windows, variants, share=True)
    bf16_lm = load_model(study.settings.model.spec, dtype="bfloat16")
    bf16, _, bf16_s = _timed(bf16_lm.model, study.windows, variants, share=True)
    a = [_ppl(fp32[v]) for v in variants[1:]]
    b = [_ppl(bf16[v]) for v in variants[1:]]
    rho = float(spearmanr(a, b).statistic)
    FINDINGS["bf16"] = {
        "fp32_s": fp32_s,
        "bf16_s": bf16_s,
        "speedup": fp32_s / bf16_s,
        "base_ppl_fp32": _ppl(fp32[BASE]),
        "base_ppl_bf16": _ppl(bf16[BASE]),
        "max_ppl_rel_diff": max(abs(y / x - 1) for x, y in zip(a, b, strict=True)),
        "median_ppl_rel_diff": sorted(abs(y / x - 1) for x, y in zip(a, b, strict=True))[len(a) // 2],
        "spearman_single_removals": rho,
        "same_ranking": sorted(range(len(a)), key=a.__getitem__) == sorted(range(len(b)), key=b.__getitem__),
    }
    print(FINDINGS["bf16"])
    assert rho > 0.9
