"""The pruning-kit pytest plugin (entry point ``pytest11: pruning``).

It adapts ``pruning`` to pytest: options, variant parametrisation, fixtures, the summary
tables, reports and regression gates. All state lives in ``config.stash``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from pruning.plugin import hookspec, options
from pruning.plugin.fixtures import prune_decode, prune_prefill, prune_quality, prune_record
from pruning.plugin.session import PruneSession, build_settings, disable_saving
from pruning.plugin.summary import write_summary
from pruning.study import Study

__all__ = ["prune_decode", "prune_prefill", "prune_quality", "prune_record"]

SESSION_KEY = pytest.StashKey[PruneSession]()
VARIANT_ARG = "prune_variant"


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


def pytest_configure(config: pytest.Config) -> None:
    settings = build_settings(config)
    session = PruneSession(config, settings, Study(settings))
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "pruning-session")  # receives the test reports


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise every test that takes ``prune_variant`` with the plan's variants."""
    if VARIANT_ARG not in metafunc.fixturenames:
        return
    session = metafunc.config.stash[SESSION_KEY]
    try:
        variants = session.study.variants()
    except ValueError as exc:  # raised as a usage error once collection is over
        session.plan_error = f"--prune-plan: {exc}"
        variants = []
    metafunc.parametrize(VARIANT_ARG, variants, ids=[v.id for v in variants])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember the selected variants, so quality is computed in one pass for all of them."""
    session = config.stash[SESSION_KEY]
    if session.plan_error:
        raise pytest.UsageError(session.plan_error)
    seen: dict[Any, None] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and VARIANT_ARG in callspec.params:
            seen.setdefault(callspec.params[VARIANT_ARG])
    session.selected = list(seen)


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
