"""``lora`` healing: a peft LoRA adapter on every linear layer of the kept blocks, trained briefly
on calibration text and merged into the weights, so healing costs no latency and no parameters.

Training: ``steps`` AdamW steps of one calibration window each (cycling through the windows),
learning rate ``lr`` with a cosine decay to 0, adapter rank ``rank`` and scale alpha/rank,
dropout 0, the model in eval mode (no dropout anywhere: the result depends on the seed only).
Loss per window, averaged over its positions: ``ce`` = next-token cross-entropy on the text,
``kd`` = KL(unpruned || healed) of the next-token distributions (the unpruned model's logits
computed on the fly).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from pruning.common.progress import Bar
from pruning.data.windows import Window
from pruning.healing.settings import LoraSettings

if TYPE_CHECKING:  # peft is imported where an adapter is made: every run imports this module
    from peft import PeftModel


def train_lora(
    base: nn.Module, pruned: nn.Module, windows: Sequence[Window], settings: LoraSettings, bar: Bar
) -> tuple[nn.Module, dict[str, torch.Tensor], list[float]]:
    """Train an adapter on ``pruned`` (an independent copy); the merged model, the adapter, losses."""
    torch.manual_seed(settings.seed)
    model = _wrap(pruned, settings)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    decay = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / settings.steps))
    )
    device = next(base.parameters()).device
    losses = []
    for step in range(settings.steps):
        ids = windows[step % len(windows)].ids[None].to(device)  # (1, T)
        loss = _loss(base, model, ids, settings.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        decay.step()
        losses.append(loss.item())
        bar.set_postfix_str(f"loss {losses[-1]:.4f}")
        bar.update(1)
    from peft import get_peft_model_state_dict

    adapter = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
    return _merge(model), adapter, losses


def apply_lora(pruned: nn.Module, adapter: dict[str, torch.Tensor], settings: LoraSettings) -> nn.Module:
    """Load a trained ``adapter`` (from ``train_lora``) into ``pruned`` and merge it."""
    from peft import set_peft_model_state_dict

    model = _wrap(pruned, settings)
    unexpected = list(getattr(set_peft_model_state_dict(model, adapter), "unexpected_keys", []))
    if unexpected:
        raise ValueError(f"the cached LoRA adapter does not fit this model: {unexpected[:3]}")
    return _merge(model)


def _wrap(pruned: nn.Module, settings: LoraSettings) -> PeftModel:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.rank,
        lora_alpha=int(settings.alpha),
        lora_dropout=0.0,
        target_modules="all-linear",  # every linear layer of the blocks; peft leaves the LM head out
        bias="none",
    )
    pruned.eval()
    model = get_peft_model(pruned, config)
    model.eval()
    return model


def _merge(model: PeftModel) -> nn.Module:
    merged: nn.Module = model.merge_and_unload()
    for p in merged.parameters():
        p.requires_grad_(False)
    merged.eval()
    return merged


def _loss(base: nn.Module, model: nn.Module, ids: torch.Tensor, kind: str) -> torch.Tensor:
    """The mean per-position loss of one window (B=1, T)."""
    logits = model(input_ids=ids, use_cache=False).logits[0, :-1].float()  # (T-1, V)
    if kind == "ce":
        return F.cross_entropy(logits, ids[0, 1:])
    with torch.no_grad():
        teacher = base(input_ids=ids, use_cache=False).logits[0, :-1].float()  # (T-1, V)
    return F.kl_div(
        F.log_softmax(logits, -1), F.log_softmax(teacher, -1), log_target=True, reduction="batchmean"
    )
