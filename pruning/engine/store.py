"""The results store: every finished (variant, window) result on disk, so nothing is lost.

Layout: ``<root>/<run key>/<variant id>/<window index>.json``. The run key is the sha256 of
the run fingerprint's store key (``pruning.metrics.fingerprint``); each
entry also records the sha256 of its window's token ids and of its own payload. A missing,
partial, corrupt or mismatched entry reads as absent and is recomputed, never trusted.
Writes go to a temporary file that is renamed into place, so a killed process leaves either
the whole entry or none of it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pruning.common.digest import digest_json
from pruning.common.files import atomic_write
from pruning.data.windows import Window
from pruning.metrics.fingerprint import RunFingerprint
from pruning.metrics.sums import WindowSums
from pruning.models.variant import Variant


def run_key(fingerprint: RunFingerprint) -> str:
    """sha256 of what determines every window's numbers (sorted JSON of its ``store_key()``)."""
    return digest_json(fingerprint.store_key())


def window_digest(window: Window) -> str:
    """sha256 of a window's token ids and scored range."""
    data = f"{window.score_from}|" + ",".join(map(str, window.ids.tolist()))
    return hashlib.sha256(data.encode()).hexdigest()


@dataclass(frozen=True)
class Store:
    """A results store rooted at ``root`` for one run key."""

    root: Path
    key: str

    def _path(self, variant: Variant, index: int) -> Path:
        return self.root / self.key / variant.id / f"{index}.json"

    def get(self, variant: Variant, index: int, window: Window) -> WindowSums | None:
        """The stored entry, or None when absent, corrupt or for another window."""
        try:
            record = json.loads(self._path(variant, index).read_text(encoding="utf-8"))
            payload = record["payload"]
            if record["sha256"] != digest_json(payload) or payload["window"] != window_digest(window):
                return None
            return WindowSums(
                float(payload["nll"]), float(payload["kl"]), int(payload["top1"]), int(payload["tokens"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, variant: Variant, index: int, window: Window, entry: WindowSums) -> None:
        """Store ``entry`` atomically."""
        payload = {
            "window": window_digest(window),
            "nll": entry.nll,
            "kl": entry.kl,
            "top1": entry.top1,
            "tokens": entry.tokens,
        }
        path = self._path(variant, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"payload": payload, "sha256": digest_json(payload)}))
