"""Whether the Hugging Face hub answers: one fast probe, so offline runs fail in seconds."""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlsplit

HUB_HOST = "huggingface.co"


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub opens within ``timeout`` seconds.

    DNS lookups ignore socket timeouts, so the probe runs in a daemon thread that is
    abandoned when it takes too long: offline, loading fails in seconds instead of hanging.
    """
    url = urlsplit(os.environ.get("HF_ENDPOINT") or f"https://{HUB_HOST}")
    host, port = url.hostname or HUB_HOST, url.port or (80 if url.scheme == "http" else 443)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])
