"""Scoring logits against targets: NLL sums, and fidelity to a reference model.

Definitions (all per window, over the scored positions only):
- NLL: -log softmax(logits)[target] = logsumexp(logits) - logit[target], accumulated in float64;
- KL: KL(reference || model) = sum_v p_ref(v) * (log p_ref(v) - log p_model(v)) at each
  position, summed (divide by the scored-token count for the mean);
- top-1 agreement: how many positions have the reference's top token (its argmax) as a top token
  of the model too (its logit is the row maximum; at an exact tie for the maximum any tied token
  agrees, where comparing argmaxes would take the first).
Scoring runs in float32 even for bf16 models, so low-precision logits are not rounded twice.

Every score is computed a vocabulary chunk at a time (``VOCAB_CHUNK`` entries): each chunk's
log-sum-exp, maximum, target logit and dot product with the reference's probabilities, combined
across chunks. Logits that already exist are scored in slices; for a plain linear head
(``plain_head``) the chunks come from the head itself (``score_hidden``), so the whole (n, V)
logits never exist: both give the same numbers up to float rounding in the last bits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from pruning.data.windows import Window
from pruning.metrics.sums import WindowSums

VOCAB_CHUNK = 2048
"""Vocabulary entries per scoring pass (and per head product, ``score_hidden``). A (511, 2048)
float32 chunk is 4 MB and stays in cache while it is scored, where SmolLM2's whole (511, 49152)
logits are 100 MB that every pass streams from memory, so chunked scoring is the faster one on
a CPU (the measurement is in ``docs/measurement.md``)."""

SCORING = "vocabulary chunks, log-sum-exp combined"
"""How NLL and KL are computed, for the results store's key: sums from the earlier whole-row
``log_softmax`` are never reused (on one SmolLM2 window, drop[14], against float64: its NLL
5.2e-6 and its KL 1.6e-3 relative low; these 1.5e-8 and 1.8e-5)."""

Chunks = Iterator[torch.Tensor]  # float32 logits (B, n, c) of consecutive vocabulary ranges


@dataclass(frozen=True)
class BatchScores:
    """Per-window sums of one window batch as tensors: NLL, and KL / top-1 given a reference."""

    nll: torch.Tensor  # (B,) float64
    kl: torch.Tensor | None  # (B,) float64
    top1: torch.Tensor | None  # (B,) int64

    def windows(self, tokens: Sequence[int]) -> list[WindowSums]:
        """One ``WindowSums`` per window of the batch; ``tokens``: each window's scored count."""
        if self.kl is None or self.top1 is None:
            raise ValueError("per-window sums need KL and top-1: score against a reference")
        rows = zip(self.nll.tolist(), self.kl.tolist(), self.top1.tolist(), tokens, strict=True)
        return [WindowSums(float(n), float(k), int(t), int(c)) for n, k, t, c in rows]


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


def scored_logits(model: nn.Module, ids: torch.Tensor, score_from: int) -> torch.Tensor:
    """float32 logits (B, T-score_from, V) that predict ``ids[:, score_from:]``.

    Only the positions that are scored go through the LM head (``logits_to_keep``).
    """
    return scored_outputs(model, ids, score_from).float()


def scored_outputs(model: nn.Module, ids: torch.Tensor, score_from: int) -> torch.Tensor:
    """``scored_logits`` in the model's dtype; for a model whose head is an identity
    (``pruning.engine.runners.pass_through_head``) its final hidden states (B, T-score_from, C)."""
    keep = ids.shape[1] - score_from + 1  # positions score_from-1 .. T-1; the last predicts nothing
    out = model(input_ids=ids, use_cache=False, logits_to_keep=keep)
    outputs: torch.Tensor = out.logits[:, :-1]
    return outputs


@dataclass(frozen=True)
class Head:
    """An LM head that is a plain linear map, nothing after it: logits = h @ weight.T + bias."""

    weight: torch.Tensor  # (V, C)
    bias: torch.Tensor | None  # (V,)

    def chunks(self, hidden: torch.Tensor, size: int) -> Chunks:
        """float32 logits of ``hidden`` (B, n, C), ``size`` vocabulary entries at a time."""
        for lo in range(0, int(self.weight.shape[0]), size):
            bias = None if self.bias is None else self.bias[lo : lo + size]
            yield F.linear(hidden, self.weight[lo : lo + size], bias).float()  # (B, n, c)


