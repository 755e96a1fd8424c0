"""The part state machine: every change of a part's recorded state goes through here.

A change is a compare-and-set on the record under the state lock: the record
is read again under the lock, the caller's condition (`when`) is decided on
that fresh record, the transition is checked against `ALLOWED`, and the record
and the audit log are written. A decision taken from an older read (the sweep's
"orphan", seen before the part was marked done) can so never overwrite a newer
state.

States (docs/protocol.md): running -> done | blocked | dropped; done -> blocked |
joined | dropped | running; blocked -> done | running | dropped; joined -> done
only when a join is taken back (`hf undo`, which makes a joined batch running
again), or when the part's branch got commits after its join and its agent
says it is done again (`reopen_joined`: the next join takes what changed since
what the join took; a joined batch runs again); dropped is final. The sweep
shows derived states (idle, orphan, missing) without recording them, except
where it acts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hf_fanout.core.records import BLOCKED, DONE, DROPPED, JOINED, RUNNING, Batch, Part, now
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError

ALLOWED: dict[str, frozenset[str]] = {
    RUNNING: frozenset({DONE, BLOCKED, DROPPED}),
    DONE: frozenset({BLOCKED, JOINED, DROPPED, RUNNING}),
    BLOCKED: frozenset({DONE, RUNNING, DROPPED}),
    JOINED: frozenset(),
    DROPPED: frozenset(),
}
# Only taking a join back (`undo=True`) moves a part out of joined.
UNDONE: dict[str, frozenset[str]] = {JOINED: frozenset({DONE})}
# A batch: running until every part is joined (or dropped), or it is dropped; a
# joined one runs again only when its join is taken back (`mark_undone`).
BATCH_ALLOWED: dict[str, frozenset[str]] = {
    RUNNING: frozenset({JOINED, DROPPED}),
    JOINED: frozenset(),
    DROPPED: frozenset(),
}


Condition = Callable[[Part], bool]


class IllegalTransition(HfError):
    code = "illegal_transition"


def check(part: Part, to: str, *, undo: bool = False) -> None:
    """Refuse a change the state machine does not allow."""
    allowed = ALLOWED.get(part.state, frozenset()) | (
        UNDONE.get(part.state, frozenset()) if undo else frozenset())
    if to == part.state or to in allowed:
        return
    where = f"part {part.batch}/{part.name}"
    if part.state == JOINED:
        raise IllegalTransition(f"{where} is already joined; it cannot become {to}",
                                "nothing to change; `hf status` shows the batch")
    if part.state == DROPPED:
        raise IllegalTransition(f"{where} was dropped; it cannot become {to}",
                                "split a new batch for that work")
    raise IllegalTransition(f"{where} is {part.state}; it cannot become {to}",
                            "`hf status` shows the part's state")


def change(ws: Workspace, batch: str, name: str, to: str | None, *,
           action: str, when: Condition | None = None,
           update: Callable[[Part], None] | None = None, undo: bool = False,
           **audit: Any) -> tuple[Part, bool]:
    """Move part `batch/name` to state `to` (None: keep the state, change fields).

    Under the state lock, on the record as it is now: `when(part)` false leaves
    it as it is (returns it and False: someone changed it meanwhile); a
    transition `ALLOWED` does not hold is refused; `update(part)` sets the
    fields that go with it. The record is written only when something changed,
    and then the audit log gets `action` with `audit`'s fields. Returns the
    part as it is now and whether this call changed it.
    """
    with ws.store.state_lock():
        part = ws.store.load_part(batch, name)
        if when is not None and not when(part):
            return part, False
        before = part.to_dict()
        if to is not None:
            check(part, to, undo=undo)
            if part.state != to:
                part.state = to
                stamp(part, to)
        changed = _updated(part, before, update, ws.store.save_part)
    if changed:
        ws.store.audit(action, batch=batch, part=name, **audit)
    return part, changed


def _updated(record: Any, before: dict[str, Any], update: Callable[[Any], None] | None,
             save: Callable[[Any], None]) -> bool:
    """`update` applied to `record`, which is saved when it now differs from `before`."""
    if update is not None:
        update(record)
    changed: bool = record.to_dict() != before
    if changed:
        save(record)
    return changed


def change_batch(ws: Workspace, batch_id: str, to: str | None, *, action: str,
                 update: Callable[[Batch], None] | None = None,
                 **audit: Any) -> tuple[Batch, bool]:
    """`change` for a batch record: `to` checked against `BATCH_ALLOWED`."""
    with ws.store.state_lock():
        batch = ws.store.load_batch(batch_id)
        before = batch.to_dict()
        if to is not None and to != batch.state:
            if to not in BATCH_ALLOWED.get(batch.state, frozenset()):
                raise IllegalTransition(f"batch {batch_id} is {batch.state}; it cannot become "
                                        f"{to}", "`hf status` shows the batch")
            batch.state = to
            if to == DROPPED:
                batch.extra["dropped_at"] = now()
            elif to == JOINED:
                batch.joined_at = now()
        changed = _updated(batch, before, update, ws.store.save_batch)
    if changed:
        ws.store.audit(action, batch=batch_id, **audit)
    return batch, changed


def enter(part: Part, to: str) -> None:
    """`part` (a record being made, not saved yet) moved to `to`, as `change` would."""
    check(part, to)
    if part.state != to:
        part.state = to
        stamp(part, to)


def stamp(part: Part, state: str) -> None:
    """The time fields that go with entering `state`."""
    if state == DONE:
        part.done_at = now()
        part.reason = None
    elif state == BLOCKED:
        part.blocked_at = now()
    elif state == RUNNING:
        part.reason = None


def mark_joined(ws: Workspace, batch_id: str, part_names: list[str], commit: str,
                results: dict[str, str] | None = None, **audit: Any) -> None:
    """Mark the joined parts (and the batch, when every part is in) — idempotent.
    `results`: what the join took from each part (its `join_took`, so that commits
    made on the part's branch after it are known); `audit`: more fields for the
    audit line (how long the join took)."""
    with ws.store.state_lock():
        batch = ws.store.load_batch(batch_id)
        changed = []
        for name in part_names:
            part = ws.store.load_part(batch_id, name)
            if part.state != JOINED:
                check(part, JOINED)
                part.state = JOINED
                part.joined_commit = commit
                earlier = part.extra.pop("joined_result", None)
                if earlier is not None:  # (an undo of this join puts it back)
                    part.extra["joined_result_before"] = earlier
                if results and name in results:
                    part.extra["join_took"] = results[name]
                changed.append(part)
        ws.store.save_parts(changed)
        if all(ws.store.load_part(batch_id, n).state in (JOINED, DROPPED)
               for n in batch.parts):
            batch.state = JOINED
            batch.joined_at = now()
        batch.joined_commit = commit
        ws.store.save_batch(batch)
    ws.store.audit("join", batch=batch_id, parts=part_names, commit=commit, **audit)


def reopen_joined(ws: Workspace, batch_id: str, name: str, took: str,
                  when: Condition) -> tuple[Part, bool]:
    """A joined part done again (`hf done` once its branch got commits after its
    join, `when` deciding that on the record as it is now): done, with what its join
    took (`took`) kept as `joined_result`, so the next join of the batch takes only
    what changed since; a joined batch running again. Returns the part and whether
    this call changed it (the audit line `done-again` then)."""
    with ws.store.state_lock():
        batch = ws.store.load_batch(batch_id)
        part = ws.store.load_part(batch_id, name)
        if part.state != JOINED or not when(part):
            return part, False
        join = part.joined_commit
        part.state = DONE
        stamp(part, DONE)
        part.joined_commit = None
        part.extra["joined_result"] = {"result": took, "commit": join}
        part.extra.pop("join_took", None)
        ws.store.save_part(part)
        if batch.state == JOINED:
            batch.state = RUNNING
            batch.joined_at = None
            batch.auto_join = False  # (what comes after a join is the person's to join)
            batch.extra.pop("gc_at", None)
            ws.store.save_batch(batch)
    ws.store.audit("done-again", batch=batch_id, part=name, join=join, took=took)
    return part, True


def mark_undone(ws: Workspace, batch_id: str, part_names: list[str], join: str,
                joined_after: str | None, **audit: Any) -> bool:
    """The parts a join took in (`join`, its commit) back to done, and the batch
    running again with `joined_after` as its last joined commit (an earlier
    partial join's, or None) — idempotent. A part left out of that join because
    it committed meanwhile forgets that its earlier result was joined. Returns
    whether anything changed; the audit line `undo` is written then."""
    with ws.store.state_lock():
        batch = ws.store.load_batch(batch_id)
        changed = []
        for part in ws.store.load_parts(batch):
            earlier = part.extra.get("joined_result")
            if part.name in part_names and part.state == JOINED \
                    and part.joined_commit == join:
                check(part, DONE, undo=True)
                part.state = DONE
                part.joined_commit = None
                before = part.extra.pop("joined_result_before", None)
                if isinstance(before, dict):  # an earlier join took its work up to there
                    part.extra["joined_result"] = before
                changed.append(part)
            elif isinstance(earlier, dict) and earlier.get("commit") == join:
                part.extra.pop("joined_result")
                changed.append(part)
        ws.store.save_parts(changed)
        was = batch.state
        if batch.state == JOINED:
            batch.state = RUNNING
            batch.joined_at = None
        # the sweep would join it right back: after an undo, joining is the person's
        batch.auto_join = False
        batch.extra.pop("gc_at", None)  # running again: not a collected batch
        if changed or was != batch.state or batch.joined_commit == join:
            batch.joined_commit = joined_after
            ws.store.save_batch(batch)
    if not changed and was == batch.state:
        return False
    ws.store.audit("undo", batch=batch_id, parts=part_names, join=join, **audit)
    return True
