"""Placing a model across devices with accelerate's ``device_map``, for models larger than one device.

``place`` hands placement to accelerate: a policy (``auto``, ``balanced``, ``balanced_low_0``,
``sequential``) is resolved by ``infer_auto_device_map`` under ``max_memory`` (never splitting
a transformer block), or an explicit ``{module: device}`` map is used as given; then
``dispatch_model`` installs the hooks that move hidden states with the blocks. A device may be
``"disk"``: those weights are offloaded to ``offload_dir`` and loaded for each forward pass.
Without an ``offload_dir``, a temporary folder holds them and is deleted when the process exits
(not earlier: pruned copies of the model still read it); a map without ``"disk"`` writes none.
Surgery and the engine work unchanged on a placed model: the blocks keep their hooks, so each
one runs where accelerate put it (tested on CPU with blocks offloaded to disk).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from accelerate import dispatch_model, infer_auto_device_map
from accelerate.utils import get_balanced_memory
from torch import nn

from pruning.models.surgery import find_block_path, get_blocks

POLICIES = ("auto", "balanced", "balanced_low_0", "sequential")
DeviceMap = Mapping[str, int | str]


def place(
    model: nn.Module,
    device_map: str | DeviceMap,
    max_memory: Mapping[int | str, int | str] | None = None,
    offload_dir: Path | None = None,
) -> nn.Module:
    """``model`` dispatched by ``device_map`` (a policy or a module -> device map), in place."""
    resolved = dict(_resolve(model, device_map, max_memory) if isinstance(device_map, str) else device_map)
    if all(device == "disk" for device in resolved.values()):
        raise ValueError(
            f"device map {device_map!r} with max_memory {dict(max_memory or {})!r} puts every module on "
            f"disk; expected room for at least the embeddings on a compute device"
        )
    folder = offload_dir
    if folder is None and "disk" in resolved.values():
        folder = Path(tempfile.mkdtemp(prefix="pruning-offload-"))  # a copy of every offloaded weight
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    placed: nn.Module = dispatch_model(
        model, device_map=resolved, offload_dir=None if folder is None else str(folder)
    )
    return placed


def _resolve(model: nn.Module, policy: str, max_memory: Mapping[int | str, int | str] | None) -> DeviceMap:
    if policy not in POLICIES:
        raise ValueError(f"unknown device map {policy!r}; expected one of {', '.join(POLICIES)}")
    block = [type(get_blocks(model)[0]).__name__]  # a block is never split across devices
    memory = dict(max_memory) if max_memory else None
    if policy != "sequential":
        low_zero = policy == "balanced_low_0"
        memory = get_balanced_memory(
            model, max_memory=memory, no_split_module_classes=block, low_zero=low_zero
        )
    found: DeviceMap = infer_auto_device_map(model, max_memory=memory, no_split_module_classes=block)
    return found


def block_devices(model: nn.Module) -> list[str]:
    """Where accelerate put each block (``disk`` for offloaded ones); empty when not placed."""
    found: Mapping[str, int | str] = getattr(model, "hf_device_map", None) or {}
    if not found:
        return []
    path = find_block_path(model)
    out = []
    for i in range(len(get_blocks(model))):
        key = f"{path}.{i}"  # the block, or the first module above it that accelerate placed whole
        match = [str(v) for k, v in found.items() if key == k or key.startswith(k + ".") or not k]
        out.append(match[0] if match else "?")
    return out
