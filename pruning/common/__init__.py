"""Small helpers every layer may use: typed registries, progress bars, atomic file writes, the hub
probe, and the allocator setting that keeps large per-window temporaries fast.

The bottom layer: it imports nothing from ``pruning`` (only the standard library and tqdm).
"""
