"""Part state changes a worker reports: done, blocked. Both are idempotent."""

from __future__ import annotations

from hf_fanout.core import inbox, states
from hf_fanout.core.records import BLOCKED, DONE, JOINED, Part, now
from hf_fanout.core.remote_refs import remote_of, taken_from
from hf_fanout.core.workspace import Workspace


def mark_done(ws: Workspace, part: Part, note: str | None) -> tuple[Part, bool]:
    """Returns the part and whether anything changed. A part taken from a remote
    (`hf take`) is first pushed there, with its done ref: no push, no done. `part` is
    the record as just read: already done with that note, it is left as it is."""
    if part.state == DONE and note in (None, part.note) and taken_from(part) is None:
        return part, False  # (as read, nothing to change: no lock to take)
    if part.state == JOINED:
        return _done_again(ws, part, note)
    pushed = None
    if taken_from(part) is not None:
        from hf_fanout.orchestrator.take import push_done

        states.check(part, DONE)
        pushed = push_done(ws, part)

    def with_note(fresh: Part) -> None:
        if note is not None:
            fresh.note = note
        if pushed is not None:
            fresh.extra.setdefault("taken", {})["done_tip"] = pushed["tip"]

    fresh, changed = states.change(ws, part.batch, part.name, DONE, action="done",
                                   update=with_note, note=note)
    if pushed is not None and pushed["left_behind"]:
        ws.notices.append((f"{part.batch}/{part.name}: not pushed, outside the part's "
                           f"ownership and uncommitted: {', '.join(pushed['left_behind'][:10])}",
                           "they stay in the worktree here; the join never takes them"))
    if changed and part.state != DONE:
        _notify(ws, fresh, DONE, note or "")
    return fresh, changed


def _done_again(ws: Workspace, part: Part, note: str | None) -> tuple[Part, bool]:
    """`hf done` of a joined part: refused as before unless its branch got commits
    after its join, or its worktree's owned files changed since (not committed);
    then done again, for the next join to take those."""
    from hf_fanout.orchestrator.joined_parts import commits_after_join, work_after_join

    if remote_of(part) is not None:
        from hf_fanout.orchestrator.remote_parts import bring_after_join

        bring_after_join(ws, [part], quiet=False)  # (worked elsewhere: its remote has it)
    after = commits_after_join(ws, part)
    result = after.result if after is not None else work_after_join(ws, part)
    if result is None:
        states.check(part, DONE)  # (refused: already joined, nothing after)
    assert result is not None
    fresh, changed = states.reopen_joined(
        ws, part.batch, part.name, result,
        when=lambda now: now.joined_commit == part.joined_commit)
    if not changed:
        return fresh, False
    from hf_fanout.guard import mainhook

    mainhook.settle(ws)  # (a joined batch runs again: the main tree's hook comes back)
    if note is not None:
        fresh, _ = states.change(ws, part.batch, part.name, None, action="note",
                                 update=lambda p: setattr(p, "note", note), note=note)
    _notify(ws, fresh, DONE, note or "")
    return fresh, True


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
    """The person told of the transition: its tmux window's name, a notification."""
    from hf_fanout.orchestrator import notify
    from hf_fanout.tabs import window_marks

    window_marks.show(part.batch, part.name, state)
    notify.transition(ws.repo.common_dir, part.batch, part.name, state, detail,
                      settings=ws.settings)


def report_done(ws: Workspace, part: Part, note: str | None) -> tuple[Part, bool]:
    """`hf done`: marked at once, or from inside a sandbox asked of hf outside it."""
    if inbox.sandboxed():
        return _request(ws, part, "done", note=note)
    return mark_done(ws, part, note)


def report_blocked(ws: Workspace, part: Part, reason: str) -> tuple[Part, bool]:
    """`hf blocked`: as `report_done`."""
    if inbox.sandboxed():
        return _request(ws, part, "blocked", reason=reason)
    return mark_blocked(ws, part, reason)


def _rejection(ws: Workspace, request: str) -> str:
    """Why hf outside the sandbox did not apply the request file `request` (its audit line)."""
    from hf_fanout.core import audit

    found = [e for e in audit.read(ws.store.audit_file).events
             if e.action == "inbox-rejected" and e.data.get("file") == request]
    return str(found[-1].data.get("why")) if found else "see `hf log`"


def _request(ws: Workspace, part: Part, action: str, **fields: str | None) -> tuple[Part, bool]:
    """Post the request, wait (bounded) for the part's `hf run` to apply it; the
    part as it is then. Not applied in time: a notice says who will."""

    before = part.state
    path = inbox.post(ws.repo.common_dir, part.batch, part.name, action, **fields)
    if not inbox.wait_applied(path):
        ws.notices.append((f"{part.batch}/{part.name}: `{action}` is waiting in the part's "
                           "inbox; hf outside the sandbox applies it",
                           "it is applied by the part's `hf run`, `hf status` or `hf sweep`"))
        return part, True
    fresh = ws.store.load_part(part.batch, part.name)
    if action == "done" and fresh.state != DONE:
        from hf_fanout.errors import HfError

        raise HfError(f"{part.batch}/{part.name}: `hf done` was refused by hf outside the "
                      f"sandbox: {_rejection(ws, path.name)}",
                      "fix that, then `hf done` again (`hf log` has it as inbox-rejected)")
    return fresh, fresh.state != before or action == "blocked"
