"""`hf report`: what a batch's records say about how it went, to split the next
one better: its time figures and timeline (core/timeline.py), its parts'
estimates against their actual time over the repository's past batches
(core/calibration.py), the timeline as SVG, and the handoff-ready state in
Markdown (core/state_summary.py). Reads only; `--svg` writes the one file."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout import atomic, timefmt
from hf_fanout.core import audit, calibration, state_summary, timeline
from hf_fanout.core.records import JOINED, Batch, Part
from hf_fanout.core.remote_refs import remote_of
from hf_fanout.core.timeline import BatchTime
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput


@dataclass
class Report:
    time: BatchTime | None
    history: list[calibration.BatchCalibration] = field(default_factory=list)
    calibration: str | None = None
    svg: str | None = None  # the file written
    state: str | None = None  # the Markdown of --state

    def to_data(self) -> dict[str, Any]:
        return {"report": None if self.time is None else self.time.to_data(),
                "history": [c.to_data() for c in self.history],
                "calibration": {"ratio": _rounded(calibration.overall(self.history)),
                                "trend": calibration.trend(self.history),
                                "sentence": self.calibration},
                "svg": self.svg, "state": self.state}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def report(ws: Workspace, batch_id: str | None, *, svg: Path | None = None,
           state: bool = False, history: bool = False) -> Report:
    """`hf report [BATCH] [--svg FILE] [--state] [--history]`: the batch's figures,
    the calibration of past batches, and what the options ask for."""
    if batch_id is None and (not history or svg is not None or state):
        raise BadInput("name the batch to report on",
                       "hf report BATCH (or hf report --history for the past batches)")
    events = audit.read(ws.store.audit_file).events
    past = past_batches(events)
    result = Report(None, past, calibration.sentence(past))
    if batch_id is None:
        return result
    logged = [r for r in timeline.runs(events) if r.batch == batch_id]
    if not ws.store.has_batch(batch_id) and logged and not state:
        # forgotten by `hf gc`: its record is gone, its log lines are not
        result.time = timeline.build(logged[-1], timefmt.clock())
    else:
        result.time = batch_time(ws, ws.store.load_batch(batch_id), events)
    if svg is not None:
        result.svg = write_svg(result.time, svg)
    if state:
        result.state = state_summary.state_markdown(
            state_facts(ws, batch_id, result.time, result.calibration, events))
    return result


def batch_time(ws: Workspace, batch: Batch, events: list[audit.Event] | None = None,
               ) -> BatchTime:
    """The batch's figures from the audit log and its records."""
    if events is None:
        events = audit.read(ws.store.audit_file).events
    parts = ws.store.load_parts(batch)
    found = [r for r in timeline.runs(events) if r.batch == batch.id]
    run = found[-1] if found else timeline.Run(
        batch.id, batch.parts, {}, timefmt.parse_iso(batch.created) or timefmt.clock())
    if run.end is None and batch.state == JOINED:  # joined before the log said so in full
        run.end = timefmt.parse_iso(batch.joined_at)
    return timeline.build(run, timefmt.clock(), parts=[p.name for p in parts],
                          estimates={p.name: _estimate(p) for p in parts},
                          states={p.name: p.state for p in parts},
                          last_seen=_last_seen(ws, parts))


def _last_seen(ws: Workspace, parts: list[Part]) -> dict[str, float]:
    """When each part's worker that died without its exit recorded (its `hf run`
    killed too) was last seen alive: its last heartbeat."""
    from hf_fanout.liveness import heartbeat, judge

    seen = {}
    for part in parts:
        if part.worker is None or part.exit is not None or judge.worker_alive(part) is not False:
            continue
        beat = heartbeat.read_heartbeat(ws.store, part.batch, part.name) or {}
        if isinstance(beat.get("at"), int | float):
            seen[part.name] = float(beat["at"])
    return seen


def _estimate(part: Part) -> float | None:
    value = part.estimate_minutes
    return float(value) if isinstance(value, int | float) and value > 0 else None


def past_batches(events: list[audit.Event]) -> list[calibration.BatchCalibration]:
    """The calibration of every ended batch in the log, oldest first."""
    found = []
    for run in timeline.runs(events):
        if run.end is None:
            continue
        mine = calibration.of_batch(timeline.build(run, run.end))
        if mine is not None:
            found.append(mine)
    return sorted(found, key=lambda c: c.ended)


def calibration_note(ws: Workspace) -> str | None:
    """`hf split`'s line on past estimates (None when no past batch has one)."""
    return calibration.sentence(past_batches(audit.read(ws.store.audit_file).events))


