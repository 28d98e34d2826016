"""Progress lines through pytest's terminal reporter, which output capture does not swallow.

One updating line on a terminal (at most one write a second), one plain line every
``PLAIN_EVERY_S`` seconds elsewhere (CI logs), so the terminal is never silent for long and
never flooded. Writes suspend capture the way pytest's own live logging does. An xdist worker
has no terminal of its own: it writes plain lines, prefixed with its id (``pruning [gw0]: ...``),
to its standard error, which xdist's workers share with the controller's.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from pruning.metrics.timing import CampaignProgress

TTY_EVERY_S = 1.0
PLAIN_EVERY_S = 8.0


@dataclass
class TerminalProgress:
    """Writes progress lines for one pytest session; silent where there is no terminal reporter."""

    config: pytest.Config
    last: float = field(default=0.0)
    open_line: bool = field(default=False)

    def line(self, text: str, final: bool = False) -> None:
        """Show ``text``; throttled unless ``final`` (which also ends the updating line)."""
        workerinput = getattr(self.config, "workerinput", None)
        if workerinput is not None:
            self._worker_line(f"pruning [{workerinput.get('workerid', '?')}]: {text}", final)
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        now = time.monotonic()
        tty = bool(getattr(reporter, "isatty", False))
        if not final and now - self.last < (TTY_EVERY_S if tty else PLAIN_EVERY_S):
            return
        self.last = now
        with self._uncaptured():
            if tty:
                if not self.open_line:
                    reporter.ensure_newline()
                reporter.rewrite(f"pruning: {text}", erase=True)
                self.open_line = not final
                reporter.write("\n" if final else "", flush=True)
            else:
                reporter.ensure_newline()
                reporter.write(f"pruning: {text}\n", flush=True)

    def _worker_line(self, text: str, final: bool) -> None:
        now = time.monotonic()
        if not final and now - self.last < PLAIN_EVERY_S:
            return
        self.last = now
        with self._uncaptured():
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def __call__(self, description: str, total: int) -> TerminalBar:
        """A ``pruning.common.progress.BarFactory``: a bar that reports through this terminal."""
        return TerminalBar(self, description, total)

    def campaign(self, state: CampaignProgress) -> None:
        """A ``pruning.metrics.timing.OnProgress``: the campaign's state as one line."""
        width = "—" if state.rounds == 0 else f"±{state.half_width_pp:.1f}"
        where = (
            f"{state.rounds} rounds done"
            if state.done
            else f"round {state.rounds + 1}, slot {state.slot}/{state.slots_per_round}"
        )
        self.line(
            f"{state.name} timing: {where}; median 95% half-width {width} pp "
            f"(target {state.target_pp:g}); {state.elapsed_s:.0f} s of {state.budget_s:g} s",
            final=state.done,
        )

    def _uncaptured(self) -> Any:
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        return capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()


@dataclass
class TerminalBar:
    """A ``pruning.common.progress.Bar`` that writes through ``TerminalProgress``."""

    out: TerminalProgress
    description: str
    total: int
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    status: str = ""

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.status = s

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.done < self.total:  # the last update is left to close(), which always shows
            self.out.line(self._text(), final=False)

    def close(self) -> None:
        self.out.line(self._text(), final=True)

    def _text(self) -> str:
        status = f", {self.status}" if self.status else ""
        return f"{self.description} {self.done}/{self.total}{status}, {time.monotonic() - self.started:.0f} s"
