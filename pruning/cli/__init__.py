"""The ``pruning`` command: work with saved reports without running a model (``python -m pruning``).

The top layer: it may import every other subpackage (reports, gates, rendering, the option
parsers of ``pruning.plugin.parsers``) and nothing imports it.
"""
