"""How the engine evaluates, and how exact its shortcuts must be."""

from __future__ import annotations

from dataclasses import dataclass

from pruning.common.progress import Progress

EXACT_RTOL = 1e-5  # a shortcut (prefix sharing, KV continuation) must match a plain pass this closely


@dataclass(frozen=True)
class EngineOptions:
    """How the engine evaluates: prefix sharing, memory bound, batch size, lanes."""

    share_prefixes: bool = True
    max_state_mb: float = 1024.0  # bound on cached hidden states; beyond it: recompute
    batch_size: int = 1
    progress: Progress = None  # None: a tqdm bar only on a terminal; or a BarFactory
    lanes: int = 1  # window batches evaluated at once, each on its share of the threads (engine.lanes)