def plain_head(model: nn.Module, ids: torch.Tensor) -> Head | None:
    """The model's head as a ``Head`` when its logits on ``ids`` (B, T) are exactly the head's
    output; None when something follows the head (soft-capping, a logit scale), it is no
    ``nn.Linear``, or accelerate places it (``_hf_hook``: its weight may be offloaded, or on
    another device than the hidden states): such a model's logits come from its own forward."""
    head = cast(Any, model).get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    linear = linear_head(head)
    if head is None or linear is None:
        return None
    seen: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, _a, out: seen.append(out))
    try:
        with torch.inference_mode():
            logits = model(input_ids=ids, use_cache=False).logits
    finally:
        hook.remove()
    return linear if len(seen) == 1 and torch.equal(seen[0], logits) else None


def linear_head(module: nn.Module | None) -> Head | None:
    """``module`` as a ``Head`` if it is an ``nn.Linear`` whose weight is at hand: not placed by
    accelerate (``_hf_hook``: offloaded, or on another device than the hidden states)."""
    if not isinstance(module, nn.Linear) or hasattr(module, "_hf_hook") or module.weight.is_meta:
        return None
    return Head(module.weight, module.bias)


@dataclass(frozen=True)
class Reference:
    """The reference model's next-token distributions, prepared once per window batch."""

    probs: tuple[torch.Tensor, ...]  # p_ref per vocabulary chunk, each (B, n, c) contiguous
    neg_entropy: torch.Tensor  # (B, n) float64: sum_v p_ref log p_ref
    argmax: torch.Tensor  # (B, n)


def make_reference(logits: torch.Tensor) -> Reference:
    """Prepare the reference distributions from its float32 logits (B, n, V)."""
    lse = _logsumexp(_slices(logits, VOCAB_CHUNK))[..., None]  # (B, n, 1)
    logprobs = [z - lse for z in _slices(logits, VOCAB_CHUNK)]  # (B, n, c) each
    probs = tuple(lp.exp() for lp in logprobs)
    parts = zip(probs, logprobs, strict=True)
    neg_entropy = torch.stack([_rowdot(p, lp).double() for p, lp in parts]).sum(0)  # (B, n)
    return Reference(probs, neg_entropy, logits.argmax(-1))


def score(logits: torch.Tensor, targets: torch.Tensor, reference: Reference | None) -> BatchScores:
    """Sums per window of NLL, and of KL / top-1 against ``reference`` if given; ``logits``
    (B, n, V) float32, ``targets`` (B, n)."""
    return _sums(*_positions(_slices(logits, _width(reference)), targets, reference))


def score_hidden(
    hidden: torch.Tensor, head: Head, targets: torch.Tensor, reference: Reference | None
) -> BatchScores:
    """``score`` of the logits ``head`` gives ``hidden`` (B, n, C), computed a vocabulary chunk at
    a time: the (B, n, V) logits never exist."""
    return _sums(*_positions(head.chunks(hidden, _width(reference)), targets, reference))


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """NLL per position in float64: logits (..., n, V) -> (..., n)."""
    flat = logits.float().reshape(-1, *logits.shape[-2:])  # (B, n, V)
    nll = _positions(_slices(flat, VOCAB_CHUNK), targets.reshape(flat.shape[:-1]), None)[0]
    return nll.reshape(targets.shape)


def hidden_nll(hidden: torch.Tensor, head: Head, targets: torch.Tensor) -> torch.Tensor:
    """``token_nll`` of the logits ``head`` gives ``hidden`` (n, C): (n,) float64."""
    return _positions(head.chunks(hidden[None], VOCAB_CHUNK), targets[None], None)[0][0]


def self_scores(logits: torch.Tensor, targets: torch.Tensor) -> BatchScores:
    """Scores of the reference against itself: KL exactly 0 and top-1 agreement exactly 1."""
    plain = score(logits, targets, None)
    batch, n = targets.shape
    zeros = torch.zeros(batch, dtype=torch.float64)
    return BatchScores(plain.nll, zeros, torch.full((batch,), n, dtype=torch.long))


