"""Shared test fixtures: a small text corpus and the WikiText-2 data directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pruning.data.corpora import Corpus, load_corpus
from pruning.data.windows import EvalProtocol
from pruning.engine.options import EngineOptions
from pruning.metrics.speed import SpeedSettings
from pruning.reporting.gates import Thresholds
from pruning.study.plan import parse_plan
from pruning.study.settings import ModelSettings, Settings

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


@pytest.fixture
def wikitext_study_settings(data_dir, monkeypatch, engine_options) -> Settings:
    """Settings of a study on tiny GPT-2 with WikiText-2 (test for evaluation, validation for
    calibration), 256 evaluation tokens in windows of 64; tests ``replace`` what they vary."""
    monkeypatch.setenv("PRUNING_DATA_DIR", str(data_dir))
    return Settings(
        model=ModelSettings("random:tiny-gpt2"),
        corpus="wikitext2",
        protocol=EvalProtocol("windows", 64, 256),
        plan=parse_plan("sequential"),
        max_variants=100,
        engine=engine_options,
        speed=SpeedSettings(),
        thresholds=Thresholds(),
    )
