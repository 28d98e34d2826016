"""Fixtures of the pruning plugin; each hands the test a bound callback, not the session."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from pruning.models.variant import Variant
from pruning.plugin.state import PROPERTY, state_of

if TYPE_CHECKING:  # the plugin entry imports this module for every run: nothing heavy at import
    from pruning.plugin.session import PruneSession
    from pruning.results.rows import Row
    from pruning.study.study import Study

Record = Callable[[Variant, dict[str, Any]], None]


def _session(config: pytest.Config) -> PruneSession:
    return state_of(config).session()


@pytest.fixture(scope="session")
def prune_study(pytestconfig: pytest.Config) -> Study:
    """The session's study: the loaded model, its windows, settings and results store.

    For benchmarks of the library itself (``benchmarks/test_engine.py``); variant tests use
    the callbacks below.
    """
    return _session(pytestconfig).study


@pytest.fixture(scope="session")
def prune_quality(pytestconfig: pytest.Config) -> Callable[[Variant], Row]:
    """``quality(variant) -> Row``: perplexity, CI, parameters, KL and top-1 of a variant.

    Serially, the first call evaluates every selected variant in one engine pass; in an
    xdist worker, every selected variant of its group (a run of prefix subtrees), with the
    same numbers.
    """
    return _session(pytestconfig).quality


@pytest.fixture
def prune_record(request: pytest.FixtureRequest) -> Record:
    """``record(variant, fields)``: send fields of a variant's row to the session summary.

    They travel in the test report's ``user_properties``, so they reach the controller under xdist.
    """
    session = _session(request.config)

    def record(variant: Variant, fields: dict[str, Any]) -> None:
        worker = session.distribution.cost(session.selected)
        payload = {
            "variant": variant.id,
            "fields": fields,
            "fingerprint": session.study.fingerprint.as_dict(),
            "worker": None if worker is None else worker.as_dict(),
        }
        request.node.user_properties.append((PROPERTY, payload))

    return record


@pytest.fixture
def prune_prefill(
    pytestconfig: pytest.Config, prune_quality: Callable[[Variant], Row], prune_record: Record
) -> Callable[[Any, Variant], float]:
    """``prefill(benchmark, variant) -> ms``: the variant's prefill latency and its speed change.

    The first call runs the interleaved prefill campaign over every selected variant (and, with
    ``--prune-speed-seq N,M``, a second one at M tokens whose fields are the row's ``long_*``)
    (``pruning.metrics.timing``); the latency, the change and its interval come from it.
    pytest-benchmark times one more pass of the variant for its own table and saved JSON (one
    round: the campaign already holds the careful measurement), and the variant's row and the
    run's fingerprint go into ``benchmark.extra_info``, so that JSON is the baseline file.
    """
    session = _session(pytestconfig)

    def run(benchmark: Any, variant: Variant) -> float:
        from pruning.metrics import speed
        from pruning.results.rows import timed_fields

        _require_timing(benchmark)
        campaign = session.campaign("prefill")
        study = session.study
        benchmark.group = "prefill"
        model, ids = study.model_for(variant), study.speed_ids
        benchmark.pedantic(speed.prefill, args=(model, ids), rounds=1, iterations=1)
        row = replace(
            prune_quality(variant),
            work=study.work_class(variant),
            **timed_fields("prefill", campaign, variant.id),
        )
        row = _with_long_prefill(session, variant, row)
        benchmark.extra_info[PROPERTY] = {"row": row.as_dict(), "fingerprint": study.fingerprint.as_dict()}
        prune_record(variant, row.as_dict())
        return float(row.speed_ms or 0.0)

    return run


@pytest.fixture
def prune_decode(pytestconfig: pytest.Config, prune_record: Record) -> Callable[[Any, Variant], float]:
    """``decode(benchmark, variant) -> ms per token``: greedy decoding with the KV cache.

    Like prefill: the first call runs the interleaved decode campaign, pytest-benchmark times
    one decode run of the variant for its own table, and the fields go into ``extra_info``.
    """
    session = _session(pytestconfig)

    def run(benchmark: Any, variant: Variant) -> float:
        from pruning.metrics import speed
        from pruning.results.rows import timed_fields

        _require_timing(benchmark)
        campaign = session.campaign("decode")
        study, cfg = session.study, session.settings.speed
        model = study.model_for(variant)
        cache, token = session.started[variant.id]  # the campaign's prefilled cache (untimed)

        def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
            return (model, copy.deepcopy(cache), token, cfg.new_tokens), {}

        benchmark.group = "decode"
        benchmark.pedantic(speed.decode, setup=setup, rounds=1, iterations=1)
        fields = {
            "id": variant.id,
            "work": study.work_class(variant),
            **timed_fields("decode", campaign, variant.id),
        }
        ms = float(fields["decode_ms_per_token"])
        benchmark.extra_info[PROPERTY] = {"row": fields, "fingerprint": study.fingerprint.as_dict()}
        prune_record(variant, fields)
        return ms

    return run


def _with_long_prefill(session: PruneSession, variant: Variant, row: Row) -> Row:
    """``row`` with its prefill at the second length (``--prune-speed-seq N,M``), from the campaign
    that times the same variants interleaved again at M tokens; unchanged without one."""
    from pruning.results.rows import timed_fields

    if not session.settings.speed.long_seq:
        return row
    long = session.campaign("prefill_long")
    fields = timed_fields("prefill_long", long, variant.id)
    return replace(row, long_seq=session.settings.speed.long_seq[0], **fields)


def _require_timing(benchmark: Any) -> None:
    if getattr(benchmark, "disabled", False):
        pytest.skip("timing is off (pytest-xdist or --benchmark-disable): speed runs serially, without -n")
