from __future__ import annotations

import hashlib

import pytest

from pruning import load_corpus
from pruning.data.corpora import CorpusError

WIKI_TEST_SHA = "bbf94c53a05abe9ee670d3b6343608095822c85e26de37c70b24fc571964574a"
WIKI_VALID_SHA = "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8"


def test_wikitext2_test_split_from_the_data_dir(data_dir, monkeypatch):
    monkeypatch.delenv("PRUNING_DATA_DIR", raising=False)
    corpus = load_corpus("wikitext2", split="test", data_dir=data_dir)
    assert corpus.sha256 == WIKI_TEST_SHA  # the README's checksum of the file
    assert corpus.source.endswith("wikitext-2/wiki.test.raw") and corpus.name == "wikitext2"


def test_wikitext2_validation_from_the_environment(data_dir, monkeypatch):
    monkeypatch.setenv("PRUNING_DATA_DIR", str(data_dir))
    corpus = load_corpus("wikitext2", split="validation")
    assert corpus.sha256 == WIKI_VALID_SHA and corpus.split == "validation"


def test_missing_wikitext_falls_back_to_the_embedded_corpus_with_a_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PRUNING_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    corpus = load_corpus("wikitext2")
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and "wikitext2/test not found" in notice[0] and "pydoc" in notice[0]
    assert str(tmp_path) in notice[0]
    assert corpus.name == "pydoc-topics" and len(corpus.text) > 100_000
    assert corpus.sha256 == hashlib.sha256(corpus.text.encode()).hexdigest()


def test_file_corpus(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("héllo wörld\n", encoding="utf-8")
    corpus = load_corpus(f"file:{path}")
    assert corpus.text == "héllo wörld\n" and corpus.source == f"file:{path.resolve()}"


@pytest.mark.parametrize(
    ("name", "split", "message"),
    [
        (
            "wikitext3",
            "test",
            r"unknown corpus 'wikitext3'; expected one of wikitext2; did you mean 'wikitext2'\?",
        ),
        ("wikitext2", "train", r"unknown split 'train'; expected one of test, validation"),
        ("file:/nonexistent/x.txt", "test", r"corpus file '/nonexistent/x.txt' does not exist"),
    ],
)
def test_bad_corpus_names_list_the_choices(name, split, message):
    with pytest.raises(CorpusError, match=message):
        load_corpus(name, split=split)


def test_non_utf8_file_is_rejected(tmp_path):
    path = tmp_path / "bin.txt"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CorpusError, match="is not UTF-8 text"):
        load_corpus(f"file:{path}")
