"""Fixtures of the pruning plugin; each hands the test a bound callback, not the session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from pruning import speed
from pruning.results import Row
from pruning.variants import BASE, Variant

Record = Callable[[Variant, dict[str, Any]], None]


def _session(config: pytest.Config) -> Any:
    from pruning.plugin import SESSION_KEY  # local: the plugin module imports this one

    return config.stash[SESSION_KEY]


def in_xdist_worker(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker."""
    return hasattr(config, "workerinput")


@pytest.fixture(scope="session")
def prune_quality(pytestconfig: pytest.Config) -> Callable[[Variant], Row]:
    """``quality(variant) -> Row``: perplexity, CI, parameters, KL and top-1 of a variant.

    Serially, the first call evaluates every selected variant in one engine pass; in an
    xdist worker each call evaluates its own variant (with the same numbers).
    """
    session = _session(pytestconfig)
    worker = in_xdist_worker(pytestconfig)

    def quality(variant: Variant) -> Row:
        wanted = [variant] if worker else session.selected or [variant]
        rows: dict[Variant, Row] = session.study.quality(wanted)
        return rows[variant]

    return quality


@pytest.fixture
def prune_record(request: pytest.FixtureRequest) -> Record:
    """``record(variant, fields)``: send fields of a variant's row to the session summary.

    They travel in the test report's ``user_properties``, so they reach the controller under xdist.
    """
    session = _session(request.config)

    def record(variant: Variant, fields: dict[str, Any]) -> None:
        payload = {"variant": variant.id, "fields": fields, "fingerprint": session.study.fingerprint()}
        request.node.user_properties.append(("pruning", payload))

    return record


@pytest.fixture
def prune_prefill(
    pytestconfig: pytest.Config, prune_quality: Callable[[Variant], Row], prune_record: Record
) -> Callable[[Any, Variant], float]:
    """``prefill(benchmark, variant) -> median ms``: time one prefill pass of the variant.

    The variant's quality row and the fingerprint go into ``benchmark.extra_info``, so
    pytest-benchmark's saved JSON is the baseline file.
    """
    session = _session(pytestconfig)

    def run(benchmark: Any, variant: Variant) -> float:
        _require_timing(benchmark)
        study, cfg = session.study, session.settings.speed
        model, ids = study.model_for(variant), study.speed_ids
        benchmark.group = "prefill"
        benchmark.pedantic(
            speed.prefill, args=(model, ids), rounds=cfg.rounds, warmup_rounds=cfg.warmup_rounds, iterations=1
        )
        median_ms = 1000.0 * float(benchmark.stats.stats.median)
        ratio = 1.0
        if variant.drop:  # against the unpruned model, timed back to back (see pruning.speed)
            base = study.model_for(BASE)
            ratio = speed.paired_ratio(
                lambda: speed.prefill(model, ids), lambda: speed.prefill(base, ids), cfg.rounds
            )
        row = replace(prune_quality(variant), speed_ratio=ratio)
        benchmark.extra_info["pruning"] = {"row": row.as_dict(), "fingerprint": study.fingerprint()}
        prune_record(variant, {**row.as_dict(), "speed_ms": median_ms})
        return median_ms

    return run


@pytest.fixture
def prune_decode(pytestconfig: pytest.Config, prune_record: Record) -> Callable[[Any, Variant], float]:
    """``decode(benchmark, variant) -> median ms per token``: greedy decoding with the KV cache."""
    session = _session(pytestconfig)

    def run(benchmark: Any, variant: Variant) -> float:
        _require_timing(benchmark)
        study, cfg = session.study, session.settings.speed
        model, ids = study.model_for(variant), study.speed_ids

        def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
            cache, token = speed.start_decode(model, ids)  # untimed prefill
            return (model, cache, token, cfg.new_tokens), {}

        benchmark.group = "decode"
        benchmark.pedantic(
            speed.decode, setup=setup, rounds=cfg.rounds, warmup_rounds=cfg.warmup_rounds, iterations=1
        )
        per_token: float = 1000.0 * float(benchmark.stats.stats.median) / cfg.new_tokens
        prune_record(variant, {"decode_ms_per_token": per_token})
        return per_token

    return run


def _require_timing(benchmark: Any) -> None:
    if getattr(benchmark, "disabled", False):
        pytest.skip("timing is off (pytest-xdist or --benchmark-disable): speed runs serially, without -n")
