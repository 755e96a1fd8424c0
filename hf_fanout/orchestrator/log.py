"""`hf log`: the audit log as a timeline, filtered by batch, part and time, and
followed live (`--follow`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hf_fanout import timefmt
from hf_fanout.core import audit
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput

# How often `--follow` looks at the log: a new line shows within this.
FOLLOW_INTERVAL = 0.1


@dataclass(frozen=True)
class Filter:
    batch: str | None = None
    part: str | None = None
    since: float | None = None  # seconds since the epoch

    def keeps(self, event: audit.Event) -> bool:
        if self.batch is not None and event.batch != self.batch:
            return False
        if self.part is not None and not event.names(self.part):
            return False
        return self.since is None or event.time >= self.since


def make_filter(batch: str | None, part: str | None, since: str | None) -> Filter:
    """The filter of `hf log [BATCH] [--part P] [--since WHEN]`; `--part B/P` names
    the batch too."""
    if part and "/" in part:
        named, _, part = part.partition("/")
        if batch and batch != named:
            raise BadInput(f"--part {named}/{part} is not in batch {batch}",
                           "name the part alone (--part api), or leave the batch out")
        batch = named
    moment = None
    if since is not None:
        moment = timefmt.since(since, timefmt.clock())
        if moment is None:
            raise BadInput(f"--since {since!r} is neither a duration nor a time",
                           "e.g. --since 2h, --since 30m, --since 2026-01-01T12:00:00Z")
    return Filter(batch, part or None, moment)


@dataclass
class LogView:
    events: list[audit.Event]
    torn: list[audit.Torn] = field(default_factory=list)
    now: float = 0.0

    def to_data(self) -> dict[str, Any]:
        return {"events": [event_data(e) for e in self.events],
                "torn": [t.to_data() for t in self.torn], "now": timefmt.iso(self.now)}


def event_data(event: audit.Event) -> dict[str, Any]:
    return {**event.data, "line": event.number}


def read_log(ws: Workspace, keep: Filter) -> LogView:
    """The events `keep` keeps, oldest first, and every torn line of the log."""
    reading = audit.read(ws.store.audit_file)
    return LogView([e for e in reading.events if keep.keeps(e)], reading.torn,
                   timefmt.clock())


def follow(ws: Workspace, keep: Filter, shown: Callable[[audit.Event], None],
           torn: Callable[[audit.Torn], None], *, stop: Callable[[], bool] = lambda: False,
           interval: float = FOLLOW_INTERVAL) -> int:
    """`hf log --follow`: what the log holds now, then every event as it is written
    (polled every `interval` s: works on any file system), until `stop()` or
    Ctrl-C. Returns how many events were shown."""
    reading = audit.Reading()
    count = 0
    try:
        while True:
            for event in audit.read_more(ws.store.audit_file, reading):
                if keep.keeps(event):
                    shown(event)
                    count += 1
            for line in reading.torn:
                torn(line)
            if stop():
                return count
            time.sleep(interval)
    except KeyboardInterrupt:
        return count
