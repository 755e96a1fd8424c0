"""The split's checkout pace: one alone, two together, then whichever wrote faster.
Real threads; a "checkout" is a block that sleeps, beside the others (the disk
keeps up with two writers) or behind a lock they share (it does not)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from hf_fanout.orchestrator.split_pace import Pace

STEP = 0.5  # seconds one modelled checkout takes alone (long enough that a
# loaded machine's delay in waking a thread, up to about 50 ms, does not tip the
# 0.9 threshold)


def run_checkouts(pace: Pace, count: int, work: Callable[[], None],
                  measured: Callable[[int], bool] = lambda _i: True) -> list[int]:
    """`count` checkouts in `count` threads through `pace`; how many ran at once
    each time one started."""
    seen: list[int] = []
    running = [0]
    guard = threading.Lock()

    def one(i: int) -> None:
        with pace.slot(measured=measured(i)):
            with guard:
                running[0] += 1
                seen.append(running[0])
            try:
                work()
            finally:
                with guard:
                    running[0] -= 1

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seen


def beside() -> None:
    time.sleep(STEP)


DISK = threading.Lock()


def behind_one_disk() -> None:
    with DISK:
        time.sleep(STEP)


def test_checkouts_that_overlap_well_go_on_widest_at_a_time() -> None:
    pace = Pace(4, probe=True)
    started = time.monotonic()
    seen = run_checkouts(pace, 8, beside)
    assert pace.width == 4
    assert seen[0] == 1 and max(seen) == 4  # alone first, then four side by side
    assert pace.probed is not None
    alone, together = pace.probed
    assert STEP <= alone < 1.5 * STEP and STEP <= together < 1.5 * STEP
    # one alone, two together, then five more four at a time: 4 steps (8 in a row)
    assert time.monotonic() - started < 6 * STEP


def test_checkouts_that_share_one_disk_go_on_one_at_a_time() -> None:
    pace = Pace(4, probe=True)
    seen = run_checkouts(pace, 8, behind_one_disk)
    assert pace.width == 1
    assert pace.probed is not None and pace.probed[1] >= 2 * STEP  # the two, one by one
    # one alone, then two at a time while the two are timed (the slot of the
    # first of them to end is taken before the second ends), then one at a time
    assert seen[0] == 1 and max(seen) == 2
    assert seen[4:] == [1, 1, 1, 1]


def test_without_the_probe_all_go_at_once() -> None:
    pace = Pace(4, probe=False)
    seen = run_checkouts(pace, 4, beside)
    assert pace.width == 4 and max(seen) == 4
    assert pace.probed is None  # nothing was timed


def test_an_unmeasured_checkout_holds_its_slot_but_teaches_nothing() -> None:
    # the first checkout of a split that unpacks objects runs beside the
    # unpacking: the one timed alone is the next, and it waits for the first
    pace = Pace(4, probe=True)
    order: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        with pace.slot(measured=False):
            first_in.set()
            time.sleep(STEP)
            order.append("first ends")

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait()
    with pace.slot():
        order.append("second starts")
    thread.join()
    assert order == ["first ends", "second starts"]
    assert pace.width == 2  # the second was the one alone: now two are timed together


def test_a_failed_checkout_does_not_count_as_the_one_alone() -> None:
    pace = Pace(4, probe=True)
    with pytest.raises(OSError), pace.slot():
        raise OSError("disk full")
    assert pace.width == 1  # still waiting for a checkout that ran to its end
    with pace.slot():
        time.sleep(0.01)
    assert pace.width == 2
