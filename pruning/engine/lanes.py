"""Lanes: independent window batches evaluated concurrently, each on its own torch threads.

Quality does not depend on how windows are scheduled: each window batch is scored on its own,
so several can run at once, each lane on its share of the threads. On a shared CPU this is
much more robust than giving every thread to one window: each operation split over threads
ends in a barrier where all of them wait for the slowest, which is whichever one another
process just preempted; a lane with one thread waits for nobody.

``python scripts/lanes.py [--busy] N`` measures the two layouts against each other, alone or
beside a busy process (``docs/engine.md`` gives what it showed). The sums are bit-identical: a
window's NLL, KL and top-1 sums do not depend on the thread count (the tests check it).
A lane's thread takes its large blocks from fresh mmap pages (glibc's per-thread arenas; see
``pruning.common.memory``, which also says how to avoid it).

Lanes split the session's intra-op threads (``torch.get_num_threads``) among them for the
duration of a call and restore the count afterwards, so timing, which measures one pass with
all threads, is unaffected. Timing never runs in lanes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import torch

from pruning.common.progress import Bar

T = TypeVar("T")
R = TypeVar("R")

MAX_AUTO_LANES = 4  # each lane holds a window's logits and states (~0.4 GB for SmolLM2 at 512)


def auto_lanes(threads: int, device: str, device_map: str | None = None) -> int:
    """The default lane count: one per intra-op thread on a CPU, up to ``MAX_AUTO_LANES`` (more
    lanes would each hold a window's logits for little gain); one on an accelerator (its kernels
    are not split into CPU threads) and for a model placed by accelerate (its offload hooks move
    weights per pass)."""
    if device != "cpu" or device_map is not None:
        return 1
    return max(1, min(threads, MAX_AUTO_LANES))


@contextmanager
def intra_op_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``count`` (process-wide), restored on exit."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def in_lanes(work: Callable[[T], R], items: Sequence[T], lanes: int) -> Generator[R, None, None]:
    """``work(item)`` for every item, results in item order, ``lanes`` items at a time.

    With one lane (or one item) this is a plain loop on the caller's thread. Otherwise each lane
    runs with ``torch.get_num_threads() // lanes`` intra-op threads (at least 1); the caller
    consumes results while later items run. Stopping early (the caller breaks out, or ``work``
    raises) cancels the items not yet started and waits for the running ones.
    """
    if lanes <= 1 or len(items) <= 1:
        yield from (work(item) for item in items)
        return
    lanes = min(lanes, len(items))
    with intra_op_threads(max(1, torch.get_num_threads() // lanes)):
        pool = ThreadPoolExecutor(lanes, thread_name_prefix="pruning-lane")
        try:
            futures: list[Future[R]] = [pool.submit(work, item) for item in items]
            for future in futures:
                yield future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class SharedBar:
    """A progress bar that several lanes update: every call under one lock."""

    def __init__(self, bar: Bar) -> None:
        self.bar = bar
        self.lock = threading.Lock()

    def update(self, n: int = 1) -> object:
        with self.lock:
            return self.bar.update(n)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> object:
        with self.lock:
            return self.bar.set_postfix_str(s, refresh)

    def close(self) -> None:
        with self.lock:
            self.bar.close()
