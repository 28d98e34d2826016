"""One content digest for JSON-able values, used for every key and checksum written to disk."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

JSON = Mapping[str, object] | Sequence[object] | str | int | float | bool | None


def digest_json(value: JSON) -> str:
    """Hex sha256 of ``json.dumps(value, sort_keys=True)`` (default separators, ASCII escapes):
    equal for equal values whatever their key order. Store keys and healing keys depend on these
    exact bytes, so changing them invalidates every store."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
