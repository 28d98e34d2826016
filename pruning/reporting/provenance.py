"""The one-line fingerprint a results page quotes from its ``results.json``.

A published study (``docs/results/<study>/README.md``) names what produced its numbers: model and
weights, corpus, protocol, machine, library versions and the code's commit. The line is written
from the report's own ``results.json`` (``python -m pruning.reporting.provenance DIR``), and a test
holds every page's line equal to it, so a page cannot describe a run other than its report's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pruning.metrics.fingerprint import RunFingerprint


def fingerprint_line(fp: RunFingerprint) -> str:
    """A run's fingerprint as one Markdown line."""
    bos = "none" if fp.bos is None else f"id {fp.bos}"
    return (
        f"**Fingerprint:** model `{fp.model}` (weights sha256 `{fp.weights_sha256[:12]}`), "
        f"{fp.dtype} on {fp.device}; corpus `{fp.corpus}` (sha256 `{fp.corpus_sha256[:12]}`); "
        f"protocol `{fp.protocol}`, ctx {fp.ctx}, eval tokens {fp.eval_tokens} (windows {fp.windows}), "
        f"BOS {bos}; "
        f"scoring: {fp.scoring}; machine: {fp.machine.describe()}; torch {fp.torch}, "
        f"transformers {fp.transformers}; pruning-kit commit `{fp.commit}`."
    )


def report_fingerprint_line(directory: Path) -> str:
    """The fingerprint line of the report in ``directory`` (its ``results.json``)."""
    meta = json.loads((directory / "results.json").read_text(encoding="utf-8"))
    return fingerprint_line(RunFingerprint.from_dict(meta["fingerprint"]))


if __name__ == "__main__":
    print(report_fingerprint_line(Path(sys.argv[1])))
