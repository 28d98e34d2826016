"""Task accuracy through lm-evaluation-harness: lm-eval builds the requests and scores the
answers; the variants' log-likelihoods come from one shared pass of the prefix-shared engine
(or, with ``--prune-engine naive``, from lm-eval's own HFLM per variant).

It may import ``pruning.common``, ``.models``, ``.data``, ``.metrics`` and ``.engine``.
"""
