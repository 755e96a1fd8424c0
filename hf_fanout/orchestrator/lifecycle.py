"""Part state changes a worker reports: done, blocked. Both are idempotent."""

from __future__ import annotations

from hf_fanout.errors import HfError
from hf_fanout.orchestrator.records import BLOCKED, DONE, JOINED, Part, now
from hf_fanout.orchestrator.workspace import Workspace


def _reload(ws: Workspace, part: Part) -> Part:
    fresh = ws.store.load_part(part.batch, part.name)
    if fresh.state == JOINED:
        raise HfError(f"part {part.batch}/{part.name} is already joined",
                      "nothing to change; `hf status` shows the batch")
    return fresh


def mark_done(ws: Workspace, part: Part, note: str | None) -> tuple[Part, bool]:
    """Returns the part and whether anything changed."""
    with ws.store.state_lock():
        part = _reload(ws, part)
        changed = part.state != DONE or (note is not None and note != part.note)
        if part.state != DONE:
            part.state = DONE
            part.done_at = now()
            part.reason = None
        if note is not None:
            part.note = note
        if changed:
            ws.store.save_part(part)
    if changed:
        ws.store.audit("done", batch=part.batch, part=part.name, note=note)
    return part, changed


def mark_blocked(ws: Workspace, part: Part, reason: str) -> tuple[Part, bool]:
    with ws.store.state_lock():
        part = _reload(ws, part)
        changed = part.state != BLOCKED or part.reason != reason
        if changed:
            part.state = BLOCKED
            part.reason = reason
            part.blocked_at = now()
            ws.store.save_part(part)
    if changed:
        ws.store.audit("blocked", batch=part.batch, part=part.name, reason=reason)
    return part, changed