def write_svg(batch: BatchTime, path: Path) -> str:
    from hf_fanout.core.timeline_svg import svg

    target = path.expanduser().absolute()
    if target.is_dir():
        raise BadInput(f"--svg {path} is a directory", "name a file, e.g. --svg b1.svg")
    if not target.parent.is_dir():
        raise BadInput(f"--svg {path}: directory {target.parent} does not exist",
                       "create it first, or name a file in an existing directory")
    if target.exists() and not target.is_file():
        # (a device or a pipe: written by renaming over it, /dev/null would be replaced)
        raise BadInput(f"--svg {path} is not a regular file",
                       "name a file to write, e.g. --svg b1.svg")
    try:
        atomic.atomic_write(target, svg(batch).encode("utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot write --svg {path}: {exc.strerror or exc}",
                       "name a file in a directory you can write, e.g. --svg b1.svg") from None
    return str(target)


# --- the state summary -------------------------------------------------------


def state_facts(ws: Workspace, batch_id: str, time: BatchTime, calibration_line: str | None,
                events: list[audit.Event]) -> state_summary.StateFacts:
    """What the state summary says, from the records, the log and liveness."""
    from hf_fanout.liveness import judge
    from hf_fanout.liveness.rescue import rescue_ref

    batch = ws.store.load_batch(batch_id)
    parts = ws.store.load_parts(batch)
    facts = state_summary.StateFacts(batch.id, batch.state, batch.base, time, {},
                                     decisions(events, batch, parts, time.start),
                                     calibration=calibration_line)
    for part in parts:
        verdict = judge.classify(ws, part)
        facts.states[part.name] = verdict.state
        saved = rescue_ref(part) if ws.repo.ref_target(rescue_ref(part)) else ""
        if verdict.state in (judge.ORPHAN, judge.MISSING, "blocked"):
            facts.blockers.append(state_summary.Blocker(part.name, verdict.state, verdict.why,
                                                        saved))
        remote = remote_of(part)
        if verdict.state not in ("done", JOINED, "dropped"):
            facts.unfinished.append(state_summary.Unfinished(
                part.name, verdict.state, part.worktree, part.branch,
                f"hf take {remote} {part.batch}/{part.name}" if remote else
                resume_command(part, alive=bool(verdict.alive)), saved, remote or ""))
    return facts


def resume_command(part: Part, *, alive: bool) -> str:
    """The command that carries the part on: its tab opened again with its agent
    (or focused, when it is alive); with a recorded worker command, that command
    under `hf run` in its worktree."""
    command = (part.worker or {}).get("command")
    if alive or not isinstance(command, str) or not command:
        return f"hf open {part.batch}/{part.name}"
    return f"cd {shlex.quote(part.worktree)} && hf run -- {command}"


def decisions(events: list[audit.Event], batch: Batch, parts: list[Part],
              since: float) -> list[state_summary.Decision]:
    """The decisions parts recorded (`hf note --decision`) and their done notes."""
    found = []
    for event in events:
        if event.batch != batch.id or event.time < since or not event.part:
            continue
        text = event.data.get("text") if event.action == "decision" else \
            event.data.get("note") if event.action == "done" else None
        if isinstance(text, str) and text.strip():
            found.append(state_summary.Decision(
                event.part, text, event.time,
                "decision" if event.action == "decision" else "done note"))
    noted = {d.part for d in found if d.kind == "done note"}
    for part in parts:  # a note the log does not hold (an older log)
        if part.note and part.name not in noted:
            at = timefmt.parse_iso(part.done_at) or since
            found.append(state_summary.Decision(part.name, part.note, at, "done note"))
    return sorted(found, key=lambda d: d.at)


def state_markdown(ws: Workspace, batch_id: str) -> str:
    """The handoff-ready state of the batch, in Markdown (`hf report --state`)."""
    return report(ws, batch_id, state=True).state or ""


def markdown(ws: Workspace, batch_id: str) -> str:
    """The batch's report in Markdown: its figures and each part's times (the body
    of `hf publish --pr` uses it)."""
    events = audit.read(ws.store.audit_file).events
    return state_summary.report_markdown(batch_time(ws, ws.store.load_batch(batch_id), events),
                                         calibration.sentence(past_batches(events)))


@dataclass
class Handoff:
    """What `hf handoff` wrote (`entry`), or, inside a part's sandbox, the entry it
    asked hf outside to write (`requested`; `waiting` while no hf outside took it)."""

    entry: Any
    requested: bool = False
    waiting: bool = False


def handoff_entry(ws: Workspace, *, report: str | None = None, text: str,
                  dry_run: bool = False, **entry: Any) -> Handoff:
    """`hf handoff`: the queue entry, with `report` (a batch) its state summary
    after the next task's text, so the tab that takes it starts from there. Inside
    a part's sandbox (the queue is read-only there) the entry becomes a request in
    the part's inbox, which its `hf run` writes into the queue."""
    from hf_fanout.core import inbox
    from hf_fanout.tabs.queue import write_entry

    if report is not None:
        if not text.strip():
            raise BadInput("--next is required", "say what the next tab should do")
        text = f"{text.strip()}\n\n{state_markdown(ws, report)}"
    if not inbox.sandboxed():
        return Handoff(write_entry(ws, text=text, dry_run=dry_run, **entry))
    checked = write_entry(ws, text=text, dry_run=True, **entry)  # the same checks
    if dry_run:
        return Handoff(checked, requested=True)
    if len(text.encode()) > inbox.MAX_HANDOFF:
        raise BadInput(f"the handoff is too long to pass out of the sandbox "
                       f"({len(text.encode())} bytes, at most {inbox.MAX_HANDOFF})",
                       "shorten --next, or leave --report out")
    batch, part = os.environ.get("HF_BATCH", ""), os.environ.get("HF_PART", "")
    path = inbox.post(ws.repo.common_dir, batch, part, "handoff", text=text, pid=os.getpid(),
                      **{key: entry.get(key) for key in inbox.HANDOFF_FIELDS})
    return Handoff(checked, requested=True, waiting=not inbox.wait_applied(path))
