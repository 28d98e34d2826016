"""Which lm-evaluation-harness tasks a run evaluates, and how."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TaskSettings:
    """``--prune-tasks``, ``--prune-tasks-limit``, ``--prune-tasks-fewshot``, ``--prune-tasks-path``."""

    names: tuple[str, ...] = ()  # lm-eval task or group names; empty: no tasks
    limit: int | None = None  # examples per task (lm-eval's ``limit``); None: all
    fewshot: int | None = None  # lm-eval's ``num_fewshot``; None: the task's own default
    path: Path | None = None  # lm-eval's ``include_path``: a folder of the user's task YAML files
    batch_size: int = 16  # requests per forward pass

    @property
    def on(self) -> bool:
        """Whether any task is asked for."""
        return bool(self.names)
