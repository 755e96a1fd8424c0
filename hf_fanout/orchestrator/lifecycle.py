"""Part state changes a worker reports: done, blocked. Both are idempotent."""

from __future__ import annotations

from hf_fanout.core import states
from hf_fanout.core.records import BLOCKED, DONE, Part, now
from hf_fanout.core.workspace import Workspace


def mark_done(ws: Workspace, part: Part, note: str | None) -> tuple[Part, bool]:
    """Returns the part and whether anything changed."""

    def with_note(fresh: Part) -> None:
        if note is not None:
            fresh.note = note

    fresh, changed = states.change(ws, part.batch, part.name, DONE, action="done",
                                   update=with_note, note=note)
    if changed and part.state != DONE:
        _notify(ws, fresh, DONE, note or "")
    return fresh, changed


def mark_blocked(ws: Workspace, part: Part, reason: str,
                 when: states.Condition | None = None) -> tuple[Part, bool]:
    """Blocked with `reason`; with `when`, only if it holds for the record as it is
    now (the sweep: only a part that is still an orphan)."""

    def with_reason(fresh: Part) -> None:
        if fresh.reason != reason:
            fresh.reason = reason
            fresh.blocked_at = now()

    fresh, changed = states.change(ws, part.batch, part.name, BLOCKED, action="blocked",
                                   update=with_reason, when=when, reason=reason)
    if changed and when is None:  # the sweep notifies its orphans itself, in one line
        _notify(ws, fresh, BLOCKED, reason)
    return fresh, changed


def _notify(ws: Workspace, part: Part, state: str, detail: str) -> None:
    from hf_fanout.orchestrator import notify

    notify.transition(ws.repo.common_dir, part.batch, part.name, state, detail,
                      settings=ws.settings)
