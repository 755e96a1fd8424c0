"""A batch's time, read from its audit events: per part the spans it spent
running, idle, waiting, blocked and done, and the figures `hf report` shows
(wall, serial, speedup, efficiency, the serial fraction). Pure: events in,
figures out.

A run of a batch is what the audit log holds from its `split` line on (an id
can be used again once `hf gc` collected it: each split starts a new run).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hf_fanout.core.audit import Event

RUNNING = "running"
IDLE = "idle"
WAITING = "waiting"
BLOCKED = "blocked"
DONE = "done"
SPAN_STATES = (RUNNING, IDLE, WAITING, BLOCKED, DONE)


@dataclass(frozen=True)
class Span:
    state: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)

    def to_data(self) -> dict[str, Any]:
        return {"state": self.state, "start": round(self.start, 3), "end": round(self.end, 3),
                "seconds": round(self.seconds, 3)}


@dataclass
class PartTime:
    name: str
    spans: list[Span]
    estimate_minutes: float | None = None
    state: str = ""  # the part's recorded state (or the last one the log shows)
    done_at: float | None = None  # when it was first done, while the run lasted

    def seconds(self, state: str) -> float:
        return sum(s.seconds for s in self.spans if s.state == state)

    @property
    def active(self) -> float:
        """Time worked: running, not idle, not waiting for the person, not blocked."""
        return self.seconds(RUNNING)

    @property
    def ratio(self) -> float | None:
        """Actual (active) time over the estimate, once the part is done."""
        if not self.estimate_minutes or self.done_at is None:
            return None
        return self.active / (self.estimate_minutes * 60)

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state,
                **{f"{s}_seconds": round(self.seconds(s), 3) for s in SPAN_STATES},
                "active_seconds": round(self.active, 3),
                "estimate_minutes": self.estimate_minutes,
                "ratio": None if self.ratio is None else round(self.ratio, 3),
                "done_at": self.done_at, "spans": [s.to_data() for s in self.spans]}


@dataclass
class BatchTime:
    batch: str
    start: float
    end: float
    ended: bool  # joined (or dropped): `end` is when; otherwise `end` is now
    parts: list[PartTime]
    join_seconds: float | None = None

    @property
    def wall(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def serial(self) -> float:
        """The time one agent working the parts one after another would have taken."""
        return sum(p.active for p in self.parts)

    @property
    def speedup(self) -> float | None:
        return self.serial / self.wall if self.wall > 0 else None

    @property
    def efficiency(self) -> float | None:
        return None if self.speedup is None or not self.parts else self.speedup / len(self.parts)

    @property
    def serial_fraction(self) -> float | None:
        return serial_fraction(self.speedup, len(self.parts))

    def to_data(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return {"batch": self.batch, "start": round(self.start, 3), "end": round(self.end, 3),
                "ended": self.ended, "wall_seconds": round(self.wall, 3),
                "serial_seconds": round(self.serial, 3), "speedup": rounded(self.speedup),
                "efficiency": rounded(self.efficiency),
                "serial_fraction": rounded(self.serial_fraction),
                "join_seconds": rounded(self.join_seconds),
                "parts": [p.to_data() for p in self.parts]}


def serial_fraction(speedup: float | None, parts: int) -> float | None:
    """Amdahl's serial fraction estimated from a measured speedup on `parts` workers
    (the Karp-Flatt metric): e = (1/S - 1/p) / (1 - 1/p). None for one part
    (nothing ran in parallel) or no speedup measured."""
    if speedup is None or speedup <= 0 or parts < 2:
        return None
    return (1 / speedup - 1 / parts) / (1 - 1 / parts)


# --- runs of a batch in the audit log -----------------------------------------


@dataclass
class Run:
    """One batch from its `split` line: its parts, their estimates, its events."""

    batch: str
    parts: list[str]
    estimates: dict[str, float]
    start: float
    events: list[Event] = field(default_factory=list)
    joined: set[str] = field(default_factory=set)
    end: float | None = None  # when it was joined (every part) or dropped
    join_seconds: float = 0.0
    joins: int = 0


def runs(events: Iterable[Event]) -> list[Run]:
    """Every run of every batch, in the order they were split."""
    found: list[Run] = []
    current: dict[str, Run] = {}
    for event in events:
        batch = event.batch
        if batch is None:
            continue
        if event.action == "split":
            parts = [p for p in event.data.get("parts") or [] if isinstance(p, str)]
            raw = event.data.get("estimates")
            estimates = {str(k): float(v) for k, v in raw.items()
                         if isinstance(v, int | float) and not isinstance(v, bool)} \
                if isinstance(raw, dict) else {}
            current[batch] = Run(batch, parts, estimates, event.time)
            found.append(current[batch])
            continue
        run = current.get(batch)
        if run is not None and event.action == "undo":  # a join taken back: the parts
            # it names (all, when it names none) are in again, and the batch goes on
            undone = {p for p in event.data.get("parts") or [] if isinstance(p, str)}
            run.joined = run.joined - undone if undone else set()
            run.end = None
        if run is None or run.end is not None:
            continue  # before its split (a record older than the log), or after its end
        run.events.append(event)
        if event.action == "join":
            run.joined.update(p for p in event.data.get("parts") or [] if isinstance(p, str))
            seconds = event.data.get("seconds")
            if isinstance(seconds, int | float):
                run.join_seconds += float(seconds)
            run.joins += 1
            if set(run.parts) <= run.joined | _dropped(run):
                run.end = event.time
        elif event.action in ("drop", "batch-joined"):
            run.end = event.time
    return found


def _dropped(run: Run) -> set[str]:
    return {e.part for e in run.events if e.action == "drop-part" and e.part}


# --- per part spans ------------------------------------------------------------


@dataclass
class _Flags:
    working: bool = False  # a worker lives (or, with none ever recorded, not yet done)
    idle: bool = False
    gap: bool = False  # the supervisor was suspended (a heartbeat gap)
    waiting: bool = False
    blocked: bool = False
    done: bool = False
    joined: bool = False

    def state(self) -> str | None:
        if self.joined:
            return None
        if self.blocked:
            return BLOCKED
        if self.working:
            return WAITING if self.waiting else IDLE if self.idle or self.gap else RUNNING
        return DONE if self.done else None


def _changes(run: Run, part: str) -> list[tuple[float, int, str, Any]]:
    """The part's changes of condition, as (when, order, what, value)."""
    out: list[tuple[float, int, str, Any]] = []
    started: int | None = None  # where the last worker's start is in `out`
    for event in run.events:
        t, n, data = event.time, event.number, event.data
        action = event.action
        if action == "undo" and (event.names(part) or not data.get("parts")):
            out += [(t, n, "joined", False), (t, n, "done", True)]  # back to done
            continue
        if not event.names(part):
            continue
        if action == "worker":
            started = len(out)
            out += [(t, n, "working", True), (t, n, "blocked", False), (t, n, "idle", False)]
        elif action == "exit":
            # `seconds` is how long `hf run` saw the process run: it started then,
            # a moment before the `worker` line was written (more under load)
            seconds = data.get("seconds")
            if started is not None and isinstance(seconds, int | float):
                began = t - float(seconds)
                if out[started][0] - 60 < began < out[started][0]:
                    out[started:started + 3] = [(began, m, w, v)
                                                for _t, m, w, v in out[started:started + 3]]
            started = None
            out += [(t, n, "working", False), (t, n, "idle", False), (t, n, "waiting", False)]
            if data.get("done"):
                out.append((t, n, "done", True))
        elif action == "worker-idle":
            since = data.get("since_t")
            out.append((float(since) if isinstance(since, int | float) else t, n, "idle", True))
        elif action == "worker-active":
            out.append((t, n, "idle", False))
        elif action == "heartbeat-gap":
            seconds = data.get("seconds")
            if isinstance(seconds, int | float):
                out += [(t - float(seconds), n, "gap", True), (t, n, "gap", False)]
        elif action == "agent-state":
            since = data.get("since_t")
            when = float(since) if isinstance(since, int | float) else t
            out.append((when, n, "waiting", data.get("state") == "waiting"))
        elif action == "blocked":
            out.append((t, n, "blocked", True))
        elif action == "done":
            out += [(t, n, "done", True), (t, n, "blocked", False), (t, n, "waiting", False)]
        elif action in {"join", "drop-part"}:
            out.append((t, n, "joined", True))
    return sorted(out, key=lambda c: (c[0], c[1]))


