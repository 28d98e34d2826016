"""Shared test fixtures: a small text corpus and the WikiText-2 data directory.

``make test`` runs the suite on pytest-xdist workers (``-n 2``); a worker then owns its share of
the CPU cores for torch, and the runs that ``pytester`` starts inside it see no trace of the
outer xdist session (pytest-benchmark reads ``PYTEST_XDIST_WORKER`` and would turn its timing off).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import torch
from zygote import STOCK, Forked, Zygote

from pruning.data.corpora import Corpus, load_corpus
from pruning.data.specs import parse_corpus_spec
from pruning.data.windows import EvalProtocol
from pruning.engine.options import EngineOptions
from pruning.metrics.speed import SpeedSettings
from pruning.models.specs import parse_model_spec
from pruning.results.gates import Thresholds
from pruning.study.plan import parse_plan
from pruning.study.settings import ModelSettings, Settings

# lm-eval imports datasets, which registers pyarrow extension types once per process; pytester's
# in-process runs drop the modules first imported inside them, so import it before any of them.
with contextlib.suppress(ImportError):  # without the tasks extra
    import datasets  # noqa: F401

pytest_plugins = ["pytester"]

DATA_DIR = Path(os.environ.get("PRUNING_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
XDIST_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1:  # workers that each take every core would oversubscribe them
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // WORKERS))


@pytest.fixture(scope="session")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    """New Python processes, forked from one that has imported torch, transformers and pruning
    (``tests/zygote.py``): a test's subprocess starts in 0.1 s instead of about 8."""
    forks = Zygote(tmp_path_factory.mktemp("zygote"))
    yield forks
    forks.close()


@pytest.fixture(scope="session")
def stock_zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    """New processes with torch and transformers imported and no pruning module: a reload by
    stock transformers alone."""
    forks = Zygote(tmp_path_factory.mktemp("stock-zygote"), STOCK)
    yield forks
    forks.close()


@pytest.fixture
def pytester(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, zygote: Zygote
) -> Iterator[pytest.Pytester]:
    """pytest's ``pytester``, its runs free of the outer xdist worker's environment; the torch
    thread count an inner session sets is put back afterwards. ``runpytest_subprocess`` runs
    pytest in a process forked by the zygote (and so do its xdist workers in turn)."""
    for name in XDIST_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(pytester, "popen", _forking_popen(zygote))
    threads = torch.get_num_threads()
    yield pytester
    torch.set_num_threads(threads)


def _forking_popen(zygote: Zygote) -> Callable[..., Forked]:
    """``Pytester.popen`` (what ``runpytest_subprocess`` calls) through the zygote: the same
    environment, with the current folder on ``PYTHONPATH``, and no standard input."""

    def popen(cmdargs: Sequence[str], stdout: object, stderr: object, stdin: object = None) -> Forked:
        env = os.environ.copy()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH", "")]))
        return zygote.popen(
            [os.fspath(a) for a in cmdargs], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env
        )

    return popen


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "wikitext-2" / "wiki.test.raw").is_file():
        pytest.fail(f"WikiText-2 not found under {DATA_DIR}; set PRUNING_DATA_DIR")
    return DATA_DIR


@pytest.fixture(scope="session")
def local_tasks(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A folder of two local lm-eval tasks of 24 examples each, made from WikiText-2 validation
    (``pruning.tasks.local``): a multiple-choice one and a log-likelihood (cloze) one."""
    from pruning.tasks.local import write_local_tasks

    folder = tmp_path_factory.mktemp("tasks")
    write_local_tasks((data_dir / "wikitext-2" / "wiki.valid.tokens").read_text(encoding="utf-8"), folder, 24)
    return folder


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
        model=ModelSettings(parse_model_spec("random:tiny-gpt2")),
        corpus=parse_corpus_spec("wikitext2"),
        protocol=EvalProtocol("windows", 64, 256),
        plan=parse_plan("sequential"),
        max_variants=100,
        engine=engine_options,
        speed=SpeedSettings(),
        thresholds=Thresholds(),
    )
