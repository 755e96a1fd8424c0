"""What the agent itself says it is doing: `<batch dir>/agent/<part>/state.json`
(a directory per part: the one a sandboxed part may write).

Agents with hooks (Claude Code's hooks, Codex's notify) call `hf agent-event
EVENT` on each step; the event becomes a state: working (the agent acts),
waiting (it needs the person: a prompt, a question, a finished turn) or exited.
The file keeps the state, when it began (`since`) and the last event (`at`).
This module is the one writer and reader of that record, for the hooks and for
`hf status` alike; it runs on every tool call of an agent, so it loads os and
json only (paths are str or Path; no pathlib, no typing at run time).
"""

from __future__ import annotations

import json
import os
import time

from hf_fanout import atomic, timefmt

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from hf_fanout.atomic import AnyPath

WORKING = "working"
WAITING = "waiting"
EXITED = "exited"
STATES = (WORKING, WAITING, EXITED)

# hook event (as `hf agent-event` names it) -> the state it means
EVENTS: dict[str, str] = {
    "notification": WAITING,  # Claude Code: permission_prompt, idle_prompt, elicitation
    "stop": WAITING,  # Claude Code: its turn ended, it waits for input
    "user-prompt-submit": WORKING,
    "pre-tool-use": WORKING,
    "session-end": EXITED,
    "codex-notify": WAITING,  # Codex CLI's notify program: a turn finished
    "working": WORKING,  # any agent or script may say so itself
    "waiting": WAITING,
    "exited": EXITED,
    "pattern": WAITING,  # hf saw the tab's `waiting_pattern` (not an agent hook)
    "output": WORKING,  # the tab's output moved on after a pattern
}


def state_file(batch_dir: AnyPath, part: str) -> str:
    return os.path.join(batch_dir, "agent", part, "state.json")


def read_state(batch_dir: AnyPath, part: str) -> dict[str, Any] | None:
    """The agent's state record; None when it never reported (a damaged one is
    reported, StateCorrupt, like any record)."""
    data = atomic.read_json(state_file(batch_dir, part), "agent state")
    return data if isinstance(data, dict) and data.get("state") in STATES else None


def record(batch_dir: AnyPath, part: str, event: str, *, detail: str = "",
           agent: str = "") -> dict[str, Any]:
    """Record `event` for the part; `since` moves only when the state changes.
    Returns the record with `changed` (whether the state is new)."""
    state = EVENTS[event]
    previous = read_state(batch_dir, part)
    now = time.time()
    changed = previous is None or previous.get("state") != state
    since = timefmt.iso(now) if changed or previous is None else str(previous.get("since"))
    data: dict[str, Any] = {"state": state, "since": since, "at": timefmt.iso(now),
                            "event": event, "detail": detail[:200],
                            "agent": agent or (previous or {}).get("agent", ""),
                            "pid": os.getppid()}
    path = state_file(batch_dir, part)
    if not changed and previous is not None and previous.get("at") == data["at"] \
            and previous.get("event") == event:
        return {**data, "changed": False}  # the same second, the same event: nothing new
    # Not fsynced: a lost state after a power cut is stale at once anyway, and
    # this is written on every tool call of the agent.
    atomic.replace_unsynced(path, (json.dumps(data) + "\n").encode())
    return {**data, "changed": changed}


def last_event(batch_dir: AnyPath, part: str) -> float | None:
    """When the agent last reported anything (a sign of work for the idle check)."""
    found = read_state(batch_dir, part)
    return timefmt.parse_iso(found.get("at")) if found else None
