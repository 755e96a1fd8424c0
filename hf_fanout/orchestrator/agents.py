"""`hf agent-event EVENT`: what an agent's hook reports, recorded for its part; and
the one check a hook can make before the agent writes a file: does the part own it.

Runs on every step of an agent, so it reads no git and loads no record types
for a plain event: the hook's JSON, one small file written, with os and json
alone (tests/test_agent_event.py pins what it imports). Only a file write
(`pre-tool-use` of Edit, Write, MultiEdit, NotebookEdit) reads the batch's
ownership, and only a transition is audited and notifies.
"""

from __future__ import annotations

import json
import os

from hf_fanout.liveness import agent

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from hf_fanout.atomic import AnyPath

WRITE_TOOLS = ("Edit", "Write", "MultiEdit", "NotebookEdit")
REFUSED = 2  # Claude Code: exit 2 of a PreToolUse hook refuses the tool, stderr to the agent
# core.records' DONE, BLOCKED, JOINED, DROPPED (not imported: the hook's start-up)
FINISHED = ("done", "blocked", "joined", "dropped")


class EventOutcome:
    """What `record_event` did. (A plain class: dataclasses cost a hook's start-up.)"""

    def __init__(self, batch: str, part: str, event: str, state: str, changed: bool,
                 refused: str = "") -> None:
        self.batch, self.part, self.event = batch, part, event
        self.state, self.changed = state, changed
        self.refused = refused  # why a write was refused (the line the agent reads)

    def to_data(self) -> dict[str, Any]:
        return dict(self.__dict__)


def parse_payload(text: str) -> dict[str, Any]:
    """The hook's JSON (stdin, or Codex's argument); anything else is no payload:
    a hook must never stop the agent because hf could not read it. Read whole: a
    Write's payload holds the file's content, and one cut short would be no
    payload, its ownership check skipped."""
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def batch_dir(common_dir: AnyPath, batch: str) -> str:
    # Store.batch_dir's layout, without loading the record types (start-up time)
    return os.path.join(common_dir, "hf", "batches", batch)


_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def _plain(name: str) -> bool:
    # the characters of a batch or part id (records.SLUG, without loading re)
    return bool(name) and set(name) <= _NAME_CHARACTERS


def record_event(common_dir: AnyPath, batch: str, part: str, event: str,
                 payload: dict[str, Any]) -> EventOutcome:
    """Record `event` for `batch/part`; for a file write, first the ownership check."""
    from hf_fanout.errors import BadInput

    if event not in agent.EVENTS:
        raise BadInput(f"unknown agent event {event!r}",
                       "events: " + ", ".join(sorted(agent.EVENTS)))
    if not (_plain(batch) and _plain(part)):  # a path in disguise: never written to
        raise BadInput(f"not a part: {batch}/{part}",
                       "name it BATCH/PART, as `hf status` lists them")
    where = batch_dir(common_dir, batch)
    if not os.path.isfile(os.path.join(where, "parts", f"{part}.json")):
        from hf_fanout.errors import NotFound

        raise NotFound(f"no part {part!r} in batch {batch!r}",
                       f"`hf status {batch}` lists its parts")
    refused = ""
    if event == "pre-tool-use" and payload.get("tool_name") in WRITE_TOOLS:
        refused = write_refusal(where, batch, part, payload)
    detail = str(payload.get("notification_type") or payload.get("message")
                 or payload.get("tool_name") or payload.get("type") or "")
    found = agent.record(where, part, event, detail=detail,
                         agent="codex" if event == "codex-notify" else
                         ("claude" if payload.get("hook_event_name") else ""))
    if found["changed"]:
        audit_state(common_dir, batch, part, str(found["state"]), event)
    # (in a sandbox tmux and the session bus are out of reach, and this tells nobody:
    # `hf run` outside tells the person, `relay_state`)
    if found["changed"] and found["state"] in RELAYED:
        notify_transition(common_dir, batch, part, str(found["state"]), detail)
    return EventOutcome(batch, part, event, found["state"], bool(found["changed"]), refused)


def audit_state(common_dir: AnyPath, batch: str, part: str, state: str, event: str) -> None:
    """The audit line of a new agent state (`agent-state`; `hf report` counts the
    time spent waiting from them); from a sandbox, a request to hf outside it.
    Only on a change of state, so not on every step."""
    import time
    from pathlib import Path

    from hf_fanout.core import inbox

    common_dir = Path(common_dir)
    if inbox.sandboxed():
        inbox.post(common_dir, batch, part, "audit", what="agent-state", state=state,
                   event=event, pid=os.getpid())
        return
    from hf_fanout import atomic
    from hf_fanout.core import audit

    atomic.append_line(common_dir / "hf" / audit.LOG_NAME, audit.line(
        "agent-state", {"batch": batch, "part": part, "state": state, "event": event,
                        "since_t": round(time.time(), 3)}))


