"""Parameter counts.

Definition: the number of distinct parameter tensors' elements. Tied weights (GPT-2's and
LLaMA-tied LM head sharing the token embedding) are one tensor and are counted once.
``non_embedding=True`` leaves out every ``nn.Embedding`` weight (token and learned position
embeddings), and so a head tied to them, as Hugging Face's ``exclude_embeddings`` does.
"""

from __future__ import annotations

from torch import nn


def count_parameters(model: nn.Module, non_embedding: bool = False) -> int:
    """Distinct parameters of ``model``; tied weights once; see the module docstring."""
    excluded: set[int] = set()
    if non_embedding:
        excluded = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    seen: set[int] = set()
    total = 0
    for _, param in model.named_parameters(remove_duplicate=False):
        key = id(param)
        if key in seen or key in excluded:
            continue
        seen.add(key)
        total += param.numel()
    return total
