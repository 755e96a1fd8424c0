"""The audit log, `<common dir>/hf/audit.log`: one JSON object per line for every
state change, with its time, its actor and the batch or part it concerns.

A line is `{"action", "at", "t", "actor", ...fields}`: `at` the UTC time to the
second (timefmt), `t` the same moment in seconds since the epoch to the
millisecond (durations need better than seconds), `actor` who did it (a
person, a part's worker, the sweep, a queue watcher). Writers append whole
lines (`atomic.append_line`); a line a killed writer left torn is kept as it
is, reported by `read`, and the next line starts a line of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout import timefmt

LOG_NAME = "audit.log"

# Who acts, when a command says so for its whole run (the sweep, a queue
# watcher); otherwise a part's worker (the marker in the environment) or a person.
_ACTING: list[dict[str, Any]] = []


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # (no passwd entry, no LOGNAME: a container's uid)
        return str(os.getuid())


def actor() -> dict[str, Any]:
    """Who acts now: `{"kind", "name", "pid"}`; kind is `user`, `worker`, `sweep` or
    `watcher`."""
    if _ACTING:
        return dict(_ACTING[-1])
    batch, part = os.environ.get("HF_BATCH"), os.environ.get("HF_PART")
    if batch and part:
        return {"kind": "worker", "name": f"{batch}/{part}", "pid": os.getpid()}
    return {"kind": "user", "name": _user(), "pid": os.getpid()}


@contextlib.contextmanager
def acting_as(kind: str) -> Iterator[None]:
    """What is audited inside the block names `kind` (the sweep, a watcher) as its actor."""
    _ACTING.append({"kind": kind, "name": _user(), "pid": os.getpid()})
    try:
        yield
    finally:
        _ACTING.pop()


def line(action: str, fields: dict[str, Any]) -> str:
    """The audit line of `action` with `fields` (a caller's `actor` wins)."""
    now = time.time()
    record = {"at": timefmt.iso(now), "t": round(now, 3), "action": action, "actor": actor(),
              **fields}
    return json.dumps(record, sort_keys=True, default=str)


def describe_actor(who: Any) -> str:
    """An actor as one short word pair: `user ana`, `worker b1/api`, `sweep`."""
    if not isinstance(who, dict):
        return "?"
    kind = str(who.get("kind", "?"))
    return kind if kind in ("sweep", "watcher") else f"{kind} {who.get('name', '?')}"


_LAST_TIME = 253402300799.0  # 9999-12-31T23:59:59Z, the last time a timestamp can say


@dataclass
class Event:
    """One line of the log, by its line number (from 1)."""

    number: int
    data: dict[str, Any]

    @property
    def action(self) -> str:
        return str(self.data.get("action", ""))

    @property
    def time(self) -> float:
        """Seconds since the epoch (`t`, or `at` on lines written before `t` was). A
        `t` no clock gives (NaN, infinite, before 1970 or after 9999: an edited or
        damaged line) is not believed."""
        t = self.data.get("t")
        if isinstance(t, int | float) and not isinstance(t, bool) and 0 <= t <= _LAST_TIME:
            return float(t)
        return timefmt.parse_iso(self.data.get("at")) or 0.0

    @property
    def batch(self) -> str | None:
        found = self.data.get("batch")
        return found if isinstance(found, str) else None

    @property
    def part(self) -> str | None:
        found = self.data.get("part")
        return found if isinstance(found, str) else None

    def names(self, part: str) -> bool:
        """Whether the event concerns part `part` (its own, or among `parts`)."""
        parts = self.data.get("parts")
        return self.part == part or (isinstance(parts, list) and part in parts)


@dataclass
class Torn:
    """A line that is not a JSON object: a writer was cut off (killed, a full disk)."""

    number: int
    text: str

    def to_data(self) -> dict[str, Any]:
        return {"line": self.number, "text": self.text[:200]}


@dataclass
class Reading:
    events: list[Event] = field(default_factory=list)
    torn: list[Torn] = field(default_factory=list)
    # how far the log was read (bytes), and its last line number: where to go on
    offset: int = 0
    lines: int = 0


def parse(data: bytes, reading: Reading, *, final: bool) -> int:
    """Add the complete lines of `data` (read at `reading.offset`) to `reading`;
    returns how many bytes were used. A last line without its newline is left
    for the next read (a writer may be writing it), unless `final`."""
    used = 0
    while used < len(data):
        end = data.find(b"\n", used)
        if end < 0:
            if not final:
                break
            end = len(data)
        raw = data[used:end]
        used = min(end + 1, len(data))
        if not raw.strip():
            continue
        reading.lines += 1
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if isinstance(value, dict):
            reading.events.append(Event(reading.lines, value))
        else:
            reading.torn.append(Torn(reading.lines, raw.decode("utf-8", "replace")))
    reading.offset += used
    return used


def read(path: Path, *, final: bool = True) -> Reading:
    """Every line of the log at `path` (none when it does not exist yet)."""
    reading = Reading()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return reading
    parse(data, reading, final=final)
    return reading


def read_more(path: Path, reading: Reading) -> list[Event]:
    """The events written since `reading` was last read (its offset moves on; its
    `events` and `torn` are then only the new ones); a log that got shorter
    (replaced) is read again from its start."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < reading.offset:
                reading.offset, reading.lines = 0, 0
            handle.seek(reading.offset)
            data = handle.read()
    except FileNotFoundError:
        return []
    reading.events, reading.torn = [], []
    parse(data, reading, final=False)
    return reading.events


# Writers race to append, so lines are in time order only to within this (seconds).
_ORDER_SLACK = 60.0


def recent(path: Path, since: float) -> list[Event]:
    """The events at or after `since` (seconds since the epoch), reading only the
    log's tail (lines are appended in time order): what a count over the last
    hour needs, whatever the size of the log."""
    window = 1 << 16
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            while True:
                start = max(0, size - window)
                handle.seek(start)
                data = handle.read(size - start)
                if start > 0:  # the first line is cut by the window
                    data = data[data.find(b"\n") + 1:]
                reading = Reading()
                parse(data, reading, final=True)
                found = reading.events
                if start == 0 or (found and found[0].time < since - _ORDER_SLACK):
                    return [e for e in found if e.time >= since]
                window *= 4
    except FileNotFoundError:
        return []
