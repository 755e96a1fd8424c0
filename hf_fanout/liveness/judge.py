"""Liveness of a part: its worker's identity and exit, and the state it is judged in.

States (see docs/liveness.md): running, idle (worker alive, no activity for
longer than the idle threshold), orphan (worker gone, part not done), missing
(worktree directory gone), done, blocked, joined.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout import processes, timefmt
from hf_fanout.core import states
from hf_fanout.core.records import BLOCKED, DONE, DROPPED, JOINED, RUNNING, Part, now
from hf_fanout.core.remote_refs import remote_of
from hf_fanout.core.workspace import Workspace
from hf_fanout.liveness import agent, heartbeat

IDLE = "idle"
ORPHAN = "orphan"
MISSING = "missing"

DEFAULT_IDLE_MINUTES = 20.0
# a part in a tmux tab: no output there, no heartbeat, no event, no changed file
# for this long is idle (`tab_idle_seconds`)
DEFAULT_TAB_IDLE_SECONDS = 300.0


def file_activity(ws: Workspace, part: Part) -> float | None:
    """The newest mtime of any uncommitted file in the part's worktree (costs a git status)."""
    from hf_fanout.core.records import copied_paths
    from hf_fanout.errors import GitFailed

    worktree = Path(part.worktree)
    try:
        paths = ws.repo.worktree(worktree).status_paths(exclude=copied_paths(part))
    except GitFailed:
        return None
    newest = None
    for path in paths:
        try:
            mtime = os.lstat(worktree / path).st_mtime
        except OSError:
            continue
        newest = mtime if newest is None else max(newest, mtime)
    return newest


# --- the worker record -------------------------------------------------------


def record_worker(ws: Workspace, part: Part, worker: dict[str, Any]) -> Part:
    """A new worker for the part (`hf run`): a blocked part runs again."""

    def start(fresh: Part) -> None:
        fresh.worker = worker
        fresh.exit = None

    fresh, _ = states.change(ws, part.batch, part.name,
                             RUNNING if part.state == BLOCKED else None, action="worker",
                             update=start, when=lambda p: p.state not in (JOINED, DROPPED),
                             pid=worker.get("pid"), command=worker.get("command"))
    return fresh


def record_exit(ws: Workspace, part: Part, code: int | None, sig: int | None, *,
                done: bool = False, ran: dict[str, float] | None = None) -> tuple[Part, bool]:
    """The worker's exit (with `ran`: how long it ran, how long of that idle), and
    with `done` (an exit of 0 under `--done-on-success`) the part marked done in
    the same change: no reader ever sees the exit without the done. Returns the
    part and whether it was marked done."""
    fresh = ws.store.load_part(part.batch, part.name)
    to_done = done and fresh.state in (RUNNING, BLOCKED)

    def finish(p: Part) -> None:
        p.exit = {"code": code, "signal": sig, "at": now(), "pid": (p.worker or {}).get("pid"),
                  **(ran or {})}

    how_long: dict[str, Any] = dict(ran or {})
    after, _ = states.change(ws, part.batch, part.name, DONE if to_done else None,
                             action="exit", update=finish, code=code, signal=sig,
                             done=to_done, **how_long)
    return after, to_done and after.state == DONE


def worker_identity(part: Part) -> processes.Identity | None:
    if not part.worker:
        return None
    return processes.Identity.from_dict(part.worker)


def worker_alive(part: Part) -> bool | None:
    """True, False, or None when no worker is recorded (or it is on another host)."""
    ident = worker_identity(part)
    if ident is None:
        return None
    if part.exit is not None and part.exit.get("pid") == ident.pid:
        return False
    return processes.is_alive(ident)


def supervisor_alive(part: Part) -> bool:
    """Whether the `hf run` that supervises the worker still lives (pid + start
    time; a record from before supervisors were recorded: no)."""
    found = (part.worker or {}).get("supervisor")
    ident = processes.Identity.from_dict(found) if isinstance(found, dict) else None
    return ident is not None and processes.is_alive(ident) is True


def still_orphan(ws: Workspace, seen: Part) -> states.Condition:
    """The condition the sweep blocks an orphan under: the record as it is now is
    the one the sweep judged (same worker, not marked done meanwhile), and it
    still judges orphan."""

    def holds(fresh: Part) -> bool:
        return (fresh.state == RUNNING and fresh.worker == seen.worker
                and classify(ws, fresh).state == ORPHAN)

    return holds


# --- classification ----------------------------------------------------------


@dataclass
class Verdict:
    state: str
    why: str
    alive: bool | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def idle_seconds(ws: Workspace) -> float:
    return ws.settings.number("idle_minutes", DEFAULT_IDLE_MINUTES) * 60


def tab_idle_seconds(ws: Workspace) -> float:
    return ws.settings.number("tab_idle_seconds", DEFAULT_TAB_IDLE_SECONDS)


def classify(ws: Workspace, part: Part, *, at: float | None = None,
             idle_after: float | None = None, output_at: float | None = None) -> Verdict:
    """The part's state as liveness sees it. `output_at`: when its tab last showed
    output (a tmux window's activity), if it has such a tab: then that counts as
    activity, and the tab's own threshold (`tab_idle_seconds`) applies."""
    at = time.time() if at is None else at
    if part.state == JOINED:
        return Verdict(JOINED, "joined")
    if remote_of(part) is not None:  # its worktree, worker and heartbeats are elsewhere
        return Verdict(part.state, f"worked through remote {remote_of(part)}")
    if not Path(part.worktree).is_dir():
        return Verdict(MISSING, f"worktree {part.worktree} is gone")
    if part.state in (DONE, BLOCKED):
        return Verdict(part.state, part.reason or part.state)
    alive = worker_alive(part)
    if alive is None:
        # No `hf run` recorded (a person, or an agent started by hand): nothing
        # to judge by but the record.
        return Verdict(RUNNING, "no worker recorded", None)
    worker = part.worker or {}
    if not alive and part.exit is None and supervisor_alive(part):
        # `hf run` is recording the exit (and, with --done-on-success, the done)
        return Verdict(RUNNING, "worker exited; its `hf run` is recording the exit", True)
    if not alive:
        how = "is gone"
        if part.exit is not None:
            if part.exit.get("signal"):
                how = f"was killed by signal {part.exit['signal']}"
            else:
                how = f"exited with code {part.exit.get('code')}"
        return Verdict(ORPHAN, f"worker pid {worker.get('pid')} {how} before `hf done`", False,
                       {"exit": part.exit})
    limit = idle_after if idle_after is not None else \
        tab_idle_seconds(ws) if output_at is not None else idle_seconds(ws)
    started = timefmt.parse_iso(worker.get("since"))
    last = max(x for x in (heartbeat.last_activity(ws.store, part), started, 0.0,
                           agent.last_event(ws.store.batch_dir(part.batch), part.name),
                           output_at)
               if x is not None)
    if at - last > limit:
        files = file_activity(ws, part)  # only now: it costs a git status
        if files is not None:
            last = max(last, files)
    if at - last > limit:
        return Verdict(IDLE, f"no activity for {int((at - last) // 60)} min", True,
                       {"last_activity": last})
    return Verdict(RUNNING, "worker alive", True, {"last_activity": last})
