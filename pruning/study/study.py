"""A study: one model, one corpus, one protocol, and the variants measured on it.

It loads each resource once and caches what it computed, so a benchmark session loads the
model once, builds each variant once (weights shared) and evaluates quality in as few
engine passes as it is asked for.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from pruning.common.progress import open_bar
from pruning.data.corpora import Corpus, load_corpus
from pruning.data.windows import Protocol, Window
from pruning.engine.prefix import VariantScores
from pruning.engine.store import Store, run_key
from pruning.engine.stored import SweepResult, run_sweep
from pruning.metrics.fingerprint import RunFingerprint
from pruning.metrics.perplexity import bootstrap_ci, bos_if_asked, max_length, prepare_windows
from pruning.metrics.speed import speed_tokens
from pruning.models.loading import LoadedModel, load_model
from pruning.models.parameters import count_parameters
from pruning.models.surgery import remove_layers
from pruning.models.variant import BASE, Variant
from pruning.reporting.rows import Row
from pruning.search.criteria import CRITERIA, CriterionInput, CriterionResult, run_criterion
from pruning.search.racing import SearchResult, beam, race
from pruning.study.plan import (
    BestSpec,
    expand_plan,
    parse_best,
    parse_criterion_plan,
    plan_size,
)
from pruning.study.settings import Settings


class Study:
    """Lazily loaded model, corpus and windows, and cached per-variant results."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._rows: dict[Variant, Row] = {}
        self._models: dict[Variant, nn.Module] = {}
        self._variants: list[Variant] | None = None
        self.sweeps: list[SweepResult] = []
        self.searches: list[SearchResult] = []
        self.criteria: list[CriterionResult] = []

    @functools.cached_property
    def lm(self) -> LoadedModel:
        """The loaded model (once)."""
        ms = self.settings.model
        if ms.threads is not None:
            torch.set_num_threads(ms.threads)
        return load_model(ms.spec, dtype=ms.dtype, device=ms.device)

    @property
    def model_loaded(self) -> bool:
        """Whether ``lm`` has been loaded (it loads on first use)."""
        return "lm" in vars(self)

    @functools.cached_property
    def corpus(self) -> Corpus:
        """The evaluation corpus (test split)."""
        return load_corpus(self.settings.corpus, split="test")

    @functools.cached_property
    def protocol(self) -> Protocol:
        """The protocol with ctx capped at the model's maximum length."""
        return self.settings.protocol.capped(max_length(self.lm.model))

    @functools.cached_property
    def windows(self) -> list[Window]:
        """The evaluation windows."""
        return prepare_windows(self.lm.tokenizer, self.corpus.text, self.protocol)

    def variants(self) -> list[Variant]:
        """The plan's variants, expanded once; ``ValueError`` when there are more than allowed.

        pytest asks once per test function; ``best`` and ``criterion`` plans run searches to
        expand, so the answer is kept.
        """
        if self._variants is None:
            self._variants = self._expand()
        return list(self._variants)

    def _expand(self) -> list[Variant]:
        n_layers = self.lm.num_layers
        count = plan_size(self.settings.plan, n_layers)
        if count > self.settings.max_variants:
            raise ValueError(
                f"plan {str(self.settings.plan)!r} has {count} variants on this {n_layers}-block "
                f"model, more than --prune-max-variants={self.settings.max_variants}; "
                f"pass --prune-max-variants={count} to run them all"
            )
        if self.settings.plan.kind == "best":
            return [BASE, *self._search(parse_best(self.settings.plan.arg))]
        if self.settings.plan.kind == "criterion":
            return self._criterion_variants(*parse_criterion_plan(self.settings.plan.arg))
        return expand_plan(self.settings.plan, n_layers)

    @functools.cached_property
    def calib_corpus(self) -> Corpus:
        """The calibration corpus (``validation`` split): all that criteria and beam search read."""
        return load_corpus(self.settings.calib_corpus, split="validation")

    @functools.cached_property
    def calib_windows(self) -> list[Window]:
        """Windows of the calibration text, cut like the evaluation ones."""
        calib = self.calib_corpus
        proto = Protocol(
            self.protocol.name, self.protocol.ctx, self.settings.calib_tokens, self.protocol.stride
        )
        return prepare_windows(self.lm.tokenizer, calib.text, proto)

    def run_criteria(self, names: Sequence[str], k_max: int) -> list[CriterionResult]:
        """Run criteria on the calibration windows only (never the evaluation text)."""
        data = CriterionInput(self.lm.model, tuple(self.calib_windows), k_max, self.settings.engine)
        bar = open_bar(f"criteria ({', '.join(names)})", len(names), self.settings.engine.progress)
        results = []
        for name in names:
            results.append(run_criterion(name, data))
            bar.update(1)
        bar.close()
        return results

    def _criterion_variants(self, name: str, k_max: int) -> list[Variant]:
        """Base, every single removal (the truth), each criterion's K-sets, and the oracle's."""
        if name != "all" and name not in CRITERIA:
            raise ValueError(CRITERIA.unknown_message(name) + " (or all)")
        n_layers = self.lm.num_layers
        if not 1 <= k_max <= n_layers // 2:
            raise ValueError(
                f"criterion plan K=1..{k_max} is out of range; expected K=1..N with N in [1, {n_layers // 2}]"
            )
        self.criteria = self.run_criteria(CRITERIA.names() if name == "all" else [name], k_max)
        sets = [Variant((i,)) for i in range(n_layers)]  # K=1: the oracle is exhaustive
        sets += [Variant(c) for r in self.criteria for c in r.chosen.values()]
        sets += self._oracle(k_max)
        return [BASE, *sorted(set(sets), key=lambda v: (len(v.drop), v.drop))]

    def _oracle(self, k_max: int) -> list[Variant]:
        """The best removal set found on the evaluation text for each K from 2 to ``k_max``.

        K=2 races all pairs (racing returns the exhaustive top set; see the engine benchmark).
        K >= 3 grows the K=2 winner greedily on the evaluation text: the best set *known*, so
        the criteria's regrets at K >= 3 are lower bounds. (K=1 needs no search: every single
        removal is measured.)
        """
        if k_max < 2:
            return []
        best = self._race(2, 1).best[0][0]
        if k_max == 2:
            return [best]
        grown = beam(self.lm.model, self.windows, k_max, 1, self.settings.engine, start=best)
        return [best, *(grown[k].best[0][0] for k in range(3, k_max + 1))]

    def _race(self, k: int, top: int) -> SearchResult:
        """Race every K-subset on the evaluation text for the ``top`` best; the search is kept."""
        candidates = [Variant(c) for c in itertools.combinations(range(self.lm.num_layers), k)]
        found = race(self.lm.model, self.windows, candidates, top, self.settings.engine)
        self.searches.append(found)
        return found

    def _search(self, spec: BestSpec) -> list[Variant]:
        """Racing on the evaluation text (the oracle's cheap form) or beam search on calibration text."""
        if spec.search == "race":
            found = self._race(spec.k, spec.top)
        else:
            beams = beam(self.lm.model, self.calib_windows, spec.k, max(spec.width, 1), self.settings.engine)
            found = beams[spec.k]
            self.searches.append(found)
        return [v for v, _ in found.best[: spec.top]]

    @functools.cached_property
    def fingerprint(self) -> RunFingerprint:
        """What a baseline or a stored result must share to be used (``pruning.metrics.fingerprint``)."""
        fp = self.lm.fingerprint
        return RunFingerprint(
            model=fp.spec,
            weights_sha256=fp.weights_sha256,
            dtype=fp.dtype,
            device=self.settings.model.device,
            corpus=self.corpus.name,
            corpus_sha256=self.corpus.sha256,
            protocol=self.protocol.name,
            ctx=self.protocol.ctx,
            stride=self.protocol.stride,
            bos=bos_if_asked(self.lm.tokenizer),
            eval_tokens=self.protocol.eval_tokens,
            torch=fp.torch,
            transformers=fp.transformers,
            corpus_source=self.corpus.source,
        )

    def model_for(self, variant: Variant) -> nn.Module:
        """The variant's model, built once, sharing weights with the loaded model."""
        if not variant.drop:  # the unpruned model is the loaded one: no copy needed
            return self.lm.model
        if variant not in self._models:
            self._models[variant] = remove_layers(self.lm.model, variant.drop)
        return self._models[variant]

    @functools.cached_property
    def speed_ids(self) -> torch.Tensor:
        """The prefill/decode input: the first ``speed.seq`` corpus tokens (1, seq)."""
        ids = speed_tokens(self.lm.tokenizer, self.corpus.text, self.settings.speed.seq)
        return ids.to(self.settings.model.device)

    def quality(self, variants: Sequence[Variant]) -> dict[Variant, Row]:
        """Quality rows for ``variants``; what is not cached yet is computed in one engine pass."""
        missing = [v for v in variants if v not in self._rows]
        if missing:
            result = run_sweep(self.lm.model, self.windows, missing, self.settings.engine, self.store())
            self.sweeps.append(result)
            for variant, scores in result.scores.items():
                self._rows.setdefault(variant, self._row(variant, scores))
        return {v: self._rows[v] for v in variants}

    def store(self) -> Store | None:
        """The results store for this model, corpus and protocol (None with the cache off)."""
        if self.settings.store_dir is None:
            return None
        return Store(self.settings.store_dir, run_key(self.fingerprint.store_key()))

    def _row(self, variant: Variant, s: VariantScores) -> Row:
        tokens = sum(s.tokens)
        return Row(
            id=variant.id,
            removed=variant.drop,
            layers=self.lm.num_layers - len(variant.drop),
            ppl=math.exp(math.fsum(s.nll) / tokens),
            ppl_ci95=bootstrap_ci(s.nll, s.tokens),
            params=count_parameters(self.model_for(variant)),
            kl=math.fsum(s.kl) / tokens,
            top1_agree=sum(s.top1) / tokens,
            tokens_scored=tokens,
            window_nll=tuple(s.nll),
        )
