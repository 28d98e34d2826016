"""Write WikiText-2 as the local files the suite reads, from the Hugging Face hub.

    python scripts/fetch_wikitext.py DIR      # then: export PRUNING_DATA_DIR=DIR

For machines with internet but without the project's copy of the data (the workflow's weekly
job): the library's own loader reads the hub (``pruning.data.corpora``), and each split is
written only if its sha256 is the published one, so the tests read the very text they were
verified on. Offline it fails at once, naming the reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pruning.data.corpora import FALLBACK_SOURCE, load_corpus

# The local files' digests (test: the non-empty rows of wikitext-2-raw-v1; validation: those of
# the tokenized wikitext-2-v1), as published with the project's copy.
FILES = {
    "test": ("wiki.test.raw", "bbf94c53a05abe9ee670d3b6343608095822c85e26de37c70b24fc571964574a"),
    "validation": ("wiki.valid.tokens", "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8"),
}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: python scripts/fetch_wikitext.py DIR; got {' '.join(argv)!r}", file=sys.stderr)
        return 2
    folder = Path(argv[0]) / "wikitext-2"
    folder.mkdir(parents=True, exist_ok=True)
    for split, (name, sha256) in FILES.items():
        corpus = load_corpus("wikitext2", split, data_dir=folder.parent)
        if corpus.source.startswith(FALLBACK_SOURCE) or corpus.sha256 != sha256:
            print(
                f"wikitext2/{split} from {corpus.source} has sha256 {corpus.sha256}; expected {sha256}",
                file=sys.stderr,
            )
            return 1
        (folder / name).write_text(corpus.text, encoding="utf-8")
        print(f"wrote {folder / name} ({len(corpus.text):,} characters, sha256 {sha256[:12]}…)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
