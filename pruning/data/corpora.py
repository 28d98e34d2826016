"""Text corpora by name, each with its source and sha256.

- ``wikitext2`` (splits ``test`` for evaluation, ``validation`` for calibration), looked up
  in this order:
  1. ``data_dir`` or ``$PRUNING_DATA_DIR``: ``wikitext-2/wiki.test.raw`` (test) and
     ``wikitext-2/wiki.valid.tokens`` (validation);
  2. the Hugging Face ``datasets`` cache or hub (``wikitext``, ``wikitext-2-raw-v1`` for test,
     ``wikitext-2-v1`` for validation), non-empty rows joined as in the local files;
  3. an embedded English corpus that needs no download: the CPython documentation topics in
     ``pydoc_data.topics``, with a one-line notice on stderr saying so and why.
- ``file:PATH``: any UTF-8 text file.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pruning.common.hub import hub_reachable
from pruning.common.registry import Registry
from pruning.data.specs import CorpusSpec, parse_corpus_spec

SPLITS = ("test", "validation")
_LOCAL_FILES = {"test": "wiki.test.raw", "validation": "wiki.valid.tokens"}
_HF_CONFIGS = {"test": "wikitext-2-raw-v1", "validation": "wikitext-2-v1"}


@dataclass(frozen=True)
class Corpus:
    """A text with its provenance; ``sha256`` is of the UTF-8 text."""

    name: str
    split: str
    text: str
    source: str
    sha256: str

    def describe(self) -> dict[str, str]:
        """Provenance without the text, for reports and fingerprints."""
        return {"name": self.name, "split": self.split, "source": self.source, "sha256": self.sha256}


class CorpusError(ValueError):
    """A corpus name, split or file that cannot be used."""


CORPORA: Registry[Callable[[str, Path | None], Corpus]] = Registry("corpus")


def load_corpus(name: str | CorpusSpec, split: str = "test", data_dir: str | Path | None = None) -> Corpus:
    """Load corpus ``name`` (a registered name or ``file:PATH``, ``pruning.data.specs``) for ``split``."""
    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    try:
        spec = parse_corpus_spec(name)
    except ValueError as exc:
        raise CorpusError(str(exc)) from None
    if spec.file:
        return _load_file(spec.path, str(spec), split)
    if spec.name not in CORPORA:
        raise CorpusError(CORPORA.unknown_message(spec.name) + " (or file:PATH)")
    return CORPORA.get(spec.name)(split, Path(data_dir) if data_dir is not None else None)


def make_corpus(name: str, split: str, text: str, source: str) -> Corpus:
    """A ``Corpus`` with its sha256 computed from ``text``."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Corpus(name, split, text, source, digest)


def _load_file(path: Path, name: str, split: str) -> Corpus:
    if not path.is_file():
        raise CorpusError(f"corpus file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"corpus file {str(path)!r} is not UTF-8 text: {exc}") from None
    return make_corpus(name, split, text, f"file:{path.resolve()}")


@CORPORA.register("wikitext2")
def _wikitext2(split: str, data_dir: Path | None) -> Corpus:
    env_dir = os.environ.get("PRUNING_DATA_DIR")
    root = data_dir or (Path(env_dir) if env_dir else None)
    if root is not None:
        path = root.expanduser() / "wikitext-2" / _LOCAL_FILES[split]
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            return make_corpus("wikitext2", split, text, f"file:{path.resolve()}")
        reason = f"{path} does not exist"
    else:
        reason = "no data directory given (argument or PRUNING_DATA_DIR)"
    hf_text, why_not = _wikitext2_from_datasets(split)
    if hf_text is not None:
        return make_corpus("wikitext2", split, hf_text, f"hf-datasets:wikitext/{_HF_CONFIGS[split]}")
    return _fallback(split, f"{reason}; {why_not}")


def _wikitext2_from_datasets(split: str) -> tuple[str | None, str]:
    try:
        import datasets
    except ImportError:
        return None, "the 'datasets' package is not installed"
    offline = os.environ.get("HF_DATASETS_OFFLINE", "0") not in ("", "0") or not hub_reachable()
    if offline:  # only the local cache can answer; never wait on a dead network
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    # datasets reads that variable once, when first imported (lm-eval may have imported it): its
    # config flag says offline for this call too, or it retries the network for about 20 s.
    was = datasets.config.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = was or offline
    try:
        rows = datasets.load_dataset("wikitext", _HF_CONFIGS[split], split=split)["text"]
    except Exception as exc:  # datasets raises many types for "not cached / not reachable"
        return None, f"Hugging Face datasets could not load it ({type(exc).__name__})"
    finally:
        datasets.config.HF_HUB_OFFLINE = was
    # The local files hold the non-empty rows, one per line; build the same text.
    return "".join(row if row.endswith("\n") else row + "\n" for row in rows if row), ""


FALLBACK_SOURCE = "embedded:"  # the source of the fallback corpus starts with it: not what was asked


def _fallback(split: str, why: str) -> Corpus:
    from pydoc_data import topics

    text = "\n\n".join(topics.topics[key] for key in sorted(topics.topics))
    version = ".".join(map(str, sys.version_info[:3]))
    sys.stderr.write(
        f"pruning-kit: wikitext2/{split} not found ({why}); "
        f"using the embedded corpus pydoc_data.topics (CPython {version} documentation) instead\n"
    )
    source = f"{FALLBACK_SOURCE}pydoc_data.topics (CPython {version})"
    return make_corpus("pydoc-topics", split, text, source)