Positions = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]  # (B, n) NLL, KL, top-1 hit


def _positions(chunks: Chunks, targets: torch.Tensor, reference: Reference | None) -> Positions:
    """Per-position NLL, and KL / top-1 hit against ``reference``, from consecutive vocabulary
    chunks of the logits.

    Each chunk contributes its log-sum-exp, its row maximum, the target's and the reference
    token's logit where they fall in it, and sum_v p_ref * logit over it; with lse the combined
    log-sum-exp: NLL = lse - logit[target]; KL = sum p_ref log p_ref - (sum p_ref logit - lse),
    because sum_v p_ref = 1.
    """
    lses: list[torch.Tensor] = []
    maxes: list[torch.Tensor] = []
    device = targets.device
    target = torch.zeros(targets.shape, device=device)  # (B, n) the target's logit
    mine = torch.zeros(targets.shape, device=device)  # (B, n) the logit of the reference's top token
    cross = torch.zeros(targets.shape, dtype=torch.float64, device=device)  # (B, n) sum_v p_ref * logit
    lo = 0
    for j, z in enumerate(chunks):  # (B, n, c)
        width = int(z.shape[-1])
        lses.append(torch.logsumexp(z, dim=-1))
        _pick(z, targets, lo, target)
        if reference is not None:
            maxes.append(z.amax(-1))
            _pick(z, reference.argmax, lo, mine)
            cross += _rowdot(reference.probs[j], z).double()
        lo += width
    lse = torch.logsumexp(torch.stack(lses), dim=0)  # (B, n): the chunks' log-sum-exps combined
    nll = (lse - target).double()
    if reference is None:
        return nll, None, None
    kl = reference.neg_entropy - (cross - lse.double())
    return nll, kl, mine == torch.stack(maxes).amax(0)


def _logsumexp(chunks: Chunks) -> torch.Tensor:
    """log sum_v exp(logit) per row, (B, n), combined from each chunk's own. Against float64 on
    one SmolLM2 window, NLL sums from these were 1.5e-8 relative off; from ``F.log_softmax`` over
    the whole 49,152-entry rows, 5.2e-6 low (the sign every time)."""
    return torch.logsumexp(torch.stack([torch.logsumexp(z, dim=-1) for z in chunks]), dim=0)


def _slices(logits: torch.Tensor, width: int) -> Chunks:
    """Views of ``logits`` (..., V) over consecutive vocabulary ranges of ``width`` entries."""
    for lo in range(0, int(logits.shape[-1]), width):
        yield logits[..., lo : lo + width]


def _width(reference: Reference | None) -> int:
    """The chunk width: the reference's (its probabilities are kept in chunks), else ``VOCAB_CHUNK``."""
    return VOCAB_CHUNK if reference is None else int(reference.probs[0].shape[-1])


def _pick(z: torch.Tensor, tokens: torch.Tensor, lo: int, out: torch.Tensor) -> None:
    """Write into ``out`` (B, n) the logit of ``tokens`` (B, n) where it falls in the chunk ``z``
    (B, n, c) that starts at vocabulary entry ``lo``."""
    local = tokens - lo
    inside = (local >= 0) & (local < z.shape[-1])
    got = z.gather(-1, local.clamp(0, z.shape[-1] - 1).unsqueeze(-1)).squeeze(-1)
    out.copy_(torch.where(inside, got, out))


def _sums(nll: torch.Tensor, kl: torch.Tensor | None, same: torch.Tensor | None) -> BatchScores:
    top1 = None if same is None else same.long().sum(1)
    return BatchScores(nll.sum(1), None if kl is None else kl.sum(1), top1)


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise dot products over the last dim, (B, n, c) x (B, n, c) -> (B, n).

    einsum runs this as a batched matrix product, several times faster on CPU than
    ``(a * b).sum(-1)`` or ``torch.linalg.vecdot``, which materialise the product.
    """
    return torch.einsum("bnv,bnv->bn", a, b)


def _shape(window: Window) -> tuple[int, int]:
    return int(window.ids.shape[0]), window.score_from
