"""What the plugin keeps before it knows that a run has pruning tests, and the session it starts then.

The plugin is installed for every pytest run. Until a test asks for a variant (or a pruning
fixture runs, or an xdist worker reports pruning tests to the controller) it imports nothing
heavy (importing torch, transformers and peft would slow every ``pytest`` start) and gates nothing;
``PluginState.session`` then starts the ``PruneSession`` once: settings from the options, the
checks that refuse a setup that cannot work, the study.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pruning.plugin.session import PruneSession


@dataclass(eq=False)
class PluginState:
    """The plugin's state for one pytest run (``config.stash``), light until pruning starts."""

    config: pytest.Config
    compared: list[Any] = field(default_factory=list)  # the JSON of every file pytest-benchmark loaded
    benchmark_session: Any = None  # handed to us by pytest-benchmark's compare hook
    benchmark_table_hidden: int = 0  # pruning benchmarks left out of pytest-benchmark's table
    setup_error: str = ""  # a setup that does not work, reported once collection is over
    pruning_tests: bool = False  # whether the run holds pruning tests (only then is it gated)
    active: PruneSession | None = None  # the pruning session, once started

    def session(self) -> PruneSession:
        """The pruning session, started on first use; ``pytest.UsageError`` for a bad setup."""
        if self.active is None:
            from pruning.plugin.session import start  # torch and transformers: pruning runs only

            self.active = start(self)
        return self.active


STATE_KEY = pytest.StashKey[PluginState]()
PROPERTY = "pruning"  # the key of a test's recorded fields: its user_properties, benchmark.extra_info


def state_of(config: pytest.Config) -> PluginState:
    """The run's state, made on first use (pytest-benchmark may load baselines before our configure)."""
    return config.stash.setdefault(STATE_KEY, PluginState(config))
