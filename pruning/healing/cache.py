"""What healing fitted, on disk: a rerun with the same settings reuses it, an interrupted run
heals only the variants that had not finished.

Layout: ``<root>/heal/<key>/tensors.safetensors`` (the fitted maps or LoRA adapter, small) and
``meta.json`` (method, settings, seconds, losses, and the sha256 of the tensors file). The key
(``heal_key``) is the sha256 of the run key (model, weights, protocol...), the removed blocks,
the method, its settings and the calibration windows' token ids: change any of them and the
entry is not found. Each entry is written whole in a staged directory or not at all; a
corrupt or mismatched entry reads as absent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pruning.common.digest import digest_json
from pruning.data.windows import Window
from pruning.models.saving import staged_directory

TENSORS = "tensors.safetensors"
META = "meta.json"


def heal_key(
    run_key: str, drop: Sequence[int], method: str, settings: Mapping[str, Any], windows: Sequence[Window]
) -> str:
    """sha256 of everything that determines a healing result."""
    calib = hashlib.sha256()
    for window in windows:
        calib.update(window.ids.cpu().numpy().astype("int64").tobytes() + b"|")
    what = {
        "run": run_key,
        "drop": list(drop),
        "method": method,
        "settings": dict(settings),
        "calib": calib.hexdigest(),
    }
    return digest_json(what)


@dataclass(frozen=True)
class HealCache:
    """Healing results under ``root`` (the results store's directory)."""

    root: Path

    def get(self, key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The tensors and meta of ``key``, or None when absent or corrupt."""
        where = self.root / "heal" / key
        try:
            meta = json.loads((where / META).read_text(encoding="utf-8"))
            data = (where / TENSORS).read_bytes()
            if meta["tensors_sha256"] != hashlib.sha256(data).hexdigest():
                return None
            return load_file(str(where / TENSORS)), meta
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
        """Store an entry whole (replacing an older one only once the new one is complete)."""
        with staged_directory(self.root / "heal" / key) as stage:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(stage / TENSORS))
            digest = hashlib.sha256((stage / TENSORS).read_bytes()).hexdigest()
            (stage / META).write_text(
                json.dumps({**meta, "tensors_sha256": digest}, indent=2), encoding="utf-8"
            )
