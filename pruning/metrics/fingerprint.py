"""What makes two runs comparable: one list, used by the results store, the gates and the reports.

Two runs may be compared (a baseline gate) or share stored results only when every field of
``COMPARED`` is equal: the model and its weights, dtype, device, the corpus and its text, and
the protocol with every parameter that changes which tokens are scored (ctx, stride, the BOS
rule, the window selection) and how many (eval tokens). Library versions, the machine, the
scoring method and the code's commit are provenance: a baseline from an older torch, another
machine or the earlier scoring is still comparable (the gates exist to catch what an upgrade
changes; speedups are ratios; the scorings differ by under 2e-5 relative in perplexity), and
the verdict names such a difference; but the results store, a cache of exact sums, keys on the
versions, the processor and kernel path (``pruning.common.machine``: the last digits differ
between machines) and the scoring too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from pruning.common.machine import Machine
from pruning.common.revision import code_commit
from pruning.data.corpora import Corpus
from pruning.data.windows import EvalProtocol
from pruning.metrics.perplexity import bos_if_asked
from pruning.metrics.scoring import SCORING
from pruning.models.loading import LoadedModel

COMPARED = (
    "model",
    "weights_sha256",
    "dtype",
    "device",
    "corpus",
    "corpus_sha256",
    "protocol",
    "ctx",
    "stride",
    "bos",
    "eval_tokens",
    "windows",
)
# What a saved fingerprint written before a key existed meant by its absence: every run read the
# first windows before the selection was a choice.
LEGACY = {"windows": "first"}


@dataclass(frozen=True)
class RunFingerprint:
    """A run's identity (``COMPARED``) and its provenance (versions, corpus source)."""

    model: str
    weights_sha256: str
    dtype: str
    device: str
    corpus: str
    corpus_sha256: str
    protocol: str
    ctx: int
    stride: int | None
    bos: int | None  # the BOS id put before every window, None where the tokenizer adds none
    eval_tokens: int | None
    windows: str  # which windows eval_tokens takes: spread or first (``pruning.data.windows``)
    torch: str
    transformers: str
    corpus_source: str
    cpu: str  # the machine (``pruning.common.machine``): processor or GPU name
    cores: int
    threads: int  # torch's intra-op threads of the process that computed the quality
    kernels: str  # torch's CPU capability (AVX2, AVX512, ...) or the GPU's compute capability
    scoring: str  # how NLL and KL sums are computed (``pruning.metrics.scoring.SCORING``)
    commit: str | None = None  # pruning-kit's git commit (``pruning.common.revision``), None unknown

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (reports, baselines)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunFingerprint:
        """Inverse of ``as_dict`` (a test report's payload); ``KeyError`` when a field is missing
        (but for ``LEGACY`` ones)."""
        known = {**LEGACY, **data}
        return cls(**{f.name: known[f.name] for f in fields(cls)})

    def store_key(self) -> dict[str, Any]:
        """What keys the results store: ``COMPARED``, the library versions, the processor and the
        kernel path (not the threads: one lane of two threads and two lanes of one gave
        bit-identical SmolLM2 sums; ``tests/test_engine.py`` checks lanes on tiny models), and how
        the sums are computed (``scoring``).

        ``eval_tokens`` is left out on purpose: entries are per window (checked by the window's
        token hash), so a run over more tokens reuses the windows a shorter run computed. The
        window selection is kept: a spread and a first run have their own stores.
        """
        data = self.as_dict()
        keyed = {k: data[k] for k in COMPARED if k != "eval_tokens"}
        versions = {"torch": self.torch, "transformers": self.transformers}
        return {**keyed, **versions, "cpu": self.cpu, "kernels": self.kernels, "scoring": self.scoring}

    @property
    def machine(self) -> Machine:
        """The machine the run measured on."""
        return Machine(self.cpu, self.cores, self.threads, self.kernels)


def run_fingerprint(
    lm: LoadedModel, corpus: Corpus, protocol: EvalProtocol, device: str, machine: Machine
) -> RunFingerprint:
    """The fingerprint of evaluating ``lm`` on ``corpus`` under ``protocol`` (with its BOS rule)
    on ``machine``."""
    fp = lm.fingerprint
    return RunFingerprint(
        model=fp.spec,
        weights_sha256=fp.weights_sha256,
        dtype=fp.dtype,
        device=device,
        corpus=corpus.name,
        corpus_sha256=corpus.sha256,
        protocol=protocol.name,
        ctx=protocol.ctx,
        stride=protocol.stride,
        bos=bos_if_asked(lm.tokenizer),
        eval_tokens=protocol.eval_tokens,
        windows=protocol.selection,
        torch=fp.torch,
        transformers=fp.transformers,
        corpus_source=corpus.source,
        cpu=machine.cpu,
        cores=machine.cores,
        threads=machine.threads,
        kernels=machine.kernels,
        scoring=SCORING,
        commit=code_commit(),
    )


def fingerprint_diff(now: RunFingerprint, saved: Mapping[str, object]) -> list[str]:
    """Human-readable differences on ``COMPARED`` (empty when the runs are comparable).

    ``saved`` is a baseline's JSON: a key it lacks (written before the key existed) reads as its
    ``LEGACY`` value, or None.
    """
    current = now.as_dict()
    then = {key: saved.get(key, LEGACY.get(key)) for key in COMPARED}
    return [
        f"{key}: baseline {then[key]!r}, now {current.get(key)!r}"
        for key in COMPARED
        if then[key] != current.get(key)
    ]