def part_time(run: Run, part: str, end: float, last_seen: float | None = None) -> PartTime:
    """The part's spans from the run's start to `end`; `last_seen`: when its last
    worker, gone without an `exit` line (its `hf run` killed too), was last seen."""
    changes = _changes(run, part)
    started = [t for t, _n, what, value in changes if what == "working" and value]
    if last_seen is not None and started and last_seen >= started[-1]:
        changes.append((last_seen, 1 << 61, "working", False))
        changes.sort(key=lambda c: (c[0], c[1]))
    supervised = bool(started)
    flags = _Flags(working=not supervised)  # no `hf run`: worked from the split until done
    spans: list[Span] = []
    done_at: float | None = None
    at = run.start
    for raw, _n, what, value in [*changes, (end, 1 << 62, "", None)]:
        when = min(max(raw, run.start), end)
        state = flags.state()
        if state is not None and when > at:
            if spans and spans[-1].state == state and spans[-1].end == at:
                spans[-1] = Span(state, spans[-1].start, when)
            else:
                spans.append(Span(state, at, when))
        at = max(at, when)
        if not what:
            break
        setattr(flags, what, value)
        if what == "done" and value:
            if not supervised:
                flags.working = False
            if done_at is None:
                done_at = when
    return PartTime(part, spans, run.estimates.get(part), done_at=done_at)


def build(run: Run, now: float, *, parts: list[str] | None = None,
          estimates: dict[str, float | None] | None = None,
          states: dict[str, str] | None = None,
          last_seen: dict[str, float] | None = None) -> BatchTime:
    """The run's figures up to its end (or `now`, while it lasts); `parts`,
    `estimates` and `states` from the batch's records when it has them, and
    `last_seen` (see `part_time`) from the parts' heartbeats."""
    end = run.end if run.end is not None else max(now, run.start)
    names = parts if parts is not None else run.parts
    times = []
    for name in names:
        found = part_time(run, name, end, (last_seen or {}).get(name))
        if estimates is not None and name in estimates:
            found.estimate_minutes = estimates[name]
        found.state = (states or {}).get(name) or _last_state(found)
        times.append(found)
    return BatchTime(run.batch, run.start, end, run.end is not None, times,
                     run.join_seconds if run.joins else None)


def _last_state(part: PartTime) -> str:
    return part.spans[-1].state if part.spans else "not started"


def columns(batch: BatchTime, width: int) -> list[tuple[str, list[str | None]]]:
    """Each part's bar as `width` cells: the state each cell's slice of the wall time
    spent most in (None: no span there)."""
    wall = batch.wall or 1.0
    step = wall / width
    bars = []
    for part in batch.parts:
        cells: list[str | None] = []
        for i in range(width):
            lo, hi = batch.start + i * step, batch.start + (i + 1) * step
            best, most = None, 0.0
            for span in part.spans:
                share = min(hi, span.end) - max(lo, span.start)
                if share > most:
                    best, most = span.state, share
            cells.append(best)
        bars.append((part.name, cells))
    return bars
