"""The pruning-kit pytest plugin (entry point ``pytest11: pruning``).

It adapts ``pruning`` to pytest and does nothing else: options, variant parametrisation,
fixtures, session orchestration (when to time, when to gate) and the pytest-benchmark hooks.
Report files, JSON, tables and summary lines come from ``pruning.reporting``. All state lives
in ``config.stash``. It is the only layer that imports pytest; it may import every other layer,
and none imports it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from pruning.data.corpora import CorpusError
from pruning.models.loading import ModelLoadError
from pruning.models.sources import SourceError
from pruning.plugin import hookspec, options
from pruning.plugin.configure import build_settings, check_settings
from pruning.plugin.fixtures import prune_decode, prune_prefill, prune_quality, prune_record, prune_study
from pruning.plugin.progress import TerminalProgress
from pruning.plugin.scheduler import SETUP_ERROR
from pruning.plugin.session import SESSION_KEY, PruneSession, disable_saving
from pruning.plugin.summary import write_summary
from pruning.study.expansion import TooManyVariants
from pruning.study.study import Study

__all__ = ["SESSION_KEY", "prune_decode", "prune_prefill", "prune_quality", "prune_record", "prune_study"]

VARIANT_ARG = "prune_variant"


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


TIMED = {"prune_prefill": "prefill", "prune_decode": "decode"}  # fixture -> timing campaign


def pytest_configure(config: pytest.Config) -> None:
    progress = TerminalProgress(config)
    settings = build_settings(config, progress)
    check_settings(settings)
    session = PruneSession(config, settings, Study(settings), progress)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "pruning-session")  # test reports, pytest-benchmark hooks


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise every test that takes ``prune_variant`` with the plan's variants."""
    if VARIANT_ARG not in metafunc.fixturenames:
        return
    session = metafunc.config.stash[SESSION_KEY]
    try:
        if not session.study.model_loaded:
            session.progress.line(f"loading model {session.settings.model.spec} ...", final=True)
        variants = session.study.variants()
    except (ModelLoadError, SourceError, CorpusError) as exc:  # a usage error once collection is over
        session.setup_error = f"--prune-model/--prune-corpus: {exc}"
        variants = []
    except TooManyVariants as exc:
        session.setup_error = (
            f"--prune-plan: {exc} (--prune-max-variants={exc.limit}); "
            f"pass --prune-max-variants={exc.count} to run them all"
        )
        variants = []
    except ValueError as exc:
        session.setup_error = f"--prune-plan: {exc}"
        variants = []
    if variants:
        session.distribution.group(variants)  # under xdist: the groups its scheduler sends whole
        metafunc.parametrize(VARIANT_ARG, variants, ids=[v.id for v in variants])
    else:  # refused after collection: serially below, under xdist by the controller (its ids)
        failed = pytest.param(
            None, id=SETUP_ERROR + session.setup_error, marks=pytest.mark.skip(reason=session.setup_error)
        )
        metafunc.parametrize(VARIANT_ARG, [failed])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember the selected variants, so quality is computed in one pass for all of them; fail
    a bad setup or a baseline request without a usable baseline before any test runs (under
    xdist the controller does, ``PruneSession.pytest_xdist_node_collection_finished``)."""
    session = config.stash[SESSION_KEY]
    worker = hasattr(config, "workerinput")
    if session.setup_error:
        if worker:
            return
        raise pytest.UsageError(session.setup_error)
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
    if seen and not worker:  # only a run with pruning tests is gated (the plugin sees every run)
        session.pruning_tests = True
        session.check_baseline_request()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
    """Gate before pytest-benchmark saves: a failed run must not become the new baseline."""
    if not hasattr(session.config, "workerinput"):
        state = session.config.stash[SESSION_KEY]
        if state.finish():
            disable_saving(session.config)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    yield


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    write_summary(terminalreporter, config.stash[SESSION_KEY])
