"""Lanes run independent items concurrently, return them in order, and leave torch as it was."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from pruning.engine.lanes import SharedBar, auto_lanes, in_lanes, intra_op_threads


def test_results_come_in_item_order_from_several_threads():
    seen: dict[int, str] = {}

    def work(i: int) -> int:
        time.sleep(0.02 * (5 - i))  # later items finish first
        seen[i] = threading.current_thread().name
        return i * i

    assert list(in_lanes(work, range(6), 3)) == [0, 1, 4, 9, 16, 25]
    assert all(name.startswith("pruning-lane") for name in seen.values())
    assert len(set(seen.values())) > 1


def test_one_lane_is_a_plain_loop_on_the_callers_thread():
    names = list(in_lanes(lambda _: threading.current_thread().name, range(3), 1))
    assert names == [threading.current_thread().name] * 3


def test_each_lane_gets_its_share_of_the_threads_and_the_count_is_restored():
    before = torch.get_num_threads()
    with intra_op_threads(4):
        counts = list(in_lanes(lambda _: torch.get_num_threads(), range(4), 2))
        assert counts == [2, 2, 2, 2] and torch.get_num_threads() == 4
    assert torch.get_num_threads() == before
    with intra_op_threads(1):  # never below one thread per lane
        assert list(in_lanes(lambda _: torch.get_num_threads(), range(2), 2)) == [1, 1]


def test_an_error_reaches_the_caller_and_stopping_early_starts_nothing_more():
    started: list[int] = []

    def work(i: int) -> int:
        started.append(i)
        if i == 1:
            raise ValueError("window 1 failed")
        time.sleep(0.05)
        return i

    before = torch.get_num_threads()
    with pytest.raises(ValueError, match="window 1 failed"):
        list(in_lanes(work, range(20), 2))
    assert len(started) < 20 and torch.get_num_threads() == before
    started.clear()
    done = in_lanes(work, [0, 2, 3, 4, 5, 6, 7, 8], 2)
    assert next(done) == 0
    done.close()  # e.g. the engine falling back after its exactness check
    assert len(started) < 8 and torch.get_num_threads() == before


def test_auto_lanes_are_one_per_cpu_thread_up_to_four_and_one_on_an_accelerator_or_a_device_map():
    assert [auto_lanes(n, "cpu") for n in (1, 2, 3, 16)] == [1, 2, 3, 4]
    assert auto_lanes(16, "cuda:0") == 1 and auto_lanes(16, "cpu", "balanced") == 1


def test_a_shared_bar_passes_every_update_through():
    class Counter:
        def __init__(self) -> None:
            self.n, self.closed, self.postfix = 0, False, ""

        def update(self, n: int = 1) -> None:
            self.n += n

        def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
            self.postfix = s

        def close(self) -> None:
            self.closed = True

    counter = Counter()
    bar = SharedBar(counter)
    list(in_lanes(lambda _: [bar.update(1) for _ in range(100)], range(8), 4))
    bar.set_postfix_str("x")
    bar.close()
    assert (counter.n, counter.postfix, counter.closed) == (800, "x", True)
