"""Finding what to remove: racing and beam search over removal sets, block-importance criteria on
calibration text, the oracle (the best set known per K), and the assessment of criteria against it.

It may import every layer below it: ``pruning.common``, ``.models``, ``.data``, ``.metrics``,
``.engine``.
"""
