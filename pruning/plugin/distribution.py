"""Quality over pytest-xdist workers: the variant groups, what a worker evaluates, what it cost.

The controller and every worker compute the same groups (``pruning.engine.partition``: whole
prefix-tree subtrees balanced by the cost model, one per worker); the controller's scheduler
(``pruning.plugin.scheduler``, used for plain ``-n`` / ``--dist load`` and plans that do not
search: expanding a search plan there would run its searches on the controller too) sends each
group whole to one worker, which evaluates all of its
selected variants in one prefix-shared pass. Without xdist there are no groups and the first
quality request evaluates every selected variant.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, field

import pytest

from pruning.engine.cost import head_weight
from pruning.engine.partition import partition, schedule_cost
from pruning.models.variant import Variant
from pruning.plugin.configure import workers
from pruning.results.runlog import WorkerCost
from pruning.study.study import Study


@dataclass(eq=False)
class Distribution:
    """This process's part of a distributed run (nothing is distributed without xdist)."""

    config: pytest.Config
    study: Study
    groups: dict[Variant, int] | None = None  # computed once, see ``group``
    evaluated: set[Variant] = field(default_factory=set)  # variants whose quality this process computed
    serial: float | None = None  # the serial prefix-shared pass's cost, computed once

    def group(self, variants: list[Variant]) -> dict[Variant, int]:
        """Each variant's group under xdist; empty without it."""
        count = workers(self.config)
        if count < 2:
            return {}
        if self.groups is None:
            lm = self.study.lm
            plain = [v for v in variants if v.shares_prefixes]  # the others: healed
            parts = partition(plain, lm.num_layers, count, head_weight(lm.model))  # join their
            self.groups = {v: k for k, group in enumerate(parts) for v in group}  # unhealed one's,
            self.groups |= {v: self.groups.get(v.unhealed, 0) for v in variants if not v.shares_prefixes}
        return self.groups

    def wanted(self, variant: Variant, selected: list[Variant]) -> list[Variant]:
        """What one quality request evaluates: every selected variant (serially), or every
        selected variant of ``variant``'s group (on a worker)."""
        groups = self.groups or {}
        if getattr(self.config, "workerinput", None) is None or variant not in groups:
            wanted = selected or [variant]
        else:
            wanted = [v for v in selected if groups.get(v) == groups[variant]] or [variant]
        self.evaluated.update(wanted)
        return wanted

    def cost(self, selected: list[Variant]) -> WorkerCost | None:
        """On a worker: what its quality evaluations counted so far; None elsewhere."""
        workerinput = getattr(self.config, "workerinput", None)
        if workerinput is None or not self.study.model_loaded:
            return None
        if self.serial is None:
            lm = self.study.lm
            plain = [v for v in selected if v.shares_prefixes]  # what the prefix-shared pass evaluates
            self.serial = schedule_cost(plain, lm.num_layers, head_weight(lm.model))
        done = self.study.log.evaluations
        stats = [s for result in done for s in result.stats]
        return WorkerCost(
            worker=str(workerinput.get("workerid", "?")),
            variants=len(self.evaluated),
            cost=sum(s.cost for s in stats),
            naive=sum(s.naive_cost for s in stats),
            serial=self.serial,
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            computed=sum(result.computed for result in done),
            reused=sum(result.reused for result in done),
            task_cost=sum(c.shared for c in self.study.log.task_costs),
            task_naive=sum(c.naive for c in self.study.log.task_costs),
        )
