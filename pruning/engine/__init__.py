"""The prefix-shared evaluation engine: the schedule over the prefix tree, the step models that
resume from a shared state, evaluation of many variants at once, chunked evaluation with KV-cache
continuation, the cost model (block-forward equivalents), the results store and store-backed
evaluation.

It may import ``pruning.common``, ``.models``, ``.data`` and ``.metrics``.
"""
