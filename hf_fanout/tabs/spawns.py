"""Spawns from the handoff queue, counted under a lock, so that takers racing
for the last place under `max_spawns_per_hour` open one tab between them.

A taker reserves its spawn before it claims an entry: holding
`<common>/hf/locks/spawn.lock` it counts the spawns of the last hour (the
audit log's `spawn` lines) plus the reservations of the other live takers
(`<common>/hf/queue/spawning/<pid>.json`) and, below the limit, writes its
own. The claim itself (tabs/queue.py) stays outside the lock and exactly
once by link(), so a taker stopped inside it holds up nobody. Once it has
its entry, the taker audits the spawn and removes its reservation under the
lock again, so a count sees one of the two, never both or neither. A taker
that claims nothing removes its reservation; one that died leaves a
reservation its dead process makes void.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hf_fanout import atomic, locks, processes
from hf_fanout.core import limits
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import StateCorrupt
from hf_fanout.faults import fault_point
from hf_fanout.tabs import queue

LOCK_WAIT = 10.0  # s: the lock is held for one count, a few milliseconds


def _dir(ws: Workspace) -> Path:
    return queue.queue_dir(ws) / "spawning"


def _mine(ws: Workspace) -> Path:
    return _dir(ws) / f"{os.getpid()}.json"


def in_flight(ws: Workspace) -> int:
    """Reservations of live takers other than this process; void ones are removed."""
    count = 0
    try:
        paths = sorted(_dir(ws).glob("*.json"))
    except OSError:
        return 0
    for path in paths:
        if path == _mine(ws):
            continue
        try:
            data = atomic.read_json(path, "spawn reservation")
        except StateCorrupt:
            data = None  # (torn by a writer that was killed): void
        ident = processes.Identity.from_dict(data) if isinstance(data, dict) else None
        if ident is not None and processes.is_alive(ident) is not False:
            count += 1
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return count


def count(ws: Workspace) -> int:
    """Spawns of the last hour plus those other takers are making now."""
    return limits.spawns_in_last_hour(ws) + in_flight(ws)


class Reservation:
    """One spawn this taker may make: `spend` audits it once its entry is claimed."""

    def __init__(self, ws: Workspace, allowed: bool) -> None:
        self.ws, self.allowed, self.spent = ws, allowed, False

    def __bool__(self) -> bool:
        return self.allowed

    def spend(self, **fields: Any) -> None:
        """Audit the `spawn` and drop the reservation under the lock, so that a
        count never sees both or neither."""
        with _lock(self.ws):
            self.ws.store.audit("spawn", **fields)
            _drop(self.ws)
        self.spent = True


def _drop(ws: Workspace) -> None:
    """Remove this taker's reservation, and the folder once it is empty (no folder
    of hf's is left empty behind). Under the lock: reservations are made under it."""
    atomic.remove_durably(_mine(ws))
    with contextlib.suppress(OSError):  # (another taker's reservation is in it)
        _dir(ws).rmdir()


def _lock(ws: Workspace) -> Any:
    return locks.hold(ws.store.lock_file("spawn"), wait=LOCK_WAIT, what="spawn count")


@contextlib.contextmanager
def reserved(ws: Workspace, allow: Callable[[int], bool]) -> Iterator[Reservation]:
    """Reserve one spawn when `allow(count)` says yes (the reservation is true).
    The caller claims its entry inside and then spends the reservation; one not
    spent is dropped on the way out."""
    fault_point("spawn")
    with _lock(ws):
        allowed = allow(count(ws))
        if allowed:
            me = processes.identity_of(os.getpid())
            atomic.atomic_write_json(_mine(ws), me.to_dict() if me else {})
    reservation = Reservation(ws, allowed)
    try:
        yield reservation
    finally:
        if allowed and not reservation.spent:
            with _lock(ws):
                _drop(ws)
