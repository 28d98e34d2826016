"""pytest-xdist scheduling that keeps the prefix sharing: a worker receives whole variant groups.

The groups are ``pruning.engine.partition``'s (runs of prefix-tree subtrees, balanced by the
cost model), one per worker. xdist's own ``--dist loadgroup`` would do this from
``xdist_group`` marks, but with pytest 9.2 it silently stops grouping (pytest-dev/pytest-xdist
#1386: it rewrites a node id pytest no longer reads), so the plugin answers xdist's public
``pytest_xdist_make_scheduler`` hook with this subclass of its ``LoadScopeScheduling``, whose
scope of a pruning test is its variant's group.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import Producer


def variant_id(nodeid: str) -> str | None:
    """The parameter id of ``test_x[drop[1,3]]`` (``drop[1,3]``), None without one."""
    name = nodeid.rpartition("::")[2]
    if "[" not in name or not name.endswith("]"):
        return None
    return name[name.index("[") + 1 : -1]


class VariantGroupScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no types
    """Load scheduling by scope, where a pruning test's scope is its variant's group."""

    def __init__(self, config: pytest.Config, log: Producer | None, groups: Mapping[str, int]) -> None:
        super().__init__(config, log)
        self.groups = dict(groups)  # variant id -> group

    def _split_scope(self, nodeid: str) -> str:
        group = self.groups.get(variant_id(nodeid) or "")
        return f"pruning-group-{group}" if group is not None else super()._split_scope(nodeid)
