"""How many of a split's checkouts run at once, found out while they run.

Whether a second checkout beside the first one pays depends on the machine, and
on its state: on some disks two writers finish two checkouts in little more
than the time of one; on others (a busy virtual disk, a page cache full of
what was just written) the kernel's cost of creating a file doubles with a
second writer and nothing is gained. So the split measures: one checkout alone,
then two together. If the two finished in at most `GAIN` of the time the two
would take one after another, the rest run `widest` at a time; otherwise one
at a time.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

GAIN = 0.9  # two together must take at most this much of twice one alone


class Pace:
    """The number of checkouts allowed at once (`width`), learned from the first
    three measured ones when `probe` (else `widest` from the start)."""

    def __init__(self, widest: int, *, probe: bool) -> None:
        self._widest = widest
        self._probing = probe and widest > 1
        self.width = 1 if self._probing else widest
        self._running = 0
        self._alone: float | None = None  # seconds of the checkout that ran alone
        self._pair: list[tuple[float, float]] = []  # (start, end) of the two together
        self.probed: tuple[float, float] | None = None  # (alone, together) once timed
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def slot(self, *, measured: bool = True) -> Iterator[None]:
        """Wait for a free slot, hold it during the block. A `measured` block that
        ends without an error teaches the probe; one that fails teaches nothing."""
        with self._changed:
            self._changed.wait_for(lambda: self._running < self.width)
            self._running += 1
        start = time.monotonic()
        ok = False
        try:
            yield
            ok = True
        finally:
            end = time.monotonic()
            with self._changed:
                self._running -= 1
                if ok and measured:
                    self._learn(start, end)
                self._changed.notify_all()

    def _learn(self, start: float, end: float) -> None:
        if not self._probing:
            return
        if self._alone is None:
            self._alone = end - start
            self.width = 2
            return
        self._pair.append((start, end))
        if len(self._pair) < 2:
            return
        together = max(e for _s, e in self._pair) - min(s for s, _e in self._pair)
        self.width = self._widest if together <= GAIN * 2 * self._alone else 1
        self.probed = (self._alone, together)
        self._probing = False
