"""The pruning-kit pytest plugin (entry point ``pytest11: pruning``).

It adapts ``pruning`` to pytest and does nothing else: options, variant parametrisation,
fixtures, session orchestration (when to time, when to gate) and the pytest-benchmark hooks.
Report files, JSON, tables and summary lines come from ``pruning.reporting``. All state lives
in ``config.stash``. It is the only layer that imports pytest; it may import every other layer,
and none imports it.

pytest imports this module for every run, pruning or not, so it imports nothing heavy: the
session (torch, transformers, the study) starts when a test first asks for a variant
(``pruning.plugin.state``), and a run without pruning tests is neither slowed nor gated.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import pytest
from xdist.workermanage import Producer, WorkerController

from pruning.models.variant import Variant
from pruning.plugin import hookspec, options
from pruning.plugin.fixtures import prune_decode, prune_prefill, prune_quality, prune_record, prune_study
from pruning.plugin.scheduler import SETUP_ERROR, VariantGroupScheduling, has_pruning_tests, setup_error
from pruning.plugin.state import PROPERTY, STATE_KEY, state_of
from pruning.study.plan import searches

__all__ = ["STATE_KEY", "prune_decode", "prune_prefill", "prune_quality", "prune_record", "prune_study"]

VARIANT_ARG = "prune_variant"
TIMED = {"prune_prefill": "prefill", "prune_decode": "decode"}  # fixture -> timing campaign
Groups = list[tuple[str | None, list[dict[str, Any]]]]  # pytest-benchmark's table groups


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


def pytest_configure(config: pytest.Config) -> None:
    state_of(config)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_compare_machine_info(
    config: pytest.Config, benchmarksession: Any, machine_info: Any, compared_benchmark: Any
) -> None:
    """pytest-benchmark's public hook, called for every baseline file it loaded (in order)."""
    state = state_of(config)
    state.compared.append(compared_benchmark)
    state.benchmark_session = benchmarksession


@pytest.hookimpl(wrapper=True, optionalhook=True)
def pytest_benchmark_group_stats(
    config: pytest.Config, benchmarks: list[dict[str, Any]], group_by: str
) -> Generator[None, Groups, Groups]:
    """pytest-benchmark's public hook for the groups of its table: the pruning tests' benchmarks
    leave it (unless ``--prune-benchmark-table``). Each is one pass of the variant, kept in the
    saved JSON for ``--benchmark-compare``; shown beside the suite's campaign numbers, it told
    another story (one round, StdDev 0, drifting with the machine). Saving is not affected."""
    groups = yield
    if config.getoption(options.dest("benchmark-table")):
        return groups
    kept = [(name, [b for b in group if not _ours(b)]) for name, group in groups]
    hidden = sum(len(group) for _, group in groups) - sum(len(group) for _, group in kept)
    state_of(config).benchmark_table_hidden = hidden
    return [(name, group) for name, group in kept if group]


def _ours(benchmark: dict[str, Any]) -> bool:
    """Whether a pytest-benchmark entry is a pruning test's (it carries the variant's row)."""
    return PROPERTY in (benchmark.get("extra_info") or {})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise every test that takes ``prune_variant`` with the plan's variants; a setup that
    cannot work gives one parameter named by its error, refused once collection is over."""
    if VARIANT_ARG not in metafunc.fixturenames:
        return
    state = state_of(metafunc.config)
    variants: list[Variant] = []
    if not state.setup_error:
        try:
            variants = state.session().variants()
        except pytest.UsageError as exc:
            state.setup_error = str(exc)
    if variants:
        metafunc.parametrize(VARIANT_ARG, variants, ids=[v.id for v in variants])
    else:  # refused after collection: serially below, under xdist by the controller (its ids)
        reason = state.setup_error
        failed = pytest.param(None, id=SETUP_ERROR + reason, marks=pytest.mark.skip(reason=reason))
        metafunc.parametrize(VARIANT_ARG, [failed])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember the selected variants, so quality is computed in one pass for all of them; fail
    a bad setup or a baseline request without a usable baseline before any test runs (under
    xdist the controller does, ``pytest_xdist_node_collection_finished``)."""
    state = state_of(config)
    worker = hasattr(config, "workerinput")
    if state.setup_error:
        if worker:
            return
        raise pytest.UsageError(state.setup_error)
    session = state.active
    if session is None:  # no test asked for a variant
        return
    seen: dict[Any, None] = {}
    timed: dict[str, dict[Any, None]] = {kind: {} for kind in TIMED.values()}
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and VARIANT_ARG in callspec.params:
            variant = callspec.params[VARIANT_ARG]
            seen.setdefault(variant)
            for fixture, kind in TIMED.items():
                if fixture in getattr(item, "fixturenames", ()):
                    timed[kind].setdefault(variant)
    session.selected = list(seen)
    session.timed = {kind: list(variants) for kind, variants in timed.items()}
    if seen and not worker:  # only a run with pruning tests is gated
        state.pruning_tests = True
        session.check_baseline_request()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> VariantGroupScheduling | None:
    """xdist's public hook, on the controller of plain ``-n`` / ``--dist load``: whole variant
    groups per worker (``pruning.plugin.distribution``), made once a worker collected pruning
    tests; a plan that searches keeps xdist's default (expanding it here would run its searches)."""
    if config.getvalue("dist") != "load" or searches(options.get(config, "plan")):
        return None
    state = state_of(config)

    def make_groups() -> dict[str, int]:  # loads the model and expands the plan here too
        session = state.session()
        return {v.id: k for v, k in session.distribution.group(session.variants()).items()}

    return VariantGroupScheduling(config, log, make_groups)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: WorkerController, ids: Sequence[str]) -> None:
    """xdist's public hook, on the controller, before anything is scheduled: refuse a run whose
    workers could not set it up (``scheduler.setup_error``), and check a baseline request, once
    a worker collected pruning tests (a usage error raised here ends the run cleanly)."""
    state = state_of(node.config)
    if state.pruning_tests or not has_pruning_tests(ids):
        return
    state.pruning_tests = True
    error = setup_error(ids)
    if error:
        raise pytest.UsageError(error)
    state.session().check_baseline_request()  # started here also to receive the workers' reports


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
    """Gate before pytest-benchmark saves: a failed run must not become the new baseline."""
    active = state_of(session.config).active
    if active is not None and not hasattr(session.config, "workerinput") and active.finish():
        from pruning.plugin.session import disable_saving

        disable_saving(session.config)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    yield


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = state_of(config)
    if state.active is not None:
        from pruning.plugin.summary import write_summary

        write_summary(terminalreporter, state.active)
