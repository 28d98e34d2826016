"""The value parsers of the ``--prune-*`` options.

Every parser raises ``argparse.ArgumentTypeError`` quoting the value and saying what is allowed,
so a bad value fails at parse time, before any test.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from pruning.common.registry import unknown_name
from pruning.data.specs import CorpusSpec, parse_corpus_spec
from pruning.models.specs import ModelSpec, parse_model_spec
from pruning.study.plan import Plan, parse_plan

N = TypeVar("N", int, float)
T = TypeVar("T")

# The choices of two options, whose homes import accelerate or peft: pytest imports this module
# for every run, so they are spelled here and tests/plugin/test_entry.py holds them equal to
# ``pruning.models.placement.POLICIES`` and the names in ``pruning.healing.methods.HEALERS``.
POLICIES = ("auto", "balanced", "balanced_low_0", "sequential")
HEALERS = ("linear", "lora")


def _number(value: str, kind: type[N]) -> N | None:
    """``value`` as an int or float, or None when it is not one (the caller names what it expected)."""
    try:
        return kind(value.strip())
    except ValueError:
        return None


def positive_int(value: str) -> int:
    """An int >= 1."""
    number = _number(value, int)
    if number is None or number < 1:
        raise argparse.ArgumentTypeError(f"invalid value {value!r}; expected an integer >= 1")
    return number


def speed_lengths(value: str) -> tuple[int, ...]:
    """``128`` or ``128,1024``: the prefill length, and optionally a longer second one."""
    parts = [_number(p.strip(), int) for p in value.split(",")]
    lengths = tuple(p for p in parts if p is not None and p >= 1)
    if (
        not 1 <= len(parts) <= 2
        or len(lengths) != len(parts)
        or (len(lengths) == 2 and lengths[1] <= lengths[0])
    ):
        raise argparse.ArgumentTypeError(
            f"invalid value {value!r}; expected a length N >= 1 or two increasing lengths N,M (128,1024)"
        )
    return lengths


def max_memory(value: str) -> dict[int | str, str]:
    """``cpu=2GiB,0=20GiB``: accelerate's per-device budget (an int key is a GPU index)."""
    out: dict[int | str, str] = {}
    for part in value.split(","):
        device, _, size = part.strip().partition("=")
        if not device or not size:
            raise argparse.ArgumentTypeError(
                f"invalid memory budget {value!r}; expected DEVICE=SIZE pairs, like cpu=2GiB,0=20GiB"
            )
        out[int(device) if device.isdigit() else device] = size
    return out


def count_or_auto(value: str) -> int | None:
    """An int >= 1, or ``auto`` (None: the session works the count out, see its option's help)."""
    return _int_or_word(value, "auto", 1, "value")


def count_or_off(value: str) -> int:
    """An int >= 0 (0: off)."""
    number = _number(value, int)
    if number is None or number < 0:
        raise argparse.ArgumentTypeError(f"invalid count {value!r}; expected an integer >= 0 (0: off)")
    return number


def eval_tokens(value: str) -> int | None:
    """An int >= 2, or ``all`` (None) for the whole corpus."""
    return _int_or_word(value, "all", 2, "token count")


def _int_or_word(value: str, word: str, minimum: int, noun: str) -> int | None:
    if value.strip().lower() == word:
        return None
    number = _number(value, int)
    if number is None or number < minimum:
        expected = f"expected an integer >= {minimum} or {word!r}"
        raise argparse.ArgumentTypeError(f"invalid {noun} {value!r}; {expected}")
    return number


def percent(value: str) -> float:
    """A percentage >= 0 (the % sign is optional)."""
    number = _number(value.strip().rstrip("%"), float)
    if number is None or not number >= 0:
        raise argparse.ArgumentTypeError(
            f"invalid percentage {value!r}; expected a number >= 0, like 1 or 2.5"
        )
    return number


def points(value: str) -> float:
    """Accuracy points >= 0, like 2 or 0.5."""
    number = _number(value, float)
    if number is None or not number >= 0:
        raise argparse.ArgumentTypeError(
            f"invalid points {value!r}; expected accuracy points >= 0, like 2 or 0.5"
        )
    return number


def positive(kind: str, unit: str, example: str) -> Callable[[str], float]:
    """A parser for a number > 0 (a duration, a size), naming ``kind`` and ``unit`` in errors."""

    def parse(value: str) -> float:
        number = _number(value, float)
        if number is None or not number > 0:
            raise argparse.ArgumentTypeError(f"invalid {kind} {value!r}; expected {unit} > 0, like {example}")
        return number

    return parse


seconds = positive("duration", "seconds", "50")
megabytes = positive("size", "MiB", "1024")


def choice(*allowed: str) -> Callable[[str], str]:
    """A parser accepting exactly one of ``allowed``."""

    def parse(value: str) -> str:
        if value not in allowed:
            raise argparse.ArgumentTypeError(
                f"invalid choice {value!r}; expected one of {', '.join(allowed)}"
            )
        return value

    return parse


def device(value: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``."""
    head, _, index = value.partition(":")
    if (head == "cpu" and not index) or (head == "cuda" and (not index or index.isdigit())):
        return value
    raise argparse.ArgumentTypeError(f"invalid device {value!r}; expected cpu, cuda or cuda:N")


def _argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """``parse`` (a library parser raising ``ValueError``) as an option parser."""

    def parse_option(value: str) -> T:
        try:
            return parse(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse_option.__doc__ = parse.__doc__
    return parse_option


plan: Callable[[str], Plan] = _argument(parse_plan)  # pruning.study.plan
model_spec: Callable[[str], ModelSpec] = _argument(parse_model_spec)  # pruning.models.specs
corpus_spec: Callable[[str], CorpusSpec] = _argument(parse_corpus_spec)  # pruning.data.specs


def heal_methods(value: str) -> tuple[str, ...]:
    """Comma-separated healing methods, like ``linear,lora`` (each once)."""
    names = tuple(n.strip() for n in value.split(","))
    for name in names:
        if name not in HEALERS:
            raise argparse.ArgumentTypeError(f"in {value!r}: {unknown_name('healing method', name, HEALERS)}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"invalid methods {value!r}; expected each method once, like linear,lora"
        )
    return names


def task_names(value: str) -> tuple[str, ...]:
    """Comma-separated lm-eval task or group names, like ``arc_easy,piqa`` (each once)."""
    names = tuple(n.strip() for n in value.split(","))
    if not all(names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"invalid task list {value!r}; expected comma-separated lm-eval task names, each once, "
            "like arc_easy,piqa"
        )
    return names


def text(value: str) -> str:
    """A non-empty string."""
    if not value.strip():
        raise argparse.ArgumentTypeError(f"invalid value {value!r}; expected a non-empty string")
    return value.strip()
