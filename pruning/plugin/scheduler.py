"""pytest-xdist scheduling that keeps the prefix sharing: a worker receives whole variant groups.

The groups are ``pruning.engine.partition``'s (whole subtrees of the prefix tree, balanced by the
cost model), one per worker. xdist's own ``--dist loadgroup`` would do this from
``xdist_group`` marks, but with pytest 9.2 it silently stops grouping (pytest-dev/pytest-xdist
#1386: it rewrites a node id pytest no longer reads), so the plugin answers xdist's public
``pytest_xdist_make_scheduler`` hook with this subclass of its ``LoadScopeScheduling``, whose
scope of a pruning test is its variant's group and of any other test the test alone (as
``--dist load``). xdist asks for the scheduler before anything is collected, and the plugin is
installed for every pytest run, so the groups (which need the model) are made only once a
worker's collection holds a test whose parameter id is a pruned variant's: a run without
pruning tests never loads a model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest
from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import Producer

from pruning.models.variant import BASE, Variant

SETUP_ERROR = "pruning setup failed: "  # a worker's parameter id when it has no variants to give


def variant_id(nodeid: str) -> str | None:
    """The parameter id of ``test_x[drop[1,3]]`` (``drop[1,3]``), None without one."""
    name = nodeid.rpartition("::")[2]
    if "[" not in name or not name.endswith("]"):
        return None
    return name[name.index("[") + 1 : -1]


def setup_error(nodeids: Sequence[str]) -> str | None:
    """The setup error a worker put into its pruning tests' ids (``SETUP_ERROR``), None without one.

    A worker cannot fail the session itself (xdist then reports an internal error and drops the
    message), so it collects its pruning tests under this id and the controller refuses the run.
    """
    for nodeid in nodeids:
        found = variant_id(nodeid)
        if found is not None and found.startswith(SETUP_ERROR):
            return found.removeprefix(SETUP_ERROR)
    return None


def has_pruning_tests(nodeids: Sequence[str]) -> bool:
    """Whether a worker's collection holds a pruning test: a variant's (the unpruned one's
    included) or a failed setup's parameter id."""
    ids = (variant_id(nodeid) for nodeid in nodeids)
    return any(v is not None and (Variant.looks_like_id(v) or v.startswith(SETUP_ERROR)) for v in ids)


class VariantGroupScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no types
    """Load scheduling by scope, where a pruning test's scope is its variant's group."""

    def __init__(
        self, config: pytest.Config, log: Producer | None, make_groups: Callable[[], Mapping[str, int]]
    ) -> None:
        super().__init__(config, log)
        self.make_groups = make_groups  # variant id -> group, made when first needed
        self.groups: dict[str, int] = {}

    def add_node_collection(self, node: object, collection: Sequence[str]) -> None:
        """xdist's scheduler protocol: a worker's collection, before ``schedule``. The groups are
        made for the first one that holds a pruned variant (an id like ``base`` alone is no sign)."""
        super().add_node_collection(node, collection)
        if not self.groups and any(_pruned(variant_id(nodeid)) for nodeid in collection):
            self.groups = dict(self.make_groups())

    def _split_scope(self, nodeid: str) -> str:
        group = self.groups.get(variant_id(nodeid) or "")
        return f"pruning-group-{group}" if group is not None else nodeid


def _pruned(found: str | None) -> bool:
    return found is not None and found != BASE.id and Variant.looks_like_id(found)
