"""Scoring logits against targets: NLL sums, and fidelity to a reference model.

Definitions (all per window, over the scored positions only):
- NLL: -log softmax(logits)[target], accumulated in float64;
- KL: KL(reference || model) = sum_v p_ref(v) * (log p_ref(v) - log p_model(v)) at each
  position, summed (divide by the scored-token count for the mean);
- top-1 agreement: how many positions have the same argmax in both models.
Log-softmax runs in float32 even for bf16 models, so low-precision logits are not rounded twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pruning.windows import Window

# Each window's NLL is also summed over this many consecutive chunks of its scored positions:
# paired per-segment differences give the variance estimates of the racing search.
SEGMENTS = 8


@dataclass(frozen=True)
class WindowScores:
    """Per-window sums for one batch: NLL, and KL / top-1 when a reference was given."""

    nll: torch.Tensor  # (B,) float64
    kl: torch.Tensor | None  # (B,) float64
    top1: torch.Tensor | None  # (B,) int64
    segments: torch.Tensor  # (B, SEGMENTS) float64: NLL sums of consecutive position chunks


def batches(windows: Sequence[Window], batch_size: int) -> Iterator[list[int]]:
    """Indices of consecutive windows of equal length and ``score_from``, ``batch_size`` at most."""
    group: list[int] = []
    for i, window in enumerate(windows):
        if group and (_shape(windows[group[0]]) != _shape(window) or len(group) == batch_size):
            yield group
            group = []
        group.append(i)
    if group:
        yield group


def stack(windows: Sequence[Window], indices: list[int]) -> torch.Tensor:
    """The input ids of ``indices`` as one (B, T) batch."""
    return torch.stack([windows[i].ids for i in indices])


def scored_logprobs(model: nn.Module, ids: torch.Tensor, score_from: int) -> torch.Tensor:
    """Log-probabilities (B, T-score_from, V) that predict ``ids[:, score_from:]``.

    Only the positions that are scored go through the LM head (``logits_to_keep``).
    """
    seq = ids.shape[1]
    keep = seq - score_from + 1  # positions score_from-1 .. T-1; the last predicts nothing
    out = model(input_ids=ids, use_cache=False, logits_to_keep=keep)
    return logprobs_from_logits(out.logits[:, :-1])


def logprobs_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """float32 log-softmax over the vocabulary; (B, n, V) -> (B, n, V)."""
    return F.log_softmax(logits.float(), dim=-1)


def score(logprobs: torch.Tensor, targets: torch.Tensor, reference: torch.Tensor | None) -> WindowScores:
    """Sums per window of NLL, and of KL / top-1 against ``reference`` log-probs if given.

    ``logprobs`` and ``reference``: (B, n, V); ``targets``: (B, n).
    """
    nll = -logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).double()  # (B, n)
    chunks = torch.tensor_split(nll, SEGMENTS, dim=1)  # SEGMENTS x (B, ~n/SEGMENTS)
    segments = torch.stack([c.sum(1) for c in chunks], dim=1)  # (B, SEGMENTS)
    if reference is None:
        return WindowScores(nll.sum(1), None, None, segments)
    kl = (reference.exp() * (reference - logprobs)).sum(-1)  # (B, n)
    same = reference.argmax(-1) == logprobs.argmax(-1)  # (B, n)
    return WindowScores(nll.sum(1), kl.double().sum(1), same.long().sum(1), segments)


def _shape(window: Window) -> tuple[int, int]:
    return int(window.ids.shape[0]), window.score_from
