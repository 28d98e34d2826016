"""The plan grammar: one parser, typed specs, and canonical text that parses back to the same spec."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from pruning.study.plan import (
    Best,
    Combos,
    Criterion,
    Explicit,
    Last,
    Sequential,
    UnitSet,
    parse_plan,
)

ROOT = Path(__file__).resolve().parents[1]

# Every plan kind and every option of each, with the spec each means.
SPECS = {
    "sequential": Sequential("blocks"),
    "sequential:attn": Sequential("attn"),
    "sequential:mlp": Sequential("mlp"),
    "sequential:units": Sequential("all"),
    "combos:2": Combos(2),
    "drop:14": Explicit((UnitSet((14,)),)),
    "drop:14,17;13,14,15,17": Explicit((UnitSet((14, 17)), UnitSet((13, 14, 15, 17)))),
    "drop:attn5,mlp-1;12;attn1,3": Explicit(
        (UnitSet(attn=(5,), mlp=(-1,)), UnitSet((12,)), UnitSet((3,), (1,)))
    ),
    "last:2": Last(2),
    "best:K=2": Best(2),
    "best:K=2,top=5": Best(2, 5),
    "best:K=4,search=beam:2,units=all": Best(4, 10, "beam", 2, "all"),
    "best:units=attn,K=3,search=beam,top=3": Best(3, 3, "beam", 1, "attn"),
    "criterion:all:K=1..3": Criterion((), 3),
    "criterion:block_influence:K=1..6,units=attn": Criterion(("block_influence",), 6, "attn"),
    "criterion:sleb+taylor:K=1..2,units=all,oracle=greedy": Criterion(("sleb", "taylor"), 2, "all", "greedy"),
    "criterion:all:K=1..6,units=mlp,oracle=pairs": Criterion((), 6, "mlp", "pairs"),
}


@pytest.mark.parametrize(("text", "spec"), SPECS.items(), ids=list(SPECS))
def test_each_plan_parses_to_its_spec_and_back(text, spec):
    parsed = parse_plan(text)
    assert parsed == spec
    assert parse_plan(str(parsed)) == parsed  # the canonical text means the same plan
    assert str(parse_plan(str(parsed))) == str(parsed)  # and is a fixed point


def test_every_kind_is_covered_by_the_round_trip():
    assert {type(spec) for spec in SPECS.values()} == {Sequential, Combos, Explicit, Last, Best, Criterion}


def documented_plans() -> list[str]:
    """Every ``--prune-plan`` value in the README and the guides (recipes, healing and criteria
    studies' reproduce commands)."""
    pattern = re.compile(r"--prune-plan[ =]+(\"[^\"]+\"|'[^']+'|[a-z][^ `'\"]*)")
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found = {shlex.split(m)[0] for p in texts for m in pattern.findall(p.read_text(encoding="utf-8"))}
    return sorted(p for p in found if not p.endswith("..."))


def test_the_documented_plans_round_trip():
    plans = documented_plans()
    assert {p.partition(":")[0] for p in plans} >= {"drop", "best", "criterion", "sequential"}
    for text in plans:
        parsed = parse_plan(text)
        assert str(parsed) == text, "the documents write each plan in its canonical form"
        assert parse_plan(str(parsed)) == parsed


@pytest.mark.parametrize(
    "text",
    [
        "criterion:all+sleb:K=1..2",
        "criterion:sleb+sleb:K=1..2",
        "criterion:sleb:K=2..3",
        "criterion:sleb:K=1..2,units=all,units=mlp",
        "criterion:sleb:K=1..2,",
        "best:K=2,,top=3",
        "sequential:blocks",
        "drop:",
        "last:0",
    ],
)
def test_malformed_plans_are_refused_quoting_them(text):
    with pytest.raises(ValueError, match=re.escape(repr(text)) + "|" + re.escape(text.partition(":")[2])):
        parse_plan(text)
