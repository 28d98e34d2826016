"""Small helpers every layer may use: typed registries, progress bars, atomic file writes, the hub probe.

The bottom layer: it imports nothing from ``pruning`` (only the standard library and tqdm).
"""
