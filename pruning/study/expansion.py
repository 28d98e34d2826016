"""Expanding a plan into variants on the loaded model, running the searches it asks for.

``sequential``, ``combos``, ``drop`` and ``last`` plans expand by the grammar alone
(``pruning.study.plan``); ``best`` plans race or beam-search, ``criterion`` plans run the
criteria and the oracle (``pruning.search``). Every search run is appended to the study's log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pruning.data.windows import Window
from pruning.healing.methods import HEALERS
from pruning.models.loading import LoadedModel
from pruning.models.variant import BASE, Variant, from_units, space_names
from pruning.results.rows import Row
from pruning.results.runlog import RunLog
from pruning.search.beam import beam
from pruning.search.criteria import CRITERIA, CriterionResult
from pruning.search.oracle import race_subsets, search_oracle
from pruning.study.plan import Best, Criterion, expand_plan, plan_size
from pruning.study.settings import Settings


class Study(Protocol):
    """What expansion needs of a study (``pruning.study.study.Study`` provides it)."""

    settings: Settings
    log: RunLog

    @property
    def lm(self) -> LoadedModel: ...

    @property
    def windows(self) -> list[Window]: ...

    @property
    def calib_windows(self) -> list[Window]: ...

    def quality(self, variants: Sequence[Variant]) -> dict[Variant, Row]: ...

    def run_criteria(
        self, names: Sequence[str], k_max: int, space: str = "blocks"
    ) -> list[CriterionResult]: ...


class TooManyVariants(ValueError):
    """A plan that yields more variants than allowed; the caller names its own limit's flag."""

    def __init__(self, plan: str, count: int, n_layers: int, limit: int) -> None:
        super().__init__(
            f"plan {plan!r} has {count} variants on this {n_layers}-block model, more than {limit} allowed"
        )
        self.count = count
        self.limit = limit


def expand(study: Study) -> list[Variant]:
    """The variants of ``study``'s plan, base first; ``ValueError`` for a plan that does not fit."""
    plan, n_layers = study.settings.plan, study.lm.num_layers
    count = plan_size(plan, n_layers)
    if count > study.settings.max_variants:
        raise TooManyVariants(str(plan), count, n_layers, study.settings.max_variants)
    if isinstance(plan, Best):
        return [BASE, *_search(study, plan)]
    if isinstance(plan, Criterion):
        return _criterion_variants(study, plan)
    return expand_plan(plan, n_layers)


def with_healed(study: Study, variants: list[Variant]) -> list[Variant]:
    """Each whole-block variant followed by its healed variants (``heal.methods``); the unpruned
    model and sub-layer variants are not healed.

    Each method checks here that it can heal each variant, so a variant it cannot heal is
    refused before anything runs (``pruning.healing.linear.HealError``, a ``ValueError``).
    """
    methods, limit = study.settings.heal.methods, study.settings.max_variants
    out = []
    for variant in variants:
        out.append(variant)
        for method in methods if variant.drop and not variant.sublayers else ():
            healed = Variant(variant.drop, method)
            HEALERS.get(method).check(study.lm.model, healed)
            out.append(healed)
    if len(out) > limit:
        raise TooManyVariants(
            f"{study.settings.plan} healed with {','.join(methods)}", len(out), study.lm.num_layers, limit
        )
    return out


def _search(study: Study, spec: Best) -> list[Variant]:
    """Racing on the evaluation text (the oracle's cheap form) or beam search on calibration text."""
    engine = study.settings.engine
    if spec.search == "race":
        found = race_subsets(study.lm.model, study.windows, spec.k, spec.top, engine, spec.units)
    else:
        calib = study.calib_windows
        found = beam(study.lm.model, calib, spec.k, max(spec.width, 1), engine, space=spec.units)[spec.k]
    study.log.searches.append(found)
    return [v for v, _ in found.best[: spec.top]]


def _criterion_variants(study: Study, spec: Criterion) -> list[Variant]:
    """Base, every single removal of the space (the truth), each criterion's K-sets, and the oracle's."""
    for name in spec.names:
        if name not in CRITERIA:
            raise ValueError(CRITERIA.unknown_message(name) + " (or all)")
    names = space_names(spec.units, study.lm.num_layers)
    if not 1 <= spec.k_max <= len(names) // 2:
        raise ValueError(
            f"criterion plan K=1..{spec.k_max} is out of range for {len(names)} units ({spec.units}); "
            f"expected K=1..N with N in [1, {len(names) // 2}]"
        )
    criteria = study.run_criteria(spec.names or CRITERIA.names(), spec.k_max, spec.units)
    sets = [from_units([name]) for name in names]  # K=1: the oracle is exhaustive
    sets += [v for r in criteria for v in r.chosen.values()]
    best_single = None
    if not spec.races_pairs(study.lm.num_layers):  # the singles are the truth: measure them now
        measured = study.quality([BASE, *sets[: len(names)]])
        best_single = min(sets[: len(names)], key=lambda v: (measured[v].ppl, v.sort_key))
    engine = study.settings.engine
    oracle, searches = search_oracle(
        study.lm.model, study.windows, spec.k_max, engine, spec.units, best_single
    )
    study.log.searches += searches
    return [BASE, *sorted({*sets, *oracle}, key=lambda v: (v.size(spec.units), v.sort_key))]
