"""Models and their surgery: loading (offline specs, GGUF, the hub), tiny test architectures,
tokenizers, removing blocks (``remove_layers``), parameter counts, and the ``Variant`` value type
(which blocks a pruned variant removes, and its id).

It may import ``pruning.common`` only; it knows nothing of corpora, metrics or the engine.
"""