def _target_path(payload: dict[str, Any]) -> str:
    tool_input = payload.get("tool_input")
    if not isinstance(tool_input, dict):
        return ""
    for key in ("file_path", "notebook_path", "path"):
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def write_refusal(where: str, batch: str, part: str, payload: dict[str, Any]) -> str:
    """Why the part may not write the file the tool names ("" when it may)."""
    from hf_fanout.atomic import read_json
    from hf_fanout.core.ownership import Ownership

    target = _target_path(payload)
    record = read_json(os.path.join(where, "parts", f"{part}.json"))
    if not target or not isinstance(record, dict):
        return ""
    worktree = os.path.realpath(str(record.get("worktree", "")))
    cwd = payload.get("cwd") if isinstance(payload.get("cwd"), str) else worktree
    full = os.path.realpath(os.path.join(str(cwd), target))
    if not full.startswith(worktree + os.sep):
        return _outside_worktree(where, full, worktree)
    path = os.path.relpath(full, worktree).replace(os.sep, "/")
    if path.split("/", 1)[0] == ".hf" or path in _left_out(record):
        return ""  # hf's handoff; what hf put there (copy's files, the agent's settings)
    if Ownership.parse(record.get("owns") or []).owns(path) or _ignored(worktree, path):
        return ""
    owner = _owner(where, part, path)
    who = f"part {owner} owns it" if owner else "no part of the batch owns it"
    return (f"hf: {path} is not owned by part {batch}/{part} ({who}); "
            f"write only the files this part owns (see .hf/TASK.md)")


def _left_out(record: dict[str, Any]) -> list[str]:
    """The paths the join leaves out of the part's change (records.copied_paths)."""
    from hf_fanout.core.records import Part, copied_paths
    from hf_fanout.errors import HfError

    try:
        return copied_paths(Part.from_dict(record, "part record"))
    except HfError:
        return []


def _ignored(worktree: str, path: str) -> bool:
    """Whether git ignores the (untracked) path: the join never sees it either."""
    from pathlib import Path

    from hf_fanout.worktrees.process import run

    return run(["check-ignore", "-q", "--", path], Path(worktree), check=False) \
        .returncode == 0


def _outside_worktree(where: str, full: str, worktree: str) -> str:
    """A path outside the part's worktree: refused in the main tree or another part's."""
    from hf_fanout.atomic import read_json

    batch = read_json(os.path.join(where, "batch.json"))
    if not isinstance(batch, dict):
        return ""
    for name in batch.get("parts") or []:
        other = read_json(os.path.join(where, "parts", f"{name}.json"))
        tree = os.path.realpath(str(other.get("worktree", ""))) if isinstance(other, dict) \
            else ""
        if tree and tree != worktree and full.startswith(tree + os.sep):
            return (f"hf: {full} is in part {name}'s worktree; write only in this "
                    f"part's worktree ({worktree})")
    from hf_fanout.orchestrator.notify import main_tree

    main = main_tree(os.path.dirname(os.path.dirname(os.path.dirname(where))))
    if main and full.startswith(main + os.sep):
        return (f"hf: {full} is in the main tree, which only `hf join` writes; write "
                f"in this part's worktree ({worktree})")
    return ""


def _owner(where: str, part: str, path: str) -> str:
    from hf_fanout.atomic import read_json
    from hf_fanout.core.ownership import Ownership

    batch = read_json(os.path.join(where, "batch.json"))
    for name in (batch.get("parts") or []) if isinstance(batch, dict) else []:
        other = read_json(os.path.join(where, "parts", f"{name}.json"))
        if name != part and isinstance(other, dict) and \
                Ownership.parse(other.get("owns") or []).owns(path):
            return str(name)
    return ""


RELAYED = (agent.WAITING, agent.WORKING)  # the agent's states the person is told of


def relay_state(common_dir: AnyPath, batch: str, part: str,
                last: tuple[str, str] | None) -> tuple[str, str] | None:
    """For `hf run` outside the sandbox, every half second: the state a sandboxed
    agent reported, told to the person (`notify_transition`) when it changed since
    `last` (state, since; None: not read yet, nothing is told). Returns what it saw
    (empty strings: no state yet)."""
    from hf_fanout.errors import HfError

    try:
        found = agent.read_state(batch_dir(common_dir, batch), part)
    except HfError:
        return last
    now = (str(found.get("state")), str(found.get("since"))) if found else ("", "")
    if found and last is not None and now != last and now[0] in RELAYED:
        notify_transition(common_dir, batch, part, now[0], str(found.get("detail") or ""))
    return now


def notify_transition(common_dir: AnyPath, batch: str, part: str, state: str,
                      detail: str) -> None:
    """The person told that the part entered `state`: its tmux window's name, and a
    notification for waiting (coalesced; see notify)."""
    from hf_fanout.atomic import read_json
    from hf_fanout.tabs import window_marks

    record = read_json(os.path.join(batch_dir(common_dir, batch), "parts", f"{part}.json"))
    if not (isinstance(record, dict) and record.get("state") in FINISHED):
        window_marks.show(batch, part, state)  # (a done or blocked part keeps its ✔ / ✖)
    if state == agent.WAITING:
        from hf_fanout.orchestrator import notify

        notify.transition(common_dir, batch, part, state, detail)
