"""Corpus specs: the text that names a corpus (``--prune-corpus``, ``load_corpus``), parsed once.

- ``file:PATH``: a UTF-8 text file (``~`` expands);
- anything else: a registered corpus name (``pruning.data.corpora.CORPORA``: ``wikitext2``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class CorpusSpecError(ValueError):
    """A corpus spec that cannot name a corpus; the message quotes it and says what is allowed."""


@dataclass(frozen=True)
class CorpusSpec:
    """A parsed corpus spec: a registered ``name``, or a ``file`` path as written."""

    name: str = ""
    file: str = ""

    def __str__(self) -> str:
        return f"file:{self.file}" if self.file else self.name

    @property
    def path(self) -> Path:
        """The text file a ``file:`` spec names."""
        return Path(self.file).expanduser()

    def check(self) -> None:
        """``CorpusSpecError`` for a ``file:`` spec whose file does not exist."""
        if self.file and not self.path.is_file():
            raise CorpusSpecError(
                f"corpus file {str(self.path)!r} does not exist; expected file:PATH of a UTF-8 text file"
            )


def parse_corpus_spec(text: str | CorpusSpec) -> CorpusSpec:
    """The spec ``text`` means; a ``CorpusSpec`` is returned as is. ``CorpusSpecError`` quoting an
    empty name or path."""
    if isinstance(text, CorpusSpec):
        return text
    spec = text.strip()
    if spec.startswith("file:") and spec.removeprefix("file:"):
        return CorpusSpec(file=spec.removeprefix("file:"))
    if not spec or spec.startswith("file:"):
        raise CorpusSpecError(f"invalid corpus {text!r}; expected a corpus name (wikitext2) or file:PATH")
    return CorpusSpec(name=spec)
