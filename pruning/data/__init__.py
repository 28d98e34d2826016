"""Evaluation text and how it is cut: corpora (WikiText-2 from a directory, the hub or a file,
with their sha256) and the windows of a perplexity protocol (``windows``, ``sliding``,
``llamacpp``, with the model's BOS rule).

It may import ``pruning.common`` only; it is a peer of ``pruning.models`` and imports
neither it nor anything higher.
"""
