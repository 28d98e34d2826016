"""One benchmark study: the plan grammar (which variants to measure), the frozen settings, and the
``Study`` that loads the model, corpus and windows once, expands the plan and computes rows.

It may import every layer below it (``pruning.common`` … ``pruning.results``); the reporting
layer and the plugin import it.
"""
