"""The one-line fingerprint a results page quotes from its ``results.json``.

A published study (``docs/results/<study>/README.md``) names what produced its numbers: model and
weights, corpus, protocol, machine, library versions and the code's commit. The line is written
from the report's own ``results.json`` (``python -m pruning.reporting.provenance DIR``), and a test
holds every page's line equal to it, so a page cannot describe a run other than its report's.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path


def fingerprint_line(fp: Mapping[str, object]) -> str:
    """``results.json``'s ``fingerprint`` as one Markdown line."""
    bos = "none" if fp.get("bos") is None else f"id {fp['bos']}"
    threads = f"{fp.get('threads')} torch threads"
    machine = f"{fp.get('cpu')}, {fp.get('cores')} cores, {threads}, {fp.get('kernels')}"
    weights, text = str(fp["weights_sha256"])[:12], str(fp["corpus_sha256"])[:12]
    return (
        f"**Fingerprint:** model `{fp['model']}` (weights sha256 `{weights}`), "
        f"{fp['dtype']} on {fp.get('device')}; corpus `{fp['corpus']}` (sha256 `{text}`); "
        f"protocol `{fp['protocol']}`, ctx {fp['ctx']}, eval tokens {fp['eval_tokens']}, BOS {bos}; "
        f"scoring: {fp.get('scoring')}; machine: {machine}; torch {fp['torch']}, "
        f"transformers {fp['transformers']}; pruning-kit commit `{fp.get('commit')}`."
    )


def report_fingerprint_line(directory: Path) -> str:
    """The fingerprint line of the report in ``directory`` (its ``results.json``)."""
    meta = json.loads((directory / "results.json").read_text(encoding="utf-8"))
    return fingerprint_line(meta["fingerprint"])


if __name__ == "__main__":
    print(report_fingerprint_line(Path(sys.argv[1])))
