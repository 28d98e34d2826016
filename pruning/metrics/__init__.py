"""What is measured and how, each defined once: scoring logits (NLL, KL, top-1 as per-window sums),
perplexity from NLL sums (``ppl``) with its bootstrap interval, the percent change, the run
fingerprint, and latency (interleaved timing campaigns, their intervals and the depth fit).

It may import ``pruning.common``, ``pruning.models`` and ``pruning.data``.
"""
