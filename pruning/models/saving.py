"""Saving a model as a stock Hugging Face directory: whole, checked, or not at all.

``staged_directory`` writes into a temporary sibling and renames it into place only when
everything was written, so an interrupted save never leaves a directory that looks complete;
an existing directory is replaced only after the new one is whole. ``check_reload`` proves the
written directory is the model: stock ``AutoModelForCausalLM`` loads it and gives the same
logits, or the save is refused (a config that cannot express the model).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel

RELOAD_RTOL = 1e-5  # reloaded logits must match the in-memory model's this closely


class ExportError(RuntimeError):
    """A model that cannot be written as a stock directory that reloads to the same model."""


def save_plain(model: PreTrainedModel, directory: Path) -> None:
    """``save_pretrained`` (safetensors), also for a model loaded from GGUF: its weights are
    plain tensors, but transformers keeps the GGUF quantizer on it and refuses to save; it is
    detached meanwhile."""
    quantizer = getattr(model, "hf_quantizer", None)
    config = model.config
    quantization = getattr(config, "quantization_config", None)
    try:
        setattr(model, "hf_quantizer", None)  # noqa: B010  (typed as a module attribute upstream)
        if quantization is not None:
            del config.quantization_config
        model.save_pretrained(directory)
    finally:
        setattr(model, "hf_quantizer", quantizer)  # noqa: B010
        if quantization is not None:
            config.quantization_config = quantization


@contextmanager
def staged_directory(target: Path, replace: bool = True) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``target``; on success it becomes ``target``.

    On any exception the temporary directory is removed and ``target`` is left as it was. With
    ``replace=False`` an existing ``target`` is kept and ``OSError`` raised (a cache that another
    process filled first: readers may be using it).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial."))
    try:
        yield stage
        old = None
        if replace and target.exists():  # keep the previous directory until the new one is in place
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
            os.replace(target, old / "dir")
        os.replace(stage, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def check_reload(model: PreTrainedModel, directory: Path, probe: torch.Tensor) -> None:
    """Stock transformers loads ``directory`` and gives ``model``'s logits on ``probe`` (1, T)."""
    reloaded: nn.Module = AutoModelForCausalLM.from_pretrained(directory, dtype=model.dtype)
    reloaded.eval()
    with torch.inference_mode():
        want = model(input_ids=probe.to(model.device), use_cache=False).logits.float().cpu()
        got = reloaded(input_ids=probe.cpu(), use_cache=False).logits.float()
    if got.shape != want.shape or not torch.allclose(got, want, rtol=RELOAD_RTOL, atol=RELOAD_RTOL):
        worst = (got - want).abs().max().item() if got.shape == want.shape else float("nan")
        raise ExportError(
            f"{type(model).__name__}: the saved directory reloads with stock transformers to a "
            f"different model (max logit difference {worst:.3g}); its config cannot express this "
            f"pruned model, so it was not written"
        )
