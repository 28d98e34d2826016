"""Allocator settings for CPU sweeps.

Every scored window allocates (T, V) float32 logits and log-probabilities: 100 MB for a
49k-token vocabulary at T=512. glibc serves blocks that large with mmap and returns them to
the OS on free, so every variant pays for fresh page faults and zeroing. Raising the mmap and
trim thresholds keeps those blocks in the heap for reuse. The process keeps its peak memory
instead of returning it, which is the right trade for a benchmark process.

This holds for the main thread's arena only. Other threads (the engine's lanes,
``pruning.engine.lanes``) allocate from arenas that grow in heaps of at most 64 MiB, so glibc
serves their 100 MB blocks from fresh mmap pages whatever the threshold (``python
scripts/page_faults.py N`` counts the page faults with N lanes). ``MALLOC_ARENA_MAX=1`` in the
environment at start avoids it; ``mallopt(M_ARENA_MAX, 1)`` from here cannot, because glibc
fixes its arena limit when the first thread takes an arena, before this runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30  # 1 GiB: larger blocks still go to mmap


@functools.cache  # once per process: finding libc runs ``ldconfig``, and sweeps call this often
def reuse_large_allocations() -> bool:
    """Ask glibc malloc to keep large freed blocks for reuse; False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _THRESHOLD))
