"""A study: one model, one corpus, one protocol, and the variants measured on it.

It loads each resource once and caches what it computed, so a benchmark session loads the
model once, builds each variant once (weights shared) and evaluates quality in as few
engine passes as it is asked for. What it ran (evaluations, searches, criteria) goes into its
``log`` (``pruning.results.runlog.RunLog``), which reporting receives.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from pruning.common.machine import this_machine
from pruning.common.progress import open_bar
from pruning.data.corpora import Corpus, load_corpus
from pruning.data.windows import EvalProtocol, Window
from pruning.engine.store import Store, run_key
from pruning.engine.stored import StoredResult, evaluate_models, evaluate_stored
from pruning.healing.cache import HealCache
from pruning.healing.methods import Healed, heal
from pruning.metrics.fingerprint import RunFingerprint, run_fingerprint
from pruning.metrics.perplexity import max_length, prepare_windows
from pruning.metrics.samples import Samples, continue_greedily, prompts_from_file, prompts_from_text
from pruning.metrics.speed import speed_tokens
from pruning.models.loading import LoadedModel, load_model
from pruning.models.parameters import count_parameters
from pruning.models.surgery import remove_layers
from pruning.models.variant import Variant
from pruning.models.work import block_kinds, work_class
from pruning.results.rows import Row, quality_row
from pruning.results.runlog import Calibration, RunLog
from pruning.search.criteria import CriterionInput, CriterionResult, run_criterion
from pruning.study.expansion import expand, with_healed
from pruning.study.settings import Settings
from pruning.study.tasks import evaluate_tasks


class Study:
    """Lazily loaded model, corpus and windows, and cached per-variant results."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log = RunLog()
        self._rows: dict[Variant, Row] = {}
        self._models: dict[Variant, nn.Module] = {}
        self._healed: dict[Variant, Healed] = {}
        self._variants: list[Variant] | None = None

    @functools.cached_property
    def lm(self) -> LoadedModel:
        """The loaded model (once)."""
        ms = self.settings.model
        if ms.threads is not None:
            torch.set_num_threads(ms.threads)
        return load_model(ms.spec, ms.dtype, ms.device, ms.device_map, ms.max_memory)

    @property
    def model_loaded(self) -> bool:
        """Whether ``lm`` has been loaded (it loads on first use)."""
        return "lm" in vars(self)

    @functools.cached_property
    def corpus(self) -> Corpus:
        """The evaluation corpus (test split)."""
        return load_corpus(self.settings.corpus, split="test")

    @functools.cached_property
    def protocol(self) -> EvalProtocol:
        """The protocol with ctx capped at the model's maximum length."""
        return self.settings.protocol.capped(max_length(self.lm.model))

    @functools.cached_property
    def windows(self) -> list[Window]:
        """The evaluation windows."""
        return prepare_windows(self.lm.tokenizer, self.corpus.text, self.protocol)

    @functools.cached_property
    def calib_windows(self) -> list[Window]:
        """Windows of the calibration text (``validation`` split), cut like the evaluation ones.

        All that criteria and beam search read; loading them records the calibration in the log.
        """
        windows = self._calibration(self.settings.calib_tokens)
        self.log.calibration = Calibration(self._calib_corpus, sum(w.scored for w in windows))
        return windows

    @functools.cached_property
    def heal_windows(self) -> list[Window]:
        """The calibration windows healing reads: ``heal.tokens`` of the same text, same cut."""
        return self._calibration(self.settings.heal.tokens)

    @functools.cached_property
    def _calib_corpus(self) -> Corpus:
        return load_corpus(self.settings.calib_corpus, split="validation")

    def _calibration(self, tokens: int | None) -> list[Window]:
        proto = EvalProtocol(self.protocol.name, self.protocol.ctx, tokens, self.protocol.stride)
        return prepare_windows(self.lm.tokenizer, self._calib_corpus.text, proto)

    def variants(self) -> list[Variant]:
        """The plan's variants, expanded once (``pruning.study.expansion``).

        pytest asks once per test function; ``best`` and ``criterion`` plans run searches to
        expand, so the answer is kept.
        """
        if self._variants is None:
            self._variants = with_healed(self, expand(self))
        return list(self._variants)

    def run_criteria(self, names: Sequence[str], k_max: int, space: str = "blocks") -> list[CriterionResult]:
        """Run criteria over the units of ``space`` on the calibration windows only (never the
        evaluation text); logged."""
        data = CriterionInput(self.lm.model, tuple(self.calib_windows), k_max, self.settings.engine, space)
        bar = open_bar(f"criteria ({', '.join(names)})", len(names), self.settings.engine.progress)
        results = []
        for name in names:
            results.append(run_criterion(name, data))
            bar.update(1)
        bar.close()
        self.log.criteria += results
        return results

    @functools.cached_property
    def fingerprint(self) -> RunFingerprint:
        """What a baseline or a stored result must share to be used (``pruning.metrics.fingerprint``)."""
        model = self.settings.model
        machine = this_machine(model.device)  # the device, not the placement string ("cuda, device_map auto")
        return run_fingerprint(self.lm, self.corpus, self.protocol, model.placement, machine)

    def model_for(self, variant: Variant) -> nn.Module:
        """The variant's model, built once, sharing weights with the loaded model."""
        if variant.is_base:  # the unpruned model is the loaded one: no copy needed
            loaded: nn.Module = self.lm.model
            return loaded
        if variant.heal:
            return self.healed(variant).model
        if variant not in self._models:
            self._models[variant] = remove_layers(self.lm.model, variant.drop, variant.attn, variant.mlp)
        return self._models[variant]

    @functools.cached_property
    def _block_kinds(self) -> tuple[str, ...]:
        return block_kinds(self.lm.model)

    def work_class(self, variant: Variant) -> str:
        """The variant's work class (``pruning.models.work``): variants that run the same work."""
        return work_class(variant, self._block_kinds)

    @functools.cached_property
    def speed_ids(self) -> torch.Tensor:
        """The prefill/decode input: the first ``speed.seq`` corpus tokens (1, seq)."""
        ids = speed_tokens(self.lm.tokenizer, self.corpus.text, self.settings.speed.seq)
        return ids.to(self.settings.model.device)

    @functools.cached_property
    def speed_ids_long(self) -> torch.Tensor:
        """The second prefill input (``--prune-speed-seq N,M``): the first M corpus tokens (1, M)."""
        (seq,) = self.settings.speed.long_seq
        return speed_tokens(self.lm.tokenizer, self.corpus.text, seq).to(self.settings.model.device)

    def samples(self, variants: Sequence[Variant]) -> Samples:
        """Each variant's greedy continuations of the sample prompts (``pruning.metrics.samples``):
        the user's file, or paragraphs of the evaluation corpus's validation split."""
        cfg = self.settings.samples
        if cfg.file is not None:
            prompts = prompts_from_file(cfg.file, cfg.count)
        else:
            prompts = prompts_from_text(load_corpus(self.settings.corpus, split="validation").text, cfg.count)
        bar = open_bar("samples: variants", len(variants), self.settings.engine.progress)
        texts = {}
        for variant in variants:
            model = self.model_for(variant)
            texts[variant.id] = continue_greedily(
                model, self.lm.tokenizer, prompts, cfg.new_tokens, self.settings.model.device
            )
            bar.update(1)
        bar.close()
        return Samples(prompts, cfg.new_tokens, texts)

    def healed(self, variant: Variant) -> Healed:
        """``variant`` healed (once) on the healing calibration windows, or reused from the cache."""
        if variant not in self._healed:
            key = run_key(self.fingerprint)
            cache = None if self.settings.store_dir is None else HealCache(self.settings.store_dir)
            found = heal(
                self.lm.model,
                variant,
                self.heal_windows,
                self.settings.heal,
                key,
                cache,
                self.settings.engine.progress,
            )
            self._healed[variant] = found
            self.log.healings.append(found.record)
        return self._healed[variant]

    def quality(self, variants: Sequence[Variant]) -> dict[Variant, Row]:
        """Quality rows for ``variants``; what is not cached yet is computed in one engine pass
        (healed variants, whose weights differ from the loaded ones, in one pass of their own)."""
        missing = [v for v in variants if v not in self._rows]
        plain, healed = (
            [v for v in missing if v.shares_prefixes],
            [v for v in missing if not v.shares_prefixes],
        )
        if plain:
            result = evaluate_stored(self.lm.model, self.windows, plain, self.settings.engine, self.store())
            self._add(result)
        if healed:  # each model in full against the unpruned reference
            models = {v: self.model_for(v) for v in healed}
            stores = {v: self.store(self.healed(v).record.key) for v in healed}
            self._add(evaluate_models(self.lm.model, models, self.windows, stores, self.settings.engine))
        if missing and self.settings.tasks.on:
            self._add_tasks(missing)
        return {v: self._rows[v] for v in variants}

    def _add_tasks(self, variants: Sequence[Variant]) -> None:
        """Attach each variant's per-example task results to its row (``pruning.study.tasks``)."""
        found, cost = evaluate_tasks(self, variants)
        self.log.task_costs.append(cost)
        for v in variants:
            scores = {name: s.as_dict() for name, s in found[v].items()}
            self._rows[v] = replace(self._rows[v], task_scores=scores)

    def _add(self, result: StoredResult) -> None:
        self.log.evaluations.append(result)
        for variant, sums in result.scores.items():
            params = count_parameters(self.model_for(variant))
            seconds = self._healed[variant].record.seconds if variant.heal else None
            starts = [w.start for w in self.windows]
            row = quality_row(variant, sums, self.lm.num_layers, params, seconds, starts)
            self._rows.setdefault(variant, row)

    def store(self, heal_key: str = "") -> Store | None:
        """The results store for this model, corpus and protocol (None with the cache off); with
        ``heal_key`` (``pruning.healing.cache``), the one of that healing's results."""
        if self.settings.store_dir is None:
            return None
        return Store(self.settings.store_dir, f"heal-{heal_key}" if heal_key else run_key(self.fingerprint))
