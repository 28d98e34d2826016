"""Model specs: the text that names a model (``--prune-model``, ``load_model``), parsed once.

- ``gguf:PATH``: a local GGUF file (``~`` expands);
- ``random:NAME``: an architecture of ``pruning.models.architectures`` with seeded random weights;
- anything else (``name``): an offline pretrained name (``smollm2-135m``, ``gemma3-270m``), a
  local model directory, or a Hugging Face hub id; ``pruning.models.loading`` tells them apart.

This module imports neither torch nor transformers: the plugin parses the option with it at
start, for every pytest run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PREFIXES = ("gguf", "random")  # kinds written as a prefix; anything else is a ``name``
OFFLINE_SPECS = ("smollm2-135m", "gemma3-270m", "gguf:PATH", "random:NAME")


class ModelSpecError(ValueError):
    """A model spec that cannot name a model; the message quotes it and says what is allowed."""


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: its kind (one of ``PREFIXES``, or ``name``) and target (the GGUF path
    as written, the architecture name, or the name / directory / hub id)."""

    kind: str
    target: str

    def __str__(self) -> str:
        return self.target if self.kind == "name" else f"{self.kind}:{self.target}"

    @property
    def path(self) -> Path:
        """The local path the target names (a GGUF file, or a model directory)."""
        return Path(self.target).expanduser()

    def check(self) -> None:
        """``ModelSpecError`` for a spec that cannot load whatever the network: a GGUF file that
        does not exist, or an unknown random architecture."""
        if self.kind == "gguf" and not self.path.is_file():
            raise ModelSpecError(f"GGUF file {str(self.path)!r} does not exist")
        if self.kind == "random":
            from pruning.models.architectures import ARCHITECTURES  # imports transformers: only here

            if self.target not in ARCHITECTURES:
                raise ModelSpecError(ARCHITECTURES.unknown_message(self.target))


def parse_model_spec(text: str | ModelSpec) -> ModelSpec:
    """The spec ``text`` means; a ``ModelSpec`` is returned as is. ``ModelSpecError`` quoting an
    empty spec or an empty ``gguf:`` / ``random:`` target."""
    if isinstance(text, ModelSpec):
        return text
    spec = text.strip()
    kind, sep, target = spec.partition(":")
    if sep and kind in PREFIXES:
        if not target:
            what = "PATH" if kind == "gguf" else "NAME"
            raise ModelSpecError(f"invalid model spec {text!r}; expected {kind}:{what}")
        return ModelSpec(kind, target)
    if not spec:
        raise ModelSpecError(
            f"invalid model spec {text!r}; expected {', '.join(OFFLINE_SPECS)}, a hub id or a directory"
        )
    return ModelSpec("name", spec)
