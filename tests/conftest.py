"""Shared test fixtures: a small text corpus and the WikiText-2 data directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pruning.data.corpora import Corpus, load_corpus
from pruning.engine.options import EngineOptions

pytest_plugins = ["pytester"]

DATA_DIR = Path(os.environ.get("PRUNING_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "wikitext-2" / "wiki.test.raw").is_file():
        pytest.fail(f"WikiText-2 not found under {DATA_DIR}; set PRUNING_DATA_DIR")
    return DATA_DIR


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Corpus:
    """The first 6 KB of WikiText-2 test as a file: fast to tokenize, real English."""
    text = (data_dir / "wikitext-2" / "wiki.test.raw").read_text(encoding="utf-8")[:6000]
    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    path.write_text(text, encoding="utf-8")
    return load_corpus(f"file:{path}")


@pytest.fixture
def engine_options() -> EngineOptions:
    """The engine's default options, without a progress bar (tests assert on output)."""
    return EngineOptions(progress=False)
