"""Applying a sandboxed part's requests (see core/inbox.py): each one is checked
against what that part may ask, applied through the state machine, then removed.
A request that is not valid is removed and audited (`inbox-rejected`); it never
changes a record."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from hf_fanout.core import inbox
from hf_fanout.core.records import Part
from hf_fanout.core.states import IllegalTransition
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput, HfError
from hf_fanout.liveness import heartbeat
from hf_fanout.orchestrator.lifecycle import mark_blocked, mark_done


def apply(ws: Workspace, part: Part) -> list[dict[str, Any]]:
    """Apply the part's pending requests, oldest first; what was done with each."""
    results = []
    common = Path(ws.repo.common_dir)
    for path, data in inbox.pending(common, part.batch, part.name):
        outcome = _apply_one(ws, part, data)
        results.append(outcome)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if not outcome.get("applied"):
            ws.store.audit("inbox-rejected", batch=part.batch, part=part.name,
                           why=outcome.get("why", ""), file=path.name)
    return results


def apply_all(ws: Workspace) -> int:
    """Apply every part's pending requests (the sweep, status, join); how many."""
    root = ws.store.root / "inbox"
    if not root.is_dir():  # one stat: no part ever ran in a sandbox
        return 0
    count = 0
    for batch_dir in sorted(root.iterdir()):
        for part_dir in sorted(batch_dir.iterdir()) if batch_dir.is_dir() else []:
            if not any(part_dir.glob("*.json")):
                continue
            try:
                part = ws.store.load_part(batch_dir.name, part_dir.name)
            except (HfError, FileNotFoundError):
                continue  # a part that is gone: its requests go with gc
            count += len(apply(ws, part))
    return count


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)[:inbox.MAX_TEXT]


def _worker(part: Part, data: dict[str, Any]) -> dict[str, Any]:
    """The actor of a request: the part's worker that asked (in the sandbox)."""
    pid = data.get("pid")
    return {"kind": "worker", "name": f"{part.batch}/{part.name}",
            "pid": pid if isinstance(pid, int) else None}


def _handoff(ws: Workspace, part: Part, data: dict[str, Any]) -> dict[str, Any]:
    """A queue entry the part's agent handed on from its sandbox, checked the way
    `hf handoff` checks its options (the text is the one field not cut short)."""
    from hf_fanout.tabs.queue import write_entry

    text, files = data.get("text"), data.get("files")
    if not isinstance(text, str) or len(text.encode()) > inbox.MAX_HANDOFF:
        return {"applied": False, "action": "handoff", "why": "not a handoff's text"}
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        files = []
    where = f"{part.worktree} ({part.batch}/{part.name}, sandbox)"
    try:
        entry = write_entry(ws, text=text, task=_text(data.get("task")) or "",
                            status=_text(data.get("status")) or "done",
                            tests=_text(data.get("tests")) or "",
                            files=[f[:inbox.MAX_TEXT] for f in files[:200]], origin=where)
    except BadInput as exc:
        return {"applied": False, "action": "handoff", "why": exc.message}
    ws.store.audit("handoff", batch=part.batch, part=part.name, entry=entry.id,
                   actor=_worker(part, data))
    return {"applied": True, "action": "handoff", "entry": entry.id}


def _apply_one(ws: Workspace, part: Part, data: Any) -> dict[str, Any]:
    if data is None:
        return {"applied": False, "why": "not a request hf writes"}
    action = data.get("action")
    fresh = ws.store.load_part(part.batch, part.name)
    try:
        if action == "done":
            try:
                mark_done(ws, fresh, _text(data.get("note")))
            except HfError as exc:  # a taken part's push refused: said, not retried
                return {"applied": False, "action": action, "why": exc.message}
        elif action == "blocked":
            reason = _text(data.get("reason")) or ""
            if not reason.strip():
                return {"applied": False, "action": action, "why": "blocked without a reason"}
            mark_blocked(ws, fresh, reason)
        elif action == "heartbeat":
            heartbeat.beat(ws.store, part.batch, part.name, active=time.time(),
                           by="hf heartbeat (sandbox)")
        elif action == "audit" and data.get("what") == "commit":
            fields = {k: data.get(k) for k in ("ref", "commit", "parent", "paths")}
            ws.store.audit("commit", batch=part.batch, part=part.name, sandbox=True, **fields)
        elif action == "audit" and data.get("what") == "agent-state":
            state, at = data.get("state"), data.get("at")
            if state not in ("working", "waiting", "exited") or not isinstance(at, int | float):
                return {"applied": False, "action": action, "why": "not an agent state"}
            ws.store.audit("agent-state", batch=part.batch, part=part.name, state=state,
                           event=_text(data.get("event")), since_t=round(float(at), 3),
                           actor=_worker(part, data))
        elif action == "decision":
            text = _text(data.get("text")) or ""
            if not text.strip():
                return {"applied": False, "action": action, "why": "a decision without text"}
            ws.store.audit("decision", batch=part.batch, part=part.name, text=text,
                           actor=_worker(part, data))
        elif action == "handoff":
            return _handoff(ws, part, data)
        else:
            return {"applied": False, "action": action, "why": f"unknown request {action!r}"}
    except IllegalTransition as exc:
        return {"applied": False, "action": action, "why": exc.message}
    return {"applied": True, "action": action}
